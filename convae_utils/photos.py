"""photos10: an offline stand-in for CIFAR-10 cut from real colour photographs.

Defined in notebook 01 (data preparation). Ten photographs ship inside two installed packages
(scikit-image's ``skimage.data`` and scikit-learn's sample images); nothing is downloaded and
nothing is written to disk. Each photograph is one class. A patch is a square of the photograph,
between about a quarter and a half of its shorter side, shrunk to 32x32 with an area-averaging
(anti-aliased) resize, so it looks like a thumbnail, and flipped left-right at random.

Train and test patches come from **disjoint regions** of every photograph: a band along one edge
(``test_side`` in :data:`PHOTO_CREDITS`, 30% of that side's length) is the test region, the rest the
training region. Each region is cut out of the photograph *before* any resampling, so no test
pixel can reach a training patch, not even through the resize filter.

The pictures are real, but ten photographs are not ten classes of the world: numbers measured on
photos10 are stand-in numbers, not CIFAR-10 numbers.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .checks import check_choice, check_int
from .errors import DataError
from .images import ImageSet
from .settings import PHOTOS

SPLITS = ("train", "test")
PHOTOS10 = PHOTOS
_SIZE = 32
TEST_FRACTION = 0.3  # share of each photograph's width (or height) kept for the test split
PHOTOS10_MAX_IMAGES = 200_000  # 600 MB of uint8 patches; CIFAR-10's own splits are 50,000 and 10,000
_SPLIT_STREAM = {"train": 0, "test": 1}  # separate random streams, as in shapes10
_FIX = "pip install scikit-image scikit-learn"
_CHUNK = 4096  # boxes resized per roi_align call: bounds the float scratch buffer to ~50 MB
_LEVELS_PER_OCTAVE = 4  # pyramid levels per halving of the size


@dataclass(frozen=True)
class PhotoSource:
    """Where one class's photograph comes from and who made it."""

    label: str         # class name
    source: str        # the installed function that returns the photograph
    file: str          # its file inside the package
    subject: str
    credit: str
    licence: str
    test_side: str     # edge whose band is the test region: "left", "right", "top" or "bottom"


PHOTO_CREDITS: tuple[PhotoSource, ...] = (
    PhotoSource("astronaut", "skimage.data.astronaut", "skimage/data/astronaut.png",
                "Astronaut Eileen Collins", "NASA (NASA Great Images database)",
                "public domain (no known copyright restrictions)", "bottom"),
    PhotoSource("cat", "skimage.data.chelsea", "skimage/data/chelsea.png",
                "Chelsea the cat", "Stefan van der Walt", "CC0", "left"),
    PhotoSource("coffee", "skimage.data.coffee", "skimage/data/coffee.png",
                "A cup of coffee, courtesy of Pikolo Espresso Bar", "Rachel Michetti", "CC0", "right"),
    PhotoSource("galaxies", "skimage.data.hubble_deep_field", "skimage/data/hubble_deep_field.jpg",
                "Hubble eXtreme Deep Field", "NASA (HubbleSite)", "public domain", "right"),
    PhotoSource("tissue", "skimage.data.immunohistochemistry", "skimage/data/ihc.png",
                "Colonic glands, IHC staining with hematoxylin counterstain",
                "Center for Microscopy And Molecular Imaging (CMMI)",
                "no known copyright restrictions", "right"),
    PhotoSource("retina", "skimage.data.retina", "skimage/data/retina.jpg",
                "Fundus photograph of a normal left eye", "Mikael Häggström (Wikimedia Commons)",
                "CC0 1.0", "right"),
    PhotoSource("rocket", "skimage.data.rocket", "skimage/data/rocket.jpg",
                "Falcon 9 carrying DSCOVR on the launch pad", "SpaceX", "public domain", "right"),
    PhotoSource("motorcycle", "skimage.data.stereo_motorcycle", "skimage/data/motorcycle_left.png",
                "Motorcycle, left view of the Middlebury 2014 stereo pair (downsampled by 4)",
                "D. Scharstein et al., Middlebury College (GCPR 2014)",
                "use and publication permitted by the Middlebury stereo page; citation requested",
                "right"),
    PhotoSource("temple", "sklearn.datasets.load_sample_image('china.jpg')", "sklearn/datasets/images/china.jpg",
                "Tower of the Summer Palace, Beijing", "danielbuechele (Flickr)", "CC BY 2.0", "left"),
    PhotoSource("flower", "sklearn.datasets.load_sample_image('flower.jpg')", "sklearn/datasets/images/flower.jpg",
                "A dahlia", "vultilion (Flickr)", "CC BY 2.0", "bottom"),
)
PHOTOS10_CLASSES: tuple[str, ...] = tuple(p.label for p in PHOTO_CREDITS)


