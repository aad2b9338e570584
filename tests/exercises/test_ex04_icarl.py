"""Grading tests of lesson 04 (iCaRL: exemplar memory, herding, nearest mean of exemplars): ex04.1–ex04.6.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse.memory` (`herding`, `nme_logits`,
`nme_predict`, `nme_distances`, `keep_first`, `ExemplarMemory`) and `clcourse.methods.icarl.icarl_targets`, with independent oracles
(Rebuffi et al.'s Alg. 4 as a literal loop over the candidates, distances written out as explicit sums in
float64, cases small enough to do by hand) and with properties the result must have whatever the
implementation.

Ties. Herding and the nearest mean are argmins: where two candidates are exactly equally good (two
identical images, two identical class means) the lowest index must win, and the tests say so. Where two
candidates differ only by rounding, two correct implementations may disagree; the tests then accept
any pick whose distance is within rounding of the smallest (float32), or use float64 data on which no
such near-tie occurs.

Extremes. Wherever a row is normalised, the tests also scale it by 1e20 and 1e-25 in float32 (squares
overflow / underflow) and by 1e200 and 1e-200 in float64, and put in all-zero rows (they stay zero).
Every call checks that the inputs keep their values and their requires_grad flag.
"""
import math

import pytest
import torch

from clcourse.memory import ExemplarMemory
from clcourse.memory import herding as ref_herding
from clcourse.memory import keep_first as ref_keep_first
from clcourse.memory import nme_distances as ref_nme_distances
from clcourse.memory import nme_logits as ref_nme_logits
from clcourse.memory import nme_predict as ref_nme_predict
from clcourse.methods.icarl import icarl_targets as ref_icarl_targets

from checks import call_unchanged, check_tensor

EXERCISE_MODULE = "ex04_icarl"

DTYPES = [torch.float64, torch.float32]
DTYPE_IDS = ["float64", "float32"]


# ---------------------------------------------------------------- helpers

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def cloud(n, d, seed=0, dtype=torch.float64):
    """n features in d dimensions around a common offset, each row rescaled by a factor in [0.2, 3):
    normalising them matters."""
    g = _gen(seed)
    f = torch.randn(n, d, generator=g, dtype=torch.float64) + torch.randn(d, generator=g, dtype=torch.float64)
    return (f * (0.2 + 2.8 * torch.rand(n, 1, generator=g, dtype=torch.float64))).to(dtype)


def _unit_rows(v):
    """Each row divided by its Euclidean length, written out: sqrt(Σ_j v_j²), in float64, after dividing
    by the row's largest |entry| (so 1e200 does not overflow); an all-zero row stays zero."""
    v = v.double()
    peak = v.abs().amax(dim=-1, keepdim=True)
    v = v / torch.where(peak > 0, peak, torch.ones_like(peak))
    norm = (v ** 2).sum(dim=-1, keepdim=True).sqrt()
    return v / torch.where(norm > 0, norm, torch.ones_like(norm))


# Factors that make squares overflow or underflow, per dtype: the direction of a row does not change.
EXTREMES = {torch.float32: (1e20, 1e-25), torch.float64: (1e200, 1e-200)}



def check_indices(actual, expected, what):
    """Assert that `actual` is a LongTensor holding exactly the indices `expected` (a list), in order."""
    assert isinstance(actual, torch.Tensor), f"expected a torch.Tensor, got {type(actual).__name__} — {what}"
    assert actual.dtype == torch.long, f"expected dtype torch.int64 (a LongTensor), got {actual.dtype} — {what}"
    assert actual.shape == (len(expected),), (
        f"expected shape ({len(expected)},), got {tuple(actual.shape)} — {what}")
    assert actual.tolist() == list(expected), f"expected {list(expected)}, got {actual.tolist()} — {what}"


def _long(picks):
    return torch.tensor(picks, dtype=torch.long)


def _untouched(before, after, what):
    for name, b, a in zip(("first", "second", "third"), before, after):
        assert torch.equal(b, a), f"the {name} input tensor was modified in place — {what}"


# ---------------------------------------------------------------- ex04.3 herding (§3)

def naive_herding(features, m):
    """Rebuffi et al. 2017, Alg. 4 written out in float64: every candidate not picked yet is tried in turn."""
    phi = _unit_rows(features.double())
    mu, total, chosen = phi.mean(0), torch.zeros(features.shape[1], dtype=torch.float64), []
    for k in range(1, min(m, len(phi)) + 1):
        best, best_dist = None, math.inf
        for i in range(len(phi)):
            if i in chosen:
                continue
            dist = math.sqrt(float(((mu - (total + phi[i]) / k) ** 2).sum()))
            if dist < best_dist:  # strictly: the first (lowest) index wins a tie
                best, best_dist = i, dist
        chosen.append(best)
        total = total + phi[best]
    return chosen


def _herd(ex, features, m, what):
    out = call_unchanged(ex.herding_selection, features, m,
                         what=what + " (write phi = features / norm, not features /= norm)")
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.dtype == torch.long, f"expected dtype torch.int64 (a LongTensor), got {out.dtype} — {what}"
    expected_len = min(m, len(features))
    assert out.shape == (expected_len,), f"expected shape ({expected_len},), got {tuple(out.shape)} — {what}"
    picks = out.tolist()
    assert all(0 <= i < len(features) for i in picks), f"indices out of range 0..{len(features) - 1}: {picks} — {what}"
    assert len(set(picks)) == len(picks), (
        f"a row was picked twice ({picks}): rule out the rows already picked — {what}")
    return picks


def _running_errors(phi, order):
    """‖μ − mean of the first k picked‖ for k = 1..len(order), φ̄ given (float64)."""
    k = torch.arange(1, len(order) + 1, dtype=phi.dtype)[:, None]
    return (phi[order].cumsum(0) / k - phi.mean(0)).norm(dim=1)


def _check_greedy(features, picks, what, atol):
    """Each pick is (within atol) the best of the rows not picked yet, by Alg. 4's rule, in float64."""
    phi = _unit_rows(features.double())
    mu, total = phi.mean(0), torch.zeros(phi.shape[1], dtype=torch.float64)
    for k, i in enumerate(picks, start=1):
        dist = ((mu - (total + phi) / k) ** 2).sum(1).sqrt()
        dist[picks[:k - 1]] = math.inf
        assert dist[i] <= dist.min() + atol, (
            f"pick {k} is row {i}, at {dist[i].item():.8g} from μ, but row {int(dist.argmin())} is at "
            f"{dist.min().item():.8g} (the mean of the picked rows must come as close to μ as it can) — {what}")
        total = total + phi[i]


HERDING_CASES = {"12x3 m=12": (12, 3, 12), "30x5 m=10": (30, 5, 10), "50x8 m=25": (50, 8, 25),
                 "40x16 m=7": (40, 16, 7)}


