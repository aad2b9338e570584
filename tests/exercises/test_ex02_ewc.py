"""Grading tests of lesson 02 (EWC from Bayes, Laplace and the Fisher; online EWC and SI): ex02.1–ex02.6.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse` (`clcourse.laplace`, `clcourse.fisher`,
`clcourse.penalties`, `clcourse.methods.ewc`, `clcourse.methods.si`), with independent oracles (closed
forms, `torch.autograd`, `torch.func` per-example gradients, Hessians, an SGD run on a quadratic) and
with properties the result must have whatever the implementation.
"""
import math

import pytest
import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap

from clcourse import fisher as ref_fisher
from clcourse.data.scenarios import TensorSet
from clcourse.laplace import laplace_variance as ref_laplace_variance
from clcourse.methods.ewc import online_fisher as ref_online_fisher
from clcourse.methods.si import path_importance as ref_path_importance
from clcourse.penalties import ewc_penalty as ref_ewc_penalty

from checks import call_unchanged, check_tensor

EXERCISE_MODULE = "ex02_ewc"


# ---------------------------------------------------------------- helpers

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(tuple(shape), generator=_gen(seed), dtype=dtype)


def _rand(*shape, seed=0, dtype=torch.float64):
    return torch.rand(tuple(shape), generator=_gen(seed), dtype=dtype)



def check_dict(actual, expected, what, atol=None, rtol=None):
    """Assert that `actual` is a dict with `expected`'s names, each tensor like `expected`'s."""
    assert isinstance(actual, dict), f"expected a dict {{name: tensor}}, got {type(actual).__name__} — {what}"
    assert set(actual) == set(expected), (
        f"expected the names {sorted(expected)}, got {sorted(actual)} — {what}")
    for name in expected:
        check_tensor(actual[name], expected[name], f"{name!r} of {what}", atol=atol, rtol=rtol)


def _clones(d):
    return {n: v.detach().clone() for n, v in d.items()}


def _untouched(before, after, what):
    for n in before:
        assert torch.equal(before[n], after[n]), f"the input tensor {n!r} was modified in place — {what}"


# ---------------------------------------------------------------- ex02.1 Laplace variance (§2)

def _strict(log_density):
    """log_density, checking that it is called as the exercise says: on a 0-d float64 tensor."""
    def wrapped(t):
        assert isinstance(t, torch.Tensor) and t.dim() == 0 and t.dtype == torch.float64, (
            "laplace_variance must call log_density with a 0-d float64 tensor θ, got "
            f"{type(t).__name__} {getattr(t, 'dtype', '')} {tuple(getattr(t, 'shape', ()))}")
        return log_density(t)
    return wrapped


def gaussian(mu, var):
    return _strict(lambda t: -(t - mu) ** 2 / (2 * var) - 0.5 * math.log(2 * math.pi * var))


def gamma_density(k, beta):  # Gamma(shape k, rate β): mode (k − 1)/β, (log p)'' = −(k − 1)/θ²
    return _strict(lambda t: (k - 1) * torch.log(t) - beta * t + k * math.log(beta) - math.lgamma(k))


def beta_density(a, b):  # Beta(a, b): mode (a − 1)/(a + b − 2), (log p)'' = −(a−1)/θ² − (b−1)/(1−θ)²
    return _strict(lambda t: (a - 1) * torch.log(t) + (b - 1) * torch.log1p(-t))


def student_t(nu):  # at its mode 0: (log p)'' = −(ν + 1)/ν, so σ² = ν/(ν + 1) (true variance ν/(ν − 2))
    return _strict(lambda t: -(nu + 1) / 2 * torch.log1p(t ** 2 / nu))


def _variance(ex, log_density, theta_star, what):
    out = ex.laplace_variance(log_density, theta_star)
    assert isinstance(out, torch.Tensor), (
        f"expected a 0-d float64 tensor, got {type(out).__name__} {out!r} — {what}")
    assert out.dim() == 0 and out.dtype == torch.float64, (
        f"expected a 0-d float64 tensor, got dtype {out.dtype} and shape {tuple(out.shape)} — {what}")
    return out


def _exact(expected):
    return torch.tensor(expected, dtype=torch.float64)


# autograd is exact to rounding; a finite difference is not (its error is ~h² or ~1e-16/h²)
EXACT = dict(rtol=1e-10, atol=0.0)


@pytest.mark.exercise("ex02.1")
@pytest.mark.parametrize("mu,var", [(0.0, 1.0), (1.5, 0.25), (-3.0, 7.0)])
def test_laplace_gaussian_gives_its_own_variance(ex, mu, var):
    what = f"laplace_variance(log N(θ; {mu}, {var}), θ* = {mu})"
    out = _variance(ex, gaussian(mu, var), mu, what)
    check_tensor(out, _exact(var), what + " (a Gaussian's Laplace fit is itself)", **EXACT)
    check_tensor(out, ref_laplace_variance(gaussian(mu, var), mu), what + " compared with the reference",
                 **EXACT)


@pytest.mark.exercise("ex02.1")
@pytest.mark.parametrize("k,beta", [(3.0, 2.0), (10.0, 0.5), (1.5, 4.0)])
def test_laplace_gamma_closed_form(ex, k, beta):
    mode = (k - 1) / beta
    what = f"laplace_variance(log Gamma(θ; k={k}, rate={beta}), θ* = mode {mode:g})"
    out = _variance(ex, gamma_density(k, beta), torch.tensor(mode, dtype=torch.float64), what)
    check_tensor(out, _exact((k - 1) / beta ** 2),
                 what + ": −1/(log p)''(θ*) = θ*²/(k − 1) = (k − 1)/β²", **EXACT)
    check_tensor(out, ref_laplace_variance(gamma_density(k, beta), mode), what + " compared with the reference",
                 **EXACT)


