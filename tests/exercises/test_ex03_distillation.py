"""Grading tests of lesson 03 (distillation at a temperature, Learning without Forgetting): ex03.1–ex03.5.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse.losses` (`tempered_softmax`,
`distillation`), with independent oracles (`torch.nn.functional.kl_div` plus the teacher's entropy,
`torch.autograd`, float64 computations, closed forms) and with properties the result must have
whatever the implementation.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from clcourse.losses import distillation as ref_distillation
from clcourse.losses import distillation_gradient as ref_distillation_gradient
from clcourse.losses import hard_and_soft as ref_hard_and_soft
from clcourse.losses import lwf_loss as ref_lwf_loss
from clcourse.losses import tempered_softmax as ref_tempered_softmax

from checks import call_unchanged, check_tensor

EXERCISE_MODULE = "ex03_distillation"

DTYPES = [torch.float64, torch.float32]
DTYPE_IDS = ["float64", "float32"]


# ---------------------------------------------------------------- helpers

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64, scale=3.0):
    return scale * torch.randn(tuple(shape), generator=_gen(seed), dtype=dtype)


def _labels(n, units, seed=0):
    """n labels drawn from the given unit indices (a list)."""
    units = torch.as_tensor(units, dtype=torch.long)
    return units[torch.randint(0, len(units), (n,), generator=_gen(seed))]



def _scalar(out, dtype, what):
    assert isinstance(out, torch.Tensor), f"expected a 0-d tensor, got {type(out).__name__} {out!r} — {what}"
    assert out.dim() == 0, f"expected a 0-d tensor (a scalar), got shape {tuple(out.shape)} — {what}"
    assert out.dtype == dtype, f"expected dtype {dtype}, got {out.dtype} — {what}"
    return out


def _entropy(p):
    """H(p) = −Σ p log p along the last dimension (0 log 0 = 0: a target that underflowed to 0)."""
    return -torch.special.xlogy(p, p).sum(-1)


def _oracle_distillation(z, v, T):
    """T² (KL(p ‖ q) + H(p)), batch mean, by F.kl_div in float64: −Σ p log q = KL(p ‖ q) + H(p)."""
    z, v = z.detach().double(), v.detach().double()
    p = torch.softmax(v / T, dim=-1)
    kl = F.kl_div(torch.log_softmax(z / T, dim=-1), p, reduction="batchmean")
    return T ** 2 * (kl + _entropy(p).mean())


def _requires_grad(t):
    return t.detach().clone().requires_grad_()


# ---------------------------------------------------------------- ex03.1 softmax with temperature (§2)

TEMPERATURES = [0.5, 1.0, 3.0, 20.0]
SHAPES = [(4, 10), (2, 3, 7), (10,), (0, 5)]
SHAPE_IDS = ["2d", "3d", "1d", "no_rows"]


def _softmax_T(ex, logits, T, what):
    out = call_unchanged(ex.softmax_with_temperature, logits, T,
                         what=what + " (write s = logits / T, not logits /= T)")
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    return out


@pytest.mark.exercise("ex03.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", SHAPES, ids=SHAPE_IDS)
@pytest.mark.parametrize("T", TEMPERATURES)
def test_softmax_T_matches_reference(ex, shape, dtype, T):
    z = _randn(*shape, seed=len(shape), dtype=dtype)
    what = f"softmax_with_temperature(z of shape {shape}, T={T}), {dtype}"
    out = _softmax_T(ex, z, T, what)
    check_tensor(out, ref_tempered_softmax(z, T), what + " compared with clcourse.losses.tempered_softmax")
    check_tensor(out, torch.softmax(z.double() / T, dim=-1).to(dtype),
                 what + " compared with torch.softmax(z / T, dim=-1) in float64 (the LAST dimension)")


@pytest.mark.exercise("ex03.1")
def test_softmax_T_at_T_1_is_the_usual_softmax_and_accepts_an_int(ex):
    z = _randn(5, 6, seed=1)
    what = "softmax_with_temperature(z, T=1)"
    check_tensor(_softmax_T(ex, z, 1, what), torch.softmax(z, dim=-1), what + ": the usual softmax")
    what = "softmax_with_temperature(z, T=2) (T a Python int)"
    check_tensor(_softmax_T(ex, z, 2, what), torch.softmax(z / 2, dim=-1), what)


@pytest.mark.exercise("ex03.1")
@pytest.mark.parametrize("T", [0.5, 2.0, 10.0])
def test_softmax_T_rows_are_probabilities_in_the_logits_order(ex, T):
    z = _randn(6, 9, seed=2)
    what = f"softmax_with_temperature(z (6, 9), T={T})"
    p = _softmax_T(ex, z, T, what)
    assert p.shape == z.shape, f"expected shape {tuple(z.shape)}, got {tuple(p.shape)} — {what}"
    assert (p > 0).all(), f"every probability must be > 0 for these logits — {what}"
    check_tensor(p.sum(dim=-1), torch.ones(6, dtype=torch.float64),
                 what + ": each row (the last dimension) must sum to 1", atol=1e-12, rtol=0)
    assert torch.equal(p.argsort(dim=-1), z.argsort(dim=-1)), (
        f"a temperature keeps the order of the units: the largest logit keeps the largest probability — {what}")
    shift = torch.tensor([[100.0], [-37.0], [0.5], [1e3], [-1e3], [0.0]], dtype=torch.float64)
    check_tensor(_softmax_T(ex, z + shift, T, what), p,
                 what + ": adding a constant to a whole row does not change its softmax", atol=1e-12, rtol=1e-9)


@pytest.mark.exercise("ex03.1")
def test_softmax_T_entropy_rises_with_the_temperature(ex):
    z = _randn(3, 10, seed=3)
    temperatures = [0.05, 0.5, 1.0, 2.0, 5.0, 10.0, 100.0]
    entropies = []
    for T in temperatures:
        p = _softmax_T(ex, z, T, f"softmax_with_temperature(z, T={T})").detach()
        entropies.append(_entropy(p))
    H = torch.stack(entropies)  # (len(temperatures), 3)
    assert bool((H[1:] > H[:-1]).all()), (
        f"the entropy of softmax(z / T) must rise with T (softer targets), got, per row, "
        f"{[[round(h, 4) for h in row] for row in H.T.tolist()]} for T = {temperatures}")
    assert bool((H[-1] > math.log(10) - 0.01).all()), (
        f"at T = 100 softmax(z / T) must be nearly uniform (entropy ≈ log 10 = 2.303), got {H[-1].tolist()}")
    one_hot = F.one_hot(z.argmax(-1), 10).double()
    what = "softmax_with_temperature(z, T=0.05)"
    check_tensor(_softmax_T(ex, z, 0.05, what), one_hot,
                 what + ": at a low T, nearly one-hot on the largest logit", atol=1e-6, rtol=0)


@pytest.mark.exercise("ex03.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("T", [0.5, 1.0, 10.0, 100.0])
def test_softmax_T_stable_for_logits_of_1e4(ex, dtype, T):
    z = _randn(4, 10, seed=4, dtype=dtype, scale=1e4)
    # rows far apart (a batch-wide maximum would underflow the low rows to 0 / 0) and near-ties at 1e4
    z[2] -= 3e4
    z[3] = torch.tensor([1e4, 1e4 - 1, 1e4 - 3, -1e4, 0, 1e4 - 40, 5e3, -5e3, 1e4 - 2, 1e4 - 10], dtype=dtype)
    what = f"softmax_with_temperature(logits of ±1e4, T={T}), {dtype}"
    out = _softmax_T(ex, z, T, what)
    expected = torch.softmax(z.double() / T, dim=-1).to(dtype)  # float64 softmax is exact here
    check_tensor(out, expected, what + " (subtract each row's largest scaled logit before exp)",
                 atol=1e-6, rtol=1e-4)
    check_tensor(out.sum(-1), torch.ones(4, dtype=dtype), what + ": each row sums to 1", atol=1e-5, rtol=0)


@pytest.mark.exercise("ex03.1")
@pytest.mark.parametrize("case", ["transposed", "sliced", "expanded"])
def test_softmax_T_on_non_contiguous_logits(ex, case):
    base = _randn(10, 6, seed=5)
    z = {"transposed": base.T,                   # (6, 10), strides (1, 6)
         "sliced": base[::2, 1:],                # (5, 5), every other row
         "expanded": base[:1].expand(4, 6)}[case]  # 4 rows that share one row's memory
    assert not z.is_contiguous()
    T = 2.0
    what = f"softmax_with_temperature(a {case} (non-contiguous) tensor {tuple(z.shape)}, T={T})"
    check_tensor(_softmax_T(ex, z, T, what), torch.softmax(z.contiguous() / T, dim=-1), what)


@pytest.mark.exercise("ex03.1")
@pytest.mark.parametrize("T", [0, 0.0, -1.0, -0.5])
def test_softmax_T_not_positive_raises_value_error(ex, T):
    with pytest.raises(ValueError):
        ex.softmax_with_temperature(_randn(3, 4, seed=6), T)
        pytest.fail(f"softmax_with_temperature(z, T={T!r}) must raise ValueError: a temperature must be > 0")


@pytest.mark.exercise("ex03.1")
def test_softmax_T_returns_a_new_tensor(ex):
    z = _randn(3, 4, seed=7)
    what = "softmax_with_temperature(z, T=1)"
    out = _softmax_T(ex, z, 1.0, what)
    assert out is not z and out.data_ptr() != z.data_ptr(), (
        f"the result shares the logits' memory: return a new tensor — {what}")


# ---------------------------------------------------------------- ex03.2 the soft cross-entropy's gradient (§3)

def _gradient(ex, z, v, T, what):
    with torch.no_grad():  # "by hand": no autograd graph is needed
        out = call_unchanged(ex.soft_cross_entropy_gradient, z, v, T, what=what)
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    return out


def _autograd_gradient(z, v, T):
    """∂/∂z of Σ_b C_b, C_b = −Σ_i p_bi log q_bi: each example's own gradient (rows are independent)."""
    zz = z.detach().double().requires_grad_()
    p = torch.softmax(v.detach().double() / T, dim=-1)
    (g,) = torch.autograd.grad(-(p * torch.log_softmax(zz / T, dim=-1)).sum(), zz)
    return g.to(z.dtype)


