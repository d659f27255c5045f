"""Every helper that runs a model moves its inputs to the model's device (issue 30, item 1).

A model left on a GPU or an Apple-silicon device by ``runs.train_or_load`` must get its inputs there;
here the ``meta`` device stands in for one (no values, but a device mismatch fails as it would on
CUDA: "Input type (torch.FloatTensor) and weight type ... should be the same"). The calls are
notebook 08's and 09's, made with CPU inputs as the notebooks make them.
"""

import builtins
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from convae_utils import baselines, generation, inference, metrics, models, spatial, vae
from convae_utils.codecs import curves as codec_curves
from convae_utils.images import normalize
from convae_utils.shapes import make_shapes10

META = torch.device("meta")


@pytest.fixture(scope="module")
def images():
    return make_shapes10(12, seed=3)


def on_meta(model):
    """The model on the meta device, each of its layers refusing an input from another device.

    (A convolution with meta weights quietly accepts a CPU input, so the refusal a GPU would make is
    added by hand: a forward pre-hook on every module.)"""
    def refuse_other_devices(module, args):
        for value in args:
            if isinstance(value, torch.Tensor) and value.device != META:
                raise RuntimeError(f"{type(module).__name__} on meta got an input on {value.device}")

    for module in model.modules():
        module.register_forward_pre_hook(refuse_other_devices)
    return model.to(META)


def assert_on_meta(tensor, shape):
    assert tensor.device == META and tuple(tensor.shape) == tuple(shape)


def test_a_mismatch_fails_on_meta_as_on_a_gpu():  # the stand-in does what the issue reports
    model = on_meta(spatial.SpatialAutoencoder(2, width=4))
    with pytest.raises(RuntimeError, match="on meta got an input on cpu"):
        model.encode(torch.zeros(2, 3, 32, 32))


def test_notebook_08s_codec_helpers_run_the_model_on_its_device(images):
    model = on_meta(spatial.SpatialAutoencoder(2, width=4).train())
    codes = codec_curves.codes_of(model, images, batch_size=5)
    assert_on_meta(codes, (12, 32))
    assert model.training  # its mode comes back
    assert_on_meta(codec_curves.decode_codes(model, torch.zeros(12, 32), (2, 4, 4), batch_size=5), (12, 3, 32, 32))
    assert_on_meta(models.refine_codes(model, normalize(images.images), steps=2, batch_size=5), (12, 2, 4, 4))


def notebook_cell(notebook: str, marker: str) -> str:
    """The source of the code cell of ``notebooks/<notebook>.py`` that contains ``marker``."""
    text = (Path(__file__).resolve().parents[1] / "notebooks" / f"{notebook}.py").read_text(encoding="utf-8")
    cells = [cell for cell in text.split("# %%") if marker in cell and not cell.startswith(" [markdown]")]
    assert len(cells) == 1, f"expected one cell of {notebook} with {marker!r}, found {len(cells)}"
    return cells[0]


def test_notebook_08s_section_6_cell_runs_where_the_model_is(images):
    # the notebook's own cell, with its model on meta; float() of a meta value (no data) reads as 0
    model = on_meta(spatial.SpatialAutoencoder(2, width=4).eval())
    namespace = {"models": models, "images": __import__("convae_utils.images").images, "inference": inference,
                 "torch": torch, "REFINE_STEPS": 2, "spatial_run": SimpleNamespace(model=model),
                 "win_bundle": SimpleNamespace(test=images),
                 "float": lambda x: 0.0 if isinstance(x, torch.Tensor) and x.is_meta else builtins.float(x)}
    exec(notebook_cell("08_winning", "refined_model = models.RefinedCodes("), namespace)
    assert_on_meta(namespace["refined"], (12, 2, 4, 4))


def test_a_pca_initialised_and_a_learners_model_run_on_their_device(images):
    pca = baselines.fit_pca(make_shapes10(64, seed=1), 8)
    pca_init = on_meta(spatial.PCAInitAutoencoder(pca, width=4, depth=0))
    assert_on_meta(codec_curves.codes_of(pca_init, images), (12, 8))
    mine = on_meta(models.SequentialAutoencoder(*spatial_pair()))
    assert_on_meta(codec_curves.codes_of(mine, images), (12, 32))


def spatial_pair():
    reference = spatial.SpatialAutoencoder(2, width=4)
    return reference.encoder, reference.decoder


def test_notebook_09s_helpers_run_the_model_on_its_device(images):
    plain = on_meta(spatial.SpatialAutoencoder(2, width=4))
    assert_on_meta(metrics.encode(plain, images, batch_size=5), (12, 2, 4, 4))
    assert_on_meta(generation.decode_codes(plain, torch.zeros(6, 2, 4, 4), batch_size=4), (6, 3, 32, 32))
    model = on_meta(vae.build_vae(2, 4, 1))
    mean, logvar = vae.posterior_stats(model, images.images, batch_size=5)
    assert_on_meta(mean, (12, 32)) and assert_on_meta(logvar, (12, 32))
    classifier = on_meta(generation.SmallClassifier(width=4))
    probabilities, features = generation.classify(classifier, images.images, batch_size=5)
    assert_on_meta(probabilities, (12, 10)) and assert_on_meta(features, (12, 16))

