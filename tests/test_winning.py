"""Notebook 08's training parts (the noisy-code step, AdamW with its guards, the study's loop) and exercise 08.1.

Its models are tested in test_models.py and test_spatial.py, its codec curves in test_codecs.py."""

import numpy as np
import pandas as pd
import pytest
import torch

from convae_utils import data, exercises, models, spatial, winning
from convae_utils.spatial import SpatialAutoencoder


@pytest.fixture(scope="module")
def bundle():
    return data.prepare_data("shapes10", train_size=3200, val_size=64, test_size=64, seed=0)


def test_noisy_code_step_adds_noise_in_training_and_rounds_in_eval():
    model = SpatialAutoencoder(2, width=8)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    step = winning.noisy_code_step(0.5)
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


def test_training_lowers_the_loss(bundle):
    model = SpatialAutoencoder(2, width=8, depth=0)
    losses = winning.train_plain(model, bundle.train, num_epochs=1, batch_size=64, max_lr=3e-3)
    assert np.mean(losses[-10:]) < 0.7 * np.mean(losses[:5])


def test_the_worked_solution_is_the_package_reference_and_passes_its_check():
    encoder, decoder = winning.build_spatial_autoencoder(4, 16)
    reference = SpatialAutoencoder(4, 16, depth=1, stem="pixel")
    mine = models.SequentialAutoencoder(encoder, decoder)
    assert mine.latent_dim == reference.latent_dim == 64 and mine.code_shape == (4, 4, 4)
    reference.encoder.load_state_dict({("to_code." + k[2:]) if k.startswith("9.") else f"features.{k}": v
                                       for k, v in encoder.state_dict().items()})
    reference.decoder.load_state_dict({f"features.{k}": v for k, v in decoder.state_dict().items()})
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(mine(x), reference(x))
    assert models.count_parameters(mine) == models.count_parameters(reference)
    winning.check_spatial_autoencoder(winning.build_spatial_autoencoder)  # raises nothing


def _broken(change):
    def build(code_channels, width):
        encoder, decoder = winning.build_spatial_autoencoder(code_channels, width)
        return change(encoder, decoder)
    return build


@pytest.mark.parametrize("change, message", [
    (lambda e, d: (torch.nn.Sequential(*e, torch.nn.ReLU()), d), "linear"),
    (lambda e, d: (torch.nn.Sequential(*list(e)[:-4], list(e)[-1]), d), r"\(4, 3, 4, 4\)"),  # one halving short
    (lambda e, d: (e, torch.nn.Sequential(*list(d)[:-1])), r"\[-1, 1\]"),
    (lambda e, d: (e, torch.nn.Sequential(*list(d)[:-3], list(d)[-2], list(d)[-1])), r"\(4, 3, 32, 32\)"),
    (lambda e, d: (torch.nn.Sequential(torch.nn.BatchNorm2d(3), *e), d), "BatchNorm"),
    (lambda e, d: (torch.nn.Sequential(*[m for m in e if not isinstance(m, spatial.ResidualBlock)]),
                   torch.nn.Sequential(*[m for m in d if not isinstance(m, spatial.ResidualBlock)])), "residual block"),
])
def test_the_check_rejects_typical_mistakes_in_the_learners_terms(change, message):
    with pytest.raises(exercises.Wrong, match=message):
        winning.check_spatial_autoencoder(_broken(change))


def test_the_check_turns_layers_that_do_not_fit_into_advice_not_a_pytorch_trace():
    def hard_coded(code_channels, width):  # a decoder written for 4 code channels, not the argument
        return winning.build_spatial_autoencoder(code_channels, width)[0], winning.build_spatial_autoencoder(4, width)[1]
    with pytest.raises(exercises.Wrong, match="code_channels=3 and width=8"):
        winning.check_spatial_autoencoder(hard_coded)


def test_an_unwritten_exercise_falls_back_to_the_solution_and_says_so(capsys):
    def unwritten(code_channels, width):
        raise NotImplementedError("write me")
    assert exercises.check_code("08.1", unwritten) is winning.build_spatial_autoencoder
    assert "Not written yet" in capsys.readouterr().out
    assert exercises.check_code("08.1", winning.build_spatial_autoencoder) is winning.build_spatial_autoencoder
    assert "Right" in capsys.readouterr().out


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
    guarded = winning.make_adamw(0.0, beta2=0.99, max_grad_norm=0.3)(model, 1e-3)
    plain = winning.make_adamw(0.0, beta2=0.999, max_grad_norm=None)(model, 1e-3)
    assert isinstance(guarded, winning.ClippedAdamW) and guarded.param_groups[0]["betas"] == (0.9, 0.99)
    assert type(plain) is torch.optim.AdamW and plain.param_groups[0]["betas"] == (0.9, 0.999)
    (1e4 * model(torch.ones(2, 4)).sum()).backward()   # a huge gradient
    guarded.step()
    norm = torch.sqrt(sum(p.grad.pow(2).sum() for p in model.parameters()))
    assert abs(float(norm) - 0.3) < 1e-4              # scaled down to the limit before the step
    with pytest.raises(ValueError, match="max_grad_norm"):
        winning.make_adamw(max_grad_norm=0.0)


