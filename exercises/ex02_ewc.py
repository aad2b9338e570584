# Generated from solutions/ex02_ewc.py by `clcourse exercises`. This is YOUR file: replace each
# `raise NotImplementedError(...)` with your code, then grade it with `clcourse grade --lesson 02`.
# `clcourse exercises` never overwrites your edits (it refuses unless --force, and keeps a copy
# in exercises/.backup/); `clcourse exercises --reset NN` restores this lesson's untouched file.
# clcourse-exercises fingerprint: 3bb0d7da3bd03c4711f2ead4b2bc08b490dc5bcb306f236097564025cf673855
"""Lesson 02 — EWC from Bayes, the Laplace approximation and the Fisher; online EWC and SI: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex02_ewc.py`, or `clcourse grade --lesson 02`). Each exercise says which lesson
section explains it. Use plain tensor operations (`mean`, `sum`, `softmax`, `einsum`, `torch.kron`,
indexing) and, where an exercise says so, `torch.autograd.grad`: the point is to see every step. The
tests compare your results with `clcourse`'s own implementations (`clcourse.laplace`, `clcourse.fisher`,
`clcourse.penalties`, `clcourse.methods.ewc`, `clcourse.methods.si`) and with independent oracles
(autograd, Hessians, closed forms) — write yours without looking at them first.

Conventions. A network's parameters are a dict {name: tensor}, as `dict(model.named_parameters())`;
Fisher diagonals, anchors θ* and gradients are dicts with the same names and shapes. log p(y|x) is the
log-likelihood the model gives label y (a log-softmax entry), so "the gradient of log p" is MINUS the
gradient of the cross-entropy loss (its square is the same). Return new tensors: never modify an input.
"""
import torch


# ---------------------------------------------------------------- §2 the Laplace approximation

def laplace_variance(log_density, theta_star):
    """ex02.1 · Lesson 02 §2 — The variance of the Laplace approximation of a 1-D density at its mode.

    log_density: a Python function that takes a 0-d float64 tensor θ and returns log p(θ) (up to a
    constant) as a 0-d tensor, built from torch operations (so autograd can differentiate it).
    theta_star: the mode θ* of p, a Python float or a 0-d tensor of any float dtype.
    Near its maximum a log-density is a parabola (the first-order Taylor term vanishes there):
        log p(θ) ≈ log p(θ*) + ½ (log p)''(θ*) (θ − θ*)²
    which is the log-density of a Gaussian with mean θ* and variance
        σ² = −1 / (log p)''(θ*)
    Return σ² as a 0-d float64 tensor. If (log p)''(θ*) is not negative, θ* is not a maximum and there
    is no Laplace fit: raise ValueError.
    Checks: a Gaussian N(μ, s²) gives exactly s²; a Gamma(k, rate β) (mode (k − 1)/β) gives (k − 1)/β²,
    which is NOT its true variance k/β² — the Laplace fit only sees the curvature at the mode.
    Hint: make θ a float64 leaf that requires grad,
    `theta = torch.as_tensor(theta_star, dtype=torch.float64).detach().clone().requires_grad_()`;
    `torch.autograd.grad` returns a tuple; the first derivative can only be differentiated again if
    it was built with `create_graph=True`. No finite differences: autograd is exact.
    """
    # TODO ex02.1 (Lesson 02 §2): The variance of the Laplace approximation of a 1-D density at its mode.
    raise NotImplementedError("ex02.1: laplace_variance is not implemented yet — see Lesson 02 §2")


# ---------------------------------------------------------------- §3 the Fisher information

def softmax_regression_fisher(W, x):
    """ex02.2 · Lesson 02 §3 — The exact Fisher of softmax regression, in closed form.

    W: the weights, shape (K, D) (K classes, D features, no bias); x: the inputs, shape (N, D), same
    dtype. The model is p(·|x) = softmax(W x). The score of label c is ∇_W log p(c|x) = (e_c − p) xᵀ,
    and over the model's OWN labels c ~ p(·|x) its covariance is E_c[(e_c − p)(e_c − p)ᵀ] = diag(p) − p pᵀ.
    With W flattened row by row (`W.flatten()`: entry (k, d) at index k·D + d), the Fisher is
        F = (1/N) Σ_n (diag(p_n) − p_n p_nᵀ) ⊗ x_n x_nᵀ        (⊗: the Kronecker product)
    a (K·D, K·D) tensor of W's dtype. No labels are given, on purpose: the exact Fisher takes the
    expectation over c ~ p, not the true or the predicted label. It equals −E[∇² log p] too (§3's
    identity), and it is singular: adding one vector to every row of W does not change p.
    Hint: first the (N, K) probabilities, then the (N, K, K) stack of covariances (`torch.diag_embed`
    builds the diagonal part); `torch.kron(A, B)` puts A's index first, which is the row-major order of
    vec(W) (k before d). A loop over the N examples is fine; `torch.einsum` can do it in one call.
    """
    # TODO ex02.2 (Lesson 02 §3): The exact Fisher of softmax regression, in closed form.
    raise NotImplementedError("ex02.2: softmax_regression_fisher is not implemented yet — see Lesson 02 §3")


# ---------------------------------------------------------------- §4 the EWC objective

