"""Notebook 08's package side: the PCA-initialised model, the steps, the schedule, the codec curves."""

import numpy as np
import pandas as pd
import pytest
import torch

from convae_utils import baselines, data, models, training, winning
from convae_utils.callbacks import OneCycle
from convae_utils.images import normalize
from convae_utils.spatial import SpatialAutoencoder


@pytest.fixture(scope="module")
def bundle():
    return data.prepare_data("shapes10", train_size=3200, val_size=64, test_size=64, seed=0)


def test_article_parameters_sit_in_two_linear_layers():
    shares = winning.article_parameter_shares(models.build_autoencoder(200))
    linear = 2 * 4096 * 200 + 200 + 4096  # both Linear layers, weights and biases, by hand
    assert shares.loc["Linear", "parameters"] == linear
    assert shares["parameters"].sum() == models.count_parameters(models.build_autoencoder(200))
    assert 0.91 < shares.loc["Linear", "share"] < 0.93


def test_pca_initialised_model_is_pca_before_training(bundle):
    pca = baselines.fit_pca(bundle.train, 16)
    model = winning.PCAInitAutoencoder(pca, width=8).eval()
    x = normalize(bundle.test.images)
    assert model.encode(x).shape == (64, 16) and model.latent_dim == 16
    torch.testing.assert_close(model.encode(x), pca.encode(bundle.test.images), atol=1e-5, rtol=0)
    torch.testing.assert_close(model(x), pca.reconstruct(bundle.test.images).clamp(-1, 1), atol=1e-5, rtol=0)
    # ... and training moves it: one step changes the correction's last layers
    model.train()
    loss, logs = training.mse_step(model, x)
    loss.backward()
    assert float(model.to_code.weight.grad.abs().sum()) > 0 


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


def test_codec_curves_fall_with_the_step_and_compare_at_equal_bits(bundle):
    pca = baselines.fit_pca(bundle.train, 32)
    pca_curve = winning.pca_codec_curve(pca, bundle.train, bundle.test, steps=(0.5, 1.0, 2.0))
    assert list(pca_curve["bits_per_image"]) == sorted(pca_curve["bits_per_image"], reverse=True)
    assert list(pca_curve["psnr_of_mean_mse"]) == sorted(pca_curve["psnr_of_mean_mse"], reverse=True)
    model = SpatialAutoencoder(2, width=8)
    curve = winning.codec_curve("untrained", model, bundle.train, bundle.test, steps=(0.05, 0.2))
    assert (curve["bits_per_image"] >= curve["information_bits"]).all()
    # PCA against itself: no gain where it lies inside its own range, NaN outside it
    same = winning.compare_at_equal_bits(pca_curve, pca_curve)
    np.testing.assert_allclose(same["gain_db"], 0.0, atol=1e-9)
    shifted = pca_curve.assign(bits_per_image=pca_curve["bits_per_image"] * 100)
    assert winning.compare_at_equal_bits(shifted, pca_curve)["gain_db"].isna().all()


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
    rows = study.study("smoke", seeds=1, only="notebook 08's model", progress=False)
    assert list(rows["model"]) == ["+ beta2 0.99, gradient norm clipped to 0.3 (notebook 08's model)",
                                   "the same, code refined (20 steps)"]
    assert rows["test dB"].iloc[1] > rows["test dB"].iloc[0]  # same weights, better codes


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


# -- refining the code for its decoder ----------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_small(bundle):
    model = SpatialAutoencoder(2, width=8, depth=0, stem="pixel")
    _train(model, bundle)
    return model.cpu().eval()


def test_refined_codes_reconstruct_better_and_leave_the_decoder_alone(trained_small, bundle):
    model = trained_small
    x = normalize(bundle.test.images)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.zero_grad(set_to_none=True)                                               # training left some
    with torch.no_grad():
        start = model.encode(x)
    refined = winning.refine_codes(model, x, steps=10)
    assert refined.shape == start.shape == (64, 2, 4, 4) and not refined.requires_grad
    with torch.no_grad():
        error = lambda z: float(torch.nn.functional.mse_loss(model.decode(z), x))  # noqa: E731
        assert error(refined) < 0.97 * error(start)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # weights unchanged
    assert all(p.grad is None for p in model.parameters())                         # and got no gradient
    torch.testing.assert_close(winning.refine_codes(model, x, steps=0), start)      # 0 steps: the encoder's


def test_a_refined_model_is_measured_like_any_other(trained_small, bundle):
    refined = winning.RefinedCodes(trained_small, steps=5)
    assert refined.latent_dim == 32 and refined.code_shape == (2, 4, 4)
    pca = baselines.fit_pca(bundle.train, 32)
    pca_curve = winning.pca_codec_curve(pca, bundle.train.head(500), bundle.test, steps=(0.5, 1.0, 2.0, 4.0))
    pca_psnr = {32: float(baselines.score_reconstructions("PCA", 32, pca.reconstruct(bundle.test), bundle.test,
                                                          bits_per_image=1)["psnr_of_mean_mse"].iloc[0])}
    plain_row, _ = winning.ablation_row("plain", trained_small, bundle.train, bundle.test, pca_curve=pca_curve,
                                        pca_psnr=pca_psnr, fit_images=500)
    row, curve = winning.ablation_row("refined", refined, bundle.train, bundle.test, pca_curve=pca_curve,
                                      pca_psnr=pca_psnr, fit_images=500)
    assert row["test dB"] > plain_row["test dB"] and len(curve) == len(winning.STEP_FACTORS)


def test_refining_refuses_inference_mode_and_bad_steps(trained_small):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        winning.refine_codes(trained_small, x)
    with pytest.raises(ValueError, match="steps"):
        winning.refine_codes(trained_small, x, steps=-1)


def test_refining_an_image_does_not_depend_on_its_batch(trained_small, bundle):
    x = normalize(bundle.test.images[:16])
    together = winning.refine_codes(trained_small, x, steps=5)
    alone = winning.refine_codes(trained_small, x, steps=5, batch_size=1)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="batch_size"):
        winning.refine_codes(trained_small, x, batch_size=0)


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
