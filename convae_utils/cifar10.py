"""CIFAR-10 on disk: a bounded download, verified by md5, extracted and read by torchvision.

Introduced in notebook 01 (data). CIFAR-10 comes through ``torchvision.datasets.CIFAR10`` and its md5
checks; only the download is our own (:func:`download_cifar10`), because torchvision's has no timeout
and can hang forever. A damaged archive or extracted file is never used: it is removed or extracted
afresh from the verified archive.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shlex
import shutil
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import torch

from .checks import check_choice, check_float, check_int
from .errors import DataError, DiskFullError, warn
from .fileio import disk_full, folder_lock
from .images import ImageSet
from .settings import DATA_DIR_ENV, DATASET_ENV, STANDIN, data_dir, python_command
from .settings import cifar10_url as _url_setting

SPLITS = ("train", "test")
SPLIT_SIZES = {"train": 50_000, "test": 10_000}  # CIFAR-10's own split sizes (stand-ins default to them)
MAX_DOWNLOAD_TIMEOUT_S = 3600.0
MAX_DOWNLOAD_TRIES = 20
_CHUNK_BYTES = 1 << 20
_BACKOFF_S = 0.5  # first pause between tries; doubles each time (tests may shrink it)
_LOCK_TIMEOUT_S = 1800.0  # another process may be downloading 170 MB on a slow line
_USER_AGENT = "convae-utils (+https://github.com/pytorch/vision)"
ARCHIVE_BYTES = 170_498_071  # cifar-10-python.tar.gz; extracting it takes about as much again


def _disk_full_error(root: Path, doing: str) -> DiskFullError:
    """The data folder's disk filled up while ``doing``: what CIFAR-10 needs there, and the way out."""
    free = shutil.disk_usage(root).free if root.exists() else None
    left = f"; {free / 1e6:,.0f} MB free there now" if free is not None else ""
    return DiskFullError(f"the disk holding the data folder {root} is full: {doing} stopped (CIFAR-10 needs "
                         f"{ARCHIVE_BYTES / 1e6:,.0f} MB for the archive and about as much again extracted{left}). "
                         f"Free some space on that disk, or choose a data folder on another disk (--data-dir, "
                         f"${DATA_DIR_ENV}), then try again; or work offline with --dataset {STANDIN}",
                         root, 2 * ARCHIVE_BYTES)


class _ShortRead(ConnectionError):
    """The server closed the connection before sending the promised number of bytes."""


def _cifar10_class():
    # Imported late: torchvision costs a second of import time that shapes10-only runs never need.
    from torchvision.datasets import CIFAR10

    return CIFAR10


def cifar10_url(url: str | None = None) -> str:
    """The archive's URL: the argument, else ``$CONVAE_CIFAR10_URL``, else torchvision's ``CIFAR10.url``."""
    return _url_setting(url, default=_cifar10_class().url)


def _archive_path(root: Path) -> Path:
    return root / _cifar10_class().filename


def _batch_files() -> list[tuple[str, str]]:
    """(file name, md5) of every extracted file, read from torchvision's class at call time."""
    cls = _cifar10_class()
    return [(name, md5) for name, md5 in cls.train_list + cls.test_list] + [(cls.meta["filename"],
                                                                             cls.meta["md5"])]


def _bad_batch_files(root: Path) -> tuple[list[str], list[str]]:
    """(missing, damaged) names among the extracted files: torchvision's md5 check, file by file."""
    from torchvision.datasets.utils import check_integrity

    folder = root / _cifar10_class().base_folder
    missing, damaged = [], []
    for name, md5 in _batch_files():
        path = folder / name
        if not path.is_file():
            missing.append(name)
        elif not check_integrity(path, md5):
            damaged.append(name)
    return missing, damaged


def _archive_state(root: Path) -> str:
    """``"ok"`` (md5 matches torchvision's ``CIFAR10.tgz_md5``), ``"missing"`` or ``"damaged"``."""
    from torchvision.datasets.utils import check_integrity

    archive = _archive_path(root)
    if not archive.is_file():
        return "missing"
    return "ok" if check_integrity(archive, _cifar10_class().tgz_md5) else "damaged"


def _drop_damaged_archive(root: Path) -> str:
    """Remove an archive whose md5 is wrong (it can never be used); return a note saying so."""
    archive = _archive_path(root)
    archive.unlink(missing_ok=True)
    note = (f"{archive} was truncated or damaged (its md5 does not match torchvision's "
            "CIFAR10.tgz_md5) and has been removed")
    warn(note)
    return note


