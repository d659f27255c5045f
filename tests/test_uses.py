"""Notebook 07's package: corruptions, denoising (never fed the clean image), anomaly scores and ROC, probes, side runs."""

import pytest
import torch
from torch import nn

from convae_utils import anomaly, corruptions, denoising, probes
from convae_utils.errors import RunFolderError
from convae_utils.images import ImageSet, normalize
from convae_utils.models import build_autoencoder
from convae_utils.settings import preset
from convae_utils.shapes import make_shapes10
from convae_utils.data import DataBundle
from convae_utils.runs import CHECKPOINT_FILE, Recipe, train_or_load
from convae_utils.speed import Speed
from convae_utils.training import denoising_step, fit

TINY = dict(latent_dim=16, base_channels=4)


@pytest.fixture(scope="module")
def splits():
    data = make_shapes10(120, seed=1)
    return data.head(96), data.subset(range(96, 120), split="val")


class Recorder(nn.Module):
    """Wraps a model and keeps a copy of every input it is fed."""

    def __init__(self, model):
        super().__init__()
        self.model, self.inputs = model, []

    @property
    def latent_dim(self):
        return self.model.latent_dim

    def forward(self, x):
        self.inputs.append(x.detach().cpu().clone())
        return self.model(x)


def fed_a_clean_image(recorded: list[torch.Tensor], clean: torch.Tensor) -> bool:
    """True if any recorded input row equals one of the clean images (to float precision)."""
    flat = clean.flatten(1)
    for batch in recorded:
        distances = torch.cdist(batch.float().flatten(1), flat)
        if bool((distances < 1e-4).any()):
            return True
    return False


# -- corruptions ----------------------------------------------------------------------------------

def test_gaussian_noise_has_the_asked_spread_and_stays_in_range():
    clean = torch.zeros(64, 3, 32, 32)  # mid-grey: no clipping at sigma 0.1
    noisy = corruptions.gaussian_noise(0.1)(clean)
    assert noisy.shape == clean.shape and noisy.abs().max() <= 1.0
    assert abs(float(noisy.std()) / 2 - 0.1) < 0.005  # sigma on [0, 1] = half the spread on [-1, 1]
    loud = corruptions.gaussian_noise(1.0)(torch.ones(8, 3, 32, 32))
    assert float(loud.min()) >= -1.0 and float(loud.max()) <= 1.0


def test_mask_hides_the_asked_share_of_pixel_positions_in_every_channel():
    clean = torch.full((32, 3, 32, 32), 0.7)
    masked = corruptions.random_mask(0.3)(clean)
    hidden = masked == corruptions.MASK_FILL
    assert bool((hidden.all(dim=1) == hidden.any(dim=1)).all()), "a position is masked in all channels or none"
    assert abs(float(hidden[:, 0].float().mean()) - 0.3) < 0.02


def test_corruptions_are_seeded_and_apply_repeats():
    clean = normalize(make_shapes10(16, seed=2).images)
    a, b, c = (corruptions.gaussian_noise(0.2, seed=s) for s in (1, 1, 2))
    assert torch.equal(a(clean), b(clean)) and not torch.equal(a.reset()(clean), c(clean))
    assert torch.equal(a.apply(clean, seed=5), a.apply(clean, seed=5))
    assert not torch.equal(a.apply(clean, seed=5), a.apply(clean, seed=6))


@pytest.mark.parametrize("make, value", [(corruptions.gaussian_noise, -0.1), (corruptions.gaussian_noise, 1.5),
                                         (corruptions.random_mask, 1.0), (corruptions.random_mask, -0.2),
                                         (corruptions.gaussian_noise, float("nan"))])
def test_levels_outside_their_range_are_refused(make, value):
    with pytest.raises(ValueError, match="sigma|fraction"):
        make(value)


# -- the clean image is never the denoiser's input ------------------------------------------------

def test_denoising_training_never_feeds_the_clean_image(splits):
    train, val = splits
    recorder = Recorder(build_autoencoder(**TINY, seed=0))
    fit(recorder, train, val, num_epochs=1, batch_size=32, progress=False, speed=Speed(channels_last=False),
        step=denoising_step(corruptions.gaussian_noise(0.1)))
    assert len(recorder.inputs) >= 3 + 1  # three training steps and the validation pass
    clean = normalize(torch.cat([train.images, val.images]))
    assert not fed_a_clean_image(recorder.inputs, clean)


