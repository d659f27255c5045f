"""The learned codec of notebook 10: its bits against closed forms, its bitstreams, its step, exercise 10.1's check."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from convae_utils import models, studies
from convae_utils.exercises import ex08
from convae_utils.codecs import curves, entropy_coding, learned
from convae_utils.images import ImageSet


def _laplace_mass(n: np.ndarray, b: float) -> np.ndarray:
    """Closed form: the mass of [n - 1/2, n + 1/2] under Laplace(0, b), for integers n."""
    n = np.abs(n).astype(np.float64)
    return np.where(n == 0, 1 - np.exp(-0.5 / b), 0.5 * (np.exp(-(n - 0.5) / b) - np.exp(-(n + 0.5) / b)))


@pytest.mark.parametrize("scale", [0.3, 1.0, 4.0])
def test_bits_of_a_laplace_match_the_closed_form_far_into_the_tails(scale):
    values = np.array([-30, -7, -2, -1, 0, 1, 2, 7, 30])
    y = torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1).expand(1, 1, 1, -1)
    per_value = torch.stack([learned.rate_bits(y[..., [i]], torch.zeros(1), torch.tensor([scale]))[0]
                             for i in range(len(values))]).double().numpy()
    expected = np.minimum(-np.log2(_laplace_mass(values, scale)), -math.log2(learned.MIN_MASS))
    np.testing.assert_allclose(per_value, expected, rtol=1e-4, atol=1e-4)


def test_the_bits_of_a_whole_distribution_sum_to_its_entropy():
    """Expected bits under the model's own distribution = its entropy, and the masses sum to 1."""
    scale = 1.7
    n = torch.arange(-200, 201, dtype=torch.float32).view(1, 1, 1, -1)
    bits = torch.stack([learned.rate_bits(n[..., [i]], torch.zeros(1), torch.tensor([scale]))[0] for i in range(n.shape[-1])])
    mass = 2.0 ** -bits.double()
    assert float(mass.sum()) == pytest.approx(1.0, abs=1e-6)
    closed = _laplace_mass(np.arange(-200, 201), scale)
    assert float((mass * bits).sum()) == pytest.approx(float(-(closed * np.log2(closed)).sum()), rel=1e-5)


def _small_codec(channels: int = 6) -> tuple[torch.nn.Module, learned.LearnedCodec, torch.Tensor]:
    torch.manual_seed(0)
    model = models.SequentialAutoencoder(*ex08.build_spatial_autoencoder(4, 4)).eval()
    sample = torch.rand(32, 3, 32, 32) * 2 - 1
    return model, learned.codec_from_autoencoder(model, sample, code_channels=channels), sample


def test_a_widened_code_reconstructs_as_the_model_did_until_trained():
    model, _, sample = _small_codec()
    wide = learned.widen_code(model, 7).eval()
    with torch.no_grad():
        assert wide.encode(sample).shape[1] == 7
        assert torch.allclose(wide(sample), model(sample), atol=1e-6)
    with pytest.raises(ValueError):
        learned.widen_code(model, 3)


@pytest.mark.skipif(not entropy_coding.coder_available(), reason="no constriction on this machine")
def test_bitstreams_decode_back_exactly_and_cost_what_the_prior_says():
    _, codec, _ = _small_codec()
    generator = torch.Generator().manual_seed(1)
    test = ImageSet(torch.randint(0, 256, (24, 3, 32, 32), dtype=torch.uint8, generator=generator),
                    torch.zeros(24, dtype=torch.int64), ("x",), "random", split="test")
    point = learned.code_test_images("codec", codec, test)
    symbols = learned.rounded_codes(codec, test)
    assert point.coded.clipped == 0
    np.testing.assert_array_equal(point.coded.symbols, symbols)
    model = learned.entropy_model_of(codec)
    stream = model.encode(symbols[3])
    np.testing.assert_array_equal(model.decode(stream), symbols[3])
    # the coder's ideal bits are the prior's own (what the training loss charges), and the real ones a few more
    y = torch.from_numpy(symbols.astype(np.float32)).view(-1, *codec.code_shape)
    with torch.no_grad():
        charged = codec.prior.bits(y).double().numpy()
    np.testing.assert_allclose(point.coded.information_bits, charged, rtol=1e-3, atol=0.05)
    overhead = point.coded.bits - point.coded.information_bits
    assert (overhead > -1e-6).all() and (overhead < 72).all()
    assert point.row["side_bits"].iloc[0] == learned.side_bits(codec) == 96 * codec.code_channels
    assert point.bits_per_channel.shape == (codec.code_channels,)
    assert float(point.bits_per_channel.sum()) == pytest.approx(float(charged.mean()), rel=1e-4)