@pytest.mark.exercise("ex02.1")
@pytest.mark.parametrize("a,b", [(2.0, 5.0), (30.0, 4.0)])
def test_laplace_beta_closed_form(ex, a, b):
    mode = (a - 1) / (a + b - 2)
    expected = 1 / ((a - 1) / mode ** 2 + (b - 1) / (1 - mode) ** 2)
    what = f"laplace_variance(log Beta(θ; {a}, {b}), θ* = mode {mode:.4g})"
    out = _variance(ex, beta_density(a, b), mode, what)
    check_tensor(out, _exact(expected), what + ": 1 / ((a−1)/θ*² + (b−1)/(1−θ*)²)", **EXACT)
    check_tensor(out, ref_laplace_variance(beta_density(a, b), mode), what + " compared with the reference",
                 **EXACT)


@pytest.mark.exercise("ex02.1")
def test_laplace_is_exact_on_heavy_tails_and_quartics(ex):
    for nu in (1.0, 3.0):
        what = f"laplace_variance(log Student-t(ν={nu}), θ* = 0)"
        check_tensor(_variance(ex, student_t(nu), 0.0, what), _exact(nu / (nu + 1)),
                     what + ": ν/(ν + 1), from the curvature at 0 alone", **EXACT)
    quartic = _strict(lambda t: -(t - 1) ** 4 / 4 - (t - 1) ** 2 / 2)  # (log p)'' = −3(θ−1)² − 1
    what = "laplace_variance(−(θ−1)⁴/4 − (θ−1)²/2, θ* = 1)"
    check_tensor(_variance(ex, quartic, 1.0, what), _exact(1.0),
                 what + ": exactly 1 (a finite difference with step h gives 1/(1 + h²/2))", **EXACT)


@pytest.mark.exercise("ex02.1")
def test_laplace_accepts_floats_and_tensors_of_any_dtype(ex):
    k, beta = 4.0, 3.0
    mode = (k - 1) / beta
    expected = _exact((k - 1) / beta ** 2)
    for theta_star in (mode, torch.tensor(mode, dtype=torch.float64), torch.tensor(mode, dtype=torch.float32),
                       torch.tensor(mode, dtype=torch.float64, requires_grad=True)):
        kind = (type(theta_star).__name__ if not isinstance(theta_star, torch.Tensor) else
                f"a 0-d {theta_star.dtype} tensor" + (" that requires grad" if theta_star.requires_grad else ""))
        what = f"laplace_variance(log Gamma(θ; 4, 3), θ* given as {kind})"
        before = theta_star.detach().clone() if isinstance(theta_star, torch.Tensor) else None
        out = _variance(ex, gamma_density(k, beta), theta_star, what)
        # θ* = 1 rounded to float32 is still 1: the float32 tensor must give the float64 answer too
        check_tensor(out, expected, what, **EXACT)
        if before is not None:
            assert torch.equal(theta_star.detach(), before), f"θ* was modified in place — {what}"


@pytest.mark.exercise("ex02.1")
def test_laplace_ignores_the_constant_and_scales_with_the_variable(ex):
    base = gamma_density(5.0, 2.0)
    mode, var = 2.0, 1.0
    what = "laplace_variance(log Gamma(θ; 5, 2) + 100, θ* = 2)"
    check_tensor(_variance(ex, _strict(lambda t: base(t) + 100.0), mode, what), _exact(var),
                 what + ": an additive constant (the normaliser) does not change the curvature", **EXACT)
    for c in (0.1, 3.0):  # θ' = c θ has density ∝ p(θ'/c): its Laplace variance is c² σ²
        what = f"laplace_variance(θ ↦ log p(θ/{c}), θ* = {c}·2) for p = Gamma(5, 2)"
        check_tensor(_variance(ex, _strict(lambda t: base(t / c)), c * mode, what), _exact(c * c * var),
                     what + ": stretching θ by c multiplies σ² by c²", **EXACT)


@pytest.mark.exercise("ex02.1")
@pytest.mark.parametrize("case", ["upward parabola", "trough of a two-bump mixture", "flat quartic"])
def test_laplace_not_a_maximum_raises_value_error(ex, case):
    log_density, theta = {
        "upward parabola": (_strict(lambda t: t ** 2 / 2), 0.0),                       # (log p)'' = +1
        "trough of a two-bump mixture": (_strict(lambda t: torch.logaddexp(-(t - 2) ** 2 / 2,
                                                                           -(t + 2) ** 2 / 2)), 0.0),  # +3
        "flat quartic": (_strict(lambda t: -t ** 4), 0.0),                              # (log p)'' = 0
    }[case]
    with pytest.raises(ValueError):
        ex.laplace_variance(log_density, theta)
        pytest.fail(f"laplace_variance at the {case}'s θ = 0 must raise ValueError: (log p)''(θ) ≥ 0 there, "
                    "so θ is not a maximum and there is no Laplace fit")


@pytest.mark.exercise("ex02.1")
def test_laplace_float32_mode_is_used_in_float64(ex):
    k, beta = 3.0, 20.0
    mode32 = torch.tensor((k - 1) / beta, dtype=torch.float32)  # 0.1 is not exact in float32
    theta = mode32.double()                                      # the float64 value the exercise must use
    what = "laplace_variance(log Gamma(θ; 3, 20), θ* = 0.1 given as a float32 tensor)"
    out = call_unchanged(ex.laplace_variance, gamma_density(k, beta), mode32, what=what)
    check_tensor(out, theta ** 2 / (k - 1),
                 what + ": −1/(log p)''(θ*) = θ*²/(k − 1), with θ* converted to float64 BEFORE "
                 "differentiating (float32 arithmetic is off by ~1e-7)", **EXACT)


@pytest.mark.exercise("ex02.1")
@pytest.mark.parametrize("var", [1e-200, 1e-12, 1e12, 1e200])
def test_laplace_extreme_curvatures(ex, var):
    what = f"laplace_variance(log N(θ; 0.5, {var:g}), θ* = 0.5)"
    out = call_unchanged(ex.laplace_variance, gaussian(0.5, var), torch.tensor(0.5, dtype=torch.float64,
                                                                                  requires_grad=True), what=what)
    check_tensor(out, _exact(var), what + ": exactly the variance, however sharp or flat", **EXACT)


# ---------------------------------------------------------------- ex02.4 empirical Fisher diagonal (§5)

