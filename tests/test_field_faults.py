"""Faults found in the field (issue 13): each test failed before its fix, and pins the right value.

Each fault stands for a kind; the tests exercise the kind, not only the reported case.
"""

from __future__ import annotations

import json
import re
import warnings

import numpy as np
import pytest
import torch
from torch.overrides import TorchFunctionMode

from convae_utils import metrics, plotting
from convae_utils.data import class_exemplars, prepare_data
from convae_utils.errors import CheckpointError
from convae_utils.history import History
from convae_utils.images import ImageSet, normalize
from convae_utils.models import build_autoencoder
from convae_utils.runs import load_run, train_or_load
from convae_utils.settings import preset
from convae_utils.shapes import make_shapes10
from convae_utils.callbacks import TrainingStalledWarning
from convae_utils.checkpoints import load_checkpoint, load_weights, save_checkpoint
from convae_utils.speed import Speed
from convae_utils.training import fit
from test_training import with_callbacks

TINY = dict(latent_dim=16, base_channels=4)


@pytest.fixture(scope="module")
def splits():
    data = make_shapes10(120, seed=1)
    return data.head(96), data.subset(range(96, 120), split="val")


# -- 1. a backend without float64 (Apple's MPS) -------------------------------------------------

class NoFloat64(TorchFunctionMode):
    """A test double for a backend without float64: any op that makes or takes a float64 tensor fails,
    with the message MPS gives. (On a CPU every tensor is on the host, so the double is strict: the
    package must not use float64 tensors at all on the training and evaluation paths.)"""

    MESSAGE = "Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64"

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if kwargs.get("dtype") is torch.float64 or func is torch.Tensor.double:
            raise TypeError(self.MESSAGE)
        for value in list(args) + list(kwargs.values()):
            if isinstance(value, torch.Tensor) and value.dtype == torch.float64:
                raise TypeError(self.MESSAGE)
        out = func(*args, **kwargs)
        for value in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(value, torch.Tensor) and value.dtype == torch.float64:
                raise TypeError(self.MESSAGE)
        return out


def test_the_double_refuses_float64_as_mps_does():
    with NoFloat64(), pytest.raises(TypeError, match="float64"):
        torch.zeros(3, dtype=torch.float64)
    with NoFloat64(), pytest.raises(TypeError, match="float64"):
        torch.ones(2).double()


def test_training_and_evaluation_never_need_float64(splits, tmp_path):
    train, val = splits
    model = build_autoencoder(**TINY, seed=0)
    exemplars = class_exemplars(make_shapes10(20, seed=2))
    with NoFloat64():
        history = fit(model, train, val, num_epochs=2, batch_size=32, progress=False,
                      **with_callbacks(dict(exemplars=exemplars, checkpoint=tmp_path / "ckpt.pt")))
        table = metrics.evaluate(model, val)
        codes = metrics.encode(model, val)
    assert history.epochs_done == 2 and len(history.val_epoch_loss) == 2
    assert len(table) == len(val) and codes.shape == (len(val), 16)


# -- 2. NumPy values in records that are saved ------------------------------------------------------

def test_numpy_class_names_train_save_and_resume(splits, tmp_path):
    train, val = splits
    names = np.array(train.classes)  # numpy.str_ elements
    train = ImageSet(train.images, train.labels, names, train.name)
    val = ImageSet(val.images, val.labels, names, val.name, "val")
    assert all(type(c) is str for c in train.classes)
    exemplars = class_exemplars(ImageSet(make_shapes10(20, seed=2).images, make_shapes10(20, seed=2).labels,
                                         names, "shapes10", "test"))
    ckpt = tmp_path / "ckpt.pt"
    fit(build_autoencoder(**TINY, seed=0), train, val, num_epochs=1, batch_size=32, progress=False,
        **with_callbacks(dict(exemplars=exemplars, checkpoint=ckpt)))
    resumed = fit(build_autoencoder(**TINY, seed=0), train, val, num_epochs=2, batch_size=32, progress=False,
                  **with_callbacks(dict(exemplars=exemplars, checkpoint=ckpt)))  # before the fix: "damaged ... delete it"
    assert resumed.epochs_done == 2 and resumed.classes == tuple(str(c) for c in names)


