"""Grading tests of lesson 06 (LFD: the less-forgetting direction, the penalty across it, the equilibrium
point): ex06.1–ex06.4.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse.sphere` (`tangent`, `rsgd_step`,
`RiemannianSGD`) and `clcourse.methods.lfd` (`orthogonal_penalty`, `interpolate`; the slope dL/dλ has no
function of its own in the package: its reference here is autograd on a scalar λ tensor through
`interpolate`), with independent oracles (the formulas written out in float64, steps on a circle worked
by hand, the sphere constraint ‖ν‖ = r, orthogonality to ν, gradients by autograd, by hand and by central
finite differences) and with properties the result must have whatever the implementation (the
projection depends on ν's direction only; a step scales with the sphere).

The references square ‖ν‖, so at extreme scales (float32 entries of 1e20 or 1e-25) they are no
reference: there the tests compare with the answer at scale 1, scaled.
Every call checks that the inputs keep their values and their requires_grad flag.
"""
import math

import pytest
import torch

from clcourse.methods.lfd import interpolate as ref_interpolate
from clcourse.methods.lfd import interpolate_and_slope as ref_interpolate_and_slope
from clcourse.methods.lfd import orthogonal_penalty as ref_orthogonal_penalty
from clcourse.sphere import RiemannianSGD
from clcourse.sphere import rsgd_step as ref_rsgd_step
from clcourse.sphere import tangent as ref_tangent

from checks import call_unchanged, check_tensor, raises_value_error

EXERCISE_MODULE = "ex06_lfd"

DTYPES = [torch.float64, torch.float32]
DTYPE_IDS = ["float64", "float32"]
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-12, rtol=1e-12)}
# extreme scales: float32 squares 1e20 to inf and 1e-25 to 0; float64 does the same at 1e200 and 1e-200
EXTREME = {torch.float32: (1e20, 1e-20, 1e-25), torch.float64: (1e200, 1e-200)}
SHAPES = [(), (7,), (3, 4), (2, 3, 4)]
SHAPE_IDS = ["0-d", "(7,)", "(3, 4)", "(2, 3, 4)"]


# ---------------------------------------------------------------- helpers

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64, scale=1.0):
    return (scale * torch.randn(tuple(shape), generator=_gen(seed), dtype=torch.float64)).to(dtype)


def _tol(dtype, scale=1.0):
    """Tolerances for values of size ~ scale."""
    t = TOL[dtype]
    return dict(atol=t["atol"] * scale, rtol=t["rtol"])


def _inner(a, b):
    return float((a.detach().double() * b.detach().double()).sum())


def _oracle_tangent(nu, g):
    """g − ⟨g, ν⟩ν/‖ν‖², written out in float64 (moderate values only: float64 squares them)."""
    nu, g = nu.detach().double(), g.detach().double()
    n2 = float((nu * nu).sum())
    return g.clone() if n2 == 0 else g - float((g * nu).sum()) / n2 * nu


def _is_like(out, like, what):
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.shape == like.shape and out.dtype == like.dtype, (
        f"expected a tensor of shape {tuple(like.shape)} and dtype {like.dtype}, got {tuple(out.shape)} "
        f"{out.dtype} — {what}")


# ---------------------------------------------------------------- ex06.1 the tangent projection (§1)

def _project(ex, nu, g, what):
    out = call_unchanged(ex.tangent_projection, nu, g, what=what + " (build a new tensor: g − c·u, not g -= …)")
    _is_like(out, g, what)
    return out