@pytest.mark.exercise("ex04.3")
@pytest.mark.parametrize("case", sorted(HERDING_CASES))
def test_herding_matches_the_literal_loop_and_the_reference(ex, case):
    n, d, m = HERDING_CASES[case]
    f = cloud(n, d, seed=n + d)
    what = f"herding_selection(features ({n}, {d}), m={m}), float64"
    picks = _herd(ex, f, m, what)
    expected = naive_herding(f, m)
    check_indices(_long(picks), expected,
                  what + " compared with Alg. 4 as a loop over the candidates: on normalised rows, each step picks "
                  "the row that brings the running mean (S + φ̄_i)/k closest to μ")
    check_indices(_long(picks), ref_herding(f, m).tolist(), what + " compared with clcourse.memory.herding")


@pytest.mark.exercise("ex04.3")
def test_herding_by_hand(ex):
    # rows 0..3 normalised: a = (1, 0), b = (0, −1), c = (.8, .6), d = (−.8, .6); μ = (a+b+c+d)/4 = (.25, .05).
    # k=1: ‖μ − φ̄‖²: a .565, b 1.165, c .605, d 1.405 → a.
    # k=2: ‖μ − (a + φ̄)/2‖²: b .365, c .485, d .085 → d (c is nearer μ, but d balances a).
    # k=3: ‖μ − (a + d + φ̄)/3‖²: b .0672, c .1294 → b.  Then c.  (No ties: the margins are ≥ .04.)
    f = torch.tensor([[2.0, 0.0], [0.0, -3.0], [8.0, 6.0], [-4.0, 3.0]], dtype=torch.float64)
    what = "herding_selection([[2, 0], [0, −3], [8, 6], [−4, 3]], m=4)"
    check_indices(_long(_herd(ex, f, 4, what)), [0, 3, 1, 2],
                  what + ": normalise the rows first (a = (1, 0), b = (0, −1), c = (.8, .6), d = (−.8, .6); "
                  "the raw rows give [0, 3, 2, 1]); then μ = (.25, .05); pick 1 is a (‖μ − a‖² = .565); pick 2 is "
                  "the row whose mean WITH a is nearest μ: d (.085), not c, the next nearest to μ itself (.605); "
                  "pick 3: b (.067) before c (.129)")
    what = "herding_selection([[2, 0], [0, −3], [8, 6], [−4, 3]], m=2)"
    check_indices(_long(_herd(ex, f, 2, what)), [0, 3], what)


@pytest.mark.exercise("ex04.3")
@pytest.mark.parametrize("seed", range(4))
def test_herding_first_pick_is_nearest_the_mean_and_no_row_twice(ex, seed):
    f = cloud(25, 4, seed=10 + seed)
    what = f"herding_selection(features (25, 4), m=25), seed {seed}"
    picks = _herd(ex, f, 25, what)  # checks: no repeats, in range
    phi = _unit_rows(f)
    nearest = int(((phi - phi.mean(0)) ** 2).sum(1).argmin())
    assert picks[0] == nearest, (
        f"the first pick must be the normalised row nearest the class mean μ (row {nearest}), got row "
        f"{picks[0]} — {what}")
    assert sorted(picks) == list(range(25)), f"with m = n every row is picked once, got {picks} — {what}"
    _check_greedy(f, picks, what, atol=1e-12)


@pytest.mark.exercise("ex04.3")
@pytest.mark.parametrize("seed", range(5))
def test_herding_running_mean_never_worse_than_random(ex, seed):
    f, m = cloud(60, 6, seed=20 + seed), 20
    what = f"herding_selection(features (60, 6), m={m}), seed {seed}"
    phi = _unit_rows(f)
    herded = _running_errors(phi, _herd(ex, f, m, what))
    g = _gen(1000 + seed)
    random = torch.stack([_running_errors(phi, torch.randperm(60, generator=g)[:m].tolist())
                          for _ in range(20)]).mean(0)
    worse = [k + 1 for k in range(m) if herded[k] > random[k]]
    assert not worse, (
        f"‖μ − mean of the first k exemplars‖ must be below a random subset's (mean of 20 draws) for every k; "
        f"it is above at k = {worse} (herding {[round(v, 4) for v in herded.tolist()]}, random "
        f"{[round(v, 4) for v in random.tolist()]}) — {what}")


@pytest.mark.exercise("ex04.3")
def test_herding_prefix_property(ex):
    f = cloud(40, 5, seed=30)
    what = "herding_selection(features (40, 5), m=20)"
    full = _herd(ex, f, 20, what)
    for k in (1, 5, 13, 19):
        check_indices(_long(_herd(ex, f, k, f"herding_selection(features, m={k})")), full[:k],
                      f"herding_selection(features, m={k}) must be the first {k} of m=20's picks, in pick order "
                      "(Alg. 5 keeps a prefix) — return the picks in the order they were made, not sorted")


@pytest.mark.exercise("ex04.3")
def test_herding_ignores_the_length_of_each_row(ex):
    f = cloud(30, 4, seed=31)
    scales = 0.1 + 10 * torch.rand(30, 1, generator=_gen(32), dtype=torch.float64)
    what = "herding_selection(features × a positive factor per row, m=15)"
    check_indices(_long(_herd(ex, f * scales, 15, what)), _herd(ex, f, 15, "herding_selection(features, m=15)"),
                  what + ": herding works on L2-normalised rows, so rescaling a row changes nothing — "
                  "normalise each ROW (dim=1)")


