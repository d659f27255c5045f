"""Tests of convae_utils.data and convae_utils.shapes: offline, small, a few seconds in all."""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from cifar_fixtures import ARCHIVE_NAME, BASE_FOLDER, DROP, HANG, Short, closed_port_url, md5, serve
from convae_utils import cifar10, data
from convae_utils.cifar10 import cifar10_available, cifar10_reachable, download_cifar10, load_cifar10
from convae_utils.data import (DataBundle, DatasetFallbackWarning, class_exemplars, load_dataset, prepare_data,
                               split_train_val)
from convae_utils.images import ImageSet, denormalize, normalize, to_uint8
from convae_utils.settings import SHAPES, STANDIN, preset
from convae_utils.errors import DataError
from convae_utils.shapes import SHAPES10_CLASSES, make_shapes10

# what the user types: the command line's option and the notebooks' environment switch
WAYS_OUT = ("python -m convae_utils download", ARCHIVE_NAME, "--dataset photos10 on the command line",
            "CONVAE_DATASET=photos10 for notebooks")


@pytest.fixture(autouse=True)
def _offline(offline_cifar, monkeypatch):
    """Every test here runs offline: empty data folder, CIFAR URL on a closed port, short backoff."""
    monkeypatch.setattr(cifar10, "_BACKOFF_S", 0.01)


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("cifar-10-python")) if root.exists() else []


def _assert_ways_out(message: str, root: Path) -> None:
    for hint in (*WAYS_OUT, str(root)):
        assert hint in message, f"{hint!r} missing from: {message}"


# ---------------------------------------------------------------- CIFAR-10: download and load

def test_download_then_offline_load_matches_fabricated_pixels(fake_cifar, tmp_path):
    root = tmp_path / "data"
    with serve(fake_cifar.archive) as server:
        train = load_cifar10("train", root, url=server.url(), progress=False)
        test = load_cifar10("test", root, url=server.url(), progress=False)
        assert server.gets == 1, "the second split must come from disk, not a second download"
    assert _leftovers(root) == [ARCHIVE_NAME]
    assert md5((root / ARCHIVE_NAME).read_bytes()) == md5(fake_cifar.archive)

    assert (train.name, train.split, len(train), len(test)) == ("cifar10", "train", 100, 20)
    assert train.images.dtype == torch.uint8 and train.images.shape == (100, 3, 32, 32)
    assert train.images.is_contiguous() and train.labels.dtype == torch.int64
    assert train.classes == fake_cifar.classes
    # A stored row holds 1,024 red bytes, then green, then blue, each row-major: (c, y, x) -> c*1024 + y*32 + x.
    rows = fake_cifar.train_rows
    for k, c, y, x in [(0, 0, 0, 1), (7, 1, 5, 30), (99, 2, 31, 0), (42, 0, 17, 3)]:
        assert int(train.images[k, c, y, x]) == int(rows[k, c * 1024 + y * 32 + x])
    assert torch.equal(train.images, torch.from_numpy(rows.reshape(-1, 3, 32, 32)))
    assert torch.equal(train.labels, torch.from_numpy(fake_cifar.train_labels))
    assert torch.equal(test.images.reshape(20, -1), torch.from_numpy(fake_cifar.test_rows))

    # Server gone: the same folder still loads, with download off and with an unreachable URL.
    again = load_cifar10("train", root, download=False)
    assert torch.equal(again.images, train.images)
    offline = load_cifar10("test", root, url=closed_port_url(), retries=1, progress=False)
    assert torch.equal(offline.images, test.images)


def test_verified_archive_alone_is_extracted_without_network(fake_cifar, tmp_path):
    root = fake_cifar.install(tmp_path / "data", extracted=False)
    test = load_cifar10("test", root, download=False)
    assert torch.equal(test.labels, torch.from_numpy(fake_cifar.test_labels))
    assert (root / BASE_FOLDER / "data_batch_5").is_file()


def test_download_does_nothing_when_data_is_present(cifar_root):
    assert download_cifar10(cifar_root, url=closed_port_url(), progress=False) == cifar_root