def _grads(N=9, seed=0, dtype=torch.float64):
    """Per-example gradients of a weight, a bias and a scalar parameter, (N, *shape) each."""
    return {"fc.weight": _randn(N, 3, 4, seed=seed, dtype=dtype),
            "fc.bias": _randn(N, 3, seed=seed + 1, dtype=dtype) + 0.5,
            "temperature": _randn(N, seed=seed + 2, dtype=dtype)}


def _empirical(ex, grads, what):
    out = ex.empirical_fisher_diagonal(grads)
    assert isinstance(out, dict), f"expected a dict {{name: tensor}}, got {type(out).__name__} — {what}"
    return out


@pytest.mark.exercise("ex02.4")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_empirical_fisher_is_the_mean_of_squares(ex, dtype):
    g = _grads(dtype=dtype)
    before = _clones(g)
    what = "empirical_fisher_diagonal(grads) with N = 9 examples"
    out = _empirical(ex, g, what)
    expected = {n: (v ** 2).mean(dim=0) for n, v in before.items()}
    check_dict(out, expected, what + ": (1/N) Σ_n g_n², one tensor of the parameter's shape per name")
    _untouched(before, g, what)


@pytest.mark.exercise("ex02.4")
def test_empirical_fisher_of_an_mlp_matches_clcourse(ex):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).double()
    N = 32
    x, y = _randn(N, 6, seed=1), torch.randint(0, 4, (N,), generator=_gen(2))
    params = {n: p.detach() for n, p in model.named_parameters()}

    def log_lik(p, x1, y1):  # log p(y|x) of one example
        return torch.log_softmax(functional_call(model, p, (x1[None],)), dim=1)[0].gather(0, y1[None])[0]
    per_sample = vmap(grad(log_lik), in_dims=(None, 0, 0))(params, x, y)  # {name: (N, *shape)}
    what = "empirical_fisher_diagonal(per-example gradients of a 6-8-4 MLP, torch.func)"
    out = _empirical(ex, per_sample, what)
    expected = ref_fisher.diagonal_fisher(model, TensorSet(x, y, torch.zeros(N, dtype=torch.long)),
                                          kind="empirical")
    check_dict(out, expected, what + " compared with clcourse.fisher.diagonal_fisher(kind='empirical')",
               atol=1e-12, rtol=1e-9)


@pytest.mark.exercise("ex02.4")
def test_empirical_fisher_is_not_the_square_of_the_mean_gradient(ex):
    g = _grads(N=5, seed=3)
    paired = {n: torch.cat([v, -v]) for n, v in g.items()}  # every gradient and its opposite: mean 0
    what = "empirical_fisher_diagonal of 10 gradients g_1..g_5, −g_1..−g_5 (their MEAN is 0)"
    check_dict(_empirical(ex, paired, what), {n: (v ** 2).mean(0) for n, v in g.items()},
               what + ": the mean of the squares is not 0 (squaring the mean gradient is the 'batched' kind)")
    what = "empirical_fisher_diagonal of −g (the loss's gradients instead of the log-likelihood's)"
    check_dict(_empirical(ex, {n: -v for n, v in g.items()}, what), _empirical(ex, g, what),
               what + ": squaring removes the sign")
    one = {n: v[:1] for n, v in g.items()}
    what = "empirical_fisher_diagonal of one example (N = 1)"
    check_dict(_empirical(ex, one, what), {n: v[0] ** 2 for n, v in one.items()}, what + ": g_1²")


@pytest.mark.exercise("ex02.4")
def test_empirical_fisher_is_an_average_not_a_sum(ex):
    g = _grads(N=7, seed=4)
    twice = {n: torch.cat([v, v]) for n, v in g.items()}
    what = "empirical_fisher_diagonal of the same 7 gradients listed twice (N = 14)"
    check_dict(_empirical(ex, twice, what), _empirical(ex, g, what),
               what + ": a mean over examples does not grow with N (a sum would double)")
    shuffled = {n: v[torch.randperm(7, generator=_gen(5))] for n, v in g.items()}
    what = "empirical_fisher_diagonal with the examples in another order"
    check_dict(_empirical(ex, shuffled, what), _empirical(ex, g, what), what + ": the order does not matter")


@pytest.mark.exercise("ex02.4")
def test_empirical_fisher_leaves_gradients_that_require_grad_alone(ex):
    g = {n: v.clone().requires_grad_() for n, v in _grads(N=6, seed=6).items()}
    what = "empirical_fisher_diagonal(per-example gradients that require grad)"
    out = call_unchanged(ex.empirical_fisher_diagonal, g, what=what)
    assert isinstance(out, dict), f"expected a dict {{name: tensor}}, got {type(out).__name__} — {what}"
    check_dict(out, ref_fisher.fisher_from_grads(g), what + " compared with clcourse.fisher.fisher_from_grads")


@pytest.mark.exercise("ex02.4")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_empirical_fisher_tiny_and_large_gradients(ex, dtype):
    scale = {"fc.weight": 1e-15, "fc.bias": 1e15, "temperature": 1.0}  # a saturated softmax's gradients
    g = {n: v * scale[n] for n, v in _grads(N=5, seed=7, dtype=dtype).items()}
    what = f"empirical_fisher_diagonal with gradients of size 1e-15 and 1e15, {dtype}"
    out = call_unchanged(ex.empirical_fisher_diagonal, g, what=what)
    expected = {n: (v.double() ** 2).mean(0).to(dtype) for n, v in g.items()}
    check_dict(out, expected, what + ": (1/N) Σ_n g_n², which fits the dtype", rtol=1e-5, atol=0)


# ---------------------------------------------------------------- ex02.2 softmax-regression Fisher (§3)

def _softmax_problem(K, D, N, seed=0, dtype=torch.float64):
    return 1.5 * _randn(K, D, seed=seed, dtype=dtype), _randn(N, D, seed=seed + 1, dtype=dtype)


def _softmax_fisher(ex, W, x, what):
    out = ex.softmax_regression_fisher(W, x)
    K, D = W.shape
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.shape == (K * D, K * D), (
        f"expected shape ({K * D}, {K * D}) = (K·D, K·D), got {tuple(out.shape)} — {what}")
    return out


