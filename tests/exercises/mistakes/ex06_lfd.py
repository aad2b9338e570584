"""Plausible wrong answers to lesson 06's exercises (see ``__init__.py``)."""
import torch

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


def _same_shape(a, b):
    if a.shape != b.shape:
        raise ValueError("shapes differ")


def _unit(v):
    """v/‖v‖ without overflow or underflow; 0 for a zero v (the right rule)."""
    peak = v.abs().amax()
    u = v / torch.where(peak > 0, peak, 1)
    return u / torch.where(peak > 0, torch.linalg.vector_norm(u), 1)


def _project(nu, g):
    """The right projection, for the mistakes of the later exercises."""
    _same_shape(nu, g)
    u = _unit(nu)
    return g - (g * u).sum() * u


def _retract(v, radius):
    peak = v.abs().amax()
    if not peak > 0:
        raise ValueError("zero")
    u = v / peak
    return radius * u / torch.linalg.vector_norm(u)


# ex06.1 tangent_projection
@mistake("ex06.1")
def projection_divides_by_the_norm(nu, g):
    _same_shape(nu, g)
    n = torch.linalg.vector_norm(nu)  # ‖ν‖, not ‖ν‖²: right only when ‖ν‖ = 1
    return g - torch.where(n > 0, (g * nu).sum() / torch.where(n > 0, n, 1), 0) * nu


@mistake("ex06.1")
def projection_row_by_row(nu, g):
    _same_shape(nu, g)
    if nu.dim() < 2:
        return _project(nu, g)
    n2 = (nu * nu).sum(dim=-1, keepdim=True)  # one projection per row, not over all entries
    return g - torch.where(n2 > 0, (g * nu).sum(dim=-1, keepdim=True) / torch.where(n2 > 0, n2, 1), 0) * nu


@mistake("ex06.1")
def projection_in_place(nu, g):
    _same_shape(nu, g)
    u = _unit(nu)
    with torch.no_grad():
        g -= (g * u).sum() * u  # the caller's g changes
    return g.clone()


@mistake("ex06.1")
def projection_plain_formula(nu, g):
    _same_shape(nu, g)
    n2 = (nu * nu).sum()  # overflows at 1e20 in float32, underflows at 1e-25 (clcourse.sphere.tangent's way)
    return g - torch.where(n2 > 0, (g * nu).sum() / torch.where(n2 > 0, n2, 1), 0) * nu


@mistake("ex06.1")
def projection_nan_on_a_zero_nu(nu, g):
    _same_shape(nu, g)
    peak = nu.abs().amax()
    u = nu / peak  # 0/0 for a zero ν
    u = u / torch.linalg.vector_norm(u)
    return g - (g * u).sum() * u


@mistake("ex06.1")
def projection_flattens_any_shapes(nu, g):
    if nu.numel() != g.numel():  # (3, 4) and (12,) pass: no error for a shape mismatch
        raise ValueError("sizes differ")
    return _project(nu.reshape(g.shape), g)


# ex06.2 rsgd_step
def _checked_step(nu, grad):
    _same_shape(nu, grad)