@pytest.mark.parametrize("lmbda", [0.0, 0.03, 1.0])
@pytest.mark.parametrize("training", [True, False])
def test_the_step_loss_is_distortion_plus_lambda_times_rate(lmbda, training):
    _, codec, sample = _small_codec()
    codec.train(training)
    torch.manual_seed(3)
    loss, logs = learned.rate_distortion_step(lmbda)(codec, sample[:8])
    assert float(loss.detach()) == pytest.approx(float(logs["mse"] + lmbda * logs["bpp"]), rel=1e-6)
    if not training:  # eval: the rounded code, its bits under the prior, the reconstruction of the rounded code
        with torch.no_grad():
            y_hat = torch.round(codec.latents(sample[:8]))
            assert float(logs["bpp"]) == pytest.approx(float(codec.prior.bits(y_hat).mean()) / 1024, rel=1e-5)
            mse = torch.nn.functional.mse_loss(codec.decode(y_hat), sample[:8])
            assert float(logs["mse"]) == pytest.approx(float(mse), rel=1e-5)
    if lmbda > 0 and training:
        loss.backward()
        assert codec.prior.fast_log_scale.grad is not None and codec.fast_log_step.grad.abs().sum() > 0


def test_the_rate_term_pushes_the_steps_up():
    """A large lambda and nothing else: a few updates make the steps (and so the step sizes) grow."""
    _, codec, sample = _small_codec()
    before = codec.step.detach().clone()
    optimizer = torch.optim.Adam(codec.parameters(), lr=1e-2)
    step = learned.rate_distortion_step(10.0)
    for _ in range(5):
        loss, _ = step(codec, sample)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert bool((codec.step.detach() > before).all())


# -- exercise 10.1's table of slips and right answers: tests/test_exercise_mutations.py (RATE)


# -- curves ---------------------------------------------------------------------------------------------

def test_the_envelope_is_never_below_any_point_it_covers():
    rng = np.random.default_rng(0)
    points = pd.DataFrame({"bits_per_image": rng.uniform(50, 800, 60), "psnr_of_mean_mse": rng.uniform(20, 30, 60)})
    front = learned.pareto_front(points)
    assert (np.diff(front["bits_per_image"]) >= 0).all() and (np.diff(front["psnr_of_mean_mse"]) > 0).all()
    inside = points[points["bits_per_image"] >= front["bits_per_image"].min()]
    reference = curves.compare_at_equal_bits(inside, front)
    assert (reference["reference_psnr"].dropna() >= inside["psnr_of_mean_mse"][reference["reference_psnr"].notna()] - 1e-9).all()


def test_points_beaten_counts_the_reference_points_beaten_on_both_bits_and_psnr():
    curve = pd.DataFrame({"bits_per_image": [100.0, 250.0], "psnr_of_mean_mse": [22.0, 26.4]})
    webp = pd.DataFrame({"bits_per_image": [390.0, 240.0, 630.0, 250.0],
                         "psnr_of_mean_mse": [25.0, 21.0, 28.7, 26.0]})
    # 390 bits / 25 dB: beaten by 250 / 26.4; 240 / 21: by 100 / 22; 630 / 28.7: by none (higher PSNR);
    # 250 / 26.0: by none (the same bits are not fewer)
    assert learned.points_beaten(curve, webp) == 2
    assert learned.points_beaten(webp, curve) == 0


def test_bit_saving_at_equal_psnr_reads_a_curve_with_half_the_bits_as_fifty_percent():
    reference = pd.DataFrame({"bits_per_image": [100.0, 200.0, 400.0], "psnr_of_mean_mse": [22.0, 25.0, 28.0]})
    half = reference.assign(bits_per_image=reference["bits_per_image"] / 2)
    assert learned.bit_saving_at_equal_psnr(half, reference) == pytest.approx(0.5)
    assert learned.bit_saving_at_equal_psnr(reference, half) == pytest.approx(-1.0)
    assert math.isnan(learned.bit_saving_at_equal_psnr(reference.assign(psnr_of_mean_mse=[30.0, 31, 32]), reference))


