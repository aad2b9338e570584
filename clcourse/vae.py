"""The variational auto-encoder's pieces for generative replay (GR) and brain-inspired replay (BI-R,
van de Ven, Siegelmann & Tolias, Nat. Commun. 11:4069, 2020). Lesson 07. Pure functions on (B, D)
tensors; ``vae_model.VAE`` puts them together.

* Reparameterisation (Kingma & Welling, ICLR 2014, §2.4): z = μ + σ ⊙ ε, σ = exp(½ log σ²),
  ε ~ N(0, I), so z is a differentiable function of μ and log σ².
* KL to the standard-normal prior in closed form (Kingma & Welling, Appendix B):
  KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_d (μ_d² + σ_d² − log σ_d² − 1).
* KL to BI-R's Gaussian-mixture prior p(z) = 1/K Σ_k N(z; m_k, s_k²) has no closed form: one-sample
  estimate log q(z|x) − log p(z) at the reparameterised z (authors' code: ``calculate_variat_loss``).
  Given the class y (conditional replay, one mode per class) the prior is the single Gaussian
  N(m_y, s_y²), and the KL between two diagonal Gaussians is exact:
  KL = ½ Σ_d (log s_d² − log σ_d² + (σ_d² + (μ_d − m_d)²) / s_d² − 1).
  (The authors' ``calculate_log_p_z`` keeps the one-sample estimate there too: same expectation,
  more noise.)
* Loss, as the authors' code computes it (GMvandeVen/continual-learning @ e6d795a ``models/vae.py``
  and ``models/cond_vae.py``, ``loss_function``; the same in brain-inspired-replay @ 1a030f7
  ``models/vae.py::loss_function``): the BCE is AVERAGED over the P input pixels
  (``calculate_recon_loss(average=True)``) and the KL DIVIDED by P ("divide by # of input-pixels"),
  both weighted 1 (BI-R ``options.py``: ``--recon-weight``, ``--variat-weight``), then averaged
  over the batch. So L = (BCE_sum + KL) / P = −ELBO / P: the usual negative ELBO per pixel, the
  balance between reconstruction and KL unchanged (averaging only the BCE would weight the KL P
  times more).
* Gating (XdG, Masse, Grant & Freedman, PNAS 2018; BI-R's "gating based on internal context"):
  each context keeps a fixed random subset of a layer's units and silences the rest.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_2PI = math.log(2 * math.pi)


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + exp(½ log σ²) · ε, ε ~ N(0, I) drawn with ``generator`` on ``mu``'s device and dtype."""
    _same_shape(mu, logvar, "mu", "logvar")
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """(B,) KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_d (μ_d² + σ_d² − log σ_d² − 1), d over the latent units."""
    _rows(mu, "mu")
    _same_shape(mu, logvar, "mu", "logvar")
    return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)


def log_normal(z: torch.Tensor, mean: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mean, diag exp(logvar)) = −½ Σ_d (log 2π + log σ_d² + (z_d − m_d)² / σ_d²), summed
    over the last dimension (the arguments broadcast). (The authors' ``log_Normal_diag`` drops the
    log 2π, which cancels in log q − log p.)"""
    return -0.5 * (LOG_2PI + logvar + (z - mean).pow(2) / logvar.exp()).sum(-1)


def gmm_kl_sampled(z, mu, logvar, prior_means, prior_logvars, y=None) -> torch.Tensor:
    """(B,) KL(q(z|x) ‖ p) with p the mixture 1/K Σ_k N(m_k, s_k²) (rows of ``prior_means`` and
    ``prior_logvars``, (K, D)): the one-sample estimate log q(z|x) − log p(z) at ``z`` (B, D), drawn
    from q = N(μ, σ²), with log p(z) = logsumexp_k log N(z; m_k, s_k²) − log K. With ``y`` (B,) mode
    indices: the closed form KL(N(μ, σ²) ‖ N(m_y, s_y²)) (``z`` is then not used)."""
    for name, v in (("z", z), ("prior_means", prior_means)):
        _rows(v, name)
    _same_shape(mu, logvar, "mu", "logvar")
    _same_shape(z, mu, "z", "mu")
    _same_shape(prior_means, prior_logvars, "prior_means", "prior_logvars")
    if prior_means.shape[1] != z.shape[1]:
        raise ValueError(f"prior modes have {prior_means.shape[1]} latent units, z has {z.shape[1]}")
    if y is not None:
        m, s = prior_means[check_modes(y, len(z), len(prior_means))], prior_logvars[y]
        return 0.5 * (s - logvar + (logvar.exp() + (mu - m).pow(2)) / s.exp() - 1).sum(1)
    log_p = torch.logsumexp(log_normal(z[:, None], prior_means, prior_logvars), dim=1)
    return log_normal(z, mu, logvar) - (log_p - math.log(len(prior_means)))


def bce_reconstruction(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) −log p(x|z) = −Σ_pixels [x log r + (1 − x) log(1 − r)] for Bernoulli pixels with
    probabilities ``recon`` (the decoder's sigmoid output, as in the authors' code; the logs are
    clamped at −100 by ``F.binary_cross_entropy``, which also rejects values outside [0, 1])."""
    _pixels(recon, x)
    return F.binary_cross_entropy(recon.reshape(len(x), -1), x.reshape(len(x), -1),
                                  reduction="none").sum(1)


