"""Data: CIFAR-10 through torchvision, the offline stand-in, splits, exemplars, normalisation.

Defined in notebook 01 (data preparation). Images are held once as uint8 tensors of shape
(N, 3, 32, 32) -- a quarter of the memory of float copies -- and normalised per batch, on the
device, by :func:`normalize`. No per-item PIL transform runs during training.

CIFAR-10 comes through ``torchvision.datasets.CIFAR10`` and its md5 checks; only the download is
our own (:func:`download_cifar10`), because torchvision's has no timeout and can hang forever.
``load_dataset``/``prepare_data`` switch between CIFAR-10 and the offline stand-in ``shapes10``
(:mod:`convae_utils.shapes`) by ``$CONVAE_DATASET``; ``auto`` falls back to the stand-in, loudly.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import socket
import time
import urllib.error
import urllib.request
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .checks import IMAGE_SHAPE, check_choice, check_float, check_int, describe_shape
from .config import DATA_DIR_ENV, DATASET_ENV, STANDIN, Profile, data_dir, dataset_choice
from .errors import DataError


@dataclass(frozen=True, eq=False)
class ImageSet:
    """Images and labels of one split.

    Attributes:
        images: uint8 tensor (N, 3, 32, 32), pixels 0..255, channels first.
        labels: int64 tensor (N,), values in ``range(len(classes))``.
        classes: class names, index = label.
        name: dataset name (``"cifar10"`` or the stand-in's name), carried into every result.
    """

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    name: str
    split: str = "train"
    meta: dict = field(default_factory=dict)

    def __post_init__(self):
        x, y = self.images, self.labels
        if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8:
            got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"ImageSet.images must be a uint8 tensor (pixels 0..255), got {got}")
        if x.ndim != 4 or tuple(x.shape[1:]) != IMAGE_SHAPE:
            raise ValueError(f"ImageSet.images must have shape (N, 3, 32, 32), got {describe_shape(x)}")
        if len(x) == 0:
            raise ValueError(f"ImageSet {self.name!r} ({self.split}) is empty: it needs at least one image")
        if not isinstance(y, torch.Tensor) or y.ndim != 1 or len(y) != len(x):
            got = describe_shape(y) if isinstance(y, torch.Tensor) else type(y).__name__
            raise ValueError(f"ImageSet.labels must be a 1-D tensor of {len(x):,} labels, got {got}")
        if y.dtype != torch.int64:
            object.__setattr__(self, "labels", y.long())
        if int(self.labels.min()) < 0 or int(self.labels.max()) >= len(self.classes):
            raise ValueError(f"ImageSet.labels must lie in 0..{len(self.classes) - 1} "
                             f"(one per class name), got {int(self.labels.min())}..{int(self.labels.max())}")
        object.__setattr__(self, "classes", tuple(self.classes))

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices, split: str | None = None) -> "ImageSet":
        """A new ImageSet holding the images at ``indices`` (a tensor, array or list of ints)."""
        idx = torch.as_tensor(indices, dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], self.classes, self.name,
                        split or self.split, dict(self.meta))

    def head(self, n: int | None) -> "ImageSet":
        """The first ``n`` images (all of them when ``n`` is None or larger than the set)."""
        if n is None or n >= len(self):
            return self
        check_int("n", n)
        return self.subset(torch.arange(n))

    def to(self, device) -> "ImageSet":
        """The same set with its tensors on ``device`` (still uint8)."""
        return ImageSet(self.images.to(device), self.labels.to(device), self.classes, self.name,
                        self.split, dict(self.meta))

    def class_counts(self) -> list[int]:
        return torch.bincount(self.labels.cpu(), minlength=len(self.classes)).tolist()


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 pixels 0..255 -> float32 in [-1, 1]: ToTensor's /255 then Normalize(0.5, 0.5) in one step."""
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8:
        got = images.dtype if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"normalize expects uint8 pixels (0..255), got {got}")
    return images.float().div_(127.5).sub_(1.0)


