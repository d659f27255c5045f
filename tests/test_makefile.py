"""The Makefile's help and its study error list every study that tools/studies' STUDIES holds."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tools.studies import STUDIES

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")


def make(*args: str) -> subprocess.CompletedProcess:
    """``make ARGS`` at the root, with this Python reading STUDIES."""
    return subprocess.run(["make", "--no-print-directory", *args, f"PYTHON={sys.executable}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def test_make_help_lists_every_study():
    help_text = make("help").stdout
    (line,) = [line for line in help_text.splitlines() if "make study" in line]
    assert f"STUDY={'|'.join(STUDIES)} " in line  # study 10 was missing


def test_make_study_without_a_name_lists_every_study():
    result = make("-n", "study", "STUDY=")  # -n: make study would install the project first
    assert result.returncode != 0
    assert f"(one of {' '.join(STUDIES)})" in result.stderr


def test_the_install_resumes_a_dropped_download_instead_of_failing():
    """A dropped connection mid-wheel (a 54 MB Playwright wheel, CI, 2026-12-06) failed the whole install."""
    steps = make("-n", "-B", "install", "VENV=/nonexistent-venv").stdout.splitlines()
    installs = [line for line in steps if " -m pip install " in line and "--upgrade pip" not in line]
    assert installs and all("--resume-retries 20" in line and "--retries 20" in line for line in installs)
