"""Grading tests of lesson 05 (BiC, WA, DER: the bias towards new classes, the auxiliary head, HAT's gates):
ex05.1–ex05.6.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse.calibration` (`balanced_split`,
`bias_correction`, `fit_bias_correction`, `weight_align`), `clcourse.methods.der.aux_targets` and
`clcourse.masks` (`hat_scale`, `hat_gate`), with independent oracles (the drawing order written out with
Python lists, BiC's gradients written out by hand in float64, norms as explicit sums, cases small enough to
do by hand) and with properties the result must have whatever the implementation.

The fit (ex05.3) is compared on logits of moderate size, where gradient descent is well behaved and two
correct implementations agree to rounding; with huge logits (±1e4) its steps are large and rounding grows
from step to step, so there the tests ask for finite numbers and a looser agreement.
Every call checks that the inputs keep their values and their requires_grad flag.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from clcourse.calibration import balanced_split as ref_balanced_split
from clcourse.calibration import bias_correction as ref_bias_correction
from clcourse.calibration import fit_bias_correction as ref_fit_bias_correction
from clcourse.calibration import weight_align as ref_weight_align
from clcourse.masks import hat_gate as ref_hat_gate
from clcourse.masks import hat_scale as ref_hat_scale
from clcourse.methods.der import aux_targets as ref_aux_targets

from checks import call_unchanged, check_equal, check_tensor

EXERCISE_MODULE = "ex05_bic_wa_der"

DTYPES = [torch.float64, torch.float32]
DTYPE_IDS = ["float64", "float32"]
TOL = {torch.float32: dict(atol=1e-6, rtol=1e-6), torch.float64: dict(atol=1e-13, rtol=1e-13)}

# BiC's fit as clcourse runs it (calibration.fit_bias_correction's defaults): full batch, from (1, 0).
LR, MOMENTUM, BETA_DECAY = 0.1, 0.9, 0.1


# ---------------------------------------------------------------- helpers

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64, scale=1.0):
    return (scale * torch.randn(tuple(shape), generator=_gen(seed), dtype=torch.float64)).to(dtype)


def _is_long(out, n, what):
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.dtype == torch.long, f"expected dtype torch.int64 (a LongTensor), got {out.dtype} — {what}"
    assert out.shape == (n,), f"expected shape ({n},), got {tuple(out.shape)} — {what}"


def _raises(fn, *args, what):
    with pytest.raises(ValueError):
        fn(*args)
        pytest.fail(f"{what} must raise ValueError")


# ---------------------------------------------------------------- ex05.1 the balanced validation set (§2)

def _oracle_split(labels, per_class, seed):
    """The documented drawing order, written with Python lists: classes ascending, one randperm each."""
    g = _gen(seed)
    values = labels.tolist()
    held = []
    for c in sorted(set(values)):
        where = [i for i, v in enumerate(values) if v == c]
        perm = torch.randperm(len(where), generator=g).tolist()
        held += [where[p] for p in perm[:per_class]]
    held = sorted(held)
    return held, [i for i in range(len(values)) if i not in set(held)], g


def _split(ex, labels, per_class, seed, what):
    g = _gen(seed)
    out = call_unchanged(ex.balanced_split, labels, per_class, g,
                         what=what + " (labels must stay as they are: mark the held-out examples in a mask of your own)")
    assert isinstance(out, tuple) and len(out) == 2, (
        f"expected a tuple (held_out, rest), got {type(out).__name__} — {what}")
    n_classes = len(set(labels.tolist()))
    _is_long(out[0], n_classes * per_class, what + ": held_out has per_class indices of every class")
    _is_long(out[1], len(labels) - n_classes * per_class, what + ": rest is every other index")
    return out[0], out[1], g


# unsorted labels whose classes are not 0..k−1, and a 10-class case with classes of very different sizes
SPLIT_LABELS = {
    "{7, 2, 9}": torch.tensor([7, 2, 9, 2, 7, 7, 9, 2, 9, 9, 2, 7, 7, 2, 9, 9, 7, 2, 2, 7]),
    "10 classes": torch.randint(0, 10, (300,), generator=_gen(1)),
    "{40, 3}": torch.tensor([40] * 9 + [3] * 5)[torch.randperm(14, generator=_gen(2))],
}


@pytest.mark.exercise("ex05.1")
@pytest.mark.parametrize("per_class", [1, 3])
@pytest.mark.parametrize("seed", [0, 11])
@pytest.mark.parametrize("case", sorted(SPLIT_LABELS))
def test_split_matches_the_drawing_order_and_the_reference(ex, case, seed, per_class):
    labels = SPLIT_LABELS[case].clone()
    what = f"balanced_split(labels {case} ({len(labels)},), per_class={per_class}, generator seeded {seed})"
    held, rest, g = _split(ex, labels, per_class, seed, what)
    expected_held, expected_rest, g_oracle = _oracle_split(labels, per_class, seed)
    check_equal(held, torch.tensor(expected_held, dtype=torch.long),
                what + ": for each class c in ASCENDING order, perm = torch.randperm(n_c, generator=generator), "
                "held_out gets where_c[perm[:per_class]]; then sort held_out ascending")
    check_equal(rest, torch.tensor(expected_rest, dtype=torch.long), what + ": rest is every other index, ascending")
    ref_held, ref_rest = ref_balanced_split(labels, per_class, _gen(seed))
    check_equal(held, ref_held, what + " compared with clcourse.calibration.balanced_split")
    check_equal(rest, ref_rest, what + " compared with clcourse.calibration.balanced_split")
    after, expected_after = torch.rand(1, generator=g), torch.rand(1, generator=g_oracle)
    assert torch.equal(after, expected_after), (
        f"the generator was used differently (its next number is {after.item():.6f}, expected "
        f"{expected_after.item():.6f}): draw exactly one torch.randperm per class and nothing else — {what}")


@pytest.mark.exercise("ex05.1")
@pytest.mark.parametrize("per_class", [1, 2, 5])
def test_split_is_balanced_disjoint_and_sorted(ex, per_class):
    labels = torch.randint(0, 6, (90,), generator=_gen(3)) * 3 + 1  # classes 1, 4, 7, …, 16
    what = f"balanced_split(labels (90,) with classes 1, 4, …, 16, per_class={per_class})"
    held, rest, _ = _split(ex, labels, per_class, 4, what)
    assert held.tolist() == sorted(held.tolist()) and rest.tolist() == sorted(rest.tolist()), (
        f"held_out and rest must be sorted ascending (not grouped by class), got held_out {held.tolist()} — {what}")
    assert sorted(held.tolist() + rest.tolist()) == list(range(90)), (
        f"held_out and rest together must be every index 0..89 once — {what}")
    counts = {c: int((labels[held] == c).sum()) for c in labels.unique().tolist()}
    assert set(counts.values()) == {per_class}, (
        f"held_out must hold exactly {per_class} example(s) of every class, got {counts} — {what}")


@pytest.mark.exercise("ex05.1")
def test_split_is_random_not_the_first_examples(ex):
    labels = torch.arange(5).repeat_interleave(20)  # class c at 20c … 20c + 19
    splits = set()
    for seed in range(6):
        held, _, _ = _split(ex, labels, 3, seed, f"balanced_split(labels 0×20, 1×20, …, 4×20, per_class=3), seed {seed}")
        splits.add(tuple(held.tolist()))
    first = tuple(20 * c + k for c in range(5) for k in range(3))
    assert first not in splits and len(splits) == 6, (
        f"the held-out examples must be drawn at random (one torch.randperm per class), not the first per_class "
        f"of each class; got {len(splits)} different splits for 6 seeds — balanced_split(labels, 3, generator)")


@pytest.mark.exercise("ex05.1")
def test_split_with_the_global_generator(ex):
    labels = SPLIT_LABELS["{7, 2, 9}"]
    what = "balanced_split(labels {7, 2, 9}, per_class=2, generator=None) after torch.manual_seed(5)"
    with torch.random.fork_rng():
        torch.manual_seed(5)
        out = call_unchanged(ex.balanced_split, labels, 2, what=what)
        torch.manual_seed(5)
        expected = ref_balanced_split(labels, 2)
    check_equal(out[0], expected[0], what + ": generator None draws from torch's global generator")
    check_equal(out[1], expected[1], what)


@pytest.mark.exercise("ex05.1")
def test_split_by_hand_and_non_contiguous_labels(ex):
    labels = torch.tensor([5, 5, 5, 5, 1, 1])
    what = "balanced_split([5, 5, 5, 5, 1, 1], per_class=1, seed 0)"
    held, rest, _ = _split(ex, labels, 1, 0, what)
    g = _gen(0)  # class 1 first (ascending), then class 5
    perm_1, perm_5 = torch.randperm(2, generator=g), torch.randperm(4, generator=g)
    expected = sorted([4 + int(perm_1[0]), int(perm_5[0])])
    check_equal(held, torch.tensor(expected), what + f": class 1 first (ascending): randperm(2) = {perm_1.tolist()} "
                f"picks index {4 + int(perm_1[0])}; then class 5: randperm(4) = {perm_5.tolist()} picks index "
                f"{int(perm_5[0])}")
    wide = torch.stack([SPLIT_LABELS["10 classes"], torch.zeros(300, dtype=torch.long)], dim=1)[:, 0]
    assert not wide.is_contiguous()
    what = "balanced_split(a non-contiguous labels tensor (300,), per_class=4, seed 6)"
    held, rest, _ = _split(ex, wide, 4, 6, what)
    ref_held, ref_rest = ref_balanced_split(wide.contiguous(), 4, _gen(6))
    check_equal(held, ref_held, what)
    check_equal(rest, ref_rest, what)


@pytest.mark.exercise("ex05.1")
def test_split_of_no_labels(ex):
    labels = torch.zeros(0, dtype=torch.long)
    what = "balanced_split(labels (0,), per_class=2)"
    held, rest, _ = _split(ex, labels, 2, 0, what)
    check_equal(held, torch.zeros(0, dtype=torch.long), what + ": two empty LongTensors")
    check_equal(rest, torch.zeros(0, dtype=torch.long), what)


@pytest.mark.exercise("ex05.1")
@pytest.mark.parametrize("per_class", [True, False, 0, -1, 2.0, "2", None])
def test_split_bad_per_class_raises(ex, per_class):
    _raises(ex.balanced_split, SPLIT_LABELS["{7, 2, 9}"], per_class, _gen(0),
            what=f"balanced_split(labels, per_class={per_class!r}): per_class must be an int >= 1 (a bool is not a "
                 "count, although isinstance(True, int) holds: test for bool first)")


@pytest.mark.exercise("ex05.1")
def test_split_too_small_a_class_or_2d_labels_raises(ex):
    labels = torch.tensor([3, 3, 3, 8, 8, 3, 3])  # class 8 has 2 examples
    _raises(ex.balanced_split, labels, 2, _gen(0),
            what="balanced_split([3, 3, 3, 8, 8, 3, 3], per_class=2): class 8 has only 2 examples, holding out 2 "
                 "would leave none to train on")
    what = "balanced_split([3, 3, 3, 8, 8, 3, 3], per_class=1): every class keeps one to train on"
    held, rest, _ = _split(ex, labels, 1, 0, what)
    assert sorted(labels[held].tolist()) == [3, 8], f"expected one 3 and one 8 held out — {what}"
    _raises(ex.balanced_split, labels.view(7, 1), 1, _gen(0),
            what="balanced_split(labels of shape (7, 1), per_class=1): labels must be 1-D")


# ---------------------------------------------------------------- ex05.2 the bias correction layer (§2)

def _correct(ex, logits, n_old, alpha, beta, what):
    out = call_unchanged(ex.bias_correction, logits, n_old, alpha, beta,
                         what=what + " (build a new tensor: torch.cat of the two blocks, or write into a clone)")
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.shape == logits.shape and out.dtype == logits.dtype, (
        f"expected a {tuple(logits.shape)} tensor of dtype {logits.dtype}, got {tuple(out.shape)} {out.dtype} — {what}")
    return out


def _oracle_correction(logits, n_old, alpha, beta):
    q = logits.detach().double().clone()
    q[:, n_old:] = float(alpha) * q[:, n_old:] + float(beta)
    return q


@pytest.mark.exercise("ex05.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("n_old", [0, 2, 5, 7])
@pytest.mark.parametrize("as_tensors", [False, True], ids=["numbers", "0-d tensors"])
def test_correction_matches_the_formula_and_the_reference(ex, as_tensors, n_old, dtype):
    logits = _randn(9, 7, seed=10 + n_old, dtype=dtype, scale=3.0)
    alpha, beta = (torch.tensor(0.7, dtype=dtype), torch.tensor(-1.3, dtype=dtype)) if as_tensors else (0.7, -1.3)
    what = f"bias_correction(logits (9, 7), n_old={n_old}, α=0.7, β=−1.3{' as 0-d tensors' if as_tensors else ''}), {dtype}"
    out = _correct(ex, logits, n_old, alpha, beta, what)
    check_equal(out[:, :n_old], logits[:, :n_old],
                what + f": the old columns 0..{n_old - 1} are copied unchanged (q_k = o_k), not corrected")
    check_tensor(out, _oracle_correction(logits, n_old, 0.7, -1.3).to(dtype),
                 what + f": the new columns {n_old}..6 are α·o + β", **TOL[dtype])
    check_tensor(out, ref_bias_correction(logits, n_old, alpha, beta),
                 what + " compared with clcourse.calibration.bias_correction", **TOL[dtype])


@pytest.mark.exercise("ex05.2")
def test_correction_by_hand(ex):
    logits = torch.tensor([[1.0, -2.0, 4.0, 0.5], [0.0, 3.0, -1.0, 2.0]], dtype=torch.float64)
    what = "bias_correction([[1, −2, 4, .5], [0, 3, −1, 2]], n_old=2, α=0.5, β=1)"
    check_tensor(_correct(ex, logits, 2, 0.5, 1.0, what),
                 torch.tensor([[1.0, -2.0, 3.0, 1.25], [0.0, 3.0, 0.5, 2.0]], dtype=torch.float64),
                 what + ": columns 0, 1 (old) unchanged; columns 2, 3 (new): 0.5·4 + 1 = 3, 0.5·0.5 + 1 = 1.25, "
                 "0.5·(−1) + 1 = 0.5, 0.5·2 + 1 = 2", atol=0, rtol=0)
    what = "bias_correction([[1, −2, 4, .5], [0, 3, −1, 2]], n_old=4, α=0.5, β=1): no new unit"
    check_tensor(_correct(ex, logits, 4, 0.5, 1.0, what), logits, what + ": a copy", atol=0, rtol=0)
    what = "bias_correction([[1, −2, 4, .5], [0, 3, −1, 2]], n_old=0, α=2, β=−1): every unit new"
    check_tensor(_correct(ex, logits, 0, 2.0, -1.0, what), 2 * logits - 1, what, atol=0, rtol=0)


@pytest.mark.exercise("ex05.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_correction_passes_gradients_to_alpha_and_beta(ex, dtype):
    logits = _randn(6, 5, seed=12, dtype=dtype, scale=2.0)
    alpha = torch.tensor(1.5, dtype=dtype, requires_grad=True)
    beta = torch.tensor(0.25, dtype=dtype, requires_grad=True)
    what = f"bias_correction(logits (6, 5), n_old=3, α, β 0-d tensors with requires_grad=True), {dtype}"
    out = _correct(ex, logits, 3, alpha, beta, what)
    assert out.requires_grad, (
        f"the result does not depend on α and β for autograd: use them as tensors (no float(alpha), no .item(), "
        f"no detach) — ex05.3 fits them by gradient descent — {what}")
    w = _randn(6, 5, seed=13, dtype=dtype)
    g_alpha, g_beta = torch.autograd.grad((out * w).sum(), (alpha, beta))
    check_tensor(g_alpha, (w[:, 3:] * logits[:, 3:]).sum(),
                 what + ": ∂(Σ w·q)/∂α = Σ over the new columns of w·o", **TOL[dtype])
    check_tensor(g_beta, w[:, 3:].sum(), what + ": ∂(Σ w·q)/∂β = Σ over the new columns of w", **TOL[dtype])


@pytest.mark.exercise("ex05.2")
def test_correction_returns_a_new_tensor_and_keeps_the_network_graph(ex):
    logits = _randn(4, 6, seed=14)
    for n_old in (0, 3, 6):
        what = f"bias_correction(logits (4, 6), n_old={n_old}, α=2, β=1)"
        out = _correct(ex, logits, n_old, 2.0, 1.0, what)
        assert out.untyped_storage().data_ptr() != logits.untyped_storage().data_ptr(), (
            f"the result shares the input's memory: return a NEW tensor (even when n_old = C) — {what}")
    layer = torch.nn.Linear(3, 5).double()
    logits = layer(_randn(4, 3, seed=15))  # straight from a network: not a leaf, requires grad
    what = "bias_correction(logits = layer(x) (requires grad, not a leaf), n_old=2, α=0.5, β=0.1)"
    out = _correct(ex, logits, 2, 0.5, 0.1, what)
    out.sum().backward()
    check_tensor(layer.bias.grad, torch.tensor([4.0, 4.0, 2.0, 2.0, 2.0], dtype=torch.float64),
                 what + ": the gradient reaching the network is 1 per old logit and α per new one (× 4 examples)",
                 atol=1e-12, rtol=0)


@pytest.mark.exercise("ex05.2")
def test_correction_on_non_contiguous_logits(ex):
    logits = _randn(7, 9, seed=16).T  # (9, 7), transposed
    assert not logits.is_contiguous()
    what = "bias_correction(a transposed logits (9, 7), n_old=4, α=1.2, β=−0.4)"
    check_tensor(_correct(ex, logits, 4, 1.2, -0.4, what), _oracle_correction(logits, 4, 1.2, -0.4), what,
                 atol=1e-13, rtol=1e-13)


@pytest.mark.exercise("ex05.2")
@pytest.mark.parametrize("n_old", [True, False, -1, 6, 2.0, "2", None])
def test_correction_bad_n_old_raises(ex, n_old):
    _raises(ex.bias_correction, _randn(3, 5, seed=17), n_old, 1.0, 0.0,
            what=f"bias_correction(logits (3, 5), n_old={n_old!r}, 1, 0): n_old must be an int in [0, 5], not a bool")


@pytest.mark.exercise("ex05.2")
@pytest.mark.parametrize("shape", [(5,), (2, 3, 4)])
def test_correction_logits_not_2d_raise(ex, shape):
    _raises(ex.bias_correction, torch.zeros(shape), 1, 1.0, 0.0,
            what=f"bias_correction(logits of shape {shape}, n_old=1, 1, 0): logits must be 2-D (B, C)")


# ---------------------------------------------------------------- ex05.3 fitting α and β (§2)

def _oracle_fit(logits, labels, n_old, steps, lr=LR, momentum=MOMENTUM, decay=BETA_DECAY):
    """Momentum gradient descent on mean CE(q) + (decay/2)·β², the gradients written out in float64:
    ∂CE/∂q_ik = (p_ik − [k = y_i]) / n; ∂q_ik/∂α = o_ik and ∂q_ik/∂β = 1 for the new units k ≥ n_old."""
    o = logits.detach().double()
    n = len(o)
    onehot = F.one_hot(labels, o.shape[1]).double()
    alpha, beta, v_alpha, v_beta = 1.0, 0.0, 0.0, 0.0
    for _ in range(steps):
        q = o.clone()
        q[:, n_old:] = alpha * o[:, n_old:] + beta
        q = q - q.max(dim=1, keepdim=True).values
        p = q.exp() / q.exp().sum(dim=1, keepdim=True)
        r = (p - onehot)[:, n_old:] / n
        g_alpha = float((r * o[:, n_old:]).sum())
        g_beta = float(r.sum()) + decay * beta
        v_alpha, v_beta = momentum * v_alpha + g_alpha, momentum * v_beta + g_beta
        alpha, beta = alpha - lr * v_alpha, beta - lr * v_beta
    return alpha, beta


def _fit(ex, logits, labels, n_old, steps, what):
    out = call_unchanged(ex.fit_bias_correction, logits, labels, n_old, steps,
                         what=what + " (work on logits.detach(): the network is frozen)")
    assert isinstance(out, tuple) and len(out) == 2, f"expected a tuple (alpha, beta), got {type(out).__name__} — {what}"
    dtype = logits.dtype
    for name, v in zip(("alpha", "beta"), out):
        assert isinstance(v, torch.Tensor), f"expected {name} as a 0-d tensor, got {type(v).__name__} {v!r} — {what}"
        assert v.dim() == 0, f"expected {name} as a 0-d tensor, got shape {tuple(v.shape)} — {what}"
        assert v.dtype == dtype, f"expected {name} of dtype {dtype}, got {v.dtype} — {what}"
        assert not v.requires_grad, f"return {name} detached (requires_grad False) — {what}"
    return out


def _validation(n, C, n_old, seed, dtype, scale=2.0, bias=2.0):
    """Logits of a network biased towards the new units (+bias on them), labels of every unit, unsorted."""
    logits = _randn(n, C, seed=seed, scale=scale)
    labels = torch.randint(0, C, (n,), generator=_gen(seed + 1))
    logits[torch.arange(n), labels] += 2.0  # the network is mostly right …
    logits[:, n_old:] += bias               # … but scores the new classes too high
    return logits.to(dtype), labels


def _check_fit(out, expected, what, dtype, tol=None):
    tol = tol or (dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-9, rtol=1e-9))
    for name, got, want in zip(("α", "β"), out, expected):
        check_tensor(got, torch.tensor(want, dtype=dtype), f"{name} — {what}", **tol)


FIT_CASES = {"C=10 n_old=6": (120, 10, 6), "C=5 n_old=2": (50, 5, 2), "C=4 n_old=3": (40, 4, 3)}


@pytest.mark.exercise("ex05.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("steps", [1, 2, 10, 200])
@pytest.mark.parametrize("case", sorted(FIT_CASES))
def test_fit_matches_the_gradients_by_hand_and_the_reference(ex, case, steps, dtype):
    n, C, n_old = FIT_CASES[case]
    logits, labels = _validation(n, C, n_old, seed=20 + C, dtype=dtype)
    what = f"fit_bias_correction(logits ({n}, {C}), labels, n_old={n_old}, steps={steps}), {dtype}"
    out = _fit(ex, logits, labels, n_old, steps, what)
    expected = _oracle_fit(logits, labels, n_old, steps)
    _check_fit(out, expected, what + f": from (α, β) = (1, 0), {steps} step(s) of v ← 0.9·v + g, (α, β) ← (α, β) − "
               f"0.1·v on mean CE(q) + 0.05·β² — expected (α, β) = ({expected[0]:.6f}, {expected[1]:.6f})", dtype)
    ref = ref_fit_bias_correction(logits, labels, n_old, steps=steps)
    _check_fit(out, [float(v) for v in ref], what + " compared with clcourse.calibration.fit_bias_correction", dtype)


@pytest.mark.exercise("ex05.3")
def test_fit_one_and_two_steps_by_hand(ex):
    logits = torch.tensor([[0.0, 2.0]], dtype=torch.float64)
    labels = torch.tensor([0])
    s = 1 / (1 + math.exp(-2.0))  # p_1 = σ(2) at (α, β) = (1, 0): q = [0, 2]
    what = "fit_bias_correction([[0, 2]], labels [0], n_old=1, steps=1)"
    _check_fit(_fit(ex, logits, labels, 1, 1, what), [1 - LR * 2 * s, -LR * s],
               what + f": at (1, 0), p_1 = σ(2) = {s:.6f}; ∂L/∂α = p_1·o_1 = 2σ(2), ∂L/∂β = p_1 (+ 0.1·β = 0); "
               f"one step: α = 1 − 0.1·2σ(2) = {1 - LR * 2 * s:.6f}, β = −0.1·σ(2) = {-LR * s:.6f}",
               torch.float64, dict(atol=1e-12, rtol=1e-12))
    a1, b1 = 1 - LR * 2 * s, -LR * s
    s2 = 1 / (1 + math.exp(-(2 * a1 + b1)))
    v_a, v_b = MOMENTUM * 2 * s + 2 * s2, MOMENTUM * s + s2 + BETA_DECAY * b1
    expected = [a1 - LR * v_a, b1 - LR * v_b]
    what = "fit_bias_correction([[0, 2]], labels [0], n_old=1, steps=2)"
    _check_fit(_fit(ex, logits, labels, 1, 2, what), expected,
               what + f": step 2 at (α, β) = ({a1:.6f}, {b1:.6f}): g = (2p_1, p_1 + 0.1·β) with p_1 = σ(2α + β) = "
               f"{s2:.6f}; v = 0.9·v_1 + g (momentum: v_1 = the first gradient) = ({v_a:.6f}, {v_b:.6f}); "
               f"(α, β) − 0.1·v = ({expected[0]:.6f}, {expected[1]:.6f})", torch.float64, dict(atol=1e-12, rtol=1e-12))


@pytest.mark.exercise("ex05.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_fit_zero_steps_and_no_new_unit_keep_one_and_zero(ex, dtype):
    logits, labels = _validation(30, 5, 3, seed=30, dtype=dtype)
    what = f"fit_bias_correction(logits (30, 5), labels, n_old=3, steps=0), {dtype}"
    _check_fit(_fit(ex, logits, labels, 3, 0, what), [1.0, 0.0], what + ": no step: (α, β) = (1, 0)", dtype,
               dict(atol=0, rtol=0))
    what = f"fit_bias_correction(logits (30, 5), labels, n_old=5, steps=50), {dtype}: no new unit"
    _check_fit(_fit(ex, logits, labels, 5, 50, what), [1.0, 0.0],
               what + ": α and β touch no logit, so the CE does not depend on them; the penalty keeps β at 0",
               dtype, dict(atol=1e-7, rtol=0))


@pytest.mark.exercise("ex05.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_fit_every_unit_new(ex, dtype):
    logits, labels = _validation(40, 4, 0, seed=31, dtype=dtype, bias=0.0)
    what = f"fit_bias_correction(logits (40, 4), labels, n_old=0, steps=30), {dtype}: every unit new"
    out = _fit(ex, logits, labels, 0, 30, what)
    expected = _oracle_fit(logits, labels, 0, 30)
    _check_fit(out, expected, what + ": β shifts every logit alike, so the softmax ignores it (only the penalty "
               f"acts on it, and it starts at 0); α is a temperature — expected ({expected[0]:.6f}, {expected[1]:.6f})",
               dtype, dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else None)


@pytest.mark.exercise("ex05.3")
def test_fit_lowers_the_validation_loss(ex):
    logits, labels = _validation(200, 10, 5, seed=32, dtype=torch.float64, bias=3.0)
    what = "fit_bias_correction(logits (200, 10) biased +3 on the new units, labels, n_old=5, steps=200)"
    alpha, beta = _fit(ex, logits, labels, 5, 200, what)

    def loss(a, b):
        return float(F.cross_entropy(_oracle_correction(logits, 5, a, b), labels)) + BETA_DECAY / 2 * b * b

    before, after = loss(1.0, 0.0), loss(float(alpha), float(beta))
    assert after < before - 0.05, (
        f"the fitted (α, β) = ({float(alpha):.4f}, {float(beta):.4f}) should lower mean CE + 0.05·β² well below its "
        f"value at (1, 0), {before:.4f}; got {after:.4f} — {what}")
    assert float(beta) < 0, f"the new units score too high: β should come out negative, got {float(beta):.4f} — {what}"


@pytest.mark.exercise("ex05.3")
def test_fit_leaves_the_network_alone(ex):
    torch.manual_seed(0)
    layer = torch.nn.Linear(6, 5).double()
    x = _randn(30, 6, seed=33)
    labels = torch.randint(0, 5, (30,), generator=_gen(34))
    logits = layer(x)  # requires grad: straight from the network
    what = "fit_bias_correction(logits = layer(x) (requires grad), labels, n_old=3, steps=20)"
    out = _fit(ex, logits, labels, 3, 20, what)
    assert layer.weight.grad is None and layer.bias.grad is None, (
        f"gradients reached the network's weights: the network is frozen, work on logits.detach() — {what}")
    _check_fit(out, _oracle_fit(logits, labels, 3, 20), what, torch.float64)
    leaf = logits.detach().clone().requires_grad_()
    what = "fit_bias_correction(logits with requires_grad=True (a leaf), labels, n_old=3, steps=20)"
    _fit(ex, leaf, labels, 3, 20, what)
    assert leaf.grad is None, f"a gradient was accumulated into logits.grad: detach the logits — {what}"


@pytest.mark.exercise("ex05.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("steps", [1, 20])
def test_fit_huge_logits(ex, steps, dtype):
    logits, labels = _validation(40, 6, 3, seed=35, dtype=torch.float64, scale=1.0, bias=0.5)
    logits = (1e4 * logits).to(dtype)  # of the order of ±1e4: the softmax is 0 or 1 everywhere
    what = f"fit_bias_correction(logits × 1e4 (40, 6), labels, n_old=3, steps={steps}), {dtype}"
    alpha, beta = _fit(ex, logits, labels, 3, steps, what)
    assert math.isfinite(float(alpha)) and math.isfinite(float(beta)), (
        f"got (α, β) = ({float(alpha)}, {float(beta)}): F.cross_entropy is finite at ±1e4 (it works with "
        f"log-softmax); exp(1e4) is inf — {what}")
    expected = _oracle_fit(logits, labels, 3, steps)
    _check_fit((alpha, beta), expected, what + f": expected ({expected[0]:.4f}, {expected[1]:.4f})", dtype,
               dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-9, rtol=1e-9))
    ref = ref_fit_bias_correction(logits, labels, 3, steps=steps)
    _check_fit((alpha, beta), [float(v) for v in ref], what + " compared with clcourse.calibration", dtype,
               dict(atol=1e-4, rtol=1e-4) if dtype == torch.float32 else dict(atol=1e-9, rtol=1e-9))


@pytest.mark.exercise("ex05.3")
@pytest.mark.parametrize("steps", [True, -1, 2.0, "10", None])
def test_fit_bad_steps_raise(ex, steps):
    logits, labels = _validation(10, 4, 2, seed=36, dtype=torch.float64)
    _raises(ex.fit_bias_correction, logits, labels, 2, steps,
            what=f"fit_bias_correction(logits, labels, n_old=2, steps={steps!r}): steps must be an int >= 0, not a bool")


@pytest.mark.exercise("ex05.3")
def test_fit_bad_inputs_raise(ex):
    logits, labels = _validation(10, 4, 2, seed=37, dtype=torch.float64)
    _raises(ex.fit_bias_correction, logits, labels[:9], 2, 5,
            what="fit_bias_correction(logits (10, 4), labels (9,), n_old=2, steps=5): one label per row of logits")
    _raises(ex.fit_bias_correction, logits, labels.view(10, 1), 2, 5,
            what="fit_bias_correction(logits (10, 4), labels (10, 1), n_old=2, steps=5): labels must be 1-D")
    _raises(ex.fit_bias_correction, logits[:0], labels[:0], 2, 5,
            what="fit_bias_correction(logits (0, 4), labels (0,), n_old=2, steps=5): no example to fit on")
    for n_old in (True, -1, 5):
        _raises(ex.fit_bias_correction, logits, labels, n_old, 5,
                what=f"fit_bias_correction(logits (10, 4), labels, n_old={n_old!r}, steps=5): n_old as in ex05.2")


# ---------------------------------------------------------------- ex05.4 weight aligning (§3)

def _oracle_norms(weight):
    """Each row's Euclidean norm as an explicit sum in float64, after dividing by its largest |entry|."""
    w = weight.detach().double()
    peak = w.abs().amax(dim=1)
    safe = torch.where(peak > 0, peak, torch.ones_like(peak))
    return peak * ((w / safe[:, None]) ** 2).sum(dim=1).sqrt()


