"""Notebook 08's training (the noisy-code step, AdamW with its guards, in convae_utils.training) and its
headless study (tools/studies/winning.py).

Its models are tested in test_models.py and test_spatial.py, its codec curves in test_codecs.py, exercise
08.1 in test_exercises.py."""

import numpy as np
import pandas as pd
import pytest
import torch

from convae_utils import data, studies, training
from convae_utils.callbacks import OneCycle
from convae_utils.spatial import SpatialAutoencoder


@pytest.fixture(scope="module")
def bundle():
    return data.prepare_data("shapes10", train_size=3200, val_size=64, test_size=64, seed=0)


def test_noisy_code_step_adds_noise_in_training_and_rounds_in_eval():
    model = SpatialAutoencoder(2, width=8)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    step = training.noisy_code_step(0.5)
    assert "0.5" in step.__qualname__
    model.eval()
    with torch.no_grad():
        rounded = torch.round(model.encode(x) / 0.5) * 0.5
        expected = torch.nn.functional.mse_loss(model.decode(rounded), x)
        assert torch.equal(step(model, x)[0], expected)
        model.train()
        torch.manual_seed(0)
        a = step(model, x)[0]
        torch.manual_seed(1)
        assert not torch.equal(a, step(model, x)[0])


def _train(model, bundle):
    """notebook 08's training (AdamW with its guards, one cycle to 3e-3), one epoch, through the one loop."""
    return training.fit(model, bundle.train, bundle.val, num_epochs=1, batch_size=64, lr=3e-3, progress=False,
                        optimizer=training.make_adamw(), callbacks=[OneCycle()])


def test_training_lowers_the_loss(bundle):
    losses = _train(SpatialAutoencoder(2, width=8, depth=0), bundle).train_batch_loss
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])


def test_the_headless_study_prints_mean_and_spread_over_seeds(monkeypatch, capsys):
    from tools.studies import winning as study

    monkeypatch.setenv("CONVAE_DATASET", "shapes10")
    assert study.main(["--profile", "smoke", "--seeds", "2", "--only", "transposed"]) == 0
    out = capsys.readouterr().out
    assert "stride-2 transposed convs" in out and "spread" in out and "2 seed(s)" in out
    results = pd.DataFrame([{"model": "m", "seed": s, "test dB": db, "vs PCA, equal values (dB)": db - 20,
                             "bits": 100.0, "dB at those bits": db, "vs PCA, equal bits (dB)": 0.0, "images/s": 1.0,
                             "values": 64, "parameters": 1, "rates won": "0 of 1"} for s, db in ((0, 20.0), (1, 22.0))])
    table = study.summary(results)
    assert table.loc["m", "test dB"] == 21.0 and abs(table.loc["m", "test dB spread"] - 2 ** 0.5) < 1e-9
    with pytest.raises(SystemExit):
        study.main(["--seeds", "0"])


def test_the_study_scores_notebook_08s_model_with_and_without_refined_codes(monkeypatch):
    from tools.studies import winning as study

    monkeypatch.setenv("CONVAE_DATASET", "shapes10")
    monkeypatch.setattr(studies, "PCA_FIT_IMAGES", 300)   # PCA's patches fewer than the model's: the calls tell apart
    augmented = []

    def spy(split, *, seed):   # notebook 08's model trains on turned and mirrored patches, seeded by the run's seed
        augmented.append((len(split), seed))
        return data.augment_dihedral(split, seed=seed)

    monkeypatch.setattr(study, "augment_dihedral", spy)
    rows = study.study("smoke", seeds=1, train_size=400, only="notebook 08's model", progress=False)
    name = "+ peak rate 4e-3 (notebook 08's model)"
    assert list(rows["model"]) == [name, f"{name}, code refined (20 steps)"]
    assert rows["test dB"].iloc[1] > rows["test dB"].iloc[0]  # same weights, better codes
    # PCA-64 fitted on its own patches turned the same way (the fairness check), then the model's training split
    assert augmented == [(300, 0), (400, 0)] and rows["train_size"].iloc[0] == 400
    assert np.isfinite(rows[study.PCA_TURNED]).all()
    # two --only texts: the variants matching either, each refined row named for its own variant
    both = study.study("smoke", seeds=1, only=["gradient norm clipped", "notebook 08's model"], progress=False)
    guard = "+ beta2 0.99, gradient norm clipped to 0.3"
    assert list(both["model"]) == [guard, f"{guard}, code refined (20 steps)", name, f"{name}, code refined (20 steps)"]
    assert both.set_index("model").loc[[guard, f"{guard}, code refined (20 steps)"], study.PCA_TURNED].isna().all()
    assert len(augmented) == 4   # the guard's rows trained on the patches as they are
    assert len(study.summary(both)) == 4
    with pytest.raises(ValueError, match="--only 'no such row' matches no variant"):
        study.study("smoke", seeds=1, only=["notebook 08", "no such row"], progress=False)


