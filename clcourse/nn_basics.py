"""Lesson 00 — the reference pieces of a small network, written out by hand.

These are the trusted implementations that lesson 00 derives step by step and that the grading tests
of `solutions/ex00_network_basics.py` compare a student's code against. Each one is checked against
PyTorch (`torch.softmax`, `F.cross_entropy`, autograd, `torch.optim.SGD`) in `tests/test_nn_basics.py`.

Conventions: a batch is the first dimension, classes the last; weights use `nn.Linear`'s layout
(`W` is (out_features, in_features), so a layer computes `x @ W.T + b`).
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor

__all__ = [
    "stable_softmax", "log_softmax", "cross_entropy_from_logits", "mse",
    "relu", "relu_grad", "sigmoid", "sigmoid_grad", "tanh", "tanh_grad", "activation_and_derivative",
    "two_layer_forward", "two_layer_backward", "two_layer_gradients", "sgd_momentum_step",
    "scaled_to_unit_peak",
]


def scaled_to_unit_peak(v: Tensor, dim: int | None = None) -> Tensor:
    """``v`` times a power of two 2^k chosen so that the largest |entry| (of all ``v``, or of each slice
    along ``dim``) lies in [0.5, 1): exact in floating point, so a norm or a ratio of inner products
    computed on the result equals the one on ``v`` bit for bit wherever that one neither overflows
    (float32 entries above ~1e19 square to inf) nor underflows; here it does neither. Zero slices and
    non-finite peaks are left as they are (factor 1). Used by ``memory.unit_rows`` and ``sphere``."""
    peak = v.detach().abs().amax() if dim is None else v.detach().abs().amax(dim=dim, keepdim=True)
    _, exponent = torch.frexp(torch.where(torch.isfinite(peak), peak, torch.ones_like(peak)))
    two = torch.tensor(2.0, dtype=v.dtype, device=v.device)
    half = torch.div(-exponent, 2, rounding_mode="floor")  # two steps: 2^±150 overflows float32
    return v * two.pow(half) * two.pow(-exponent - half)


# ---------------------------------------------------------------- §5 output layer and softmax

def stable_softmax(z: Tensor, T: float = 1.0, dim: int = -1) -> Tensor:
    """Softmax at temperature T: p_i = exp(z_i / T) / Σ_j exp(z_j / T), along `dim`.

    Subtracting the maximum m = max_j z_j / T first changes nothing mathematically (the factor exp(-m)
    cancels between numerator and denominator) but keeps every exponent ≤ 0, so exp never overflows:
    the result is exact for |z| up to 1e4 and beyond. T > 1 flattens the distribution, T < 1 sharpens it.
    """
    z = z / T
    z = z - z.amax(dim=dim, keepdim=True)  # largest exponent is now exactly 0
    e = z.exp()
    return e / e.sum(dim=dim, keepdim=True)


def log_softmax(z: Tensor, dim: int = -1) -> Tensor:
    """log p_i = z_i − log Σ_j exp(z_j), computed with the log-sum-exp trick.

    log Σ_j exp(z_j) = m + log Σ_j exp(z_j − m) with m = max_j z_j: the sum is ≥ 1, so its log is
    finite, and we never take the log of a softmax that underflowed to 0.
    """
    shifted = z - z.amax(dim=dim, keepdim=True)
    # z − (m + log Σ exp(z − m)), grouped so that the large m cancels first (exact in float32 at 1e4)
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


# ---------------------------------------------------------------- §6 loss

def cross_entropy_from_logits(logits: Tensor, targets: Tensor) -> Tensor:
    """Mean cross-entropy L = (1/N) Σ_n −log softmax(logits_n)[y_n]; logits (N, C), targets (N,) int64.

    Goes through `log_softmax` (log-sum-exp), so logits of ±1e4 give a finite loss. Equals
    `F.cross_entropy(logits, targets)`; like it, an empty batch gives NaN (the mean of nothing).
    """
    logp = log_softmax(logits, dim=-1)
    picked = logp.gather(1, targets.long().unsqueeze(1)).squeeze(1)  # log p of the true class, (N,)
    return -picked.mean()


def mse(pred: Tensor, target: Tensor) -> Tensor:
    """Mean squared error L = mean over all elements of (pred − target)². Equals `F.mse_loss`."""
    return ((pred - target) ** 2).mean()


# ---------------------------------------------------------------- §3 activations
# Each `*_grad` is the derivative with respect to the pre-activation z, evaluated elementwise,
# which is what backpropagation multiplies the incoming gradient by.

def relu(z: Tensor) -> Tensor:
    """ReLU(z) = max(z, 0)."""
    return z.clamp_min(0)


def relu_grad(z: Tensor) -> Tensor:
    """ReLU'(z) = 1 if z > 0 else 0. At z = 0 the derivative is undefined; we use 0, as PyTorch does."""
    return (z > 0).to(z.dtype)


def sigmoid(z: Tensor) -> Tensor:
    """σ(z) = 1 / (1 + exp(−z)).

    For z ≪ 0, exp(−z) overflows to inf and 1 / inf = 0, which is the correct limit: no NaN.
    """
    return 1.0 / (1.0 + (-z).exp())


