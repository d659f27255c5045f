"""The autoencoder matches the article layer for layer and refuses inputs it would silently mangle; every
model is an EncoderDecoder; notebook 08's refined codes and learner's model."""

import pytest
import torch
from torch import nn

from convae_utils import baselines, data, models, spatial
from convae_utils.codecs import curves as codec_curves
from convae_utils.images import normalize
from convae_utils.models import (Autoencoder, Decoder, Encoder, build_autoencoder, count_parameters,
                                 layer_table)
from convae_utils.spatial import SpatialAutoencoder


def test_exact_parameter_counts_match_the_article():
    assert count_parameters(Autoencoder(Encoder(latent_dim=200), Decoder(latent_dim=200))) == 1_786_795
    assert count_parameters(Autoencoder(Encoder(latent_dim=1000), Decoder(latent_dim=1000))) == 8_341_195


def test_shapes_through_every_layer():
    rows = layer_table(build_autoencoder())
    convs = [(r["type"], r["output shape"]) for r in rows if "Conv" in r["type"] or r["type"] == "Linear"]
    assert convs == [
        ("Conv2d", (16, 32, 32)), ("Conv2d", (16, 32, 32)), ("Conv2d", (32, 16, 16)),
        ("Conv2d", (32, 16, 16)), ("Conv2d", (64, 8, 8)), ("Conv2d", (64, 8, 8)),
        ("Linear", (200,)), ("Linear", (4096,)),
        ("ConvTranspose2d", (64, 8, 8)), ("ConvTranspose2d", (32, 16, 16)), ("ConvTranspose2d", (32, 16, 16)),
        ("ConvTranspose2d", (16, 32, 32)), ("ConvTranspose2d", (16, 32, 32)), ("ConvTranspose2d", (3, 32, 32)),
    ]
    assert sum(r["parameters"] for r in rows) == 1_786_795
    flatten = next(r for r in rows if r["type"] == "Flatten")
    assert flatten["output shape"] == (4096,)


def test_every_conv_is_3x3_padding_1_and_relu_follows_all_but_the_last():
    model = build_autoencoder()
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            assert m.kernel_size == (3, 3) and m.padding == (1, 1)
    assert isinstance(model.encoder.code_activation, nn.ReLU)  # the article's choice, kept as default
    assert isinstance(model.decoder.output_activation, nn.Identity)
    assert isinstance(model.decoder.features[-1], nn.ConvTranspose2d)


def test_encode_decode_and_forward_agree():
    model = build_autoencoder(latent_dim=32, base_channels=4).eval()
    x = torch.rand(5, 3, 32, 32) * 2 - 1
    z = model.encode(x)
    assert z.shape == (5, 32)
    assert torch.allclose(model.decode(z), model(x))


@pytest.mark.parametrize("shape, hint", [
    ((4, 3, 64, 64), "(4, 3, 64, 64)"),   # the article's view() turned this into 16 wrong images
    ((4, 1, 32, 32), "(4, 1, 32, 32)"),
    ((3, 32, 32), "unsqueeze"),
    ((4, 32, 32, 3), "permute"),
])
def test_wrong_input_shapes_raise_a_clear_value_error(shape, hint):
    model = build_autoencoder(latent_dim=8, base_channels=4)
    with pytest.raises(ValueError, match=r"expected images of shape \(N, 3, 32, 32\)") as err:
        model(torch.zeros(shape))
    assert hint in str(err.value)


def test_integer_images_are_refused_with_the_fix():
    with pytest.raises(ValueError, match="normalize"):
        build_autoencoder(latent_dim=8, base_channels=4)(torch.zeros(2, 3, 32, 32, dtype=torch.uint8))


def test_decoder_checks_the_code_size():
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        Decoder(latent_dim=8)(torch.zeros(2, 9))


def test_switches_for_the_fixed_choices():
    model = build_autoencoder(latent_dim=16, base_channels=4, code_activation=None, output_activation="tanh")
    assert isinstance(model.encoder.code_activation, nn.Identity)
    out = model(torch.randn(3, 3, 32, 32) * 5)
    assert out.abs().max() <= 1.0


def test_mismatched_latent_sizes_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match="latent_dim"):
        Autoencoder(Encoder(latent_dim=200), Decoder(latent_dim=100))
    # sizes and names are checked once, where a learner's values enter: build_autoencoder
    with pytest.raises(ValueError, match="latent_dim must be at least 1"):
        build_autoencoder(latent_dim=0)
    with pytest.raises(TypeError, match="latent_dim must be an integer"):
        build_autoencoder(latent_dim=2.5)
    with pytest.raises(ValueError, match="base_channels must be at least 1"):
        build_autoencoder(base_channels=0)
    with pytest.raises(ValueError, match="activation must be one of"):
        build_autoencoder(activation="sigmoidish")
    with pytest.raises(ValueError, match="activation must be one of"):
        build_autoencoder(code_activation="sigmoidish")


