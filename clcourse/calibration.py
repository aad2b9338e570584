"""Correcting the bias towards new classes after class-incremental training (lesson 05).

Trained on many new images and few exemplars, a class-IL network scores the new classes too high.
Two post-hoc corrections, both on the output layer only:

* BiC (Wu et al., "Large Scale Incremental Learning", CVPR 2019, the bias correction layer): the
  new classes' logits o_k become q_k = α·o_k + β (the old ones stay), two scalars fitted on a small
  class-balanced validation set (``bias_correction``, ``fit_bias_correction``, ``balanced_split``).
  Official code: wuyuebupt/LargeScaleIncrementalLearning ``resnet.py``, ``imagenet_main.py`` (commit
  7f687a32); PyCIL ``models/bic.py`` (G-U-N/PyCIL, commit 87cc4110).
* WA (Zhao, Xiao, Gan, Zhang & Xia, "Maintaining Discrimination and Fairness in Class Incremental
  Learning", CVPR 2020, weight aligning): the new classes' weight rows are multiplied by
  γ = mean_old ‖w_k‖ / mean_new ‖w_k‖, so both groups have the same mean norm (``weight_align``;
  PyCIL ``utils/inc_net.py::IncrementalNet.weight_align`` at 87cc4110). Its argument assumes
  feature·weight products are mostly positive (ReLU features, clipped weights):
  ``positive_fraction`` measures how far that holds.

All functions are pure: they return new tensors and leave their inputs (values and ``requires_grad``)
unchanged. They are what ``methods/bic.py`` and ``methods/wa.py`` use, and what lesson 05's exercises
are compared against.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .data.scenarios import TensorSet
from .loop import run_steps


def _index(n, name: str) -> int:
    if isinstance(n, bool) or not isinstance(n, int):
        raise ValueError(f"{name} must be an int (a count of units), got {n!r}")
    return n


def _matrix(v, name: str) -> torch.Tensor:
    if not isinstance(v, torch.Tensor) or v.dim() != 2:
        raise ValueError(f"{name} must be a 2-D tensor, got "
                         f"{tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__}")
    return v


def _scalar(v, name: str):
    if isinstance(v, torch.Tensor):
        if v.dim() != 0:
            raise ValueError(f"{name} must be a number or a 0-d tensor, got shape {tuple(v.shape)}")
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ValueError(f"{name} must be a number or a 0-d tensor, got {v!r}")
    return v


def bias_correction(logits: torch.Tensor, n_old: int, alpha, beta) -> torch.Tensor:
    """BiC's bias correction layer (Wu et al. 2019, the equation for q_k): q_k = o_k for the old
    units k < n_old, q_k = α·o_k + β for the new ones k ≥ n_old.

    ``logits``: (B, C); ``alpha``, ``beta``: numbers or 0-d tensors (gradients flow to them when they
    require grad). Returns a new (B, C) tensor; columns < n_old are bit-identical copies. ValueError
    for a non-2-D ``logits``, or an ``n_old`` that is a bool, not an int, < 0 or > C.
    """
    _matrix(logits, "logits")
    n_old = _index(n_old, "n_old")
    if not 0 <= n_old <= logits.shape[1]:
        raise ValueError(f"n_old must lie in [0, {logits.shape[1]}] (the number of columns), "
                         f"got {n_old}")
    alpha, beta = _scalar(alpha, "alpha"), _scalar(beta, "beta")
    new = alpha * logits[:, n_old:] + beta
    return torch.cat([logits[:, :n_old].to(new.dtype), new], dim=1)


def fit_bias_correction(logits: torch.Tensor, labels: torch.Tensor, n_old: int, steps: int = 200,
                        lr: float = 0.1, momentum: float = 0.9, beta_decay: float = 0.1,
                        generator: torch.Generator | None = None,
                        batch_size: int | None = None) -> tuple:
    """BiC's second stage: (α, β), 0-d detached float tensors, fitted from (1, 0) by SGD (``lr``,
    ``momentum``) for ``steps`` steps on

        mean CE(bias_correction(logits, n_old, α, β), labels) + (beta_decay / 2)·β²,

    the logits fixed (detached: the network is frozen). The penalty is the official code's
    ``0.1 * tf.nn.l2_loss(gamma)`` = 0.05·γ² on the offset only (``resnet.py`` at 7f687a32; its
    ``beta`` is our α, its ``gamma`` our β); PyCIL (``models/bic.py`` at 87cc4110) instead puts weight
    decay 2e-4 on both. The loss is the cross-entropy of the corrected logits, as in the official code;
    PyCIL applies a double softmax (``F.cross_entropy(torch.softmax(logits), y)``) — not done here.
    The official stage has a step schedule (×0.1 at epochs 60/120/160/180 of 200); here lr is constant.

    Runs on the package's one loop (``loop.run_steps``) over a ``TensorSet`` of (logits, labels);
    ``batch_size`` None = every example in one batch, so the result is deterministic up to the order
    of float summation (``generator`` only draws the batch order; default: seeded 0).
    """
    z = _matrix(logits, "logits").detach()
    if labels.dim() != 1 or len(labels) != len(z):
        raise ValueError(f"labels must be 1-D, one per row of logits; got {tuple(labels.shape)} "
                         f"for logits {tuple(z.shape)}")
    if len(z) == 0:
        raise ValueError("no examples to fit the bias correction on")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be an int >= 0, got {steps!r}")
    bias_correction(z[:0], n_old, 1.0, 0.0)  # validates n_old
    if not z.is_floating_point():
        z = z.float()
    alpha = torch.ones((), dtype=z.dtype, device=z.device, requires_grad=True)
    beta = torch.zeros((), dtype=z.dtype, device=z.device, requires_grad=True)
    if steps == 0:
        return alpha.detach(), beta.detach()

    def loss(batch, replay=None):
        ce = F.cross_entropy(bias_correction(batch.x, n_old, alpha, beta), batch.y)
        return {"ce": ce, "beta_l2": beta_decay / 2 * beta.pow(2)}

    if generator is None:
        generator = torch.Generator(z.device).manual_seed(0)
    data = TensorSet(z, labels.to(z.device), torch.zeros(len(z), dtype=torch.long, device=z.device))
    optimizer = torch.optim.SGD([alpha, beta], lr=lr, momentum=momentum)
    run_steps(data, loss, optimizer, steps=steps, batch_size=batch_size or len(data),
              generator=generator)
    return alpha.detach(), beta.detach()


def weight_align(weight: torch.Tensor, n_old: int) -> tuple:
    """WA (Zhao et al. 2020; PyCIL ``IncrementalNet.weight_align`` at 87cc4110):
    (aligned, γ), ``aligned`` a new tensor equal to ``weight`` (C, d) with the rows k ≥ n_old
    multiplied by

        γ = mean_{k < n_old} ‖w_k‖₂ / mean_{k ≥ n_old} ‖w_k‖₂,

    so the new rows' mean norm equals the old rows'; γ a 0-d tensor. ValueError if either group is
    empty (n_old ≤ 0 or ≥ C, or a bool), or if every new row is zero (no direction to scale: γ
    would be infinite). An all-zero old group gives γ = 0.
    """
    _matrix(weight, "weight")
    n_old = _index(n_old, "n_old")
    if not 0 < n_old < weight.shape[0]:
        raise ValueError(f"weight_align needs old rows and new rows: n_old must lie in "
                         f"[1, {weight.shape[0] - 1}], got {n_old}")
    # ‖w‖ = peak · ‖w / peak‖ with peak the row's largest |entry|: the squares of rows ×1e20 in
    # float32 (×1e200 in float64) would overflow, those of rows ×1e-25 underflow, in one step
    peak = weight.detach().abs().amax(dim=1)
    norms = peak * torch.linalg.vector_norm(weight / torch.where(peak > 0, peak, 1.0)[:, None], dim=1)
    new_mean = norms[n_old:].mean()
    if not new_mean > 0:
        raise ValueError("every new row of weight is zero: there is no norm to align")
    gamma = norms[:n_old].mean() / new_mean
    return torch.cat([weight[:n_old], weight[n_old:] * gamma]), gamma


def balanced_split(labels: torch.Tensor, per_class: int,
                   generator: torch.Generator | None = None) -> tuple:
    """(held_out, rest): LongTensors of indices into ``labels``, each sorted ascending. ``held_out``
    has exactly ``per_class`` indices of every class present in ``labels``, drawn with
    ``torch.randperm`` on ``generator`` (class after class, ascending); ``rest`` is every other index.
    BiC's class-balanced validation set (Wu et al. 2019; PyCIL ``models/bic.py``).

    ValueError when ``per_class`` is a bool, not an int or < 1, or when a class has ``per_class``
    examples or fewer (nothing of it would be left to train on).
    """
    if isinstance(per_class, bool) or not isinstance(per_class, int) or per_class < 1:
        raise ValueError(f"per_class must be an int >= 1, got {per_class!r}")
    if labels.dim() != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
    device = generator.device if generator is not None else labels.device
    held = []
    for c in torch.unique(labels).tolist():
        where = (labels == c).nonzero().flatten()
        if len(where) <= per_class:
            raise ValueError(f"class {c} has {len(where)} examples: holding out {per_class} of it "
                             f"would leave nothing to train on")
        pick = torch.randperm(len(where), generator=generator, device=device)[:per_class]
        held.append(where[pick.to(where.device)])
    held = torch.sort(torch.cat(held)).values if held else labels.new_zeros(0, dtype=torch.long)
    keep = torch.ones(len(labels), dtype=torch.bool, device=labels.device)
    keep[held] = False
    return held.long(), keep.nonzero().flatten()


def positive_fraction(features: torch.Tensor, weight: torch.Tensor) -> float:
    """Among the non-zero products f_ij·w_kj (every example i, unit k, feature dimension j), the
    fraction that are > 0, decided by the signs (exactly, whatever float underflow would do). WA's
    argument (Zhao et al. 2020) that a longer w_k gives a larger logit z_k = Σ_j f_ij w_kj needs this
    near 1: ReLU features (≥ 0) and clipped weights (≥ 0) make it exactly 1. A zero feature (ReLU's
    off units) or weight contributes nothing either way and is not counted.
    ``features`` (B, d), ``weight`` (C, d); ValueError if no product is non-zero."""
    f, w = _matrix(features, "features"), _matrix(weight, "weight")
    if f.shape[1] != w.shape[1]:
        raise ValueError(f"features and weight disagree on d: {f.shape[1]} vs {w.shape[1]}")
    f, w = f.detach(), w.detach()
    pos = ((f > 0).sum(0).double() * (w > 0).sum(0).double()).sum()
    neg = ((f < 0).sum(0).double() * (w < 0).sum(0).double()).sum()
    total = ((f != 0).sum(0).double() * (w != 0).sum(0).double()).sum()
    if total == 0:
        raise ValueError("no non-zero product: features or weight is empty or all zero")
    return float((pos + neg) / total)