@pytest.mark.exercise("ex03.2")
@pytest.mark.parametrize("T", [1.0, 2.0, 5.0, 20.0])
def test_gradient_matches_autograd(ex, T):
    z, v = _randn(6, 10, seed=10), _randn(6, 10, seed=11)
    what = f"soft_cross_entropy_gradient(z (6, 10), v (6, 10), T={T})"
    out = _gradient(ex, z, v, T, what)
    check_tensor(out, _autograd_gradient(z, v, T),
                 what + " compared with autograd's ∂C/∂z, C = −Σ_i p_i log q_i per example (Eq. 2: (q − p)/T)",
                 atol=1e-12, rtol=1e-9)
    check_tensor(out, ref_distillation_gradient(z, v, T),
                 what + " compared with clcourse.losses.distillation_gradient", atol=1e-12, rtol=1e-9)
    zz = _requires_grad(z)
    (ref,) = torch.autograd.grad(ref_distillation(zz, v, T, t_squared=False) * len(z), zz)
    check_tensor(out, ref, what + " compared with the gradient of clcourse.losses.distillation(t_squared=False) "
                 "× B (one example's own gradient, not the batch mean's)", atol=1e-12, rtol=1e-9)


@pytest.mark.exercise("ex03.2")
def test_gradient_by_hand(ex):
    T = 2.0
    z = torch.tensor([[0.0, 0.0]], dtype=torch.float64)                  # q = [1/2, 1/2]
    v = torch.tensor([[T * math.log(3.0), 0.0]], dtype=torch.float64)    # p = [3/4, 1/4]
    what = "soft_cross_entropy_gradient(z = [[0, 0]], v = [[2 log 3, 0]], T=2)"
    check_tensor(_gradient(ex, z, v, T, what), torch.tensor([[-0.125, 0.125]], dtype=torch.float64),
                 what + ": q − p = [−1/4, 1/4], divided by T = 2 (the sign: q − p, so descent raises z₀)",
                 atol=1e-12, rtol=1e-9)