def _oracle_align(weight, n_old):
    norms = _oracle_norms(weight)
    gamma = norms[:n_old].mean() / norms[n_old:].mean()
    aligned = weight.detach().double().clone()
    aligned[n_old:] *= gamma
    return aligned, gamma


def _align(ex, weight, n_old, what):
    out = call_unchanged(ex.weight_align, weight, n_old,
                         what=what + " (return a new tensor: weight[n_old:] *= γ changes the network's layer)")
    assert isinstance(out, tuple) and len(out) == 2, f"expected a tuple (aligned, gamma), got {type(out).__name__} — {what}"
    aligned, gamma = out
    assert isinstance(aligned, torch.Tensor) and aligned.shape == weight.shape and aligned.dtype == weight.dtype, (
        f"expected aligned as a {tuple(weight.shape)} tensor of dtype {weight.dtype}, got "
        f"{tuple(getattr(aligned, 'shape', ()))} {getattr(aligned, 'dtype', type(aligned).__name__)} — {what}")
    assert isinstance(gamma, torch.Tensor) and gamma.dim() == 0 and gamma.dtype == weight.dtype, (
        f"expected γ as a 0-d tensor of dtype {weight.dtype}, got {gamma!r} — {what}")
    return aligned, gamma


def _layer_weight(C, d, seed, dtype=torch.float64):
    """Rows of very different norms (old rows long, new rows longer: the bias WA removes)."""
    w = _randn(C, d, seed=seed) * (0.2 + 2.8 * torch.rand(C, 1, generator=_gen(seed + 1), dtype=torch.float64))
    return w.to(dtype)


