"""Lesson 06 — LFD: the less-forgetting direction and the equilibrium point: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex06_lfd.py`, or `clcourse grade --lesson 06`). Each exercise says which lesson
section explains it. Use plain tensor operations (`sum`, `abs`, `amax`, `torch.linalg.vector_norm`,
`torch.where`, arithmetic, a Python loop over a list of tensors, `torch.tensor(..., requires_grad=True)`,
`torch.autograd.grad`): the point is to see every step. The tests compare your results with `clcourse`'s
own implementations (`clcourse.sphere`: `tangent`, `rsgd_step`, `RiemannianSGD`; `clcourse.methods.lfd`:
`orthogonal_penalty`, `interpolate`) and with independent oracles (steps on a circle worked by hand, the
sphere constraint, orthogonality, gradients by autograd, by hand and by finite differences) — write
yours without looking at them first.

Conventions. A network's weights are a list of tensors w = [w_1, …, w_L], one per parameter tensor (a
layer's weight (out, in), its bias (out,), …), in the order of `model.parameters()`; float32 or
float64. LFD (Wen, Qiu, Wang et al. 2024, "Class incremental learning with less forgetting direction
and equilibrium point", IEEE TCSVT; this course follows the authors' public code HaitaoWen/PFCL:
`scheme.py::ER_PFCL`, `rsgd.py`, `dcd.py`) works around ŵ, the weights at the end of the previous task:
  * §1 the less-forgetting direction: a direction ν with ‖ν‖ = r, searched on the sphere of radius r by
    Riemannian SGD (Bonnabel 2013, "Stochastic gradient descent on Riemannian manifolds", IEEE TAC
    58(9)), so that the memory's loss stays low along the segment from ŵ to ŵ + ν;
  * §2 the new task is trained with a penalty (κ/2)·Σ_l ‖P⊥_{ν_l}(w_l − ŵ_l)‖² on the part of the step
    w − ŵ that goes ACROSS ν: moving along ν is free;
  * §3 the equilibrium point: one scalar λ, fitted on the memory by gradient descent, picks
    w(λ) = (1 − λ)·ŵ + λ·w on the segment between the old weights and the new ones.
Inner products and norms run over EVERY entry of a tensor, whatever its shape (a (3, 4) tensor is one
vector of 12 numbers, not 3 rows): ⟨a, b⟩ = Σ_i a_i·b_i, ‖a‖ = sqrt(⟨a, a⟩). Tensors have at least one
entry (0-d tensors included). Return new tensors: never modify an input, and leave its requires_grad
flag alone.
"""
import torch


# ---------------------------------------------------------------- §1 the less-forgetting direction

def tangent_projection(nu, g):
    """ex06.1 · Lesson 06 §1 — The tangent projection at ν: g without its component along ν.

    nu, g: float tensors of the SAME shape (any shape, 0-d included) and dtype (float32 or float64), possibly
    non-contiguous; nu may require gradients (it is the direction being searched); g may carry a graph
    (ex06.3 may backpropagate through your projection, so gradients must flow through it to g: do not
    detach g, no .item()). Return
        P⊥_ν g = g − (⟨g, ν⟩ / ‖ν‖²)·ν
    with the inner product and the norm over ALL entries (not row by row), and the SQUARED norm: with the
    unit vector u = ν/‖ν‖ this is g − ⟨g, u⟩·u. A NEW tensor of g's shape and dtype, orthogonal to ν
    (⟨P⊥_ν g, ν⟩ = 0): g itself (a copy) when g ⊥ ν, zero when g is parallel to ν; it does not depend on
    the length of ν, only on its direction.
    A zero ν has no direction to remove: return g unchanged (a new tensor, a copy) — not NaN.
    Huge or tiny ν (float32: ‖ν‖² overflows to inf for entries of 1e20 and underflows to 0 for entries of
    1e-25, so the formula written as is returns g, or NaN; the same for ⟨g, ν⟩ when g is huge too):
    compute u without squaring ν — divide ν by its largest |entry| (lesson 04's rule), then by the norm of
    the result — and return g − ⟨g, u⟩·u.
    Raise ValueError when nu and g differ in shape ((3, 4) and (12,) included). Do not modify nu or g
    (`g -= ...` changes the caller's tensor).
    """
    ### BEGIN SOLUTION
    if nu.shape != g.shape:
        raise ValueError(f"nu and g must have the same shape, got {tuple(nu.shape)} and {tuple(g.shape)}")
    peak = nu.abs().amax()                                   # the largest |entry|; 0 for a zero ν
    u = nu / torch.where(peak > 0, peak, 1)                  # entries in [−1, 1]: nothing overflows
    u = u / torch.where(peak > 0, torch.linalg.vector_norm(u), 1)  # ν/‖ν‖ (a zero ν stays zero)
    return g - (g * u).sum() * u
    ### END SOLUTION