def _skimage(name: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        image = getattr(skimage.data, name)()
        return image[0] if name == "stereo_motorcycle" else image  # (left, right, disparity)
    return load


def _sklearn(filename: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(filename)
    return load


# One loader per class, in PHOTOS10_CLASSES order; tests replace entries to simulate damage.
_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"), "cat": _skimage("chelsea"), "coffee": _skimage("coffee"),
    "galaxies": _skimage("hubble_deep_field"), "tissue": _skimage("immunohistochemistry"),
    "retina": _skimage("retina"), "rocket": _skimage("rocket"), "motorcycle": _skimage("stereo_motorcycle"),
    "temple": _sklearn("china.jpg"), "flower": _sklearn("flower.jpg"),
}


def make_photos10(n: int, *, seed: int = 0, split: str = "train") -> ImageSet:
    """``n`` 32x32 photo patches with balanced classes, identical for the same (n, seed, split).

    Defined in notebook 01 (data preparation). Returns an :class:`ImageSet` named ``"photos10"``:
    uint8 images (n, 3, 32, 32), pixels 0..255, labels 0..9 in :data:`PHOTOS10_CLASSES` order.
    Class counts differ by at most one; their order is shuffled with the seed. Train and test
    patches come from disjoint regions of each photograph (see the module docstring).

    Raises:
        ValueError/TypeError: ``n`` not in 1..PHOTOS10_MAX_IMAGES, a negative ``seed``, an unknown ``split``.
        DataError: a source photograph is missing or unreadable (reinstall scikit-image/scikit-learn).
    """
    check_int("n", n, minimum=1, maximum=PHOTOS10_MAX_IMAGES)
    check_int("seed", seed, minimum=0)
    check_choice("split", split, SPLITS)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM[split]]))
    labels = rng.permutation(np.arange(n) % len(PHOTOS10_CLASSES)).astype(np.int64)
    boxes = _draw_boxes(rng, labels, split)       # (n, 4) x0, y0, x1, y1 in region pixels
    flips = rng.random(n) < 0.5

    images = torch.empty((n, 3, _SIZE, _SIZE), dtype=torch.uint8)
    for class_index, label in enumerate(PHOTOS10_CLASSES):
        rows = np.flatnonzero(labels == class_index)
        if len(rows):
            images[torch.from_numpy(rows)] = _resize_boxes(label, split, boxes[rows])
    images = torch.where(torch.from_numpy(flips)[:, None, None, None], images.flip(-1), images)
    return ImageSet(images, torch.from_numpy(labels), PHOTOS10_CLASSES, PHOTOS10, split,
                    {"generator": "convae_utils.photos.make_photos10", "seed": seed,
                     "sources": [p.source for p in PHOTO_CREDITS]})


def photo_regions(label: str) -> dict[str, tuple[int, int, int, int]]:
    """The train and test regions of one class's photograph, as (x0, y0, x1, y1) pixel boxes.

    Defined in notebook 01. The boxes are half-open (``x1``, ``y1`` excluded) and share no pixel.
    """
    check_choice("label", label, PHOTOS10_CLASSES)
    height, width = _photo(label).shape[1:]
    source = PHOTO_CREDITS[PHOTOS10_CLASSES.index(label)]
    band_x, band_y = round(TEST_FRACTION * width), round(TEST_FRACTION * height)
    test, train = {
        "left": ((0, 0, band_x, height), (band_x, 0, width, height)),
        "right": ((width - band_x, 0, width, height), (0, 0, width - band_x, height)),
        "top": ((0, 0, width, band_y), (0, band_y, width, height)),
        "bottom": ((0, height - band_y, width, height), (0, 0, width, height - band_y)),
    }[source.test_side]
    return {"train": train, "test": test}


def patch_sides(label: str) -> tuple[float, float]:
    """(smallest, largest) side in photo pixels of the squares cut from one class's photograph."""
    shortest = min(min(x1 - x0, y1 - y0) for x0, y0, x1, y1 in photo_regions(label).values())
    largest = min(shortest, 0.5 * min(_photo(label).shape[1:]))
    return max(float(_SIZE), largest / 4), largest


def _draw_boxes(rng: np.random.Generator, labels: np.ndarray, split: str) -> np.ndarray:
    """Square crop boxes (n, 4) as (x0, y0, x1, y1) in the coordinates of each label's region."""
    n = len(labels)
    low, high = np.empty(n), np.empty(n)
    room_x, room_y = np.empty(n), np.empty(n)
    for class_index, label in enumerate(PHOTOS10_CLASSES):
        rows = labels == class_index
        low[rows], high[rows] = patch_sides(label)
        x0, y0, x1, y1 = photo_regions(label)[split]
        room_x[rows], room_y[rows] = x1 - x0, y1 - y0
    # Log-uniform sides: as many close-ups as wide views.
    side = np.exp(rng.uniform(np.log(low), np.log(high)))
    left = rng.uniform(0.0, 1.0, n) * (room_x - side)
    top = rng.uniform(0.0, 1.0, n) * (room_y - side)
    return np.stack([left, top, left + side, top + side], axis=1)