ALIGN_CASES = {"C=10 n_old=7": (10, 7), "C=10 n_old=3": (10, 3), "C=5 n_old=1": (5, 1), "C=5 n_old=4": (5, 4)}


@pytest.mark.exercise("ex05.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", sorted(ALIGN_CASES))
def test_align_matches_the_norms_and_the_reference(ex, case, dtype):
    C, n_old = ALIGN_CASES[case]
    w = _layer_weight(C, 8, seed=40 + C + n_old, dtype=dtype)
    w[n_old:] *= 3  # the new classes' rows are longer
    what = f"weight_align(weight ({C}, 8), n_old={n_old}), {dtype}"
    aligned, gamma = _align(ex, w, n_old, what)
    expected, expected_gamma = _oracle_align(w, n_old)
    tol = dict(atol=1e-6, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-13, rtol=1e-12)
    check_tensor(gamma, expected_gamma.to(dtype),
                 what + f": γ = mean of the {n_old} old rows' norms / mean of the {C - n_old} new rows' norms "
                 f"= {expected_gamma:.6f} (norms, not squared; each mean over its own group)", **tol)
    check_equal(aligned[:n_old], w[:n_old], what + ": the old rows are copied unchanged")
    check_tensor(aligned, expected.to(dtype), what + ": the new rows multiplied by γ", **tol)
    ref_aligned, ref_gamma = ref_weight_align(w, n_old)
    check_tensor(gamma, ref_gamma, what + " compared with clcourse.calibration.weight_align", **tol)
    check_tensor(aligned, ref_aligned, what + " compared with clcourse.calibration.weight_align", **tol)


