#!/usr/bin/env bash
# The series on one machine with The Littlest JupyterHub (TLJH): run as root on the server after TLJH's
# own installer (its bootstrap script, which needs the internet and a fresh Ubuntu: not run here).
#
#   sudo hub/tljh/install.sh --package "convae_utils-0.2.0-py3-none-any.whl[hub]" --runs runs/ [--data data/]
#                            [--memory 5G] [--cpu 1] [--cull-timeout 3600] [--dry-run]
#
# 1. hub/install.sh fills /srv/convae (runs, data, notebooks; read-only for everyone) and installs the
#    package into TLJH's participants' environment (/opt/tljh/user);
# 2. a JupyterHub config snippet passes CONVAE_* on to every participant; the notebooks go into /etc/skel,
#    so each participant's new home starts with a copy of their own (~/convae/notebooks; participants
#    who logged in before get none: copy it for them, or hand out an nbgitpuller link instead);
# 3. tljh-config sets each participant's memory and CPU limits and the idle culler, then reloads the hub.
# The limits' defaults are the measured ones (README, "Running a workshop"; the same as hub/k8s/values.yaml's,
# in systemd's units: 5G is 5 GiB); --dry-run prints the steps.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
share=/srv/convae tljh=/opt/tljh package="" runs="" data="" memory=5G cpu=1 cull=3600 dry_run=""
while [ $# -gt 0 ]; do
  case "$1" in
    --package) package="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --data) data="$2"; shift 2 ;;
    --share) share="$2"; shift 2 ;;
    --tljh) tljh="$2"; shift 2 ;;
    --memory) memory="$2"; shift 2 ;;
    --cpu) cpu="$2"; shift 2 ;;
    --cull-timeout) cull="$2"; shift 2 ;;
    --dry-run) dry_run="--dry-run"; shift ;;
    -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "tljh/install.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
if [ -z "$package" ]; then echo "tljh/install.sh: --package is required (see --help)" >&2; exit 2; fi

step() { echo "+ $*"; if [ -z "$dry_run" ]; then "$@"; fi; }

"$here/../install.sh" --python "$tljh/user/bin/python" --share "$share" --package "$package" \
  ${runs:+--runs "$runs"} ${data:+--data "$data"} $dry_run

snippet="$tljh/config/jupyterhub_config.d/convae.py"
echo "+ write $snippet"
if [ -z "$dry_run" ]; then
  mkdir -p "$(dirname "$snippet")"
  cat > "$snippet" <<PY
# Written by convae's hub/tljh/install.sh: the series' variables for every participant.
c.Spawner.environment.update(dict(line.strip().split("=", 1) for line in open("$share/convae.env") if "=" in line))
c.Spawner.environment["OMP_NUM_THREADS"] = "${cpu%%.*}"  # PyTorch's threads: as many as the CPU limit
PY
fi

# TLJH makes a system user per participant with useradd, which copies /etc/skel into the new home
step mkdir -p /etc/skel/convae
step cp -R "$share/notebooks" /etc/skel/convae/notebooks

step "$tljh/hub/bin/tljh-config" set limits.memory "$memory"
step "$tljh/hub/bin/tljh-config" set limits.cpu "$cpu"
step "$tljh/hub/bin/tljh-config" set services.cull.enabled true
step "$tljh/hub/bin/tljh-config" set services.cull.timeout "$cull"
step "$tljh/hub/bin/tljh-config" reload
