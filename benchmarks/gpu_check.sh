#!/usr/bin/env bash
# One prepared run on a GPU machine (see README, "GPU"). Writes its JSON/CSV results and a log to $OUT
# (default ./build/gpu). Needs only torch, torchvision, torchmetrics, pandas, matplotlib, seaborn,
# scikit-image, scikit-learn, filelock and tqdm; the package runs from the checkout (PYTHONPATH).
set -u
OUT=${OUT:-build/gpu}
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
export CONVAE_RUNS_DIR=${CONVAE_RUNS_DIR:-/tmp/convae-gpu-runs}
step() { echo "=== $* ($(date +%T))"; }
{
step machine
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python3 -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, torch.cuda.get_device_name())"

step "the article's whole experiment, float32 (latent 200 and 1000, 10 epochs, 45,000 + 5,000 images)"
timeout 180 python3 -m convae_utils.tools.experiment --device cuda --json "$OUT/experiment_fp32.json"
step "the same with bfloat16 autocast"
timeout 180 python3 -m convae_utils.tools.experiment --device cuda --amp --json "$OUT/experiment_amp.json"
step "bench: the article's loop against the package, same batches"
timeout 240 python3 -m convae_utils bench --device cuda --amp --json "$OUT/bench.json"

for dataset in ${DATASETS:-photos10 shapes10}; do
  step "workshop profile on $dataset: colour check of the series' models"
  timeout 180 python3 -m convae_utils.tools.colour_check --profile workshop --dataset "$dataset"
  step "workshop profile on $dataset: notebook 06's rate-distortion table"
  timeout 240 python3 -m convae_utils.tools.rate_distortion --profile workshop --dataset "$dataset" --csv "$OUT/rd_$dataset.csv"
done
step done
} 2>&1 | tee "$OUT/log.txt"