def test_the_check_accepts_the_solution_whatever_its_random_initial_weights():
    for seed in range(40):  # the code's sign once depended on the learner's random init (8 of 200 refused)
        torch.manual_seed(seed)
        winning.check_spatial_autoencoder(winning.build_spatial_autoencoder)


class _MyBlock(torch.nn.Module):  # a learner's own residual block
    def __init__(self, c):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.GELU(), torch.nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return x + self.body(x)


def _swap_blocks(e, d):
    swap = lambda seq: torch.nn.Sequential(*[_MyBlock(m.body[1].in_channels) if isinstance(m, spatial.ResidualBlock)  # noqa: E731
                                             else m for m in seq])
    return swap(e), swap(d)


def test_the_check_accepts_a_learners_own_residual_block():
    winning.check_spatial_autoencoder(_broken(_swap_blocks))


@pytest.mark.parametrize("change, message", [
    (lambda e, d: (torch.nn.Sequential(*e, torch.nn.GELU()), d), "ends in GELU"),
    (lambda e, d: (torch.nn.Sequential(*e, torch.nn.Tanh()), d), "ends in Tanh"),
    (lambda e, d: (torch.nn.Sequential(*e, torch.nn.Mish(), torch.nn.Identity()), d), "ends in Mish"),
    (lambda e, d: (e, torch.nn.Sequential(*[m for m in d if not isinstance(m, spatial.ResidualBlock)])), "decoder has no residual"),
    (lambda e, d: (e, torch.nn.Sequential(*list(d)[:-2], list(d)[-1])), r"nn.PixelShuffle\(2\)"),
])
def test_the_check_refuses_what_the_instructions_forbid(change, message):
    with pytest.raises(exercises.Wrong, match=message):
        winning.check_spatial_autoencoder(_broken(change))