def rsgd_step(nu, grad, buf, lr, momentum, radius):
    """ex06.2 · Lesson 06 §1 — One step of Riemannian SGD with momentum on the sphere ‖ν‖ = radius.

    nu: a float tensor ν (any shape; float32 or float64), the current point, usually on the sphere
    (‖ν‖ = radius, the norm over all entries); grad: ∇L(ν), a tensor of nu's shape and dtype; buf: the
    momentum b returned by the previous step (a tensor of nu's shape and dtype, used as given), or None at
    the first step; lr ≥ 0, momentum μ ≥ 0, radius r > 0: Python floats (no need to check them). As
    clcourse.sphere.rsgd_step does it (Bonnabel 2013; PFCL rsgd.py, one departure below):
        g     = grad − ⟨grad, ν⟩ν/‖ν‖²              the Riemannian gradient: ex06.1's P⊥_ν grad
        b     = μ·buf + g                          momentum without dampening (not μ·buf + (1 − μ)·g);
                                                   b = g at the first step (buf None) and whenever μ = 0
        ν'    = ν − lr·b                           the step, along the MOMENTUM b
        ν_new = r·ν'/‖ν'‖                          the retraction: back onto the sphere of radius r (not 1)
        b_new = b − ⟨b, ν_new⟩ν_new/‖ν_new‖²       the momentum transported to the tangent space at ν_new
                                                   by projection (ex06.1 with ν_new)
    Return (ν_new, b_new): two NEW tensors of nu's shape and dtype, with ‖ν_new‖ = r and ⟨b_new, ν_new⟩ = 0.
    PFCL starts its momentum at the RAW first gradient, so that its first step moves along μ·grad + g,
    partly off the tangent space; clcourse, and you, start it at the projected gradient: b = g.
    A point off the sphere (a zero ν included: ex06.1 removes nothing from grad then) is moved onto it by
    the retraction. Huge or tiny values (float32: radius 1e20 or 1e-25, with grad and buf scaled alike):
    ‖ν'‖² overflows or underflows — divide ν' by its largest |entry|, then by the norm of the result, and
    multiply by r; project with ex06.1.
    Raise ValueError when grad's shape differs from nu's, or when ν' is zero (no direction to retract:
    ν = 0 with a zero gradient). Do not modify nu, grad or buf (`nu -= lr * b` is what an optimiser does
    to its parameters; here, return a new tensor).
    """
    ### BEGIN SOLUTION
    if grad.shape != nu.shape:
        raise ValueError(f"grad must have nu's shape {tuple(nu.shape)}, got {tuple(grad.shape)}")
    g = tangent_projection(nu, grad)                         # ex06.1: the Riemannian gradient
    b = g if (buf is None or momentum == 0) else momentum * buf + g
    step = nu - lr * b
    peak = step.abs().amax()
    if not peak > 0:
        raise ValueError("ν − lr·b is zero: it has no direction to retract onto the sphere")
    unit = step / peak                                       # entries in [−1, 1]
    new = radius * (unit / torch.linalg.vector_norm(unit))   # r·ν'/‖ν'‖ without squaring ν'
    return new, tangent_projection(new, b)                   # the momentum, transported
    ### END SOLUTION


# ---------------------------------------------------------------- §2 the penalty across the direction

