"""Each code cell's wall time in one executed notebook: ``python benchmarks/cell_times.py notebooks/08_winning.ipynb``.

Runs the notebook in a fresh kernel (the profile, dataset and runs folder come from the environment:
CONVAE_PROFILE, CONVAE_DATASET, CONVAE_RUNS_DIR) and prints the total and each code cell's seconds,
read from nbclient's timing metadata. An optional second argument saves the executed notebook.
Used to measure notebook 08's scoring cell before and after it was sped up (issue 28).
"""

import datetime
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def _when(stamp: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__.splitlines()[0], file=sys.stderr)
        return 2
    path = Path(argv[0])
    notebook = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(notebook, kernel_name="python3", timeout=1800, record_timing=True,
                   resources={"metadata": {"path": str(path.resolve().parent)}}).execute()
    print(f"total {time.perf_counter() - started:.1f} s")
    for index, cell in enumerate(c for c in notebook.cells if c.cell_type == "code"):
        timing = cell.metadata.get("execution", {})
        if "iopub.execute_input" in timing and "shell.execute_reply" in timing:
            seconds = (_when(timing["shell.execute_reply"]) - _when(timing["iopub.execute_input"])).total_seconds()
            first = cell.source.splitlines()[0][:90] if cell.source else ""
            print(f"{index:2d} {seconds:7.1f} s  {first}")
    if len(argv) > 1:
        nbformat.write(notebook, argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