def _count_tries(monkeypatch) -> list[str]:
    tries: list[str] = []
    real = cifar10._stream_once

    def counted(url, *args):
        tries.append(url)
        return real(url, *args)

    monkeypatch.setattr(cifar10, "_stream_once", counted)
    return tries


def test_refused_connection_fails_fast_with_three_ways_out(fake_cifar, tmp_path, monkeypatch):
    root, url = tmp_path / "data", closed_port_url()
    tries = _count_tries(monkeypatch)
    start = time.perf_counter()
    with pytest.raises(DataError) as info:
        download_cifar10(root, url=url, retries=3, progress=False)
    assert time.perf_counter() - start < 2.0
    assert tries == [url], "a refused connection means offline: not worth retrying"
    message = str(info.value)
    assert url in message and "ConnectionRefusedError" in message
    _assert_ways_out(message, root)
    assert _leftovers(root) == []


def test_an_unwritable_data_folder_names_both_ways_to_choose_another(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(DataError, match="cannot write to the data folder") as info:
        download_cifar10(blocker / "data", progress=False)
    assert "--data-dir on the command line, $CONVAE_DATA_DIR=<path> or data_dir=... for notebooks" in str(info.value)


def test_silent_server_ends_within_the_timeout(fake_cifar, tmp_path):
    root = tmp_path / "data"
    with serve(HANG) as server:
        start = time.perf_counter()
        with pytest.raises(DataError, match="2 tries") as info:
            download_cifar10(root, url=server.url(), timeout=0.5, retries=2, progress=False)
        elapsed = time.perf_counter() - start
        assert server.gets == 2, "a timeout is transient: it is retried"
    assert elapsed < 4.0
    assert "Timeout" in str(info.value)
    _assert_ways_out(str(info.value), root)
    assert _leftovers(root) == []


@pytest.mark.parametrize("damage", ["truncated", "flipped byte"])
def test_damaged_download_is_rejected_and_nothing_kept(fake_cifar, tmp_path, damage):
    archive = fake_cifar.archive
    bad = archive[: len(archive) // 2] if damage == "truncated" else archive[:100] + b"\x00" + archive[101:]
    root = tmp_path / "data"
    with serve(bad) as server, pytest.raises(DataError, match="md5") as info:
        load_cifar10("train", root, url=server.url(), progress=False)
    _assert_ways_out(str(info.value), root)
    assert _leftovers(root) == [] and not (root / BASE_FOLDER).exists()


@pytest.mark.parametrize("first", [500, DROP, "short"], ids=["http-500", "dropped", "short-read"])
def test_transient_failure_is_retried(fake_cifar, tmp_path, first):
    first = Short(fake_cifar.archive) if first == "short" else first
    root = tmp_path / "data"
    with serve(first, fake_cifar.archive) as server:
        download_cifar10(root, url=server.url(), retries=2, progress=False)
        assert server.gets == 2
    assert _leftovers(root) == [ARCHIVE_NAME]
    assert md5((root / ARCHIVE_NAME).read_bytes()) == md5(fake_cifar.archive)


def test_short_read_on_every_try_leaves_no_part_file(fake_cifar, tmp_path):
    root = tmp_path / "data"
    with serve(Short(fake_cifar.archive)) as server:
        with pytest.raises(DataError, match="2 tries.*connection closed after"):
            download_cifar10(root, url=server.url(), retries=2, progress=False)
        assert server.gets == 2
    assert _leftovers(root) == []


def test_http_404_is_not_retried(fake_cifar, tmp_path):
    with serve(404) as server:
        with pytest.raises(DataError, match="HTTP 404"):
            download_cifar10(tmp_path / "data", url=server.url(), retries=3, progress=False)
        assert server.gets == 1


def test_damaged_batch_is_extracted_afresh_from_the_archive(fake_cifar, cifar_root):
    batch = cifar_root / BASE_FOLDER / "data_batch_3"
    damaged = bytearray(batch.read_bytes())
    damaged[-50] ^= 0xFF  # inside the pixel array: unpickling would succeed with wrong pixels
    batch.write_bytes(bytes(damaged))
    with pytest.warns(UserWarning, match="data_batch_3"):
        train = load_cifar10("train", cifar_root, download=False)
    assert torch.equal(train.images, torch.from_numpy(fake_cifar.train_rows.reshape(-1, 3, 32, 32)))
    assert batch.read_bytes() == fake_cifar.files["data_batch_3"]


def test_damaged_batch_without_archive_is_a_clear_error(fake_cifar, tmp_path):
    root = fake_cifar.install(tmp_path / "data", archive=False)
    (root / BASE_FOLDER / "test_batch").write_bytes(fake_cifar.files["test_batch"][:-10])
    with pytest.raises(DataError, match="test_batch") as info:
        load_cifar10("test", root, download=False)
    _assert_ways_out(str(info.value), root)


def test_missing_metadata_is_repaired(fake_cifar, cifar_root):
    # torchvision's own check skips batches.meta; ours does not, so this is repaired, not a crash.
    (cifar_root / BASE_FOLDER / "batches.meta").unlink()
    with pytest.warns(UserWarning, match="batches.meta"):
        assert load_cifar10("test", cifar_root, download=False).classes == fake_cifar.classes


def test_damaged_archive_on_disk_is_removed_then_downloaded_again(fake_cifar, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / ARCHIVE_NAME).write_bytes(fake_cifar.archive[:1000])
    assert not cifar10_available(root)
    with pytest.warns(UserWarning, match="damaged"), pytest.raises(DataError, match="removed"):
        load_cifar10("test", root, download=False)
    assert _leftovers(root) == []

    (root / ARCHIVE_NAME).write_bytes(fake_cifar.archive[:1000])
    with serve(fake_cifar.archive) as server, pytest.warns(UserWarning, match="damaged"):
        test = load_cifar10("test", root, url=server.url(), progress=False)
    assert len(test) == 20 and cifar10_available(root)


def test_cifar10_available_and_reachable(fake_cifar, tmp_path, cifar_root):
    assert not cifar10_available(tmp_path / "empty")
    assert cifar10_available(cifar_root)
    assert cifar10_available(fake_cifar.install(tmp_path / "archive-only", extracted=False))
    assert not cifar10_reachable(closed_port_url())
    with serve(b"archive") as server:
        assert cifar10_reachable(server.url())
        assert server.requests == [f"HEAD /{ARCHIVE_NAME}"]  # a probe, not a download
    with serve(404) as server:
        assert not cifar10_reachable(server.url())
    with serve(HANG) as server:
        start = time.perf_counter()
        assert not cifar10_reachable(server.url(), timeout=0.3)
        assert time.perf_counter() - start < 2.0


def test_download_arguments_are_checked():
    with pytest.raises(ValueError, match="split"):
        load_cifar10("val")
    with pytest.raises(ValueError, match="timeout"):
        download_cifar10(timeout=0)
    with pytest.raises(ValueError, match="retries"):
        download_cifar10(retries=0)
    with pytest.raises(TypeError, match="timout"):
        load_cifar10("train", timout=3)


def test_url_comes_from_argument_then_environment_then_torchvision(monkeypatch):
    from torchvision.datasets import CIFAR10

    monkeypatch.setenv("CONVAE_CIFAR10_URL", "http://mirror.invalid/c.tgz")
    assert cifar10.cifar10_url("http://arg.invalid/c.tgz") == "http://arg.invalid/c.tgz"
    assert cifar10.cifar10_url() == "http://mirror.invalid/c.tgz"
    monkeypatch.delenv("CONVAE_CIFAR10_URL")
    assert cifar10.cifar10_url() == CIFAR10.url


# ---------------------------------------------------------------- shapes10, the offline stand-in

def test_shapes10_is_deterministic_and_splits_and_seeds_differ():
    a, b = make_shapes10(200, seed=3), make_shapes10(200, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, make_shapes10(200, seed=4).images)
    test = make_shapes10(200, seed=3, split="test")
    assert test.split == "test" and not torch.equal(a.images, test.images)
    train_rows = {bytes(img.numpy()) for img in a.images}
    assert not train_rows & {bytes(img.numpy()) for img in test.images}


def test_shapes10_layout_balance_and_names():
    ds = make_shapes10(253, seed=0)
    assert ds.name == SHAPES == "shapes10" and ds.classes == SHAPES10_CLASSES and len(set(ds.classes)) == 10
    assert ds.images.dtype == torch.uint8 and ds.images.shape == (253, 3, 32, 32)
    assert ds.labels.dtype == torch.int64
    counts = ds.class_counts()
    assert sum(counts) == 253 and max(counts) - min(counts) <= 1
    assert not torch.equal(ds.labels[:20], ds.labels[:20].sort().values), "class order must be shuffled"
    assert int(ds.images.min()) < 40 and int(ds.images.max()) > 215  # uses the range


def test_shapes10_images_have_structure():
    ds = make_shapes10(400, seed=1)
    pixels = ds.images.float()
    per_image_std = pixels.reshape(len(ds), -1).std(dim=1)
    assert float(per_image_std.min()) > 5.0, "every image must show more than flat noise"
    # The shapes' layout (not their random colours) tells the classes apart: compare mean
    # luminance-contrast maps, |pixel - image mean|, averaged per class.
    contrast = (pixels.mean(1) - pixels.mean((1, 2, 3))[:, None, None]).abs()
    means = torch.stack([contrast[ds.labels == c].mean(0) for c in range(10)]).reshape(10, -1)
    distances = torch.cdist(means, means) + torch.eye(10) * 1e9
    assert float(distances.min()) > 10.0, "two classes look alike on average"


def test_shapes10_is_fast():
    make_shapes10(10)  # warm-up
    start = time.perf_counter()
    make_shapes10(300)
    assert time.perf_counter() - start < 1.0  # about 0.02 s; generous for a shared CPU


@pytest.mark.parametrize("kwargs, match", [({"n": 0}, "n must be"), ({"n": 2_000_000}, "at most"),
                                           ({"n": 10, "split": "val"}, "split"),
                                           ({"n": 10, "seed": -1}, "seed")])
def test_shapes10_rejects_bad_arguments(kwargs, match):
    n = kwargs.pop("n")
    with pytest.raises(ValueError, match=match):
        make_shapes10(n, **kwargs)


# ---------------------------------------------------------------- ImageSet and its helpers

def _numbered_set(n: int, num_classes: int = 10, labels=None) -> ImageSet:
    """Images whose first two pixels spell their index, so subsets can be traced back."""
    images = torch.zeros(n, 3, 32, 32, dtype=torch.uint8)
    images[:, 0, 0, 0] = torch.arange(n) % 256
    images[:, 0, 0, 1] = torch.arange(n) // 256
    labels = torch.arange(n) % num_classes if labels is None else torch.as_tensor(labels)
    return ImageSet(images, labels, tuple(f"c{i}" for i in range(num_classes)), "numbered")


def _indices(ds: ImageSet) -> list[int]:
    return (ds.images[:, 0, 0, 0].long() + 256 * ds.images[:, 0, 0, 1].long()).tolist()


def test_class_exemplars_are_the_first_of_each_class_in_order():
    ds = _numbered_set(7, num_classes=4, labels=[3, 1, 1, 0, 2, 3, 0])
    ex = class_exemplars(ds)
    assert _indices(ex) == [3, 1, 4, 0] and ex.labels.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="c2"):
        class_exemplars(_numbered_set(4, num_classes=4, labels=[0, 1, 3, 3]))


def test_normalize_round_trip_and_range():
    pixels = torch.arange(256, dtype=torch.uint8).repeat(12)[: 3 * 32 * 32].reshape(1, 3, 32, 32)
    x = normalize(pixels)
    assert x.dtype == torch.float32 and torch.equal(to_uint8(x), pixels)
    ends = normalize(torch.tensor([0, 255], dtype=torch.uint8))
    assert ends.tolist() == [-1.0, 1.0]
    assert denormalize(torch.tensor([-3.0, 0.0, 3.0])).tolist() == [0.0, 0.5, 1.0]
    with pytest.raises(ValueError, match="uint8"):
        normalize(pixels.float())


def test_split_train_val_sizes_disjoint_and_seeded():
    ds = _numbered_set(50)
    train, val = split_train_val(ds, 12, seed=5)
    assert (len(train), len(val), train.split, val.split) == (38, 12, "train", "val")
    assert sorted(_indices(train) + _indices(val)) == list(range(50))
    assert _indices(split_train_val(ds, 12, seed=5)[1]) == _indices(val)
    assert _indices(split_train_val(ds, 12, seed=6)[1]) != _indices(val)
    assert len(split_train_val(ds, val_fraction=0.2)[1]) == 10


@pytest.mark.parametrize("kwargs, match", [
    ({"val_size": 0}, "at least 1"), ({"val_size": 50}, "at most 49"), ({}, "exactly one"),
    ({"val_size": 5, "val_fraction": 0.1}, "exactly one"), ({"val_fraction": 1.5}, r"\(0, 1\)"),
])
def test_split_train_val_rejects_bad_sizes(kwargs, match):
    with pytest.raises(ValueError, match=match):
        split_train_val(_numbered_set(50), **kwargs)


def test_imageset_rejects_bad_inputs():
    good = torch.zeros(4, 3, 32, 32, dtype=torch.uint8)
    labels = torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="uint8"):
        ImageSet(good.float(), labels, ("a",), "x")
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\), got \(4, 3, 64, 64\)"):
        ImageSet(torch.zeros(4, 3, 64, 64, dtype=torch.uint8), labels, ("a",), "x")
    with pytest.raises(ValueError, match="empty"):
        ImageSet(good[:0], labels[:0], ("a",), "x")
    with pytest.raises(ValueError, match="4 labels"):
        ImageSet(good, labels[:3], ("a",), "x")
    with pytest.raises(ValueError, match=r"0\.\.1"):
        ImageSet(good, torch.tensor([0, 1, 2, 0]), ("a", "b"), "x")


