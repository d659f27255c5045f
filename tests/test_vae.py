"""The VAE of notebook 09: KL against its closed form and torch.distributions, sampling, the step, the fill-in checks."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence as torch_kl

from convae_utils import vae


def _posterior(seed=0, shape=(5, 4, 4, 4)):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen, dtype=torch.float64), torch.randn(shape, generator=gen, dtype=torch.float64)


def test_kl_matches_torch_distributions_and_a_monte_carlo_estimate():
    mean, logvar = _posterior()
    ours = vae.kl_divergence(mean, logvar)
    reference = torch_kl(Normal(mean, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).flatten(1).sum(dim=1)
    assert ours.shape == (5,)
    assert torch.allclose(ours, reference, rtol=1e-10)
    # Monte Carlo: E_q[log q(z) - log p(z)] for the first image
    q = Normal(mean[0], torch.exp(0.5 * logvar[0]))
    z = q.sample((200_000,))
    estimate = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).flatten(1).sum(dim=1).mean()
    assert abs(float(estimate) - float(ours[0])) < 0.02 * float(ours[0]) + 0.5


def test_kl_is_zero_for_the_prior():
    zeros = torch.zeros(3, 8)
    assert torch.equal(vae.kl_divergence(zeros, zeros), torch.zeros(3))


def test_reparameterize_has_the_right_moments_and_passes_gradients():
    mean = torch.full((100_000, 1), 2.0, requires_grad=True)
    logvar = torch.full((100_000, 1), math.log(0.25), requires_grad=True)
    z = vae.reparameterize(mean, logvar, generator=torch.Generator().manual_seed(0))
    assert abs(float(z.detach().mean()) - 2.0) < 0.01 and abs(float(z.detach().std()) - 0.5) < 0.01
    z.sum().backward()
    assert mean.grad is not None and logvar.grad is not None


def test_model_shapes_sampling_range_and_seeding():
    model = vae.build_vae(code_channels=2, width=8, depth=0)
    assert model.latent_dim == 32 and model.code_shape == (2, 4, 4)
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    mean, logvar = model.posterior(x)
    assert mean.shape == logvar.shape == (3, 2, 4, 4)
    assert model(x).shape == (3, 3, 32, 32)
    first, again, other = model.sample(4, seed=1), model.sample(4, seed=1), model.sample(4, seed=2)
    assert first.shape == (4, 3, 32, 32) and float(first.abs().max()) <= 1.0
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert vae.interpolate(model, x[:1], x[1:2], steps=5).shape == (5, 3, 32, 32)


def test_same_seed_same_weights():
    a, b = vae.build_vae(width=8, seed=3), vae.build_vae(width=8, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_step_loss_is_distortion_plus_beta_rate_and_eval_is_deterministic():
    model = vae.build_vae(code_channels=2, width=8, depth=0)
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    step = vae.vae_step(beta=0.5)
    model.eval()
    loss, logs = step(model, x)
    again, _ = step(model, x)
    assert torch.equal(loss, again)                                           # eval: the mean, no sampling
    mean, logvar = model.posterior(x)
    kl_nats = vae.kl_divergence(mean, logvar).mean()
    mse = torch.nn.functional.mse_loss(model.decode(mean), x)
    assert torch.allclose(logs["mse"], mse)
    assert torch.allclose(logs["kl_bits"], kl_nats / math.log(2.0))
    assert torch.allclose(loss, mse + 0.5 * kl_nats / 3072)
    model.train()
    torch.manual_seed(0)
    first, _ = step(model, x)
    second, _ = step(model, x)
    assert not torch.equal(first, second)                                     # training: a sampled code
    assert "beta=0.5" in step.describe()
    with pytest.raises(ValueError):
        vae.vae_step(beta=-1)


def test_inactive_dimensions_counts_collapsed_values():
    mean = torch.zeros(10, 6)
    logvar = torch.zeros(10, 6)
    mean[:, :2] = torch.randn(10, 2) * 3                                      # two values carry information
    assert vae.inactive_dimensions(mean, logvar) == 4


def test_sweep_plan_cuts_the_workshop_budget_and_keeps_the_full_one():
    from convae_utils import settings

    workshop = vae.sweep_plan(settings.preset("workshop"))
    assert workshop.settings.train_size < settings.preset("workshop").train_size
    assert workshop.settings.latent_dim == 64 and workshop.code_channels == 4
    assert list(workshop.betas) == sorted(workshop.betas) and len(set(workshop.betas)) == len(workshop.betas)
    full = vae.sweep_plan(settings.preset("full"))
    assert full.width == 32 and full.settings.num_epochs == settings.preset("full").num_epochs
    assert workshop.run_name(0.1) != workshop.run_name(1.0)
    with pytest.raises(TypeError):
        vae.sweep_plan("workshop")


# -- the learner's functions train runs of their own; the likelihood view; collapsed values are ignored --------

def test_a_learners_functions_train_into_a_run_of_their_own():
    assert vae.learner_tag() == "" and vae.learner_tag(vae.reparameterize, vae.kl_divergence) == ""

    def mine(mean, logvar):
        return mean + torch.exp(0.5 * logvar) * torch.randn_like(mean)

    def other(mean, logvar):
        return mean + (0.5 * logvar).exp() * torch.randn_like(mean)

    tag = vae.learner_tag(mine)
    assert tag.startswith("yours-") and tag != vae.learner_tag(other) and tag != vae.learner_tag(kl_fn=other)
    from convae_utils.settings import preset

    plan = vae.sweep_plan(preset("smoke"))
    assert plan.run_name(0.1) == f"vae-w{plan.width}-beta0.1"
    assert plan.run_name(0.1, tag) == f"vae-w{plan.width}-beta0.1-{tag}"
    step = vae.vae_step(0.1, reparameterize_fn=mine)
    assert step.tag == tag and tag in step.describe() and vae.vae_step(0.1).describe() == "vae_step(beta=0.1)"
    # the learner's function is the one that trains: a reparameterize without noise gives a deterministic step
    model = vae.build_vae(code_channels=1, width=4, depth=0).train()
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    calls = []
    step = vae.vae_step(0.1, reparameterize_fn=lambda m, lv: calls.append(1) or m)
    step(model, x)
    assert calls == [1]


def test_negative_elbo_in_bits_per_dimension_matches_a_gaussian_likelihood():
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (2000,), generator=gen).double() / 255
    g = (x + 0.05 * torch.randn(2000, generator=gen, dtype=torch.float64)).clamp(0, 1)
    mse = float((x - g).pow(2).mean())
    for variance in (None, 0.01, 1 / 8):
        var = mse if variance is None else variance
        nll_bits = -Normal(g, math.sqrt(var)).log_prob(x).mean() / math.log(2)     # per value, density on [0, 1]
        want = float(nll_bits) + math.log2(255) + 300 / 3072                       # 8-bit levels of width 1/255
        assert vae.negative_elbo_bits_per_dim(mse, 300, noise_variance=variance) == pytest.approx(want, rel=1e-9)
    # the default variance (the MSE itself) gives the tightest bound
    assert vae.negative_elbo_bits_per_dim(mse, 300) < vae.negative_elbo_bits_per_dim(mse, 300, noise_variance=2 * mse)


def test_decoder_sensitivity_is_zero_for_values_the_decoder_ignores():
    model = vae.build_vae(code_channels=2, width=4, depth=0)
    with torch.no_grad():
        first = [m for m in model.decoder.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d,
                                                                     torch.nn.Linear))][0]
        first.weight[:, 1] = 0                         # the decoder's first layer never reads channel 1
    pixels = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    ignored, read = torch.arange(16, 32), torch.arange(0, 16)           # channel 1 / channel 0 of a (2, 4, 4) code
    assert vae.decoder_sensitivity(model, pixels, ignored) == pytest.approx(0.0, abs=1e-7)
    assert vae.decoder_sensitivity(model, pixels, read) > 1e-4
    with pytest.raises(ValueError, match="indices"):
        vae.decoder_sensitivity(model, pixels, [32])
