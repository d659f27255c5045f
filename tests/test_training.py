"""fit: learning, reproducibility, checkpoints, exact resume, interruption and divergence."""

import os
import pickle
import signal

import pytest
import torch

from convae_utils.data import class_exemplars
from convae_utils.errors import CheckpointError, TrainingDiverged
from convae_utils.models import build_autoencoder
from convae_utils.shapes import make_shapes10
from convae_utils.callbacks import Callback, NaNGuard, ReconstructExemplars
from convae_utils.checkpoints import Checkpoint, load_checkpoint, load_weights, save_checkpoint
from convae_utils.history import History
from convae_utils.training import fit

TINY = dict(latent_dim=16, base_channels=4)


@pytest.fixture(scope="module")
def splits():
    data = make_shapes10(120, seed=1)
    return data.head(96), data.subset(range(96, 120), split="val")


def tiny_model(seed=0):
    return build_autoencoder(**TINY, seed=seed)


def same_weights(a, b) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))


class OnStep(Callback):
    """Calls ``hook(epoch, step)`` after each optimiser step (epoch and step counted from 0)."""

    def __init__(self, hook):
        self.hook = hook

    def on_step_end(self, loop):
        self.hook(loop.epoch, loop.completed - 1)


def with_callbacks(kw: dict) -> dict:
    """fit's keywords with the tests' shorthands (checkpoint=, on_batch_end=, exemplars=) as callbacks."""
    callbacks = list(kw.pop("callbacks", ()))
    if "exemplars" in kw:
        callbacks.append(ReconstructExemplars(kw.pop("exemplars")))
    if "on_batch_end" in kw:
        callbacks.append(OnStep(kw.pop("on_batch_end")))
    if "checkpoint" in kw:  # last: it saves what the others added
        callbacks.append(Checkpoint(kw.pop("checkpoint")))
    return {**kw, "callbacks": callbacks}


def run(splits, **kw):
    train, val = splits
    model = tiny_model(kw.pop("model_seed", 0))
    kw = {"num_epochs": 2, "batch_size": 32, "progress": False, **kw}
    return model, fit(model, train, val, **with_callbacks(kw))


def test_one_batch_overfit_loss_falls_tenfold(splits):
    batch = splits[0].head(8)
    model = build_autoencoder(latent_dim=64, base_channels=8, seed=0)
    history = fit(model, batch, batch, num_epochs=400, batch_size=8, progress=False)
    assert len(history.train_batch_loss) == 400
    assert history.train_batch_loss[-1] < history.train_batch_loss[0] / 10


def test_history_has_batch_and_epoch_losses_and_reconstructions(splits):
    train, val = splits
    exemplars = class_exemplars(make_shapes10(20, seed=2))
    model, h = run(splits, exemplars=exemplars)
    assert h.batches_per_epoch == 3 and len(h.train_batch_loss) == 6
    # the epoch loss is the mean of that epoch's batches, not the last batch (the article's slip)
    assert h.train_epoch_loss[0] == pytest.approx(sum(h.train_batch_loss[:3]) / 3)
    assert len(h.val_epoch_loss) == 2 and all(v > 0 for v in h.val_epoch_loss)
    assert len(h.reconstructions) == 2
    assert h.reconstructions[0].dtype == torch.uint8 and h.reconstructions[0].shape == (10, 3, 32, 32)
    assert not torch.equal(h.reconstructions[0], h.reconstructions[1])  # the model changed between epochs
    assert h.classes == exemplars.classes and torch.equal(h.exemplars, exemplars.images)


def test_batches_are_shuffled_each_epoch(splits):
    from convae_utils.training import epoch_order

    a, b = epoch_order(96, 0, 0, "cpu"), epoch_order(96, 0, 1, "cpu")
    assert not torch.equal(a, torch.arange(96)) and not torch.equal(a, b)
    assert torch.equal(torch.sort(a).values, torch.arange(96))


def test_same_seed_same_losses_other_seed_other_losses(splits):
    _, h1 = run(splits, seed=7)
    _, h2 = run(splits, seed=7)
    _, h3 = run(splits, seed=8)
    assert h1.train_batch_loss == h2.train_batch_loss
    assert h1.train_batch_loss != h3.train_batch_loss


def test_two_epochs_equal_one_then_resume_one(splits, tmp_path):
    straight, h_straight = run(splits, num_epochs=2)
    ckpt = tmp_path / "ckpt.pt"
    first, _ = run(splits, num_epochs=1, checkpoint=ckpt)
    assert load_checkpoint(ckpt)["epoch"] == 1
    resumed, h_resumed = run(splits, num_epochs=2, checkpoint=ckpt, model_seed=99)  # weights come from disk
    assert same_weights(straight, resumed)
    assert h_resumed.train_batch_loss == h_straight.train_batch_loss


def test_stop_button_mid_epoch_saves_and_resumes_to_the_same_result(splits, tmp_path):
    straight, h_straight = run(splits)
    ckpt = tmp_path / "ckpt.pt"

    def press_stop(epoch, step):  # a real SIGINT, as Jupyter's Stop button sends
        if (epoch, step) == (1, 0):
            os.kill(os.getpid(), signal.SIGINT)

    _, h_int = run(splits, checkpoint=ckpt, on_batch_end=press_stop)
    assert h_int.interrupted and h_int.epochs_done == 1 and len(h_int.train_batch_loss) == 4
    state = load_checkpoint(ckpt)
    assert (state["epoch"], state["step"]) == (1, 1)
    resumed, h_resumed = run(splits, checkpoint=ckpt)
    assert not h_resumed.interrupted
    assert same_weights(straight, resumed)
    assert h_resumed.train_batch_loss == h_straight.train_batch_loss
    assert h_resumed.val_epoch_loss == h_straight.val_epoch_loss


