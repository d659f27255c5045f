"""argparse types shared by the command-line tools: one-line usage errors that say what was expected.

Options that set a number the package checks (``--latent-dim``, ``--batch-size``, ``--seed`` ...) are
checked while they are parsed, against the package's own limits (``settings.LIMITS``), so a value the
package would refuse is refused up front as a usage error that names the option, not the Python
parameter behind it.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from urllib.parse import urlsplit

from .settings import LIMITS, LR_RANGE, pick_device

EXIT_USAGE = 2  # argparse's exit status for a bad command line


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line: what is wrong and where to look; and an option is spelt out
    in full (no prefixes: ``--seed`` must not quietly mean ``--seeds``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class UsageError(ValueError):
    """A bad option value that only shows after parsing: a device this machine lacks, a file given as a
    folder, options that contradict each other. Raised before any work starts; the command line reports
    it as argparse reports a bad value (one line, exit status 2, a pointer to ``--help``)."""


def _range_text(minimum: float, maximum: float | None) -> str:
    return f">= {minimum:,}" if maximum is None else f"from {minimum:,} to {maximum:,}"


def whole_number(minimum: int = 1, maximum: int | None = None):
    """An argparse ``type``: a whole number in ``[minimum, maximum]``, else a one-line usage error."""
    def parse(text: str) -> int:
        try:
            value = int(text.replace("_", ""))
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected a number {_range_text(minimum, maximum)}, got {text.strip()}")
        return value

    parse.__name__ = f"whole number {_range_text(minimum, maximum)}"  # argparse names the type in some messages
    return parse


def setting(name: str):
    """An argparse ``type`` for the run setting ``name``: a whole number within ``settings.LIMITS[name]``."""
    return whole_number(*LIMITS[name])


def number(above: float = 0.0, at_most: float = float("inf")):
    """An argparse ``type``: a finite number > ``above`` and <= ``at_most``."""
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not (above < value <= at_most and value < float("inf")):
            upper = "" if at_most == float("inf") else f" and <= {at_most:g}"
            raise argparse.ArgumentTypeError(f"expected a number > {above:g}{upper}, got {text.strip()}")
        return value

    parse.__name__ = "number"
    return parse


positive_float = number(0.0)
learning_rate = number(*LR_RANGE)  # what RunSettings and training.fit accept


URL_SCHEMES = ("http", "https", "ftp", "file")  # what urllib, which downloads, can open


def url(text: str) -> str:
    """An argparse ``type``: a URL the download can open, else a one-line usage error (not a failed download)."""
    text = text.strip()
    parts = urlsplit(text)
    if parts.scheme.lower() not in URL_SCHEMES or not parts.path:
        hint = f"; did you mean https://{text}?" if "://" not in text and text else ""
        raise argparse.ArgumentTypeError(f"expected an http(s), ftp or file URL of cifar-10-python.tar.gz, "
                                         f"got {text!r}{hint}")
    return text


def latent_sizes(text: str) -> list[int]:
    """``200`` or ``25,50,200``: latent sizes, each named once, each one the model accepts."""
    parts = [part.strip() for part in text.split(",")]
    if not any(parts):
        raise argparse.ArgumentTypeError(f"expected latent sizes like 200 or 50,200,1000, got {text!r}")
    if "" in parts:
        raise argparse.ArgumentTypeError(f"expected latent sizes separated by single commas, like 50,200,1000, "
                                         f"got {text!r} (an empty item)")
    size = setting("latent_dim")
    sizes = [size(part) for part in parts]
    twice = sorted({s for s in sizes if sizes.count(s) > 1})
    if twice:
        raise argparse.ArgumentTypeError(f"latent size(s) {', '.join(map(str, twice))} named more than once in {text!r}")
    return sizes


def available_device(given: str):
    """The device ``--device`` names, if this machine has it, else a :class:`UsageError` in the option's terms."""
    try:
        return pick_device(given, option="--device")
    except ValueError as exc:
        raise UsageError(str(exc)) from None


# -- output paths: checked before any work, so a long run never ends in "[Errno 21] Is a directory" ----

def _read_only_file_system(folder: Path) -> bool:
    """Whether ``folder`` lies on a file system mounted read-only (``statvfs``; ``False`` where it is unknown)."""
    try:
        return bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (AttributeError, OSError):  # Windows has no statvfs
        return False


def cannot_write(path: Path) -> str | None:
    """Why nothing can be written at ``path`` (a file or folder, new or replaced), or ``None`` if it can.

    Folders above it that do not exist yet are fine (they are created): the nearest one that exists
    must be a folder this process may write into.
    """
    existing = path
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    if existing != path and not existing.is_dir():
        return f"{existing} is a file, not a folder"
    folder = existing if existing != path or path.is_dir() else path.parent
    if _read_only_file_system(folder):  # not a permission: chmod would not help, another folder would
        return f"{folder} is on a read-only file system"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write in {folder}"
    if path.is_file() and not os.access(path, os.W_OK):
        return f"{path} is read-only"
    return None


def output_file(option: str, given: str, *, example: str) -> Path:
    """The file an output option names, if it can be written, else a :class:`UsageError` that says why."""
    path = Path(given).expanduser()
    if path.is_dir():
        raise UsageError(f"{option} {given} is a folder, expected a file to write; name a file in it, "
                         f"e.g. {option} {shlex.quote(str(path / example))}")
    reason = cannot_write(path)
    if reason:
        raise UsageError(f"{option} {given} cannot be written: {reason}; choose another path")
    return path


def output_folder(option: str, path: Path, what: str, *, source: str | None = None,
                  error: type[ValueError] = UsageError, file_hint: str = "pass a folder (a new one is created)",
                  writable: bool = True) -> Path:
    """``path`` if it can be the output folder an option names (``what`` goes there), else ``error`` saying why.

    A file is always refused; ``writable`` also refuses a place this process cannot write.

    ``source`` is how the message names where the path came from (default: the option itself; e.g.
    "the default of --runs-dir ($CONVAE_RUNS_DIR ...)" when it came from the environment).
    """
    source = source or option
    if path.exists() and not path.is_dir():
        raise error(f"{source} must be a folder ({what}), got the file {path}; {file_hint}")
    reason = cannot_write(path) if writable else None
    if reason:
        raise error(f"{source} {path} cannot be written: {reason}; choose a writable folder")
    return path