@pytest.mark.exercise("ex04.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_herding_float32_and_float64_are_greedy_orders(ex, dtype):
    f = cloud(80, 10, seed=33, dtype=dtype)
    what = f"herding_selection(features (80, 10), m=30), {dtype}"
    picks = _herd(ex, f, 30, what)
    _check_greedy(f, picks, what, atol=1e-5 if dtype == torch.float32 else 1e-12)


@pytest.mark.exercise("ex04.3")
@pytest.mark.parametrize("case", ["transposed", "sliced"])
def test_herding_on_non_contiguous_features(ex, case):
    f = {"transposed": cloud(5, 30, seed=34).T,      # (30, 5), strides (1, 30)
         "sliced": cloud(60, 5, seed=35)[::2]}[case]  # (30, 5), every other row
    assert not f.is_contiguous()
    what = f"herding_selection(a {case} (non-contiguous) tensor {tuple(f.shape)}, m=12)"
    check_indices(_long(_herd(ex, f, 12, what)), naive_herding(f.contiguous(), 12), what)


@pytest.mark.exercise("ex04.3")
def test_herding_m_zero_equal_to_and_above_n(ex):
    f = cloud(9, 3, seed=36)
    what = "herding_selection(features (9, 3), m=0)"
    check_indices(_long(_herd(ex, f, 0, what)), [], what + ": no exemplar, an empty LongTensor")
    what = "herding_selection(features (9, 3), m=9)"
    all_nine = _herd(ex, f, 9, what)
    check_indices(_long(all_nine), naive_herding(f, 9), what)
    what = "herding_selection(features (9, 3), m=15)"
    check_indices(_long(_herd(ex, f, 15, what)), all_nine,
                  what + ": m > n keeps all n rows, in herding order (a small class keeps every image)")


@pytest.mark.exercise("ex04.3")
def test_herding_ties_pick_the_lowest_index(ex):
    # μ = (2/3, 1/3). Rows 0 and 2 are the same image: k=1 ties at ‖μ − (1, 0)‖² = 2/9 → row 0, the lower index.
    # k=2: (row 0 + row 2)/2 = (1, 0) is at 2/9, (row 0 + row 1)/2 = (.5, .5) at 1/18 → row 1. Then row 2.
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=torch.float64)
    what = "herding_selection([[1, 0], [0, 1], [1, 0]], m=3)"
    check_indices(_long(_herd(ex, f, 3, what)), [0, 1, 2],
                  what + ": rows 0 and 2 tie exactly, the lowest index wins (argmin); the duplicate row 2 stays "
                  "a candidate (rule out picked INDICES, not values)")
    f = cloud(12, 3, seed=37)
    f[9] = f[4]
    what = "herding_selection(features (12, 3) with row 9 a copy of row 4, m=12)"
    picks = _herd(ex, f, 12, what)
    assert picks.index(4) < picks.index(9), f"row 4 must be picked before its copy, row 9: {picks} — {what}"
    check_indices(_long(picks), naive_herding(f, 12), what)