# ---------------------------------------------------------------- the dataset switch

def test_load_dataset_by_name_and_default_sizes(monkeypatch):
    ds = load_dataset("shapes10", "test", size=30, seed=2)
    assert (ds.name, ds.split, len(ds)) == ("shapes10", "test", 30)
    assert torch.equal(ds.images, make_shapes10(30, seed=2, split="test").images)
    monkeypatch.setattr(cifar10, "SPLIT_SIZES", {"train": 40, "test": 20})
    assert (len(load_dataset("shapes10")), len(load_dataset("shapes10", split="test"))) == (40, 20)


def test_load_dataset_cifar10_takes_the_first_images(fake_cifar, cifar_root):
    ds = load_dataset("cifar10", root=cifar_root, size=15)
    assert len(ds) == 15 and ds.name == "cifar10"
    assert torch.equal(ds.images.reshape(15, -1), torch.from_numpy(fake_cifar.train_rows[:15]))


def test_auto_falls_back_loudly_when_cifar_is_absent_and_unreachable(offline_cifar):
    with pytest.warns(DatasetFallbackWarning, match="STAND-IN") as caught:
        ds = load_dataset("auto", "test", size=20)
    assert len(caught) == 1
    assert ds.name == "photos10" and "cannot be reached" in ds.meta["fallback"]
    assert str(offline_cifar) in ds.meta["fallback"]
    said = str(caught[0].message)  # the switches, as typed on the command line and in a notebook's environment
    assert "--dataset cifar10 on the command line or CONVAE_DATASET=cifar10 for notebooks" in said
    assert "--dataset photos10 or CONVAE_DATASET=photos10" in said


