"""The codecs package: quantisers, entropy coding (bitstreams decode to the code they came from, and their size
is honest), bit counting, codec curves and PCA's best codec."""

import math
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from convae_utils import baselines, data, models, spatial
from convae_utils.codecs import bits as codec_bits
from convae_utils.codecs import curves as codec_curves
from convae_utils.codecs import entropy_coding as entropy
from convae_utils.codecs import quantizers
from convae_utils.codecs.quantizers import fit_quantizer
from convae_utils.spatial import SpatialAutoencoder


@pytest.fixture(scope="module")
def bundle():
    return data.prepare_data("shapes10", train_size=3200, val_size=64, test_size=64, seed=0)


def _laplace_codes(n, d, scale, seed=0):
    return np.random.default_rng(seed).laplace(0.0, scale, size=(n, d)).astype(np.float32)


def test_bitstreams_decode_to_the_same_integer_code():
    codes = _laplace_codes(300, 24, 2.0)
    codes[:, 5] *= 0.0            # a value that never moves
    codes[:, 7] = np.random.default_rng(1).normal(3.0, 1.5, 300)  # a shifted Gaussian one
    symbols = quantizers.quantize(codes, 0.5)
    model = entropy.fit_entropy_model(symbols[:200])
    coded = entropy.code_images(model, symbols[200:])
    np.testing.assert_array_equal(coded.symbols, model.clip(symbols[200:]))
    for row in symbols[200:210]:
        clipped = model.clip(row[None])[0]
        assert np.array_equal(model.decode(model.encode(clipped)), clipped)
    assert coded.side_bits == 97 * 24


def test_test_symbols_outside_the_training_range_are_clipped_and_counted():
    symbols = quantizers.quantize(_laplace_codes(100, 4, 1.0), 1.0)
    model = entropy.fit_entropy_model(symbols)
    far = symbols[:3].copy()
    far[0, 0] = model.high[0] + 10
    coded = entropy.code_images(model, far)
    assert coded.clipped == 1 and coded.symbols[0, 0] == model.high[0]
    with pytest.raises(ValueError, match="clip"):
        model.encode(far[0])


def test_bits_fall_when_the_step_grows():
    codes = _laplace_codes(600, 16, 1.0)
    bits = []
    for step in (0.05, 0.2, 0.8):
        symbols = quantizers.quantize(codes, step)
        model = entropy.fit_entropy_model(symbols[:400])
        bits.append(entropy.code_images(model, symbols[400:]).bits_per_image)
    assert bits[0] > bits[1] > bits[2]


def test_a_known_distribution_codes_near_its_entropy():
    # A Laplace of scale b, quantised with step 1: its exact entropy from the discretised pmf.
    b, d, n = 3.0, 64, 400
    codes = _laplace_codes(2000 + n, d, b, seed=2)
    symbols = quantizers.quantize(codes, 1.0)
    model = entropy.fit_entropy_model(symbols[:2000])
    assert model.laplace.mean() > 0.8  # the family is recognised
    k = np.arange(-200, 201)
    cdf = lambda x: np.where(x < 0, 0.5 * np.exp(x / b), 1 - 0.5 * np.exp(-x / b))  # noqa: E731
    p = cdf(k + 0.5) - cdf(k - 0.5)
    entropy_bits = -(p[p > 0] * np.log2(p[p > 0])).sum() * d
    coded = entropy.code_images(model, symbols[2000:])
    # the ideal information of the test images lies near the entropy, and the real bitstreams
    # add little on top (under 5 % plus one 32-bit word)
    assert abs(coded.information_bits.mean() / entropy_bits - 1) < 0.03
    assert coded.information_bits.mean() <= coded.bits_per_image < 1.05 * entropy_bits + 32


def test_bad_inputs_say_what_was_expected():
    with pytest.raises(ValueError, match="step"):
        quantizers.quantize(np.zeros((2, 3)), 0.0)
    with pytest.raises(ValueError, match="quantise the codes first"):
        entropy.fit_entropy_model(np.zeros((2, 3), dtype=np.float32))
    model = entropy.fit_entropy_model(np.zeros((5, 3), dtype=np.int32))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        entropy.code_images(model, np.zeros((2, 4), dtype=np.int32))


