"""Optimisation on a sphere of radius r: the direction search of LFD (lesson on less-forgetting
directions; ``methods/lfd.py``).

The sphere S_r = {ν ∈ ℝ^D : ‖ν‖ = r}. At a point ν its tangent space is {v : ⟨v, ν⟩ = 0}; one step of
Riemannian SGD (Bonnabel, "Stochastic gradient descent on Riemannian manifolds", IEEE TAC 58(9), 2013)
with momentum, as the authors' code does it (HaitaoWen/PFCL ``rsgd.py``, "sphere" mode)::

    g   = ∇L(ν) − ⟨∇L(ν), ν⟩ ν / ‖ν‖²          tangent(ν, ∇L): the Riemannian gradient
    b   ← μ b + g                               momentum (no dampening)
    ν'  = r (ν − lr b) / ‖ν − lr b‖             retract(ν − lr b, r): back onto the sphere
    b   ← b − ⟨b, ν'⟩ ν' / ‖ν'‖²                transport(ν', b): the momentum moved to ν's new
                                                tangent space by projection

Pure functions on tensors; ``RiemannianSGD`` is a ``torch.optim.Optimizer`` that flattens all the
parameters of a group into ONE vector on ONE sphere (PFCL's "sphere" mode, not a product of
per-tensor spheres).
"""
from __future__ import annotations

import math

import torch

from .nn_basics import scaled_to_unit_peak


def _inner(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} and {tuple(b.shape)}")
    return (a * b).sum()


def tangent(nu: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """g − ⟨g, ν⟩ ν / ‖ν‖²: ``g`` without its component along ``nu`` (a new tensor; the inner
    product runs over every entry, whatever the shape). The projection onto the tangent space of the
    sphere through ``nu``, and the orthogonal complement P⊥_ν of LFD's penalty. A zero ``nu`` has no
    direction to remove: ``g`` is returned unchanged (as a copy). ν is first scaled by a power of two
    (``scaled_to_unit_peak``; the result does not depend on ν's length): the same bits as the formula
    where that is finite, and right where ‖ν‖² would overflow or underflow (float32 ν of 1e20, 1e-25)."""
    if nu.shape != g.shape:
        raise ValueError(f"shapes differ: {tuple(nu.shape)} and {tuple(g.shape)}")
    nu = scaled_to_unit_peak(nu)
    norm2 = _inner(nu, nu)
    coef = torch.where(norm2 > 0, _inner(g, nu) / torch.where(norm2 > 0, norm2, 1), 0)
    return g - coef * nu


def retract(v: torch.Tensor, radius: float) -> torch.Tensor:
    """radius · v / ‖v‖: the point of the sphere of ``radius`` in the direction of ``v`` (new tensor),
    ``v`` first scaled by a power of two as in ``tangent`` (exact; no overflow of ‖v‖ at 1e20 in
    float32). A zero ``v`` has no direction: ValueError."""
    v = scaled_to_unit_peak(v)
    norm = torch.linalg.vector_norm(v)
    if norm == 0:
        raise ValueError("cannot retract the zero vector onto a sphere")
    return v * (radius / norm)


def transport(nu: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The vector ``b`` (a momentum) moved to the tangent space at ``nu`` by projection:
    b − ⟨b, ν⟩ ν / ‖ν‖² (PFCL ``rsgd.py``: ``b − ⟨ν', b⟩ ν' / r²`` with ‖ν'‖ = r)."""
    return tangent(nu, b)


def random_direction(shapes, radius: float, generator: torch.Generator | None = None,
                     dtype: torch.dtype = torch.float32) -> list:
    """Tensors of the given ``shapes`` which, flattened together, are a point drawn uniformly on the
    sphere of ``radius`` (an isotropic Gaussian, rescaled: Muller 1959), on the generator's device.
    PFCL draws with geoopt's ``random_uniform``; its first point may have norm r² until the first
    retraction: here it has norm r from the start."""
    shapes = [tuple(s) for s in shapes]
    device = generator.device if generator is not None else None
    flat = torch.randn(sum(math.prod(s) for s in shapes), generator=generator, device=device,
                       dtype=dtype)
    sizes = [math.prod(s) for s in shapes]
    return [piece.reshape(s).clone() for piece, s in zip(retract(flat, radius).split(sizes), shapes)]


def rsgd_step(nu: torch.Tensor, grad: torch.Tensor, buf: torch.Tensor | None, lr: float,
              momentum: float, radius: float) -> tuple:
    """One step of Riemannian SGD with momentum on the sphere of ``radius`` (the module docstring's
    four lines): returns (ν_new, b_new), new tensors. ``buf`` is the momentum of the previous step
    (None at the first step: b = the projected gradient). With ``momentum`` 0, b = the projected
    gradient at every step. ``RiemannianSGD`` runs exactly this on its flattened parameters."""
    g = tangent(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf + g
    new = retract(nu - lr * b, radius)
    return new, transport(new, b)


class RiemannianSGD(torch.optim.Optimizer):
    """SGD with momentum on the sphere of radius ``radius`` (Bonnabel 2013; PFCL ``rsgd.py``).

    Every parameter group is ONE point ν on ONE sphere: its parameters flattened and concatenated
    (PFCL's "sphere" mode). Each ``step``: the gradient (a missing ``.grad`` counts as zero) is
    projected on the tangent space at ν, b ← μ·b + g_proj, ν' = ν − lr·b, ν ← retract(ν', r), and the
    momentum is transported to the new tangent space; the parameters are then overwritten in place.
    A point that is not on the sphere is moved onto it by the first step's retraction.

    Departure from PFCL: its momentum buffer starts as the RAW first gradient, so its first step
    moves along μ·∇L + g_proj, partly off the tangent space; here the buffer starts at the projected
    gradient (b = g_proj, as ``torch.optim.SGD`` starts its buffer at the first gradient).
    No weight decay, dampening or Nesterov (PFCL passes none).
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, radius: float = 1.0):
        if not lr >= 0:
            raise ValueError(f"lr must be >= 0, got {lr!r}")
        if not momentum >= 0:
            raise ValueError(f"momentum must be >= 0, got {momentum!r}")
        if not radius > 0:
            raise ValueError(f"radius must be > 0, got {radius!r}")
        super().__init__(params, dict(lr=lr, momentum=momentum, radius=radius))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = group["params"]
            if not params or all(p.grad is None for p in params):
                continue
            nu = torch.cat([p.reshape(-1) for p in params])
            g = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
                           for p in params])
            state = self.state[params[0]]  # one state per group (per sphere)
            new, state["momentum_buffer"] = rsgd_step(nu, g, state.get("momentum_buffer"), group["lr"],
                                                      group["momentum"], group["radius"])
            for p, piece in zip(params, new.split([p.numel() for p in params])):
                p.copy_(piece.view_as(p))
        return loss