@pytest.mark.exercise("ex06.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
def test_projection_matches_the_formula_and_the_reference(ex, shape, dtype):
    nu = _randn(*shape, seed=1, dtype=dtype, scale=3.7)  # ‖ν‖ far from 1: ‖ν‖ and ‖ν‖² differ
    g = _randn(*shape, seed=2, dtype=dtype, scale=2.0)
    what = f"tangent_projection(nu {shape}, g {shape}), {dtype}"
    out = _project(ex, nu, g, what)
    expected = _oracle_tangent(nu, g)
    check_tensor(out, expected.to(dtype), what + ": g − (⟨g, ν⟩/‖ν‖²)·ν, the inner product and the SQUARED "
                 "norm over all entries", **_tol(dtype, 2.0))
    check_tensor(out, ref_tangent(nu, g), what + " compared with clcourse.sphere.tangent", **_tol(dtype, 2.0))
    along = _inner(out, nu) / math.sqrt(_inner(nu, nu))
    bound = (1e-5 if dtype == torch.float32 else 1e-12) * math.sqrt(_inner(g, g))
    assert abs(along) <= bound, (
        f"the result is not orthogonal to ν: its component along ν/‖ν‖ is {along:.3g} — {what}")


@pytest.mark.exercise("ex06.1")
def test_projection_by_hand(ex):
    nu, g = torch.tensor([3.0, 4.0], dtype=torch.float64), torch.tensor([1.0, 2.0], dtype=torch.float64)
    what = "tangent_projection(nu [3, 4], g [1, 2])"
    check_tensor(_project(ex, nu, g, what), torch.tensor([-0.32, 0.24], dtype=torch.float64),
                 what + ": ⟨g, ν⟩ = 11, ‖ν‖² = 25: g − 0.44·ν = [1 − 1.32, 2 − 1.76] (divide by the SQUARED norm "
                 "25, not by ‖ν‖ = 5)", atol=1e-14, rtol=0)
    nu = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    g = torch.tensor([[2.0, 1.0], [0.0, 0.0]], dtype=torch.float64)
    what = "tangent_projection(nu [[1, 0], [0, 1]], g [[2, 1], [0, 0]])"
    check_tensor(_project(ex, nu, g, what), torch.tensor([[1.0, 1.0], [0.0, -1.0]], dtype=torch.float64),
                 what + ": over ALL entries: ⟨g, ν⟩ = 2, ‖ν‖² = 2, g − 1·ν (row by row gives [[0, 1], [0, 0]])",
                 atol=1e-14, rtol=0)


@pytest.mark.exercise("ex06.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_projection_of_parallel_and_orthogonal_vectors(ex, dtype):
    nu = _randn(3, 4, seed=3, dtype=dtype, scale=2.0)
    what = f"tangent_projection(nu (3, 4), g = −2.5·ν), {dtype}"
    check_tensor(_project(ex, nu, -2.5 * nu, what), torch.zeros(3, 4, dtype=dtype),
                 what + ": g parallel to ν has nothing left", atol=1e-5 if dtype == torch.float32 else 1e-13, rtol=0)
    g = _oracle_tangent(nu, _randn(3, 4, seed=4)).to(dtype)  # already ⊥ ν
    what = f"tangent_projection(nu (3, 4), g ⊥ ν), {dtype}"
    out = _project(ex, nu, g, what)
    check_tensor(out, g, what + ": g orthogonal to ν is unchanged", **_tol(dtype))
    assert out.untyped_storage().data_ptr() != g.untyped_storage().data_ptr(), (
        f"the result shares g's memory: return a NEW tensor — {what}")
    what = f"tangent_projection(nu (3, 4), its own result), {dtype}"
    check_tensor(_project(ex, nu, out, what), out, what + ": projecting twice changes nothing", **_tol(dtype))
    what = f"tangent_projection(nu 0-d 2.0, g 0-d −3.0), {dtype}"
    check_tensor(_project(ex, torch.tensor(2.0, dtype=dtype), torch.tensor(-3.0, dtype=dtype), what),
                 torch.tensor(0.0, dtype=dtype), what + ": a 0-d g is always along a non-zero 0-d ν: 0",
                 atol=1e-6, rtol=0)


@pytest.mark.exercise("ex06.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_projection_on_a_zero_nu_returns_g(ex, dtype):
    g = _randn(2, 5, seed=5, dtype=dtype)
    what = f"tangent_projection(nu all zero (2, 5), g), {dtype}"
    out = _project(ex, torch.zeros(2, 5, dtype=dtype), g, what)
    assert not out.isnan().any(), f"NaN in the result: a zero ν has no direction to remove, return g — {what}"
    check_tensor(out, g, what + ": a zero ν removes nothing: g unchanged", atol=0, rtol=0)
    assert out.untyped_storage().data_ptr() != g.untyped_storage().data_ptr(), (
        f"the result shares g's memory: return a copy of g — {what}")


@pytest.mark.exercise("ex06.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_projection_at_extreme_scales(ex, dtype):
    nu, g = _randn(4, 3, seed=6, dtype=dtype), _randn(4, 3, seed=7, dtype=dtype)
    expected = _oracle_tangent(nu, g)
    for s in EXTREME[dtype]:
        what = f"tangent_projection({s:g}·nu (4, 3), g), {dtype}"
        check_tensor(_project(ex, s * nu, g, what), expected.to(dtype),
                     what + ": the projection depends on ν's direction only — ‖ν‖² overflows (or underflows) here: "
                     "divide ν by its largest |entry|, then by the norm of the result", **_tol(dtype))
        what = f"tangent_projection(nu (4, 3), {s:g}·g), {dtype}"
        check_tensor(_project(ex, nu, s * g, what) / s, expected.to(dtype),
                     what + ": the projection is linear in g (result / s shown)", **_tol(dtype))
        what = f"tangent_projection({s:g}·nu (4, 3), {s:g}·g), {dtype}"
        check_tensor(_project(ex, s * nu, s * g, what) / s, expected.to(dtype),
                     what + ": ⟨g, ν⟩ overflows (or underflows) here: take ⟨g, u⟩ with u = ν/‖ν‖ (result / s shown)",
                     **_tol(dtype))


@pytest.mark.exercise("ex06.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_projection_passes_gradients_to_g(ex, dtype):
    nu = _randn(6, seed=8, dtype=dtype, scale=0.3).requires_grad_()  # the direction being searched
    g = _randn(6, seed=9, dtype=dtype).requires_grad_()
    what = f"tangent_projection(nu (6,) requires_grad, g (6,) requires_grad), {dtype}"
    out = _project(ex, nu, g, what)
    assert out.requires_grad, f"the result does not depend on g for autograd: do not detach g — {what}"
    c = _randn(6, seed=10, dtype=dtype)
    (grad,) = torch.autograd.grad((out * c).sum(), g)
    check_tensor(grad, _oracle_tangent(nu, c).to(dtype),
                 what + ": ∂⟨P⊥g, c⟩/∂g = P⊥c (the projection is symmetric)", **_tol(dtype))


@pytest.mark.exercise("ex06.1")
def test_projection_of_non_contiguous_tensors(ex):
    nu, g = _randn(5, 4, seed=11).T, _randn(5, 4, seed=12).T  # (4, 5), transposed
    assert not nu.is_contiguous() and not g.is_contiguous()
    what = "tangent_projection(transposed nu (4, 5), transposed g (4, 5))"
    check_tensor(_project(ex, nu, g, what), _oracle_tangent(nu, g), what, **TOL[torch.float64])


@pytest.mark.exercise("ex06.1")
@pytest.mark.parametrize("shapes", [((3, 4), (12,)), ((3, 4), (4, 3)), ((5,), (4,))], ids=str)
def test_projection_shape_mismatchraises_value_error(ex, shapes):
    raises_value_error(ex.tangent_projection, torch.ones(shapes[0]), torch.ones(shapes[1]),
            what=f"tangent_projection(nu {shapes[0]}, g {shapes[1]}): nu and g must have the same shape")


# ---------------------------------------------------------------- ex06.2 one Riemannian SGD step (§1)

def _oracle_step(nu, grad, buf, lr, momentum, radius):
    """The five lines written out in float64 (moderate values only)."""
    nu, grad = nu.detach().double(), grad.detach().double()
    g = _oracle_tangent(nu, grad)
    b = g if (buf is None or momentum == 0) else momentum * buf.detach().double() + g
    step = nu - lr * b
    new = radius * step / math.sqrt(float((step * step).sum()))
    return new, _oracle_tangent(new, b)


def _step(ex, nu, grad, buf, lr, momentum, radius, what):
    out = call_unchanged(ex.rsgd_step, nu, grad, buf, lr, momentum, radius,
                         what=what + " (ν' = ν − lr·b is a new tensor: not nu -= …)")
    assert isinstance(out, tuple) and len(out) == 2, (
        f"expected a tuple (nu_new, buf_new), got {type(out).__name__} — {what}")
    _is_like(out[0], nu, what + ": nu_new")
    _is_like(out[1], nu, what + ": buf_new")
    return out


def _on_sphere(ex_out, radius, what, dtype):
    new, b = ex_out
    norm = math.sqrt(_inner(new / radius, new / radius)) * radius
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert abs(norm - radius) <= tol * radius, (
        f"‖ν_new‖ = {norm:.8g}, expected the radius {radius:g}: retract r·ν'/‖ν'‖ (onto the sphere of radius r, "
        f"not 1) — {what}")
    along = _inner(b, new) / math.sqrt(_inner(new, new))  # b's component along ν_new/‖ν_new‖
    assert abs(along) <= 1e2 * tol * max(math.sqrt(_inner(b, b)), 1.0), (
        f"buf_new is not tangent at ν_new (its component along ν_new/‖ν_new‖ is {along:.3g}): transport it, "
        f"b − ⟨b, ν_new⟩ν_new/‖ν_new‖² — {what}")


def _point(shape, radius, seed, dtype):
    nu = _randn(*shape, seed=seed)
    return (radius * nu / nu.norm()).to(dtype)


STEP_CASES = {"μ=0.7 first step": (0.7, "none"), "μ=0.7 transported buf": (0.7, "tangent"),
              "μ=0.7 any buf": (0.7, "any"), "μ=0": (0.0, "any")}


@pytest.mark.exercise("ex06.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(5,), (3, 4)], ids=str)
@pytest.mark.parametrize("case", sorted(STEP_CASES))
def test_step_matches_the_formula_and_the_reference(ex, case, shape, dtype):
    momentum, kind = STEP_CASES[case]
    radius, lr = 2.5, 0.3
    nu = _point(shape, radius, seed=20, dtype=dtype)
    grad = _randn(*shape, seed=21, dtype=dtype, scale=3.0)
    buf = {"none": None, "tangent": _oracle_tangent(nu, _randn(*shape, seed=22)).to(dtype),
           "any": _randn(*shape, seed=23, dtype=dtype)}[kind]
    what = (f"rsgd_step(nu {shape} on the sphere r=2.5, grad, buf {'None' if buf is None else kind}, lr=0.3, "
            f"momentum={momentum}, radius=2.5), {dtype}")
    out = _step(ex, nu, grad, buf, lr, momentum, radius, what)
    new, b = _oracle_step(nu, grad, buf, lr, momentum, radius)
    rule = ("b = g (the projected gradient) at the first step" if buf is None else
            "b = g whenever μ = 0" if momentum == 0 else "b = μ·buf + g, buf as given")
    check_tensor(out[0], new.to(dtype), what + f": ν_new = r·ν'/‖ν'‖, ν' = ν − lr·b, {rule}", **_tol(dtype, radius))
    check_tensor(out[1], b.to(dtype), what + f": buf_new = b transported to ν_new, {rule}", **_tol(dtype, 3.0))
    ref = ref_rsgd_step(nu, grad, buf, lr, momentum, radius)
    check_tensor(out[0], ref[0], what + " compared with clcourse.sphere.rsgd_step", **_tol(dtype, radius))
    check_tensor(out[1], ref[1], what + " compared with clcourse.sphere.rsgd_step", **_tol(dtype, 3.0))
    _on_sphere(out, radius, what, dtype)


@pytest.mark.exercise("ex06.2")
def test_two_steps_on_a_circle_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    nu, grad = torch.tensor([2.0, 0.0], **f64), torch.tensor([3.0, 4.0], **f64)
    what = "rsgd_step(nu [2, 0], grad [3, 4], buf None, lr=0.5, momentum=0.9, radius=2)"
    new, b = _step(ex, nu, grad, None, 0.5, 0.9, 2.0, what)
    s = math.sqrt(2)
    check_tensor(new, torch.tensor([s, -s], **f64),
                 what + ": g = [0, 4] (the part of grad across ν); first step: b = g (not 0.9·grad + g, PFCL's raw "
                 "first momentum); ν' = [2, 0] − 0.5·[0, 4] = [2, −2]; ν_new = 2·ν'/‖ν'‖ = [√2, −√2]",
                 atol=1e-14, rtol=0)
    check_tensor(b, torch.tensor([2.0, 2.0], **f64),
                 what + ": b = [0, 4] transported: b − ⟨b, ν_new⟩ν_new/4 = [0, 4] + √2·[√2, −√2] = [2, 2]",
                 atol=1e-14, rtol=0)
    what = "rsgd_step(nu [√2, −√2], grad [1, 0], buf [2, 2], lr=0.5, momentum=0.9, radius=2) (the second step)"
    new2, b2 = _step(ex, new, torch.tensor([1.0, 0.0], **f64), b, 0.5, 0.9, 2.0, what)
    step = torch.tensor([s - 0.5 * 2.3, -s - 0.5 * 2.3], **f64)
    expected = 2 * step / step.norm()
    b_exp = torch.tensor([2.3, 2.3], **f64) - (2.3 * step.sum() * 2 / step.norm()) * expected / 4
    check_tensor(new2, expected,
                 what + f": g = [1, 0] − (√2/4)·[√2, −√2] = [0.5, 0.5]; b = 0.9·[2, 2] + g = [2.3, 2.3]; ν' = ν − 0.5·b; "
                 f"ν_new = 2ν'/‖ν'‖ = [{expected[0]:.6f}, {expected[1]:.6f}]", atol=1e-14, rtol=0)
    check_tensor(b2, b_exp, what + ": buf_new = b − ⟨b, ν_new⟩ν_new/4", atol=1e-14, rtol=0)


@pytest.mark.exercise("ex06.2")
@pytest.mark.parametrize("momentum,lr", [(0.0, 0.1), (0.7, 0.05), (0.9, 5.0)])
def test_many_steps_stay_on_the_sphere_and_match_the_optimiser(ex, momentum, lr):
    radius, dtype = 7.0, torch.float64
    a = _randn(9, 12, seed=30)
    target = _randn(9, seed=31, scale=10.0)
    grad_of = lambda x: a.T @ (a @ x.reshape(-1) - target)  # noqa: E731  ∇ of ½‖A·x − t‖²
    nu = _point((3, 4), radius, seed=32, dtype=dtype)
    param = nu.clone().requires_grad_()
    opt = RiemannianSGD([param], lr=lr, momentum=momentum, radius=radius)
    buf = None
    for i in range(25):
        what = f"rsgd_step, step {i + 1} of 25 on ½‖A·ν − t‖² (ν (3, 4), r=7, lr={lr}, momentum={momentum})"
        out = _step(ex, nu, grad_of(nu).reshape(3, 4), buf, lr, momentum, radius, what)
        _on_sphere(out, radius, what, dtype)
        nu, buf = out[0].detach(), out[1].detach()
        opt.zero_grad()
        param.grad = grad_of(param.detach()).reshape(3, 4)
        opt.step()
        check_tensor(nu, param.detach(), what + ": compared with clcourse.sphere.RiemannianSGD after the same "
                     "steps (pass each step's buf_new to the next)", atol=1e-10, rtol=1e-10)


@pytest.mark.exercise("ex06.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_step_off_the_sphere_and_from_zero(ex, dtype):
    nu = _point((6,), 9.0, seed=40, dtype=dtype)  # ‖ν‖ = 9, the sphere has r = 2
    grad = _randn(6, seed=41, dtype=dtype)
    what = f"rsgd_step(nu (6,) with ‖ν‖ = 9, grad, None, lr=0.2, momentum=0.5, radius=2), {dtype}"
    out = _step(ex, nu, grad, None, 0.2, 0.5, 2.0, what)
    new, b = _oracle_step(nu, grad, None, 0.2, 0.5, 2.0)
    check_tensor(out[0], new.to(dtype), what + ": the retraction brings a point off the sphere onto it", **_tol(dtype))
    _on_sphere(out, 2.0, what, dtype)
    what = f"rsgd_step(nu all zero (6,), grad, None, lr=0.2, momentum=0.5, radius=2), {dtype}"
    out = _step(ex, torch.zeros(6, dtype=dtype), grad, None, 0.2, 0.5, 2.0, what)
    check_tensor(out[0], (-2.0 * grad.double() / grad.double().norm()).to(dtype),
                 what + ": a zero ν removes nothing from grad: ν' = −lr·grad, ν_new = −2·grad/‖grad‖", **_tol(dtype))
    _on_sphere(out, 2.0, what, dtype)
    raises_value_error(ex.rsgd_step, torch.zeros(6, dtype=dtype), torch.zeros(6, dtype=dtype), None, 0.2, 0.5, 2.0,
            what="rsgd_step(nu all zero, grad all zero, None, ...): ν' = 0 has no direction to retract")


@pytest.mark.exercise("ex06.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_step_scales_with_the_sphere(ex, dtype):
    nu = _point((4, 3), 1.5, seed=50, dtype=dtype)
    grad = _randn(4, 3, seed=51, dtype=dtype)
    buf = _oracle_tangent(nu, _randn(4, 3, seed=52)).to(dtype)
    new, b = _oracle_step(nu, grad, buf, 0.4, 0.8, 1.5)
    for s in EXTREME[dtype]:
        what = (f"rsgd_step({s:g}·nu (4, 3), {s:g}·grad, {s:g}·buf, lr=0.4, momentum=0.8, radius={s:g}·1.5), "
                f"{dtype}")
        out = _step(ex, s * nu, s * grad, s * buf, 0.4, 0.8, s * 1.5, what)
        check_tensor(out[0] / s, new.to(dtype),
                     what + ": the step on a sphere s times larger, with s times larger gradients, is s times the step "
                     "at s = 1 (result / s shown) — ‖ν'‖² overflows (or underflows) here: divide ν' by its largest "
                     "|entry| before taking its norm", **_tol(dtype))
        check_tensor(out[1] / s, b.to(dtype), what + ": buf_new / s", **_tol(dtype))


@pytest.mark.exercise("ex06.2")
def test_step_with_momentum_zero_ignores_buf(ex):
    nu, grad = _point((5,), 3.0, seed=60, dtype=torch.float64), _randn(5, seed=61)
    what = "rsgd_step(nu (5,), grad, buf = 1e6·[1, …], lr=0.1, momentum=0, radius=3)"
    out = _step(ex, nu, grad, torch.full((5,), 1e6, dtype=torch.float64), 0.1, 0.0, 3.0, what)
    expected = _oracle_step(nu, grad, None, 0.1, 0.0, 3.0)
    check_tensor(out[0], expected[0], what + ": with μ = 0, b = g whatever buf is", atol=1e-12, rtol=1e-12)
    check_tensor(out[1], expected[1], what, atol=1e-12, rtol=1e-12)


@pytest.mark.exercise("ex06.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_step_leaves_the_searched_direction_as_it_is(ex, dtype):
    nu = _point((2, 5), 4.0, seed=62, dtype=dtype).requires_grad_()  # LFD's ν: a leaf that gets gradients
    grad, buf = _randn(2, 5, seed=63, dtype=dtype), _randn(2, 5, seed=64, dtype=dtype)
    what = f"rsgd_step(nu (2, 5) requires_grad, grad, buf, lr=0.1, momentum=0.9, radius=4), {dtype}"
    out = _step(ex, nu, grad, buf, 0.1, 0.9, 4.0, what)
    new, b = _oracle_step(nu, grad, buf, 0.1, 0.9, 4.0)
    check_tensor(out[0], new.to(dtype), what, **_tol(dtype, 4.0))
    check_tensor(out[1], b.to(dtype), what, **_tol(dtype, 4.0))


@pytest.mark.exercise("ex06.2")
def test_step_shape_mismatchraises_value_error(ex):
    raises_value_error(ex.rsgd_step, torch.ones(3, 4), torch.ones(12), None, 0.1, 0.5, 1.0,
            what="rsgd_step(nu (3, 4), grad (12,), ...): grad must have nu's shape")


# ---------------------------------------------------------------- ex06.3 the orthogonal penalty (§2)

def _oracle_penalty(delta, nu):
    return sum(float((_oracle_tangent(v, d) ** 2).sum()) for d, v in zip(delta, nu)) / 2


def _penalty(ex, delta, nu, what):
    out = call_unchanged(ex.orthogonal_penalty, delta, nu, what=what)
    assert isinstance(out, torch.Tensor), f"expected a 0-d torch.Tensor, got {type(out).__name__} {out!r} — {what}"
    assert out.dim() == 0, f"expected a 0-d tensor, got shape {tuple(out.shape)} — {what}"
    assert out.dtype == delta[0].dtype, f"expected dtype {delta[0].dtype}, got {out.dtype} — {what}"
    return out


NET_SHAPES = [(4, 3), (4,), (2, 4), (2,), ()]


def _pieces(seed, dtype, scale=1.0, shapes=NET_SHAPES):
    return [_randn(*s, seed=seed + i, dtype=dtype, scale=scale) for i, s in enumerate(shapes)]


@pytest.mark.exercise("ex06.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_penalty_matches_the_formula_and_the_reference(ex, dtype):
    delta, nu = _pieces(70, dtype, 0.5), _pieces(80, dtype, 2.0)
    what = f"orthogonal_penalty(delta, nu: 5 tensors of shapes {NET_SHAPES}), {dtype}"
    out = _penalty(ex, delta, nu, what)
    expected = _oracle_penalty(delta, nu)
    check_tensor(out, torch.tensor(expected, dtype=dtype),
                 what + ": (1/2)·Σ_l ‖P⊥_{ν_l} δ_l‖², each δ_l projected with its own ν_l", **_tol(dtype))
    check_tensor(out, ref_orthogonal_penalty(delta, nu, "tensor"),
                 what + " compared with clcourse.methods.lfd.orthogonal_penalty(delta, nu, 'tensor')", **_tol(dtype))


@pytest.mark.exercise("ex06.3")
def test_penalty_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    delta, nu = [torch.tensor([1.0, 2.0], **f64)], [torch.tensor([3.0, 4.0], **f64)]
    what = "orthogonal_penalty([[1, 2]], [[3, 4]])"
    check_tensor(_penalty(ex, delta, nu, what), torch.tensor(0.08, **f64),
                 what + ": P⊥δ = [1, 2] − (11/25)·[3, 4] = [−0.32, 0.24], ‖P⊥δ‖² = 0.16, times 1/2", atol=1e-15, rtol=0)
    delta.append(torch.tensor([2.0], **f64))
    nu.append(torch.tensor([5.0], **f64))
    what = "orthogonal_penalty([[1, 2], [2]], [[3, 4], [5]])"
    check_tensor(_penalty(ex, delta, nu, what), torch.tensor(0.08, **f64),
                 what + ": per tensor: [2] lies along [5], its term is 0; total 0.08 (one projection of the flattened "
                 "[1, 2, 2] on [3, 4, 5] would give 0.09; (1/2)‖δ‖² would give 4.5)", atol=1e-15, rtol=0)


@pytest.mark.exercise("ex06.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_penalty_per_tensor_along_across_and_zero(ex, dtype):
    nu = _pieces(90, dtype)
    coef = [1.5, -2.0, 0.3, 4.0, -1.0]
    delta = [c * v for c, v in zip(coef, nu)]
    what = f"orthogonal_penalty(delta_l = c_l·ν_l with different c_l, nu: 5 tensors), {dtype}"
    check_tensor(_penalty(ex, delta, nu, what), torch.tensor(0.0, dtype=dtype),
                 what + ": each δ_l lies along its own ν_l: nothing to pay, tensor by tensor (projecting all tensors "
                 "flattened together would not give 0)", atol=1e-6 if dtype == torch.float32 else 1e-13, rtol=0)
    across = [_oracle_tangent(v, _randn(*v.shape, seed=100 + i)).to(dtype) for i, v in enumerate(nu)]
    what = f"orthogonal_penalty(delta_l ⊥ ν_l, nu: 5 tensors), {dtype}"
    check_tensor(_penalty(ex, across, nu, what), torch.tensor(sum(_inner(d, d) for d in across) / 2, dtype=dtype),
                 what + ": each δ_l is across its ν_l: the whole of (1/2)·Σ‖δ_l‖²", **_tol(dtype))
    zero = [torch.zeros_like(v) if i in (0, 3) else v for i, v in enumerate(nu)]
    delta = _pieces(110, dtype)
    what = f"orthogonal_penalty(delta, nu with ν_0 and ν_3 all zero), {dtype}"
    check_tensor(_penalty(ex, delta, zero, what), torch.tensor(_oracle_penalty(delta, zero), dtype=dtype),
                 what + ": a zero ν_l removes nothing: its term is (1/2)·‖δ_l‖² (not NaN)", **_tol(dtype))


@pytest.mark.exercise("ex06.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_penalty_gradient_is_the_projected_step(ex, dtype):
    layer = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2)).to(dtype)
    params = list(layer.parameters())
    w_hat = [p.detach() + _randn(*p.shape, seed=120 + i, dtype=dtype, scale=0.1) for i, p in enumerate(params)]
    nu = _pieces(130, dtype, shapes=[tuple(p.shape) for p in params])
    delta = [p - w for p, w in zip(params, w_hat)]  # the graph leads back to the layer's parameters
    what = f"orthogonal_penalty(delta = [p − ŵ] for the parameters p of a small network, nu), {dtype}"
    out = _penalty(ex, delta, nu, what)
    assert out.requires_grad, (
        f"the penalty does not depend on delta for autograd: no .item(), no detach, no torch.no_grad() — {what}")
    grads = torch.autograd.grad(out, params)
    for i, (grad, d, v) in enumerate(zip(grads, delta, nu)):
        check_tensor(grad, _oracle_tangent(v, d).to(dtype),
                     what + f": ∂penalty/∂p_{i} = P⊥_ν{i} δ_{i} (what DCD adds to the gradient, without κ)", **_tol(dtype))
    leaves = [d.detach().clone().requires_grad_() for d in delta]
    what = f"orthogonal_penalty(delta leaves with requires_grad=True, nu), {dtype}"
    grads = torch.autograd.grad(_penalty(ex, leaves, nu, what), leaves)
    for i, (grad, d, v) in enumerate(zip(grads, leaves, nu)):
        check_tensor(grad, _oracle_tangent(v, d).to(dtype), what + f": ∂penalty/∂δ_{i} = P⊥ δ_{i}", **_tol(dtype))


@pytest.mark.exercise("ex06.3")
def test_penalty_with_extreme_directions(ex):
    dtype = torch.float32
    delta, nu = _pieces(140, dtype), _pieces(150, dtype, 3.0)
    expected = _oracle_penalty(delta, nu)
    scales = [1e20, 1e-25, 1.0, 1e-20, 1e20]
    huge_tiny = [s * v for s, v in zip(scales, nu)]
    what = "orthogonal_penalty(delta, nu with pieces scaled 1e20, 1e-25, 1, 1e-20, 1e20), float32"
    check_tensor(_penalty(ex, delta, huge_tiny, what), torch.tensor(expected, dtype=dtype),
                 what + ": each projection depends on ν_l's direction only — ‖ν_l‖² overflows (or underflows) here: "
                 "normalise ν_l as in ex06.1", **_tol(dtype))


@pytest.mark.exercise("ex06.3")
def test_penalty_mismatchraises_value_error(ex):
    delta, nu = _pieces(160, torch.float64), _pieces(170, torch.float64)
    raises_value_error(ex.orthogonal_penalty, delta, nu[:-1],
            what="orthogonal_penalty(5 tensors in delta, 4 in nu): the lists must have the same length")
    raises_value_error(ex.orthogonal_penalty, delta[:2], [nu[0].reshape(-1), nu[1]],
            what="orthogonal_penalty(delta [(4, 3), (4,)], nu [(12,), (4,)]): δ_l and ν_l must have the same shape")


# ---------------------------------------------------------------- ex06.4 the equilibrium point's segment and slope (§3)

def ref_slope(w_hat, w, lam, loss_fn):
    """The reference slope: clcourse.methods.lfd.interpolate_and_slope."""
    return ref_interpolate_and_slope(w_hat, w, lam, loss_fn)[1]


def _segment(ex, w_hat, w, lam, loss_fn, what):
    out = call_unchanged(ex.interpolate_and_slope, w_hat, w, lam, loss_fn,
                         what=what + " (make your own λ tensor: lam.requires_grad_() changes the caller's)")
    assert isinstance(out, tuple) and len(out) == 2, (
        f"expected a tuple (weights, slope), got {type(out).__name__} — {what}")
    weights, slope = out
    assert isinstance(weights, (list, tuple)) and len(weights) == len(w), (
        f"expected weights as a list of {len(w)} tensors, got {type(weights).__name__} — {what}")
    for i, (x, like) in enumerate(zip(weights, w)):
        _is_like(x, like, what + f": weights[{i}]")
    assert isinstance(slope, torch.Tensor) and slope.dim() == 0, (
        f"expected the slope as a 0-d tensor, got {type(slope).__name__} {slope!r} — {what}")
    assert slope.dtype == w[0].dtype, f"expected the slope of dtype {w[0].dtype}, got {slope.dtype} — {what}"
    assert not slope.requires_grad, f"return the slope detached (requires_grad False) — {what}"
    return weights, slope


def _quadratic(c, d):
    """L(x) = Σ_l ⟨c_l, x_l⟩ + (1/2)·Σ_l ‖d_l ⊙ x_l‖², whose gradient is c_l + d_l² ⊙ x_l."""
    return lambda xs: sum((ci * x).sum() + 0.5 * (di * x).pow(2).sum() for ci, di, x in zip(c, d, xs))


def _oracle_quadratic_slope(w_hat, w, lam, c, d):
    total = 0.0
    for a, b, ci, di in zip(w_hat, w, c, d):
        a, b, ci, di = (t.detach().double() for t in (a, b, ci, di))
        x = (1 - lam) * a + lam * b
        total += float(((ci + di ** 2 * x) * (b - a)).sum())
    return total


@pytest.mark.exercise("ex06.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("lam", [0.5, 0.0, 1.0, 0.23, -0.4, 1.7])
def test_segment_and_slope_match_the_chain_rule_and_the_reference(ex, lam, dtype):
    w_hat, w = _pieces(200, dtype), _pieces(210, dtype)
    c, d = _pieces(220, dtype), _pieces(230, dtype)
    loss_fn = _quadratic(c, d)
    what = f"interpolate_and_slope(w_hat, w: 5 tensors of shapes {NET_SHAPES}, lam={lam}, a quadratic loss), {dtype}"
    weights, slope = _segment(ex, w_hat, w, lam, loss_fn, what)
    for i, (x, a, b) in enumerate(zip(weights, w_hat, w)):
        check_tensor(x, ((1 - lam) * a.double() + lam * b.double()).to(dtype),
                     what + f": weights[{i}] = (1 − λ)·ŵ + λ·w (λ = 0 gives ŵ, λ = 1 gives w)", **_tol(dtype))
    for i, (x, r) in enumerate(zip(weights, ref_interpolate(w_hat, w, lam))):
        check_tensor(x, r, what + f": weights[{i}] compared with clcourse.methods.lfd.interpolate", **_tol(dtype))
    expected = _oracle_quadratic_slope(w_hat, w, lam, c, d)
    check_tensor(slope, torch.tensor(expected, dtype=dtype),
                 what + ": dL/dλ = Σ_l ⟨∇L(w(λ))_l, w_l − ŵ_l⟩, the gradient c + d²⊙x taken AT w(λ), along w − ŵ",
                 **_tol(dtype, 10.0))
    check_tensor(slope, ref_slope(w_hat, w, lam, loss_fn),
                 what + ": compared with autograd on a scalar λ tensor through clcourse.methods.lfd.interpolate",
                 **_tol(dtype, 10.0))


@pytest.mark.exercise("ex06.4")
def test_segment_and_slope_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    what = "interpolate_and_slope([[0]], [[2]], lam=0.25, L(x) = Σ x²)"
    weights, slope = _segment(ex, [torch.tensor([0.0], **f64)], [torch.tensor([2.0], **f64)], 0.25,
                              lambda xs: (xs[0] ** 2).sum(), what)
    check_tensor(weights[0], torch.tensor([0.5], **f64), what + ": w(λ) = 0.75·0 + 0.25·2", atol=1e-15, rtol=0)
    check_tensor(slope, torch.tensor(2.0, **f64),
                 what + ": L(w(λ)) = (2λ)² = 4λ², dL/dλ = 8λ = 2 (∇L = 2·0.5 = 1 at w(λ), times w − ŵ = 2; at w "
                 "it would be 8, along ŵ − w −2)", atol=1e-14, rtol=0)
    w_hat = [torch.tensor([1.0, 0.0], **f64), torch.tensor([3.0], **f64)]
    w = [torch.tensor([1.0, 2.0], **f64), torch.tensor([1.0], **f64)]
    what = "interpolate_and_slope([[1, 0], [3]], [[1, 2], [1]], lam=0.5, L = ‖x_0‖² + 3·x_1)"
    weights, slope = _segment(ex, w_hat, w, 0.5, lambda xs: (xs[0] ** 2).sum() + 3 * xs[1].sum(), what)
    check_tensor(weights[0], torch.tensor([1.0, 1.0], **f64), what + ": weights[0] = [1, 1]", atol=1e-15, rtol=0)
    check_tensor(weights[1], torch.tensor([2.0], **f64), what + ": weights[1] = [2]", atol=1e-15, rtol=0)
    check_tensor(slope, torch.tensor(-2.0, **f64),
                 what + ": ∇L at w(λ) = ([2, 2], [3]); w − ŵ = ([0, 2], [−2]); Σ over BOTH tensors: 4 − 6 = −2",
                 atol=1e-14, rtol=0)


def _network_loss(x, y):
    """The cross-entropy of a 2-layer network whose weights are given as a list [W1, b1, W2, b2]."""
    def loss(ws):
        h = torch.tanh(x @ ws[0].T + ws[1])
        return torch.nn.functional.cross_entropy(h @ ws[2].T + ws[3], y)
    return loss


@pytest.mark.exercise("ex06.4")
@pytest.mark.parametrize("lam", [0.5, 0.9, -0.2])
def test_slope_against_finite_differences(ex, lam):
    net = torch.nn.Sequential(torch.nn.Linear(5, 6), torch.nn.Tanh(), torch.nn.Linear(6, 3)).double()
    w = list(net.parameters())  # nn.Parameters: requires_grad=True
    w_hat = [p.detach() + _randn(*p.shape, seed=240 + i, scale=0.5) for i, p in enumerate(w)]
    loss_fn = _network_loss(_randn(20, 5, seed=250), torch.randint(0, 3, (20,), generator=_gen(251)))
    what = f"interpolate_and_slope(w_hat, w = a network's parameters (requires_grad), lam={lam}, its cross-entropy)"
    _, slope = _segment(ex, w_hat, w, lam, loss_fn, what)
    h = 1e-5
    with torch.no_grad():
        up = loss_fn(ref_interpolate(w_hat, w, lam + h))
        down = loss_fn(ref_interpolate(w_hat, w, lam - h))
    fd = float(up - down) / (2 * h)
    check_tensor(slope, torch.tensor(fd, dtype=torch.float64),
                 what + f": the central difference (L(w(λ + h)) − L(w(λ − h)))/2h with h = 1e-5 is {fd:.8f}",
                 atol=1e-7, rtol=1e-6)
    assert all(p.grad is None for p in w), (
        f"your function wrote into the .grad of w's parameters: use torch.autograd.grad, not .backward() — {what}")


@pytest.mark.exercise("ex06.4")
@pytest.mark.parametrize("requires_grad", [False, True])
def test_lam_as_a_tensor(ex, requires_grad):
    w_hat, w = _pieces(260, torch.float64), _pieces(270, torch.float64)
    c, d = _pieces(280, torch.float64), _pieces(290, torch.float64)
    lam = torch.tensor(0.35, dtype=torch.float64, requires_grad=requires_grad)
    what = f"interpolate_and_slope(w_hat, w, lam = a 0-d tensor 0.35 (requires_grad={requires_grad}), a quadratic)"
    weights, slope = _segment(ex, w_hat, w, lam, _quadratic(c, d), what)
    check_tensor(slope, torch.tensor(_oracle_quadratic_slope(w_hat, w, 0.35, c, d), dtype=torch.float64),
                 what, atol=1e-12, rtol=1e-12)
    check_tensor(weights[0], 0.65 * w_hat[0] + 0.35 * w[0], what + ": weights[0]", atol=1e-14, rtol=1e-14)


@pytest.mark.exercise("ex06.4")
def test_segment_lists_differraises_value_error(ex):
    w_hat, w = _pieces(300, torch.float64), _pieces(310, torch.float64)
    raises_value_error(ex.interpolate_and_slope, w_hat, w[:-1], 0.5, _quadratic(w, w),
            what="interpolate_and_slope(5 tensors in w_hat, 4 in w, ...): the lists must have the same length")
