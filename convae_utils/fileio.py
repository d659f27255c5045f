"""Files that are never half-written, and folders that one process at a time may write.

Every file the package saves (checkpoints, JSON, figures) goes through :func:`atomic_write`: the
bytes go to a temporary file beside the target, which is then renamed over it. A reader never sees
half a file, and an interrupted write leaves the previous version in place. :func:`folder_lock`
keeps two processes from downloading into, or training in, the same folder at once.
"""

from __future__ import annotations

import json
import os
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Callable, Iterator


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], None], *, durable: bool = False) -> Path:
    """Call ``write(handle)`` on a temporary file beside ``path``, then rename it to ``path``.

    Creates the parent folder. ``durable=True`` also fsyncs before the rename (checkpoints: the
    rename must not reach the disk before the data does). Returns ``path``; on any exception,
    Ctrl-C included, the temporary file is removed and the old ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as handle:  # open() honours the umask, unlike mkstemp's 0600
            write(handle)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


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