SIZES = [(3, 4, 10), (2, 5, 1), (4, 3, 25)]


@pytest.mark.exercise("ex02.2")
@pytest.mark.parametrize("K,D,N", SIZES, ids=[f"K{k}_D{d}_N{n}" for k, d, n in SIZES])
def test_softmax_fisher_matches_reference(ex, K, D, N):
    W, x = _softmax_problem(K, D, N, seed=K + D + N)
    before = (W.clone(), x.clone())
    what = f"softmax_regression_fisher(W ({K}, {D}), x ({N}, {D}))"
    out = _softmax_fisher(ex, W, x, what)
    check_tensor(out, ref_fisher.softmax_regression_fisher(W, x), what + " compared with the reference",
                 atol=1e-12, rtol=1e-9)
    assert torch.equal(W, before[0]) and torch.equal(x, before[1]), f"W or x was modified in place — {what}"


@pytest.mark.exercise("ex02.2")
def test_softmax_fisher_float32(ex):
    W, x = _softmax_problem(3, 4, 12, seed=7, dtype=torch.float32)
    what = "softmax_regression_fisher(W, x) in float32"
    check_tensor(_softmax_fisher(ex, W, x, what), ref_fisher.softmax_regression_fisher(W, x),
                 what + " compared with the reference (the result keeps W's dtype)", atol=1e-6, rtol=1e-4)


@pytest.mark.exercise("ex02.2")
def test_softmax_fisher_is_the_expected_outer_product_of_the_score(ex):
    K, D, N = 3, 4, 6
    W, x = _softmax_problem(K, D, N, seed=11)
    expected = torch.zeros(K * D, K * D, dtype=torch.float64)
    for n in range(N):
        p = torch.softmax(W @ x[n], dim=0)
        for c in range(K):  # E over the model's own label c ~ p(·|x_n)
            w = W.clone().requires_grad_()
            (score,) = torch.autograd.grad(torch.log_softmax(w @ x[n], dim=0)[c], w)
            expected += p[c] * torch.outer(score.flatten(), score.flatten()) / N
    what = "softmax_regression_fisher(W (3, 4), x (6, 4))"
    check_tensor(_softmax_fisher(ex, W, x, what), expected,
                 what + " vs (1/N) Σ_n Σ_c p(c|x_n) ∇log p(c|x_n) ∇log p(c|x_n)ᵀ by autograd, vec(W) = "
                 "W.flatten()", atol=1e-12, rtol=1e-9)


@pytest.mark.exercise("ex02.2")
def test_softmax_fisher_is_minus_the_expected_hessian(ex):
    K, D, N = 4, 2, 8
    W, x = _softmax_problem(K, D, N, seed=13)
    p_bar = torch.softmax(x @ W.T, dim=1)  # the expectation's weights, held fixed

    def expected_log_lik(w_flat):  # (1/N) Σ_n Σ_c p(c|x_n) log p_w(c|x_n)
        return (p_bar * torch.log_softmax(x @ w_flat.view(K, D).T, dim=1)).sum() / N
    hessian = torch.autograd.functional.hessian(expected_log_lik, W.flatten())
    what = "softmax_regression_fisher(W (4, 2), x (8, 2))"
    check_tensor(_softmax_fisher(ex, W, x, what), -hessian,
                 what + " vs −E[∇² log p] (torch.autograd.functional.hessian): the identity F = −E[∇² log p]",
                 atol=1e-12, rtol=1e-9)


@pytest.mark.exercise("ex02.2")
def test_softmax_fisher_is_symmetric_psd_and_blind_to_shifting_every_row(ex):
    K, D, N = 3, 5, 20
    W, x = _softmax_problem(K, D, N, seed=17)
    what = "softmax_regression_fisher(W (3, 5), x (20, 5))"
    out = _softmax_fisher(ex, W, x, what)
    check_tensor(out, out.T, what + ": a Fisher is symmetric", atol=1e-12, rtol=0)
    smallest = torch.linalg.eigvalsh(out.detach()).min().item()
    assert smallest > -1e-10, f"a Fisher is positive semi-definite; smallest eigenvalue {smallest:.3g} — {what}"
    v = _randn(D, seed=18)
    shift = v.repeat(K)  # W.flatten() of the matrix whose every row is v: softmax(W x + v·x) = softmax(W x)
    check_tensor(out @ shift, torch.zeros(K * D, dtype=torch.float64),
                 what + " @ vec(1 vᵀ) (adding v to every row of W does not change p, so F has it in its null "
                 "space — check the row-major order: index k·D + d)", atol=1e-10, rtol=0)
    twice = torch.cat([x, x])
    check_tensor(_softmax_fisher(ex, W, twice, what + " with every x listed twice"), out,
                 what + " with every x listed twice: an average over x does not grow with N", atol=1e-12,
                 rtol=1e-9)


@pytest.mark.exercise("ex02.2")
def test_softmax_fisher_one_example_by_hand(ex):
    W = torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64)
    x = torch.tensor([[2.0, 1.0]], dtype=torch.float64)
    p = torch.softmax(W @ x[0], dim=0)
    cov = torch.diag(p) - torch.outer(p, p)  # [[q, −q], [−q, q]], q = p₀ p₁
    expected = torch.kron(cov, torch.outer(x[0], x[0]))
    what = "softmax_regression_fisher(W = I₂, x = [[2, 1]])"
    check_tensor(_softmax_fisher(ex, W, x, what), expected,
                 what + ": (diag(p) − p pᵀ) ⊗ x xᵀ = torch.kron(cov, outer(x, x)); W's rows come first",
                 atol=1e-12, rtol=1e-9)