def test_plans_are_shared_by_profile_and_refuse_unknown_ones():
    from convae_utils import settings

    base = settings.preset("workshop", latent_dim=64, base_channels=32)
    plan = learned.codec_plan(base)
    assert plan.settings.latent_dim == 16 * plan.code_channels and plan.lambdas == learned.PLANS["workshop"]["lambdas"]
    with pytest.raises(ValueError, match="plan must be one of"):
        learned.codec_plan(base, "huge")


def test_webp_counts_its_stream_without_the_fixed_header_and_decodes():
    from convae_utils import baselines

    generator = torch.Generator().manual_seed(2)
    some = torch.randint(0, 256, (3, 3, 32, 32), dtype=torch.uint8, generator=generator)
    recon, whole, stream = baselines.webp_roundtrip(some, 30)
    assert recon.shape == some.shape and recon.dtype == torch.uint8
    assert ((whole - stream) >= baselines.WEBP_FIXED_BYTES).all() and ((whole - stream) <= baselines.WEBP_FIXED_BYTES + 1).all()
    assert float((recon.float() - some.float()).abs().mean()) < 60  # a lossy copy, not noise
    table = baselines.webp_sweep(some, (10, 60))
    assert set(table["method"]) == {"WebP (whole file)", "WebP (without fixed header)"}
    with pytest.raises(ValueError, match="WebP quality"):
        baselines.webp_roundtrip(some, 101)


# -- the headless study's options: refused where they are parsed, each in its own words --------------------

@pytest.mark.parametrize("argv,words", [(["--seeds", "0"], "--seeds must be at least 1"),
                                        (["--lambdas", "0.1", "-2"], "--lambdas must lie in 0..1000"),
                                        (["--lambdas", "nan"], "--lambdas must lie in"),
                                        (["--seeds", "2", "--first-seed", "2"], "--first-seed must lie in 0..1"),
                                        (["--out", "/no/such/folder/table.csv"], "--out: the folder of"),
                                        (["--base", "turned"], "argument --base: invalid choice: 'turned'")])
def test_the_study_refuses_bad_options_before_it_loads_anything(argv, words, capsys, monkeypatch):
    from tools.studies import learned_codec as study

    monkeypatch.setattr(study, "run_seed", lambda *a, **k: pytest.fail("the study ran before checking its options"))
    with pytest.raises(SystemExit):
        study.main(argv)
    assert words in capsys.readouterr().err


def test_the_study_summary_reads_each_codec_against_the_lambda_zero_control():
    from tools.studies import learned_codec as study

    table = pd.DataFrame({"dataset": "photos10", "seed": 0, "lambda": [0.1, 0.03], "bits": [80.0, 300.0],
                          "bpp": [0.08, 0.3], "dB": [24.0, 27.0], "vs PCA's best (dB)": [0.1, 0.4],
                          "vs JPEG scan (dB)": [1.0, 0.5], "vs 08 MSE-only (dB)": [0.8, 0.6],
                          "vs λ=0 control (dB)": [0.3, 0.2]})
    lines = study.summarise(table)
    assert "vs the λ=0 control (the rate term) +0.30" in lines[0] and "+0.20" in lines[1]


def test_notebook_10_says_the_same_photographs_caveat_only_on_photos10():
    """The caveat is about photos10's patches; on shapes10 (the smoke data) it would be false (as notebook 08)."""
    from pathlib import Path

    source = (Path(__file__).resolve().parents[1] / "notebooks" / "10_learned_codec.py").read_text()
    cell = next(c for c in source.split("# %%") if "same ten photographs as the training" in c and "print(" in c)
    guard = cell[:cell.index("same ten photographs as the training")].rsplit("\nif ", 1)[1]
    assert guard.startswith('test.name == "photos10"'), guard


# -- the hyperprior (the study's codec) -------------------------------------------------------------------

def _hyper_codec(perturb: bool = True) -> tuple[learned.HyperpriorCodec, torch.Tensor]:
    _, codec, sample = _small_codec()
    hyper = learned.with_hyperprior(codec, seed=2).eval()
    if perturb:  # a trained-looking hyperprior: each image gets its own locations and scales
        torch.manual_seed(4)
        with torch.no_grad():
            hyper.hyper.decoder[-1].weight.normal_(0, 0.05)
            hyper.hyper.decoder[-1].bias[96:] = 1.0      # wider scales than the factorised prior's: nothing clipped
            hyper.hyper.encoder[-1].weight.mul_(3)
    return hyper, sample