@pytest.mark.exercise("ex03.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gradient_shape_dtype_and_rows_sum_to_zero(ex, dtype):
    z, v = _randn(7, 5, seed=12, dtype=dtype), _randn(7, 5, seed=13, dtype=dtype)
    what = f"soft_cross_entropy_gradient(z (7, 5), v (7, 5), T=3), {dtype}"
    out = _gradient(ex, z, v, 3.0, what)
    check_tensor(out, _autograd_gradient(z, v, 3.0), what + " compared with autograd")
    check_tensor(out.sum(-1), torch.zeros(7, dtype=dtype),
                 what + ": each row sums to 0 (q and p both sum to 1)", atol=1e-6, rtol=0)


@pytest.mark.exercise("ex03.2")
def test_gradient_vanishes_when_the_student_matches_and_points_the_right_way(ex):
    v = _randn(5, 8, seed=14)
    what = "soft_cross_entropy_gradient(z = v, v, T=4)"
    check_tensor(_gradient(ex, v.clone(), v, 4.0, what), torch.zeros(5, 8, dtype=torch.float64),
                 what + ": the student already matches the teacher", atol=1e-15, rtol=0)
    shifted = v + torch.arange(5, dtype=torch.float64)[:, None]  # a constant per row: same softmax
    what = "soft_cross_entropy_gradient(z = v + c (a constant per row), v, T=4)"
    check_tensor(_gradient(ex, shifted, v, 4.0, what), torch.zeros(5, 8, dtype=torch.float64),
                 what + ": the same distributions", atol=1e-12, rtol=0)
    z = _randn(5, 8, seed=15)
    T, lr = 2.0, 0.5
    what = f"soft_cross_entropy_gradient(z, v, T={T})"
    g = _gradient(ex, z, v, T, what)
    p = torch.softmax(v / T, -1)

    def C(zz):
        return -(p * torch.log_softmax(zz / T, -1)).sum(-1)
    assert bool((C(z - lr * g) < C(z)).all()), (
        f"a small step z − {lr}·gradient must lower every example's soft cross-entropy — {what}")


@pytest.mark.exercise("ex03.2")
def test_gradient_at_high_temperature_is_logit_matching(ex):
    z, v = _randn(8, 10, seed=16, scale=1.0), _randn(8, 10, seed=17, scale=1.0)
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)  # zero-mean logits (Eq. 4)
    T = 100.0
    what = f"soft_cross_entropy_gradient(zero-mean z, v, T={T:g})"
    out = _gradient(ex, z, v, T, what)
    limit = (z - v) / (10 * T ** 2)
    err = float((out - limit).abs().max() / limit.abs().max())
    assert err < 0.05, (
        f"at high T the gradient must approach (z − v) / (N T²) (Hinton et al. 2015, Eq. 4), relative "
        f"error {err:.3g} — {what}")


