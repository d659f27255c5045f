"""The spatial-code autoencoder (notebook 08): shapes, ranges, parameter count, errors."""

import pytest
import torch

from convae_utils import baselines, data, training
from convae_utils.images import normalize
from convae_utils.models import count_parameters
from convae_utils.plotting import upsampling_coverage
from convae_utils.spatial import PCAInitAutoencoder, SpatialAutoencoder, SpatialDecoder, SpatialEncoder


@pytest.mark.parametrize("upsample, stem", [("nearest", "conv"), ("pixelshuffle", "conv"), ("transposed", "conv"),
                                            ("nearest", "pixel")])
@pytest.mark.parametrize("code_channels", [1, 3, 4])
def test_shapes_and_output_range(upsample, stem, code_channels):
    model = SpatialAutoencoder(code_channels, width=8, upsample=upsample, stem=stem)
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        z = model.encode(x)
        y = model.decode(z * 1e3)
    assert z.shape == (5, code_channels, 4, 4)
    assert model.latent_dim == 16 * code_channels == z[0].numel()
    # a large code drives the decoder into its bounds: outputs stay in [-1, 1]
    assert y.shape == (5, 3, 32, 32) and float(y.abs().max()) <= 1.0


def test_parameter_count_matches_layers():
    # width 32, depth 1: hand count of every conv (weights + biases)
    def conv(cin, cout, k=3):
        return cin * cout * k * k + cout
    enc = conv(3, 32) + conv(32, 32) + conv(32, 64) + 2 * conv(64, 64) + conv(64, 64) + 2 * conv(64, 64) + conv(64, 4)
    dec = conv(4, 64) + 2 * conv(64, 64) + conv(64, 64) + 2 * conv(64, 64) + conv(64, 32) + conv(32, 3)
    assert count_parameters(SpatialEncoder(4, 32, 1)) == enc
    assert count_parameters(SpatialDecoder(4, 32, 1)) == dec
    # the pixel stem (notebook 08's winner): no conv at 32x32, 2 x width channels from 16x16 on
    enc = conv(12, 64) + conv(64, 64) + 2 * conv(64, 64) + conv(64, 64) + 2 * conv(64, 64) + conv(64, 4)
    dec = conv(4, 64) + 2 * conv(64, 64) + conv(64, 64) + 2 * conv(64, 64) + conv(64, 64) + conv(64, 12)
    assert count_parameters(SpatialEncoder(4, 32, 1, stem="pixel")) == enc
    assert count_parameters(SpatialDecoder(4, 32, 1, stem="pixel")) == dec


def test_the_pixel_stem_is_a_lossless_rearrangement_of_2x2_blocks():
    encoder = SpatialEncoder(4, 8, 0, stem="pixel")
    x = torch.arange(3 * 32 * 32, dtype=torch.float32).view(1, 3, 32, 32)
    blocks = encoder.features[0](x)                      # PixelUnshuffle(2)
    assert blocks.shape == (1, 12, 16, 16) and torch.equal(torch.nn.PixelShuffle(2)(blocks), x)
    assert torch.equal(blocks[0, :4, 0, 0], x[0, 0, :2, :2].flatten())  # channel 0's top-left 2x2 block


def test_seed_fixes_weights_and_leaves_global_generator():
    state = torch.random.get_rng_state()
    a, b = SpatialAutoencoder(seed=3), SpatialAutoencoder(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_bad_inputs_are_refused_with_the_expected_shape():
    model = SpatialAutoencoder(3, width=8)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        model(torch.zeros(2, 3, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, 4, 4\)"):
        model.decode(torch.zeros(2, 48))
    with pytest.raises(ValueError, match="upsample"):
        SpatialDecoder(3, 8, upsample="bilinear")
    with pytest.raises(ValueError, match="stem"):
        SpatialEncoder(3, 8, stem="patchify")


def test_pca_initialised_model_is_pca_before_training():
    bundle = data.prepare_data("shapes10", train_size=3200, val_size=64, test_size=64, seed=0)
    pca = baselines.fit_pca(bundle.train, 16)
    model = PCAInitAutoencoder(pca, width=8).eval()
    x = normalize(bundle.test.images)
    assert model.encode(x).shape == (64, 16) and model.latent_dim == 16
    torch.testing.assert_close(model.encode(x), pca.encode(bundle.test.images), atol=1e-5, rtol=0)
    torch.testing.assert_close(model(x), pca.reconstruct(bundle.test.images).clamp(-1, 1), atol=1e-5, rtol=0)
    # ... and training moves it: one step changes the correction's last layers
    model.train()
    loss, logs = training.mse_step(model, x)
    loss.backward()
    assert float(model.to_code.weight.grad.abs().sum()) > 0


def test_pca_initialised_model_refuses_what_is_not_a_pca():
    with pytest.raises(TypeError, match="PCAModel"):
        PCAInitAutoencoder(torch.zeros(8, 3072))


def test_upsampling_coverage_shows_the_transposed_checkerboard():
    transposed, nearest = upsampling_coverage("transposed")[4:-4, 4:-4], upsampling_coverage("nearest")[4:-4, 4:-4]
    assert transposed.shape == nearest.shape == (8, 8)
    assert float(transposed.min()) < float(transposed.max())          # uneven: a grid of 1, 2 and 4 taps per stage
    assert float(nearest.min()) == float(nearest.max())               # every inner pixel reached alike