def test_the_study_scores_the_pca_initialised_model_beside_its_untrained_control(monkeypatch):
    from tools.studies import winning as study

    monkeypatch.setenv("CONVAE_DATASET", "shapes10")
    rows = study.study("smoke", seeds=1, only="PCA-64", progress=False).set_index("model")
    control = "PCA-64 + learnt correction (depth 0), untrained (control)"
    assert list(rows.index) == [control, "PCA-64 + learnt correction (depth 0)"]
    assert abs(rows.loc[control, "vs PCA, equal values (dB)"]) < 1e-3      # untrained, it is PCA-64
    assert rows.loc[control, "seconds"] == 0.0


def test_make_adamw_clips_the_gradient_norm_and_keeps_adams_memory_short():
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 3)
    guarded = training.make_adamw(0.0, beta2=0.99, max_grad_norm=0.3)(model, 1e-3)
    plain = training.make_adamw(0.0, beta2=0.999, max_grad_norm=None)(model, 1e-3)
    assert isinstance(guarded, training.ClippedAdamW) and guarded.param_groups[0]["betas"] == (0.9, 0.99)
    assert type(plain) is torch.optim.AdamW and plain.param_groups[0]["betas"] == (0.9, 0.999)
    (1e4 * model(torch.ones(2, 4)).sum()).backward()   # a huge gradient
    guarded.step()
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert abs(float(norm) - 0.3) < 1e-4              # scaled down to the limit before the step
    with pytest.raises(ValueError, match="max_grad_norm"):
        training.make_adamw(max_grad_norm=0.0)


def _block_from_cell(forward_body: str, cell: str):
    """Define class Block as a notebook cell would (IPython keeps each cell's source in linecache)."""
    import linecache

    source = ("class Block(torch.nn.Module):\n"
              "    def __init__(self, c):\n"
              "        super().__init__()\n"
              "        self.conv = torch.nn.Conv2d(c, c, 3, padding=1)\n"
              "    def forward(self, x):\n"
              f"        return {forward_body}\n")
    linecache.cache[cell] = (len(source), None, source.splitlines(True), cell)
    namespace = {"torch": torch, "__name__": "__main__"}
    exec(compile(source, cell, "exec"), namespace)
    return namespace["Block"]


def test_a_learners_block_with_another_forward_is_another_architecture():
    from convae_utils import runs

    residual = _block_from_cell("x + self.conv(x)", "<ipython-input-1>")
    plain = _block_from_cell("self.conv(x)", "<ipython-input-2>")            # the cell edited and run again
    again = _block_from_cell("x + self.conv(x)", "<ipython-input-3>")        # and edited back
    assert repr(residual(4)) == repr(plain(4))                               # the layers print the same
    assert runs.architecture_digest(residual(4)) != runs.architecture_digest(plain(4))
    assert runs.architecture_digest(residual(4)) == runs.architecture_digest(again(4))
    package = SpatialAutoencoder(2, width=8)                                 # the package's: layers only
    assert runs.architecture_digest(package) == runs.architecture_digest(SpatialAutoencoder(2, width=8))