def test_the_recorder_would_catch_a_clean_input(splits):
    """The check above can fail: without corruption the clean images are fed and detected."""
    train, val = splits
    recorder = Recorder(build_autoencoder(**TINY, seed=0))
    fit(recorder, train, val, num_epochs=1, batch_size=32, progress=False, speed=Speed(channels_last=False))
    assert fed_a_clean_image(recorder.inputs, normalize(train.images))


@pytest.mark.parametrize("corruption", [corruptions.gaussian_noise(0.1), corruptions.random_mask(0.5)],
                         ids=["noise", "mask"])
def test_denoising_evaluation_never_feeds_the_clean_image(splits, corruption):
    _, test = splits
    denoiser, plain = Recorder(build_autoencoder(**TINY, seed=0)), Recorder(build_autoencoder(**TINY, seed=1))
    out = denoising.denoise(denoiser, plain, test, corruption, seed=3)
    clean = normalize(test.images)
    assert torch.equal(out["clean"], clean)
    for model in (denoiser, plain):
        assert model.inputs and not fed_a_clean_image(model.inputs, clean)
        assert torch.equal(torch.cat(model.inputs), out["input"])
    table = denoising.psnr_table(out)
    assert list(table.columns) == list(denoising.COLUMNS) and len(table) == len(test)


def test_psnr_of_the_noisy_input_matches_the_noise_level():
    test = make_shapes10(64, seed=4)
    identity = build_autoencoder(**TINY)
    out = denoising.denoise(identity, identity, test, corruptions.gaussian_noise(0.05), seed=0)
    row = denoising.summary_row(out, "noise")
    # noise of sigma 0.05 gives 26 dB; clipping at the range's ends only removes noise
    assert 25.5 < row["input PSNR (dB)"] < 30


# -- anomaly detection -----------------------------------------------------------------------------

def test_roc_of_perfect_random_and_reversed_scores():
    normal = torch.linspace(0, 0.4, 50)
    assert anomaly.roc(normal, normal + 0.5).auroc == pytest.approx(1.0)
    assert anomaly.roc(normal + 0.5, normal).auroc == pytest.approx(0.0)
    generator = torch.Generator().manual_seed(0)
    random = anomaly.roc(torch.rand(4000, generator=generator), torch.rand(4000, generator=generator))
    assert abs(random.auroc - 0.5) < 0.03
    assert random.fpr.shape == random.tpr.shape and float(random.tpr[-1]) == 1.0


def test_auroc_agrees_with_scikit_learn():
    from sklearn.metrics import roc_auc_score

    generator = torch.Generator().manual_seed(1)
    normal, anomalous = torch.rand(300, generator=generator), torch.rand(200, generator=generator) + 0.2
    expected = roc_auc_score([0] * 300 + [1] * 200, torch.cat([normal, anomalous]).numpy())
    assert anomaly.roc(normal, anomalous).auroc == pytest.approx(expected, abs=1e-6)


def test_threshold_comes_from_validation_scores_and_report_counts():
    val = torch.arange(100, dtype=torch.float32)
    threshold = anomaly.false_alarm_threshold(val, 0.05)
    assert int((val > threshold).sum()) == 5
    report = anomaly.detection_report(normal_scores=torch.tensor([0.0, 1.0, 2.0, 9.0]),
                                      anomaly_scores=torch.tensor([8.0, 9.0, 1.0]), threshold=5.0)
    assert report["recall"] == pytest.approx(2 / 3) and report["precision"] == pytest.approx(2 / 3)
    assert report["false_alarm_rate"] == pytest.approx(1 / 4)
    with pytest.raises(ValueError, match="rate"):
        anomaly.false_alarm_threshold(val, 1.0)


def test_anomaly_sets_and_scores(splits):
    train, test = splits
    model = build_autoencoder(**TINY)
    kept, held = anomaly.hold_out_class(train, 0)
    assert 0 not in kept.labels.tolist() and set(held.labels.tolist()) == {0}
    sets = anomaly.anomaly_sets(test, other=make_shapes10(30, seed=9), held_out=held, seed=0)
    assert set(sets) == {"other dataset", "uniform noise", "upside down", "colour-inverted", "held-out class"}
    assert torch.equal(sets["colour-inverted"], 255 - test.images)
    assert torch.equal(sets["upside down"], test.images.flip(2))
    scores = anomaly.reconstruction_errors(model, sets["uniform noise"])
    assert scores.shape == (len(test),) and bool((scores >= 0).all())
    table = anomaly.auroc_table({"m": model}, test, sets)
    assert list(table.index) == list(sets) and table["m"].between(0, 1).all()


