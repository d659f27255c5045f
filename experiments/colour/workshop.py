"""Workshop profile on one dataset: python workshop.py DATASET [LATENT]  (20,000 train, 2,000 val, 2,000 test, 5 epochs, batch 64, lr 1e-3)"""
import sys, time, json, torch
torch.set_num_threads(1)
from convae_utils.models import build_autoencoder
from convae_utils.training import fit, reconstruct
from convae_utils.data import class_exemplars, split_train_val
from convae_utils.colour import colour_report
from convae_utils.metrics import per_image_psnr
from convae_utils.data import normalize
dataset = sys.argv[1]; latent = int(sys.argv[2]) if len(sys.argv) > 2 else 200
if dataset == "photos10":
    from convae_utils.photos import make_photos10 as make
else:
    import shapes_variants; make = shapes_variants.maker(dataset)
pool = make(22_000, seed=0, split="train")
train, val = split_train_val(pool, 2_000, seed=0)
full_test = make(2_000, seed=0, split="test")
exemplars = class_exemplars(full_test)
model = build_autoencoder(latent, seed=0)  # RunConfig defaults: code ReLU, no output activation
t = time.perf_counter()
h = fit(model, train, val, num_epochs=5, batch_size=64, lr=1e-3, seed=0, device="cpu", progress=False, exemplars=exemplars)
secs = time.perf_counter() - t
rep = colour_report(h.exemplars, h.reconstructions[-1])
test_rec = reconstruct(model, full_test.images)
rt = colour_report(full_test.images, test_rec)
psnr = float(per_image_psnr(normalize(test_rec), normalize(full_test.images)).mean())
print(json.dumps({"dataset": dataset, "latent": latent, "val_loss": [round(v, 4) for v in h.val_epoch_loss],
  "exemplar_chroma_kept_per_epoch": [round(colour_report(h.exemplars, r)["chroma_kept"], 3) for r in h.reconstructions],
  "exemplar": {k: (round(v, 4) if isinstance(v, float) else v) for k, v in rep.items() if not k.startswith("mean_colour")},
  "test_chroma_kept": round(rt["chroma_kept"], 3), "test_max_mean_colour_error": round(rt["max_mean_colour_error"], 4),
  "test_psnr_db": round(psnr, 2), "train_seconds": round(secs, 1)}))