def test_article_initialisation_and_seeded_builds():
    a, b = build_autoencoder(seed=3), build_autoencoder(seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    c = build_autoencoder(seed=4)
    assert not torch.equal(a.encoder.to_code.weight, c.encoder.to_code.weight)
    conv = a.encoder.features[0]
    assert torch.all(conv.bias == 0.01)
    bound = (6 / (conv.in_channels * 9 + conv.out_channels * 9)) ** 0.5  # Xavier-uniform limit
    assert conv.weight.abs().max() <= bound


def test_models_do_not_move_themselves():
    assert next(build_autoencoder().parameters()).device.type == "cpu"


def test_article_parameters_sit_in_two_linear_layers():
    shares = models.article_parameter_shares(models.build_autoencoder(200))
    linear = 2 * 4096 * 200 + 200 + 4096  # both Linear layers, weights and biases, by hand
    assert shares.loc["Linear", "parameters"] == linear
    assert shares["parameters"].sum() == models.count_parameters(models.build_autoencoder(200))
    assert 0.91 < shares.loc["Linear", "share"] < 0.93


def test_every_model_of_the_series_is_an_encoder_decoder():
    pca = baselines.fit_pca(torch.randint(0, 256, (40, 3, 32, 32), dtype=torch.uint8), 8)
    reference = SpatialAutoencoder(2, width=4)
    for model in (build_autoencoder(16), reference, spatial.PCAInitAutoencoder(pca, width=4, depth=0),
                  models.SequentialAutoencoder(reference.encoder, reference.decoder), models.RefinedCodes(reference)):
        assert isinstance(model, models.EncoderDecoder)
        x = torch.rand(2, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(model.eval()(x), model.decode(model.encode(x)))


# -- notebook 08: codes refined for their decoder (refine_codes, RefinedCodes) ----------------------------------------------------------------

@pytest.fixture(scope="module")
def bundle():
    return data.prepare_data("shapes10", train_size=3200, val_size=64, test_size=64, seed=0)


def test_refined_codes_reconstruct_better_and_leave_the_decoder_alone(trained_small, bundle):
    model = trained_small
    x = normalize(bundle.test.images)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.zero_grad(set_to_none=True)                                               # training left some
    with torch.no_grad():
        start = model.encode(x)
    refined = models.refine_codes(model, x, steps=10)
    assert refined.shape == start.shape == (64, 2, 4, 4) and not refined.requires_grad
    with torch.no_grad():
        error = lambda z: float(torch.nn.functional.mse_loss(model.decode(z), x))  # noqa: E731
        assert error(refined) < 0.97 * error(start)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())   # weights unchanged
    assert all(p.grad is None for p in model.parameters())                         # and got no gradient
    torch.testing.assert_close(models.refine_codes(model, x, steps=0), start)      # 0 steps: the encoder's


def test_a_refined_model_is_measured_like_any_other(trained_small, bundle):
    refined = models.RefinedCodes(trained_small, steps=5)
    assert refined.latent_dim == 32 and refined.code_shape == (2, 4, 4)
    pca = baselines.fit_pca(bundle.train, 32)
    pca_curve = codec_curves.pca_codec_curve(pca, bundle.train.head(500), bundle.test, steps=(0.5, 1.0, 2.0, 4.0))
    pca_psnr = {32: float(baselines.score_reconstructions("PCA", 32, pca.reconstruct(bundle.test), bundle.test,
                                                          bits_per_image=1)["psnr_of_mean_mse"].iloc[0])}
    plain_row, _ = codec_curves.ablation_row("plain", trained_small, bundle.train, bundle.test, pca_curve=pca_curve,
                                        pca_psnr=pca_psnr, fit_images=500)
    row, curve = codec_curves.ablation_row("refined", refined, bundle.train, bundle.test, pca_curve=pca_curve,
                                      pca_psnr=pca_psnr, fit_images=500)
    assert row["test dB"] > plain_row["test dB"] and len(curve) == len(codec_curves.STEP_FACTORS)


def test_refining_refuses_inference_mode_and_bad_steps(trained_small):
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        models.refine_codes(trained_small, x)
    with pytest.raises(ValueError, match="steps"):
        models.refine_codes(trained_small, x, steps=-1)


def test_refining_an_image_does_not_depend_on_its_batch(trained_small, bundle):
    x = normalize(bundle.test.images[:16])
    together = models.refine_codes(trained_small, x, steps=5)
    alone = models.refine_codes(trained_small, x, steps=5, batch_size=1)
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="batch_size"):
        models.refine_codes(trained_small, x, batch_size=0)
