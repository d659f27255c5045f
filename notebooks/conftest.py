"""`pytest --nbmake notebooks`: run every notebook fast and offline.

Sets the smoke profile (stand-in data, a couple of epochs on a few hundred images) unless the caller
chose a profile, lets OpenMP's idle threads sleep instead of spin, and sends training runs to a
temporary folder so a test never reuses, or leaves behind, a run in the project's runs/. nbmake starts
each kernel from this process, so the kernels inherit these variables; tests/test_notebooks.py proves
the switch reaches them. The temporary runs folder (hundreds of MB after a full pass) is removed when
the session ends.
"""

import os
import shutil
import tempfile

os.environ.setdefault("CONVAE_PROFILE", "smoke")
os.environ.setdefault("MPLBACKEND", "Agg")
# OpenMP's idle threads spin while they wait for work (its default "active" policy); on a CPU shared with
# other jobs they hold the cores the working thread needs. Notebook 08's scoring cell took 15-46 s that way
# on a 2-core machine at load 4 and 1.4-2.1 s with PASSIVE, printing the same numbers (the same threads
# split the same work; only idle ones sleep): benchmarks/results/pca-best-codec-2core.txt. The OpenMP
# runtime reads it when torch loads, so it is set here, before any kernel starts.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_OWN_RUNS_DIR = None  # made here, so removed here; a folder the caller chose is theirs and kept
if not os.environ.get("CONVAE_RUNS_DIR"):
    _OWN_RUNS_DIR = os.environ["CONVAE_RUNS_DIR"] = tempfile.mkdtemp(prefix="convae-nbtest-runs-")


def pytest_sessionfinish(session, exitstatus):
    if _OWN_RUNS_DIR is not None:
        shutil.rmtree(_OWN_RUNS_DIR, ignore_errors=True)