def download_command(root: str | os.PathLike, url: str) -> str:
    """The shell command that downloads into ``root`` from ``url`` again, e.g. to retry after a failure.

    ``--data-dir`` and ``--url`` are written out whenever they differ from what the bare command
    would use (``$CONVAE_DATA_DIR``/``$CONVAE_CIFAR10_URL`` or the defaults), so a retry goes to the
    same folder and the same mirror; values are quoted for a POSIX shell. It starts with the Python
    this runs in (:func:`~convae_utils.settings.python_command`), so it works typed in a terminal where
    the project's environment is not activated. Every download error's
    "ways out" (notebook 01) starts with it.
    """
    command = [python_command(), "-m", "convae_utils", "download"]  # the Python this runs in: it has torch
    if Path(root) != data_dir():
        command += ["--data-dir", str(root)]
    if url != cifar10_url():
        command += ["--url", url]
    return shlex.join(command)


def _ways_out(root: Path, url: str) -> str:
    return ("Three ways out:\n"
            f"  1. try again later: {download_command(root, url)}\n"
            f"  2. download cifar-10-python.tar.gz yourself (from {url} or a mirror) and put it into "
            f"the data folder {root}\n"
            f"  3. work offline with the stand-in dataset: --dataset {STANDIN} on the command line (train, series), "
            f"{DATASET_ENV}={STANDIN} for notebooks")


def _data_lock(root: Path):
    """Hold ``<root>/.cifar-10.lock`` so that two processes never download or extract at once."""
    return folder_lock(
        root, ".cifar-10.lock", timeout=_LOCK_TIMEOUT_S,
        busy=lambda lock: DataError(f"another process has held {lock} for {_LOCK_TIMEOUT_S:.0f} s while "
                                    "fetching CIFAR-10; wait for it, or stop it and try again"),
        unwritable=lambda folder, exc: DataError(
            f"cannot write to the data folder {folder} ({exc}); choose a writable folder: --data-dir on the "
            f"command line, ${DATA_DIR_ENV}=<path> or data_dir=... for notebooks"),
    )


def _is_transient(exc: BaseException) -> bool:
    """Worth another try: timeouts, dropped connections, short reads, 5xx/408/429 answers.

    A refused connection or an unknown host name is not: it means "offline" or "wrong URL",
    and retrying would only delay the error (and the switch to the stand-in) by seconds.
    """
    if isinstance(exc, urllib.error.HTTPError):
        return exc.code in (408, 425, 429) or exc.code >= 500
    if isinstance(exc, urllib.error.URLError):
        if not isinstance(exc.reason, BaseException):
            return False  # e.g. "unknown url type": a wrong URL stays wrong
        exc = exc.reason
    if isinstance(exc, (ConnectionRefusedError, socket.gaierror)):
        return False
    return isinstance(exc, (TimeoutError, ConnectionError, http.client.HTTPException))


def _describe(exc: BaseException) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    text = str(exc) or "no answer"
    return f"{type(exc).__name__}: {text}"


def _stream_once(url: str, part: Path, timeout: float, progress: bool) -> str:
    """One try: stream ``url`` into ``part``; return the md5 of what arrived."""
    from tqdm.auto import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    digest = hashlib.md5(usedforsecurity=False)
    received = 0
    # ``timeout`` bounds the connect and every single read, so a server that accepts the
    # connection and then goes silent costs one timeout, not forever (torchvision sets none).
    with urllib.request.urlopen(request, timeout=timeout) as response:
        length = response.headers.get("Content-Length")
        expected = int(length) if length and length.isdigit() else None
        with open(part, "wb") as out, tqdm(total=expected, unit="B", unit_scale=True, unit_divisor=1024,
                                           desc="CIFAR-10", disable=not progress, leave=False) as bar:
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    if expected is not None and received < expected:
        raise _ShortRead(f"connection closed after {received:,} of {expected:,} bytes")
    return digest.hexdigest()