def test_anomalies_of_another_shape_are_refused(splits):
    _, test = splits
    with pytest.raises(ValueError, match="shape of the normal images"):
        anomaly.anomaly_sets(test, other=torch.zeros(4, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="shape of the normal images"):
        anomaly.contaminate(test, torch.zeros(10, 1, 32, 32, dtype=torch.uint8), 0.1)


def test_contamination_replaces_the_asked_share_and_keeps_the_size(splits):
    train, _ = splits
    pool = torch.full((50, 3, 32, 32), 7, dtype=torch.uint8)
    dirty = anomaly.contaminate(train, pool, 0.25, seed=0)
    assert len(dirty) == len(train) and dirty.classes[-1] == anomaly.ANOMALY_CLASS
    replaced = (dirty.images == 7).flatten(1).all(dim=1)
    assert int(replaced.sum()) == round(0.25 * len(train))
    assert torch.equal(dirty.images[~replaced], train.images[~replaced])
    assert torch.equal(anomaly.contaminate(train, pool, 0.0).images, train.images)
    for share in (1.0, 1.5, -0.1):
        with pytest.raises(ValueError, match="share"):
            anomaly.contaminate(train, pool, share)
    with pytest.raises(ValueError, match="only 50"):
        anomaly.contaminate(train, pool, 0.9)


# -- retrieval and probes --------------------------------------------------------------------------

def test_nearest_neighbours_exclude_the_query_itself():
    points = torch.tensor([[0.0], [1.0], [3.0], [10.0]])
    found = probes.nearest_neighbours(points, points, 2, exclude=torch.arange(4))
    assert found.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1]]


def test_probes_read_separable_classes_and_agreement():
    generator = torch.Generator().manual_seed(0)
    labels = torch.arange(200) % 2
    features = torch.randn(200, 5, generator=generator) + 6.0 * labels[:, None]
    for method in probes.PROBES:
        assert probes.probe_accuracy(features[:100], labels[:100], features[100:], labels[100:], method=method) > 0.95
    noise = torch.randn(200, 5, generator=generator)
    assert probes.probe_accuracy(noise[:100], labels[:100], noise[100:], labels[100:], method="knn") < 0.75
    assert probes.neighbour_agreement(features, labels, 5) > 0.95
    table = probes.probe_table({"good": (features[:100], features[100:]), "noise": (noise[:100], noise[100:])},
                               labels[:100], labels[100:])
    assert table.loc["good", "logistic"] > table.loc["noise", "logistic"]


def test_a_probe_on_one_class_is_refused():
    features = torch.randn(20, 4)
    with pytest.raises(ValueError, match="at least two classes"):
        probes.probe_accuracy(features, torch.zeros(20), features, torch.zeros(20))


# -- named runs (the harness's extra models: denoisers, detectors) ------------------------------------

def _data(train, val) -> DataBundle:
    """Splits of one's own for a run: no test set scored, no pictures drawn."""
    return DataBundle(train, val, None, None, train.name)


def test_named_run_trains_once_then_loads_and_refuses_other_settings(splits, tmp_path):
    train, val = splits
    settings = preset("smoke", num_epochs=1, batch_size=32, **TINY, dataset="shapes10").replace(latent_dim=16)
    step = denoising_step(corruptions.gaussian_noise(0.1))
    first = train_or_load(settings, Recipe("denoise-x", step=step), _data(train, val), runs_root=tmp_path,
                          progress=False)
    assert not first.loaded and (first.run_dir / CHECKPOINT_FILE).exists()
    assert first.run_dir.name == "smoke-shapes10-latent16-c4-denoise-x"
    again = train_or_load(settings, Recipe("denoise-x", step=denoising_step(corruptions.gaussian_noise(0.1))),
                          _data(train, val), runs_root=tmp_path, progress=False)
    assert again.loaded
    assert all(torch.equal(a, b) for a, b in zip(first.model.state_dict().values(), again.model.state_dict().values()))
    with pytest.raises(RunFolderError, match="another run"):
        train_or_load(settings, Recipe("denoise-x", step=denoising_step(corruptions.gaussian_noise(0.2))),
                      _data(train, val), runs_root=tmp_path, progress=False)


