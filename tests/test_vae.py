"""The VAE of generative replay (``clcourse.vae``, ``clcourse.vae_model``): the closed-form KL against
a Monte-Carlo estimate, gradients through the reparameterised sample, the Gaussian-mixture KL against
``torch.distributions``, the authors' per-pixel loss by hand, XdG gating masks, a tiny VAE that
learns two noisy 8×8 patterns, and the ValueErrors of bad inputs.

Everything runs on tiny tensors made here, in float64 where a value is compared.
"""
import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from clcourse.vae import (bce_reconstruction, gating_masks, gaussian_kl, gmm_kl_sampled,
                          reparameterize, vae_loss)
from clcourse.vae_model import VAE

F64 = torch.float64


def posterior(b=3, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g, dtype=F64), 0.5 * torch.randn(b, d, generator=g, dtype=F64)


def diag_normal(mean, logvar):
    return Independent(Normal(mean, (0.5 * logvar).exp()), 1)


def test_closed_form_kl_matches_monte_carlo():
    mu, logvar = posterior()
    n = 200_000
    z = reparameterize(mu.expand(n, -1, -1), logvar.expand(n, -1, -1), torch.Generator().manual_seed(1))
    q, p = diag_normal(mu, logvar), diag_normal(torch.zeros_like(mu), torch.zeros_like(mu))
    samples = q.log_prob(z) - p.log_prob(z)                  # (n, B): log q − log p at z ~ q
    mean, se = samples.mean(0), samples.std(0) / math.sqrt(n)
    assert torch.all((mean - gaussian_kl(mu, logvar)).abs() < 4 * se)
    # the one-sample GMM estimate with a single N(0, I) mode is exactly this log q − log p
    zero = torch.zeros(1, mu.shape[1], dtype=F64)
    flat = lambda v: v.expand(n, -1, -1).reshape(-1, mu.shape[1])  # noqa: E731
    est = gmm_kl_sampled(z.reshape(-1, mu.shape[1]), flat(mu), flat(logvar), zero, zero)
    torch.testing.assert_close(est, samples.reshape(-1))


def test_reparameterize_gradients_and_generator():
    mu, logvar = (v.requires_grad_() for v in posterior())
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    assert z.dtype == F64 and z.device == mu.device
    z.sum().backward()
    eps = ((z - mu) / (0.5 * logvar).exp()).detach()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))            # ∂z/∂μ = 1
    torch.testing.assert_close(logvar.grad, 0.5 * (0.5 * logvar).exp().detach() * eps)  # ½σε
    again = reparameterize(mu, logvar, torch.Generator().manual_seed(3))
    torch.testing.assert_close(again, z)


def test_gmm_kl():
    mu, logvar = posterior()
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(4))
    y = torch.tensor([1, 0, 1])
    # class-conditional closed form with an N(0, I) mode: the standard KL
    means, logvars = torch.randn(2, 4, dtype=F64), torch.randn(2, 4, dtype=F64)
    means[1], logvars[1] = 0, 0
    torch.testing.assert_close(gmm_kl_sampled(z, mu, logvar, means, logvars, y)[[0, 2]],
                               gaussian_kl(mu, logvar)[[0, 2]])
    # ... and with any mode: torch's KL between the two diagonal Gaussians
    expected = torch.distributions.kl_divergence(diag_normal(mu, logvar),
                                                 diag_normal(means[y], logvars[y]))
    torch.testing.assert_close(gmm_kl_sampled(z, mu, logvar, means, logvars, y), expected)
    # without y: log q(z) − log of the uniform mixture at z
    mixture = MixtureSameFamily(Categorical(torch.ones(2, dtype=F64)), diag_normal(means, logvars))
    torch.testing.assert_close(gmm_kl_sampled(z, mu, logvar, means, logvars),
                               diag_normal(mu, logvar).log_prob(z) - mixture.log_prob(z))


def test_vae_loss_by_hand_on_two_pixels():
    x, recon = torch.tensor([[1.0, 0.0]], dtype=F64), torch.tensor([[0.8, 0.4]], dtype=F64)
    mu, logvar = torch.tensor([[0.5]], dtype=F64), torch.tensor([[0.0]], dtype=F64)
    bce = -math.log(0.8) - math.log(0.6)
    kl = 0.5 * (0.25 + 1 - 0 - 1)
    torch.testing.assert_close(bce_reconstruction(recon, x), torch.tensor([bce], dtype=F64))
    torch.testing.assert_close(vae_loss(x, recon, mu, logvar), torch.tensor([(bce + kl) / 2],
                                                                            dtype=F64))