# -- bits of a known distribution, against the closed form ---------------------------------------------

def test_ideal_bits_of_a_laplace_match_the_closed_form():
    # A discretised Laplace (mean 0, scale b in steps) gives symbol 0 the mass 1 - exp(-1/(2b)) and
    # symbol k != 0 the mass exp(-|k|/b) sinh(1/(2b)); its bits are -log2 of that mass.
    b = 2.0
    model = entropy.EntropyModel(np.array([True]), np.zeros(1, np.float32), np.full(1, b, np.float32),
                                 np.array([-50], np.int32), np.array([50], np.int32))
    symbols = np.array([[0], [1], [-3], [7]], dtype=np.int32)
    mass = [1 - math.exp(-0.5 / b)] + [math.exp(-abs(k) / b) * math.sinh(0.5 / b) for k in (1, -3, 7)]
    np.testing.assert_allclose(model.information_bits(symbols), [-math.log2(m) for m in mass], rtol=1e-6)


def test_ideal_bits_of_a_gaussian_match_the_closed_form():
    sigma = 1.5
    model = entropy.EntropyModel(np.array([False]), np.zeros(1, np.float32), np.full(1, sigma, np.float32),
                                 np.array([-40], np.int32), np.array([40], np.int32))
    phi = lambda x: 0.5 * (1 + math.erf(x / (sigma * math.sqrt(2))))  # noqa: E731
    symbols = np.array([[0], [2], [-1]], dtype=np.int32)
    expected = [-math.log2(phi(k + 0.5) - phi(k - 0.5)) for k in (0, 2, -1)]
    np.testing.assert_allclose(model.information_bits(symbols), expected, rtol=1e-6)


def test_bits_per_pixel_counts_the_1024_pixels():
    assert codec_bits.bits_per_pixel(codec_bits.IMAGE_BITS) == 24.0  # the uncompressed uint8 image
    np.testing.assert_allclose(codec_bits.bits_per_pixel(np.array([1024.0, 256.0])), [1.0, 0.25])


def test_nats_to_bits_divides_by_ln_2():
    assert codec_bits.nats_to_bits(math.log(2.0)) == pytest.approx(1.0)
    torch.testing.assert_close(codec_bits.nats_to_bits(torch.tensor([0.0, math.log(8.0)])), torch.tensor([0.0, 3.0]))


# -- no entropy coder on this machine (Linux on Arm, Windows on Arm): ideal bits, said ---------------------

def test_without_the_coder_ideal_bits_are_reported_and_labelled(monkeypatch):
    symbols = quantizers.quantize(_laplace_codes(300, 8, 2.0), 1.0)
    model = entropy.fit_entropy_model(symbols[:200])
    real = entropy.code_images(model, symbols[200:])
    monkeypatch.setitem(sys.modules, "constriction", None)  # import constriction -> ImportError, as on aarch64
    assert not entropy.coder_available()
    ideal = entropy.code_images(model, symbols[200:])
    assert ideal.ideal and not real.ideal
    np.testing.assert_array_equal(ideal.symbols, real.symbols)
    np.testing.assert_allclose(ideal.bits, real.information_bits)
    assert ideal.bits_per_image < real.bits_per_image  # a real stream pays the coder's overhead
    with pytest.raises(ImportError, match="no wheel for Linux on Arm"):
        model.encode(model.clip(symbols[:1])[0])
    assert "IDEAL bits" in entropy.NO_CODER_NOTE and "-log2" in entropy.NO_CODER_NOTE


def test_a_codec_curve_without_the_coder_says_its_bits_are_ideal(monkeypatch, bundle):
    pca = baselines.fit_pca(bundle.train, 16)
    real = codec_curves.pca_codec_curve(pca, bundle.train.head(500), bundle.test, steps=(1.0,))
    monkeypatch.setitem(sys.modules, "constriction", None)
    ideal = codec_curves.pca_codec_curve(pca, bundle.train.head(500), bundle.test, steps=(1.0,))
    assert bool(real["bitstream"].iloc[0]) and not bool(ideal["bitstream"].iloc[0])
    assert ideal["bits_per_image"].iloc[0] == pytest.approx(ideal["information_bits"].iloc[0])
    assert ideal["psnr_of_mean_mse"].iloc[0] == pytest.approx(real["psnr_of_mean_mse"].iloc[0])


