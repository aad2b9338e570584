"""Numbers computed from the accuracy matrix (lesson 01 §3).

``R[i][j]`` = test accuracy on task j right after training on task i (rows: how far training has
gone; columns: which task is tested), as in GEM (Lopez-Paz & Ranzato 2017, §2). Formulas below use
1-based task numbers like the papers; the code uses 0-based indices. Accuracies are fractions.
Every function takes anything ``torch.as_tensor`` accepts (nested lists, NumPy arrays, tensors).

Worked example (lesson 01 §3), checked in ``tests/test_metrics.py``::

    R = [[0.90, 0.20, 0.10],
         [0.93, 0.95, 0.15],
         [0.60, 0.80, 0.85]]
    ACC 0.75 · A = (0.90, 0.94, 0.75) · AIA 0.8633 · BWT -0.225 · forgetting 0.24 · FWT 0.075
"""
from __future__ import annotations

import math

import torch


def _matrix(R) -> torch.Tensor:
    R = torch.as_tensor(R, dtype=torch.float64)
    if R.dim() != 2 or R.shape[0] != R.shape[1] or R.shape[0] == 0:
        raise ValueError(f"an accuracy matrix is square T×T with T >= 1, got shape {tuple(R.shape)}")
    return R


def average_accuracy(R) -> float:
    """ACC = (1/T) Σ_j R[T][j]: mean accuracy over all tasks after the last one (GEM §2)."""
    R = _matrix(R)
    return R[-1].mean().item()


def accuracy_after_each_task(R) -> list:
    """A_i = (1/i) Σ_{j≤i} R[i][j]: mean accuracy over the tasks seen so far, after each task i."""
    R = _matrix(R)
    return [R[i, :i + 1].mean().item() for i in range(len(R))]


def average_incremental_accuracy(R) -> float:
    """AIA = (1/T) Σ_i A_i (iCaRL's summary of its curve, task-level version; §0.3).

    Includes the first step. iCaRL averages per-sample accuracy over all seen classes; this is the
    unweighted per-task mean, which equals it only when test sets are equally large (§0.3).
    """
    A = accuracy_after_each_task(R)
    return sum(A) / len(A)


def last_accuracy(R) -> float:
    """A_T: mean accuracy over all tasks after the last task (= ACC when each step is one task)."""
    return accuracy_after_each_task(R)[-1]


def backward_transfer(R) -> float:
    """BWT = (1/(T−1)) Σ_{j<T} (R[T][j] − R[j][j]) (GEM §2). Negative = forgetting. NaN if T = 1."""
    R = _matrix(R)
    T = len(R)
    if T == 1:
        return math.nan
    return (R[-1, :-1] - R.diagonal()[:-1]).mean().item()


def forgetting_per_task(R, k: int | None = None) -> list:
    """f_j^k = max_{l<k} R[l][j] − R[k][j] for every j < k (Chaudhry et al. 2018, RWalk).

    Max-based: the drop from the *best* accuracy task j ever had before step k, not from R[j][j].
    ``k`` is a 0-based row (default: the last).
    """
    R = _matrix(R)
    k = len(R) - 1 if k is None else k
    return [(R[:k, j].max() - R[k, j]).item() for j in range(k)]


def forgetting(R, k: int | None = None) -> float:
    """Average forgetting F_k = mean_j f_j^k over the tasks before k (RWalk). NaN if k = 0."""
    f = forgetting_per_task(R, k)
    return sum(f) / len(f) if f else math.nan


def forward_transfer(R, b) -> float:
    """FWT = (1/(T−1)) Σ_{j≥2} (R[j−1][j] − b̄_j), b̄ = accuracies at random init (GEM §2)."""
    R, b = _matrix(R), torch.as_tensor(b, dtype=torch.float64)
    T = len(R)
    if T == 1:
        return math.nan
    return (R[:-1].diagonal(1) - b[1:]).mean().item()


def summarize(R) -> dict:
    """The metrics every run reports. Undefined values (one task) are ``None``."""
    values = {
        "average_accuracy": average_accuracy(R),
        "average_incremental_accuracy": average_incremental_accuracy(R),
        "last_accuracy": last_accuracy(R),
        "forgetting": forgetting(R),
        "bwt": backward_transfer(R),
        "accuracy_after_each_task": accuracy_after_each_task(R),
    }
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in values.items()}