def test_keyboard_interrupt_raised_in_the_loop_is_caught_and_saved(splits, tmp_path):
    ckpt = tmp_path / "ckpt.pt"

    def interrupt(epoch, step):
        if (epoch, step) == (0, 1):
            raise KeyboardInterrupt

    _, h = run(splits, checkpoint=ckpt, on_batch_end=interrupt)
    assert h.interrupted and len(h.train_batch_loss) == 2
    assert load_checkpoint(ckpt)["step"] == 2
    straight, _ = run(splits)
    resumed, _ = run(splits, checkpoint=ckpt)
    assert same_weights(straight, resumed)


def test_non_finite_loss_stops_with_a_clear_error_and_keeps_the_last_good_checkpoint(splits, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    train, val = splits
    model = tiny_model()

    def poison(epoch, step):
        if (epoch, step) == (1, 0):
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))

    with pytest.raises(TrainingDiverged, match=r"NaN or infinite at epoch 2, batch 2.*last good checkpoint") as err:
        fit(model, train, val, num_epochs=3, batch_size=32, progress=False,
            **with_callbacks(dict(checkpoint=ckpt, on_batch_end=poison, callbacks=[NaNGuard(every=1)])))
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 1 and state["step"] == 0  # end of epoch 1, untouched
    assert all(torch.isfinite(t).all() for t in state["model"].values())
    assert err.value.history.epochs_done == 1 and len(err.value.history.train_batch_loss) == 5


def test_a_checkpoint_saves_what_the_other_callbacks_added_to_the_epoch(splits, tmp_path):
    from convae_utils.data import class_exemplars as exemplars_of

    ckpt = tmp_path / "ckpt.pt"
    _, h = run(splits, checkpoint=ckpt, exemplars=exemplars_of(make_shapes10(20, seed=2)))
    saved = History.from_state(load_checkpoint(ckpt)["history"])
    assert len(saved.reconstructions) == len(h.reconstructions) == 2


def test_finished_checkpoint_is_not_retrained(splits, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    trained, h = run(splits, checkpoint=ckpt)
    before = ckpt.stat().st_mtime_ns
    again, h2 = run(splits, checkpoint=ckpt, model_seed=5)
    assert ckpt.stat().st_mtime_ns == before and h2.train_batch_loss == h.train_batch_loss
    assert same_weights(trained, again)


def test_resume_with_other_settings_is_refused(splits, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    run(splits, num_epochs=1, checkpoint=ckpt)
    with pytest.raises(CheckpointError, match="batch_size: checkpoint 32 vs now 16"):
        run(splits, checkpoint=ckpt, batch_size=16)


def test_corrupted_truncated_and_foreign_checkpoints_give_clear_errors(splits, tmp_path):
    ckpt = tmp_path / "ckpt.pt"
    run(splits, num_epochs=1, checkpoint=ckpt)
    good = ckpt.read_bytes()
    ckpt.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(ckpt)
    ckpt.write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(ckpt)
    torch.save({"weights": torch.zeros(3)}, ckpt)
    with pytest.raises(CheckpointError, match="not a convae checkpoint"):
        load_checkpoint(ckpt)


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
def test_a_checkpoint_that_would_run_code_is_refused(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"format": "convae-checkpoint", "version": 1, "x": _Evil()}, path)
    with pytest.raises(CheckpointError, match="damaged or not a convae checkpoint"):
        load_checkpoint(path)
    path.write_bytes(pickle.dumps(_Evil()))
    with pytest.raises(CheckpointError):
        load_checkpoint(path)


def test_latent_size_mismatch_names_both_sizes(tmp_path):
    path = save_checkpoint(tmp_path / "c.pt", tiny_model(), None, History(), None, epoch=1)
    with pytest.raises(CheckpointError, match="latent_dim=16 model, but the model given has latent_dim=32"):
        load_weights(build_autoencoder(latent_dim=32, base_channels=4), path)


def test_failed_write_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.pt", tiny_model(), None, History(), None, epoch=1)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, tiny_model(seed=3), None, History(), None, epoch=2)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"batch_size": -4}, "batch_size must be at least 1"),
    ({"batch_size": 10**9}, "batch_size must be at least 1 and at most"),
    ({"batch_size": 500}, "larger than the training set"),
    ({"num_epochs": 0}, "num_epochs must be at least 1"),
    ({"num_epochs": 10**7}, "num_epochs must be at least 1 and at most"),
    ({"lr": 0.0}, r"lr must lie in \(0, 10\]"),
    ({"lr": -1e-3}, r"lr must lie in"),
    ({"lr": float("nan")}, "lr must be a finite number"),
    ({"device": "cuda"}, "no CUDA GPU"),
    ({"device": "tpu"}, "device must be"),
])
def test_bad_arguments_fail_before_any_work(splits, kwargs, message):
    if kwargs.get("device") == "cuda" and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    model = tiny_model()
    before = [p.clone() for p in model.parameters()]
    with pytest.raises(ValueError, match=message):
        run(splits, **kwargs)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