def denormalize(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1], clamped (a reconstruction can overshoot the range)."""
    return x.add(1.0).mul_(0.5).clamp_(0.0, 1.0)


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Floats in [-1, 1] -> uint8 pixels, rounded; the inverse of :func:`normalize` up to rounding."""
    return denormalize(x).mul_(255.0).round_().to(torch.uint8)


def split_train_val(dataset: ImageSet, val_size: int | None = None, *, val_fraction: float | None = None,
                    seed: int = 0) -> tuple[ImageSet, ImageSet]:
    """Hold out a seeded, random validation set from a training split.

    Give either ``val_size`` (images) or ``val_fraction`` (of the split). The test split stays
    untouched for the final numbers -- the article validated on its test set, so its test numbers
    were no longer an unbiased check.
    """
    if (val_size is None) == (val_fraction is None):
        raise ValueError("give exactly one of val_size or val_fraction")
    n = len(dataset)
    if val_fraction is not None:
        check_float("val_fraction", val_fraction, low=0.0, high=1.0)
        val_size = max(1, round(n * val_fraction))
    check_int("val_size", val_size, minimum=1, maximum=max(1, n - 1))
    if n < 2:
        raise ValueError(f"cannot split {n} image(s) into training and validation sets")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return (dataset.subset(order[val_size:], split="train"),
            dataset.subset(order[:val_size], split="val"))


def class_exemplars(dataset: ImageSet) -> ImageSet:
    """The first image of each class, classes in order (the article's visualisation set)."""
    labels = dataset.labels.cpu().numpy()
    present, first = np.unique(labels, return_index=True)  # np.unique sorts: classes come out in order
    if len(present) != len(dataset.classes):
        missing = sorted(set(range(len(dataset.classes))) - set(present.tolist()))
        names = ", ".join(dataset.classes[i] for i in missing)
        raise ValueError(f"{dataset.name} ({dataset.split}) has no image of class(es) {names}; "
                         "exemplars need one image per class")
    return dataset.subset(torch.from_numpy(first), split=f"{dataset.split}-exemplars")


# --------------------------------------------------------------------------------------------
# CIFAR-10 on disk: a bounded download, verified by md5, extracted and read by torchvision.
# --------------------------------------------------------------------------------------------

CIFAR10_URL_ENV = "CONVAE_CIFAR10_URL"
SPLITS = ("train", "test")
SHAPES10_SPLIT_SIZES = {"train": 50_000, "test": 10_000}  # CIFAR-10's own split sizes
MAX_DOWNLOAD_TIMEOUT_S = 3600.0
MAX_DOWNLOAD_TRIES = 20
MAX_IMAGES = 1_000_000  # a sane ceiling for ``size``; the stand-in's own limit too
_CHUNK_BYTES = 1 << 20
_BACKOFF_S = 0.5  # first pause between tries; doubles each time (tests may shrink it)
_LOCK_TIMEOUT_S = 1800.0  # another process may be downloading 170 MB on a slow line
_USER_AGENT = "convae-utils (+https://github.com/pytorch/vision)"


class DatasetFallbackWarning(UserWarning):
    """``dataset="auto"`` could not use CIFAR-10 and switched to the offline stand-in."""


class _ShortRead(ConnectionError):
    """The server closed the connection before sending the promised number of bytes."""


def _cifar10_class():
    # Imported late: torchvision costs a second of import time that shapes10-only runs never need.
    from torchvision.datasets import CIFAR10

    return CIFAR10


def cifar10_url(url: str | None = None) -> str:
    """The archive's URL: the argument, else ``$CONVAE_CIFAR10_URL``, else torchvision's ``CIFAR10.url``."""
    return url or os.environ.get(CIFAR10_URL_ENV) or _cifar10_class().url


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
    warnings.warn(note, stacklevel=3)
    return note


def _ways_out(root: Path, url: str) -> str:
    return ("Three ways out:\n"
            "  1. try again later: python -m convae_utils download\n"
            f"  2. download cifar-10-python.tar.gz yourself (from {url} or a mirror) and put it into "
            f"the data folder {root}\n"
            f"  3. work offline with the stand-in dataset: set {DATASET_ENV}={STANDIN}")


