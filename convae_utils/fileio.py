"""Files that are never half-written, and folders that one process at a time may write.

Every file the package saves (checkpoints, JSON, figures) goes through :func:`atomic_write`: the
bytes go to a temporary file beside the target, which is then renamed over it. A reader never sees
half a file, and an interrupted write leaves the previous version in place. A full disk is said as
such (:class:`~convae_utils.errors.DiskFullError`), whatever library was writing. :func:`folder_lock`
keeps two processes from downloading into, or training in, the same folder at once.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator

from .errors import DiskFullError

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)  # no space left on the device; the user's disk quota is used up


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, durable: bool = False) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it to ``path``.

    Creates the parent folder. ``durable=True`` also fsyncs before the rename (checkpoints: the
    rename must not reach the disk before the data does). Returns ``path``; on any exception,
    Ctrl-C included, the temporary file is removed and the old ``path`` is untouched.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "xb") as handle:  # open() honours the umask, unlike mkstemp's 0600
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except Exception as exc:
        if not disk_full(exc):
            raise
        raise DiskFullError(_disk_full_message(path, _size(temporary)), path.parent, _size(path)) from exc
    finally:
        temporary.unlink(missing_ok=True)
    return path


def disk_full(exc: BaseException) -> bool:
    """Whether "No space left on device" (or "Disk quota exceeded") is anywhere in ``exc``'s chain.

    Libraries that write files wrap the OSError in their own: torch.save's is ``RuntimeError: [enforce
    fail at inline_container.cc:...] unexpected pos ...``, with the OSError only as its cause or context.
    """
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
            return True
        if any(os.strerror(code) in str(exc) for code in _DISK_FULL):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


def _disk_full_message(path: Path, written: int | None) -> str:
    """What happened, what the file needs (its previous version's size, when there is one), the way out."""
    try:
        free = f"{shutil.disk_usage(path.parent).free / 1e6:,.1f} MB free there now"
    except OSError:
        free = "free space unknown"
    previous = _size(path)
    if previous is not None:
        need = f"its previous version, kept unchanged, is {previous / 1e6:,.1f} MB"
    else:
        need = "nothing was there before"
    stopped = f" after {written / 1e6:,.1f} MB" if written else ""
    return (f"the disk holding {path.parent} is full: writing {path.name} stopped{stopped} ({need}; {free}). "
            f"Free some space on that disk, or choose a folder on another disk (for runs: --runs-dir or "
            f"$CONVAE_RUNS_DIR), then run the same command again; what was saved before is kept")


def write_json(path: str | os.PathLike, obj) -> Path:
    """Write ``obj`` as indented JSON, atomically. Values JSON cannot hold are refused (TypeError)."""
    text = json.dumps(obj, indent=2)  # fails before anything is written
    return atomic_write(path, lambda handle: handle.write(text.encode()))


@contextmanager
def folder_lock(folder: str | os.PathLike, name: str, *, timeout: float, busy: Callable[[Path], Exception],
                unwritable: Callable[[Path, OSError], Exception]) -> Iterator[None]:
    """Hold ``<folder>/<name>`` (a ``filelock.FileLock``) for the ``with`` block.

    ``timeout`` is in seconds (0: fail at once if another process holds it). The lock dies with its
    process, so a crash never leaves a folder locked. ``busy(lock_path)`` and
    ``unwritable(folder, error)`` build the exceptions raised when the lock is held elsewhere or
    the folder cannot be written; each caller words them for its own folder.
    """
    from filelock import FileLock, Timeout

    folder = Path(folder)
    lock_path = folder / name
    try:
        folder.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path), timeout=timeout)
        lock.acquire()
    except Timeout as exc:
        raise busy(lock_path) from exc
    except OSError as exc:
        raise unwritable(folder, exc) from exc
    try:
        yield
    finally:
        lock.release()
