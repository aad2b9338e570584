"""Grading tests of lesson 08 (COIL: optimal transport between classes): ex08.1–ex08.4.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse.transport` (`sinkhorn`, `class_cost`,
`transport_rows`, `retrospective_loss`) and `clcourse.memory.prototypes`, with independent oracles
(Sinkhorn's plain scalings and the prototypes written out in float64, values worked by hand, gradients
by autograd) and with properties the result must have whatever the implementation (a plan's column sums
are b after every sweep; a zero mass gives a zero row; no gradient reaches the rows or the old logits).

`clcourse.transport.sinkhorn` stops early once the row sums are within its tolerance (checked every 10
sweeps); the tests call it with tol=0 (its floor is 8·the dtype's resolution) and as many sweeps as
yours, so both are the same iteration. Every call checks that the inputs keep their values and their
requires_grad flag.
"""
import math

import pytest
import torch

from clcourse.memory import prototypes as ref_prototypes
from clcourse.transport import class_cost as ref_class_cost
from clcourse.transport import retrospective_loss as ref_retrospective_loss
from clcourse.transport import sinkhorn as ref_sinkhorn
from clcourse.transport import transport_rows as ref_transport_rows

from checks import call_unchanged, check_tensor, raises_value_error

EXERCISE_MODULE = "ex08_coil"

DTYPES = [torch.float64, torch.float32]
DTYPE_IDS = ["float64", "float32"]
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-12, rtol=1e-12)}


# ---------------------------------------------------------------- helpers

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64, scale=1.0):
    return (scale * torch.randn(tuple(shape), generator=_gen(seed), dtype=torch.float64)).to(dtype)


def _rand(*shape, seed=0, dtype=torch.float64, low=0.0, high=1.0):
    return (low + (high - low) * torch.rand(tuple(shape), generator=_gen(seed), dtype=torch.float64)).to(dtype)


def _tol(dtype, scale=1.0):
    t = TOL[dtype]
    return dict(atol=t["atol"] * scale, rtol=t["rtol"])


def _is_like(out, shape, dtype, what):
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert tuple(out.shape) == tuple(shape), f"expected shape {tuple(shape)}, got {tuple(out.shape)} — {what}"
    assert out.dtype == dtype, f"expected dtype {dtype}, got {out.dtype} — {what}"


# ---------------------------------------------------------------- ex08.1 sinkhorn_log (§1)

def _sinkhorn(ex, args, what):
    out = call_unchanged(ex.sinkhorn_log, *args, what=what)
    _is_like(out, args[2].shape, args[2].dtype, what + " (the plan has the cost's shape and dtype)")
    return out


def _marginals(n, m, seed, dtype):
    """Non-uniform masses of total 1 on both sides (a ≠ 1/n, b ≠ 1/m)."""
    a = _rand(n, seed=seed, low=0.2, high=1.0)
    b = _rand(m, seed=seed + 1, low=0.2, high=1.0)
    return (a / a.sum()).to(dtype), (b / b.sum()).to(dtype)


def _oracle_plain(a, b, cost, eps, iters):
    """Sinkhorn's plain scalings in float64 (fine for a moderate ε): u = exp(f/ε), v = exp(g/ε)."""
    a, b, cost = a.double(), b.double(), cost.double()
    K = torch.exp(-cost / eps)
    u, v = torch.ones_like(a), torch.ones_like(b)
    for _ in range(iters):
        u = a / (K @ v)
        v = b / (K.T @ u)
    return u[:, None] * K * v[None, :]


SHAPES = [(5, 7), (7, 5), (4, 4), (1, 3), (3, 1)]