@pytest.mark.exercise("ex05.4")
def test_align_by_hand(ex):
    w = torch.tensor([[3.0, 4.0], [0.0, 5.0], [1.0, 0.0], [0.0, -2.0]], dtype=torch.float64)
    what = "weight_align([[3, 4], [0, 5], [1, 0], [0, −2]], n_old=2)"
    aligned, gamma = _align(ex, w, 2, what)
    check_tensor(gamma, torch.tensor(10 / 3, dtype=torch.float64),
                 what + ": old norms 5, 5 (mean 5), new norms 1, 2 (mean 1.5): γ = 5 / 1.5 = 10/3 — old over new "
                 "(not 0.3), norms (not squared: 25 / 2.5 = 10)", atol=1e-14, rtol=0)
    check_tensor(aligned, torch.tensor([[3.0, 4.0], [0.0, 5.0], [10 / 3, 0.0], [0.0, -20 / 3]], dtype=torch.float64),
                 what + ": the new rows × 10/3, the old rows unchanged", atol=1e-14, rtol=0)
    w = torch.tensor([[6.0, 8.0], [1.0, 0.0], [0.0, 2.0], [0.0, -3.0]], dtype=torch.float64)
    what = "weight_align([[6, 8], [1, 0], [0, 2], [0, −3]], n_old=1)"
    aligned, gamma = _align(ex, w, 1, what)
    check_tensor(gamma, torch.tensor(5.0, dtype=torch.float64),
                 what + ": old mean norm 10, new mean norm (1 + 2 + 3)/3 = 2: γ = 5 (MEANS: the sums 10 / 6 give 5/3)",
                 atol=1e-14, rtol=0)
    check_tensor(aligned, torch.tensor([[6.0, 8.0], [5.0, 0.0], [0.0, 10.0], [0.0, -15.0]], dtype=torch.float64),
                 what, atol=1e-13, rtol=0)