def test_gating_masks():
    masks = gating_masks(5, 100, 0.2, torch.Generator().manual_seed(7))
    assert masks.shape == (5, 100) and masks.dtype == torch.bool
    assert masks.sum(1).tolist() == [20] * 5
    assert torch.equal(masks, gating_masks(5, 100, 0.2, torch.Generator().manual_seed(7)))
    assert len({tuple(row.tolist()) for row in masks}) == 5
    assert gating_masks(2, 7, 1, None).all()
    assert gating_masks(3, 10, 0.26, None).sum(1).tolist() == [3] * 3


def two_patterns(n=64, side=8, flip=0.05, seed=0):
    """n noisy copies of two binary patterns (left half on / top half on), each pixel flipped
    with probability ``flip``."""
    g = torch.Generator().manual_seed(seed)
    left, top = torch.zeros(side, side), torch.zeros(side, side)
    left[:, :side // 2], top[:side // 2] = 1, 1
    x = torch.stack([left, top])[torch.arange(n) % 2]
    noise = torch.rand(x.shape, generator=g) < flip
    return torch.where(noise, 1 - x, x).unsqueeze(1)  # (n, 1, side, side)


@pytest.mark.parametrize("n_modes", [0, 2])
def test_tiny_vae_learns_two_patterns(n_modes):
    torch.manual_seed(0)
    x, y = two_patterns(), torch.arange(64) % 2
    vae, g = VAE((1, 8, 8), hidden=(32,), z_dim=2, n_modes=n_modes), torch.Generator().manual_seed(0)
    opt = torch.optim.Adam(vae.parameters(), lr=1e-2)
    labels = y if n_modes else None
    start = vae.loss(x, labels, g).item()
    for _ in range(200):
        opt.zero_grad()
        loss = vae.loss(x, labels, g)
        loss.backward()
        opt.step()
    end = vae.loss(x, labels, g).item()
    # start ≈ ln 2 per pixel; the mean image (latent unused) scores ≈ ½ ln 2 + ½ H(0.05) ≈ 0.45;
    # the flip noise alone costs H(0.05) ≈ 0.20 nats per pixel
    assert start > 0.6 and end < 0.3, (start, end)
    assert vae(x)[0].shape == x.shape
    images = vae.sample(6, torch.Generator().manual_seed(1))
    assert images.shape == (6, 1, 8, 8) and images.min() >= 0 and images.max() <= 1
    if n_modes:  # conditional replay: mode k's samples look like pattern k, not like the other
        patterns = two_patterns(2, flip=0)
        for k in (0, 1):
            s = vae.sample(20, torch.Generator().manual_seed(1), y=k)
            own, other = ((s - patterns[j]).abs().mean() for j in (k, 1 - k))
            assert own < 0.5 * other, (k, own, other)


def test_bad_inputs():
    mu, logvar = posterior()
    with pytest.raises(ValueError, match="same shape"):
        reparameterize(mu, logvar[:, :2])
    with pytest.raises(ValueError, match="2-D"):
        gaussian_kl(mu[0], logvar[0])
    modes = torch.zeros(2, 4, dtype=F64)
    with pytest.raises(ValueError, match="latent units"):
        gmm_kl_sampled(mu, mu, logvar, modes[:, :3], modes[:, :3])
    for y in (torch.tensor([0, 1, 2]), torch.tensor([0, 1]), torch.tensor([0.0, 1.0, 1.0])):
        with pytest.raises(ValueError, match="y must"):
            gmm_kl_sampled(mu, mu, logvar, modes, modes, y)
    x = torch.rand(3, 2, dtype=F64)
    with pytest.raises(ValueError, match="pixels"):
        vae_loss(x, x[:, :1], mu, logvar)
    with pytest.raises(ValueError, match="one KL"):
        vae_loss(x, x, mu[:2], logvar[:2])
    for args in ((5, 100, 0), (5, 100, 1.5), (0, 100, 0.5), (5, True, 0.5), (5, 10, 0.01)):
        with pytest.raises(ValueError):
            gating_masks(*args, None)
    with pytest.raises(ValueError):
        VAE((1, 8, 8), hidden=(0,))
    vae = VAE((1, 8, 8), hidden=(8,), z_dim=2)
    with pytest.raises(ValueError, match="64 values"):
        vae.encode(torch.rand(3, 1, 7, 7))
    with pytest.raises(ValueError, match="n_modes"):
        vae.sample(2, y=0)
    with pytest.raises(ValueError, match="n_modes"):
        vae.loss(torch.rand(2, 1, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="y must lie"):
        VAE(64, hidden=(8,), z_dim=2, n_modes=2).sample(2, y=2)
