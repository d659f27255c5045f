#!/usr/bin/env bash
# The GPU figures of issue 14, in one short run (about 6 minutes on one H200).
#
#   OUT=/some/folder bash benchmarks/gpu_check.sh        # from the repository root; $OUT gets the JSON and logs
#
# Needs only torch (+ torchvision, torchmetrics, scikit-image, scikit-learn, pandas, tqdm): no Jupyter,
# no ipywidgets, no install of the package (it runs from this checkout through PYTHONPATH).
# Order = importance; each step has its own time limit, and the optional last steps are skipped when
# the budget (GPU_CHECK_BUDGET_S, default 360 s) would be exceeded.
#   1. nvidia-smi and the versions;
#   2. the article's whole experiment (latent 200 and 1000, 10 epochs, 45,000 + 5,000 images, test set
#      scored) through fit, float32 eager: the "under 60 s on one H200" target;
#   3. the same with bfloat16 autocast (--amp);
#   4. bench at latent 200 and 1000 with --amp --compile: package vs the article's loop on the same GPU
#      (the ">= 10x" target), amp/compile variants and whether their loss stays within float32 noise;
#   5. if time is left: the whole experiment with --amp --compile.
set -u
cd "$(dirname "$0")/.."
OUT="${OUT:-build/gpu-check}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TORCHINDUCTOR_CACHE_DIR="${TORCHINDUCTOR_CACHE_DIR:-$OUT/inductor-cache}"  # shared by bench's workers
PY="${PYTHON:-python}"
BUDGET="${GPU_CHECK_BUDGET_S:-360}"
START=$(date +%s)
elapsed() { echo $(( $(date +%s) - START )); }
status=0

step() {  # step NAME LIMIT_S COMMAND...: run with a time limit, log to $OUT/NAME.log, remember failures
  local name=$1 limit=$2; shift 2
  echo "== [$(elapsed) s] $name (limit ${limit} s): $*"
  timeout --signal=INT --kill-after=15 "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log"
  echo "== $name: exit $rc after $(elapsed) s"
  [ $rc -eq 0 ] || status=1
}

{ nvidia-smi; "$PY" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, \
'cuda', torch.version.cuda, torch.cuda.get_device_name(0), 'bf16', torch.cuda.is_bf16_supported())"; } \
  > "$OUT/nvidia-smi.txt" 2>&1
cat "$OUT/nvidia-smi.txt"

step experiment-fp32 120 "$PY" -m convae_utils.tools.experiment --device cuda --json "$OUT/experiment-fp32.json"
step experiment-amp 120 "$PY" -m convae_utils.tools.experiment --device cuda --amp --json "$OUT/experiment-amp.json"
step bench 180 "$PY" -m convae_utils bench --device cuda --latent-dim 200,1000 --amp --compile \
  --repeats 2 --steps 50 --warmup 10 --json "$OUT/bench-cuda.json"
if [ $(( $(elapsed) + 120 )) -le "$BUDGET" ]; then
  step experiment-amp-compile 120 "$PY" -m convae_utils.tools.experiment --device cuda --amp --compile \
    --json "$OUT/experiment-amp-compile.json"
else
  echo "== skipped experiment-amp-compile: $(elapsed) s used of the ${BUDGET} s budget"
fi
echo "== done in $(elapsed) s; results in $OUT (exit $status)"
exit $status
