"""The series-wide facts in each notebook's header, written by one command (``make sync``) from one place each.

Two facts used to be typed into every notebook: the breadcrumb listing the whole series (adding notebook 08
rewrote sixteen files) and the measured run times (re-measuring touched twenty). Now:

- **The breadcrumb names the neighbours only**: ``convae · [← 02 Architecture](02_architecture.ipynb) ·
  **03 Training** · [04 Bottleneck →](04_bottleneck.ipynb) · [all notebooks](../README.md#the-series)``.
  Each notebook names itself once, in bold, in its own breadcrumb; the command writes the links from its
  neighbours' names. A new notebook starts with the line ``convae · **10 Title**``; the command then
  writes its breadcrumb and changes one other notebook: the one before it (its "next" link).
- **Measured run times live in one file**, ``notebooks/run_times.json`` (seconds per notebook, per profile,
  with how they were measured). The command writes them into each header's ``smoke``/``workshop`` row and
  into the README's series table (the whole series' total too). ``--times build/timings.json`` first takes
  in what ``python -m convae_utils series`` measured (it writes that file), for the profile it ran.

``python -m tools sync [FOLDER] [--times FILE] [--check]``; ``--check`` only lists what is out of date
(exit 1), for the tests.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

PREFIX = "# convae · "  # the breadcrumb as the first line of the first markdown cell of a percent-format .py
SERIES_LINK = "[all notebooks](../README.md#the-series)"
RUN_TIMES = "run_times.json"  # beside the notebooks
_OWN = re.compile(r"\*\*(\d\d) ([^*]+)\*\*")
# A header's row of one profile: | `workshop` | what it runs | 3.4 min (measured by ...) |  (or "seconds")
_ROW = re.compile(r"^(# \| `(?P<profile>\w+)` \| [^|]+ \| )(?P<time>[^|]+?)( \|)$", re.MULTILINE)
# The README's series table: | [03 Training](notebooks/03_training.ipynb) | topic | 3.4 min |
_README_ROW = re.compile(r"^(\| \[\d\d [^\]]+\]\(notebooks/(?P<stem>[^)]+)\.ipynb\) \| .+ \| )(?P<time>[^|]+?)( \|)$",
                         re.MULTILINE)
_README_TOTAL = re.compile(r"^(\| \*\*whole series\*\* \| \| \*\*)(?P<time>[^*]+)(\*\* \|)$", re.MULTILINE)


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
    """The breadcrumb of notebook ``stem`` in a series named by ``names`` (see :func:`titles`): its neighbours."""
    order = list(names)
    at = order.index(stem)
    parts = [f"**{names[stem]}**"]
    if at > 0:
        parts.insert(0, f"[← {names[order[at - 1]]}]({order[at - 1]}.ipynb)")
    if at + 1 < len(order):
        parts.append(f"[{names[order[at + 1]]} →]({order[at + 1]}.ipynb)")
    return PREFIX + " · ".join(parts + [SERIES_LINK])


# -- measured run times ---------------------------------------------------------------------------------

def read_run_times(folder: str | Path) -> dict:
    """``notebooks/run_times.json``: ``{profile: {"measured_by": text, "seconds": {stem: s}}}`` (empty if none)."""
    path = Path(folder) / RUN_TIMES
    if not path.is_file():
        return {}
    return {k: v for k, v in json.loads(path.read_text(encoding="utf-8")).items() if not k.startswith("_")}


def take_timings(folder: str | Path, timings_file: str | Path) -> str:
    """Put what ``series`` measured (its ``timings.json``) into ``run_times.json``, for the profile it ran; the profile."""
    measured = json.loads(Path(timings_file).read_text(encoding="utf-8"))
    profile, seconds = measured.get("profile"), measured.get("seconds")
    if not profile or not isinstance(seconds, dict) or not seconds:
        raise ValueError(f"{timings_file} is not a timings file of `python -m convae_utils series` "
                         "(it has no profile and seconds per notebook)")
    path = Path(folder) / RUN_TIMES
    whole = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    entry = whole.setdefault(profile, {"measured_by": f"`python -m convae_utils series`, {measured.get('dataset')}",
                                       "seconds": {}})
    entry["seconds"].update({stem: round(float(s), 1) for stem, s in seconds.items()})
    path.write_text(json.dumps(whole, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return profile


def as_time(seconds: float) -> str:
    """13.1 -> "13 s", 205.2 -> "3.4 min": how the headers and the README say a run time."""
    return f"{seconds:.0f} s" if seconds < 59.5 else f"{seconds / 60:.1f} min"


def _header_times(text: str, stem: str, run_times: dict) -> str:
    def row(match: re.Match) -> str:
        entry = run_times.get(match.group("profile"))
        if not entry or stem not in entry["seconds"]:
            return match.group(0)
        time = f"{as_time(entry['seconds'][stem])} (measured by {entry['measured_by']})"
        return match.group(1) + time + match.group(4)

    header_end = text.find("\n# %%", text.find(PREFIX))  # the first markdown cell only
    header_end = len(text) if header_end < 0 else header_end
    return _ROW.sub(row, text[:header_end]) + text[header_end:]


def readme_with_times(readme: str, run_times: dict, stems: list[str]) -> str:
    """The README with its series table's times (the workshop profile's) and their total written from ``run_times``."""
    seconds = run_times.get("workshop", {}).get("seconds", {})
    readme = _README_ROW.sub(lambda m: m.group(1) + as_time(seconds[m.group("stem")]) + m.group(4)
                             if m.group("stem") in seconds else m.group(0), readme)
    if stems and all(stem in seconds for stem in stems):
        total = sum(seconds[stem] for stem in stems)
        readme = _README_TOTAL.sub(lambda m: m.group(1) + as_time(total) + m.group(3), readme)
    return readme


# -- the command ------------------------------------------------------------------------------------------

def sync(folder: str | Path, *, check: bool = False) -> list[Path]:
    """Rewrite every out-of-date header in ``folder`` and the README beside it (``check``: only list them)."""
    folder = Path(folder)
    names = titles(folder)
    run_times = read_run_times(folder)
    stale = []
    for path in notebook_sources(folder):
        text = path.read_text(encoding="utf-8")
        index, line = _breadcrumb_line(text, path)
        lines = text.splitlines(keepends=True)
        lines[index] = breadcrumb(path.stem, names) + ("\n" if lines[index].endswith("\n") else "")
        wanted = _header_times("".join(lines), path.stem, run_times)
        if wanted != text:
            stale.append(path)
            if not check:
                path.write_text(wanted, encoding="utf-8")
    readme = folder.parent / "README.md"
    if readme.is_file() and run_times:
        text = readme.read_text(encoding="utf-8")
        wanted = readme_with_times(text, run_times, list(names))
        if wanted != text:
            stale.append(readme)
            if not check:
                readme.write_text(wanted, encoding="utf-8")
    return stale


def run(args) -> int:
    """``python -m tools sync [FOLDER] [--times FILE] [--check]``: rewrite (or list) out-of-date headers."""
    if getattr(args, "times", None):
        profile = take_timings(args.folder, args.times)
        print(f"took the {profile} profile's times from {args.times} into {Path(args.folder) / RUN_TIMES}")
    stale = sync(args.folder, check=args.check)
    for path in stale:
        print(f"{'out of date' if args.check else 'updated'}: {path}")
    if args.check and stale:
        print("run `make sync` (python -m tools sync, then jupytext --sync)", file=sys.stderr)
        return 1
    return 0