def test_an_untrained_hyperprior_prices_the_code_as_the_factorised_prior_plus_its_side_values():
    hyper, sample = _hyper_codec(perturb=False)
    with torch.no_grad():
        y = hyper.latents(sample)
        y_hat = torch.round(y)
        z_hat = torch.round(hyper.hyper.side(y))
        expected = hyper.prior.bits(y_hat) + hyper.hyper.z_prior.bits(z_hat[:, :, None, None])
        torch.testing.assert_close(hyper.rate(y, y_hat), expected, rtol=1e-5, atol=1e-3)
    assert learned.side_bits(hyper) == 32 * (6 + 2 * 96 + 2 * 4)


@pytest.mark.skipif(not entropy_coding.coder_available(), reason="no constriction on this machine")
def test_hyperprior_bitstreams_decode_back_exactly_and_cost_what_the_rate_charges():
    hyper, _ = _hyper_codec()
    generator = torch.Generator().manual_seed(1)
    test = ImageSet(torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=generator),
                    torch.zeros(20, dtype=torch.int64), ("x",), "random", split="test")
    point = learned.code_test_images("hyper", hyper, test)
    assert point.coded.clipped == 0
    np.testing.assert_array_equal(point.coded.symbols, learned.rounded_codes(hyper, test))
    with torch.no_grad():
        from convae_utils.images import normalize
        y = hyper.latents(normalize(test.images))
        charged = hyper.rate(y, torch.round(y)).double().numpy()
        scales = hyper.hyper.params(torch.round(hyper.hyper.side(y)))[1]
    assert float(scales.std(dim=0).mean()) > 0.01, "the images should get distributions of their own"
    np.testing.assert_allclose(point.coded.information_bits, charged, rtol=1e-3, atol=0.05)
    overhead = point.coded.bits - point.coded.information_bits
    assert (overhead > -1e-6).all() and (overhead < 72).all()   # one stream per image: z and the code together
    assert float(point.bits_per_channel.sum()) < float(charged.mean())   # z's bits are not any channel's
    assert point.row["side_bits"].iloc[0] == learned.side_bits(hyper)


def test_a_rounded_decoder_input_decodes_integers_in_training_and_passes_the_gradient_through():
    _, codec, sample = _small_codec()
    codec.train()
    seen = []
    decode = codec.decode
    codec.decode = lambda y: (seen.append(y.detach().clone()), decode(y))[1]
    loss, logs = learned.rate_distortion_step(0.03, "rounded")(codec, sample[:8])
    assert torch.equal(seen[0], torch.round(seen[0]))
    assert float(loss.detach()) == pytest.approx(float(logs["mse"] + 0.03 * logs["bpp"]), rel=1e-6)
    loss.backward()
    encoder_grads = [p.grad for p in codec.encoder.parameters()]
    assert all(g is not None for g in encoder_grads) and sum(float(g.abs().sum()) for g in encoder_grads) > 0
    codec.decode = decode
    seen.clear()
    learned.rate_distortion_step(0.03)(codec, sample[:8])   # the default: the noisy code, not integers
    with pytest.raises(ValueError, match="decoder_input must be one of noisy, rounded, got 'round'"):
        learned.rate_distortion_step(0.03, "round")


def test_the_default_step_keeps_the_record_of_earlier_runs():
    """Run folders made before the rounded option name the step without it: they must still load."""
    assert learned.rate_distortion_step(0.1).describe() == {
        "step": "rate_distortion", "lambda": 0.1, "rate": "bits per pixel", "distortion": "MSE in [-1, 1]"}
    assert learned.rate_distortion_step(0.1, "rounded").describe()["decoder_input"] == "rounded"


def test_the_study_hyper_plan_builds_hyperprior_codecs_in_folders_of_their_own():
    from convae_utils import settings

    base = settings.preset("workshop").replace(latent_dim=64)
    plan = learned.codec_plan(base, "study-hyper")
    model, _, sample = _small_codec()
    assert plan.hyperprior and plan.decoder_input == "rounded"
    assert "study-hyper" in plan.run_name(0.1, model)
    codec = plan.builder(model, sample)(plan.settings)
    assert isinstance(codec, learned.HyperpriorCodec) and codec.code_channels == plan.code_channels
    assert plan.step(0.1).__name__ == "rate_distortion_step(0.1, rounded)"