def test_auto_uses_cifar_when_it_is_on_disk(cifar_root, monkeypatch):
    monkeypatch.setenv("CONVAE_DATA_DIR", str(cifar_root))
    with warnings.catch_warnings():
        warnings.simplefilter("error", DatasetFallbackWarning)
        ds = load_dataset("auto", "test")
    assert ds.name == "cifar10" and "fallback" not in ds.meta


def test_unknown_dataset_name_lists_the_accepted_ones():
    with pytest.raises(ValueError, match="'cifar10', 'photos10', 'shapes10', 'auto'.*'mnist'"):
        load_dataset("mnist")


# ---------------------------------------------------------------- prepare_data

def _fingerprints(ds: ImageSet) -> set[bytes]:
    return {bytes(img.numpy()) for img in ds.images}


def test_prepare_data_smoke_profile():
    profile = preset("smoke")
    bundle = prepare_data(**profile.data_options())
    assert isinstance(bundle, DataBundle) and bundle.dataset == "shapes10"
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (
        profile.train_size, profile.val_size, profile.test_size)
    assert not _fingerprints(bundle.train) & _fingerprints(bundle.val)
    assert not _fingerprints(bundle.train) & _fingerprints(bundle.test)
    assert bundle.exemplars.labels.tolist() == list(range(10))
    first = [int(torch.nonzero(bundle.test.labels == c)[0]) for c in range(10)]
    assert torch.equal(bundle.exemplars.images, bundle.test.images[first])
    with pytest.raises(AttributeError):
        bundle.train = bundle.val  # frozen