# -- quantisers ---------------------------------------------------------------------------------------------

def test_quantizer_error_at_most_half_a_step():
    generator = torch.Generator().manual_seed(0)
    train_codes = torch.randn(500, 7, generator=generator) * torch.arange(1, 8)
    for bits in (2, 4, 8, 16):
        q = fit_quantizer(train_codes, bits)
        levels = q.quantize(train_codes)
        assert int(levels.min()) >= 0 and int(levels.max()) <= 2 ** bits - 1
        assert levels.dtype == (torch.uint8 if bits <= 8 else torch.int32)
        error = (q.dequantize(levels) - train_codes).abs()
        float32_resolution = torch.finfo(torch.float32).eps * train_codes.abs().max()  # of the float32 output
        assert bool((error <= q.step / 2 + float32_resolution).all())
        assert q.bits_per_image() == 7 * bits
    q = fit_quantizer(train_codes, 4)
    outside = q.roundtrip(train_codes.max(dim=0).values[None] + 100)  # clipped to the training range
    torch.testing.assert_close(outside[0], q.high)


def test_quantizer_constant_unit_and_percentile():
    codes = torch.stack([torch.linspace(-1, 1, 101), torch.zeros(101)], dim=1)  # unit 1 is dead
    q = fit_quantizer(codes, 8)
    assert float(q.step[1]) == 0
    torch.testing.assert_close(q.roundtrip(codes)[:, 1], torch.zeros(101))
    narrow = fit_quantizer(codes, 8, percentile=5)
    assert float(narrow.low[0]) > -1 and float(narrow.high[0]) < 1


@pytest.mark.parametrize("bits", [3, 1, 32, 0, 8.0, True])
def test_quantizer_bad_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        fit_quantizer(torch.zeros(4, 2), bits)


def test_quantizer_bad_codes():
    with pytest.raises(ValueError):
        fit_quantizer(torch.zeros(4), 8)
    with pytest.raises(ValueError):
        fit_quantizer(torch.tensor([[0.0, math.nan]]), 8)
    with pytest.raises(ValueError, match="percentile"):
        fit_quantizer(torch.zeros(4, 2), 8, percentile=50)
    with pytest.raises(ValueError, match="codes of shape"):
        fit_quantizer(torch.zeros(4, 2), 8).quantize(torch.zeros(4, 3))