@pytest.mark.exercise("ex05.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_align_equalises_the_mean_norms(ex, dtype):
    w = _layer_weight(12, 16, seed=41, dtype=dtype)
    w[8:] *= 4
    what = f"weight_align(weight (12, 16), n_old=8), {dtype}"
    aligned, _ = _align(ex, w, 8, what)
    norms = _oracle_norms(aligned)
    check_tensor(norms[8:].mean(), norms[:8].mean(),
                 what + ": after aligning, the new rows' mean norm equals the old rows'",
                 atol=1e-5 if dtype == torch.float32 else 1e-12, rtol=1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.exercise("ex05.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_align_huge_and_tiny_weights(ex, dtype):
    w = _layer_weight(6, 5, seed=42, dtype=dtype)
    expected, expected_gamma = _oracle_align(w, 4)
    big, small = {torch.float32: (1e20, 1e-25), torch.float64: (1e200, 1e-200)}[dtype]
    for factor in (big, small):
        what = f"weight_align({factor:g} · weight (6, 5), n_old=4), {dtype}"
        aligned, gamma = _align(ex, factor * w, 4, what)
        check_tensor(gamma, expected_gamma.to(dtype),
                     what + f": γ does not change when every row is scaled alike ({expected_gamma:.6f}) — a row's norm "
                     "sqrt(Σ w²) overflows (or underflows) here: take its largest |entry| times the norm of the row "
                     "divided by it", atol=1e-5 if dtype == torch.float32 else 1e-12, rtol=1e-5)
        check_tensor(aligned / factor, expected.to(dtype), what + ": aligned / factor is the unscaled answer",
                     atol=1e-5 if dtype == torch.float32 else 1e-12, rtol=1e-5)


@pytest.mark.exercise("ex05.4")
def test_align_zero_rows(ex):
    w = _layer_weight(6, 4, seed=43)
    w[4] = 0  # a zero new row: norm 0, counted in the new mean
    what = "weight_align(weight (6, 4) with row 4 (new) all zero, n_old=3)"
    aligned, gamma = _align(ex, w, 3, what)
    expected, expected_gamma = _oracle_align(w, 3)
    check_tensor(gamma, expected_gamma, what + ": the zero row counts in the new rows' mean as 0", atol=1e-13, rtol=1e-12)
    check_tensor(aligned, expected, what + ": the zero row stays zero", atol=1e-13, rtol=1e-12)
    w[:3] = 0
    what = "weight_align(weight (6, 4) with every old row zero, n_old=3)"
    aligned, gamma = _align(ex, w, 3, what)
    check_tensor(gamma, torch.tensor(0.0, dtype=torch.float64), what + ": γ = 0 / (new mean) = 0", atol=0, rtol=0)
    check_tensor(aligned, torch.zeros(6, 4, dtype=torch.float64), what + ": every row becomes zero", atol=0, rtol=0)
    w = _layer_weight(6, 4, seed=44)
    w[3:] = 0
    _raises(ex.weight_align, w, 3,
            what="weight_align(weight (6, 4) with every new row zero, n_old=3): γ would be infinite")


@pytest.mark.exercise("ex05.4")
def test_align_a_layer_parameter_and_non_contiguous_weight(ex):
    layer = torch.nn.Linear(5, 7).double()
    with torch.no_grad():
        layer.weight[4:] *= 3
    what = "weight_align(layer.weight (an nn.Parameter, requires_grad=True) (7, 5), n_old=4)"
    aligned, gamma = _align(ex, layer.weight, 4, what)
    expected, expected_gamma = _oracle_align(layer.weight, 4)
    check_tensor(gamma.detach(), expected_gamma, what, atol=1e-13, rtol=1e-12)
    check_tensor(aligned.detach(), expected, what, atol=1e-13, rtol=1e-12)
    w = _layer_weight(8, 9, seed=45).T  # (9, 8), transposed
    assert not w.is_contiguous()
    what = "weight_align(a transposed weight (9, 8), n_old=6)"
    aligned, gamma = _align(ex, w, 6, what)
    expected, expected_gamma = _oracle_align(w, 6)
    check_tensor(gamma, expected_gamma, what, atol=1e-13, rtol=1e-12)
    check_tensor(aligned, expected, what, atol=1e-13, rtol=1e-12)


@pytest.mark.exercise("ex05.4")
@pytest.mark.parametrize("n_old", [True, False, 0, 6, -1, 2.0, "2", None])
def test_align_bad_n_old_raises(ex, n_old):
    _raises(ex.weight_align, _layer_weight(6, 3, seed=46), n_old,
            what=f"weight_align(weight (6, 3), n_old={n_old!r}): n_old must be an int in [1, 5] (old rows and new "
                 "rows), not a bool")


@pytest.mark.exercise("ex05.4")
def test_align_weight_not_2d_raises(ex):
    _raises(ex.weight_align, torch.ones(6), 3, what="weight_align(weight of shape (6,), n_old=3): weight must be 2-D")


# ---------------------------------------------------------------- ex05.5 DER's auxiliary targets (§4)

def _aux(ex, y, n_old, what):
    out = call_unchanged(ex.aux_targets, y, n_old, what=what + " (y[y < n_old] = 0 changes the caller's labels)")
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.dtype == torch.long, f"expected dtype torch.int64, got {out.dtype} — {what}"
    assert out.shape == y.shape, f"expected shape {tuple(y.shape)}, got {tuple(out.shape)} — {what}"
    return out


@pytest.mark.exercise("ex05.5")
def test_aux_by_hand(ex):
    y = torch.tensor([7, 2, 9])
    what = "aux_targets([7, 2, 9], n_old=5)"
    check_equal(_aux(ex, y, 5, what), torch.tensor([3, 0, 5]),
                what + ": 7 → 7 − 5 + 1 = 3, 2 (old) → 0, 9 → 5; the first new class 5 would be 1, not 0")
    what = "aux_targets([7, 2, 9], n_old=0)"
    check_equal(_aux(ex, y, 0, what), torch.tensor([8, 3, 10]), what + ": every class new: y + 1")
    what = "aux_targets([7, 2, 9], n_old=10)"
    check_equal(_aux(ex, y, 10, what), torch.tensor([0, 0, 0]), what + ": every class old: 0 (never negative)")
    what = "aux_targets([4, 5, 6, 4], n_old=5)"
    check_equal(_aux(ex, torch.tensor([4, 5, 6, 4]), 5, what), torch.tensor([0, 1, 2, 0]),
                what + ": class n_old = 5 is the first NEW class (1); class 4 is old (0)")


@pytest.mark.exercise("ex05.5")
@pytest.mark.parametrize("n_old", [0, 1, 4, 6, 12, 20])
def test_aux_matches_the_reference(ex, n_old):
    y = torch.randint(0, 15, (64,), generator=_gen(50 + n_old))
    what = f"aux_targets(y (64,) with classes 0..14, unsorted, n_old={n_old})"
    out = _aux(ex, y, n_old, what)
    expected = torch.tensor([0 if c < n_old else c - n_old + 1 for c in y.tolist()])
    check_equal(out, expected, what + ": 0 for y < n_old, y − n_old + 1 for y ≥ n_old")
    check_equal(out, ref_aux_targets(y, n_old), what + " compared with clcourse.methods.der.aux_targets")


@pytest.mark.exercise("ex05.5")
def test_aux_other_dtypes_shapes_and_strides(ex):
    y = torch.tensor([3, 8, 1, 6], dtype=torch.int32)
    what = "aux_targets(y int32 [3, 8, 1, 6], n_old=4)"
    check_equal(_aux(ex, y, 4, what), torch.tensor([0, 5, 0, 3]), what + ": an int64 result even for int32 labels")
    y = torch.tensor([[5, 0, 9], [2, 7, 7]])
    what = "aux_targets(y (2, 3), n_old=6)"
    check_equal(_aux(ex, y, 6, what), torch.tensor([[0, 0, 4], [0, 2, 2]]), what + ": elementwise, any shape")
    y = torch.randint(0, 10, (20, 2), generator=_gen(56))[:, 1]
    assert not y.is_contiguous()
    what = "aux_targets(a non-contiguous y (20,), n_old=3)"
    check_equal(_aux(ex, y, 3, what), ref_aux_targets(y.contiguous(), 3), what)
    what = "aux_targets(y (0,), n_old=3)"
    check_equal(_aux(ex, torch.zeros(0, dtype=torch.long), 3, what), torch.zeros(0, dtype=torch.long), what)


@pytest.mark.exercise("ex05.5")
def test_aux_returns_a_new_tensor(ex):
    y = torch.tensor([9, 8, 7])
    what = "aux_targets([9, 8, 7], n_old=0)"
    out = _aux(ex, y, 0, what)
    assert out.untyped_storage().data_ptr() != y.untyped_storage().data_ptr(), (
        f"the result shares the labels' memory: return a NEW tensor — {what}")


@pytest.mark.exercise("ex05.5")
@pytest.mark.parametrize("n_old", [True, False, -1, 2.0, "2", None])
def test_aux_bad_n_old_raises(ex, n_old):
    _raises(ex.aux_targets, torch.tensor([1, 4, 2]), n_old,
            what=f"aux_targets([1, 4, 2], n_old={n_old!r}): n_old must be an int >= 0 (a bool is not a count)")


# ---------------------------------------------------------------- ex05.6 HAT's annealed gate (§4)

def _oracle_scale(b, B, s_max):
    return float(s_max) if B == 1 else 1 / s_max + (s_max - 1 / s_max) * (b - 1) / (B - 1)


def _sigmoid(x):
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))


def _oracle_gate(e, b, B, s_max):
    s = _oracle_scale(b, B, s_max)
    flat = [_sigmoid(s * v) for v in e.detach().double().flatten().tolist()]
    return torch.tensor(flat, dtype=torch.float64).view(e.shape)


def _gate(ex, e, b, B, s_max, what):
    out = call_unchanged(ex.annealed_gate, e, b, B, s_max, what=what)
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.shape == e.shape and out.dtype == e.dtype, (
        f"expected a {tuple(e.shape)} tensor of dtype {e.dtype}, got {tuple(out.shape)} {out.dtype} — {what}")
    return out


def _embeddings(n, seed, dtype):
    return (_randn(n, seed=seed, scale=0.5) + torch.linspace(-3, 3, n, dtype=torch.float64)).to(dtype)


@pytest.mark.exercise("ex05.6")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("b,B", [(1, 10), (4, 10), (10, 10), (3, 7), (2, 2), (1, 1)])
@pytest.mark.parametrize("s_max", [400.0, 2.5, 1.0])
def test_gate_matches_the_schedule_and_the_reference(ex, s_max, b, B, dtype):
    e = _embeddings(16, seed=60 + b, dtype=dtype)
    s = _oracle_scale(b, B, s_max)
    what = f"annealed_gate(e (16,), batch={b}, n_batches={B}, s_max={s_max}), {dtype}"
    out = _gate(ex, e, b, B, s_max, what)
    check_tensor(out, _oracle_gate(e, b, B, s_max).to(dtype),
                 what + f": σ(s_b·e) with s_b = 1/s_max + (s_max − 1/s_max)(b − 1)/(B − 1) = {s:.6g} (b 1-based; "
                 "B = 1: s_max)", atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=1e-5)
    check_tensor(out, ref_hat_gate(e, ref_hat_scale(b, B, s_max)),
                 what + " compared with clcourse.masks.hat_gate(e, hat_scale(b, B, s_max))",
                 atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=1e-5)


@pytest.mark.exercise("ex05.6")
def test_gate_by_hand(ex):
    e = torch.tensor([1.0, -2.0, 0.0, 0.5], dtype=torch.float64)
    for b, s in ((1, 0.25), (2, 1.1875), (3, 2.125), (5, 4.0)):
        what = f"annealed_gate([1, −2, 0, .5], batch={b}, n_batches=5, s_max=4)"
        check_tensor(_gate(ex, e, b, 5, 4.0, what), torch.sigmoid(s * e),
                     what + f": s_{b} = 1/4 + (4 − 1/4)·({b} − 1)/(5 − 1) = {s} (b counts from 1: the first batch has "
                     "1/s_max, the last s_max)", atol=1e-14, rtol=0)
    what = "annealed_gate([1, −2, 0, .5], batch=1, n_batches=1, s_max=4)"
    check_tensor(_gate(ex, e, 1, 1, 4.0, what), torch.sigmoid(4 * e),
                 what + ": an epoch of one batch: s = s_max (the formula would divide by B − 1 = 0)", atol=1e-14, rtol=0)


@pytest.mark.exercise("ex05.6")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gate_passes_gradients_to_e(ex, dtype):
    e = torch.nn.Parameter(_embeddings(8, seed=61, dtype=dtype) / 10)
    what = f"annealed_gate(e (an nn.Parameter (8,)), batch=3, n_batches=6, s_max=5), {dtype}"
    out = _gate(ex, e, 3, 6, 5.0, what)
    assert out.requires_grad, f"the gate does not depend on e for autograd: do not detach — {what}"
    (grad,) = torch.autograd.grad(out.sum(), e)
    s = _oracle_scale(3, 6, 5.0)
    m = _oracle_gate(e, 3, 6, 5.0)
    check_tensor(grad, (s * m * (1 - m)).to(dtype), what + f": ∂σ(s·e)/∂e = s·σ·(1 − σ), s = {s:.6g}",
                 atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=1e-5)


@pytest.mark.exercise("ex05.6")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gate_at_extreme_embeddings(ex, dtype):
    e = torch.tensor([[1e4, -1e4, 6.0], [-6.0, 0.0, 1e-3]], dtype=dtype)
    for b, B in ((10, 10), (1, 10), (1, 1)):
        what = f"annealed_gate(e [[1e4, −1e4, 6], [−6, 0, 1e-3]], batch={b}, n_batches={B}, s_max=400), {dtype}"
        out = _gate(ex, e, b, B, 400.0, what)
        assert not out.isnan().any(), (
            f"NaN in the gate: {out.tolist()} — e^(s·e) is inf for a large s·e: torch.sigmoid gives 0 or 1 there — {what}")
        check_tensor(out, _oracle_gate(e, b, B, 400.0).to(dtype), what, atol=1e-6, rtol=1e-6)


@pytest.mark.exercise("ex05.6")
def test_gate_opens_as_the_epoch_goes_on(ex):
    e = torch.tensor([0.05, -0.05, 0.01], dtype=torch.float64)
    what = "annealed_gate(e [.05, −.05, .01], batch=b, n_batches=50, s_max=400) for b = 1..50"
    gates = torch.stack([_gate(ex, e, b, 50, 400.0, what.replace("=b,", f"={b},")) for b in range(1, 51)])
    check_tensor(gates[0], torch.sigmoid(e / 400), what + ": at b = 1, s = 1/s_max: every gate ≈ 1/2",
                 atol=1e-14, rtol=0)
    check_tensor(gates[-1], torch.sigmoid(400 * e), what + ": at b = B, s = s_max", atol=1e-14, rtol=0)
    assert bool((gates[1:, 0] > gates[:-1, 0]).all() and (gates[1:, 1] < gates[:-1, 1]).all()), (
        f"as b grows, s grows: a gate with e > 0 rises towards 1 and one with e < 0 falls towards 0 at every batch; got "
        f"{[round(v, 4) for v in gates[:, 0].tolist()[:6]]}… — {what}")


@pytest.mark.exercise("ex05.6")
@pytest.mark.parametrize("b,B", [(0, 10), (11, 10), (1, 0), (-1, 5), (True, 5), (1, True), (2, 1)])
def test_gate_bad_batch_raises(ex, b, B):
    _raises(ex.annealed_gate, torch.zeros(3), b, B, 400.0,
            what=f"annealed_gate(e, batch={b!r}, n_batches={B!r}, s_max=400): need ints (not bools) with "
                 "1 <= batch <= n_batches (b is 1-based)")
