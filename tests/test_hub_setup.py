"""The hub set-up's files (hub/): what can be checked without a registry, a server or a cluster.

- hub/install.sh (the single-user image's one RUN, and TLJH's first step) runs for real on a tiny case:
  a fresh venv, the package's wheel, one finished smoke run; the share it fills is read-only and its
  runs open with the venv's Python.
- hub/k8s/values.yaml parses and names only keys the Zero to JupyterHub chart documents
  (hub/k8s/chart-keys.txt, from the chart's values.schema.yaml); its resource guarantees are the
  measured ones (hub/results/), as are the TLJH script's limits.
- the CONVAE_* variables the image, the chart values and the scripts set are those settings.py reads.
"""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from convae_utils import settings

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "hub"
VALUES = yaml.safe_load((HUB / "k8s" / "values.yaml").read_text())
READ_VARIABLES = {settings.RUNS_DIR_ENV, settings.DATA_DIR_ENV, settings.PROFILE_ENV, settings.DATASET_ENV}


# -- values.yaml -------------------------------------------------------------------------------------

def _documented() -> list[str]:
    return [line for line in (HUB / "k8s" / "chart-keys.txt").read_text().splitlines()
            if line and not line.startswith("#")]


def _key_matches(documented: str, path: list[str]) -> bool:
    """Whether the documented path (parts, ``/REGEX/`` parts, a final ``*`` for free keys) covers ``path``."""
    parts = documented.split(".") if "/" not in documented else re.findall(r"/[^/]*/|[^.]+", documented)
    for i, part in enumerate(parts):
        if part == "*" and i == len(parts) - 1:
            return len(path) >= i
        if i >= len(path):
            return False
        if part.startswith("/") and part.endswith("/"):
            if not re.search(part[1:-1], path[i]):
                return False
        elif part != path[i]:
            return False
    return len(parts) == len(path)


def _leaf_paths(node, prefix=()) -> list[list[str]]:
    if isinstance(node, dict) and node:
        return [p for key, child in node.items() for p in _leaf_paths(child, (*prefix, str(key)))]
    return [list(prefix)]


def test_the_key_matcher_tells_documented_keys_from_others():
    assert _key_matches("singleuser.cpu.limit", ["singleuser", "cpu", "limit"])
    assert not _key_matches("singleuser.cpu.limit", ["singleuser", "cpu", "limits"])
    assert _key_matches("singleuser.extraEnv.*", ["singleuser", "extraEnv", "ANYTHING"])
    assert _key_matches("hub.config./^[A-Z].*$/.*", ["hub", "config", "DummyAuthenticator", "password"])
    assert not _key_matches("hub.config./^[A-Z].*$/.*", ["hub", "config", "dummyAuthenticator", "password"])


def test_values_name_only_keys_the_chart_documents():
    documented = _documented()
    assert len(documented) > 300  # the whole schema, not a hand-picked list
    unknown = [".".join(path) for path in _leaf_paths(VALUES)
               if not any(_key_matches(doc, path) for doc in documented)]
    assert unknown == [], f"keys the chart does not document: {unknown}"
    assert not _key_matches("singleuser.cpu.guarantee", ["singleuser", "cpus", "guarantee"])


def test_values_cull_idle_servers_and_pass_on_what_the_package_reads():
    assert VALUES["cull"]["enabled"] is True and 0 < VALUES["cull"]["timeout"] <= 4 * 3600
    env = VALUES["singleuser"]["extraEnv"]
    assert env[settings.PROFILE_ENV] in settings.PRESETS
    assert env[settings.DATASET_ENV] in settings.DATASETS


def _dockerfile_env() -> dict:
    text = (HUB / "k8s" / "Dockerfile").read_text()
    block = re.search(r"^ENV (.*?)(?=^\S)", text, re.S | re.M).group(1)
    return dict(re.findall(r"(\w+)=(\S+)", block))


def test_the_image_sets_the_variables_settings_reads_and_shares_runs_read_only():
    env = _dockerfile_env()
    assert READ_VARIABLES <= set(env), f"missing: {READ_VARIABLES - set(env)}"
    assert env[settings.RUNS_DIR_ENV] == "/srv/convae/runs" and env[settings.DATA_DIR_ENV] == "/srv/convae/data"
    text = (HUB / "k8s" / "Dockerfile").read_text()
    assert "install.sh --python python --share /srv/convae" in text
    assert re.search(r"^USER 1000$", text, re.M)  # participants are not root: the share stays read-only


# -- the measured resources --------------------------------------------------------------------------

def _measured() -> dict:
    """The largest measured participant (server + kernel) in hub/results, in MB, and its file."""
    best = {"peak_mb": 0.0}
    for path in sorted((HUB / "results").glob("*.json")):
        data = json.loads(path.read_text())
        for entry in data["rounds"]:
            for name, rows in entry["participants"].items():
                for row in rows:
                    total = row["peak_mb"] + entry["server_peak_mb"].get(name, 0)
                    if total > best["peak_mb"]:
                        best = {"peak_mb": total, "file": path.name, "profile": data["profile"]}
    return best


