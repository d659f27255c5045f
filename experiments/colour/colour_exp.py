"""Colour experiments: python colour_exp.py DATASET VARIANT N EPOCHS [LATENT]"""
import sys, time, json, torch
torch.set_num_threads(1)
from convae_utils.models import build_autoencoder
from convae_utils.training import fit, reconstruct
from convae_utils.data import class_exemplars
from convae_utils.colour import colour_report
dataset, variant, n, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
latent = int(sys.argv[5]) if len(sys.argv) > 5 else 200
if dataset == "photos10":
    from convae_utils.photos import make_photos10 as make
else:
    import shapes_variants
    make = shapes_variants.maker(dataset)
train, val, test = make(n, seed=0), make(500, seed=1), make(1000, seed=0, split="test")
kw = dict(code_activation="relu", output_activation=None)
if variant == "nocodrelu": kw["code_activation"] = None
if variant == "tanh": kw["output_activation"] = "tanh"
model = build_autoencoder(latent, seed=0, **kw)
if variant == "defaultinit":
    model = build_autoencoder(latent, seed=0, **kw)
    import torch.nn as nn
    torch.manual_seed(0)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)): m.reset_parameters()
t = time.perf_counter()
h = fit(model, train, val, num_epochs=epochs, batch_size=64, lr=1e-3, seed=0, device="cpu", progress=False,
        exemplars=class_exemplars(test))
ex = colour_report(h.exemplars, h.reconstructions[-1])
rt = colour_report(test.images, reconstruct(model, test.images))
with torch.no_grad():
    from convae_utils.data import normalize
    z = model.encode(normalize(test.images))
dead = int(((z > 0).sum(0) == 0).sum()) if kw["code_activation"] == "relu" else -1
print(json.dumps({"dataset": dataset, "variant": variant, "n": n, "epochs": epochs, "latent": latent,
                  "val": round(h.val_epoch_loss[-1], 4), "exemplar_kept": round(ex["chroma_kept"], 3),
                  "exemplar_meanerr": round(ex["max_mean_colour_error"], 3), "test_kept": round(rt["chroma_kept"], 3),
                  "test_chroma_err": round(rt["chroma_error"], 4), "test_meanerr": round(rt["max_mean_colour_error"], 3),
                  "orig_chroma": round(rt["chroma_original"], 4), "dead_code_units": dead,
                  "seconds": round(time.perf_counter() - t, 1)}))
