"""The breadcrumb line at the top of every notebook, written by a command instead of by hand.

Each notebook names itself once, in bold, in its own breadcrumb (``convae · ... **03 Training** ...``).
``python -m tools sync`` (part of ``make sync``) collects those names from every
``notebooks/NN_*.py`` and rewrites each breadcrumb to list the whole series, in order, with links to the
others and the notebook itself in bold. A new notebook starts with the line ``convae · **08 Winning**``;
the command then adds it to every other breadcrumb. ``--check`` only reports notebooks whose
breadcrumb is out of date (exit 1), for tests and CI.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

PREFIX = "# convae · "  # the breadcrumb as the first line of the first markdown cell of a percent-format .py
_OWN = re.compile(r"\*\*(\d\d) ([^*]+)\*\*")


def notebook_sources(folder: str | Path) -> list[Path]:
    """The series' notebooks: ``NN_name.py`` files in ``folder``, in order."""
    return sorted(Path(folder).glob("[0-9][0-9]_*.py"))


def _breadcrumb_line(text: str, path: Path) -> tuple[int, str]:
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line.startswith(PREFIX):
            return index, line
    raise ValueError(f"{path} has no breadcrumb line (a line starting {PREFIX!r}); start its first markdown cell "
                     f"with '{PREFIX.strip()} **{path.name[:2]} Title**'")


def titles(folder: str | Path) -> dict[str, str]:
    """``{"03_training": "03 Training", ...}``: each notebook's name for itself, from its own breadcrumb."""
    found = {}
    for path in notebook_sources(folder):
        _, line = _breadcrumb_line(path.read_text(encoding="utf-8"), path)
        own = _OWN.search(line)
        if own is None or own.group(1) != path.name[:2]:
            raise ValueError(f"the breadcrumb of {path} does not name the notebook itself in bold "
                             f"('**{path.name[:2]} Title**'): {line!r}")
        found[path.stem] = f"{own.group(1)} {own.group(2).strip()}"
    return found


def breadcrumb(stem: str, names: dict[str, str]) -> str:
    """The breadcrumb of notebook ``stem`` in a series named by ``names`` (see :func:`titles`)."""
    parts = [f"**{title}**" if other == stem else f"[{title}]({other}.ipynb)" for other, title in names.items()]
    return PREFIX + " → ".join(parts)


def sync(folder: str | Path, *, check: bool = False) -> list[Path]:
    """Rewrite every out-of-date breadcrumb in ``folder`` (``check``: only list them); returns those paths."""
    names = titles(folder)
    stale = []
    for path in notebook_sources(folder):
        text = path.read_text(encoding="utf-8")
        index, line = _breadcrumb_line(text, path)
        wanted = breadcrumb(path.stem, names)
        if line != wanted:
            stale.append(path)
            if not check:
                lines = text.splitlines(keepends=True)
                lines[index] = wanted + ("\n" if lines[index].endswith("\n") else "")
                path.write_text("".join(lines), encoding="utf-8")
    return stale


def run(args) -> int:
    """``python -m tools sync [FOLDER] [--check]``: rewrite (or, with ``--check``, list) out-of-date headers."""
    stale = sync(args.folder, check=args.check)
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path}")
    if args.check and stale:
        print("run `make sync` (python -m tools sync, then jupytext --sync)", file=sys.stderr)
        return 1
    return 0
