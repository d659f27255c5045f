"""photos10: patches of the photographs shipped in scikit-image and scikit-learn."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from convae_utils import photos
from convae_utils.errors import DataError
from convae_utils.photos import (PHOTO_CREDITS, PHOTOS10_CLASSES, PHOTOS10_MAX_IMAGES, make_photos10,
                                 patch_sides, photo_regions)

pytest.importorskip("skimage")
pytest.importorskip("sklearn")


@pytest.fixture
def fresh_caches():
    """Decoded photographs are cached per process: start and end each loader-swapping test clean."""
    photos._clear_caches()
    yield
    photos._clear_caches()


def test_layout_and_labels():
    ds = make_photos10(23, seed=0)
    assert ds.name == "photos10" and ds.split == "train"
    assert ds.images.dtype == torch.uint8 and tuple(ds.images.shape) == (23, 3, 32, 32)
    assert ds.classes == PHOTOS10_CLASSES and len(PHOTOS10_CLASSES) == 10
    counts = ds.class_counts()
    assert max(counts) - min(counts) <= 1 and sum(counts) == 23


def test_deterministic_and_seeded():
    a, b = make_photos10(200, seed=3), make_photos10(200, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, make_photos10(200, seed=4).images)
    assert not torch.equal(a.images, make_photos10(200, seed=3, split="test").images)


def test_patches_are_real_pictures_not_flat_fills():
    ds = make_photos10(500, seed=0)
    per_image_std = ds.images.float().std(dim=(1, 2, 3))
    assert float(per_image_std.median()) > 5.0  # grey levels of 0..255: texture and edges, not flat colour
    # Ten photographs have ten different mean colours: the classes can be told apart by their pictures.
    means = torch.stack([ds.images[ds.labels == k].float().mean(dim=(0, 2, 3)) for k in range(10)])
    assert float(torch.cdist(means, means).add(torch.eye(10) * 1e3).min()) > 1.0


@pytest.mark.parametrize("label", PHOTOS10_CLASSES)
def test_train_and_test_regions_share_no_pixel(label):
    regions = photo_regions(label)
    (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = regions["train"], regions["test"]
    overlap_w = min(ax1, bx1) - max(ax0, bx0)
    overlap_h = min(ay1, by1) - max(ay0, by0)
    assert overlap_w <= 0 or overlap_h <= 0
    height, width = photos._photo(label).shape[1:]
    for x0, y0, x1, y1 in regions.values():
        assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
        assert min(x1 - x0, y1 - y0) >= patch_sides(label)[1]  # the largest patch fits in each region


@pytest.mark.parametrize("split", ["train", "test"])
def test_every_crop_box_lies_inside_its_region(split):
    rng = np.random.default_rng(0)
    labels = np.arange(2000) % 10
    boxes = photos._draw_boxes(rng, labels, split)
    for k, label in enumerate(PHOTOS10_CLASSES):
        x0, y0, x1, y1 = photo_regions(label)[split]
        b = boxes[labels == k]
        low, high = patch_sides(label)
        assert (b[:, :2] >= 0).all() and (b[:, 2] <= x1 - x0).all() and (b[:, 3] <= y1 - y0).all()
        side = b[:, 2] - b[:, 0]
        assert np.allclose(side, b[:, 3] - b[:, 1]) and (side >= low - 1e-9).all() and (side <= high + 1e-9).all()


def test_no_test_pixel_reaches_a_training_patch(monkeypatch, fresh_caches):
    # Paint every photograph black in its training region and white in its test region: through the
    # whole pipeline (pyramid filters, resampling, flips) train patches must stay black, test white.
    shapes = {label: photos._photo(label).shape for label in PHOTOS10_CLASSES}
    painted = {}
    for label, (_, height, width) in shapes.items():
        x0, y0, x1, y1 = photo_regions(label)["test"]
        image = np.zeros((height, width, 3), dtype=np.uint8)
        image[y0:y1, x0:x1] = 255
        painted[label] = image
    photos._clear_caches()
    for label, image in painted.items():
        monkeypatch.setitem(photos._LOADERS, label, lambda image=image: image)
    assert int(make_photos10(3000, seed=1, split="train").images.max()) == 0
    assert int(make_photos10(3000, seed=1, split="test").images.min()) == 255


def test_resize_matches_an_antialiased_reference():
    # The pyramid + roi_align resize against torch's anti-aliased bilinear resize of the same crop.
    label = "retina"
    x0, y0, x1, y1 = photo_regions(label)["train"]
    region = photos._photo(label)[:, y0:y1, x0:x1].float().unsqueeze(0)
    boxes = np.array([[500, 600, 500 + s, 600 + s] for s in (32, 45, 64, 150, 300, 423)], dtype=float)
    ours = photos._resize_boxes(label, "train", boxes).float()
    for box, patch in zip(boxes.astype(int), ours):
        crop = region[:, :, box[1]:box[3], box[0]:box[2]]
        reference = F.interpolate(crop, size=(32, 32), mode="bilinear", antialias=True, align_corners=False)[0]
        assert float((patch - reference).abs().mean()) < 3.0, f"side {box[2] - box[0]}"  # of 0..255


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 0}, "at least 1"),
    ({"n": PHOTOS10_MAX_IMAGES + 1}, "at most"),
    ({"n": 10, "split": "val"}, "split must be one of"),
    ({"n": 10, "seed": -1}, "seed"),
])
def test_bad_arguments_fail_where_they_enter(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_photos10(**kwargs)


def test_missing_photo_names_it_and_the_fix(monkeypatch, fresh_caches):
    def missing():
        raise FileNotFoundError(2, "No such file or directory", "/site-packages/skimage/data/rocket.jpg")

    monkeypatch.setitem(photos._LOADERS, "rocket", missing)
    with pytest.raises(DataError, match=r"photo 'rocket'.*rocket\.jpg.*pip install scikit-image scikit-learn"):
        make_photos10(20)
    assert not photos.photos10_available()


def test_missing_package_says_what_to_install(monkeypatch, fresh_caches):
    def no_package():
        raise ModuleNotFoundError("No module named 'sklearn'")

    monkeypatch.setitem(photos._LOADERS, "flower", no_package)
    with pytest.raises(DataError, match="needs scikit-image and scikit-learn.*pip install scikit-image scikit-learn"):
        make_photos10(20)


def test_unreadable_photo_is_reported(monkeypatch, fresh_caches):
    monkeypatch.setitem(photos._LOADERS, "cat", lambda: np.zeros((300, 451), dtype=np.uint8))  # grey, no channels
    with pytest.raises(DataError, match=r"photo 'cat'.*RGB uint8.*\(300, 451\)"):
        make_photos10(20)


def test_nothing_is_written_to_disk(tmp_path, monkeypatch, fresh_caches):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    make_photos10(50, split="test")
    assert list(tmp_path.iterdir()) == []


def test_credits_name_an_installed_source_and_a_licence():
    assert [c.label for c in PHOTO_CREDITS] == list(PHOTOS10_CLASSES)
    for credit in PHOTO_CREDITS:
        assert credit.credit and credit.licence and credit.subject
        module_name, _, function = credit.source.split("(")[0].rpartition(".")
        assert callable(getattr(importlib.import_module(module_name), function))
        assert credit.test_side in ("left", "right", "top", "bottom")