def sigmoid_grad(z: Tensor) -> Tensor:
    """σ'(z) = σ(z) (1 − σ(z)); largest (1/4) at z = 0, vanishing for large |z|."""
    s = sigmoid(z)
    return s * (1 - s)


def tanh(z: Tensor) -> Tensor:
    """tanh(z) = (e^z − e^−z) / (e^z + e^−z) = 2σ(2z) − 1.

    We call `torch.tanh`: the textbook ratio gives inf / inf = NaN once e^z overflows (|z| > ~710 in float64).
    """
    return torch.tanh(z)


def tanh_grad(z: Tensor) -> Tensor:
    """tanh'(z) = 1 − tanh(z)²; equal to 1 at z = 0."""
    return 1 - torch.tanh(z) ** 2


ACTIVATIONS = {"relu": (relu, relu_grad), "sigmoid": (sigmoid, sigmoid_grad), "tanh": (tanh, tanh_grad)}


def activation_and_derivative(name: str, z: Tensor):
    """(f(z), f'(z)) for f = "relu", "sigmoid" or "tanh" (the functions above); ValueError otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected 'relu', 'sigmoid' or 'tanh'")
    f, df = ACTIVATIONS[name]
    return f(z), df(z)


# ---------------------------------------------------------------- §4 hidden layers, §7 backpropagation

def two_layer_forward(x: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor):
    """Forward pass of a two-layer MLP: logits = relu(x W1ᵀ + b1) W2ᵀ + b2.

    Shapes: x (N, D), W1 (H, D), b1 (H,), W2 (C, H), b2 (C,) → logits (N, C).
    Returns (logits, cache); the cache keeps what the backward pass needs (inputs, pre-activation z1,
    hidden activation h, and W2 to send the gradient back through the second layer).
    """
    z1 = x @ W1.T + b1  # (N, H) pre-activation
    h = relu(z1)        # (N, H) hidden activation
    logits = h @ W2.T + b2  # (N, C)
    cache = {"x": x, "z1": z1, "h": h, "W2": W2, "logits": logits}
    return logits, cache


def two_layer_backward(cache: dict, targets: Tensor) -> dict:
    """Gradients of the mean cross-entropy of `two_layer_forward`'s logits, by the chain rule.

    With p = softmax(logits) and Y the one-hot targets, for the mean over N samples:
        dlogits = (p − Y) / N                 (N, C)
        dW2 = dlogitsᵀ h,   db2 = Σ_n dlogits  (C, H), (C,)
        dh  = dlogits W2                       (N, H)
        dz1 = dh ⊙ relu'(z1)                   (N, H)
        dW1 = dz1ᵀ x,       db1 = Σ_n dz1      (H, D), (H,)
    Returns {"dW1", "db1", "dW2", "db2"}, each with the shape of its parameter.
    """
    x, z1, h, W2, logits = cache["x"], cache["z1"], cache["h"], cache["W2"], cache["logits"]
    n = logits.shape[0]
    onehot = torch.zeros_like(logits).scatter_(1, targets.long().unsqueeze(1), 1.0)
    dlogits = (stable_softmax(logits) - onehot) / n  # the 1/N comes from taking the mean
    dW2 = dlogits.T @ h
    db2 = dlogits.sum(dim=0)
    dh = dlogits @ W2
    dz1 = dh * relu_grad(z1)  # units that were off (z1 ≤ 0) pass no gradient back
    dW1 = dz1.T @ x
    db1 = dz1.sum(dim=0)
    return {"dW1": dW1, "db1": db1, "dW2": dW2, "db2": db2}


def two_layer_gradients(x: Tensor, W1: Tensor, b1: Tensor, W2: Tensor, b2: Tensor, targets: Tensor) -> dict:
    """∂L/∂(W1, b1, W2, b2) of the mean cross-entropy: `two_layer_forward`, then `two_layer_backward`."""
    _, cache = two_layer_forward(x, W1, b1, W2, b2)
    return two_layer_backward(cache, targets)


def sgd_momentum_step(params: Sequence[Tensor], grads: Sequence[Tensor],
                      velocities: Optional[Sequence[Tensor]], lr: float, momentum: float):
    """One step of SGD with momentum, PyTorch's convention (`torch.optim.SGD`, dampening 0):

        v ← μ v + g
        p ← p − lr · v

    `params`, `grads`, `velocities` are parallel lists; `velocities=None` means zeros (the first step,
    where v = g, exactly as PyTorch initialises its momentum buffer). Returns (new_params, new_velocities)
    as new lists of new tensors: the inputs are left untouched (no in-place update), so you can keep
    the old values to compare. Note: some texts write v ← μ v + lr g, p ← p − v; with a constant lr the
    trajectories agree, but the stored velocity differs by the factor lr.
    """
    if velocities is None:
        velocities = [torch.zeros_like(p) for p in params]
    new_velocities = [momentum * v + g for v, g in zip(velocities, grads)]
    new_params = [p - lr * v for p, v in zip(params, new_velocities)]
    return new_params, new_velocities
