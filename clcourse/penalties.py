"""Quadratic penalties that hold parameters near an anchor: Σ_i w_i (θ_i − θ*_i)².

EWC (w = Fisher) and SI (w = Ω) both keep such a term (Lesson 02 §4 and §6); this module is the one
place that computes it. A class-IL head grows new units after the anchor was taken: a new unit has no
anchor and no weight, so only the leading block of each grown parameter (its old units) is penalised.
"""
from __future__ import annotations

import torch

from .nn_basics import scaled_to_unit_peak


def trainable(model) -> dict:
    """{name: parameter} of the parameters that train (a frozen part has none)."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def snapshot(model) -> dict:
    """A detached copy of every trainable parameter: an anchor θ*."""
    return {n: p.detach().clone() for n, p in trainable(model).items()}


def leading(p: torch.Tensor, shape) -> torch.Tensor:
    """The block of ``p`` that existed when a tensor of ``shape`` was taken (a grown head's old rows)."""
    return p[tuple(slice(0, s) for s in shape)] if p.shape != shape else p


def quadratic_penalty(model, weights: dict | None, anchors: dict) -> torch.Tensor:
    """Σ_i w_i (θ_i − θ*_i)² over the named parameters of ``weights`` (no ½, no λ: the caller's).
    ``weights=None``: every w_i = 1, over the parameters of ``anchors`` (L2)."""
    params = trainable(model)
    total = None
    for name, w in (weights if weights is not None else dict.fromkeys(anchors)).items():
        shape = anchors[name].shape if w is None else w.shape
        squares = (leading(params[name], shape) - anchors[name]) ** 2
        term = (squares if w is None else w * squares).sum()
        total = term if total is None else total + term
    return total if total is not None else torch.zeros((), device=next(model.parameters()).device)


def grow_like(values: dict, model) -> dict:
    """``values`` zero-padded to the model's current parameter shapes (new units: weight 0)."""
    out = {}
    for name, p in trainable(model).items():
        v = values.get(name)
        if v is None:
            out[name] = torch.zeros_like(p)
        elif v.shape != p.shape:
            padded = torch.zeros_like(p)
            padded[tuple(slice(0, s) for s in v.shape)] = v
            out[name] = padded
        else:
            out[name] = v
    return out


def ewc_penalty(params: dict, fisher: dict, anchor: dict, lam: float) -> tuple:
    """(value, gradient) of the EWC penalty (λ/2) Σ_i F_i (θ_i − θ*_i)² (Kirkpatrick et al. 2017,
    Eq. 3), the gradient by hand: λ F (θ − θ*). Lesson 02 §4's reference."""
    value = lam / 2 * sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in params.items())
    grad = {n: lam * fisher[n] * (p - anchor[n]) for n, p in params.items()}
    return value, grad



def directions(nu, projection: str = "tensor") -> list:
    """ν prepared once for ``across_penalty``: groups [(ν pieces scaled by one power of two, their
    ‖·‖² as a float)], one group per tensor (``"tensor"``) or one over all of them (``"global"``).
    The scaling is exact (``nn_basics.scaled_to_unit_peak``): ratios ⟨x, ν⟩/‖ν‖² keep their bits."""
    if projection not in ("tensor", "global"):
        raise ValueError(f"projection must be 'tensor' or 'global', got {projection!r}")
    groups = [[v] for v in nu] if projection == "tensor" else [list(nu)] if len(nu) else []
    out = []
    for group in groups:
        flat = scaled_to_unit_peak(torch.cat([v.detach().reshape(-1) for v in group]))
        pieces = [p.view_as(v) for p, v in zip(flat.split([v.numel() for v in group]), group)]
        out.append((pieces, float((flat * flat).sum())))
    return out


class _Across(torch.autograd.Function):
    """(1/2)‖δ − ν⟨δ, ν⟩/‖ν‖²‖² over the tensors of one group; its gradient in δ is the residual
    P⊥δ itself (P⊥ is a symmetric projection), returned as is instead of differentiating the graph."""

    @staticmethod
    def forward(ctx, norm2, *tensors):
        delta, nu = tensors[:len(tensors) // 2], tensors[len(tensors) // 2:]
        coef = sum((d * v).sum() for d, v in zip(delta, nu)) / norm2 if norm2 > 0 else 0.0
        rest = [d - coef * v for d, v in zip(delta, nu)]
        ctx.save_for_backward(*rest)
        return sum(r.pow(2).sum() for r in rest) / 2

    @staticmethod
    def backward(ctx, grad):
        rest = ctx.saved_tensors
        return (None, *(grad * r for r in rest), *([None] * len(rest)))


def across_penalty(delta, prepared) -> torch.Tensor:
    """``orthogonal_penalty`` with ν prepared by ``directions`` (LFD's training loss: once per task)."""
    n = sum(len(pieces) for pieces, _ in prepared)
    if len(delta) != n:
        raise ValueError(f"{len(delta)} tensors in delta, {n} in nu")
    total, i = torch.zeros((), dtype=delta[0].dtype if n else None, device=delta[0].device if n else None), 0
    for pieces, norm2 in prepared:
        group, i = delta[i:i + len(pieces)], i + len(pieces)
        for d, v in zip(group, pieces):
            if d.shape != v.shape:
                raise ValueError(f"shapes differ: {tuple(d.shape)} and {tuple(v.shape)}")
        total = total + _Across.apply(norm2, *group, *(v.to(d.dtype) for d, v in zip(group, pieces)))
    return total


def orthogonal_penalty(delta, nu, projection: str = "tensor") -> torch.Tensor:
    """(1/2) Σ_l ‖P⊥_{ν_l} δ_l‖² over the lists of tensors ``delta`` and ``nu`` (``"tensor"``), or
    (1/2) ‖P⊥_ν δ‖² with all tensors flattened into one vector (``"global"``); P⊥_ν x = x − ν⟨x, ν⟩/‖ν‖²
    (a zero ν_l removes nothing). Without κ. LFD's penalty across its direction (Wen et al. 2024;
    HaitaoWen/PFCL ``dcd.py``, per tensor); its gradient in δ_l is P⊥_{ν_l} δ_l, the term DCD adds to
    the gradient. Empty lists: a 0-d zero."""
    if len(delta) != len(nu):
        raise ValueError(f"{len(delta)} tensors in delta, {len(nu)} in nu")
    return across_penalty(delta, directions(nu, projection))