def test_named_run_with_more_epochs_than_asked_is_loaded_as_it_is(splits, tmp_path, capsys):
    # a learner lowers notebook 07's epochs after a longer run: the longer run is used, and it says so
    train, val = splits
    settings = preset("smoke", num_epochs=2, batch_size=32, **TINY, dataset="shapes10").replace(latent_dim=16)
    longer = train_or_load(settings, Recipe("plain"), _data(train, val), runs_root=tmp_path, progress=False)
    fewer = train_or_load(settings.replace(num_epochs=1), Recipe("plain"), _data(train, val), runs_root=tmp_path,
                          progress=False)
    assert fewer.loaded and fewer.history.epochs_done == 2
    assert all(torch.equal(a, b) for a, b in zip(longer.model.state_dict().values(), fewer.model.state_dict().values()))
    assert "holds 2 epochs, more than the 1 asked" in capsys.readouterr().out


def test_named_run_can_start_from_a_trained_model(splits, tmp_path):
    train, val = splits
    settings = preset("smoke", num_epochs=1, batch_size=32, **TINY, dataset="shapes10")
    start = build_autoencoder(**TINY, seed=7)
    reference = {k: v.clone() for k, v in start.state_dict().items()}
    fresh = build_autoencoder(**TINY, seed=settings.seed)
    run = train_or_load(settings, Recipe("tuned"), _data(train, val), start_from=start, runs_root=tmp_path,
                        progress=False)
    # one epoch of Adam moves the weights a little: closer to where they started than to a fresh model
    tuned = run.model.cpu().state_dict()
    to_start = sum(float((tuned[k] - reference[k]).norm()) for k in tuned)
    to_fresh = sum(float((tuned[k] - fresh.state_dict()[k]).norm()) for k in tuned)
    assert to_start < to_fresh


# -- the classical baselines of notebook 07 (issue 20) --------------------------------------------------

def test_blur_is_a_normalised_gaussian_and_sigma_zero_leaves_images_alone():
    from scipy.ndimage import gaussian_filter

    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(denoising.gaussian_blur(images, 0.0), images)
    flat = torch.full((1, 3, 32, 32), 0.25)
    assert torch.allclose(denoising.gaussian_blur(flat, 1.4), flat, atol=1e-6)   # weights sum to 1
    blurred = denoising.gaussian_blur(images, 1.0)
    # A second implementation (SciPy), away from the borders where the two pad differently.
    reference = torch.from_numpy(gaussian_filter(images.numpy(), sigma=(0, 0, 1.0, 1.0), truncate=3.0))
    assert torch.allclose(blurred[..., 4:-4, 4:-4], reference[..., 4:-4, 4:-4], atol=1e-5)
    with pytest.raises(ValueError):
        denoising.gaussian_blur(images, -1.0)


def test_tuned_blur_helps_on_noise_and_is_chosen_on_validation_images():
    val = make_shapes10(64, seed=3, split="train")
    noisy = corruptions.gaussian_noise(0.2, seed=0)
    tuned = denoising.tune_blur(val, noisy, seed=1)
    assert set(tuned["psnr"]) == {float(s) for s in denoising.BLUR_SIGMAS}
    assert tuned["psnr"][tuned["sigma"]] == max(tuned["psnr"].values())
    assert tuned["sigma"] > 0 and tuned["psnr"][tuned["sigma"]] > tuned["psnr"][0.0]   # blurring beats doing nothing
    clean = make_shapes10(16, seed=3, split="train")
    assert denoising.tune_blur(clean, corruptions.gaussian_noise(0.0, seed=0))["sigma"] == 0.0  # nothing to remove


def test_pca_errors_are_zero_in_the_subspace_and_flag_what_lies_outside():
    from convae_utils import baselines

    normal = make_shapes10(200, seed=0, split="train")
    pca = baselines.fit_pca(normal, 20, solver="exact")
    inside = normal.images[:50]
    noise = torch.randint(0, 256, (50, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    inside_scores = baselines.pca_reconstruction_errors(pca, inside)
    noise_scores = baselines.pca_reconstruction_errors(pca, noise)
    assert inside_scores.shape == (50,) and inside_scores.dtype == torch.float32
    assert anomaly.roc(inside_scores, noise_scores).auroc > 0.99
    # The same number as reconstructing by hand and scoring with the package's metric.
    by_hand = ((pca.reconstruct(inside).clamp(-1, 1) - normalize(inside)) / 2).pow(2).flatten(1).mean(1)
    assert torch.allclose(inside_scores, by_hand, atol=1e-6)
    full = baselines.fit_pca(normal, 200, solver="exact")                      # as many components as images
    assert float(baselines.pca_reconstruction_errors(full, normal.images[:20]).max()) < 1e-6