@pytest.mark.exercise("ex08.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n,m", SHAPES, ids=[f"n={n} m={m}" for n, m in SHAPES])
def test_sinkhorn_log_converges_to_the_reference_plan(ex, n, m, dtype):
    a, b = _marginals(n, m, seed=10 + n, dtype=dtype)
    cost = _rand(n, m, seed=20 + m, dtype=dtype)
    what = f"sinkhorn_log(a ({n},) non-uniform, b ({m},) non-uniform, cost ({n}, {m}) in [0, 1], eps=0.1, iters=500), {dtype}"
    out = _sinkhorn(ex, (a, b, cost, 0.1, 500), what)
    check_tensor(out.sum(1), a, what + ": the row sums of the plan are a (the masses you were given, not 1/n)",
                 **_tol(dtype, 10.0))
    check_tensor(out.sum(0), b, what + ": the column sums of the plan are b", **_tol(dtype, 10.0))
    check_tensor(out, ref_sinkhorn(a, b, cost, 0.1, iters=500, tol=0.0),
                 what + " compared with clcourse.transport.sinkhorn", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex08.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("iters", [1, 2, 7])
@pytest.mark.parametrize("n,m", [(3, 5), (4, 4)], ids=["n=3 m=5", "n=4 m=4"])
def test_sinkhorn_log_a_few_sweeps_are_the_iteration_itself(ex, n, m, iters, dtype):
    a, b = _marginals(n, m, seed=30 + n, dtype=dtype)
    cost = _rand(n, m, seed=40 + m, dtype=dtype, high=2.0)
    what = (f"sinkhorn_log(a ({n},), b ({m},), cost ({n}, {m}) in [0, 2], eps=0.5, iters={iters}) — exactly {iters} "
            f"sweep(s) from f = g = 0, f then g, the plan from the last f and g, {dtype}")
    out = _sinkhorn(ex, (a, b, cost, 0.5, iters), what)
    check_tensor(out.sum(0), b, what + ": after each sweep (g updated last, from the new f) the column sums are "
                 "exactly b", **_tol(dtype, 10.0))
    check_tensor(out, _oracle_plain(a, b, cost, 0.5, iters).to(dtype),
                 what + ": the plain scalings u ← a/(Kv), v ← b/(Kᵀu) in float64 (u = exp(f/ε), v = exp(g/ε))",
                 **_tol(dtype, 10.0))
    check_tensor(out, ref_sinkhorn(a, b, cost, 0.5, iters=iters, tol=0.0),
                 what + " compared with clcourse.transport.sinkhorn", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex08.1")
@pytest.mark.parametrize("eps", [0.5, 0.1])
def test_sinkhorn_log_by_hand(ex, eps):
    f64 = dict(dtype=torch.float64)
    half = torch.tensor([0.5, 0.5], **f64)
    cost = torch.tensor([[0.0, 1.0], [1.0, 0.0]], **f64)
    what = f"sinkhorn_log(a (½, ½), b (½, ½), cost [[0, 1], [1, 0]], eps={eps}, iters=1)"
    x = 0.5 / (1 + math.exp(-1 / eps))
    expected = torch.tensor([[x, 0.5 - x], [0.5 - x, x]], **f64)
    check_tensor(_sinkhorn(ex, (half, half, cost, eps, 1), what), expected,
                 what + f": by symmetry one sweep gives P_ii = ½/(1 + e^(−1/ε)) = {x:.6g} on the diagonal, "
                 "½ − P_ii off it", atol=1e-14, rtol=0)


SMALL = {torch.float32: (0.005, 0.6), torch.float64: (0.001, 0.75)}


@pytest.mark.exercise("ex08.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n,m", [(4, 6), (6, 3)], ids=["n=4 m=6", "n=6 m=3"])
def test_sinkhorn_log_small_eps_stays_finite(ex, n, m, dtype):
    eps, low = SMALL[dtype]
    a, b = _marginals(n, m, seed=50 + n, dtype=dtype)
    cost = _rand(n, m, seed=60 + m, dtype=dtype, low=low, high=1.0)
    what = (f"sinkhorn_log(a ({n},), b ({m},), cost ({n}, {m}) in [{low}, 1], eps={eps}, iters=300), {dtype} — "
            f"exp(−C/ε) ≤ exp(−{low / eps:.0f}) is 0 in {dtype}")
    out = _sinkhorn(ex, (a, b, cost, eps, 300), what)
    assert torch.isfinite(out).all(), (
        f"the plan holds NaN or inf: exp(−C/ε) underflows to 0 here, so the plain scalings a/(Kv) divide by 0; "
        f"iterate the potentials f, g with torch.logsumexp — {what}")
    check_tensor(out.sum(0), b, what + ": the column sums are b after every sweep", **_tol(dtype, 10.0))
    check_tensor(out, ref_sinkhorn(a, b, cost, eps, iters=300, tol=0.0),
                 what + " compared with clcourse.transport.sinkhorn", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex08.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_sinkhorn_log_zero_mass_gives_a_zero_row(ex, dtype):
    a = torch.tensor([0.3, 0.0, 0.5, 0.2], dtype=dtype)
    b = torch.tensor([0.25, 0.45, 0.3], dtype=dtype)
    cost = _rand(4, 3, seed=70, dtype=dtype)
    what = f"sinkhorn_log(a (0.3, 0, 0.5, 0.2), b (0.25, 0.45, 0.3), cost (4, 3), eps=0.1, iters=500), {dtype}"
    out = _sinkhorn(ex, (a, b, cost, 0.1, 500), what)
    assert torch.isfinite(out).all(), f"the plan holds NaN or inf: log 0 = −inf gives f = −inf and a zero row — {what}"
    assert torch.equal(out[1], torch.zeros(3, dtype=dtype)), (
        f"row 1 (mass 0) should be exactly 0, got {out[1].tolist()} — {what}")
    check_tensor(out, ref_sinkhorn(a, b, cost, 0.1, iters=500, tol=0.0),
                 what + " compared with clcourse.transport.sinkhorn", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex08.1")
def test_sinkhorn_log_keeps_the_inputs(ex):
    a, b = _marginals(3, 4, seed=80, dtype=torch.float64)
    cost = _rand(3, 4, seed=81).requires_grad_()
    what = "sinkhorn_log(a, b, cost requiring grad, eps=0.2, iters=50)"
    _sinkhorn(ex, (a, b, cost, 0.2, 50), what)


@pytest.mark.exercise("ex08.1")
@pytest.mark.parametrize("bad", ["a length", "b length", "cost 1-d", "dtypes", "eps=0", "eps<0", "iters=0",
                                 "iters=True", "iters=2.0", "totals"])
def test_sinkhorn_log_bad_arguments_raise(ex, bad):
    a, b = _marginals(3, 4, seed=90, dtype=torch.float64)
    cost = _rand(3, 4, seed=91)
    eps, iters = {"eps=0": 0.0, "eps<0": -0.1}.get(bad, 0.1), {"iters=0": 0, "iters=True": True,
                                                               "iters=2.0": 2.0}.get(bad, 10)
    if bad == "a length":
        a = torch.cat([a, a.new_zeros(1)])
    elif bad == "b length":
        b = b[:3] / b[:3].sum()
    elif bad == "cost 1-d":
        cost = cost[0]
    elif bad == "dtypes":
        cost = cost.float()
    elif bad == "totals":
        b = 2 * b
    raises_value_error(ex.sinkhorn_log, a, b, cost, eps, iters,
                       what=f"sinkhorn_log with {bad} (a {tuple(a.shape)}, b {tuple(b.shape)}, cost {tuple(cost.shape)}, "
                       f"eps={eps}, iters={iters!r}): a (n,), b (m,), cost (n, m) of one dtype, ε > 0, iters an int ≥ 1, "
                       "equal totals")


# ---------------------------------------------------------------- ex08.2 class_cost_matrix (§2)

def _cost(ex, args, what):
    out = call_unchanged(ex.class_cost_matrix, *args, what=what)
    n_old, n_classes = args[2], args[3]
    _is_like(out, (n_old, n_classes - n_old), args[0].dtype, what + " (old classes as rows, new as columns)")
    return out


def _class_data(n_classes, d, seed, dtype):
    """Shuffled labels, unequal counts (class c has 2 + (c·3 mod 5) samples), rows of very different norms."""
    counts = [2 + (c * 3) % 5 for c in range(n_classes)]
    labels = torch.cat([torch.full((k,), c, dtype=torch.long) for c, k in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=_gen(seed))]
    scales = torch.exp(_rand(len(labels), 1, seed=seed + 1, low=-3.0, high=3.0))
    features = (_randn(len(labels), d, seed=seed + 2) + 0.5) * scales
    return features.to(dtype), labels


def _oracle_cost(features, labels, n_old, n_classes, p):
    f = features.detach().double()
    protos = []
    for c in range(n_classes):
        rows = f[labels == c]
        unit = rows / rows.pow(2).sum(1, keepdim=True).sqrt()
        mean = unit.mean(0)
        protos.append(mean / mean.pow(2).sum().sqrt())
    protos = torch.stack(protos)
    old, new = protos[:n_old], protos[n_old:]
    return (old[:, None, :] - new[None, :, :]).abs().pow(p).sum(-1).pow(1 / p)


COSTS = [(3, 5, 3.0), (2, 7, 3.0), (4, 5, 2.0), (1, 2, 3.0), (3, 6, 1.5), (5, 7, 4.0)]


@pytest.mark.exercise("ex08.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n_old,n_classes,p", COSTS, ids=[f"n_old={a} n_classes={b} p={p}" for a, b, p in COSTS])
def test_class_cost_matrix_matches_the_formula_and_the_reference(ex, n_old, n_classes, p, dtype):
    features, labels = _class_data(n_classes, 6, seed=100 + n_classes + n_old, dtype=dtype)
    what = (f"class_cost_matrix(features ({len(labels)}, 6) with row norms from e⁻³ to e³, labels shuffled with "
            f"unequal counts {torch.bincount(labels).tolist()}, n_old={n_old}, n_classes={n_classes}, p={p}), {dtype}")
    out = _cost(ex, (features, labels, n_old, n_classes, p), what)
    check_tensor(out, _oracle_cost(features, labels, n_old, n_classes, p).to(dtype),
                 what + ": ‖μ_k − μ_j‖_p between unit prototypes (each feature normalised, the class mean normalised "
                 "again), old k as rows, new j as columns", **_tol(dtype, 10.0))
    protos = ref_prototypes(features, labels, n_classes)
    check_tensor(out, ref_class_cost(protos[:n_old], protos[n_old:], p),
                 what + " compared with clcourse.transport.class_cost on clcourse.memory.prototypes", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex08.2")
def test_class_cost_matrix_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    features = torch.tensor([[0.0, -2.0], [3.0, 0.0], [0.0, 1.0]], **f64)
    labels = torch.tensor([1, 0, 0])
    r = 1 / math.sqrt(2)
    what = "class_cost_matrix(features [[0, −2], [3, 0], [0, 1]], labels [1, 0, 0], n_old=1, n_classes=2, p=3)"
    expected = (r ** 3 + (r + 1) ** 3) ** (1 / 3)
    check_tensor(_cost(ex, (features, labels, 1, 2, 3.0), what), torch.tensor([[expected]], **f64),
                 what + ": class 0's unit features (1, 0) and (0, 1) average to (½, ½), of norm 1/√2: its prototype is "
                 "(1/√2, 1/√2); class 1's is (0, −1); ‖·‖₃ = (|1/√2|³ + |1/√2 + 1|³)^(1/3) (not normalising the "
                 "features first gives the mean (1.5, 0.5))", atol=1e-14, rtol=0)


@pytest.mark.exercise("ex08.2")
def test_class_cost_matrix_keeps_the_inputs(ex):
    features, labels = _class_data(4, 3, seed=110, dtype=torch.float64)
    features.requires_grad_()
    _cost(ex, (features, labels, 2, 4, 3.0), "class_cost_matrix(features requiring grad, labels, 2, 4, p=3)")


@pytest.mark.exercise("ex08.2")
@pytest.mark.parametrize("bad", ["label = n_classes", "label = -1", "empty class", "n_old=0", "n_old=n_classes",
                                 "n_old=True", "n_classes=4.0", "p=0.5", "labels length"])
def test_class_cost_matrix_bad_arguments_raise(ex, bad):
    features, labels = _class_data(4, 3, seed=120, dtype=torch.float64)
    n_old, n_classes, p = {"n_old=0": 0, "n_old=n_classes": 4, "n_old=True": True}.get(bad, 2), \
        {"n_classes=4.0": 4.0}.get(bad, 4), {"p=0.5": 0.5}.get(bad, 3.0)
    labels = labels.clone()
    if bad == "label = n_classes":
        labels[0] = 4
    elif bad == "label = -1":
        labels[0] = -1
    elif bad == "empty class":
        labels[labels == 3] = 2
    elif bad == "labels length":
        labels = labels[:-1]
    raises_value_error(ex.class_cost_matrix, features, labels, n_old, n_classes, p,
                       what=f"class_cost_matrix with {bad} (labels {labels.tolist()}, n_old={n_old!r}, "
                       f"n_classes={n_classes!r}, p={p}): labels in [0, n_classes), every class present, "
                       "1 ≤ n_old < n_classes ints, p ≥ 1")


# ---------------------------------------------------------------- ex08.3 prospective_rows (§3)

def _rows(ex, args, what):
    out = call_unchanged(ex.prospective_rows, *args, what=what + " (the old rows are the classifier's own weights)")
    _is_like(out, (args[0].shape[1], args[1].shape[1]), args[1].dtype, what + " (one row per new class: Pᵀ·Ŵ)")
    return out


def _plan_and_rows(n, m, d, seed, dtype):
    plan = _rand(n, m, seed=seed, low=0.0, high=1.0) ** 3   # uneven weights: rows of different norms
    plan = (plan / plan.sum()).to(dtype)
    rows = _randn(n, d, seed=seed + 1) * torch.exp(_rand(n, 1, seed=seed + 2, low=-2.0, high=2.0))
    return plan, rows.to(dtype)


def _oracle_rows(plan, rows):
    plan, rows = plan.double(), rows.detach().double()
    unit = rows / rows.pow(2).sum(1, keepdim=True).sqrt()
    moved = plan.T @ unit
    return moved * (rows.pow(2).sum(1).sqrt().mean() / moved.pow(2).sum(1).sqrt().mean())


ROWS = [(4, 6, 5), (6, 4, 3), (5, 5, 4), (1, 3, 2), (3, 1, 4)]


@pytest.mark.exercise("ex08.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n,m,d", ROWS, ids=[f"n={n} m={m} d={d}" for n, m, d in ROWS])
def test_prospective_rows_match_the_formula_and_the_reference(ex, n, m, d, dtype):
    plan, rows = _plan_and_rows(n, m, d, seed=200 + n * m, dtype=dtype)
    what = f"prospective_rows(plan ({n}, {m}), old_rows ({n}, {d}) with norms from e⁻² to e², {dtype})"
    out = _rows(ex, (plan, rows), what)
    check_tensor(out, _oracle_rows(plan, rows).to(dtype),
                 what + ": Pᵀ·unit_rows(W_old), times ONE factor mean‖W_old,k‖ / mean‖(PᵀŴ)_j‖", **_tol(dtype, 100.0))
    check_tensor(out, ref_transport_rows(plan, rows), what + " compared with clcourse.transport.transport_rows",
                 **_tol(dtype, 100.0))
    old_mean = torch.linalg.vector_norm(rows.double(), dim=1).mean()
    check_tensor(torch.linalg.vector_norm(out.double(), dim=1).mean(), old_mean,
                 what + ": the new rows' MEAN norm is the old rows' mean norm", **_tol(torch.float32, 10.0))


@pytest.mark.exercise("ex08.3")
def test_prospective_rows_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    rows = torch.tensor([[2.0, 0.0], [0.0, 4.0], [0.0, 0.0]], **f64)
    plan = torch.tensor([[0.25, 0.0], [0.25, 0.25], [0.0, 0.25]], **f64)
    what = "prospective_rows(plan [[¼, 0], [¼, ¼], [0, ¼]], old_rows [[2, 0], [0, 4], [0, 0]])"
    moved = torch.tensor([[0.25, 0.25], [0.0, 0.25]], **f64)
    s = 2.0 / ((math.sqrt(2) * 0.25 + 0.25) / 2)
    check_tensor(_rows(ex, (plan, rows), what), moved * s,
                 what + ": the unit rows (1, 0), (0, 1), (0, 0) (a zero row stays zero) mixed by the plan's columns give "
                 "(¼, ¼) and (0, ¼); the old mean norm (2 + 4 + 0)/3 = 2 over their mean norm (√2/4 + ¼)/2 is ONE factor "
                 f"s = {s:.6g}: the rows keep their different norms", atol=1e-12, rtol=0)


@pytest.mark.exercise("ex08.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_prospective_rows_plan_in_float64(ex, dtype):
    plan, rows = _plan_and_rows(4, 3, 5, seed=210, dtype=torch.float64)
    rows = rows.to(dtype)
    what = f"prospective_rows(plan (4, 3) in float64 (COIL solves the plan in float64), old_rows (4, 5) {dtype})"
    out = _rows(ex, (plan, rows), what)
    check_tensor(out, ref_transport_rows(plan, rows), what + ": the result in old_rows' dtype, compared with "
                 "clcourse.transport.transport_rows", **_tol(dtype, 100.0))


@pytest.mark.exercise("ex08.3")
def test_prospective_rows_zero_plan_gives_zero_rows(ex):
    _, rows = _plan_and_rows(3, 2, 4, seed=220, dtype=torch.float64)
    plan = torch.zeros(3, 2, dtype=torch.float64)
    what = "prospective_rows(plan of zeros (3, 2), old_rows (3, 4))"
    check_tensor(_rows(ex, (plan, rows), what), torch.zeros(2, 4, dtype=torch.float64),
                 what + ": nothing moved: zero rows, not NaN (clamp the mean norm you divide by)", atol=0, rtol=0)


@pytest.mark.exercise("ex08.3")
def test_prospective_rows_keep_the_inputs(ex):
    plan, rows = _plan_and_rows(3, 4, 5, seed=230, dtype=torch.float32)
    rows.requires_grad_()
    _rows(ex, (plan, rows), "prospective_rows(plan (3, 4), old_rows (3, 5) requiring grad, as a classifier's weights do)")


@pytest.mark.exercise("ex08.3")
@pytest.mark.parametrize("bad", ["plan rows", "plan 1-d", "rows 1-d"])
def test_prospective_rows_bad_arguments_raise(ex, bad):
    plan, rows = _plan_and_rows(3, 4, 5, seed=240, dtype=torch.float64)
    if bad == "plan rows":
        plan = plan[:2]
    elif bad == "plan 1-d":
        plan = plan[:, 0]
    elif bad == "rows 1-d":
        rows = rows[:, 0]
    raises_value_error(ex.prospective_rows, plan, rows,
                       what=f"prospective_rows with {bad} (plan {tuple(plan.shape)}, old_rows {tuple(rows.shape)}): "
                       "plan (n, m), old_rows (n, d)")


# ---------------------------------------------------------------- ex08.4 retrospective_loss (§4)

def _retro(ex, args, what):
    out = call_unchanged(ex.retrospective_loss, *args, what=what)
    _is_like(out, (), args[0].dtype, what + " (one number: the batch mean)")
    return out


def _retro_inputs(b, k, d, seed, dtype, logit_scale=3.0):
    features = _randn(b, d, seed=seed) * torch.exp(_rand(b, 1, seed=seed + 1, low=-2.0, high=2.0))
    rows = _randn(k, d, seed=seed + 2) * torch.exp(_rand(k, 1, seed=seed + 3, low=-2.0, high=2.0))
    old_logits = _randn(b, k, seed=seed + 4, scale=logit_scale)
    return features.to(dtype), rows.to(dtype), old_logits.to(dtype)


def _oracle_retro(features, rows, old_logits, T):
    f, w, z = (t.detach().double() for t in (features, rows, old_logits))
    cos = (f / f.pow(2).sum(1, keepdim=True).sqrt()) @ (w / w.pow(2).sum(1, keepdim=True).sqrt()).T
    zs = z / T - (z / T).max(1, keepdim=True).values
    p = zs.exp() / zs.exp().sum(1, keepdim=True)
    s = cos / T
    log_q = s - s.max(1, keepdim=True).values
    log_q = log_q - log_q.exp().sum(1, keepdim=True).log()
    return -(p * log_q).sum(1).mean()


RETRO = [(6, 3, 5, 2.0), (1, 4, 2, 2.0), (8, 5, 3, 0.5), (5, 1, 3, 2.0), (7, 6, 4, 1.0)]


@pytest.mark.exercise("ex08.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("b,k,d,T", RETRO, ids=[f"B={b} K={k} d={d} T={T}" for b, k, d, T in RETRO])
def test_retrospective_loss_matches_the_formula_and_the_reference(ex, b, k, d, T, dtype):
    features, rows, old_logits = _retro_inputs(b, k, d, seed=300 + b * k, dtype=dtype)
    what = (f"retrospective_loss(features ({b}, {d}) and retro_rows ({k}, {d}) of norms e⁻² to e², old_logits "
            f"({b}, {k}), T={T}), {dtype}")
    out = _retro(ex, (features, rows, old_logits, T), what)
    check_tensor(out, _oracle_retro(features, rows, old_logits, T).to(dtype),
                 what + ": −mean_b Σ_k softmax(z*/T)_k · log_softmax(cos(f, W_retro)/T)_k, cos of the NORMALISED "
                 "features and rows", **_tol(dtype, 10.0))
    check_tensor(out, ref_retrospective_loss(features, rows, old_logits, T),
                 what + " compared with clcourse.transport.retrospective_loss", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex08.4")
def test_retrospective_loss_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    features = torch.tensor([[3.0, 0.0]], **f64)
    rows = torch.tensor([[5.0, 0.0], [0.0, 0.5]], **f64)
    old_logits = torch.tensor([[math.log(3.0) * 2, 0.0]], **f64)
    what = "retrospective_loss(features [[3, 0]], retro_rows [[5, 0], [0, ½]], old_logits [[2·log 3, 0]], T=2)"
    # p = (¾, ¼); cos = (1, 0); log q = (½, 0) − log(e^½ + 1)
    lse = math.log(math.exp(0.5) + 1)
    expected = -(0.75 * (0.5 - lse) + 0.25 * (0.0 - lse))
    check_tensor(_retro(ex, (features, rows, old_logits, 2.0), what), torch.tensor(expected, **f64),
                 what + ": p = softmax((2·log 3, 0)/2) = (¾, ¼); cos = (1, 0) whatever the lengths; log q = (½, 0) − "
                 "log(e^½ + 1); L = −(¾·log q₁ + ¼·log q₂)", atol=1e-14, rtol=0)


@pytest.mark.exercise("ex08.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_retrospective_loss_gradient_reaches_the_features_only(ex, dtype):
    features, rows, old_logits = (t.requires_grad_() for t in _retro_inputs(6, 4, 5, seed=310, dtype=dtype))
    what = f"retrospective_loss(features, retro_rows, old_logits — all three requiring grad, T=2), {dtype}"
    out = _retro(ex, (features, rows, old_logits, 2.0), what)
    assert out.requires_grad, (
        f"the loss does not depend on the features for autograd: no detach of the features, no no_grad — COIL's "
        f"released code had exactly this defect, and the term trained nothing — {what}")
    g_f, g_w, g_z = torch.autograd.grad(out, (features, rows, old_logits), allow_unused=True)
    assert g_f is not None and g_f.abs().max() > 0, f"no gradient reaches the features — {what}"
    assert g_w is None or not g_w.abs().max() > 0, (
        f"a gradient reaches retro_rows (up to {g_w.abs().max().item():.3g}): the transported rows are a fixed target "
        f"— detach them — {what}")
    assert g_z is None or not g_z.abs().max() > 0, (
        f"a gradient reaches old_logits (up to {g_z.abs().max().item():.3g}): the old network is the teacher — "
        f"detach its logits — {what}")
    (ref,) = torch.autograd.grad(ref_retrospective_loss(features, rows, old_logits, 2.0), features)
    check_tensor(g_f, ref, what + ": the gradient in the features compared with clcourse.transport.retrospective_loss's",
                 **_tol(dtype, 10.0))


@pytest.mark.exercise("ex08.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_retrospective_loss_large_old_logits(ex, dtype):
    features, rows, old_logits = _retro_inputs(5, 4, 3, seed=320, dtype=dtype, logit_scale=1000.0)
    what = f"retrospective_loss(features (5, 3), retro_rows (4, 3), old_logits ~ 10³ (5, 4), T=2), {dtype}"
    out = _retro(ex, (features, rows, old_logits, 2.0), what)
    assert torch.isfinite(out), (
        f"got {out.item()}: exp(z*/T) overflows for logits of 10³ — use torch.softmax, which subtracts the row's "
        f"maximum — {what}")
    check_tensor(out, ref_retrospective_loss(features, rows, old_logits, 2.0),
                 what + " compared with clcourse.transport.retrospective_loss", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex08.4")
@pytest.mark.parametrize("bad", ["d differs", "logits rows", "logits columns", "T=0", "T<0"])
def test_retrospective_loss_bad_arguments_raise(ex, bad):
    features, rows, old_logits = _retro_inputs(4, 3, 5, seed=330, dtype=torch.float64)
    T = {"T=0": 0.0, "T<0": -1.0}.get(bad, 2.0)
    if bad == "d differs":
        rows = rows[:, :4]
    elif bad == "logits rows":
        old_logits = old_logits[:3]
    elif bad == "logits columns":
        old_logits = old_logits[:, :2]
    raises_value_error(ex.retrospective_loss, features, rows, old_logits, T,
                       what=f"retrospective_loss with {bad} (features {tuple(features.shape)}, retro_rows "
                       f"{tuple(rows.shape)}, old_logits {tuple(old_logits.shape)}, T={T}): (B, d), (K, d), (B, K), T > 0")