def gaussian_reconstruction(recon: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """(B,) −log p(x|z) + const = ½ Σ_units (x − x̂)² for a unit-variance Gaussian with mean ``recon``
    (the authors' ``log_Normal_standard``, their "MSE" loss: CIFAR and internal replay of hidden
    features, which are not probabilities)."""
    _pixels(recon, x)
    return 0.5 * (recon.reshape(len(x), -1) - x.reshape(len(x), -1)).pow(2).sum(1)


def vae_loss(x, recon, mu, logvar, kl: torch.Tensor | None = None,
             likelihood: str = "bernoulli") -> torch.Tensor:
    """(B,) the authors' per-sample loss (reconstruction_sum + KL) / P, P = pixels (or features) per
    sample (module docstring). ``kl``: a (B,) KL to use instead of ``gaussian_kl(mu, logvar)`` (the
    GMM prior's); ``likelihood``: "bernoulli" (BCE, images in [0, 1]) or "gaussian"."""
    if likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
    recon_loss = (bce_reconstruction if likelihood == "bernoulli" else gaussian_reconstruction)(recon, x)
    kl = gaussian_kl(mu, logvar) if kl is None else kl
    if kl.shape != x.shape[:1] or len(mu) != len(x):
        raise ValueError(f"need one KL and one latent row per image ({len(x)}), got kl of shape "
                         f"{tuple(kl.shape)} and {len(mu)} rows of mu")
    return (recon_loss + kl) / math.prod(x.shape[1:])


def gating_masks(n_contexts: int, n_units: int, keep: float,
                 generator: torch.Generator | None) -> torch.Tensor:
    """(n_contexts, n_units) bool: row c marks the round(keep · n_units) units context c keeps, a
    random subset drawn with ``generator`` (on its device), so a seed fixes every context's gate.
    (XdG in the authors' ``main.py`` gates exactly int(p · n) units per context; BI-R's decoder gates,
    ``fc_layer_fixed_gates``, close each unit independently with probability p, p = 1 − keep.)"""
    for name, v in (("n_contexts", n_contexts), ("n_units", n_units)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be an int >= 1, got {v!r}")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}")
    k = round(keep * n_units)
    if k == 0:
        raise ValueError(f"keep={keep} of {n_units} units keeps none")
    device = generator.device if generator is not None else None
    order = torch.rand(n_contexts, n_units, generator=generator, device=device).argsort(dim=1)
    masks = torch.zeros(n_contexts, n_units, dtype=torch.bool, device=device)
    return masks.scatter_(1, order[:, :k], True)


def check_modes(y: torch.Tensor, n: int, n_modes: int) -> torch.Tensor:
    """``y`` if it is a (n,) integer tensor of mode indices in [0, n_modes); else a ValueError."""
    if not isinstance(y, torch.Tensor) or y.shape != (n,) or y.dtype.is_floating_point \
            or y.dtype.is_complex or y.dtype == torch.bool:
        got = f"shape {tuple(y.shape)}, {y.dtype}" if isinstance(y, torch.Tensor) else repr(y)
        raise ValueError(f"y must be a tensor of {n} integer modes, got {got}")
    if n and not 0 <= int(y.min()) <= int(y.max()) < n_modes:
        raise ValueError(f"y must lie in [0, {n_modes}), got values {int(y.min())}..{int(y.max())}")
    return y


def _rows(v: torch.Tensor, name: str) -> None:
    if v.dim() != 2:
        raise ValueError(f"{name} must be 2-D (rows, latent units), got shape {tuple(v.shape)}")


def _same_shape(a: torch.Tensor, b: torch.Tensor, name_a: str, name_b: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def _pixels(recon: torch.Tensor, x: torch.Tensor) -> None:
    if x.dim() < 2 or recon.dim() < 2 or len(recon) != len(x) or \
            math.prod(recon.shape[1:]) != math.prod(x.shape[1:]):
        raise ValueError(f"recon and x must hold the same number of images with the same number of "
                         f"pixels, got shapes {tuple(recon.shape)} and {tuple(x.shape)}")