def _fetch_archive(root: Path, url: str, timeout: float, tries: int, progress: bool) -> None:
    """Download the archive to ``<root>/cifar-10-python.tar.gz`` via a ``.part`` file, md5-verified."""
    archive = _archive_path(root)
    part = archive.with_name(archive.name + ".part")
    expected_md5 = _cifar10_class().tgz_md5
    last_error: BaseException | None = None
    for attempt in range(1, tries + 1):
        try:
            md5 = _stream_once(url, part, timeout, progress)
        except BaseException as exc:
            part.unlink(missing_ok=True)  # half a download never lingers, not even after Ctrl-C
            if not isinstance(exc, Exception):
                raise
            last_error = exc
            if not _is_transient(exc) or attempt == tries:
                break
            time.sleep(min(_BACKOFF_S * 2 ** (attempt - 1), 8.0))
            continue
        if md5 != expected_md5:
            size = part.stat().st_size
            part.unlink(missing_ok=True)
            raise DataError(f"the CIFAR-10 archive downloaded from {url} is damaged or not CIFAR-10: "
                            f"{size:,} bytes with md5 {md5}, expected md5 {expected_md5}. Nothing was kept.\n"
                            + _ways_out(root, url))
        os.replace(part, archive)  # atomic: the final name only ever holds a verified archive
        return
    if disk_full(last_error):
        raise _disk_full_error(root, "downloading the archive") from last_error
    tried = f" ({attempt} tries)" if attempt > 1 else ""
    raise DataError(f"could not download CIFAR-10 from {url}{tried}: {_describe(last_error)}.\n"
                    + _ways_out(root, url)) from last_error


def _check_download_args(timeout: float, retries: int) -> None:
    check_float("timeout", timeout, low=0.0, high=MAX_DOWNLOAD_TIMEOUT_S, high_inclusive=True)
    check_int("retries", retries, minimum=1, maximum=MAX_DOWNLOAD_TRIES)


def download_cifar10(root: str | os.PathLike | None = None, *, url: str | None = None, timeout: float = 20.0,
                     retries: int = 3, progress: bool = True) -> Path:
    """Make sure the verified CIFAR-10 archive (or its verified extracted files) is in the data folder.

    Defined in notebook 01 (data preparation). Does nothing when the data is already there. Else it
    streams the archive into ``cifar-10-python.tar.gz.part``, checks torchvision's md5 and only then
    renames it. Returns the data folder. Raises :class:`DataError` with the ways out on failure.

    Args:
        root: the data folder (default ``$CONVAE_DATA_DIR``, else ``<project>/data``).
        url: the archive's URL (default ``$CONVAE_CIFAR10_URL``, else torchvision's ``CIFAR10.url``).
        timeout: seconds to wait for the connection and for each read before a try fails.
        retries: tries in all (1 = no retry) for transient failures: timeouts, dropped connections, 5xx.
        progress: show a progress bar of the bytes received.
    """
    _check_download_args(timeout, retries)
    root, url = data_dir(root), cifar10_url(url)
    with _data_lock(root):
        _ensure_archive(root, url, timeout=timeout, retries=retries, progress=progress)
    return root


def _ensure_archive(root: Path, url: str, *, timeout: float, retries: int, progress: bool) -> None:
    """Download unless verified extracted files or a verified archive are already in ``root``."""
    missing, damaged = _bad_batch_files(root)
    if not missing and not damaged:
        return
    state = _archive_state(root)
    if state == "ok":
        return
    if state == "damaged":
        _drop_damaged_archive(root)
    _fetch_repair(root, url, timeout, retries, progress)


def on_disk_problem(root: Path) -> str:
    """What is wrong with CIFAR-10 in ``root`` when it cannot be used as it is, in one clause.

    Either "CIFAR-10 is not in the data folder <root>", or, when an extracted folder is there, which of
    its files are damaged or missing: a learner who copied a broken folder learns which file to replace,
    whatever happens next (a failed download, a fallback to the stand-in).
    """
    folder = root / _cifar10_class().base_folder
    if not folder.exists():
        return f"CIFAR-10 is not in the data folder {root}"
    missing, damaged = _bad_batch_files(root)
    said = ", ".join([*(f"{name} damaged" for name in damaged), *(f"{name} missing" for name in missing)])
    return (f"CIFAR-10 files in {folder} failed torchvision's md5 check ({said}) and there is no verified "
            f"archive ({_archive_path(root).name}) to extract them from")


def _fetch_repair(root: Path, url: str, timeout: float, tries: int, progress: bool) -> None:
    """``_fetch_archive``, whose failure also says what was wrong on disk (a damaged file, not only "offline")."""
    problem = on_disk_problem(root)
    try:
        _fetch_archive(root, url, timeout, tries, progress)
    except DataError as exc:
        if not (root / _cifar10_class().base_folder).exists():
            raise
        head, _, ways_out = str(exc).partition("\n")
        raise DataError(f"{problem}; the download that would repair them failed ({head}).\n{ways_out}") from exc


