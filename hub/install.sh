#!/usr/bin/env bash
# Put the series on a machine that serves participants: the package into the participants' Python, the
# pretrained runs, the data and the notebooks into one shared folder that nobody writes.
# The single-user image's recipe (hub/k8s/Dockerfile) runs it at build time; hub/tljh/install.sh runs it
# on a The Littlest JupyterHub server; tests/test_hub_setup.py runs it in a fresh venv on a tiny case.
#
#   hub/install.sh --python PY --share DIR --package SPEC [--runs DIR] [--data DIR] [--notebooks DIR]
#                  [--pip-args "ARGS"] [--dry-run]
#
#   --python     the Python the participants' kernels run (a venv's, TLJH's /opt/tljh/user/bin/python)
#   --share      the shared folder to fill (e.g. /srv/convae): runs/, data/, notebooks/, convae.env
#   --package    what pip installs: the package's wheel with its extras ("dist/convae_utils-0.2.0-py3-none-any.whl[hub]")
#   --runs       finished runs to share (a runs folder: `python -m convae_utils series --profile workshop` fills one)
#   --data       a data folder to share (CIFAR-10 extracted; photos10 and shapes10 need none)
#   --notebooks  the notebooks each participant gets a copy of (default: notebooks/ beside this folder)
#   --pip-args   more arguments for pip (e.g. "--no-deps", "--find-links wheels/")
#   --dry-run    print each step's command instead of running it
#
# Afterwards every file in the share is read-only for everyone (and owned by root when run as root);
# the last step opens every shared checkpoint with the participants' Python and fails on an unfinished run.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
python="" share="" package="" runs="" data="" notebooks="$here/../notebooks" pip_args="" dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --python) python="$2"; shift 2 ;;
    --share) share="$2"; shift 2 ;;
    --package) package="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --notebooks) notebooks="$2"; shift 2 ;;
    --pip-args) pip_args="$2"; shift 2 ;;
    --dry-run) dry_run=1; shift ;;
    -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
for need in python share package; do
  if [ -z "${!need}" ]; then echo "install.sh: --$need is required (see --help)" >&2; exit 2; fi
done
for folder in "$runs" "$data" "$notebooks"; do
  if [ -n "$folder" ] && [ ! -d "$folder" ]; then echo "install.sh: no folder $folder" >&2; exit 2; fi
done

step() {  # print a step, then run it unless --dry-run
  echo "+ $*"
  if [ "$dry_run" = 0 ]; then "$@"; fi
}

# 1. the package (and with its extras JupyterLab, JupyterHub's single-user server) for the participants
# shellcheck disable=SC2086  # pip_args is a list of words
step "$python" -m pip install --no-cache-dir $pip_args "$package"

# 2. the shared folder: runs, data and notebooks copied in
step mkdir -p "$share/runs" "$share/data" "$share/notebooks"
if [ -n "$runs" ]; then step cp -R "$runs/." "$share/runs/"; fi
if [ -n "$data" ]; then step cp -R "$data/." "$share/data/"; fi
step cp -R "$notebooks/." "$share/notebooks/"
step rm -f "$share/notebooks/conftest.py"

# 3. the variables the package reads (convae_utils/settings.py), for a hub's config to pass on
env_file="$share/convae.env"
echo "+ write $env_file"
if [ "$dry_run" = 0 ]; then
  printf '%s\n' "CONVAE_RUNS_DIR=$share/runs" "CONVAE_DATA_DIR=$share/data" \
    "CONVAE_PROFILE=${CONVAE_PROFILE:-workshop}" "CONVAE_DATASET=${CONVAE_DATASET:-photos10}" > "$env_file"
fi

# 4. read-only for everyone: participants share it, nobody writes into it
if [ "$(id -u)" = 0 ]; then step chown -R root:root "$share"; fi
step chmod -R a-w,a+rX "$share"

# 5. every shared run's checkpoint opens with the participants' Python, from the read-only folder, finished
check='
import sys
from pathlib import Path
from convae_utils.checkpoints import load_checkpoint
found = sorted(Path(sys.argv[1]).glob("*/checkpoint.pt"))
unfinished = [str(path.parent) for path in found if load_checkpoint(path)["step"] != 0]
if unfinished:
    sys.exit(f"unfinished runs in the share (participants would train them): {unfinished}")
print(f"{len(found)} finished runs open from {sys.argv[1]}")
'
step "$python" -c "$check" "$share/runs"