@contextmanager
def _data_lock(root: Path):
    """Hold ``<root>/.cifar-10.lock`` so that two processes never download or extract at once."""
    from filelock import FileLock, Timeout

    try:
        root.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(root / ".cifar-10.lock"), timeout=_LOCK_TIMEOUT_S)
        lock.acquire()
    except Timeout as exc:
        raise DataError(f"another process has held {root / '.cifar-10.lock'} for {_LOCK_TIMEOUT_S:.0f} s "
                        "while fetching CIFAR-10; wait for it, or stop it and try again") from exc
    except OSError as exc:
        raise DataError(f"cannot write to the data folder {root} ({exc}); choose a writable folder "
                        f"with ${DATA_DIR_ENV}=<path> or data_dir=...") from exc
    try:
        yield
    finally:
        lock.release()


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
    _fetch_archive(root, url, timeout, retries, progress)


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
                    problem = (f"CIFAR-10 files in {folder} are damaged or missing ({', '.join(broken)}) and "
                               "there is no verified archive to extract them from" if incomplete
                               else f"CIFAR-10 is not in the data folder {root}")
                    notes.append("download=False, so nothing was fetched")
                    raise DataError(f"{problem}; {'; '.join(notes)}. Call again with download=True, "
                                    f"or delete {folder} and fetch the archive yourself.\n"
                                    + _ways_out(root, url))
                _fetch_archive(root, url, timeout, retries, download_kwargs.get("progress", True))
            if incomplete:
                warnings.warn(f"CIFAR-10 files in {folder} failed torchvision's md5 check or are missing "
                              f"({', '.join(broken)}); extracting them afresh from the verified archive",
                              stacklevel=2)
                shutil.rmtree(folder)  # extract into a clean folder: nothing stale survives
        try:
            # The archive is verified, so torchvision's download() finds it and only extracts.
            ds = CIFAR10(root, train=train, download=bool(missing or damaged))
        except RuntimeError as exc:
            raise DataError(f"CIFAR-10 in {folder} is still incomplete or damaged after extracting the "
                            f"verified archive ({exc}). Delete {folder} and {_archive_path(root)}, then "
                            "try again.\n" + _ways_out(root, url)) from exc
    return _to_imageset(ds, split, root)


# --------------------------------------------------------------------------------------------
# The switch between CIFAR-10 and the stand-in, and everything a notebook needs in one call.
# --------------------------------------------------------------------------------------------

def resolve_auto(root: str | os.PathLike | None, download: bool) -> tuple[str, str | None]:
    """``"auto"`` -> (``"cifar10"``, None) when CIFAR-10 can be had, else (the stand-in, the reason)."""
    folder = data_dir(root)
    if cifar10_available(folder):
        return "cifar10", None
    url = cifar10_url()
    if not download:
        return STANDIN, f"CIFAR-10 is not in {folder} and download=False"
    if not cifar10_reachable(url):
        return STANDIN, f"CIFAR-10 is not in {folder} and {url} cannot be reached"
    try:
        download_cifar10(folder, url=url)
    except DataError as exc:
        return STANDIN, f"CIFAR-10 is not in {folder} and its download failed: {str(exc).splitlines()[0]}"
    return "cifar10", None


def _announce_fallback(reason: str) -> None:
    warnings.warn(f"USING THE OFFLINE STAND-IN '{STANDIN}' INSTEAD OF CIFAR-10: {reason}. Pictures and numbers "
                  f"from this run are not CIFAR-10 results. Set {DATASET_ENV}=cifar10 to insist on CIFAR-10 "
                  f"(and see the error), or {DATASET_ENV}={STANDIN} to silence this warning.",
                  DatasetFallbackWarning, stacklevel=3)


def _load_resolved(name: str, split: str, root, size: int | None, seed: int, download: bool) -> ImageSet:
    if name == STANDIN:
        from .shapes import make_shapes10  # late: shapes imports this module

        return make_shapes10(size or SHAPES10_SPLIT_SIZES[split], seed=seed, split=split)
    return load_cifar10(split, root, download=download).head(size)