def test_the_study_target_line_names_the_shortfall_at_the_rate_that_decides_three_of_four():
    """One rate above +0.3 dB does not make the target: the shortfall is read at the third best rate."""
    from tools.studies import learned_codec as study

    table = pd.DataFrame({"dataset": "photos10", "seed": 0, "lambda": [0.3, 0.1, 0.03, 0.01],
                          "bits": [87.0, 124.0, 179.0, 237.0], "bpp": [0.08, 0.12, 0.17, 0.23],
                          "dB": [22.5, 24.1, 25.0, 25.4], "vs PCA's best (dB)": [0.0, 0.33, -0.04, -0.69],
                          "vs JPEG scan (dB)": [np.nan, np.nan, np.nan, 1.6], "vs 08 MSE-only (dB)": [np.nan, 3.8, 1.9, 0.7],
                          "vs λ=0 control (dB)": [np.nan, np.nan, np.nan, 4.8]})
    target = next(line for line in study.summarise(table) if "3 of 4 rates" in line)
    assert "1 of 4 -> missed" in target and "third best -0.04 dB, short of +0.3 by 0.34 dB" in target
    met = table.assign(**{"vs PCA's best (dB)": [0.31, 0.4, 0.35, -0.2]})
    assert next(line for line in study.summarise(met) if "3 of 4 rates" in line).endswith("3 of 4 -> met")


def test_coding_refuses_what_is_not_a_codec_or_not_an_image_set():
    model, codec, sample = _small_codec()
    with pytest.raises(TypeError, match="codec must be a LearnedCodec"):
        learned.code_test_images("x", model, None)
    with pytest.raises(TypeError, match="test must be an ImageSet"):
        learned.code_test_images("x", codec, sample)
    hyper = learned.with_hyperprior(codec)
    with pytest.raises(TypeError, match="already has a hyperprior"):
        learned.with_hyperprior(hyper)
    with pytest.raises(ValueError, match="z_values"):
        learned.with_hyperprior(codec, z_values=0)


@pytest.mark.parametrize("argv, words", [
    (["--lambdas", "-1"], "--lambdas must be at least 0"),
    (["--base-runs", "/no/such/folder"], "--base-runs must be an existing folder"),
    (["--base-channels", "0"], "--base-channels must be at least 1"),
    (["--seed", "-1"], "argument --seed: expected a number from 0 to"),
    (["--train-size", "0"], "argument --train-size: expected a number from 1 to"),
])
def test_the_codec_trials_refuse_bad_options_before_any_work(argv, words, capsys, monkeypatch):
    from tools.studies import codec_variants

    monkeypatch.setattr("convae_utils.settings.from_env", lambda *a, **k: pytest.fail("work began"))
    with pytest.raises(SystemExit):
        codec_variants.main(argv)
    assert words in capsys.readouterr().err


def test_the_study_takes_the_dataset_its_fallback_warning_names(monkeypatch, tmp_path):
    """The stand-in warning says "--dataset photos10 on the command line": the study must accept it and use it."""
    from tools.studies import learned_codec as study

    seen = []

    def fake_run_seed(seed, plan, profile, lambdas=None, dataset=None, base_data="dihedral"):
        seen.append(dataset)
        bases.append(base_data)
        return pd.DataFrame({"dataset": dataset, "seed": seed, "lambda": [0.1], "bits": [100.0], "bpp": [0.1],
                             "dB": [24.0], "vs PCA's best (dB)": [0.1], "vs JPEG scan (dB)": [np.nan],
                             "vs 08 MSE-only (dB)": [1.0], "vs λ=0 control (dB)": [np.nan]})

    monkeypatch.setattr(study, "run_seed", fake_run_seed)
    bases = []
    assert study.main(["--seeds", "1", "--dataset", "photos10", "--out", str(tmp_path / "t.csv")]) == 0
    assert seen == ["photos10"] and (tmp_path / "t.csv").exists()
    assert study.main(["--seeds", "1", "--dataset", "photos10", "--base", "plain"]) == 0
    assert bases == ["dihedral", "plain"]   # the default, then what --base asked for


