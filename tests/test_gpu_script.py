"""benchmarks/gpu_check.sh runs only where a GPU is lent, so nothing else would notice a command in it going stale."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _commands() -> list[list[str]]:
    """Every `"$PY" -m MODULE WORDS...` of the script, up to its first option or variable."""
    found = []
    for match in re.finditer(r'"\$PY" -m ([\w.]+)((?: [\w.]+)*)', SCRIPT.read_text()):
        found.append([match.group(1), *match.group(2).split()])
    return found


def test_the_script_parses_and_names_commands():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)
    assert ["tools", "bench"] in _commands() and ["pytest"] in _commands()


@pytest.mark.parametrize("command", [c for c in _commands() if c[0] != "pytest"], ids=" ".join)
def test_every_command_of_the_gpu_script_exists(command):
    done = subprocess.run([sys.executable, "-m", *command, "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, f"`python -m {' '.join(command)} --help` failed:\n{done.stderr[-2000:]}"
