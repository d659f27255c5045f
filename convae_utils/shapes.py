"""shapes10: the offline stand-in for CIFAR-10 -- ten classes of simple pictures drawn on the fly.

Defined in notebook 01 (data preparation). When CIFAR-10 cannot be downloaded (a workshop without
internet, a CI runner) the series still runs end to end on these images: 32x32 RGB, uint8, the same
layout as CIFAR-10, ten human-recognisable classes with random position, size, rotation and colours,
a soft background gradient and a little noise. An autoencoder has real structure to learn here, but
the pictures are simpler than photographs, so numbers measured on them are not CIFAR-10 numbers.

Every image is drawn with vectorised NumPy: the only Python loops run over chunks of images and
over the ten classes, never over images or pixels.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib.colors import hsv_to_rgb

from .checks import check_choice, check_int
from .images import ImageSet
from .settings import MAX_IMAGES, SHAPES

SPLITS = ("train", "test")

SHAPES10_CLASSES: tuple[str, ...] = (
    "circle", "square", "triangle", "ring", "cross",
    "diamond", "horizontal stripes", "vertical stripes", "checkerboard", "gradient blob",
)
_SIZE = 32
_CHUNK = 1024  # images drawn at once: small float32 scratch buffers (~15 MB) stay cache-friendly
# Train and test draw from separate streams of one SeedSequence, so they never share an image.
_SPLIT_STREAM = {"train": 0, "test": 1}
_ANGLES = np.deg2rad(12.0)  # orientation jitter of the classes whose orientation is their identity


def make_shapes10(n: int, *, seed: int = 0, split: str = "train") -> ImageSet:
    """``n`` stand-in images with balanced classes, identical for the same (n, seed, split).

    Defined in notebook 01 (data preparation). Class counts differ by at most one; their order is
    shuffled with the seed.
    """
    check_int("n", n, minimum=1, maximum=MAX_IMAGES)
    check_int("seed", seed, minimum=0)
    check_choice("split", split, SPLITS)
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_STREAM[split]]))

    labels = rng.permutation(np.arange(n) % len(SHAPES10_CLASSES)).astype(np.int64)
    params = _draw_params(rng, labels)
    images = np.empty((n, 3, _SIZE, _SIZE), dtype=np.uint8)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        chunk = {key: value[start:stop] for key, value in params.items()}
        images[start:stop] = _render(rng, labels[start:stop], chunk)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), SHAPES10_CLASSES, SHAPES,
                    split, {"generator": "convae_utils.shapes.make_shapes10", "seed": seed})


def _draw_params(rng: np.random.Generator, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Every per-image random choice, drawn up front so rendering in chunks stays deterministic."""
    n = len(labels)
    f32 = np.float32
    # Colour belongs to the class, as in photographs (sky is blue, a retina orange): each class has its
    # own hue (+-0.03), a dark shade and a light complementary one, so the shape always stands out.
    # With colours drawn at random per image, nothing in a picture predicts its colour, and a model
    # trained on the workshop budget returned grey (17% of the originals' chroma; 32% and then 99%
    # kept once colour followed the class: experiments/colour/README.md).
    hue = (labels / len(SHAPES10_CLASSES) + rng.uniform(-0.03, 0.03, n)) % 1.0
    dark = hsv_to_rgb(np.stack([hue, rng.uniform(0.5, 0.9, n), rng.uniform(0.25, 0.5, n)], axis=1)).astype(f32)
    light = hsv_to_rgb(np.stack([(hue + 0.5) % 1.0, rng.uniform(0.3, 0.7, n), rng.uniform(0.75, 1.0, n)],
                                axis=1)).astype(f32)
    light_on_dark = rng.random(n) < 0.5
    background = np.where(light_on_dark[:, None], dark, light)
    foreground = np.where(light_on_dark[:, None], light, dark)

    jitter = rng.uniform(-_ANGLES, _ANGLES, n)
    angle = jitter.copy()
    angle[labels == SHAPES10_CLASSES.index("diamond")] += np.pi / 4  # a square standing on a corner
    free = np.isin(labels, [SHAPES10_CLASSES.index(c) for c in ("triangle", "circle", "ring")])
    angle[free] = rng.uniform(0.0, 2 * np.pi, int(free.sum()))  # orientation says nothing here

    gradient_angle = rng.uniform(0.0, 2 * np.pi, n)
    return {
        "background": background,
        "foreground": foreground,
        "cx": rng.uniform(12.0, 20.0, n).astype(f32),
        "cy": rng.uniform(12.0, 20.0, n).astype(f32),
        "radius": rng.uniform(6.5, 11.0, n).astype(f32),
        "cos": np.cos(angle).astype(f32),
        "sin": np.sin(angle).astype(f32),
        "period": rng.uniform(5.0, 9.0, n).astype(f32),
        "phase": rng.uniform(0.0, 2 * np.pi, n).astype(f32),
        "blob_x": rng.uniform(9.0, 23.0, n).astype(f32),
        "blob_y": rng.uniform(9.0, 23.0, n).astype(f32),
        "blob_sigma": rng.uniform(3.5, 7.0, n).astype(f32),
        "gradient_x": (np.cos(gradient_angle) * rng.uniform(0.0, 0.12, n)).astype(f32),
        "gradient_y": (np.sin(gradient_angle) * rng.uniform(0.0, 0.12, n)).astype(f32),
    }


