import time, torch
torch.set_num_threads(2)
t=time.perf_counter()
from convae_utils.photos import make_photos10
from convae_utils.models import build_autoencoder
from convae_utils.training import fit, reconstruct
from convae_utils.colour import colour_report
train, val, test = make_photos10(512, seed=0), make_photos10(64, seed=1), make_photos10(200, seed=0, split="test")
model = build_autoencoder(200, seed=0)
fit(model, train, val, num_epochs=2, batch_size=32, lr=2e-3, seed=0, device="cpu", progress=False)
rec = reconstruct(model, test.images, channels_last=False)
r = colour_report(test.images, rec)
g = colour_report(test.images, rec.float().mean(1, keepdim=True).round().expand_as(rec).to(torch.uint8))
print({k: round(v, 4) for k, v in r.items() if isinstance(v, float)}, "grey:", round(g["chroma_kept"], 4), "s", round(time.perf_counter()-t, 1))