def test_prepare_data_auto_on_cifar_keeps_every_class_in_the_exemplars(fake_cifar, cifar_root, monkeypatch):
    monkeypatch.setenv("CONVAE_DATA_DIR", str(cifar_root))
    bundle = prepare_data("auto", train_size=50, val_size=20, test_size=5, seed=1)
    assert bundle.dataset == "cifar10" and {s.name for s in (bundle.train, bundle.val, bundle.test)} == {"cifar10"}
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (50, 20, 5)
    # Exemplars come from the whole test split, so 5 test images do not lose any class.
    labels = fake_cifar.test_labels
    first = [int(np.flatnonzero(labels == c)[0]) for c in range(10)]
    assert bundle.exemplars.labels.tolist() == list(range(10))
    assert torch.equal(bundle.exemplars.images.reshape(10, -1), torch.from_numpy(fake_cifar.test_rows[first]))
    # train + val: the first 70 training images, each exactly once (the fabricated rows are all distinct).
    pool = _fingerprints(bundle.train) | _fingerprints(bundle.val)
    assert len(pool) == 70 and pool == {bytes(row) for row in fake_cifar.train_rows[:70]}


def test_prepare_data_auto_fallback_is_recorded_everywhere():
    with pytest.warns(DatasetFallbackWarning) as caught:
        bundle = prepare_data(**preset("smoke", dataset="auto").data_options())
    assert len(caught) == 1, "'auto' is resolved once for all splits"
    assert bundle.dataset == "photos10"  # the fallback: real photographs
    for part in (bundle.train, bundle.val, bundle.test, bundle.exemplars):
        assert part.name == "photos10" and "fallback" in part.meta