def ewc_penalty(params, fisher, anchor, lam):
    """ex02.3 · Lesson 02 §4 — The EWC penalty and its gradient, by hand.

    params, fisher, anchor: dicts {name: tensor} with the same names and shapes — the current
    parameters θ, the diagonal Fisher F (≥ 0) and the parameters θ* after the old task; lam: λ ≥ 0, a
    Python float. Return a pair (value, grads):
        value = (λ/2) Σ_i F_i (θ_i − θ*_i)²     a 0-d tensor: the sum runs over EVERY entry of every
                                                  parameter (Kirkpatrick et al. 2017, Eq. 3)
        grads = {name: λ F (θ − θ*)}            its gradient with respect to each parameter, same shapes
    Compute the gradient by hand, from the formula (no `backward`, no `torch.autograd`): the ½ and the
    square cancel. value is added to the new task's loss, so build it from torch operations on params
    (no `.item()`): autograd must be able to differentiate it, and its gradient must equal grads.
    At θ = θ* both are zero; value grows with the square of the distance and linearly with λ.
    Hint: loop over the names; each parameter contributes one `.sum()` of its entries. Differentiate
    (λ/2) F (θ − θ*)² with respect to θ on paper first.
    """
    # TODO ex02.3 (Lesson 02 §4): The EWC penalty and its gradient, by hand.
    raise NotImplementedError("ex02.3: ewc_penalty is not implemented yet — see Lesson 02 §4")


# ---------------------------------------------------------------- §5 what code computes

def empirical_fisher_diagonal(per_sample_grads):
    """ex02.4 · Lesson 02 §5 — The diagonal empirical Fisher from per-example gradients.

    per_sample_grads: a dict {name: tensor of shape (N, *shape)}: row n of each tensor is the gradient
    g_n = ∇ log p(y_n | x_n) of example n with respect to that parameter (shape = the parameter's shape,
    e.g. (out, in) for a weight, (out,) for a bias, () for a scalar), for the N examples of a task and
    their TRUE labels y_n.
    Return a dict with the same names, each a tensor of the parameter's shape (the leading N is gone)
    and the same dtype:
        F_emp = (1/N) Σ_n g_n²          (element-wise square, then the mean over the N examples)
    This is the "empirical" Fisher of `clcourse.fisher` (true labels). It is NOT the square of the mean
    gradient ("batched": near a minimum the mean gradient is ~0, but every example's is not), and not a
    sum (its size would grow with N, and λ with it). A sign flip of every g_n (loss instead of
    log-likelihood) does not change it.
    Hint: one dict comprehension over the names; the example axis is dimension 0 — which operation
    comes first, the square or the mean?
    """
    # TODO ex02.4 (Lesson 02 §5): The diagonal empirical Fisher from per-example gradients.
    raise NotImplementedError("ex02.4: empirical_fisher_diagonal is not implemented yet — see Lesson 02 §5")


# ---------------------------------------------------------------- §6 synaptic intelligence

def si_importance(grads, deltas, theta_start, theta_end, xi):
    """ex02.5 · Lesson 02 §6 — SI's importance of each parameter, from the recorded optimisation path.

    grads, deltas: tensors of shape (S, P), one row per optimiser step s of the task: the gradient g_s
    of the loss that step used, and the parameter change Δθ_s = θ_after − θ_before it made (P
    parameters, flattened). theta_start, theta_end: the parameters (P,) at the task's start and end;
    xi: the damping ξ > 0, a float. Zenke et al. 2017 (Eqs. 3–5): each step changed the loss by about
    g_s · Δθ_s, so the share of parameter i in the loss decrease is the path integral
        ω_i = −Σ_s g_{s,i} Δθ_{s,i}               (> 0 when the steps of i went downhill)
    and its importance is ω divided by how far it moved over the whole task:
        Ω_i = ω_i / ((θ_end,i − θ_start,i)² + ξ)
    Return Ω, shape (P,), the dtype of the inputs. ξ keeps a parameter that ended where it started
    bounded (0 / 0 without it). The displacement is θ_end − θ_start, not the length of the path
    (Σ_s |Δθ_s|: a path that goes back and forth). Do not clamp Ω at 0.
    Plain SGD with learning rate η has Δθ_s = −η g_s, so ω = η Σ_s g_s² ≥ 0.
    Hint: the step axis is dimension 0; ω is a sum over it, the displacement is not.
    """
    # TODO ex02.5 (Lesson 02 §6): SI's importance of each parameter, from the recorded optimisation path.
    raise NotImplementedError("ex02.5: si_importance is not implemented yet — see Lesson 02 §6")


# ---------------------------------------------------------------- §7 online EWC

def online_fisher_update(running, new, gamma):
    """ex02.6 · Lesson 02 §7 — Online EWC's running Fisher: the old one decays, the new one adds.

    running: the running Fisher F̃_{t−1}, a dict {name: tensor} (empty after no task); new: the diagonal
    Fisher F_t of the task just learned, a dict {name: tensor}; gamma: the decay γ in [0, 1], a float.
    Return a NEW dict with the names of `new`:
        F̃_t = γ F̃_{t−1} + F_t           (Schwarz et al. 2018; Huszár 2018)
    so after tasks 1..3, F̃_3 = γ² F_1 + γ F_2 + F_3: old tasks count less and less (γ = 1: plain sum).
    Do not modify `running` or `new` (the caller keeps them), and return tensors that are not the input
    tensors themselves (use `.clone()` where you would return one as is).
    Two more cases: a name missing from `running` (the first task, or a parameter that did not exist
    then) takes F_t alone; and a class-IL head GROWS new units, so `new[name]` may be larger than
    `running[name]` (e.g. (6, 5) now, (4, 5) before): the old block, `out[:4, :5]`, is γ·old + new there,
    and the new units take F_t alone.
    Hint: start each output from a copy of the new Fisher; the leading block of a tensor with the old
    shape is `out[tuple(slice(0, s) for s in old.shape)]`.
    """
    # TODO ex02.6 (Lesson 02 §7): Online EWC's running Fisher: the old one decays, the new one adds.
    raise NotImplementedError("ex02.6: online_fisher_update is not implemented yet — see Lesson 02 §7")
