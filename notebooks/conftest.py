"""`pytest --nbmake notebooks`: run every notebook fast and offline.

Sets the smoke profile (stand-in data, a couple of epochs on a few hundred images) unless the caller
chose a profile, and sends training runs to a temporary folder so a test never reuses, or leaves
behind, a run in the project's runs/. nbmake starts each kernel from this process, so the kernels
inherit these variables; tests/test_notebooks.py proves the switch reaches them.
"""

import os
import tempfile

os.environ.setdefault("CONVAE_PROFILE", "smoke")
os.environ.setdefault("CONVAE_RUNS_DIR", tempfile.mkdtemp(prefix="convae-nbtest-runs-"))
os.environ.setdefault("MPLBACKEND", "Agg")