def test_prepare_data_rejects_sizes_the_dataset_cannot_fill(cifar_root, monkeypatch):
    monkeypatch.setenv("CONVAE_DATA_DIR", str(cifar_root))
    base = dict(dataset="cifar10", train_size=50, val_size=20, test_size=5)
    with pytest.raises(ValueError, match="train_size \\+ val_size = 120 .* only 100"):
        prepare_data(**{**base, "train_size": 100})
    with pytest.raises(ValueError, match="test_size = 21 .* only 20"):
        prepare_data(**{**base, "test_size": 21})
    with pytest.raises(ValueError, match="val_size must be at least 1"):
        prepare_data(**{**base, "val_size": 0})
    with pytest.raises(ValueError, match="dataset must be one of"):
        prepare_data("smoke")


@pytest.mark.parametrize("sizes, said", [
    (dict(dataset="photos10", train_size=300_000, val_size=64),
     "train_size \\+ val_size = 300,064 training images but the photos10 stand-in makes at most 200,000; "
     "lower train_size or val_size \\(--train-size/--val-size on the command line\\)"),
    (dict(dataset="shapes10", train_size=256, val_size=1_000_000), "= 1,000,256 .* makes at most 1,000,000"),
    (dict(dataset="shapes10", val_size=60_000), "val_size = 60,000 .* leaves no training images of the 50,000"),
    (dict(dataset="photos10", train_size=10, val_size=10, test_size=300_000),
     "test_size = 300,000 images but the photos10 stand-in makes at most 200,000; lower test_size \\(--test-size"),
])
def test_sizes_a_dataset_cannot_supply_are_refused_before_anything_is_made(sizes, said, monkeypatch):
    def make(*args, **kwargs):
        raise AssertionError("images were generated")

    monkeypatch.setitem(data.STANDINS, sizes["dataset"], make)
    with pytest.raises(ValueError, match=said):
        prepare_data(**sizes)
    assert data.split_capacity("auto")["train"] == data.split_capacity("photos10")["train"]  # the most either gives