def test_the_check_refuses_width_for_two_times_width_and_a_conv_stem():
    def narrow(code_channels, width):
        return winning.build_spatial_autoencoder(code_channels, width // 2)
    with pytest.raises(exercises.Wrong, match="2 \\* width = 16"):
        winning.check_spatial_autoencoder(narrow)

    def conv_stem(code_channels, width):
        e, d = winning.build_spatial_autoencoder(code_channels, width)
        return torch.nn.Sequential(torch.nn.Conv2d(3, 12, 3, stride=2, padding=1), *list(e)[1:]), d
    with pytest.raises(exercises.Wrong, match="PixelUnshuffle"):
        winning.check_spatial_autoencoder(conv_stem)




class _NotResidual(_MyBlock):
    def forward(self, x):
        return self.body(x)


class _DoesNothing(torch.nn.Module):
    def __init__(self, c):
        super().__init__()

    def forward(self, x):
        return x


@pytest.mark.parametrize("block, message", [(_NotResidual, "not residual"), (_DoesNothing, "no weights")])
def test_the_check_refuses_blocks_that_are_not_residual(block, message):
    def build(code_channels, width):
        e, d = winning.build_spatial_autoencoder(code_channels, width)
        swap = lambda seq: torch.nn.Sequential(*[block(2 * width) if isinstance(m, spatial.ResidualBlock)  # noqa: E731
                                                 else m for m in seq])
        return swap(e), swap(d)
    with pytest.raises(exercises.Wrong, match=message):
        winning.check_spatial_autoencoder(build)


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


class _Wrapped(torch.nn.Module):  # an encoder written as a class of its own, not an nn.Sequential
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


def test_an_encoder_of_its_own_class_is_judged_by_its_codes():
    def wrapped(code_channels, width):
        e, d = winning.build_spatial_autoencoder(code_channels, width)
        return _Wrapped(e), d
    winning.check_spatial_autoencoder(wrapped)                          # a linear code: accepted

    def wrapped_relu(code_channels, width):
        e, d = winning.build_spatial_autoencoder(code_channels, width)
        return _Wrapped(torch.nn.Sequential(*e, torch.nn.ReLU())), d
    with pytest.raises(exercises.Wrong, match="every code value is >= 0"):
        winning.check_spatial_autoencoder(wrapped_relu)


def test_refined_codes_can_reuse_the_encoders_entropy_models(trained_small, bundle):
    """Notebook 08 scores refined test codes with the entropy models fitted on the encoder's training codes:
    the same steps and fits as the plain row, only the test codes differ, and no training code is refined."""
    pca = baselines.fit_pca(bundle.train, 32)
    pca_curve = codec_curves.pca_codec_curve(pca, bundle.train.head(500), bundle.test, steps=(0.5, 1.0, 2.0, 4.0))
    fit_on = bundle.train.head(500)
    train_codes = codec_curves.codes_of(trained_small, fit_on)
    plain_row, plain = codec_curves.ablation_row("plain", trained_small, fit_on, bundle.test, pca_curve=pca_curve,
                                                 pca_psnr={}, train_codes=train_codes)
    again_row, again = codec_curves.ablation_row("plain", trained_small, bundle.train, bundle.test, pca_curve=pca_curve,
                                                 pca_psnr={}, fit_images=500)
    pd.testing.assert_frame_equal(plain, again)                 # handing the codes in changes nothing
    assert plain_row["bpp"] == pytest.approx(plain_row["bits"] / 1024)

    class Refuses(torch.nn.Module):                             # an encoder that must not run again
        def __init__(self, model):
            super().__init__()
            self.model, self.latent_dim, self.code_shape = model, model.latent_dim, model.code_shape

        def encode(self, x):
            raise AssertionError("encoded again: the codes handed in were not used")

        def decode(self, z):
            return self.model.decode(z)

    refined_codes = codec_curves.codes_of(winning.RefinedCodes(trained_small, steps=5), bundle.test)
    row, curve = codec_curves.ablation_row("refined", Refuses(trained_small), fit_on, bundle.test, pca_curve=pca_curve,
                                           pca_psnr={}, train_codes=train_codes, test_codes=refined_codes)
    assert list(curve["step"]) == list(plain["step"])           # the encoder's steps and entropy models
    assert row["test dB"] > plain_row["test dB"]
    with pytest.raises(ValueError, match="one code per image"):
        codec_curves.ablation_row("x", trained_small, fit_on, bundle.test, pca_curve=pca_curve, pca_psnr={},
                                  train_codes=train_codes, test_codes=refined_codes[:3])


def test_the_untrained_control_is_pca_itself_as_a_codec(bundle):
    """The control row of notebook 08: an untrained PCAInitAutoencoder scores exactly as PCA-k, at equal
    values and as a codec at the same steps, so the trained row minus the control is what training added."""
    pca = baselines.fit_pca(bundle.train, 48)
    k = 16
    pca_k = baselines.PCAModel(pca.mean, pca.components[:k], pca.explained_variance[:k], pca.n_train, pca.solver)
    control = winning.PCAInitAutoencoder(pca_k, width=8, depth=0).eval()
    fit_on = bundle.train.head(800)
    best = codec_curves.pca_best_codec_curve(pca, fit_on, bundle.test, (0.5, 1.0, 2.0, 4.0), components=(8, 16, 32, 48))
    pca_psnr = {k: float(baselines.score_reconstructions("PCA", k, pca_k.reconstruct(bundle.test), bundle.test,
                                                         bits_per_image=1)["psnr_of_mean_mse"].iloc[0])}
    # swept over PCA's own steps (its code is PCA's, on PCA's scale), as notebook 08 sweeps it
    row, curve = codec_curves.ablation_row("control", control, fit_on, bundle.test, pca_curve=best, pca_psnr=pca_psnr,
                                           steps=(1.0, 2.0, 4.0))
    assert abs(row["vs PCA, equal values (dB)"]) < 1e-3
    [single] = codec_curves.pca_codec_curves(pca, fit_on, bundle.test, list(curve["step"]), components=(k,))
    np.testing.assert_allclose(curve["psnr_of_mean_mse"], single["psnr_of_mean_mse"], atol=1e-3)
    np.testing.assert_allclose(curve["bits_per_image"], single["bits_per_image"], rtol=0.02)
    # at those steps the control's points are PCA-16's, one of the curves PCA's best codec chooses among
    gains = codec_curves.compare_at_equal_bits(curve, best)["gain_db"].dropna()
    assert len(gains) and (gains <= 0.01).all()