def orthogonal_penalty(delta, nu):
    """ex06.3 · Lesson 06 §2 — LFD's penalty across ν: (1/2)·Σ_l ‖P⊥_{ν_l} δ_l‖², tensor by tensor.

    delta: a list (or tuple) of float tensors δ_l = w_l − ŵ_l, the step each parameter tensor has made
    since the previous task (float32 or float64; any shapes, 0-d included; usually they carry the graph back
    to the network's parameters, and gradients must flow through your penalty to them); nu: a list of the
    same length ≥ 1, ν_l of δ_l's shape and dtype: the pieces of the less-forgetting direction (§1), one per
    parameter tensor. As PFCL's DCD optimiser (dcd.py) does it, the projection is PER TENSOR — each δ_l
    loses its component along its own ν_l:
        penalty = (1/2)·Σ_l ‖P⊥_{ν_l} δ_l‖²,        P⊥_ν x = x − (⟨x, ν⟩/‖ν‖²)·ν   (ex06.1)
    — not one projection of all the tensors flattened together (ν is ONE point on one sphere in §1, but the
    penalty projects each piece on its own), and the squared norm of the ORTHOGONAL part, not of δ (moving
    along ν costs nothing). Mind the 1/2. A zero ν_l removes nothing: its term is (1/2)·‖δ_l‖². Without κ
    (the training loss adds κ·penalty). Its gradient with respect to δ_l is P⊥_{ν_l} δ_l — the term DCD
    adds to the gradient; the lesson checks it against autograd.
    Return a 0-d tensor of delta's dtype, differentiable in delta (no .item(), no detach, no
    torch.no_grad()). Huge or tiny ν_l: as in ex06.1. Raise ValueError when the lists differ in length, or
    a δ_l and its ν_l in shape. Do not modify delta or nu.
    """
    ### BEGIN SOLUTION
    if len(delta) != len(nu):
        raise ValueError(f"{len(delta)} tensors in delta, {len(nu)} in nu")
    total = torch.zeros((), dtype=delta[0].dtype, device=delta[0].device)
    for d, v in zip(delta, nu):
        total = total + tangent_projection(v, d).pow(2).sum()   # ex06.1 raises on a shape mismatch
    return total / 2
    ### END SOLUTION


# ---------------------------------------------------------------- §3 the equilibrium point

def interpolate_and_slope(w_hat, w, lam, loss_fn):
    """ex06.4 · Lesson 06 §3 — The point w(λ) between ŵ and w, and the slope dL/dλ of the loss there.

    w_hat, w: two lists of float tensors of the same length, w_hat[l] and w[l] of the same shape and dtype
    (float32 or float64): ŵ, the weights at the end of the previous task, and w, the weights after training
    on the new one (w may be the network's parameters, requires_grad=True); lam: λ, a Python float or a 0-d
    tensor (any real number: λ is not clamped to [0, 1]); loss_fn: a function that takes a list of tensors
    shaped like w and returns the loss there as a 0-d tensor that autograd can differentiate (the memory's
    loss in LFD). The equilibrium point fits λ on the segment
        w(λ) = [(1 − λ)·ŵ_l + λ·w_l]_l                (λ = 0: ŵ; λ = 1: w)
    by gradient descent on L(w(λ)); the gradient it needs is, by the chain rule,
        dL/dλ = Σ_l ⟨∇_{w_l} L(w(λ)), w_l − ŵ_l⟩      (the gradient AT w(λ), along w − ŵ: not ŵ − w)
    Compute it with autograd: make a NEW 0-d tensor λ with requires_grad=True (of w's dtype), build w(λ)
    from it and differentiate loss_fn(w(λ)) with respect to it — or differentiate with respect to the
    interpolated tensors and take the inner products yourself. Use torch.autograd.grad, not .backward():
    backward would add into the .grad of w's parameters (a side effect on your inputs).
    Return (weights, slope): weights, a list of NEW tensors w(λ), one per tensor, with w's shapes and dtype
    (the tests compare values: they may carry autograd history or not); slope, a 0-d tensor of w's dtype,
    detached (requires_grad False). Raise ValueError when the lists differ in length. Do not modify w_hat,
    w or lam, nor their requires_grad flags (`lam.requires_grad_()` changes the caller's tensor; make your
    own from its value, float(lam) or lam.item(): torch.tensor(value, dtype=..., requires_grad=True)).
    """
    ### BEGIN SOLUTION
    if len(w_hat) != len(w):
        raise ValueError(f"{len(w_hat)} tensors in w_hat, {len(w)} in w")
    value = lam.item() if torch.is_tensor(lam) else float(lam)
    t = torch.tensor(value, dtype=w[0].dtype, device=w[0].device, requires_grad=True)  # λ, our own leaf
    weights = [(1 - t) * a.detach() + t * b.detach() for a, b in zip(w_hat, w)]
    (slope,) = torch.autograd.grad(loss_fn(weights), t)      # dL/dλ by the chain rule
    return [x.detach() for x in weights], slope.detach()
    ### END SOLUTION