def _resize_boxes(label: str, split: str, boxes: np.ndarray) -> torch.Tensor:
    """Cut ``boxes`` (k, 4) out of one region and shrink each to 32x32: uint8 (k, 3, 32, 32).

    Each box is read from the pyramid level at which its side is 32..38 pixels (levels are a
    quarter octave apart and were shrunk with an anti-aliased filter), so the last step, one
    bilinear sample per output pixel by ``roi_align``, shrinks by at most 2**0.25 and cannot alias.
    """
    from torchvision.ops import roi_align  # late: torchvision's import costs a second

    pyramid = _pyramid(label, split)
    sides = boxes[:, 2] - boxes[:, 0]
    levels = np.clip(np.floor(_LEVELS_PER_OCTAVE * np.log2(sides / _SIZE)).astype(int), 0, len(pyramid) - 1)
    out = torch.empty((len(boxes), 3, _SIZE, _SIZE), dtype=torch.uint8)
    for level in np.unique(levels):
        image, scale_x, scale_y = pyramid[level]
        image = image.float()
        rows = np.flatnonzero(levels == level)
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            scaled = boxes[chunk] * np.array([scale_x, scale_y, scale_x, scale_y])
            rois = torch.cat([torch.zeros(len(chunk), 1), torch.from_numpy(scaled).float()], dim=1)  # (k, 5)
            patches = roi_align(image, rois, output_size=_SIZE, spatial_scale=1.0,
                                sampling_ratio=1, aligned=True)
            out[torch.from_numpy(chunk)] = patches.add_(0.5).clamp_(0.0, 255.0).to(torch.uint8)
    return out


@functools.lru_cache(maxsize=None)
def _pyramid(label: str, split: str) -> tuple[tuple[torch.Tensor, float, float], ...]:
    """One region of a photograph at every quarter-octave scale down to the smallest patch side.

    Returns (image uint8 (1, 3, h, w), x scale, y scale) per level, level 0 the region itself.
    Only this region's pixels enter: the region is cut out before any filter runs.
    """
    x0, y0, x1, y1 = photo_regions(label)[split]
    region = _photo(label)[:, y0:y1, x0:x1].unsqueeze(0).float()  # (1, 3, h, w)
    height, width = region.shape[-2:]
    top_level = int(np.floor(_LEVELS_PER_OCTAVE * np.log2(patch_sides(label)[1] / _SIZE)))
    levels = [(region.to(torch.uint8), 1.0, 1.0)]
    for level in range(1, top_level + 1):
        factor = 2.0 ** (-level / _LEVELS_PER_OCTAVE)
        size = (max(1, round(height * factor)), max(1, round(width * factor)))
        shrunk = F.interpolate(region, size=size, mode="bilinear", antialias=True, align_corners=False)
        levels.append((shrunk.add_(0.5).clamp_(0.0, 255.0).to(torch.uint8), size[1] / width, size[0] / height))
    return tuple(levels)


@functools.lru_cache(maxsize=None)
def _photo(label: str) -> torch.Tensor:
    """One class's photograph as uint8 (3, H, W), decoded once per process."""
    source = PHOTO_CREDITS[PHOTOS10_CLASSES.index(label)]
    where = f"photo {label!r} ({source.source}, file {source.file})"
    try:
        image = _LOADERS[label]()
    except ImportError as exc:
        raise DataError(f"{PHOTOS10} needs scikit-image and scikit-learn, which ship its photographs: "
                        f"{exc}. Install them with `{_FIX}`.") from exc
    except Exception as exc:  # a missing, truncated or unreadable file: all mean "reinstall"
        raise DataError(f"{PHOTOS10} cannot read its {where}: {type(exc).__name__}: {exc}. The file ships "
                        f"with the package; reinstall it with `{_FIX} --force-reinstall`.") from exc
    image = np.asarray(image)
    min_side = 4 * _SIZE
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < min_side:
        raise DataError(f"{PHOTOS10} expected its {where} as an RGB uint8 array of at least {min_side}x{min_side} "
                        f"pixels, got {image.dtype} of shape {image.shape}. Reinstall the package with "
                        f"`{_FIX} --force-reinstall`.")
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def load_all_photos() -> None:
    """Decode every source photograph now (cached), so a missing one fails before any training."""
    for label in PHOTOS10_CLASSES:
        _photo(label)


def photos10_available() -> bool:
    """True when every source photograph can be read (scikit-image and scikit-learn installed and whole)."""
    try:
        load_all_photos()
    except DataError:
        return False
    return True


def _clear_caches() -> None:
    """Forget decoded photographs and pyramids (tests that swap loaders call this)."""
    _photo.cache_clear()
    _pyramid.cache_clear()

