# Generated from solutions/ex00_network_basics.py by `clcourse exercises`. This is YOUR file: replace each
# `raise NotImplementedError(...)` with your code, then grade it with `clcourse grade --lesson 00`.
# `clcourse exercises` never overwrites your edits (it refuses unless --force, and keeps a copy
# in exercises/.backup/); `clcourse exercises --reset NN` restores this lesson's untouched file.
# clcourse-exercises fingerprint: 098859f91427b5f1e1f2347df8b8530a7f6cd97dc7810de366edc8d8b063b083
"""Lesson 00 — network basics: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex00_network_basics.py`). Each exercise says which lesson section explains it.
Use only plain tensor operations (`exp`, `log`, `max`, `sum`, `@`, indexing, …): the point is to see
every step. Where a function is differentiable, the tests also check its gradients with autograd,
so stick to torch operations (no NumPy round trips).

Conventions: the batch is the first dimension, classes the last; weights use `nn.Linear`'s layout,
W of shape (out_features, in_features), so a layer computes `x @ W.T + b`.
"""
import torch


def activation(name, z):
    """ex00.1 · Lesson 00 §3 — An activation and its derivative: returns (f(z), f'(z)).

    `name` is "relu", "sigmoid" or "tanh"; any other name raises ValueError.
    z: a float tensor (float32 or float64) of any shape, 0-dimensional and empty ones included. Both
    outputs have the shape and dtype of z. Leave z as it is: no in-place operations (`clamp_`,
    `z[z < 0] = 0`) and no change of its requires_grad flag.
    The derivative is with respect to the pre-activation z, elementwise:
        relu:    f = max(z, 0),           f' = 1 if z > 0 else 0   (use 0 at z = 0, as PyTorch does)
        sigmoid: f = 1 / (1 + exp(−z)),   f' = f (1 − f)
        tanh:    f = tanh(z),             f' = 1 − f²
    Both must stay finite for z = ±1e4, in float32 as in float64: write each formula so that an exp
    that overflows to inf gives the right limit, never inf / inf. Hint: `torch.tanh` is fine for the tanh
    value itself (the ratio (e^z − e^−z) / (e^z + e^−z) becomes inf / inf = NaN for large z).
    """
    # TODO ex00.1 (Lesson 00 §3): An activation and its derivative: returns (f(z), f'(z)).
    raise NotImplementedError("ex00.1: activation is not implemented yet — see Lesson 00 §3")


def stable_softmax(z, T=1.0):
    """ex00.2 · Lesson 00 §5 — Stable softmax of logits z (..., C) at temperature T.

    Compute p_i = exp(z_i / T) / Σ_j exp(z_j / T) along the last dimension.
    Input: z, a float tensor of shape (..., C) (any number of leading dimensions, possibly 0 rows).
    Output: a tensor of the same shape and dtype whose last dimension sums to 1.
    It must stay finite and exact for logits as large as ±1e4, where exp(1e4) overflows to inf, in
    float32 and float64, also when the rows of a batch lie on very different scales. T > 0.
    Leave z as it is: no in-place operations (`-=`, `.sub_()`), and no change of its requires_grad flag.
    Hint: dividing numerator and denominator by the same exp(m) changes nothing; choose m = the largest
    scaled logit of each row (`amax(dim=-1, keepdim=True)`), so that every exponent is ≤ 0.
    """
    # TODO ex00.2 (Lesson 00 §5): Stable softmax of logits z (..., C) at temperature T.
    raise NotImplementedError("ex00.2: stable_softmax is not implemented yet — see Lesson 00 §5")


def cross_entropy_from_logits(logits, targets):
    """ex00.3 · Lesson 00 §6 — Mean cross-entropy of logits (N, C) against integer targets (N,).

    Compute L = (1/N) Σ_n −log p_n[y_n], where p_n = softmax(logits_n) and y_n = targets[n] (int64).
    Output: a 0-dimensional tensor (a scalar) with the dtype of `logits`; it must equal
    `torch.nn.functional.cross_entropy(logits, targets)`.
    It must stay finite for logits of ±1e4 (float32 and float64): do not take the log of a softmax that
    underflowed to 0. The targets are in any order (not sorted, not one per class), and N may equal C.
    Leave logits and targets as they are (no in-place operations, no change of requires_grad).
    Hint: log p_i = z_i − log Σ_j exp(z_j), and log Σ_j exp(z_j) = m + log Σ_j exp(z_j − m) with
    m = max_j z_j (the log-sum-exp trick). `logp[torch.arange(N), targets]` picks log p of each target.
    """
    # TODO ex00.3 (Lesson 00 §6): Mean cross-entropy of logits (N, C) against integer targets (N,).
    raise NotImplementedError("ex00.3: cross_entropy_from_logits is not implemented yet — see Lesson 00 §6")


def two_layer_backward(x, W1, b1, W2, b2, targets):
    """ex00.4 · Lesson 00 §7 — Gradients of a two-layer MLP's mean cross-entropy, by hand.

    The network: z1 = x W1ᵀ + b1,  h = relu(z1),  logits = h W2ᵀ + b2,  L = mean cross-entropy.
    Shapes: x (N, D), W1 (H, D), b1 (H,), W2 (C, H), b2 (C,), targets (N,) int64.
    Return a dict {"dW1": ..., "db1": ..., "dW2": ..., "db2": ...} of ∂L/∂parameter, each with the shape
    and dtype of its parameter. Do the forward pass, then apply the chain rule backwards — no autograd
    (`.backward()`, `torch.autograd.grad`): the tests compare your result with autograd's. The inputs
    may require grad; leave them as they are (values and requires_grad flags). Works in float32 and
    float64, for logits of ±1e4, and for a batch whose rows have very different scales (each row's
    softmax is stabilised by that row's own maximum).
    Hint, from the output back to the input (Y = one-hot targets, p = softmax(logits)):
        dlogits = (p − Y) / N         # the 1/N because L is a mean over the batch
        dW2 = dlogitsᵀ h,   db2 = dlogits summed over the batch
        dh  = dlogits W2
        dz1 = dh * relu'(z1)          # relu'(z1) = 1 where z1 > 0, else 0
        dW1 = dz1ᵀ x,       db1 = dz1 summed over the batch
    Check each shape as you go: a gradient always has the shape of what it differentiates.
    """
    # TODO ex00.4 (Lesson 00 §7): Gradients of a two-layer MLP's mean cross-entropy, by hand.
    raise NotImplementedError("ex00.4: two_layer_backward is not implemented yet — see Lesson 00 §7")


def sgd_momentum_step(params, grads, velocities, lr, momentum):
    """ex00.5 · Lesson 00 §7 — One step of SGD with momentum, as torch.optim.SGD does it.

    params, grads, velocities: lists of tensors, in the same order and with matching shapes
    (at the first step the velocities are zeros); any shapes, 0-dimensional tensors included.
    For each parameter p with gradient g and velocity v:
        v_new = momentum · v + g
        p_new = p − lr · v_new
    Return (new_params, new_velocities), two new lists. Do not modify the input tensors in place
    (no `-=`, `.add_()`, `.mul_()`, no `p.data`): the caller may still need the old values. Leave their
    requires_grad flags as they are too.
    """
    # TODO ex00.5 (Lesson 00 §7): One step of SGD with momentum, as torch.optim.SGD does it.
    raise NotImplementedError("ex00.5: sgd_momentum_step is not implemented yet — see Lesson 00 §7")
