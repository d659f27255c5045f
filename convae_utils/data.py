"""Splits, exemplars and the dataset switch: everything a notebook trains and evaluates on.

Introduced in notebook 01 (data). ``load_dataset``/``prepare_data`` switch between CIFAR-10
(:mod:`convae_utils.cifar10`) and the offline stand-ins (:mod:`convae_utils.photos`, patches of
real photographs, and :mod:`convae_utils.shapes`, drawn shapes) by name;
``auto`` takes CIFAR-10 when it can be had and falls back to the stand-in, loudly, resolved once so
that train and test never come from different datasets.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

import numpy as np
import torch

from . import cifar10
from .checks import check_choice, check_float, check_int
from .errors import DataError, warn
from .images import ImageSet
from .photos import PHOTOS10_MAX_IMAGES, make_photos10
from .settings import DATASET_ENV, DATASETS, MAX_IMAGES, PHOTOS, SHAPES, STANDIN, data_dir
from .shapes import make_shapes10

SPLITS = cifar10.SPLITS


class DatasetFallbackWarning(UserWarning):
    """``dataset="auto"`` could not use CIFAR-10 and switched to the offline stand-in."""


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


DIHEDRAL = "dihedral"  # what a run's recipe records for a training split passed through augment_dihedral


def augment_dihedral(split: ImageSet, *, seed: int = 0) -> ImageSet:
    """Data augmentation: each image turned by 0, 90, 180 or 270 degrees and mirrored or not, drawn per image.

    These are the eight symmetries of the square (the dihedral group D4). One is drawn for each image
    from ``seed`` alone, so the same (split, seed) gives the same images: a run trained on them resumes
    exactly. Returns a new :class:`~convae_utils.images.ImageSet` of the same shape (N, 3, 32, 32),
    uint8 0..255, with the same labels; the split it was given is untouched. Introduced in notebook 08,
    whose from-scratch model trains on turned and mirrored patches; a photograph's sky stays above its
    ground, so turning suits patches of texture better than whole upright objects. Raises TypeError for a
    split that is not an ImageSet or a ``seed`` that is not a whole number, ValueError for a ``seed``
    outside 0..2**64 - 1.
    """
    if not isinstance(split, ImageSet):
        raise TypeError(f"split must be a convae_utils.images.ImageSet, got {type(split).__name__}")
    generator = torch.Generator().manual_seed(check_int("seed", seed, minimum=0, maximum=2**64 - 1))
    symmetry = torch.randint(0, 8, (len(split),), generator=generator)   # 0-3: turns, 4-7: mirrored, then turned
    images = split.images.clone()
    for index in range(8):
        chosen = (symmetry == index).nonzero().flatten().to(images.device)
        if len(chosen):
            picked = images[chosen].flip(-1) if index >= 4 else images[chosen]
            images[chosen] = torch.rot90(picked, index % 4, dims=(-2, -1))
    return ImageSet(images, split.labels, split.classes, split.name, split.split,
                    {**split.meta, "augmentation": DIHEDRAL})


# --------------------------------------------------------------------------------------------
# The switch between CIFAR-10 and the stand-in, and everything a notebook needs in one call.
# --------------------------------------------------------------------------------------------

# Each offline stand-in is a generator of ``n`` images: (n, *, seed, split) -> ImageSet.
STANDINS = {PHOTOS: make_photos10, SHAPES: make_shapes10}
FALLBACK = STANDIN  # what "auto" falls back to without CIFAR-10: photos10, real photographs


def split_capacity(name: str) -> dict[str, int]:
    """The most images a split of dataset ``name`` can supply: CIFAR-10's split sizes, a stand-in's generator limit.

    For ``auto`` it is the most either choice could supply; whether a request fits is settled once
    ``auto`` is (:func:`prepare_data` checks again then).
    """
    name = check_choice("dataset", name, DATASETS)
    if name == "auto":
        choices = [split_capacity(choice) for choice in ("cifar10", FALLBACK)]
        return {split: max(c[split] for c in choices) for split in SPLITS}
    most = {"cifar10": None, PHOTOS: PHOTOS10_MAX_IMAGES, SHAPES: MAX_IMAGES}[name]
    return dict(cifar10.SPLIT_SIZES) if most is None else {split: most for split in SPLITS}


def resolve_auto(root: str | os.PathLike | None = None, download: bool = True) -> tuple[str, str | None]:
    """``"auto"`` -> (``"cifar10"``, None) when CIFAR-10 can be had, else (the stand-in, the reason)."""
    folder = data_dir(root)
    if cifar10.cifar10_available(folder):
        return "cifar10", None
    url = cifar10.cifar10_url()
    problem = cifar10.on_disk_problem(folder)  # names a damaged file, not only "not there"
    if not download:
        return FALLBACK, f"{problem}, and download=False"
    if not cifar10.cifar10_reachable(url):
        return FALLBACK, f"{problem}, and {url} cannot be reached"
    try:
        cifar10.download_cifar10(folder, url=url)
    except DataError as exc:
        return FALLBACK, f"{problem}, and its download failed: {str(exc).splitlines()[0]}"
    return "cifar10", None


def _announce_fallback(reason: str) -> None:
    warn(f"USING THE OFFLINE STAND-IN '{FALLBACK}' INSTEAD OF CIFAR-10: {reason}. Pictures and numbers "
                  f"from this run are not CIFAR-10 results. Insist on CIFAR-10 (and see the error) with --dataset "
                  f"cifar10 on the command line or {DATASET_ENV}=cifar10 for notebooks; silence this warning with "
                  f"--dataset {FALLBACK} or {DATASET_ENV}={FALLBACK}.",
                  DatasetFallbackWarning)


def _resolve(name: str, root, download: bool) -> tuple[str, str | None]:
    """Check a dataset name and settle ``auto`` once, announcing a fallback."""
    name = check_choice("dataset", str(name).strip().lower(), DATASETS)
    if name != "auto":
        return name, None
    name, reason = resolve_auto(root, download)
    if reason:
        _announce_fallback(reason)
    return name, reason


def _load_resolved(name: str, split: str, root, size: int | None, seed: int, download: bool) -> ImageSet:
    if name in STANDINS:
        return STANDINS[name](size or cifar10.SPLIT_SIZES[split], seed=seed, split=split)
    return cifar10.load_cifar10(split, root, download=download).head(size)


def load_dataset(name: str = "auto", split: str = "train", *, root: str | os.PathLike | None = None,
                 size: int | None = None, seed: int = 0, download: bool = True) -> ImageSet:
    """One split of CIFAR-10 or of a stand-in, by name (``cifar10``, a stand-in, or ``auto``).

    Introduced in notebook 01 (data). ``"auto"`` takes CIFAR-10 when it is on disk or its server
    answers, else the stand-in with a loud :class:`DatasetFallbackWarning` and the reason in
    ``meta["fallback"]``; ``ImageSet.name`` always says which one came. ``size`` keeps the first
    ``size`` CIFAR-10 images, or generates that many stand-in images (default: CIFAR-10's split
    sizes, 50,000 train and 10,000 test). ``seed`` only affects the stand-in.
    """
    check_choice("split", split, SPLITS)
    if size is not None:
        check_int("size", size, maximum=MAX_IMAGES)
    name, reason = _resolve(name, root, download)
    dataset = _load_resolved(name, split, root, size, seed, download)
    if reason:
        dataset.meta["fallback"] = reason
    return dataset


def _check_capacity(name: str, pool_size: int | None, val_size: int, test_size: int | None) -> None:
    """Refuse split sizes the dataset cannot supply, naming the settings to lower (both spellings)."""
    capacity = split_capacity(name)
    source = f"the {name} stand-in makes at most" if name in STANDINS else f"the {name} training split has only"
    if pool_size is not None and pool_size > capacity["train"]:
        raise ValueError(f"the settings ask for train_size + val_size = {pool_size:,} training images but {source} "
                         f"{capacity['train']:,}; lower train_size or val_size (--train-size/--val-size on the "
                         "command line)")
    drawn = cifar10.SPLIT_SIZES["train"]  # without a train_size: CIFAR-10's whole split, or as many stand-in images
    if pool_size is None and val_size >= drawn:
        raise ValueError(f"the settings hold out val_size = {val_size:,} validation images, which leaves no training "
                         f"images of the {drawn:,} drawn; lower val_size (--val-size on the command line)")
    if test_size is not None and test_size > capacity["test"]:
        source = source.replace("training", "test")
        raise ValueError(f"the settings ask for test_size = {test_size:,} images but {source} {capacity['test']:,}; "
                         "lower test_size (--test-size on the command line)")


@dataclass(frozen=True)
class DataBundle:
    """Everything a notebook trains and evaluates on; all splits come from one dataset.

    ``runs.train_or_load`` trains on ``train``, scores ``val`` every epoch, ``test`` at the end and
    draws ``exemplars`` after each epoch; a run on other splits gets ``bundle.replace(...)``, where
    ``test=None`` scores no test set and ``exemplars=None`` draws no pictures.
    """

    train: ImageSet
    val: ImageSet
    test: ImageSet | None
    exemplars: ImageSet | None  # the first test image of each class, classes in order
    dataset: str

    def replace(self, **splits) -> "DataBundle":
        """A copy with some splits changed (``train``, ``val``, ``test``, ``exemplars``), e.g. a class held out."""
        unknown = set(splits) - {"train", "val", "test", "exemplars"}
        if unknown:
            raise TypeError(f"DataBundle.replace takes train, val, test and exemplars, got {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **splits)


def prepare_data(dataset: str = "auto", *, train_size: int | None = None, val_size: int = 5_000,
                 test_size: int | None = None, seed: int = 0, root: str | os.PathLike | None = None) -> DataBundle:
    """Train/val/test splits and the exemplars (one call per notebook: ``prepare_data(**settings.data_options())``).

    Introduced in notebook 01 (data). ``val_size`` images are held out of the training split with
    ``seed``; ``train_size`` of the rest are kept (``None``: all); the test split keeps ``test_size``
    (``None``: all). Exemplars are taken from the whole test split before it is cut, so every class
    is present. ``auto`` is settled once, so train and test come from the same dataset.
    """
    check_int("val_size", val_size, maximum=MAX_IMAGES)
    for field_name, value in (("train_size", train_size), ("test_size", test_size)):
        if value is not None:
            check_int(field_name, value, maximum=MAX_IMAGES)
    name, reason = _resolve(dataset, root, download=True)
    pool_size = None if train_size is None else train_size + val_size
    _check_capacity(name, pool_size, val_size, test_size)  # before anything is read or generated
    pool = _load_resolved(name, "train", root, pool_size, seed, True)
    if len(pool) < (pool_size or val_size + 1):  # a CIFAR-10 folder may hold fewer images than the real one
        wanted = (f"train_size + val_size = {pool_size:,}" if pool_size is not None
                  else f"more than val_size = {val_size:,}")
        raise ValueError(f"the settings ask for {wanted} training images but the {name} training split has only "
                         f"{len(pool):,}; lower train_size or val_size (--train-size/--val-size on the command line)")
    # A stand-in is drawn at the size asked for, but with at least one image per class (its
    # classes are balanced) so the exemplars exist; CIFAR-10's test split is read whole anyway.
    test_pool_size = None if test_size is None else max(test_size, 10)
    full_test = _load_resolved(name, "test", root, test_pool_size if name in STANDINS else None, seed, True)
    if test_size is not None and len(full_test) < test_size:
        raise ValueError(f"the settings ask for test_size = {test_size:,} images but the {name} test split has only "
                         f"{len(full_test):,}; lower test_size (--test-size on the command line)")
    if reason:
        pool.meta["fallback"] = reason
        full_test.meta["fallback"] = reason
    train, val = split_train_val(pool, val_size, seed=seed)
    return DataBundle(train=train.head(train_size), val=val, test=full_test.head(test_size),
                      exemplars=class_exemplars(full_test), dataset=name)