@pytest.mark.exercise("ex03.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gradient_stable_for_logits_of_1e4(ex, dtype):
    z, v = _randn(4, 10, seed=18, dtype=dtype, scale=1e4), _randn(4, 10, seed=19, dtype=dtype, scale=1e4)
    T = 2.0
    what = f"soft_cross_entropy_gradient(logits of ±1e4, T={T}), {dtype}"
    check_tensor(_gradient(ex, z, v, T, what), _autograd_gradient(z, v, T), what, atol=1e-6, rtol=1e-4)


@pytest.mark.exercise("ex03.2")
def test_gradient_on_non_contiguous_logits(ex):
    z, v = _randn(10, 6, seed=20).T, _randn(12, 10, seed=21)[::2]  # (6, 10) transposed, (6, 10) sliced
    assert not z.is_contiguous() and not v.is_contiguous()
    what = "soft_cross_entropy_gradient(a transposed z, a sliced v, T=3)"
    check_tensor(_gradient(ex, z, v, 3.0, what), _autograd_gradient(z, v, 3.0), what, atol=1e-12, rtol=1e-9)


# ---------------------------------------------------------------- ex03.3 the distillation loss (§3)

def _kd(ex, z, v, T, what):
    out = call_unchanged(ex.distillation_loss, z, v, T, what=what)
    return _scalar(out, z.dtype, what)


@pytest.mark.exercise("ex03.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("T", [1.0, 2.0, 4.0, 10.0])
def test_distillation_matches_reference(ex, T, dtype):
    z, v = _randn(16, 10, seed=30, dtype=dtype), _randn(16, 10, seed=31, dtype=dtype)
    what = f"distillation_loss(z (16, 10), v (16, 10), T={T}), {dtype}"
    out = _kd(ex, z, v, T, what)
    check_tensor(out, ref_distillation(z, v, T), what + " compared with clcourse.losses.distillation")
    check_tensor(out, _oracle_distillation(z, v, T).to(dtype),
                 what + " compared with T² (KL(p ‖ q) + H(p)) (F.kl_div, batchmean, plus the teacher's entropy)",
                 rtol=1e-5 if dtype == torch.float32 else 1e-10, atol=1e-6 if dtype == torch.float32 else 1e-12)


@pytest.mark.exercise("ex03.3")
def test_distillation_by_hand(ex):
    z = torch.tensor([[0.0, 0.0]], dtype=torch.float64)                  # q = [1/2, 1/2]
    v = torch.tensor([[2.0 * math.log(3.0), 0.0]], dtype=torch.float64)  # at T = 2: p = [3/4, 1/4]
    what = "distillation_loss(z = [[0, 0]], v = [[2 log 3, 0]], T=2)"
    check_tensor(_kd(ex, z, v, 2.0, what), torch.tensor(4 * math.log(2.0), dtype=torch.float64),
                 what + ": −(3/4 log ½ + 1/4 log ½) = log 2, times T² = 4", rtol=1e-12, atol=0)
    what = "distillation_loss(z = [[0, 0]], v = [[log 3, 0]], T=1)"
    check_tensor(_kd(ex, z, v / 2, 1.0, what), torch.tensor(math.log(2.0), dtype=torch.float64),
                 what + ": T = 1: the plain soft cross-entropy, log 2", rtol=1e-12, atol=0)
    q = torch.tensor([[0.9, 0.1]], dtype=torch.float64)
    what = "distillation_loss(z = [[log .9, log .1]], v = [[log 3, 0]], T=1)"
    expected = -(0.75 * math.log(0.9) + 0.25 * math.log(0.1))  # the teacher weighs the student's log q
    check_tensor(_kd(ex, q.log(), v / 2, 1.0, what), torch.tensor(expected, dtype=torch.float64),
                 what + ": −Σ p log q with p = [.75, .25] (teacher), q = [.9, .1] (student) — not −Σ q log p",
                 rtol=1e-12, atol=0)


@pytest.mark.exercise("ex03.3")
def test_distillation_is_a_mean_over_the_batch(ex):
    z, v = _randn(5, 7, seed=32), _randn(5, 7, seed=33)
    what = "distillation_loss on the same 5 examples listed twice (B = 10)"
    once = _kd(ex, z, v, 3.0, "distillation_loss(z (5, 7), v (5, 7), T=3)")
    check_tensor(_kd(ex, torch.cat([z, z]), torch.cat([v, v]), 3.0, what), once,
                 what + ": a mean over the batch does not grow with B (a sum would double)", rtol=1e-12, atol=0)
    parts = [_kd(ex, z[i:i + 1], v[i:i + 1], 3.0, f"distillation_loss of example {i} alone") for i in range(5)]
    check_tensor(once, torch.stack(parts).mean(),
                 "distillation_loss(z, v, T=3) must be the mean of the examples' own losses", rtol=1e-12, atol=0)


@pytest.mark.exercise("ex03.3")
@pytest.mark.parametrize("T", [1.0, 3.0])
def test_distillation_gradient_and_the_frozen_teacher(ex, T):
    z, v = _requires_grad(_randn(6, 5, seed=34)), _requires_grad(_randn(6, 5, seed=35))
    what = f"distillation_loss(z, v, T={T}) with z and v both requiring grad"
    out = _kd(ex, z, v, T, what)
    assert out.requires_grad, (
        "the loss must be differentiable in the student's logits (no .item(), no NumPy, no torch.no_grad) "
        f"— {what}")
    out.backward()
    assert v.grad is None or not v.grad.any(), (
        f"a gradient reached the teacher's logits: detach them (teacher_logits.detach()) — {what}")
    q, p = torch.softmax(z.detach() / T, -1), torch.softmax(v.detach() / T, -1)
    check_tensor(z.grad, T ** 2 * (q - p) / T / len(z),
                 what + ": the gradient in z is T² · (q − p) / T / B = T (q − p) / B", atol=1e-12, rtol=1e-9)


@pytest.mark.exercise("ex03.3")
def test_distillation_is_smallest_when_the_student_matches(ex):
    v = _randn(6, 10, seed=36)
    T = 4.0
    what = f"distillation_loss(z = v, v, T={T})"
    at_v = _kd(ex, v.clone(), v, T, what)
    p = torch.softmax(v / T, -1)
    check_tensor(at_v, T ** 2 * _entropy(p).mean(),
                 what + ": the cross-entropy of p with itself is the teacher's entropy H(p) (× T²), not 0 — "
                 "−Σ p log q, not only the KL", rtol=1e-10, atol=1e-12)
    for seed in range(3):
        z = v + _randn(6, 10, seed=37 + seed, scale=0.5)
        worse = _kd(ex, z, v, T, f"distillation_loss(z = v + noise, v, T={T})")
        assert worse > at_v, (
            f"a student that differs from the teacher must get a larger loss than the matching one "
            f"({worse.item():.6g} ≤ {at_v.item():.6g}) — distillation_loss(z = v + noise, v, T={T})")


@pytest.mark.exercise("ex03.3")
@pytest.mark.parametrize("T", [0.5, 2.0, 20.0])
def test_distillation_stable_for_logits_of_1e4(ex, T):
    z = _requires_grad(_randn(4, 10, seed=38, dtype=torch.float32, scale=1e4))
    v = _randn(4, 10, seed=39, dtype=torch.float32, scale=1e4)
    v[0] = z[0].detach()  # one row where the teacher agrees: its targets are near one-hot
    what = f"distillation_loss(logits of ±1e4, T={T}), float32"
    out = _kd(ex, z, v, T, what)
    check_tensor(out, _oracle_distillation(z, v, T).float(),
                 what + " (log q = z/T − logsumexp(z/T): log(softmax) underflows to log 0)",
                 rtol=1e-5, atol=1e-2)
    (g,) = torch.autograd.grad(out, z)
    assert torch.isfinite(g).all(), f"the gradient in z must be finite, got {g} — {what}"


@pytest.mark.exercise("ex03.3")
def test_distillation_on_non_contiguous_logits(ex):
    z, v = _randn(10, 6, seed=40).T, _randn(12, 10, seed=41)[1::2]
    assert not z.is_contiguous() and not v.is_contiguous()
    what = "distillation_loss(a transposed z (6, 10), a sliced v (6, 10), T=2)"
    check_tensor(_kd(ex, z, v, 2.0, what), _oracle_distillation(z, v, 2.0), what, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------- ex03.4 the student's loss (§4)

def _reference_student(logits, labels, teacher, T, alpha):
    return ref_hard_and_soft(logits, labels, teacher, T, alpha)


def _student(ex, z, y, v, T, alpha, what):
    out = call_unchanged(ex.student_loss, z, y, v, T, alpha, what=what)
    return _scalar(out, z.dtype, what)


@pytest.mark.exercise("ex03.4")
@pytest.mark.parametrize("alpha", [0.0, 0.1, 0.7, 1.0])
@pytest.mark.parametrize("T", [1.0, 3.0])
def test_student_loss_matches_reference(ex, T, alpha):
    z, v, y = _randn(12, 10, seed=50), _randn(12, 10, seed=51), _labels(12, range(10), seed=52)
    what = f"student_loss(z (12, 10), y, v (12, 10), T={T}, alpha={alpha})"
    check_tensor(_student(ex, z, y, v, T, alpha, what), _reference_student(z, y, v, T, alpha),
                 what + ": alpha · CE(z, y) + (1 − alpha) · T² · soft CE", rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex03.4")
@pytest.mark.parametrize("T", [1.0, 5.0])
def test_student_loss_endpoints_and_linearity(ex, T):
    z, v, y = _randn(8, 6, seed=53), _randn(8, 6, seed=54), _labels(8, range(6), seed=55)
    hard = F.cross_entropy(z, y)
    soft = _oracle_distillation(z, v, T)
    what = f"student_loss(z, y, v, T={T}, alpha=1)"
    check_tensor(_student(ex, z, y, v, T, 1.0, what), hard,
                 what + ": alpha = 1 is the usual cross-entropy with the labels, at T = 1 whatever T is",
                 rtol=1e-10, atol=1e-12)
    what = f"student_loss(z, y, v, T={T}, alpha=0)"
    check_tensor(_student(ex, z, y, v, T, 0.0, what), soft,
                 what + ": alpha = 0 is the distillation loss alone, T² · soft CE", rtol=1e-10, atol=1e-12)
    what = f"student_loss(z, y, v, T={T}, alpha=0.25)"
    check_tensor(_student(ex, z, y, v, T, 0.25, what), 0.25 * hard + 0.75 * soft,
                 what + ": 0.25 · hard + 0.75 · soft (alpha weighs the HARD loss)", rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex03.4")
def test_student_loss_gradient_and_the_frozen_teacher(ex):
    z, v = _requires_grad(_randn(6, 5, seed=56)), _requires_grad(_randn(6, 5, seed=57))
    y = _labels(6, range(5), seed=58)
    T, alpha = 2.0, 0.3
    what = f"student_loss(z, y, v, T={T}, alpha={alpha}) with z and v both requiring grad"
    out = _student(ex, z, y, v, T, alpha, what)
    assert out.requires_grad, f"the loss must be differentiable in the student's logits — {what}"
    out.backward()
    assert v.grad is None or not v.grad.any(), f"a gradient reached the teacher's logits — {what}"
    zz = _requires_grad(z)
    (expected,) = torch.autograd.grad(_reference_student(zz, y, v.detach(), T, alpha), zz)
    check_tensor(z.grad, expected, what + ": its gradient in z compared with the reference's", atol=1e-12,
                 rtol=1e-9)


@pytest.mark.exercise("ex03.4")
def test_student_loss_float32_non_contiguous(ex):
    z, v = _randn(10, 6, seed=59, dtype=torch.float32).T, _randn(12, 10, seed=60, dtype=torch.float32)[::2]
    y = _labels(6, range(10), seed=61)
    what = "student_loss(a transposed float32 z (6, 10), y, a sliced v, T=4, alpha=0.5)"
    check_tensor(_student(ex, z, y, v, 4.0, 0.5, what), _reference_student(z, y, v, 4.0, 0.5), what)


@pytest.mark.exercise("ex03.4")
def test_student_loss_stable_for_logits_of_1e4(ex):
    z = _randn(4, 10, seed=62, dtype=torch.float32, scale=1e4)
    v = _randn(4, 10, seed=63, dtype=torch.float32, scale=1e4)
    y = z.argmax(-1)  # labels the student gets right: CE near 0, the soft term dominates
    what = "student_loss(logits of ±1e4, y, v, T=2, alpha=0.5), float32"
    expected = 0.5 * F.cross_entropy(z.double(), y) + 0.5 * _oracle_distillation(z, v, 2.0)
    check_tensor(_student(ex, z, y, v, 2.0, 0.5, what), expected.float(), what, rtol=1e-5, atol=1e-2)


# ---------------------------------------------------------------- ex03.5 Learning without Forgetting (§5)

def _lwf_problem(C, old, B=10, seed=0, dtype=torch.float64):
    """Logits over C units, old_units as given, a teacher on those, labels on the NEW units only."""
    old_units = torch.tensor(old, dtype=torch.long)
    new = [u for u in range(C) if u not in old]
    z = _randn(B, C, seed=seed, dtype=dtype)
    v = _randn(B, len(old), seed=seed + 1, dtype=dtype)
    return z, _labels(B, new, seed=seed + 2), v, old_units


def _reference_lwf(z, y, v, old_units, T, lam):
    return ref_lwf_loss(z, y, v, old_units, T, lam, t_squared=True)  # this exercise keeps the T²


def _lwf(ex, z, y, v, old_units, T, lam, what):
    out = call_unchanged(ex.lwf_loss, z, y, v, old_units, T, lam, what=what)
    return _scalar(out, z.dtype, what)


LWF_CASES = {"old 0-3 of 6": (6, [0, 1, 2, 3]), "old 2,5,6 of 8": (8, [2, 5, 6]),
             "old 4-9 of 10": (10, [4, 5, 6, 7, 8, 9])}


@pytest.mark.exercise("ex03.5")
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0, 3.0])
@pytest.mark.parametrize("T", [1.0, 2.0])
@pytest.mark.parametrize("case", sorted(LWF_CASES))
def test_lwf_matches_reference(ex, case, T, lam):
    C, old = LWF_CASES[case]
    z, y, v, old_units = _lwf_problem(C, old, seed=C)
    what = f"lwf_loss(z (10, {C}), y, v (10, {len(old)}), old_units={old}, T={T}, lam={lam})"
    check_tensor(_lwf(ex, z, y, v, old_units, T, lam, what), _reference_lwf(z, y, v, old_units, T, lam),
                 what + ": CE(z, y) over all units + lam · distillation_loss(z[:, old_units], v, T)",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex03.5")
def test_lwf_hard_loss_is_over_every_unit_and_lam_weighs_only_the_old_term(ex):
    z, y, v, old_units = _lwf_problem(8, [2, 5, 6], seed=70)
    T = 2.0
    what = "lwf_loss(..., lam=0)"
    ce = F.cross_entropy(z, y)
    check_tensor(_lwf(ex, z, y, v, old_units, T, 0.0, what), ce,
                 what + ": with lam = 0 only the cross-entropy over ALL 8 units is left (the new labels compete "
                 "with the old units too)", rtol=1e-10, atol=1e-12)
    kd = _oracle_distillation(z[:, old_units], v, T)
    for lam in (0.2, 4.0):
        what = f"lwf_loss(..., T={T}, lam={lam})"
        check_tensor(_lwf(ex, z, y, v, old_units, T, lam, what), ce + lam * kd,
                     what + ": CE + lam · KD (lam weighs the old units' term only, CE keeps weight 1)",
                     rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex03.5")
def test_lwf_distills_the_old_units_alone(ex):
    z, y, v, old_units = _lwf_problem(8, [2, 5, 6], seed=71)
    T, lam = 2.0, 1.0
    new = torch.tensor([0, 1, 3, 4, 7])
    louder = z.clone()
    louder[:, new] += 5.0  # the new units' logits change; the old units' do not

    def kd_part(logits, what):
        return _lwf(ex, logits, y, v, old_units, T, lam, what) - _lwf(ex, logits, y, v, old_units, T, 0.0, what)
    what = "lwf_loss(z, ...) − lwf_loss(z, ..., lam=0), before and after raising the NEW units' logits by 5"
    check_tensor(kd_part(louder, what), kd_part(z, what),
                 what + ": the distillation term depends on the old units' logits alone (the student's softmax "
                 "is over the old units, like the teacher's)", rtol=1e-10, atol=1e-12)
    matching = z.clone()
    matching[:, old_units] = v
    what = "lwf_loss with z[:, old_units] = v"
    check_tensor(kd_part(matching, what), T ** 2 * _entropy(torch.softmax(v / T, -1)).mean(),
                 what + ": the student matches the teacher on the old units, so the distillation term is "
                 "T² H(p), its minimum", rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex03.5")
def test_lwf_gradient_and_the_frozen_teacher(ex):
    z, y, v, old_units = _lwf_problem(8, [2, 5, 6], seed=72)
    z, v = _requires_grad(z), _requires_grad(v)
    T, lam = 2.0, 0.7
    what = f"lwf_loss(z, y, v, old_units=[2, 5, 6], T={T}, lam={lam}) with z and v both requiring grad"
    out = _lwf(ex, z, y, v, old_units, T, lam, what)
    assert out.requires_grad, f"the loss must be differentiable in the student's logits — {what}"
    out.backward()
    assert v.grad is None or not v.grad.any(), f"a gradient reached the old network's logits — {what}"
    zz = _requires_grad(z)
    (expected,) = torch.autograd.grad(_reference_lwf(zz, y, v.detach(), old_units, T, lam), zz)
    check_tensor(z.grad, expected, what + ": its gradient in z compared with the reference's", atol=1e-12,
                 rtol=1e-9)


@pytest.mark.exercise("ex03.5")
def test_lwf_float32_non_contiguous(ex):
    z = _randn(8, 10, seed=73, dtype=torch.float32).T  # (10, 8), transposed
    v = _randn(10, 6, seed=74, dtype=torch.float32)[:, ::2]  # (10, 3), sliced
    old_units = torch.tensor([2, 5, 6])
    y = _labels(10, [0, 1, 3, 4, 7], seed=75)
    what = "lwf_loss(a transposed float32 z (10, 8), y, a sliced v (10, 3), old_units=[2, 5, 6], T=2, lam=1)"
    check_tensor(_lwf(ex, z, y, v, old_units, 2.0, 1.0, what), _reference_lwf(z, y, v, old_units, 2.0, 1.0),
                 what)


# ---------------------------------------------------------------- every exercise: inputs in general position

def _T_tensor(T, dtype):
    return torch.tensor(T, dtype=dtype)


T_TENSOR_CASES = [(torch.float32, torch.float64), (torch.float64, torch.float32), (torch.float32, torch.float32)]
T_TENSOR_IDS = ["float32 logits, float64 T", "float64 logits, float32 T", "float32 both"]


@pytest.mark.exercise("ex03.1")
@pytest.mark.parametrize("dtype,T_dtype", T_TENSOR_CASES, ids=T_TENSOR_IDS)
def test_softmax_T_accepts_a_0d_tensor_temperature(ex, dtype, T_dtype):
    z = _randn(4, 6, seed=80, dtype=dtype)
    T = _T_tensor(3.0, T_dtype)
    what = f"softmax_with_temperature(z {dtype}, T=torch.tensor(3.0, dtype={T_dtype}))"
    check_tensor(_softmax_T(ex, z, T, what), ref_tempered_softmax(z, 3.0), what + ": the same as with T = 3.0")
    with pytest.raises(ValueError):
        ex.softmax_with_temperature(z, _T_tensor(-1.0, T_dtype))
        pytest.fail(f"softmax_with_temperature(z, T=torch.tensor(-1.0)) must raise ValueError — {what}")


@pytest.mark.exercise("ex03.1")
def test_softmax_T_leaves_logits_that_require_grad_as_they_are(ex):
    z = _requires_grad(_randn(3, 5, seed=81))
    what = "softmax_with_temperature(z requiring grad, T=2)"
    out = _softmax_T(ex, z, 2.0, what)
    check_tensor(out, torch.softmax(z.detach() / 2.0, -1), what)
    assert out.requires_grad, f"the result must stay differentiable in the logits (no .detach(), no NumPy) — {what}"


@pytest.mark.exercise("ex03.2")
@pytest.mark.parametrize("dtype,T_dtype", T_TENSOR_CASES, ids=T_TENSOR_IDS)
def test_gradient_accepts_a_0d_tensor_temperature(ex, dtype, T_dtype):
    z, v = _randn(5, 6, seed=82, dtype=dtype), _randn(5, 6, seed=83, dtype=dtype)
    what = f"soft_cross_entropy_gradient(z, v {dtype}, T=torch.tensor(2.0, dtype={T_dtype}))"
    check_tensor(_gradient(ex, z, v, _T_tensor(2.0, T_dtype), what), ref_distillation_gradient(z, v, 2.0),
                 what + ": the same as with T = 2.0, in the logits' dtype")


@pytest.mark.exercise("ex03.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gradient_stable_for_logits_of_1e4_at_a_low_temperature(ex, dtype):
    z, v = _randn(4, 10, seed=84, dtype=dtype, scale=1e4), _randn(4, 10, seed=85, dtype=dtype, scale=1e4)
    v[1] -= 3e4  # a teacher row far below the others
    T = 0.5      # exp(1e4 / 0.5) overflows float64 too
    what = f"soft_cross_entropy_gradient(logits of ±1e4, T={T}), {dtype}"
    check_tensor(_gradient(ex, z, v, T, what), _autograd_gradient(z, v, T), what, atol=1e-6, rtol=1e-4)


@pytest.mark.exercise("ex03.3")
@pytest.mark.parametrize("dtype,T_dtype", T_TENSOR_CASES, ids=T_TENSOR_IDS)
def test_distillation_accepts_a_0d_tensor_temperature(ex, dtype, T_dtype):
    z, v = _randn(6, 5, seed=86, dtype=dtype), _randn(6, 5, seed=87, dtype=dtype)
    what = (f"distillation_loss(z, v {dtype}, T=torch.tensor(3.0, dtype={T_dtype})) — the result keeps z's "
            "dtype (two 0-d tensors promote to the wider dtype: apply T² before the mean, or use float(T))")
    check_tensor(_kd(ex, z, v, _T_tensor(3.0, T_dtype), what), ref_distillation(z, v, 3.0), what)


@pytest.mark.exercise("ex03.3")
@pytest.mark.parametrize("T", [0.5, 2.0, 20.0])
def test_distillation_stable_for_logits_of_1e4_in_float64(ex, T):
    z = _requires_grad(_randn(4, 10, seed=88, scale=1e4))
    v = _randn(4, 10, seed=89, scale=1e4)
    v[2] -= 3e4
    what = f"distillation_loss(logits of ±1e4, T={T}), float64 (exp(1e4 / {T}) overflows float64 at T < 14)"
    out = _kd(ex, z, v, T, what)
    check_tensor(out, _oracle_distillation(z, v, T), what + " (log q = z/T − logsumexp(z/T))",
                 rtol=1e-10, atol=1e-8)
    (g,) = torch.autograd.grad(out, z)
    assert torch.isfinite(g).all(), f"the gradient in z must be finite, got {g} — {what}"


@pytest.mark.exercise("ex03.3")
def test_distillation_leaves_the_teachers_requires_grad_flag(ex):
    z, v = _requires_grad(_randn(4, 5, seed=90)), _requires_grad(_randn(4, 5, seed=91))
    what = ("distillation_loss(z, v, T=2) with v requiring grad: use v.detach() (a new tensor), not "
            "v.detach_() or v.requires_grad_(False) (they change the caller's tensor)")
    _kd(ex, z, v, 2.0, what)
    assert v.requires_grad, what


@pytest.mark.exercise("ex03.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("T", [0.5, 2.0])
def test_student_loss_stable_for_logits_of_1e4_both_dtypes(ex, dtype, T):
    z = _randn(4, 10, seed=92, dtype=dtype, scale=1e4)
    v = _randn(4, 10, seed=93, dtype=dtype, scale=1e4)
    y = torch.tensor([3, 0, 9, 5])  # labels the student mostly gets wrong: a large hard loss
    what = f"student_loss(logits of ±1e4, y, v, T={T}, alpha=0.3), {dtype}"
    expected = 0.3 * F.cross_entropy(z.double(), y) + 0.7 * _oracle_distillation(z, v, T)
    tol = dict(rtol=1e-5, atol=1e-2) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-8)
    check_tensor(_student(ex, z, y, v, T, 0.3, what), expected.to(dtype), what, **tol)


@pytest.mark.exercise("ex03.4")
@pytest.mark.parametrize("dtype,T_dtype", T_TENSOR_CASES, ids=T_TENSOR_IDS)
def test_student_loss_accepts_a_0d_tensor_temperature(ex, dtype, T_dtype):
    z, v, y = _randn(6, 5, seed=94, dtype=dtype), _randn(6, 5, seed=95, dtype=dtype), _labels(6, range(5), seed=96)
    what = f"student_loss(z, y, v {dtype}, T=torch.tensor(4.0, dtype={T_dtype}), alpha=0.5)"
    check_tensor(_student(ex, z, y, v, _T_tensor(4.0, T_dtype), 0.5, what), _reference_student(z, y, v, 4.0, 0.5),
                 what + ": the same as with T = 4.0, in the logits' dtype")


@pytest.mark.exercise("ex03.5")
@pytest.mark.parametrize("old", [[6, 2, 5], [3, 0], [7, 1, 4, 0]], ids=["6,2,5", "3,0", "7,1,4,0"])
def test_lwf_old_units_in_any_order(ex, old):
    z, y, v, old_units = _lwf_problem(8, old, seed=100)
    T, lam = 2.0, 1.0
    what = (f"lwf_loss(z (10, 8), y, v (10, {len(old)}), old_units={old} (not sorted: column j of v is unit "
            f"old_units[j]), T={T}, lam={lam})")
    check_tensor(_lwf(ex, z, y, v, old_units, T, lam, what), _reference_lwf(z, y, v, old_units, T, lam),
                 what + ": index logits[:, old_units] in the order given (a boolean mask sorts the columns)",
                 rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ex03.5")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("T", [0.5, 2.0])
def test_lwf_stable_for_logits_of_1e4_both_dtypes(ex, dtype, T):
    z, y, v, old_units = _lwf_problem(8, [2, 5, 6], seed=101, dtype=dtype)
    z, v = z * 3e3, v * 3e3  # ±1e4
    what = f"lwf_loss(logits of ±1e4, y, v, old_units=[2, 5, 6], T={T}, lam=1.5), {dtype}"
    expected = F.cross_entropy(z.double(), y) + 1.5 * _oracle_distillation(z[:, old_units], v, T)
    tol = dict(rtol=1e-5, atol=1e-2) if dtype == torch.float32 else dict(rtol=1e-10, atol=1e-8)
    check_tensor(_lwf(ex, z, y, v, old_units, T, 1.5, what), expected.to(dtype), what, **tol)


@pytest.mark.exercise("ex03.5")
@pytest.mark.parametrize("dtype,T_dtype", T_TENSOR_CASES, ids=T_TENSOR_IDS)
def test_lwf_accepts_a_0d_tensor_temperature(ex, dtype, T_dtype):
    z, y, v, old_units = _lwf_problem(6, [0, 3], seed=102, dtype=dtype)
    what = f"lwf_loss(z, y, v {dtype}, old_units=[0, 3], T=torch.tensor(2.0, dtype={T_dtype}), lam=1)"
    check_tensor(_lwf(ex, z, y, v, old_units, _T_tensor(2.0, T_dtype), 1.0, what),
                 _reference_lwf(z, y, v, old_units, 2.0, 1.0),
                 what + ": the same as with T = 2.0, in the logits' dtype")
