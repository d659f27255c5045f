"""tools.agreement: a few steps from the same state, judged against the reference's own noise."""

from __future__ import annotations

import pytest
import torch

from tools import agreement as ag
from convae_utils import training
from convae_utils.models import build_autoencoder
from convae_utils.shapes import make_shapes10

LATENT = 8
BATCH = 8


@pytest.fixture(scope="module")
def images():
    return make_shapes10(ag.STEPS * BATCH, seed=0, split="train")


def factory():
    return build_autoencoder(LATENT, seed=0)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_package_agrees_with_the_article_loop(images):
    result = ag.check_agreement(ag.article_step(), ag.package_step(), factory, images,
                                noise=[ag.article_step(channels_last=True)])
    assert result.ok, result.summary()
    assert len(result.reference_losses) == ag.STEPS
    assert result.tolerance["loss"] >= ag.FLOOR


def test_a_slightly_wrong_learning_rate_is_flagged(images):
    result = ag.check_agreement(ag.article_step(), ag.package_step(lr=1.01e-3), factory, images,
                                noise=[ag.article_step(channels_last=True)])
    assert not result.ok, result.summary()
    assert result.difference.update > result.tolerance["update"] or result.difference.loss > result.tolerance["loss"]


def test_a_wrong_normalisation_is_flagged(images, monkeypatch):
    monkeypatch.setattr(training, "normalize", lambda x: x.float().div_(127.0).sub_(1.0))  # 127 instead of 127.5
    result = ag.check_agreement(ag.article_step(), ag.package_step(), factory, images,
                                noise=[ag.article_step(channels_last=True)])
    assert not result.ok and result.difference.loss > result.tolerance["loss"], result.summary()


def test_verdict_does_not_depend_on_how_far_training_went(images):
    """From a trained model's weights the same paths still agree, and a wrong one is still caught."""
    model = factory()
    training.fit(model, make_shapes10(4 * BATCH, seed=3), images, num_epochs=2, batch_size=BATCH, progress=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    noise = [ag.article_step(channels_last=True)]
    good = ag.check_agreement(ag.article_step(), ag.package_step(), factory, images, noise=noise, state=state)
    bad = ag.check_agreement(ag.article_step(), ag.package_step(lr=1.01e-3), factory, images, noise=noise,
                             state=state)
    assert good.ok and not bad.ok, (good.summary(), bad.summary())


def _sgd_step(scale: float = 1.0):
    """A transparent reference: plain SGD on MSE, with an optional wrong gradient scale."""
    def step(model, imgs, batch_size):
        from convae_utils.images import normalize

        opt = torch.optim.SGD(model.parameters(), lr=0.01)
        losses = []
        for start in range(0, len(imgs), batch_size):
            x = normalize(imgs.images[start:start + batch_size])
            loss = torch.nn.functional.mse_loss(model(x), x)
            opt.zero_grad()
            (loss * scale).backward()
            opt.step()
            losses.append(float(loss.detach()))
        return losses
    return step


def test_identical_paths_have_zero_difference_and_floor_tolerance(images):
    result = ag.check_agreement(_sgd_step(), _sgd_step(), factory, images)
    assert result.ok and result.difference.loss == 0 and result.difference.update == 0
    assert result.tolerance == {"loss": ag.FLOOR, "update": ag.FLOOR} and result.notes


def test_wrong_gradient_is_flagged_under_sgd(images):
    result = ag.check_agreement(_sgd_step(), _sgd_step(scale=1.001), factory, images)
    assert not result.ok and result.difference.update == pytest.approx(1e-3, rel=0.2)


def test_compare_rejects_other_parameters():
    a = ag.StepOutcome([1.0], {"w": torch.ones(2)})
    b = ag.StepOutcome([1.0], {"v": torch.ones(2)})
    with pytest.raises(ValueError, match="different parameters"):
        ag.compare(a, b)


def test_bad_inputs_raise(images):
    with pytest.raises(TypeError, match="ImageSet"):
        ag.check_agreement(_sgd_step(), _sgd_step(), factory, images.images)
    with pytest.raises(ValueError, match="whole number of batches"):
        ag.check_agreement(_sgd_step(), _sgd_step(), factory, images, batch_size=BATCH + 1)


def test_a_diverging_path_is_an_error(images):
    def nan_step(model, imgs, batch_size):
        return [float("nan")] * (len(imgs) // batch_size)

    with pytest.raises(ValueError, match="non-finite"):
        ag.check_agreement(_sgd_step(), nan_step, factory, images)