def test_the_study_starts_from_notebook_08s_model_as_the_notebook_trains_it_or_as_it_did_before():
    """--base dihedral: notebook 08's run folder and record (seed 0 loads the notebook's run), turned patches;
    --base plain: the model the tables in benchmarks/results started from."""
    from pathlib import Path

    from convae_utils import data
    from tools.studies import learned_codec as study

    bundle = data.prepare_data("shapes10", train_size=64, val_size=16, test_size=16)
    options = dict(optimizer=None)
    recipe, turned, peak_lr = study.base_run(0, "dihedral", len, bundle, options)
    assert peak_lr == studies.SPATIAL_PEAK_LR
    assert recipe.name == "spatial-dihedral" and recipe.options == {"augmentation": data.DIHEDRAL}
    assert torch.equal(turned.train.images, data.augment_dihedral(bundle.train, seed=0).images)
    assert turned.test is bundle.test and turned.val is bundle.val
    assert study.base_run(2, "dihedral", len, bundle, options)[0].name == "spatial-dihedral-seed2"
    recipe, plain, peak_lr = study.base_run(1, "plain", len, bundle, options)
    assert recipe.name == "spatial-seed1" and recipe.options == {} and plain is bundle
    for wrong in ("turned", "Dihedral"):   # a typo must not quietly fall back to the plain model
        with pytest.raises(ValueError, match="base_data"):
            study.base_run(0, wrong, len, bundle, options)
    assert peak_lr == studies.PLAIN_PEAK_LR == 6e-3   # the tables in benchmarks/results started from this run
    notebook = (Path(__file__).resolve().parents[1] / "notebooks" / "08_winning.py").read_text()
    assert '"spatial-dihedral"' in notebook and 'options={"augmentation": data.DIHEDRAL}' in notebook
    assert "data.augment_dihedral(win_bundle.train, seed=win_config.seed)" in notebook
    assert "lr=PEAK_LR" in notebook and "PEAK_LR = studies.SPATIAL_PEAK_LR" in notebook
    notebook_10 = (Path(__file__).resolve().parents[1] / "notebooks" / "10_learned_codec.py").read_text()
    assert 'runs.Recipe("spatial-dihedral"' in notebook_10 and 'options={"augmentation": data.DIHEDRAL}' in notebook_10
    assert "data.augment_dihedral(spatial_bundle.train, seed=spatial_config.seed)" in notebook_10
    assert "lr=studies.SPATIAL_PEAK_LR" in notebook_10


def test_the_study_summary_reads_the_stretch_targets_webp_and_the_average_bit_saving():
    from tools.studies import learned_codec as study

    def seed_table(seed, saving, webp, beaten=0, webp_saving=np.nan):
        return pd.DataFrame({"dataset": "photos10", "seed": seed, "lambda": [0.1, 0.01], "bits": [100.0, 450.0],
                             "bpp": [0.1, 0.44], "dB": [24.0, 28.0], "vs PCA's best (dB)": [0.4, 0.1],
                             "vs JPEG scan (dB)": [np.nan, 1.0], "vs WebP stream (dB)": [np.nan, webp],
                             "vs 08 MSE-only (dB)": [3.0, 1.0], "vs λ=0 control (dB)": [np.nan, 2.0], study.SAVING: saving,
                             study.WEBP_SAVING: webp_saving, study.WEBP_BEATEN: beaten})

    lines = study.summarise(pd.concat([seed_table(0, 0.10, -0.2, 1, 0.25), seed_table(1, -0.04, 0.1)],
                                      ignore_index=True))
    webp = next(line for line in lines if "WebP's stream" in line)
    assert "0 of 1 rates WebP reaches -> missed" in webp          # the mean over seeds, -0.05 dB, at 450 bits
    saving = next(line for line in lines if "bit saving over PCA" in line)
    assert "+3.0% ± 9.9% (+10.0%, -4.0%) -> met" in saving
    beaten = next(line for line in lines if "fewer bits and a higher PSNR" in line)
    assert "on 1 of 2 seeds" in beaten and "+25.0%, no PSNR in common" in beaten
    assert "vs WebP outside its range" in lines[0] and "vs WebP -0.05" in lines[1]
    below = study.summarise(seed_table(0, -0.2, np.nan))           # WebP never as low as the codecs' rates
    assert any("no codec rate inside WebP's range" in line for line in below)
    assert any("-20.0% ± 0.0% (-20.0%) -> missed" in line for line in below)