def cifar10_available(root: str | os.PathLike | None = None) -> bool:
    """Whether CIFAR-10 is on disk: verified extracted files, or the archive with the right md5."""
    root = data_dir(root)
    missing, damaged = _bad_batch_files(root)
    return (not missing and not damaged) or _archive_state(root) == "ok"


def cifar10_reachable(url: str | None = None, timeout: float = 3.0) -> bool:
    """Whether the archive's server answers a quick HEAD request (a GET if HEAD is refused); never raises."""
    try:
        url = cifar10_url(url)
        for method in ("HEAD", "GET"):
            request = urllib.request.Request(url, method=method, headers={"User-Agent": _USER_AGENT})
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    return response.status < 400
            except urllib.error.HTTPError as exc:
                if exc.code not in (403, 405, 501):  # some servers only refuse HEAD
                    return False
        return False
    except Exception:
        return False


def _to_imageset(ds, split: str, root: Path) -> ImageSet:
    images = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # (N, 32, 32, 3) -> (N, 3, 32, 32)
    labels = torch.as_tensor(ds.targets, dtype=torch.int64)
    return ImageSet(images, labels, tuple(ds.classes), "cifar10", split, {"root": str(root)})


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None, *, download: bool = True,
                 **download_kwargs) -> ImageSet:
    """One CIFAR-10 split as an :class:`ImageSet` (uint8, channels first), downloaded if needed.

    Defined in notebook 01 (data preparation). Files are checked against torchvision's md5s: a
    damaged extracted folder is extracted afresh from the verified archive, a damaged archive is
    removed and downloaded again; data that fails the check is never used. ``download_kwargs``
    (``url``, ``timeout``, ``retries``, ``progress``) go to :func:`download_cifar10`.
    """
    check_choice("split", split, SPLITS)
    unknown = set(download_kwargs) - {"url", "timeout", "retries", "progress"}
    if unknown:
        raise TypeError(f"load_cifar10 got unexpected argument(s) {', '.join(sorted(unknown))}; "
                        "accepted download options: url, timeout, retries, progress")
    timeout, retries = download_kwargs.get("timeout", 20.0), download_kwargs.get("retries", 3)
    _check_download_args(timeout, retries)
    root = data_dir(root)
    CIFAR10 = _cifar10_class()
    train = split == "train"
    try:  # the common case, without lock or network: verified files are on disk
        return _to_imageset(CIFAR10(root, train=train, download=False), split, root)
    except RuntimeError:
        pass  # missing or damaged ("Dataset not found or corrupted"): repair below

    url = cifar10_url(download_kwargs.get("url"))
    with _data_lock(root):
        missing, damaged = _bad_batch_files(root)  # again: another process may just have extracted it
        folder = root / CIFAR10.base_folder
        if missing or damaged:
            incomplete = folder.exists()
            broken = damaged + (missing if incomplete else [])
            notes = []
            state = _archive_state(root)
            if state == "damaged":
                notes.append(_drop_damaged_archive(root))
            if state != "ok":
                if not download:
                    problem = on_disk_problem(root)
                    notes.append("download=False, so nothing was fetched")
                    raise DataError(f"{problem}; {'; '.join(notes)}. Call again with download=True, "
                                    f"or delete {folder} and fetch the archive yourself.\n"
                                    + _ways_out(root, url))
                _fetch_repair(root, url, timeout, retries, download_kwargs.get("progress", True))
            if incomplete:
                warn(f"CIFAR-10 files in {folder} failed torchvision's md5 check or are missing "
                              f"({', '.join(broken)}); extracting them afresh from the verified archive")
                shutil.rmtree(folder)  # extract into a clean folder: nothing stale survives
        try:
            # The archive is verified, so torchvision's download() finds it and only extracts.
            ds = CIFAR10(root, train=train, download=bool(missing or damaged))
        except OSError as exc:
            if disk_full(exc):
                shutil.rmtree(folder, ignore_errors=True)  # half an extraction is never used
                raise _disk_full_error(root, "extracting the archive") from exc
            raise
        except RuntimeError as exc:
            raise DataError(f"CIFAR-10 in {folder} is still incomplete or damaged after extracting the "
                            f"verified archive ({exc}). Delete {folder} and {_archive_path(root)}, then "
                            "try again.\n" + _ways_out(root, url)) from exc
    return _to_imageset(ds, split, root)