def test_quantizer_makes_no_float64_on_the_codes_device():
    # MPS has no float64: quantising codes that live on an accelerator must compute in float64 on the
    # CPU only and hand the result back on the codes' device. A fake CUDA device stands in for one.
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils._python_dispatch import TorchDispatchMode

    class Record(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.made = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for tensor in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(tensor, torch.Tensor):
                    self.made.append((str(func), tensor.dtype, tensor.device.type))
            return out

    q = fit_quantizer(torch.randn(100, 5, generator=torch.Generator().manual_seed(0)), 16)
    with FakeTensorMode(allow_non_fake_inputs=True):
        codes = torch.empty(8, 5, device="cuda")
        with Record() as record:
            levels = q.quantize(codes)
            back = q.dequantize(levels)
    assert levels.device.type == back.device.type == "cuda" and back.dtype == torch.float32
    off_cpu = [made for made in record.made if made[1] == torch.float64 and made[2] != "cpu"]
    assert not off_cpu, f"float64 made on the accelerator: {off_cpu}"


# -- codec curves and PCA's best codec ----------------------------------------------------------------------

def test_codec_curves_fall_with_the_step_and_compare_at_equal_bits(bundle):
    pca = baselines.fit_pca(bundle.train, 32)
    pca_curve = codec_curves.pca_codec_curve(pca, bundle.train, bundle.test, steps=(0.5, 1.0, 2.0))
    assert list(pca_curve["bits_per_image"]) == sorted(pca_curve["bits_per_image"], reverse=True)
    assert list(pca_curve["psnr_of_mean_mse"]) == sorted(pca_curve["psnr_of_mean_mse"], reverse=True)
    model = SpatialAutoencoder(2, width=8)
    curve = codec_curves.codec_curve("untrained", model, bundle.train, bundle.test, steps=(0.05, 0.2))
    assert (curve["bits_per_image"] >= curve["information_bits"]).all()
    # PCA against itself: no gain where it lies inside its own range, NaN outside it
    same = codec_curves.compare_at_equal_bits(pca_curve, pca_curve)
    np.testing.assert_allclose(same["gain_db"], 0.0, atol=1e-9)
    shifted = pca_curve.assign(bits_per_image=pca_curve["bits_per_image"] * 100)
    assert codec_curves.compare_at_equal_bits(shifted, pca_curve)["gain_db"].isna().all()



def _curve(points, name):
    bits, psnr = zip(*points)
    return pd.DataFrame({"method": name, "setting": [f"{name}{i}" for i in range(len(bits))],
                         "bits_per_image": np.array(bits, float), "psnr_of_mean_mse": np.array(psnr, float)})


def _never_below(envelope, curve):
    """The envelope read at many bits inside the curve's range is never below the curve read there."""
    curve = curve.sort_values("bits_per_image")
    lo, hi = np.log2(curve["bits_per_image"].min()), np.log2(curve["bits_per_image"].max())
    grid = pd.DataFrame({"bits_per_image": 2 ** np.linspace(lo, hi, 301)})
    grid["psnr_of_mean_mse"] = np.interp(np.log2(grid["bits_per_image"]), np.log2(curve["bits_per_image"]),
                                         curve["psnr_of_mean_mse"])
    gains = codec_curves.compare_at_equal_bits(grid, envelope)["gain_db"]
    return bool((gains.dropna() <= 1e-9).all()) and not gains.isna().any()


def test_the_envelope_drops_a_point_that_lies_below_another_curve():
    # B's point is on the Pareto front (nothing cheaper is better) but below A's line: a front joined
    # point to point would dip under A there; the envelope must not
    a = _curve([(2, 10.0), (8, 20.0)], "A")
    b = _curve([(4, 12.0)], "B")
    envelope = codec_curves.upper_envelope([a, b], name="best")
    assert list(envelope["setting"]) == ["A0", "A1"] and set(envelope["method"]) == {"best"}
    assert _never_below(envelope, a) and _never_below(envelope, b)


@pytest.mark.parametrize("seed", range(5))
def test_the_envelope_is_never_below_any_random_curve(seed):
    rng = np.random.default_rng(seed)
    curves = []
    for i in range(4):
        bits = np.sort(rng.uniform(20, 2000, size=rng.integers(2, 7)))
        psnr = np.sort(rng.uniform(15, 35, size=len(bits)))
        curves.append(_curve(list(zip(bits, psnr)), f"c{i}"))
    envelope = codec_curves.upper_envelope(curves)
    assert all(_never_below(envelope, curve) for curve in curves)
    assert set(envelope["setting"]) <= {s for c in curves for s in c["setting"]}  # only real points


def _on_ideal_bits(curve):
    """A codec curve read on its ideal bits (the entropy model's -log2 p) instead of its bitstreams' size."""
    return curve.assign(bits_per_image=curve["information_bits"])


def test_pca_best_codec_is_never_below_any_single_pca_curve(bundle):
    """The envelope's points are chosen on ideal bits: there, no single k's curve is ever above it."""
    pca = baselines.fit_pca(bundle.train, 32)
    fit_on, steps = bundle.train.head(800), (0.5, 1.0, 2.0, 4.0)
    singles = codec_curves.pca_codec_curves(pca, fit_on, bundle.test, steps, components=(4, 8, 16, 32, 64), ideal=True)
    assert [int(c["components"].iloc[0]) for c in singles] == [4, 8, 16, 32]  # 64 > the PCA's 32: left out
    best = codec_curves.pca_best_codec_curve(pca, fit_on, bundle.test, steps, components=(4, 8, 16, 32))
    assert set(best["method"]) == {"PCA's best codec"} and best["setting"].str.startswith("k=").all()
    assert 1 < len(best) < sum(len(c) for c in singles)          # it chose: neither one point nor all of them
    assert all(_never_below(_on_ideal_bits(best), curve) for curve in singles)
    # one step for all 32 components is one of them: the old opponent is never above the best codec
    all_components = codec_curves.pca_codec_curve(pca, fit_on, bundle.test, steps)
    assert _never_below(_on_ideal_bits(best), _on_ideal_bits(all_components))
    with pytest.raises(ValueError, match="larger than the PCA"):
        codec_curves.pca_codec_curves(pca, fit_on, bundle.test, steps, components=(64,))


@pytest.mark.parametrize("coder", ["installed", "missing"])
def test_pca_best_codec_rows_are_the_points_coded_alone(bundle, monkeypatch, coder):
    """Chosen on ideal bits, each kept (k, step) is then coded into real bitstreams and scored with SSIM:
    its row is exactly the one pca_codec_curves gives for that point alone (bits, PSNR, SSIM, every column).
    Without the coder every count is the ideal one, and the envelope is the one over the full grid."""
    if coder == "missing":
        monkeypatch.setitem(sys.modules, "constriction", None)
    elif not entropy.coder_available():
        pytest.skip("the entropy coder (constriction) is not installed here")
    pca = baselines.fit_pca(bundle.train, 32)
    fit_on, steps, components = bundle.train.head(800), (0.5, 1.0, 2.0, 4.0), (4, 8, 16, 32)
    best = codec_curves.pca_best_codec_curve(pca, fit_on, bundle.test, steps, components, name="best")
    ideal = codec_curves.pca_codec_curves(pca, fit_on, bundle.test, steps, components, ideal=True)
    chosen = codec_curves.upper_envelope(ideal)
    assert sorted(best["setting"]) == sorted(chosen["setting"])
    for _, row in best.iterrows():
        [alone] = codec_curves.pca_codec_curves(pca, fit_on, bundle.test, [row["step"]], (int(row["components"]),))
        pd.testing.assert_frame_equal(best[best["setting"] == row["setting"]].reset_index(drop=True),
                                      alone.assign(method="best"))
    assert best["bits_per_image"].is_monotonic_increasing and best["ssim"].between(0, 1).all()
    assert (best["bitstream"] == (coder == "installed")).all()
    if coder == "installed":  # a bitstream costs its ideal bits and a few bytes more, nothing less
        overhead = best["bits_per_image"] - best["information_bits"]
        assert (overhead > 0).all() and (overhead < 64).all()
    else:  # ideal bits all through: the same as coding the whole grid and taking its envelope
        full = codec_curves.upper_envelope(codec_curves.pca_codec_curves(pca, fit_on, bundle.test, steps, components),
                                           name="best")
        pd.testing.assert_frame_equal(best, full)
    cheap = codec_curves.pca_codec_curves(pca, fit_on, bundle.test, steps, components, ssim=False)
    assert all(c["ssim"].isna().all() for c in cheap)
    assert all(c["ssim"].isna().all() and (c["bits_per_image"] == c["information_bits"]).all() for c in ideal)


def test_notebook_08s_bitstream_cell_says_when_the_coder_is_missing(monkeypatch, capsys, bundle):
    # notebook 08's own cell (section 7), run where constriction cannot be imported (Linux on Arm)
    from types import SimpleNamespace

    from test_model_device import notebook_cell

    model = SpatialAutoencoder(2, width=4)
    namespace = {"codec_curves": codec_curves, "entropy_coding": entropy, "quantizers": quantizers,
                 "spatial_run": SimpleNamespace(model=model), "win_bundle": bundle, "CODEC_FIT_IMAGES": 500,
                 "encoder_codes": codec_curves.codes_of(model, bundle.test)}
    cell = notebook_cell("08_winning", "model_of_symbols.encode(")
    exec(cell, dict(namespace))
    assert "decodes back exactly: True" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "constriction", None)
    exec(cell, dict(namespace))
    out = capsys.readouterr().out
    assert entropy.NO_CODER_NOTE in out and "ideal bits (no bitstream written)" in out


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

    refined_codes = codec_curves.codes_of(models.RefinedCodes(trained_small, steps=5), bundle.test)
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
    control = spatial.PCAInitAutoencoder(pca_k, width=8, depth=0).eval()
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