@mistake("ex06.2")
def step_without_retraction(nu, grad, buf, lr, momentum, radius):
    _checked_step(nu, grad)
    g = _project(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf + g
    new = nu - lr * b  # off the sphere: ‖ν'‖ > r
    if not new.abs().amax() > 0:
        raise ValueError("zero")
    return new, _project(new, b)


@mistake("ex06.2")
def step_retracts_to_the_unit_sphere(nu, grad, buf, lr, momentum, radius):
    _checked_step(nu, grad)
    g = _project(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf + g
    new = _retract(nu - lr * b, 1.0)  # ν'/‖ν'‖: radius 1, not r
    return new, _project(new, b)


@mistake("ex06.2")
def step_pfcl_raw_first_momentum(nu, grad, buf, lr, momentum, radius):
    _checked_step(nu, grad)
    g = _project(nu, grad)
    start = grad if buf is None else buf  # PFCL: the buffer starts as the RAW first gradient
    b = g if momentum == 0 else momentum * start + g
    new = _retract(nu - lr * b, radius)
    return new, _project(new, b)


@mistake("ex06.2")
def step_momentum_not_transported(nu, grad, buf, lr, momentum, radius):
    _checked_step(nu, grad)
    g = _project(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf + g
    return _retract(nu - lr * b, radius), b  # b stays in the tangent space of the OLD point


@mistake("ex06.2")
def step_with_dampening(nu, grad, buf, lr, momentum, radius):
    _checked_step(nu, grad)
    g = _project(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf + (1 - momentum) * g  # dampening = μ
    new = _retract(nu - lr * b, radius)
    return new, _project(new, b)


@mistake("ex06.2")
def step_along_the_gradient_not_the_momentum(nu, grad, buf, lr, momentum, radius):
    _checked_step(nu, grad)
    g = _project(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf + g
    new = _retract(nu - lr * g, radius)  # the buffer is kept, but the step ignores it
    return new, _project(new, b)


@mistake("ex06.2")
def step_plain_norm(nu, grad, buf, lr, momentum, radius):
    _checked_step(nu, grad)
    g = _project(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf + g
    step = nu - lr * b
    norm = (step * step).sum().sqrt()  # inf at 1e20 in float32, 0 at 1e-25
    if not norm > 0:
        raise ValueError("zero")
    new = radius * step / norm
    return new, _project(new, b)


@mistake("ex06.2")
def step_in_place(nu, grad, buf, lr, momentum, radius):
    _checked_step(nu, grad)
    g = _project(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf + g
    with torch.no_grad():
        nu -= lr * b  # the optimiser's way: the caller's ν moves
        nu.copy_(_retract(nu, radius))
    return nu.detach().clone(), _project(nu.detach(), b)


# ex06.3 orthogonal_penalty
def _checked_lists(delta, nu):
    if len(delta) != len(nu):
        raise ValueError("lengths differ")
    for d, v in zip(delta, nu):
        _same_shape(d, v)


@mistake("ex06.3")
def penalty_one_global_projection(delta, nu):
    _checked_lists(delta, nu)
    d = torch.cat([x.reshape(-1) for x in delta])  # all tensors flattened: projection="global"
    v = torch.cat([x.reshape(-1) for x in nu])
    return _project(v, d).pow(2).sum() / 2


@mistake("ex06.3")
def penalty_without_the_half(delta, nu):
    _checked_lists(delta, nu)
    return sum(_project(v, d).pow(2).sum() for d, v in zip(delta, nu))  # gradient 2·P⊥δ


@mistake("ex06.3")
def penalty_of_the_whole_step(delta, nu):
    _checked_lists(delta, nu)
    return sum(d.pow(2).sum() for d in delta) / 2  # ‖δ‖²: plain weight decay towards ŵ, ν plays no part


@mistake("ex06.3")
def penalty_of_the_part_along_nu(delta, nu):
    _checked_lists(delta, nu)
    return sum((d - _project(v, d)).pow(2).sum() for d, v in zip(delta, nu)) / 2  # penalises moving ALONG ν


@mistake("ex06.3")
def penalty_detached(delta, nu):
    _checked_lists(delta, nu)
    with torch.no_grad():  # a number, no gradient reaches the network
        return sum(_project(v, d).pow(2).sum() for d, v in zip(delta, nu)) / 2


@mistake("ex06.3")
def penalty_norm_not_squared(delta, nu):
    _checked_lists(delta, nu)
    return sum(torch.linalg.vector_norm(_project(v, d)) for d, v in zip(delta, nu)) / 2  # ‖P⊥δ‖, not ‖P⊥δ‖²


# ex06.4 interpolate_and_slope
def _checked_segment(w_hat, w):
    if len(w_hat) != len(w):
        raise ValueError("lengths differ")


def _value(lam):
    return lam.item() if torch.is_tensor(lam) else float(lam)


@mistake("ex06.4")
def slope_with_the_wrong_sign(w_hat, w, lam, loss_fn):
    _checked_segment(w_hat, w)
    xs = [((1 - _value(lam)) * a + _value(lam) * b).detach().requires_grad_() for a, b in zip(w_hat, w)]
    grads = torch.autograd.grad(loss_fn(xs), xs)
    slope = sum((g * (a - b)).sum() for g, a, b in zip(grads, w_hat, w))  # along ŵ − w
    return [x.detach() for x in xs], slope.detach()


@mistake("ex06.4")
def segment_ends_swapped(w_hat, w, lam, loss_fn):
    _checked_segment(w_hat, w)
    t = torch.tensor(_value(lam), dtype=w[0].dtype, requires_grad=True)
    xs = [(1 - t) * b.detach() + t * a.detach() for a, b in zip(w_hat, w)]  # λ = 0 gives w
    (slope,) = torch.autograd.grad(loss_fn(xs), t)
    return [x.detach() for x in xs], slope.detach()


@mistake("ex06.4")
def slope_from_a_detached_lambda(w_hat, w, lam, loss_fn):
    _checked_segment(w_hat, w)
    t = torch.tensor(_value(lam), dtype=w[0].dtype, requires_grad=True)
    xs = [(1 - t.item()) * a.detach() + t.item() * b.detach() for a, b in zip(w_hat, w)]  # no path to t
    (slope,) = torch.autograd.grad(loss_fn(xs), t, allow_unused=True)  # None: λ played no part
    return xs, torch.zeros_like(t) if slope is None else slope.detach()


@mistake("ex06.4")
def slope_with_the_gradient_at_w(w_hat, w, lam, loss_fn):
    _checked_segment(w_hat, w)
    value = _value(lam)
    xs = [((1 - value) * a + value * b).detach() for a, b in zip(w_hat, w)]
    at_w = [b.detach().clone().requires_grad_() for b in w]
    grads = torch.autograd.grad(loss_fn(at_w), at_w)  # ∇L at the end point w, not at w(λ)
    return xs, sum((g * (b - a)).sum() for g, a, b in zip(grads, w_hat, w)).detach()


@mistake("ex06.4")
def slope_by_backward(w_hat, w, lam, loss_fn):
    _checked_segment(w_hat, w)
    t = torch.tensor(_value(lam), dtype=w[0].dtype, requires_grad=True)
    xs = [(1 - t) * a + t * b for a, b in zip(w_hat, w)]
    loss_fn(xs).backward()  # also accumulates into the .grad of w's parameters
    return [x.detach() for x in xs], t.grad.detach()


@mistake("ex06.4")
def slope_sets_requires_grad_on_lam(w_hat, w, lam, loss_fn):
    _checked_segment(w_hat, w)
    t = lam.requires_grad_() if torch.is_tensor(lam) else torch.tensor(lam, dtype=w[0].dtype, requires_grad=True)
    xs = [(1 - t) * a.detach() + t * b.detach() for a, b in zip(w_hat, w)]  # the caller's λ now requires grad
    (slope,) = torch.autograd.grad(loss_fn(xs), t)
    return [x.detach() for x in xs], slope.detach()