def load_dataset(name: str | None = None, split: str = "train", *, root: str | os.PathLike | None = None,
                 size: int | None = None, seed: int = 0, download: bool = True,
                 profile: Profile | None = None) -> ImageSet:
    """One split of CIFAR-10 or of the stand-in, chosen by ``name``, ``$CONVAE_DATASET`` or the profile.

    Defined in notebook 01 (data preparation). ``"auto"`` takes CIFAR-10 when it is on disk or its
    server answers, else the stand-in with a loud :class:`DatasetFallbackWarning` and the reason in
    ``meta["fallback"]``; ``ImageSet.name`` always says which one came. ``size`` keeps the first
    ``size`` CIFAR-10 images, or generates that many stand-in images (default: 50,000 train,
    10,000 test). ``seed`` only affects the stand-in.
    """
    choice = dataset_choice(name, profile)
    check_choice("split", split, SPLITS)
    if size is not None:
        check_int("size", size, maximum=MAX_IMAGES)
    reason = None
    if choice == "auto":
        choice, reason = resolve_auto(root, download)
        if reason:
            _announce_fallback(reason)
    dataset = _load_resolved(choice, split, root, size, seed, download)
    if reason:
        dataset.meta["fallback"] = reason
    return dataset


@dataclass(frozen=True)
class DataBundle:
    """Everything a notebook trains and evaluates on; all splits come from one dataset."""

    train: ImageSet
    val: ImageSet
    test: ImageSet
    exemplars: ImageSet  # the first test image of each class, classes in order
    dataset: str


def prepare_data(profile: Profile, *, dataset: str | None = None, root: str | os.PathLike | None = None,
                 seed: int = 0) -> DataBundle:
    """Train/val/test splits and the exemplars, sized by ``profile`` (one call per notebook).

    Defined in notebook 01 (data preparation). ``val_size`` images are held out of the training
    split with ``seed``; ``train_size`` of the rest are kept; the test split keeps ``test_size``.
    Exemplars are taken from the whole test split before it is cut, so every class is present.
    """
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be a convae_utils.config.Profile (e.g. config.get_profile()), "
                        f"got {type(profile).__name__}")
    name = dataset_choice(dataset, profile)
    reason = None
    if name == "auto":  # resolved once, so train and test cannot come from different datasets
        name, reason = resolve_auto(root, download=True)
        if reason:
            _announce_fallback(reason)
    train_size, val_size, test_size = profile.train_size, profile.val_size, profile.test_size
    for field_name, value in (("train_size", train_size), ("val_size", val_size), ("test_size", test_size)):
        if value is not None or field_name == "val_size":
            check_int(f"profile.{field_name}", value, maximum=MAX_IMAGES)
    pool_size = None if train_size is None else train_size + val_size
    pool = _load_resolved(name, "train", root, pool_size, seed, True)
    if len(pool) < (pool_size or val_size + 1):
        wanted = (f"train_size + val_size = {pool_size:,}" if pool_size is not None
                  else f"more than val_size = {val_size:,}")
        raise ValueError(f"profile {profile.name!r} asks for {wanted} training images but the {name} "
                         f"training split has only {len(pool):,}; lower train_size or val_size")
    # The stand-in is drawn at the size asked for, but with at least one image per class (its
    # classes are balanced) so the exemplars exist; CIFAR-10's test split is read whole anyway.
    test_pool_size = None if test_size is None else max(test_size, 10)
    full_test = _load_resolved(name, "test", root, test_pool_size if name == STANDIN else None, seed, True)
    if test_size is not None and len(full_test) < test_size:
        raise ValueError(f"profile {profile.name!r} asks for test_size = {test_size:,} images but the {name} "
                         f"test split has only {len(full_test):,}; lower test_size")
    if reason:
        pool.meta["fallback"] = reason
        full_test.meta["fallback"] = reason
    train, val = split_train_val(pool, val_size, seed=seed)
    return DataBundle(train=train.head(train_size), val=val, test=full_test.head(test_size),
                      exemplars=class_exemplars(full_test), dataset=name)
