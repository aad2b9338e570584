"""The generator of generative replay: a fully connected variational auto-encoder (Kingma & Welling,
ICLR 2014), as in van de Ven, Siegelmann & Tolias, Nat. Commun. 11:4069 (2020). Lesson 07.

Architecture (the authors' ``models/vae.py`` and ``models/fc/layers.py``, GMvandeVen/
brain-inspired-replay @ 1a030f7 and continual-learning @ e6d795a), split-MNIST sizes (``fc_lay=3``,
``fc_units=400``, ``--g-z-dim 100``):

    encoder  x (P pixels) → 400 → 400 (ReLU) → μ, log σ²  (two linear maps, no non-linearity;
             the log σ² map has no bias, as in the code's ``fc_layer_split``)
    decoder  z (100) → 400 → 400 (ReLU) → P, sigmoid: a Bernoulli probability per pixel

Prior: N(0, I), or with ``n_modes`` > 0 BI-R's Gaussian mixture 1/K Σ_k N(m_k, diag exp(v_k)), one
mode per class for conditional replay, m_k and v_k learned with the rest and initialised N(0, 1)
(the code's ``z_class_means``, ``z_class_logvars``). The loss is ``clcourse.vae.vae_loss``:
(BCE summed over pixels + KL) / P, averaged over the batch.

Options for BI-R (``methods/bir.py``): ``gates`` > 0 contexts gate the decoder's hidden layers
(``gating.add_gates``: a fixed random ``gate_prop`` of each layer's units silenced per context, the
authors' ``fc_layer_fixed_gates``/``MLP_gates``); ``likelihood="gaussian"``: a linear output and the
squared error (the authors' "MSE" for CIFAR and for internal replay of hidden features).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn

from .gating import add_gates, set_context
from .models import MLP, Frozen, GrowingHead
from .vae import check_modes, gmm_kl_sampled, reparameterize, vae_loss


class VAE(nn.Module):
    """Fully connected VAE for images in [0, 1] of shape ``input_shape`` (flattened inside).

    ``hidden``: the encoder's widths (the decoder runs them backwards); ``z_dim``: latent units;
    ``n_modes``: 0 for the standard-normal prior, K for a K-mode Gaussian-mixture prior.
    """

    def __init__(self, input_shape, hidden=(400, 400), z_dim: int = 100, n_modes: int = 0,
                 gates: int = 0, gate_prop: float = 0.0, gate_seed: int = 0,
                 likelihood: str = "bernoulli"):
        super().__init__()
        shape = (input_shape,) if isinstance(input_shape, int) else tuple(input_shape)
        hidden = tuple(hidden)
        for name, values, low in (("input_shape", shape, 1), ("hidden", hidden, 1),
                                  ("z_dim", (z_dim,), 1), ("n_modes", (n_modes,), 0)):
            if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < low
                                 for v in values):
                raise ValueError(f"{name} must be (a tuple of) int(s) >= {low}, got {values!r}")
        self.input_shape, self.z_dim, self.n_modes = shape, z_dim, n_modes
        self.n_pixels = math.prod(shape)
        self.encoder = MLP(self.n_pixels, hidden)
        self.to_mu = nn.Linear(self.encoder.out_dim, z_dim)
        self.to_logvar = nn.Linear(self.encoder.out_dim, z_dim, bias=False)
        if likelihood not in ("bernoulli", "gaussian"):
            raise ValueError(f"likelihood must be 'bernoulli' or 'gaussian', got {likelihood!r}")
        self.likelihood = likelihood
        trunk = MLP(z_dim, hidden[::-1])
        self.gates = add_gates(trunk, gates, gate_prop, gate_seed) if gates else []
        out = [nn.Sigmoid()] if likelihood == "bernoulli" else []   # Gaussian: the mean, unbounded
        self.decoder = nn.Sequential(trunk, nn.Linear(trunk.out_dim, self.n_pixels), *out)
        if n_modes:
            self.prior_means = nn.Parameter(torch.randn(n_modes, z_dim))
            self.prior_logvars = nn.Parameter(torch.randn(n_modes, z_dim))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x): (μ, log σ²), each (B, z_dim), for a batch ``x`` of images of ``n_pixels`` values."""
        if x.dim() < 2 or math.prod(x.shape[1:]) != self.n_pixels:
            raise ValueError(f"expected a batch of images of {self.n_pixels} values "
                             f"({self.input_shape}), got shape {tuple(x.shape)}")
        return self.latent(self.encoder(x))

    def latent(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) from the encoder's last hidden layer ``h`` (BI-R reads its classifier there too)."""
        return self.to_mu(h), self.to_logvar(h)

    def decode(self, z: torch.Tensor, context=None) -> torch.Tensor:
        """p(x|z): pixel probabilities (or Gaussian means), shape (B, *input_shape). ``context``: each
        row's class or task, for a decoder with gates (BI-R's gating on internal context)."""
        if z.dim() != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape (B, {self.z_dim}), got {tuple(z.shape)}")
        if self.gates:
            if context is None:
                raise ValueError("this decoder is gated: give each row's context (class or task)")
            set_context(self.decoder, context)
        return self.decoder(z).view(len(z), *self.input_shape)

    def forward(self, x: torch.Tensor, generator: torch.Generator | None = None, context=None):
        """(reconstruction in ``x``'s shape, μ, log σ², z) with z = μ + σ ⊙ ε (``generator``)."""
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar, generator)
        return self.decode(z, context).reshape(x.shape), mu, logvar, z

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, y=None,
               context=None) -> torch.Tensor:
        """``n`` generated images (n, *input_shape): z from the prior, then decoded. With a mixture
        prior each z comes from a mode drawn uniformly, or from mode ``y`` (an int, or (n,) modes:
        conditional replay), as the authors' ``sample``. ``context``: the gates' (gated decoder)."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be an int >= 0, got {n!r}")
        device = self.to_mu.weight.device
        if not self.n_modes:
            if y is not None:
                raise ValueError("y selects a prior mode: build the VAE with n_modes > 0")
            return self.decode(torch.randn(n, self.z_dim, generator=generator, device=device),
                               context)
        if y is None:
            y = torch.randint(self.n_modes, (n,), generator=generator, device=device)
        elif isinstance(y, int) and not isinstance(y, bool):
            y = torch.full((n,), y, dtype=torch.long, device=device)
        y = check_modes(y, n, self.n_modes)
        return self.decode(reparameterize(self.prior_means[y], self.prior_logvars[y], generator),
                           context)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None,
             generator: torch.Generator | None = None, context=None) -> torch.Tensor:
        """The batch mean of ``vae_loss``; with a mixture prior the KL is ``gmm_kl_sampled`` (to
        the whole mixture, or to mode y[i] of each image when the classes ``y`` are given)."""
        if y is not None and not self.n_modes:
            raise ValueError("y selects a prior mode: build the VAE with n_modes > 0")
        recon, mu, logvar, z = self(x, generator, context)
        return self.per_sample_loss(x, recon, mu, logvar, z, y).mean()

    def per_sample_loss(self, x, recon, mu, logvar, z, y=None) -> torch.Tensor:
        """(B,) ``vae_loss`` with this VAE's prior (KL to mode y[i] when given) and likelihood."""
        kl = (gmm_kl_sampled(z, mu, logvar, self.prior_means, self.prior_logvars, y)
              if self.n_modes else None)
        return vae_loss(x, recon, mu, logvar, kl, self.likelihood)


class ReplayNet(nn.Module):
    """BI-R's network (van de Ven et al. 2020, Fig. 2; ``methods/bir.py``): optional frozen conv layers
    (internal replay: everything above them works on their output), then a fully connected classifier
    ``head(encoder(h))`` and a VAE on the same h. With replay-through-feedback the classifier's hidden
    stack IS the VAE's encoder (``encoder=None``: one module, two roles); else a separate MLP."""

    def __init__(self, vae: VAE, head: nn.Module, encoder: nn.Module | None = None,
                 convs: nn.Module | None = None):
        super().__init__()
        self.convs = Frozen(convs) if convs is not None else None
        self.vae, self.head = vae, head
        self.encoder = vae.encoder if encoder is None else encoder
        self.rtf = encoder is None

    def internal(self, x: torch.Tensor) -> torch.Tensor:
        """What the generator models and replays: the conv layers' output, or the input itself."""
        return x if self.convs is None else self.convs(x)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.internal(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def ensure_outputs(self, n_units: int) -> None:
        if isinstance(self.head, GrowingHead):
            self.head.grow(n_units)