@pytest.mark.exercise("ex04.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_herding_huge_tiny_and_zero_rows(ex, dtype):
    f = cloud(24, 4, seed=38, dtype=dtype)
    big, small = EXTREMES[dtype]
    scaled = f.clone()
    scaled[::3] *= big      # rows 0, 3, 6, …: squares overflow
    scaled[1::3] *= small   # rows 1, 4, 7, …: squares underflow
    what = f"herding_selection(features (24, 4) with rows × {big:g} and × {small:g}, m=12), {dtype}"
    picks = _herd(ex, scaled, 12, what)
    _check_greedy(scaled, picks, what + ": herding uses directions only — divide each row by its largest |entry| "
                  "before its norm, or ‖φ‖ is inf (or 0)", atol=1e-5 if dtype == torch.float32 else 1e-12)
    zero = f.clone()
    zero[[2, 7]] = 0
    what = f"herding_selection(features (24, 4) with rows 2 and 7 all zero, m=24), {dtype}"
    picks = _herd(ex, zero, 24, what + ": a zero row stays zero (never NaN)")
    _check_greedy(zero, picks, what + ": a zero row stays zero when normalised and counts in μ as zero",
                  atol=1e-5 if dtype == torch.float32 else 1e-12)


# ---------------------------------------------------------------- ex04.5 the nearest mean of exemplars (§4)

def _oracle_distances(features, means, normalize):
    """(B, C) Euclidean distances in float64, class by class, as explicit sums."""
    f, mu = features.double(), means.double()
    if normalize:
        f, mu = _unit_rows(f), _unit_rows(mu)
    dist = torch.empty(len(f), len(mu), dtype=torch.float64)
    for y in range(len(mu)):
        dist[:, y] = ((f - mu[y]) ** 2).sum(dim=1).sqrt()
    return dist


def _nme(ex, features, means, normalize, what):
    out = call_unchanged(ex.nme_predict, features, means, normalize=normalize, what=what)
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.dtype == torch.long, f"expected dtype torch.int64 (a LongTensor), got {out.dtype} — {what}"
    assert out.shape == (len(features),), (
        f"expected shape ({len(features)},): one class per row of features, got {tuple(out.shape)} — {what}")
    return out


def _check_nearest(pred, dist, what, atol):
    """Every prediction is (within atol) at the smallest distance of its row."""
    best = dist.min(dim=1).values
    chosen = dist.gather(1, pred.clamp(0, dist.shape[1] - 1)[:, None])[:, 0]
    bad = ((chosen > best + atol) | (pred < 0) | (pred >= dist.shape[1])).nonzero().flatten().tolist()
    assert not bad, (
        f"rows {bad[:6]}: predicted {pred[bad[:6]].tolist()}, but the nearest means are "
        f"{dist.argmin(1)[bad[:6]].tolist()} (distances {[[round(v, 4) for v in dist[b].tolist()] for b in bad[:2]]}) "
        f"— the class at the SMALLEST distance (argmin) — {what}")


def _nme_problem(B, C, d, seed, dtype):
    """Features and class means of very different lengths: normalising matters."""
    means = cloud(C, d, seed=seed, dtype=dtype)
    y = torch.randint(0, C, (B,), generator=_gen(seed + 1))
    features = means[y] * 0.8 + 0.6 * cloud(B, d, seed=seed + 2, dtype=dtype)
    return features, means


@pytest.mark.exercise("ex04.5")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("normalize", [True, False], ids=["normalize", "raw"])
def test_nme_matches_the_explicit_distances_and_the_reference(ex, normalize, dtype):
    f, means = _nme_problem(200, 7, 6, seed=40, dtype=dtype)
    what = f"nme_predict(features (200, 6), class_means (7, 6), normalize={normalize}), {dtype}"
    pred = _nme(ex, f, means, normalize, what)
    dist = _oracle_distances(f, means, normalize)
    _check_nearest(pred, dist, what + " compared with the distances as explicit sums, in float64",
                   atol=1e-5 if dtype == torch.float32 else 1e-12)
    sure = (dist.sort(1).values[:, 1] - dist.min(1).values) > 1e-4  # rows without a near-tie
    assert pred[sure].tolist() == ref_nme_predict(f, means, normalize)[sure].tolist(), (
        f"the predictions differ from clcourse.memory.nme_predict's — {what}")


@pytest.mark.exercise("ex04.5")
def test_nme_by_hand(ex):
    f = torch.tensor([[3.0, 1.0], [0.0, 2.0], [20.0, 1.0]], dtype=torch.float64)
    means = torch.tensor([[10.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    # raw: [3, 1] is √50 from [10, 0] and 2 from [1, 1] → 1; [0, 2]: √104 and √2 → 1; [20, 1]: √101 and 19 → 0.
    what = "nme_predict([[3, 1], [0, 2], [20, 1]], class_means [[10, 0], [1, 1]], normalize=False)"
    check_indices(_nme(ex, f, means, False, what), [1, 1, 0],
                  what + ": raw Euclidean distances, the class at the smallest")
    # normalised: [3, 1]/√10 is at 18.4° from [1, 0] and 26.6° from [1, 1]/√2 → 0; [0, 2] → 1; [20, 1] → 0.
    what = "nme_predict([[3, 1], [0, 2], [20, 1]], class_means [[10, 0], [1, 1]], normalize=True)"
    check_indices(_nme(ex, f, means, True, what), [0, 1, 0],
                  what + ": on unit vectors the nearest mean is the one at the smallest angle")


@pytest.mark.exercise("ex04.5")
def test_nme_renormalises_the_means(ex):
    # Class 0's exemplars spread (their normalised mean is short: 0.2 long), class 1's are tight (1 long).
    # A feature at 40° from class 0's direction and 50° from class 1's belongs to class 0 — but only once
    # the means are normalised too: ‖φ̄ − (0.2, 0)‖² = 0.734 > ‖φ̄ − (0, 1)‖² = 0.714.
    angle = math.radians(40)
    f = 3 * torch.tensor([[math.cos(angle), math.sin(angle)]], dtype=torch.float64)
    means = torch.tensor([[0.2, 0.0], [0.0, 1.0]], dtype=torch.float64)
    what = "nme_predict(3 · [cos 40°, sin 40°], class_means [[0.2, 0], [0, 1]], normalize=True)"
    check_indices(_nme(ex, f, means, True, what), [0],
                  what + ": normalise the MEANS too (each row by its own norm), not only the features")


@pytest.mark.exercise("ex04.5")
def test_nme_invariances(ex):
    f, means = _nme_problem(100, 5, 4, seed=41, dtype=torch.float64)
    dist = _oracle_distances(f, means, True)
    what = "nme_predict(features, class_means, normalize=True)"
    pred = _nme(ex, f, means, True, what)
    _check_nearest(pred, dist, what, atol=1e-12)
    sf = 0.1 + 10 * torch.rand(100, 1, generator=_gen(42), dtype=torch.float64)
    sm = 0.1 + 10 * torch.rand(5, 1, generator=_gen(43), dtype=torch.float64)
    what = "nme_predict(features × a factor per row, class_means × a factor per row, normalize=True)"
    _check_nearest(_nme(ex, f * sf, means * sm, True, what), dist,
                   what + ": with normalize the lengths of the rows do not matter", atol=1e-12)
    shift = 5 * torch.randn(4, generator=_gen(44), dtype=torch.float64)
    what = "nme_predict(features + c, class_means + c, normalize=False)"
    _check_nearest(_nme(ex, f + shift, means + shift, False, what), _oracle_distances(f, means, False),
                   what + ": raw Euclidean distances do not change when everything moves by the same c "
                   "(a dot product would)", atol=1e-10)


@pytest.mark.exercise("ex04.5")
@pytest.mark.parametrize("normalize", [True, False], ids=["normalize", "raw"])
def test_nme_ties_pick_the_lowest_class(ex, normalize):
    a = torch.tensor([1.0, 2.0, -1.0], dtype=torch.float64)
    b = torch.tensor([-2.0, 0.5, 3.0], dtype=torch.float64)
    f = a + 0.05 * torch.randn(6, 3, generator=_gen(45), dtype=torch.float64)  # nearest a
    what = f"nme_predict(features near a, class_means [a, b, a], normalize={normalize})"
    check_indices(_nme(ex, f, torch.stack([a, b, a]), normalize, what), [0] * 6,
                  what + ": classes 0 and 2 tie exactly, the lowest class index wins (argmin)")
    what = f"nme_predict(features near a, class_means [b, a, a], normalize={normalize})"
    check_indices(_nme(ex, f, torch.stack([b, a, a]), normalize, what), [1] * 6, what)


@pytest.mark.exercise("ex04.5")
def test_nme_shapes_one_row_one_class_no_rows(ex):
    means = cloud(4, 3, seed=46)
    one = cloud(1, 3, seed=47)
    what = "nme_predict(one feature (1, 3), class_means (4, 3))"
    check_indices(_nme(ex, one, means, True, what), [int(_oracle_distances(one, means, True).argmin())], what)
    what = "nme_predict(features (5, 3), class_means (1, 3)): a single class"
    check_indices(_nme(ex, cloud(5, 3, seed=48), means[:1], True, what), [0] * 5, what)
    what = "nme_predict(features (0, 3), class_means (4, 3)): no test image"
    check_indices(_nme(ex, torch.zeros(0, 3, dtype=torch.float64), means, True, what), [], what)


@pytest.mark.exercise("ex04.5")
@pytest.mark.parametrize("normalize", [True, False], ids=["normalize", "raw"])
def test_nme_on_non_contiguous_inputs(ex, normalize):
    f = cloud(6, 50, seed=49).T            # (50, 6), transposed
    means = cloud(16, 6, seed=50)[1::2]    # (8, 6), every other row
    assert not f.is_contiguous() and not means.is_contiguous()
    what = f"nme_predict(a transposed features (50, 6), sliced class_means (8, 6), normalize={normalize})"
    _check_nearest(_nme(ex, f, means, normalize, what), _oracle_distances(f, means, normalize), what, atol=1e-12)


@pytest.mark.exercise("ex04.5")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_nme_huge_tiny_zero_and_parallel_rows(ex, dtype):
    f, means = _nme_problem(60, 5, 4, seed=51, dtype=dtype)
    big, small = EXTREMES[dtype]
    fs, ms = f.clone(), means.clone()
    fs[::2] *= big
    fs[1::4] *= small
    ms[0] *= big
    ms[3] *= small
    what = f"nme_predict(features and class_means with rows × {big:g} and × {small:g}, normalize=True), {dtype}"
    _check_nearest(_nme(ex, fs, ms, True, what), _oracle_distances(fs, ms, True),
                   what + ": only directions count — divide by the largest |entry| before the norm",
                   atol=1e-5 if dtype == torch.float32 else 1e-12)
    # parallel: class 1's mean is 3 × the feature, class 0's at a small angle; a zero feature row.
    v = torch.tensor([0.3, -1.2, 2.5, 0.7], dtype=dtype)
    means = torch.stack([v + torch.tensor([0.0, 0.0, 0.0, 0.02], dtype=dtype), 3 * v, -v])
    f = torch.stack([v, 0 * v, 1e-3 * v])
    what = (f"nme_predict([v, 0, 1e-3·v], class_means [v + (0, 0, 0, .02), 3v, −v], normalize=True), {dtype}")
    check_indices(_nme(ex, f, means, True, what), [1, 0, 1],
                  what + ": v and 3v are parallel (distance 0 once normalised); the zero row stays zero, at distance "
                  "1 from every unit mean: a tie, the lowest class (0)")


# ---------------------------------------------------------------- ex04.1 exemplars per class (§2)

PER_CLASS = {(2000, 10): 200, (2000, 3): 666, (2000, 6): 333, (2000, 7): 285, (2000, 100): 20,
             (2000, 1): 2000, (20, 20): 1, (5, 2): 2, (1999, 1000): 1, (500, 30): 16}


def _per_class(ex, budget, n_classes):
    what = f"exemplars_per_class({budget!r}, {n_classes!r})"
    out = ex.exemplars_per_class(budget, n_classes)
    assert type(out) is int, (
        f"expected a Python int, got {type(out).__name__} {out!r} (use //: budget / n_classes is a float) — {what}")
    return out, what


@pytest.mark.exercise("ex04.1")
@pytest.mark.parametrize("budget,n_classes", sorted(PER_CLASS))
def test_exemplars_per_class_values(ex, budget, n_classes):
    out, what = _per_class(ex, budget, n_classes)
    expected = PER_CLASS[budget, n_classes]
    assert out == expected, (
        f"expected {expected}, got {out} — {what}: m = budget // n_classes, rounded DOWN "
        f"({budget} / {n_classes} = {budget / n_classes:.4g})")
    assert out == ExemplarMemory(budget).m(n_classes), f"differs from clcourse's ExemplarMemory(budget).m — {what}"


@pytest.mark.exercise("ex04.1")
def test_exemplars_per_class_never_exceeds_the_budget(ex):
    for budget in (7, 100, 999, 2000):
        for n_classes in range(1, min(budget, 60) + 1):
            m, what = _per_class(ex, budget, n_classes)
            assert m * n_classes <= budget < (m + 1) * n_classes, (
                f"got m = {m}: the {n_classes} classes must keep at most the budget ({m} · {n_classes} = "
                f"{m * n_classes}), and m must be the largest such — {what}")


@pytest.mark.exercise("ex04.1")
@pytest.mark.parametrize("budget,n_classes", [(5, 10), (1, 2), (99, 100)])
def test_exemplars_per_class_zero_raises(ex, budget, n_classes):
    with pytest.raises(ValueError):
        ex.exemplars_per_class(budget, n_classes)
        pytest.fail(f"exemplars_per_class({budget}, {n_classes}) must raise ValueError: m would be 0, the memory "
                    "cannot keep one exemplar of each class")


@pytest.mark.exercise("ex04.1")
@pytest.mark.parametrize("budget,n_classes", [(2000.0, 10), (2000, 10.0), (-2000, 10), (2000, -10), (0, 10),
                                              (2000, 0), ("2000", 10), (None, 10), (True, 1), (2000, True),
                                              (1, True)])
def test_exemplars_per_class_bad_inputs_raise(ex, budget, n_classes):
    with pytest.raises(ValueError):
        ex.exemplars_per_class(budget, n_classes)
        pytest.fail(f"exemplars_per_class({budget!r}, {n_classes!r}) must raise ValueError: both must be positive ints "
                    "(a bool is not a count, although isinstance(True, int) holds: test for bool first)")


# ---------------------------------------------------------------- ex04.2 reduce the exemplar sets (§2)

def _sets():
    return {0: torch.tensor([5, 2, 9, 1]), 3: torch.tensor([7, 0]), 1: torch.tensor([4, 8, 6, 3, 11])}


def _reduce(ex, sets, m, what):
    before = {c: (v, v.clone()) for c, v in sets.items()}
    keys = list(sets)
    out = call_unchanged(ex.reduce_exemplars, sets, m, what=what)
    assert isinstance(out, dict), f"expected a dict, got {type(out).__name__} — {what}"
    assert list(sets) == keys and all(sets[c] is before[c][0] for c in keys), (
        f"the input dict was changed (keys or values replaced): return a NEW dict — {what}")
    for c, (v, copy) in before.items():
        assert torch.equal(v, copy), f"class {c}'s input tensor was modified in place — {what}"
    assert out is not sets, f"the input dict itself was returned: build a new one — {what}"
    assert list(out) == keys, f"expected the classes {keys} in that order, got {list(out)} — {what}"
    for c, v in out.items():
        assert isinstance(v, torch.Tensor) and v.dtype == torch.long, (
            f"class {c}: expected a LongTensor, got {type(v).__name__} {getattr(v, 'dtype', '')} — {what}")
        if v.numel():
            assert v.untyped_storage().data_ptr() != sets[c].untyped_storage().data_ptr(), (
                f"class {c}: the result shares the input's memory (a slice is a view): clone it, v[:m].clone() "
                f"— {what}")
    return out


@pytest.mark.exercise("ex04.2")
@pytest.mark.parametrize("m", [0, 1, 2, 3, 4, 7])
def test_reduce_keeps_the_first_m(ex, m):
    sets = _sets()
    what = f"reduce_exemplars({{0: [5, 2, 9, 1], 3: [7, 0], 1: [4, 8, 6, 3, 11]}}, m={m})"
    out = _reduce(ex, sets, m, what)
    expected = ref_keep_first(_sets(), m)
    for c, v in _sets().items():
        assert out[c].tolist() == expected[c].tolist(), f"differs from clcourse.memory.keep_first — {what}"
        check_indices(out[c], v.tolist()[:m],
                      what + f": class {c} keeps its FIRST {m} (herding order, best first; all of them if it has "
                      "fewer)")


@pytest.mark.exercise("ex04.2")
@pytest.mark.parametrize("m", [0, 2, 5])
def test_reduce_matches_the_memory(ex, m):
    sets = {c: torch.randperm(12, generator=_gen(c))[:n] for c, n in ((2, 10), (0, 4), (5, 7))}
    memory = ExemplarMemory(per_class=1)  # the m per class it keeps; reduce(m) is told m
    memory.x = {c: v.clone() for c, v in sets.items()}
    memory.t = {c: torch.zeros_like(v) for c, v in sets.items()}
    memory.reduce(m)
    what = f"reduce_exemplars(three classes of 10, 4 and 7 exemplars, m={m})"
    out = _reduce(ex, sets, m, what)
    for c in sets:
        check_indices(out[c], memory.x[c].tolist(),
                      what + f": class {c} compared with clcourse's ExemplarMemory.reduce")


@pytest.mark.exercise("ex04.2")
def test_reduce_herding_sets_is_herding_with_the_smaller_m(ex):
    features = {c: cloud(30, 5, seed=60 + c) for c in range(3)}
    sets = {c: ref_herding(f, 12) for c, f in features.items()}
    what = "reduce_exemplars({c: herding(features of class c, 12)}, m=5)"
    out = _reduce(ex, sets, 5, what)
    for c, f in features.items():
        check_indices(out[c], ref_herding(f, 5).tolist(),
                      what + f": class {c} must be herding(features, 5) — the first 5 picks, in their order "
                      "(Rebuffi et al.'s Alg. 5: shrinking needs no features); not sorted, not the last 5")


@pytest.mark.exercise("ex04.2")
def test_reduce_changing_the_result_leaves_the_input_alone(ex):
    sets = _sets()
    out = _reduce(ex, sets, 3, "reduce_exemplars(sets, m=3)")
    for v in out.values():
        v.fill_(-1)
    for c, v in _sets().items():
        assert torch.equal(sets[c], v), (
            f"writing into the result changed class {c}'s input tensor: the result must not be a view — "
            "reduce_exemplars(sets, m=3)")


@pytest.mark.exercise("ex04.2")
def test_reduce_non_contiguous_and_empty_sets(ex):
    sets = {4: torch.arange(20)[::3], 1: torch.zeros(0, dtype=torch.long), 0: torch.tensor([9, 3, 8, 2])[1:]}
    what = "reduce_exemplars({4: arange(20)[::3], 1: [], 0: [3, 8, 2] (a slice)}, m=2)"
    out = _reduce(ex, sets, 2, what)
    check_indices(out[4], [0, 3], what)
    check_indices(out[1], [], what + ": a class with no exemplar keeps none")
    check_indices(out[0], [3, 8], what)


@pytest.mark.exercise("ex04.2")
@pytest.mark.parametrize("m", [-1, -3, 2.0, 1.5, "2", None, True, False])
def test_reduce_bad_m_raises(ex, m):
    with pytest.raises(ValueError):
        ex.reduce_exemplars(_sets(), m)
        pytest.fail(f"reduce_exemplars(sets, m={m!r}) must raise ValueError: m is an int >= 0 (v[:-1] would drop "
                    "the LAST exemplar; a bool is not a count)")


# ---------------------------------------------------------------- ex04.6 iCaRL's targets (§5)

def _targets(ex, labels, n_units, old, T, what):
    out = call_unchanged(ex.icarl_targets, labels, n_units, old, T, what=what + " (old_logits / T, not /=)")
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    if old is not None and out.numel():
        assert out.untyped_storage().data_ptr() != old.untyped_storage().data_ptr(), (
            f"the targets share old_logits' memory: return a new tensor — {what}")
    return out


def _oracle_targets(labels, n_units, old, T):
    """Unit by unit, in float64: σ(z*/T) = 1 / (1 + exp(−z*/T)) below K, [y = label] from K on."""
    K = 0 if old is None else old.shape[1]
    out = torch.zeros(len(labels), n_units, dtype=torch.float64)
    for b in range(len(labels)):
        for y in range(n_units):
            if y >= K:
                out[b, y] = float(int(labels[b]) == y)
                continue
            z = float(old[b, y]) / T  # σ(z) in the form that never overflows
            out[b, y] = 1 / (1 + math.exp(-z)) if z >= 0 else math.exp(z) / (1 + math.exp(z))
    return out


@pytest.mark.exercise("ex04.6")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("T", [1.0, 2.0, 0.5])
@pytest.mark.parametrize("K", [1, 3, 6])
def test_targets_match_the_reference(ex, K, T, dtype):
    n_units = 8
    labels = torch.randint(0, n_units, (12,), generator=_gen(70 + K))  # new classes and old ones (exemplars)
    old = 3 * torch.randn(12, K, generator=_gen(71 + K), dtype=torch.float64).to(dtype)
    what = f"icarl_targets(labels (12,), n_units={n_units}, old_logits (12, {K}), T={T}), {dtype}"
    out = _targets(ex, labels, n_units, old, T, what)
    check_tensor(out, ref_icarl_targets(labels, n_units, old, T), what + " compared with clcourse.methods.icarl")
    check_tensor(out, _oracle_targets(labels, n_units, old, T).to(dtype),
                 what + ": σ(old_logits / T) on the K old units, the one-hot of the label on the others",
                 atol=1e-6 if dtype == torch.float32 else 1e-14, rtol=1e-6 if dtype == torch.float32 else 1e-12)


@pytest.mark.exercise("ex04.6")
def test_targets_by_hand(ex):
    log3 = math.log(3.0)
    labels = torch.tensor([4, 1])  # a new class; an exemplar of old class 1
    old = torch.tensor([[0.0, log3], [-log3, 0.0]], dtype=torch.float64)
    what = "icarl_targets(labels [4, 1], n_units=5, old_logits [[0, log 3], [−log 3, 0]], T=1)"
    expected = torch.tensor([[0.5, 0.75, 0, 0, 1], [0.25, 0.5, 0, 0, 0]], dtype=torch.float64)
    check_tensor(_targets(ex, labels, 5, old, 1.0, what), expected,
                 what + ": σ(0) = 1/2, σ(log 3) = 3/4, σ(−log 3) = 1/4 (each unit's own sigmoid, not a softmax); "
                 "the exemplar of old class 1 gets σ(0) = 1/2 at unit 1, not 1", atol=1e-14, rtol=0)
    what = "icarl_targets(labels [4, 1], n_units=5, old_logits [[0, 2 log 3], [−2 log 3, 0]], T=2)"
    check_tensor(_targets(ex, labels, 5, 2 * old, 2.0, what), expected,
                 what + ": the old logits are divided by T = 2 before the sigmoid", atol=1e-14, rtol=0)


@pytest.mark.exercise("ex04.6")
@pytest.mark.parametrize("T", [1.0, 2.0])
def test_targets_without_an_old_network_are_one_hot_float32(ex, T):
    labels = torch.tensor([0, 3, 2, 3, 1])
    what = f"icarl_targets(labels [0, 3, 2, 3, 1], n_units=4, old_logits=None, T={T})"
    check_tensor(_targets(ex, labels, 4, None, T, what), torch.eye(4)[labels],
                 what + ": the first task: the plain one-hot, float32", atol=0, rtol=0)
    what = "icarl_targets(labels [0, 3, 2, 3, 1], n_units=6, old_logits=None)"
    check_tensor(_targets(ex, labels, 6, None, T, what), torch.eye(6)[labels], what, atol=0, rtol=0)


@pytest.mark.exercise("ex04.6")
def test_targets_old_units_are_the_old_network_new_units_one_hot(ex):
    n_units, K = 10, 6
    labels = torch.tensor([7, 2, 9, 0, 6, 5])  # 2, 0, 5: exemplars of old classes
    old = 4 * torch.randn(6, K, generator=_gen(72), dtype=torch.float64)
    what = f"icarl_targets(labels {labels.tolist()}, n_units={n_units}, old_logits (6, {K}), T=2)"
    out = _targets(ex, labels, n_units, old, 2.0, what)
    check_tensor(out[:, :K], torch.sigmoid(old / 2), what + ": the old units, for every example (exemplars too: "
                 "the old network's output replaces the 1 of an old label)", atol=1e-14, rtol=0)
    check_tensor(out[:, K:], torch.eye(n_units, dtype=torch.float64)[labels][:, K:],
                 what + ": the new units: one-hot, all 0 for an exemplar of an old class", atol=0, rtol=0)
    assert not torch.allclose(out[:, :K].sum(1), torch.ones(6, dtype=torch.float64)), (
        f"the old units' targets must not be a softmax (summing to 1): a sigmoid per unit — {what}")


@pytest.mark.exercise("ex04.6")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("T", [1.0, 0.01])
def test_targets_at_extreme_logits(ex, T, dtype):
    labels = torch.tensor([3, 0, 4, 1])
    old = torch.tensor([[1000.0, -1000.0], [-50.0, 50.0], [80.0, -0.0], [-3.0, 1e-3]], dtype=dtype)
    what = f"icarl_targets(labels {labels.tolist()}, n_units=5, old_logits ±1000, ±50, 80, T={T}), {dtype}"
    out = _targets(ex, labels, 5, old, T, what)
    assert not out.isnan().any(), (
        f"NaN in the targets: {out.tolist()} — e^z / (1 + e^z) is inf / inf for a large z; σ(z) = 1 / (1 + e^(−z)) "
        f"or torch.sigmoid is 0 or 1 there — {what}")
    check_tensor(out, _oracle_targets(labels, 5, old, T).to(dtype),
                 what + ": σ(1000) = 1, σ(−1000) = 0, never NaN", atol=1e-6, rtol=1e-6)


@pytest.mark.exercise("ex04.6")
def test_targets_at_high_temperature_and_all_or_no_old_units(ex):
    labels = torch.tensor([1, 0, 2])
    old = 5 * torch.randn(3, 3, generator=_gen(73), dtype=torch.float64)
    what = "icarl_targets(labels, n_units=3, old_logits (3, 3), T=1e4): every unit old"
    check_tensor(_targets(ex, labels, 3, old, 1e4, what), torch.full((3, 3), 0.5, dtype=torch.float64),
                 what + ": σ(z/T) → 1/2 as T grows (the labels play no part: all units are old)", atol=1e-3, rtol=0)
    what = "icarl_targets(labels, n_units=3, old_logits (3, 3), T=1)"
    check_tensor(_targets(ex, labels, 3, old, 1.0, what), torch.sigmoid(old), what, atol=1e-14, rtol=0)
    none = torch.zeros(3, 0, dtype=torch.float64)
    what = "icarl_targets(labels, n_units=3, old_logits (3, 0) float64, T=2): no old unit"
    check_tensor(_targets(ex, labels, 3, none, 2.0, what), torch.eye(3, dtype=torch.float64)[labels],
                 what + ": the one-hot, in old_logits' dtype", atol=0, rtol=0)


@pytest.mark.exercise("ex04.6")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_targets_non_contiguous_old_logits(ex, dtype):
    teacher = 3 * torch.randn(8, 10, generator=_gen(74), dtype=torch.float64).to(dtype)
    old = teacher[:, :4]  # teacher(x)[:, :K]: a slice, not contiguous
    labels = torch.tensor([4, 9, 1, 5, 7, 0, 6, 8])
    assert not old.is_contiguous()
    what = f"icarl_targets(labels, n_units=10, old_logits = teacher[:, :4] (a slice), T=2), {dtype}"
    check_tensor(_targets(ex, labels, 10, old, 2.0, what), ref_icarl_targets(labels, 10, old, 2.0), what)
    assert torch.equal(teacher[:, :4], old), f"the teacher's logits were modified in place — {what}"
    old = 3 * torch.randn(3, 8, generator=_gen(75), dtype=torch.float64).to(dtype).T  # (8, 3), transposed
    what = f"icarl_targets(labels, n_units=10, old_logits (8, 3) transposed, T=1), {dtype}"
    check_tensor(_targets(ex, labels, 10, old, 1.0, what), ref_icarl_targets(labels, 10, old, 1.0), what)


# ---------------------------------------------------------------- ex04.4 the worked example (§4)

def _distances(ex, v, means, normalize, what):
    out = call_unchanged(ex.worked_example_distances, v, means, normalize, what=what)
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.dtype == v.dtype and out.shape == (len(means),), (
        f"expected a ({len(means)},) tensor of dtype {v.dtype}, got {tuple(out.shape)} {out.dtype} — {what}")
    return out


@pytest.mark.exercise("ex04.4")
def test_worked_example_by_hand(ex):
    v = torch.tensor([1.0, 1.0, 1.0, 1.0], dtype=torch.float64)
    means = torch.tensor([[2, 0, 0, 0], [0, 0, 0, 3], [5, 5, 5, 5], [1, -1, 1, -1]], dtype=torch.float64)
    what = "worked_example_distances([1, 1, 1, 1], [[2,0,0,0], [0,0,0,3], [5,5,5,5], [1,−1,1,−1]], normalize=True)"
    check_tensor(_distances(ex, v, means, True, what), torch.tensor([1.0, 1.0, 0.0, math.sqrt(2)], dtype=torch.float64),
                 what + ": v̄ = [½, ½, ½, ½]; the unit means e₁, e₄, [½, ½, ½, ½], [½, −½, ½, −½]; "
                 "the distances (not squared) 1, 1, 0, √2", atol=1e-7, rtol=1e-12)
    what = what.replace("normalize=True", "normalize=False")
    check_tensor(_distances(ex, v, means, False, what),
                 torch.tensor([2.0, math.sqrt(7), 8.0, 2 * math.sqrt(2)], dtype=torch.float64),
                 what + ": the raw vectors: ‖[−1, 1, 1, 1]‖ = 2, ‖[1, 1, 1, −2]‖ = √7, ‖[−4, −4, −4, −4]‖ = 8, "
                 "‖[0, 2, 0, 2]‖ = 2√2", atol=1e-12, rtol=1e-12)
    v = torch.tensor([3.0, 4.0, 0.0, 0.0], dtype=torch.float64)
    means = torch.tensor([[0, 0, 0, 7], [-6, -8, 0, 0], [6, 8, 0, 0]], dtype=torch.float64)
    what = "worked_example_distances([3, 4, 0, 0], means [[0,0,0,7], [−6,−8,0,0], [6,8,0,0]], normalize=True)"
    check_tensor(_distances(ex, v, means, True, what), torch.tensor([math.sqrt(2), 2.0, 0.0], dtype=torch.float64),
                 what + ": orthogonal √2, opposite 2, the same direction 0", atol=1e-7, rtol=1e-12)
    what = what.replace("normalize=True", "normalize=False")
    check_tensor(_distances(ex, v, means, False, what), torch.tensor([math.sqrt(74), 15.0, 5.0], dtype=torch.float64),
                 what, atol=1e-12, rtol=1e-12)


@pytest.mark.exercise("ex04.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("normalize", [True, False], ids=["normalize", "raw"])
def test_worked_example_matches_the_explicit_sums_and_the_reference(ex, normalize, dtype):
    v = cloud(1, 4, seed=80, dtype=dtype)[0]
    means = cloud(6, 4, seed=81, dtype=dtype)
    what = f"worked_example_distances(v (4,), class_means (6, 4), normalize={normalize}), {dtype}"
    out = _distances(ex, v, means, normalize, what)
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    check_tensor(out, _oracle_distances(v[None], means, normalize)[0].to(dtype),
                 what + ": sqrt(Σ_j (v_j − μ_yj)²), after normalising both when normalize is True", **tol)
    ref = (-ref_nme_logits(v[None].double(), means.double(), normalize)[0]).clamp_min(0).sqrt().to(dtype)
    check_tensor(out, ref, what + " compared with clcourse.memory.nme_logits (its scores are −distance²)",
                 atol=1e-5 if dtype == torch.float32 else 1e-7, rtol=1e-5 if dtype == torch.float32 else 1e-9)


@pytest.mark.exercise("ex04.4")
def test_worked_example_normalised_distances_ignore_the_lengths(ex):
    v = cloud(1, 4, seed=82)[0]
    means = cloud(5, 4, seed=83)
    what = "worked_example_distances(v, class_means, normalize=True)"
    out = _distances(ex, v, means, True, what)
    assert bool(((out >= 0) & (out <= 2 + 1e-12)).all()), f"distances of unit vectors lie in [0, 2], got {out} — {what}"
    scales = 0.1 + 10 * torch.rand(5, 1, generator=_gen(84), dtype=torch.float64)
    what = "worked_example_distances(7 · v, class_means × a factor per row, normalize=True)"
    check_tensor(_distances(ex, 7 * v, means * scales, True, what), out,
                 what + ": normalise v and EACH mean row by its own norm; then the lengths do not matter",
                 atol=1e-12, rtol=1e-10)


@pytest.mark.exercise("ex04.4")
@pytest.mark.parametrize("normalize", [True, False], ids=["normalize", "raw"])
def test_worked_example_on_non_contiguous_inputs(ex, normalize):
    v = cloud(1, 8, seed=85)[0][::2]         # (4,), every other coordinate
    means = cloud(4, 5, seed=86).T           # (5, 4), transposed
    assert not v.is_contiguous() and not means.is_contiguous()
    what = f"worked_example_distances(a sliced v (4,), transposed class_means (5, 4), normalize={normalize})"
    check_tensor(_distances(ex, v, means, normalize, what), _oracle_distances(v[None], means, normalize)[0], what,
                 atol=1e-12, rtol=1e-12)


# Seed 000's worked example (five class means, the test vector [1, 2, 3, 4]; the seed names them 1..5).
SEED_MEANS = [[0.9, 1.0, 1.1, 1.2], [1.2, 1.3, 1.4, 1.5], [1.4, 1.5, 1.6, 1.7], [1.1, 1.2, 1.3, 1.4],
              [0.8, 0.9, 1.0, 1.1]]


@pytest.mark.exercise("ex04.4")
def test_worked_example_the_seeds_numbers(ex):
    v = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    means = torch.tensor(SEED_MEANS, dtype=torch.float64)
    raw = torch.tensor([sum((a - b) ** 2 for a, b in zip([1, 2, 3, 4], mu)) ** 0.5 for mu in SEED_MEANS],
                       dtype=torch.float64)
    what = "worked_example_distances([1, 2, 3, 4], seed 000's five class means, normalize=False)"
    check_tensor(_distances(ex, v, means, False, what), raw,
                 what + f": d_1 = sqrt(.1² + 1² + 1.9² + 2.8²) = sqrt(12.46) = {raw[0]:.4f} (the seed prints 2.24); "
                 f"the smallest is d_3 = {raw[2]:.4f}", atol=1e-12, rtol=1e-12)
    unit = _oracle_distances(v[None], means, True)[0]
    what = what.replace("normalize=False", "normalize=True")
    check_tensor(_distances(ex, v, means, True, what), unit,
                 what + f": v / ‖v‖ = v / √30 and each mean by its own norm; the smallest is d_5 = {unit[4]:.4f}",
                 atol=1e-12, rtol=1e-12)


@pytest.mark.exercise("ex04.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_worked_example_parallel_and_zero_vectors(ex, dtype):
    v = torch.tensor([0.3, -1.2, 2.5, 0.7], dtype=dtype)
    means = torch.stack([2 * v, 1e-3 * v, -5 * v, torch.zeros(4, dtype=dtype)])
    what = f"worked_example_distances(v, class_means [2v, 1e-3·v, −5v, 0], normalize=True), {dtype}"
    check_tensor(_distances(ex, v, means, True, what), torch.tensor([0.0, 0.0, 2.0, 1.0], dtype=dtype),
                 what + ": parallel means are at distance 0 — take the norm of the difference of the unit vectors "
                 "(sqrt(2 − 2·cos) is ~1e-4 or NaN in float32 near 0); a zero mean stays zero, at distance 1",
                 atol=1e-6 if dtype == torch.float32 else 1e-14, rtol=0)
    what = f"worked_example_distances(0, class_means [2v, 1e-3·v, −5v, 0], normalize=True), {dtype}"
    check_tensor(_distances(ex, 0 * v, means, True, what), torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=dtype),
                 what + ": a zero test vector stays zero: at distance 1 from every unit mean, 0 from the zero mean",
                 atol=1e-6 if dtype == torch.float32 else 1e-14, rtol=0)


@pytest.mark.exercise("ex04.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_worked_example_huge_and_tiny_vectors(ex, dtype):
    v = cloud(1, 4, seed=87, dtype=dtype)[0]
    means = cloud(5, 4, seed=88, dtype=dtype)
    expected = _oracle_distances(v[None], means, True)[0].to(dtype)
    big, small = EXTREMES[dtype]
    tol = dict(atol=1e-5, rtol=1e-5) if dtype == torch.float32 else dict(atol=1e-12, rtol=1e-12)
    for sv, sm in ((big, 1.0), (small, big), (1.0, small)):
        what = f"worked_example_distances({sv:g} · v, {sm:g} · class_means, normalize=True), {dtype}"
        check_tensor(_distances(ex, sv * v, sm * means, True, what), expected,
                     what + ": the same distances as for v and the means themselves — divide each vector by its "
                     "largest |entry| before its norm (its square overflows or underflows)", **tol)