def _coverage(signed_distance: np.ndarray) -> np.ndarray:
    """Signed distance to an edge in pixels -> how much of the pixel the shape covers (anti-aliased)."""
    return np.clip(0.5 - signed_distance, 0.0, 1.0)


def _alpha(kind: str, x: np.ndarray, y: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Foreground coverage (k, 32, 32) in [0, 1] for ``k`` images of one class."""
    def col(key: str) -> np.ndarray:
        return p[key][:, None, None]

    dx, dy = x - col("cx"), y - col("cy")
    cos, sin = col("cos"), col("sin")
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos  # coordinates in the shape's own frame
    r = col("radius")
    if kind == "circle":
        return _coverage(np.hypot(u, v) - r)
    if kind in ("square", "diamond"):
        return _coverage(np.maximum(np.abs(u), np.abs(v)) - 0.78 * r)
    if kind == "triangle":
        # Equilateral: inside all three half-planes whose normals point 120 degrees apart.
        edges = [u * np.cos(a) + v * np.sin(a) for a in (np.pi / 2, np.pi / 2 + 2 * np.pi / 3,
                                                         np.pi / 2 + 4 * np.pi / 3)]
        return _coverage(np.maximum(np.maximum(edges[0], edges[1]), edges[2]) - 0.55 * r)
    if kind == "ring":
        return _coverage(np.abs(np.hypot(u, v) - 0.72 * r) - 0.24 * r)
    if kind == "cross":
        arm, half_width = r, 0.27 * r
        bar_h = np.maximum(np.abs(u) - arm, np.abs(v) - half_width)
        bar_v = np.maximum(np.abs(u) - half_width, np.abs(v) - arm)
        return _coverage(np.minimum(bar_h, bar_v))
    if kind in ("horizontal stripes", "vertical stripes", "checkerboard"):
        # Whole-image textures, turned with the image centre as pivot (cx, cy only jitter the phase).
        period, phase = col("period"), col("phase")
        wave_u = np.sin(2 * np.pi * u / period + phase)
        wave_v = np.sin(2 * np.pi * v / period + phase)
        wave = {"horizontal stripes": wave_v, "vertical stripes": wave_u,
                "checkerboard": np.sign(wave_u) * np.sign(wave_v) * np.sqrt(np.abs(wave_u * wave_v))}[kind]
        return np.clip(0.5 + 1.5 * wave, 0.0, 1.0)  # a square wave with soft edges
    if kind == "gradient blob":
        d2 = (x - col("blob_x")) ** 2 + (y - col("blob_y")) ** 2
        return np.exp(-d2 / (2 * col("blob_sigma") ** 2))
    raise AssertionError(f"no drawing rule for class {kind!r}")


def _render(rng: np.random.Generator, labels: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Draw one chunk of images: (k, 3, 32, 32) uint8."""
    k = len(labels)
    grid = np.arange(_SIZE, dtype=np.float32) + 0.5  # pixel centres
    y, x = grid[:, None], grid[None, :]
    alpha = np.empty((k, _SIZE, _SIZE), dtype=np.float32)
    for class_index, kind in enumerate(SHAPES10_CLASSES):
        rows = np.flatnonzero(labels == class_index)
        if len(rows):
            alpha[rows] = _alpha(kind, x, y, {key: value[rows] for key, value in p.items()})

    # In-place arithmetic on one (k, 3, 32, 32) buffer: this step dominates the cost.
    img = alpha[:, None] * (p["foreground"] - p["background"])[:, :, None, None]
    img += p["background"][:, :, None, None]
    # A gentle lighting gradient and grain, so no two images of a class are flat copies.
    centred = (grid - _SIZE / 2) * (2 / _SIZE)
    shade = rng.standard_normal((k, _SIZE, _SIZE), dtype=np.float32)
    shade *= 0.025
    shade += p["gradient_x"][:, None, None] * centred[None, None, :]
    shade += p["gradient_y"][:, None, None] * centred[None, :, None]
    img += shade[:, None]
    img *= 255.0
    img += 0.5  # round, not truncate, in the cast below
    np.clip(img, 0.0, 255.0, out=img)
    return img.astype(np.uint8)
