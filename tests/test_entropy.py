"""Entropy coding (notebook 08): bitstreams decode to the code they came from, and their size is honest."""

import numpy as np
import pytest

from convae_utils import entropy


def _laplace_codes(n, d, scale, seed=0):
    return np.random.default_rng(seed).laplace(0.0, scale, size=(n, d)).astype(np.float32)


def test_bitstreams_decode_to_the_same_integer_code():
    codes = _laplace_codes(300, 24, 2.0)
    codes[:, 5] *= 0.0            # a value that never moves
    codes[:, 7] = np.random.default_rng(1).normal(3.0, 1.5, 300)  # a shifted Gaussian one
    symbols = entropy.quantize(codes, 0.5)
    model = entropy.fit_entropy_model(symbols[:200])
    coded = entropy.code_images(model, symbols[200:])
    np.testing.assert_array_equal(coded.symbols, model.clip(symbols[200:]))
    for row in symbols[200:210]:
        clipped = model.clip(row[None])[0]
        assert np.array_equal(model.decode(model.encode(clipped)), clipped)
    assert coded.side_bits == 97 * 24


def test_test_symbols_outside_the_training_range_are_clipped_and_counted():
    symbols = entropy.quantize(_laplace_codes(100, 4, 1.0), 1.0)
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
        symbols = entropy.quantize(codes, step)
        model = entropy.fit_entropy_model(symbols[:400])
        bits.append(entropy.code_images(model, symbols[400:]).bits_per_image)
    assert bits[0] > bits[1] > bits[2]


def test_a_known_distribution_codes_near_its_entropy():
    # A Laplace of scale b, quantised with step 1: its exact entropy from the discretised pmf.
    b, d, n = 3.0, 64, 400
    codes = _laplace_codes(2000 + n, d, b, seed=2)
    symbols = entropy.quantize(codes, 1.0)
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
        entropy.quantize(np.zeros((2, 3)), 0.0)
    with pytest.raises(ValueError, match="quantise the codes first"):
        entropy.fit_entropy_model(np.zeros((2, 3), dtype=np.float32))
    model = entropy.fit_entropy_model(np.zeros((5, 3), dtype=np.int32))
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        entropy.code_images(model, np.zeros((2, 4), dtype=np.int32))
