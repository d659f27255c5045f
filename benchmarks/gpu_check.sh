#!/usr/bin/env bash
# The GPU figures in the README, in one short prepared run (a few minutes on one H200):
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh      # from the repository root; $OUT gets JSON, CSV, log
#
# Needs only torch (+ torchvision, torchmetrics, scikit-image, scikit-learn, pandas, matplotlib, seaborn,
# filelock, tqdm): no Jupyter and no install of the package (it runs from this checkout via PYTHONPATH).
# Each step has its own time limit; STEPS picks which run (default: all, in this order of importance):
#   graphs      the CUDA-graph step against the eager step: same losses within float noise
#   experiment  the article's whole experiment through fit (latent 200 and 1000, 10 epochs, 45,000 +
#               5,000 images, test set scored): the "under 60 s" target
#   bench       the package against the article's loop on the same GPU, same batches: the ">= 10x" target
#   notebooks   notebooks 08, 09 and 10 in the smoke profile with their models on the GPU (every helper
#               that runs a model must move its inputs there); needs the dev extra (nbmake)
#   studies     the workshop profile's colour check and notebook 06's table on photos10 and shapes10
set -u
cd "$(dirname "$0")/.."
OUT=${OUT:-build/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export CONVAE_RUNS_DIR=${CONVAE_RUNS_DIR:-/tmp/convae-gpu-runs}
PY="${PYTHON:-python3}"
STEPS=${STEPS:-graphs experiment bench notebooks studies}
status=0
step() { echo "=== $1 ($(date +%T))"; }
run() { timeout --signal=INT --kill-after=15 "$@" || { echo "!!! exit $? from: $*"; status=1; }; }
want() { case " $STEPS " in *" $1 "*) return 0;; *) return 1;; esac; }
{
step machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
"$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"
if want graphs; then
  step "CUDA graph step against the eager step (same weights, same batches)"
  run 120 "$PY" - <<'PY'
import torch
from convae_utils.models import build_autoencoder
from convae_utils.shapes import make_shapes10
from convae_utils.training import fit
data = make_shapes10(6_000, seed=0)
train, val = data.head(5_000), data.subset(range(5_000, 6_000), split="val")
runs = {}
for graph in (False, True):
    model = build_autoencoder(200, seed=0)
    history = fit(model, train, val, num_epochs=2, device="cuda", progress=False, cuda_graph=graph)
    runs[graph] = history.train_batch_loss
eager, graphed = torch.tensor(runs[False]), torch.tensor(runs[True])
print(f"first-step loss eager {eager[0]:.6f} graphed {graphed[0]:.6f}; max relative difference over "
      f"{len(eager)} steps {((eager - graphed).abs() / eager).max():.2e}; final {eager[-1]:.5f} vs {graphed[-1]:.5f}")
PY
fi
if want experiment; then
  step "the article's whole experiment, float32 (CUDA graphs: the default on a GPU)"
  run 150 "$PY" -m tools study experiment --device cuda --json "$OUT/experiment.json"
fi
if want bench; then
  step "bench: the article's loop against the package, same batches"
  run 200 "$PY" -m tools bench --device cuda --latent-dim 200,1000 --steps 50 --warmup 10 --repeats 3 \
    --json "$OUT/bench.json"
fi
if want notebooks; then
  step "notebooks 08, 09 and 10, smoke profile, models on the GPU"
  CONVAE_PROFILE=smoke run 300 "$PY" -m pytest -q -p no:cacheprovider --nbmake \
    notebooks/08_winning.ipynb notebooks/09_vae.ipynb notebooks/10_learned_codec.ipynb
fi
if want studies; then
  for dataset in ${DATASETS:-photos10 shapes10}; do
    step "workshop profile on $dataset: colour check of the series' models"
    run 180 "$PY" -m tools study colour --profile workshop --dataset "$dataset"
    step "workshop profile on $dataset: notebook 06's rate-distortion table"
    run 240 "$PY" -m tools study 06 --profile workshop --dataset "$dataset" --csv "$OUT/rd_$dataset.csv"
  done
fi
step "done (exit $status)"
} 2>&1 | tee "$OUT/log.txt"
exit $status