def _bytes(quantity: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)([KMG]i?|)", str(quantity)).groups()
    return float(number) * {"": 1, "K": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}[unit]


def test_memory_guarantee_covers_the_measured_peak_of_a_participant():
    measured = _measured()
    assert measured["peak_mb"] > 0, "no measurement in hub/results (python hub/measure.py --out hub/results/...)"
    memory = VALUES["singleuser"]["memory"]
    guarantee, limit = _bytes(memory["guarantee"]), _bytes(memory["limit"])
    assert guarantee >= measured["peak_mb"] * 2**20, (memory, measured)
    assert limit >= guarantee
    assert guarantee <= 2 * measured["peak_mb"] * 2**20, "the guarantee is far above the measured peak"


def test_tljh_limits_are_the_chart_values_limits():
    text = (HUB / "tljh" / "install.sh").read_text()
    memory = re.search(r"\bmemory=(\S+)", text).group(1)
    cpu = re.search(r"\bcpu=(\S+)", text).group(1)
    assert _bytes(memory.replace("G", "Gi")) == _bytes(VALUES["singleuser"]["memory"]["limit"])  # systemd: G is GiB
    assert float(cpu) == float(VALUES["singleuser"]["cpu"]["limit"])


# -- install.sh --------------------------------------------------------------------------------------

def test_install_script_dry_run_prints_the_steps_and_changes_nothing(tmp_path):
    share = tmp_path / "share"
    done = subprocess.run(["bash", str(HUB / "install.sh"), "--python", "python3", "--share", str(share),
                           "--package", "convae-utils[hub]", "--dry-run"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "+ python3 -m pip install --no-cache-dir convae-utils[hub]" in done.stdout
    assert f"chmod -R a-w,a+rX {share}" in done.stdout
    assert not share.exists()


def test_install_script_refuses_a_missing_option_and_a_missing_folder(tmp_path):
    missing = subprocess.run(["bash", str(HUB / "install.sh"), "--share", str(tmp_path)], capture_output=True, text=True)
    assert missing.returncode == 2 and "--python is required" in missing.stderr
    nofolder = subprocess.run(["bash", str(HUB / "install.sh"), "--python", "python3", "--share", str(tmp_path),
                               "--package", "x", "--runs", str(tmp_path / "nope")], capture_output=True, text=True)
    assert nofolder.returncode == 2 and "no folder" in nofolder.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """hub/install.sh run for real: a fresh venv (its dependencies seen from this environment), the
    package's wheel, one finished smoke run, into a new share."""
    tmp = tmp_path_factory.mktemp("install")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "1"
    made = subprocess.run([sys.executable, "-m", "convae_utils", "train", "--profile", "smoke", "--dataset",
                           "shapes10", "--latent-dim", "16", "--no-progress", "--runs-dir", str(tmp / "runs")],
                          cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    wheel = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                            "-w", str(tmp / "dist"), str(ROOT)], capture_output=True, text=True)
    assert wheel.returncode == 0, wheel.stderr
    [built] = (tmp / "dist").glob("convae_utils-*.whl")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp / "venv")], check=True)
    venv_python = tmp / "venv" / "bin" / "python"
    site = subprocess.run([str(venv_python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # the dependencies (torch, ...) from this environment, after the venv's own packages: the wheel wins
    Path(site, "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    share = tmp / "share"
    done = subprocess.run(["bash", str(HUB / "install.sh"), "--python", str(venv_python), "--share", str(share),
                           "--package", str(built), "--pip-args", "--no-deps", "--runs", str(tmp / "runs")],
                          cwd=tmp, env=env, capture_output=True, text=True, timeout=600)
    yield done, venv_python, share, env
    for folder, _, _ in os.walk(share):
        os.chmod(folder, 0o755)


def test_install_script_fills_a_read_only_share_whose_runs_open(installed):
    done, venv_python, share, env = installed
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"1 finished runs open from {share}/runs" in done.stdout
    where = subprocess.run([str(venv_python), "-c", "import convae_utils; print(convae_utils.__file__)"],
                           cwd=share, env=env, capture_output=True, text=True, check=True).stdout
    assert str(ROOT) not in where and "venv" in where  # the wheel in the venv, not this checkout
    written = [p for p in share.rglob("*") if p.stat().st_mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH)]
    assert written == [], f"writable in the share: {written[:5]}"
    assert (share / "notebooks" / "03_training.ipynb").exists() and not (share / "notebooks" / "conftest.py").exists()
    variables = dict(line.split("=", 1) for line in (share / "convae.env").read_text().splitlines())
    assert set(variables) == READ_VARIABLES
    assert variables[settings.RUNS_DIR_ENV] == f"{share}/runs"
    assert variables[settings.PROFILE_ENV] in settings.PRESETS and variables[settings.DATASET_ENV] in settings.DATASETS