@pytest.mark.exercise("ex02.2")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_softmax_fisher_saturated_logits(ex, dtype):
    W, x = _softmax_problem(3, 4, 10, seed=21, dtype=dtype)
    W = 200 * W  # logits in the hundreds: exp overflows (float32 above ~88, float64 above ~709)
    what = f"softmax_regression_fisher(200·W, x): logits in the hundreds, {dtype}"
    out = call_unchanged(ex.softmax_regression_fisher, W, x, what=what)
    check_tensor(out, ref_fisher.softmax_regression_fisher(W, x),
                 what + ": a confident model's Fisher is ~0 (diag(p) − p pᵀ ≈ 0), not NaN — use torch.softmax, "
                 "never exp(z)/Σexp(z)", atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=0)


@pytest.mark.exercise("ex02.2")
def test_softmax_fisher_leaves_w_that_requires_grad_alone(ex):
    W, x = _softmax_problem(2, 3, 4, seed=23)
    W.requires_grad_()
    what = "softmax_regression_fisher(W that requires grad, x)"
    out = call_unchanged(ex.softmax_regression_fisher, W, x, what=what)
    check_tensor(out, ref_fisher.softmax_regression_fisher(W.detach(), x), what, atol=1e-12, rtol=1e-9)


# ---------------------------------------------------------------- ex02.3 EWC penalty (§4)

def _ewc_problem(seed=0, dtype=torch.float64):
    shapes = {"fc.weight": (3, 4), "fc.bias": (3,), "scale": ()}
    params = {n: _randn(*s, seed=seed + i, dtype=dtype) for i, (n, s) in enumerate(shapes.items())}
    anchor = {n: _randn(*s, seed=seed + 10 + i, dtype=dtype) for i, (n, s) in enumerate(shapes.items())}
    fisher = {n: _rand(*s, seed=seed + 20 + i, dtype=dtype) * 3 for i, (n, s) in enumerate(shapes.items())}
    fisher["fc.weight"][0] = 0.0  # an unimportant row: free to move
    return params, fisher, anchor


def _penalty(ex, params, fisher, anchor, lam, what):
    out = ex.ewc_penalty(params, fisher, anchor, lam)
    assert isinstance(out, tuple) and len(out) == 2, (
        f"expected a pair (value, grads), got {type(out).__name__} — {what}")
    value, grads = out
    assert isinstance(value, torch.Tensor) and value.dim() == 0, (
        f"value must be a 0-d tensor, got {type(value).__name__} {getattr(value, 'shape', '')} — {what}")
    assert isinstance(grads, dict), f"grads must be a dict {{name: tensor}}, got {type(grads).__name__} — {what}"
    return value, grads


@pytest.mark.exercise("ex02.3")
@pytest.mark.parametrize("lam", [1.0, 0.37, 1e3])
def test_ewc_penalty_matches_reference(ex, lam):
    params, fisher, anchor = _ewc_problem(seed=int(lam * 100) % 97)
    inputs = [_clones(d) for d in (params, fisher, anchor)]
    what = f"ewc_penalty(params, fisher, anchor, lam={lam})"
    value, grads = _penalty(ex, params, fisher, anchor, lam, what)
    ref_value, ref_grads = ref_ewc_penalty(params, fisher, anchor, lam)
    check_tensor(value, ref_value, what + ": value (λ/2) Σ_i F_i (θ_i − θ*_i)²", rtol=1e-10, atol=1e-12)
    check_dict(grads, ref_grads, what + ": grads λ F (θ − θ*)", rtol=1e-10, atol=1e-12)
    for before, after in zip(inputs, (params, fisher, anchor)):
        _untouched(before, after, what)


@pytest.mark.exercise("ex02.3")
def test_ewc_penalty_by_hand(ex):
    params = {"w": torch.tensor([1.0, 2.0], dtype=torch.float64)}
    anchor = {"w": torch.zeros(2, dtype=torch.float64)}
    fisher = {"w": torch.tensor([2.0, 0.5], dtype=torch.float64)}
    what = "ewc_penalty(θ = [1, 2], F = [2, 0.5], θ* = [0, 0], λ = 3)"
    value, grads = _penalty(ex, params, fisher, anchor, 3.0, what)
    check_tensor(value, torch.tensor(6.0, dtype=torch.float64), what + ": (3/2)(2·1² + 0.5·2²) = 6")
    check_dict(grads, {"w": torch.tensor([6.0, 3.0], dtype=torch.float64)},
               what + ": grads 3·[2·1, 0.5·2] = [6, 3]")


@pytest.mark.exercise("ex02.3")
def test_ewc_penalty_is_zero_at_the_anchor(ex):
    _, fisher, anchor = _ewc_problem(seed=3)
    what = "ewc_penalty at θ = θ* (λ = 50)"
    value, grads = _penalty(ex, _clones(anchor), fisher, anchor, 50.0, what)
    check_tensor(value, torch.tensor(0.0, dtype=torch.float64), what + ": the penalty is 0")
    check_dict(grads, {n: torch.zeros_like(a) for n, a in anchor.items()}, what + ": its gradient is 0")