def test_numpy_numbers_in_the_settings_are_the_same_run(tmp_path):
    bundle = prepare_data(**preset("smoke", dataset="shapes10").data_options())
    settings = preset("smoke", num_epochs=1, latent_dim=np.int64(16), base_channels=np.int32(4))
    first = train_or_load(settings, data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    recorded = json.loads((first.run_dir / "config.json").read_text())["config"]
    assert recorded["latent_dim"] == 16 and type(recorded["latent_dim"]) is int
    again = train_or_load(preset("smoke", num_epochs=1, latent_dim=16, base_channels=4), data=bundle,
                          runs_root=tmp_path, progress=False)
    assert again.loaded
    assert load_run(first.run_dir).settings == settings


# -- 4. picture helpers check value ranges as the metrics do -------------------------------------

def test_pictures_refuse_pixels_as_floats_and_warn_on_unit_range():
    u8 = make_shapes10(10, seed=0).images
    with pytest.raises(ValueError, match=r"uint8 pixels .* or floats normalised to \[-1, 1\].*normalize"):
        plotting.reconstruction_grid(u8, u8.float())  # 0..255 as floats: was drawn 98% white
    with pytest.raises(ValueError, match="normalize"):
        plotting.labelled_grid(u8.float(), nrow=5)
    with pytest.warns(plotting.ValueRangeWarning, match=r"\[0, 1\] pixels"):
        plotting.reconstruction_grid(u8, u8.float() / 255)  # ToTensor without Normalize: was washed out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fig = plotting.reconstruction_grid(u8, normalize(u8) * 1.2)  # a model's overshoot stays allowed
    assert fig is not None


# -- 5. messages keep their content, in the user's terms ---------------------------------------------

def test_a_model_of_another_shape_hears_which_layers_differ(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", build_autoencoder(16, base_channels=4), None,
                           History(), None, epoch=1)
    with pytest.raises(CheckpointError) as caught:
        load_weights(build_autoencoder(16, base_channels=8), path)
    message = str(caught.value)
    assert "base_channels" in message and "size mismatch" in message
    assert message.count("size mismatch") > 1  # every mismatching layer, not torch's first line only


def test_a_refused_checkpoint_has_no_terminal_codes_and_nothing_cut_off(tmp_path):
    path = tmp_path / "foreign.pt"
    torch.save({"format": "convae-checkpoint", "thing": np.float64(1.0)}, path)  # weights-only refuses it
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert "\x1b[" not in message and "Unsupported global" in message
    assert not message.rstrip().endswith(":")


def test_resume_at_the_end_of_an_epoch_names_no_batch_that_does_not_exist(splits, tmp_path, capsys):
    train, val = splits
    ckpt = tmp_path / "c.pt"

    def stop_after_last_batch(epoch, step):
        if epoch == 0 and step == 2:  # 96 images / 32 = 3 batches: step 2 is the last
            raise KeyboardInterrupt

    model = build_autoencoder(**TINY, seed=0)
    fit(model, train, val, num_epochs=2, batch_size=32, progress=False,
        **with_callbacks(dict(checkpoint=ckpt, on_batch_end=stop_after_last_batch)))
    assert "batch 3 of 3" in capsys.readouterr().out
    resumed = fit(build_autoencoder(**TINY, seed=0), train, val, num_epochs=2, batch_size=32, progress=False,
                  **with_callbacks(dict(checkpoint=ckpt)))
    said = capsys.readouterr().out
    assert "the end of epoch 1" in said and "batch 4" not in said
    straight = fit(build_autoencoder(**TINY, seed=0), train, val, num_epochs=2, batch_size=32, progress=False)
    assert resumed.train_batch_loss == straight.train_batch_loss


def test_help_offers_what_the_user_types():
    from convae_utils.cli import build_parser

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    text = train.format_help()
    assert "None" not in text and "{relu,none}" in text and "{none,tanh}" in text


# -- 6. saved settings follow the run --------------------------------------------------------------

def test_training_further_updates_the_saved_epochs(tmp_path):
    bundle = prepare_data(**preset("smoke", dataset="shapes10").data_options())
    two = preset("smoke", num_epochs=2, latent_dim=16, base_channels=4)
    train_or_load(two, data=bundle, runs_root=tmp_path, progress=False, save_figures=False)
    run = train_or_load(two.replace(num_epochs=3), data=bundle, runs_root=tmp_path, progress=False,
                        save_figures=False)
    assert json.loads((run.run_dir / "config.json").read_text())["config"]["num_epochs"] == 3
    opened = load_run(run.run_dir)
    assert opened.settings.num_epochs == 3 == opened.history.epochs_done


# -- 7. a collapsed model does not train on in silence -------------------------------------------

def test_a_collapsed_model_is_reported(tmp_path):
    bundle = prepare_data(**preset("smoke", dataset="shapes10").data_options())
    with pytest.warns(TrainingStalledWarning, match=r"learning rate too high.*lr=0\.03") as caught:
        run = train_or_load(preset("smoke", lr=3e-2), data=bundle, runs_root=tmp_path, progress=False,
                            save_figures=False)
    assert len([w for w in caught if w.category is TrainingStalledWarning]) == 1  # once, not every epoch
    dead = run.summary["dead_code_units"]
    assert isinstance(dead, int) and dead == metrics.dead_code_units(metrics.encode(run.model, bundle.test))
    assert dead > 0  # lr=0.03 kills code units behind the ReLU: the count is not trivially zero
    from convae_utils.cli import run_summary

    assert re.search(rf"{dead} dead", run_summary(run))


def test_a_healthy_run_gets_no_warning(splits):
    train, val = splits
    with warnings.catch_warnings():
        warnings.simplefilter("error", TrainingStalledWarning)
        fit(build_autoencoder(**TINY, seed=0), train, val, num_epochs=2, batch_size=32, progress=False)


def test_dead_code_units_counts_units_zero_for_every_image():
    codes = torch.tensor([[0.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    assert metrics.dead_code_units(codes) == 1
    with pytest.raises(ValueError, match=r"\(N, latent_dim\)"):
        metrics.dead_code_units(torch.zeros(3))


def test_cuda_graphs_need_cuda(splits):
    train, val = splits
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        fit(build_autoencoder(**TINY, seed=0), train, val, num_epochs=1, batch_size=32, progress=False,
            speed=Speed(cuda_graph=True))


# -- warnings point at the learner's own line, not the package's internals -----------------------

def test_package_warnings_are_attributed_to_the_callers_line():
    from convae_utils.codecs.bits import CodeSizeWarning
    from convae_utils.runs import build_model

    # runs.build_model -> models.build_autoencoder -> bits.warn_if_code_not_smaller: three package frames deep
    with pytest.warns(CodeSizeWarning) as record:
        build_model(preset("smoke", latent_dim=1000))
    assert [w.filename for w in record] == [__file__]
    u8 = make_shapes10(4, seed=0).images
    with pytest.warns(plotting.ValueRangeWarning) as record:
        plotting.reconstruction_grid(u8, u8.float() / 255)  # widgets/plotting -> model_scale: package frames
    assert {w.filename for w in record} == {__file__}


def test_the_command_line_prints_a_warning_as_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "convae_utils", "train", "--profile", "smoke", "--dataset", "shapes10",
                           "--latent-dim", "1000", "--epochs", "1", "--runs-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if "CodeSizeWarning" in line]
    assert lines and all(line.startswith("CodeSizeWarning: latent 1,000 x 32 bits") for line in lines)
    assert "convae_utils/" not in done.stderr and "runpy" not in done.stderr  # no file and line of anyone's code