def test_shapes10_colour_belongs_to_the_class():
    """Random colours per image were reconstructed in grey (issue 10): each class has its own hue now."""
    import matplotlib.colors

    ds = make_shapes10(500, seed=0)
    hsv = matplotlib.colors.rgb_to_hsv(ds.images.permute(0, 2, 3, 1).float().numpy() / 255)
    saturated = (hsv[..., 1] > 0.45) & (hsv[..., 2] < 0.55)  # the dark shade carries the class's own hue
    # the circular mean hue of each class differs from every other class's by more than the jitter
    angle = hsv[..., 0] * 2 * np.pi
    means = []
    for c in range(10):
        mask = saturated & (ds.labels.numpy() == c)[:, None, None]
        means.append(np.angle(np.exp(1j * angle[mask]).mean()))
    means = np.array(means)
    gaps = np.abs(np.angle(np.exp(1j * (means[:, None] - means[None, :])))) + np.eye(10) * 9
    assert gaps.min() > 0.1, "two classes share a hue"


# ---------------------------------------------------------------- augmentation: the eight symmetries of the square

def _symmetries(image: torch.Tensor) -> list[torch.Tensor]:
    """The eight turns and mirror images of one (3, H, W) image, written out by hand (transposes and flips)."""
    t = image.transpose(-2, -1)
    return [image, t.flip(-2), image.flip(-2).flip(-1), t.flip(-1),          # turned by 0, 90, 180, 270 degrees
            image.flip(-1), image.flip(-2), t, t.flip(-2).flip(-1)]          # mirrored left-right, up-down, on diagonals


def test_augment_dihedral_gives_each_image_one_of_its_eight_symmetries_and_uses_all_eight():
    images = torch.randint(0, 256, (400, 3, 32, 32), dtype=torch.uint8)   # random pixels: no image is symmetric
    split = ImageSet(images, torch.arange(400) % 10, tuple("abcdefghij"), "noise")
    kept = images.clone()
    out = data.augment_dihedral(split, seed=3)
    assert out.images.shape == (400, 3, 32, 32) and out.images.dtype == torch.uint8
    assert torch.equal(out.labels, split.labels) and torch.equal(split.images, kept)   # the input is untouched
    which = []
    for before, after in zip(images, out.images):
        matches = [i for i, s in enumerate(_symmetries(before)) if torch.equal(s, after)]
        assert len(matches) == 1, "every image must come out as exactly one symmetry of itself"
        which.append(matches[0])
    counts = np.bincount(which, minlength=8)
    assert (counts > 20).all(), f"all eight symmetries should be drawn about equally, got {counts}"
    assert out.meta["augmentation"] == data.DIHEDRAL


def test_augment_dihedral_is_fixed_by_its_seed():
    split = make_shapes10(64, seed=0)
    first, again, other = (data.augment_dihedral(split, seed=s) for s in (1, 1, 2))
    assert torch.equal(first.images, again.images)
    assert not torch.equal(first.images, other.images)
    assert torch.equal(data.augment_dihedral(split, seed=np.int64(1)).images, first.images)  # NumPy's integers too
    data.augment_dihedral(split, seed=2**64 - 1)                                            # the largest seed


@pytest.mark.parametrize("split, seed, error, words", [
    (torch.zeros(2, 3, 32, 32, dtype=torch.uint8), 0, TypeError, "ImageSet, got Tensor"),
    (None, -1, ValueError, "seed must be at least 0"),
    (None, 2**64, ValueError, "seed must be at least 0 and at most"),
    (None, 1.5, TypeError, "seed must be an integer"),
    (None, True, TypeError, "seed must be an integer"),
])
def test_augment_dihedral_refuses_what_it_cannot_augment(split, seed, error, words):
    split = make_shapes10(4, seed=0) if split is None else split
    with pytest.raises(error, match=words):
        data.augment_dihedral(split, seed=seed)