@pytest.mark.exercise("ex02.3")
def test_ewc_gradient_is_the_autograd_gradient_of_the_value(ex):
    params, fisher, anchor = _ewc_problem(seed=5)
    leaves = {n: p.clone().requires_grad_() for n, p in params.items()}
    lam = 7.5
    what = f"ewc_penalty(params that require grad, lam={lam})"
    value, grads = _penalty(ex, leaves, fisher, anchor, lam, what)
    assert all(p.grad is None for p in leaves.values()), (
        f"compute grads by hand, from the formula: do not call backward (it fills p.grad, which the  — {what}"
        "training step's own backward would then add to)")
    assert value.requires_grad, (
        f"value does not require grad — build it from torch operations on params (no .item(), no  — {what}"
        "detach): the training loss adds it and back-propagates through it")
    autograd = dict(zip(leaves, torch.autograd.grad(value, list(leaves.values()))))
    expected = {n: lam * fisher[n] * (params[n] - anchor[n]) for n in params}
    check_dict(autograd, expected, what + ": torch.autograd's gradient of YOUR value vs λ F (θ − θ*)",
               rtol=1e-10, atol=1e-12)
    check_dict({n: g.detach() for n, g in grads.items()}, autograd,
               what + ": your grads vs torch.autograd's gradient of your value", rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex02.3")
def test_ewc_penalty_linear_in_lambda_quadratic_in_distance(ex):
    params, fisher, anchor = _ewc_problem(seed=8)
    what = "ewc_penalty"
    v1, g1 = _penalty(ex, params, fisher, anchor, 2.0, what)
    v3, g3 = _penalty(ex, params, fisher, anchor, 6.0, what)
    check_tensor(v3, 3 * v1, "ewc_penalty with λ = 6 vs 3 × (λ = 2): the value is linear in λ", rtol=1e-10)
    check_dict(g3, {n: 3 * g for n, g in g1.items()}, "ewc_penalty grads with λ = 6 vs 3 × (λ = 2)", rtol=1e-10)
    v0, _ = _penalty(ex, params, fisher, anchor, 0.0, what)
    check_tensor(v0, torch.tensor(0.0, dtype=torch.float64), "ewc_penalty with λ = 0: no penalty")
    far = {n: anchor[n] + 2 * (p - anchor[n]) for n, p in params.items()}
    v_far, g_far = _penalty(ex, far, fisher, anchor, 2.0, what)
    check_tensor(v_far, 4 * v1, "ewc_penalty twice as far from θ*: the value is 4× (squared distance)",
                 rtol=1e-10)
    check_dict(g_far, {n: 2 * g for n, g in g1.items()}, "ewc_penalty grads twice as far from θ*: 2×",
               rtol=1e-10)
    free = _clones(params)
    free["fc.weight"][0] += 100.0  # the row with F = 0 moves far: nothing changes
    v_free, _ = _penalty(ex, free, fisher, anchor, 2.0, what)
    check_tensor(v_free, v1, "ewc_penalty after moving only parameters with F = 0: unchanged", rtol=1e-10)


@pytest.mark.exercise("ex02.3")
def test_ewc_penalty_leaves_the_inputs_and_their_flags_alone(ex):
    params, fisher, anchor = _ewc_problem(seed=11)
    what = "ewc_penalty(params that do NOT require grad, fisher, anchor, lam=4)"
    value, grads = call_unchanged(ex.ewc_penalty, params, fisher, anchor, 4.0, what=what)
    ref_value, ref_grads = ref_ewc_penalty(params, fisher, anchor, 4.0)
    check_tensor(value, ref_value, what, rtol=1e-10, atol=1e-12)
    check_dict(grads, ref_grads, what + ": grads λ F (θ − θ*)", rtol=1e-10, atol=1e-12)
    leaves = {n: p.clone().requires_grad_() for n, p in params.items()}
    what = "ewc_penalty(params that require grad, ...)"
    call_unchanged(ex.ewc_penalty, leaves, fisher, anchor, 4.0, what=what)


@pytest.mark.exercise("ex02.3")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_ewc_penalty_split_mnist_scales(ex, dtype):
    params, fisher, anchor = _ewc_problem(seed=13, dtype=dtype)
    fisher = {n: f * 1e-12 for n, f in fisher.items()}  # a confident network's Fisher, with λ = 1e10
    what = f"ewc_penalty with F ~ 1e-12 and λ = 1e10 (split MNIST's scales), {dtype}"
    value, grads = _penalty(ex, params, fisher, anchor, 1e10, what)
    ref_value, ref_grads = ref_ewc_penalty(params, fisher, anchor, 1e10)
    check_tensor(value, ref_value, what + ": (λ/2) Σ F (θ − θ*)², in the params' dtype", rtol=1e-5, atol=0)
    check_dict(grads, ref_grads, what + ": grads λ F (θ − θ*)", rtol=1e-5, atol=0)


# ---------------------------------------------------------------- ex02.6 online-EWC Fisher (§7)

def _fishers(seed, shapes=None, dtype=torch.float64):
    shapes = shapes or {"fc.weight": (4, 5), "fc.bias": (4,)}
    return {n: _rand(*s, seed=seed + i, dtype=dtype) for i, (n, s) in enumerate(shapes.items())}


def _online(ex, running, new, gamma, what):
    before_running, before_new = _clones(running), _clones(new)
    out = ex.online_fisher_update(running, new, gamma)
    assert isinstance(out, dict), f"expected a dict {{name: tensor}}, got {type(out).__name__} — {what}"
    _untouched(before_running, running, what + " (running)")
    _untouched(before_new, new, what + " (new)")
    return out


@pytest.mark.exercise("ex02.6")
@pytest.mark.parametrize("gamma", [0.9, 0.5, 1.0])
def test_online_fisher_matches_reference(ex, gamma):
    running, new = _fishers(0), _fishers(10)
    what = f"online_fisher_update(running, new, gamma={gamma})"
    check_dict(_online(ex, running, new, gamma, what), ref_online_fisher(running, new, gamma),
               what + ": γ F̃ + F", rtol=1e-12, atol=1e-14)


@pytest.mark.exercise("ex02.6")
def test_online_fisher_by_hand_and_over_three_tasks(ex):
    running = {"w": torch.tensor([2.0, 4.0], dtype=torch.float64)}
    new = {"w": torch.tensor([1.0, 0.0], dtype=torch.float64)}
    what = "online_fisher_update({'w': [2, 4]}, {'w': [1, 0]}, gamma=0.5)"
    check_dict(_online(ex, running, new, 0.5, what), {"w": torch.tensor([2.0, 2.0], dtype=torch.float64)},
               what + ": 0.5·[2, 4] + [1, 0] = [2, 2] (γ decays the OLD Fisher, the new one counts fully)")
    F1, F2, F3 = _fishers(1), _fishers(2), _fishers(3)
    gamma = 0.7
    what = "online_fisher_update over tasks 1, 2, 3 (γ = 0.7), starting from {}"
    running = _online(ex, {}, F1, gamma, what)
    running = _online(ex, running, F2, gamma, what)
    running = _online(ex, running, F3, gamma, what)
    check_dict(running, {n: gamma ** 2 * F1[n] + gamma * F2[n] + F3[n] for n in F1},
               what + ": γ² F₁ + γ F₂ + F₃", rtol=1e-12, atol=1e-14)
    what = "online_fisher_update with gamma=0"
    check_dict(_online(ex, F1, F2, 0.0, what), F2, what + ": the old Fisher is forgotten, F̃ = F_t")
    what = "online_fisher_update with gamma=1"
    check_dict(_online(ex, F1, F2, 1.0, what), {n: F1[n] + F2[n] for n in F1}, what + ": the plain sum")


@pytest.mark.exercise("ex02.6")
def test_online_fisher_first_task_and_a_new_parameter(ex):
    new = _fishers(4)
    what = "online_fisher_update({}, new, gamma=0.9) (the first task)"
    out = _online(ex, {}, new, 0.9, what)
    check_dict(out, new, what + ": F̃_1 = F_1")
    for n in new:
        assert out[n] is not new[n] and out[n].data_ptr() != new[n].data_ptr(), (
            f"out[{n!r}] is the input tensor new[{n!r}] itself: return a copy (.clone()), or a later in-place "
            f"update of the running Fisher would change the caller's F_1 — {what}")
    running = {"fc.weight": _rand(4, 5, seed=5)}  # fc.bias did not exist when running was taken
    what = "online_fisher_update when running has no 'fc.bias'"
    check_dict(_online(ex, running, new, 0.9, what),
               {"fc.weight": 0.9 * running["fc.weight"] + new["fc.weight"], "fc.bias": new["fc.bias"]},
               what + ": a name missing from running takes the new Fisher alone", rtol=1e-12, atol=1e-14)


@pytest.mark.exercise("ex02.6")
def test_online_fisher_grown_head(ex):
    running = _fishers(6, {"head.weight": (4, 5), "head.bias": (4,), "body.weight": (5, 3)})
    new = _fishers(16, {"head.weight": (6, 5), "head.bias": (6,), "body.weight": (5, 3)})
    gamma = 0.8
    what = "online_fisher_update after the class-IL head grew from 4 to 6 units (γ = 0.8)"
    out = _online(ex, running, new, gamma, what)
    expected = {n: v.clone() for n, v in new.items()}
    expected["head.weight"][:4] += gamma * running["head.weight"]
    expected["head.bias"][:4] += gamma * running["head.bias"]
    expected["body.weight"] += gamma * running["body.weight"]
    check_dict(out, expected, what + ": old units γ F̃ + F, the 2 new units F alone", rtol=1e-12, atol=1e-14)
    check_dict(out, ref_online_fisher(running, new, gamma), what + " compared with the reference",
               rtol=1e-12, atol=1e-14)


@pytest.mark.exercise("ex02.6")
def test_online_fisher_inputs_unchanged_and_no_alias_after_a_task(ex):
    running, new = _fishers(30), _fishers(40)
    what = "online_fisher_update(running, new, gamma=0.5)"
    out = call_unchanged(ex.online_fisher_update, running, new, 0.5, what=what)
    check_dict(out, {n: 0.5 * running[n] + new[n] for n in new}, what + ": γ F̃ + F", rtol=1e-12, atol=1e-14)
    for n in new:
        assert out[n].data_ptr() not in (new[n].data_ptr(), running[n].data_ptr()), (
            f"out[{n!r}] shares memory with an input: return new tensors — {what}")


# ---------------------------------------------------------------- ex02.5 SI importance (§6)

def _path(S=6, P=5, seed=0, dtype=torch.float64):
    grads, deltas = _randn(S, P, seed=seed, dtype=dtype), 0.1 * _randn(S, P, seed=seed + 1, dtype=dtype)
    start = _randn(P, seed=seed + 2, dtype=dtype)
    return grads, deltas, start, start + deltas.sum(0)


def _si(ex, grads, deltas, start, end, xi, what):
    inputs = [t.clone() for t in (grads, deltas, start, end)]
    out = ex.si_importance(grads, deltas, start, end, xi)
    for before, after, name in zip(inputs, (grads, deltas, start, end), ("grads", "deltas", "start", "end")):
        assert torch.equal(before, after), f"{name} was modified in place — {what}"
    return out


@pytest.mark.exercise("ex02.5")
@pytest.mark.parametrize("xi", [0.1, 1e-3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_si_matches_reference(ex, xi, dtype):
    grads, deltas, start, end = _path(S=8, P=7, seed=1, dtype=dtype)
    what = f"si_importance(grads (8, 7), deltas (8, 7), θ_start, θ_end, xi={xi}), {dtype}"
    omega = -(grads * deltas).sum(0)
    check_tensor(_si(ex, grads, deltas, start, end, xi, what), ref_path_importance(omega, start, end, xi),
                 what + " compared with the reference: (−Σ_s g_s Δθ_s) / ((θ_end − θ_start)² + ξ)")


@pytest.mark.exercise("ex02.5")
def test_si_by_hand(ex):
    grads = torch.tensor([[1.0, -2.0], [3.0, 1.0]], dtype=torch.float64)
    deltas = torch.tensor([[-0.5, 0.5], [-0.5, -0.5]], dtype=torch.float64)
    start = torch.zeros(2, dtype=torch.float64)
    end = start + deltas.sum(0)                   # [−1, 0]: parameter 1 went out and came back
    # ω = −Σ g Δθ = [0.5 + 1.5, 1 + 0.5] = [2, 1.5];  Ω = [2 / (1 + 0.5), 1.5 / (0 + 0.5)]
    what = "si_importance(g = [[1, −2], [3, 1]], Δθ = [[−.5, .5], [−.5, −.5]], θ 0 → [−1, 0], ξ = 0.5)"
    check_tensor(_si(ex, grads, deltas, start, end, 0.5, what),
                 torch.tensor([2 / 1.5, 3.0], dtype=torch.float64),
                 what + ": ω = [2, 1.5], displacement² = [1, 0] → Ω = [4/3, 3]")


def _sgd_on_a_quadratic(lr, a, steps=30):
    """SGD on L(θ) = ½ Σ_i a_i (θ_i − c_i)², from θ − c = 1: the recorded path and the loss decrease."""
    c = torch.linspace(-1, 1, len(a), dtype=torch.float64)
    theta = c + 1.0
    start, grads, deltas = theta.clone(), [], []
    for _ in range(steps):
        g = a * (theta - c)
        step = -lr * g
        grads.append(g)
        deltas.append(step)
        theta = theta + step
    decrease = 0.5 * a * ((start - c) ** 2 - (theta - c) ** 2)  # per parameter
    return torch.stack(grads), torch.stack(deltas), start, theta, decrease


@pytest.mark.exercise("ex02.5")
def test_si_on_an_sgd_run_of_a_quadratic(ex):
    lr, xi = 0.1, 0.1
    a = torch.tensor([0.0, 0.1, 1.0, 3.0, 16.0], dtype=torch.float64)  # lr·a = 1.6: SGD overshoots and oscillates
    grads, deltas, start, end, decrease = _sgd_on_a_quadratic(lr, a)
    what = "si_importance on 30 SGD steps (lr 0.1) of ½ Σ a_i (θ_i − c_i)², a = [0, .1, 1, 3, 16]"
    out = _si(ex, grads, deltas, start, end, xi, what)
    omega = lr * (grads ** 2).sum(0)  # SGD: Δθ = −lr g, so −Σ g Δθ = lr Σ g²
    check_tensor(out, omega / ((end - start) ** 2 + xi),
                 what + ": ω = lr Σ_s g_s², divided by (θ_end − θ_start)² + ξ", rtol=1e-10, atol=1e-12)
    assert (out >= 0).all(), f"SGD only goes downhill, so every Ω must be ≥ 0, got {out.tolist()} — {what}"
    assert out[0] == 0, f"a parameter the loss does not depend on (a = 0) has Ω = 0, got {out[0]} — {what}"
    assert bool((out[1:] > out[:-1]).all()), (
        f"the parameters that moved the loss more (larger a) must be more important, got {out.tolist()} — {what}")
    # ω is exactly the per-parameter loss decrease divided by (1 − lr·a/2) on a quadratic
    check_tensor(out * ((end - start) ** 2 + xi) * (1 - lr * a / 2), decrease,
                 what + ": Ω·(Δθ² + ξ)·(1 − lr a/2) must be each parameter's loss decrease", rtol=1e-10,
                 atol=1e-12)


@pytest.mark.exercise("ex02.5")
def test_si_parameter_that_never_moved_or_came_back(ex):
    grads, deltas, start, _ = _path(S=5, P=4, seed=3)
    deltas[:, 0] = 0.0                    # frozen: gradients, but no step
    deltas[:, 1] = torch.tensor([0.2, -0.3, 0.3, -0.2, 0.0], dtype=torch.float64)  # out and back
    grads[:, 1] = -deltas[:, 1] * 2       # every step of parameter 1 went downhill
    end = start + deltas.sum(0)
    xi = 0.05
    what = "si_importance with parameter 0 frozen (Δθ = 0) and parameter 1 back where it started"
    out = _si(ex, grads, deltas, start, end, xi, what)
    assert torch.isfinite(out).all(), (
        f"Ω must be finite — ξ keeps ω/(0 + ξ) bounded when θ_end = θ_start, got {out.tolist()} — {what}")
    check_tensor(out[0], torch.tensor(0.0, dtype=torch.float64), what + ": a frozen parameter has ω = 0, Ω = 0")
    omega1 = -(grads[:, 1] * deltas[:, 1]).sum()
    check_tensor(out[1], omega1 / xi, what + ": parameter 1 has displacement 0 (not the path length "
                 "Σ|Δθ|), so Ω = ω/ξ", rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex02.5")
def test_si_uphill_steps_count_negative_and_one_step(ex):
    grads = torch.tensor([[1.0, -1.0, 2.0]], dtype=torch.float64)
    deltas = torch.tensor([[0.5, 0.5, -0.1]], dtype=torch.float64)  # parameters 0 and 2 went uphill/downhill
    start = torch.zeros(3, dtype=torch.float64)
    what = "si_importance of one step, g = [1, −1, 2], Δθ = [.5, .5, −.1], ξ = 0.1"
    out = _si(ex, grads, deltas, start, start + deltas[0], 0.1, what)
    # ω = [−0.5, 0.5, 0.2]; Ω = ω / (Δθ² + 0.1) = [−0.5/0.35, 0.5/0.35, 0.2/0.11]
    check_tensor(out, torch.tensor([-0.5 / 0.35, 0.5 / 0.35, 0.2 / 0.11], dtype=torch.float64),
                 what + ": a step along the gradient (uphill) gives ω < 0; Ω is not clamped", rtol=1e-10)


@pytest.mark.exercise("ex02.5")
def test_si_inputs_and_flags_unchanged(ex):
    grads, deltas, start, end = _path(S=4, P=3, seed=9)
    leaves = [t.clone().requires_grad_() for t in (grads, deltas, start, end)]
    what = "si_importance(inputs that require grad)"
    out = call_unchanged(ex.si_importance, *leaves, 0.1, what=what)
    omega = -(grads * deltas).sum(0)
    check_tensor(out.detach(), ref_path_importance(omega, start, end, 0.1), what, rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex02.5")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_si_extreme_displacements_and_xi(ex, dtype):
    grads = torch.tensor([[1e-3, 2.0, 5.0, 1e3]], dtype=dtype)
    deltas = torch.tensor([[-1e-3, -1e-4, -30.0, -1e-6]], dtype=dtype)  # tiny to large moves
    start = torch.zeros(4, dtype=dtype)
    for xi in (1e-8, 0.1, 1e4):
        what = f"si_importance of one step, Δθ = [−1e−3, −1e−4, −30, −1e−6], ξ = {xi:g}, {dtype}"
        out = _si(ex, grads, deltas, start, start + deltas[0], xi, what)
        g64, d64 = grads.double()[0], deltas.double()[0]
        expected = (-(g64 * d64) / (d64 ** 2 + xi)).to(dtype)
        check_tensor(out, expected, what + ": ω / (Δθ² + ξ) — ξ is added to the SQUARED displacement",
                     rtol=1e-5, atol=0)

