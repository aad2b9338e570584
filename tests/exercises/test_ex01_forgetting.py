"""Grading tests of lesson 01 (catastrophic forgetting and the three scenarios): exercises ex01.1–ex01.8.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse` (`clcourse.metrics`,
`clcourse.data.streams`, `clcourse.data.scenarios`), with values computed by hand (the worked example of
lesson 01 §3) and with properties the result must have whatever the implementation.
"""
import math

import pytest
import torch

from clcourse import metrics as ref_metrics
from clcourse.data.scenarios import active_units
from clcourse.data.streams import class_task_indices, permute_pixels, permutations

from checks import call_unchanged, check_equal

EXERCISE_MODULE = "ex01_forgetting"

# The worked 3×3 example of the lesson (lesson 01 §3): rows = after task i, columns = task j.
WORKED = [[0.90, 0.20, 0.10],
          [0.93, 0.95, 0.15],
          [0.60, 0.80, 0.85]]
WORKED_TEXT = "the worked example of §3, R = [[.90, .20, .10], [.93, .95, .15], [.60, .80, .85]]"


# ---------------------------------------------------------------- helpers

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _rand_matrix(T, seed):
    """A random T×T accuracy matrix of fractions (float64)."""
    return torch.rand(T, T, generator=_gen(seed), dtype=torch.float64)


def check_float(actual, expected, what, abs_tol=1e-9):
    """Assert that `actual` is a Python float close to `expected` (NaN where `expected` is NaN).

    The values come first in the message: the scoreboard shows only its first line, cut short."""
    assert isinstance(actual, float), (
        f"expected a Python float, got {type(actual).__name__} {actual!r} (a 0-d tensor becomes a "
        f"float with `.item()`) — {what}")
    if math.isnan(expected):
        assert math.isnan(actual), f"expected NaN (undefined), got {actual} — {what}"
        return
    assert math.isfinite(actual), f"expected {expected:.6f}, got {actual} — {what}"
    assert math.isclose(actual, expected, rel_tol=0, abs_tol=abs_tol), (
        f"expected {expected:.6f}, got {actual:.6f} — {what}")



def _images(n=5, shape=(1, 28, 28), seed=0, dtype=torch.float32):
    return torch.rand(n, *shape, generator=_gen(seed), dtype=dtype)


def _perm(d, seed=1):
    return torch.randperm(d, generator=_gen(seed))


# ---------------------------------------------------------------- ex01.1 permute_images (§1)

def _permute(ex, x, perm):
    """permute_images on copies: a test about values must not fail on a mutation (that has its own test).
    clone() keeps the strides, so a non-contiguous x stays non-contiguous."""
    return ex.permute_images(x.clone(), perm.clone())


@pytest.mark.exercise("ex01.1")
@pytest.mark.parametrize("shape", [(1, 28, 28), (784,), (3, 4, 5)], ids=["Nx1x28x28", "Nx784", "Nx3x4x5"])
def test_permute_matches_reference_and_keeps_shape(ex, shape):
    x = _images(6, shape)
    perm = _perm(x[0].numel())
    out = _permute(ex, x, perm)
    check_equal(out, permute_pixels(x, perm),
                 f"permute_images(x, perm) for x of shape {tuple(x.shape)} (the shape and dtype must be kept)")


@pytest.mark.exercise("ex01.1")
def test_permute_pixel_i_comes_from_perm_i(ex):
    x = torch.arange(2 * 6, dtype=torch.float32).view(2, 1, 2, 3)  # image 0: 0..5, image 1: 6..11
    perm = torch.tensor([5, 0, 3, 1, 4, 2])
    expected = torch.tensor([[5., 0., 3., 1., 4., 2.], [11., 6., 9., 7., 10., 8.]]).view(2, 1, 2, 3)
    check_equal(_permute(ex, x, perm), expected,
                 "pixel i of the output (flattened, row by row) must be pixel perm[i] of the input: "
                 "out_flat[n, i] = x_flat[n, perm[i]]")


@pytest.mark.exercise("ex01.1")
def test_permute_then_inverse_gives_the_original(ex):
    x = _images(4, seed=2)
    perm = permutations(2, 784, seed=3)[1]  # a permutation as permuted MNIST draws it
    out = _permute(ex, x, perm)
    assert not torch.equal(out, x), "a random permutation must actually move the pixels"
    back = _permute(ex, out, torch.argsort(perm))
    check_equal(back, x, "permuting with perm, then with its inverse argsort(perm), must give x back")
    check_equal(_permute(ex, x, torch.arange(784)), x, "the identity permutation must leave x unchanged")


@pytest.mark.exercise("ex01.1")
def test_permute_is_the_same_for_every_image(ex):
    x = _images(7, seed=4)
    perm = _perm(784, seed=5)
    out = _permute(ex, x, perm)
    for n in (0, 3, 6):
        check_equal(out[n:n + 1], _permute(ex, x[n:n + 1], perm),
                     f"image {n} permuted within the batch must equal image {n} permuted alone "
                     "(ONE permutation for every image)")
    same = x[:1].expand(3, -1, -1, -1).clone()  # three copies of one image
    out_same = _permute(ex, same, perm)
    assert torch.equal(out_same[0], out_same[1]) and torch.equal(out_same[0], out_same[2]), (
        "three copies of one image must stay three identical images after the permutation")


@pytest.mark.exercise("ex01.1")
def test_permute_works_on_non_contiguous_images(ex):
    # Colour images stored height × width × channel become N×C×H×W by a permute, which is a view
    # with other strides: `.view` cannot flatten it, `.reshape` / `.flatten` can.
    hwc = _images(4, shape=(6, 6, 3), seed=5)
    x = hwc.permute(0, 3, 1, 2)
    assert not x.is_contiguous()
    perm = _perm(3 * 6 * 6, seed=6)
    check_equal(_permute(ex, x, perm), permute_pixels(x.contiguous(), perm),
                 "permute_images of a non-contiguous batch (an HWC → CHW permute of CIFAR-like images)")


@pytest.mark.exercise("ex01.1")
def test_permute_keeps_the_pixels_and_does_not_modify_x(ex):
    x = _images(3, seed=6, dtype=torch.float64)
    perm = _perm(784, seed=7)
    for xx in (x.clone(), x.clone().requires_grad_()):
        out = call_unchanged(ex.permute_images, xx, perm.clone(),
                             what=f"permute_images(x, perm), x.requires_grad={xx.requires_grad}")
        assert out.dtype == torch.float64, f"the dtype must be kept: expected torch.float64, got {out.dtype}"
        check_equal(out.detach().flatten(1).sort(dim=1).values, x.flatten(1).sort(dim=1).values,
                    "each output image must hold exactly the pixel values of its input image (only moved)")
        check_equal(out.detach(), permute_pixels(x, perm), "permute_images(x, perm)")


@pytest.mark.exercise("ex01.1")
@pytest.mark.parametrize("n", [0, 1], ids=["empty_batch", "one_image"])
def test_permute_empty_batch_and_one_image(ex, n):
    x = _images(n, seed=8)
    perm = _perm(784, seed=9)
    check_equal(_permute(ex, x, perm), permute_pixels(x, perm),
                f"permute_images of a batch of {n} image(s) of shape {tuple(x.shape)} (with no elements, "
                "reshape(N, -1) is ambiguous: flatten(1) is not)")


@pytest.mark.exercise("ex01.1")
def test_permute_rejects_a_bool_mask(ex):
    x = _images(2, shape=(4,), seed=10)
    with pytest.raises(TypeError):
        ex.permute_images(x, torch.tensor([True, False, True, True]))
        pytest.fail("permute_images(x, perm) with a bool perm must raise TypeError: a bool tensor is a mask "
                    "(it would silently keep 3 of 4 pixels), not a list of pixel positions")


# ---------------------------------------------------------------- the metrics: shared checks

def _as_given(R, form):
    """The matrix as a list of lists, a float64 tensor or a float32 tensor."""
    R = torch.as_tensor(R, dtype=torch.float64)
    return {"list": R.tolist(), "float64": R.clone(), "float32": R.to(torch.float32)}[form]


FORMS = ["list", "float64", "float32"]
METRICS = {  # exercise id → (function name, reference)
    "ex01.2": ("average_accuracy", ref_metrics.average_accuracy),
    "ex01.3": ("average_incremental_accuracy", ref_metrics.average_incremental_accuracy),
    "ex01.4": ("last_accuracy", ref_metrics.last_accuracy),
    "ex01.5": ("backward_transfer", ref_metrics.backward_transfer),
    "ex01.6": ("forgetting", ref_metrics.forgetting),
}


def _check_random(ex, exercise_id):
    name, reference = METRICS[exercise_id]
    for T, seed in [(2, 0), (4, 1), (5, 2), (10, 3)]:
        R = _rand_matrix(T, seed)
        check_float(getattr(ex, name)(R.clone()), reference(R),
                    f"{name}(R) for a random {T}×{T} matrix, compared with clcourse.metrics.{reference.__name__}")


def _check_forms(ex, exercise_id, expected):
    name, _ = METRICS[exercise_id]
    for form in FORMS:
        R = _as_given(WORKED, form)
        tol = 1e-6 if form == "float32" else 1e-9
        check_float(getattr(ex, name)(R), expected, f"{name}(R) on {WORKED_TEXT}, R given as {form}",
                    abs_tol=tol)


def _check_inputs_untouched(ex, exercise_id):
    """A float64 tensor passes through torch.as_tensor(R, dtype=torch.float64) as itself, not a copy:
    an in-place operation on it, or on a view of it, changes the caller's matrix."""
    name, reference = METRICS[exercise_id]
    R = _rand_matrix(4, 9)
    for RR in (R.clone(), R.clone().requires_grad_()):
        got = call_unchanged(getattr(ex, name), RR,
                             what=f"{name}(R) for a float64 tensor R, R.requires_grad={RR.requires_grad}")
        check_float(got, reference(R), f"{name}(R) for a random 4×4 float64 tensor")


def _check_t1(ex, exercise_id, expected):
    name, reference = METRICS[exercise_id]
    for R in ([[0.7]], torch.tensor([[0.7]], dtype=torch.float64)):
        kind = "list" if isinstance(R, list) else "tensor"
        check_float(getattr(ex, name)(R), expected, f"{name}(R) for one task, R = [[0.7]] as a {kind}"
                    + (" (undefined for T = 1: return math.nan)" if math.isnan(expected) else ""))
        check_float(getattr(ex, name)(R), reference(R), f"{name}([[0.7]]) compared with the reference")


# ---------------------------------------------------------------- ex01.2 average accuracy (§3)

@pytest.mark.exercise("ex01.2")
def test_acc_worked_example_as_list_and_tensors(ex):
    _check_forms(ex, "ex01.2", 0.75)  # (0.60 + 0.80 + 0.85) / 3


@pytest.mark.exercise("ex01.2")
def test_acc_random_matrices_match_reference(ex):
    _check_random(ex, "ex01.2")
    _check_inputs_untouched(ex, "ex01.2")


@pytest.mark.exercise("ex01.2")
def test_acc_one_task(ex):
    _check_t1(ex, "ex01.2", 0.7)


@pytest.mark.exercise("ex01.2")
def test_acc_uses_only_the_last_row(ex):
    R = _rand_matrix(4, 4)
    changed = R.clone()
    changed[:-1] = 1 - changed[:-1]  # every row but the last changes
    check_float(ex.average_accuracy(changed), ex.average_accuracy(R),
                "average_accuracy depends only on the LAST row (accuracies after the last task)")
    check_float(ex.average_accuracy(R), R[-1].mean().item(), "average_accuracy = mean of the last row")


# ---------------------------------------------------------------- ex01.3 average incremental accuracy (§3)

@pytest.mark.exercise("ex01.3")
def test_aia_worked_example_as_list_and_tensors(ex):
    # A = (0.90, 0.94, 0.75); AIA = 2.59 / 3. Leaving out A_1 would give 0.845; averaging whole rows 0.6167.
    _check_forms(ex, "ex01.3", 2.59 / 3)


@pytest.mark.exercise("ex01.3")
def test_aia_random_matrices_match_reference(ex):
    _check_random(ex, "ex01.3")
    _check_inputs_untouched(ex, "ex01.3")


@pytest.mark.exercise("ex01.3")
def test_aia_one_task(ex):
    _check_t1(ex, "ex01.3", 0.7)


@pytest.mark.exercise("ex01.3")
def test_aia_ignores_tasks_not_seen_yet_and_includes_the_first_step(ex):
    R = _rand_matrix(4, 5)
    changed = R.clone()
    upper = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    changed[upper] = 1 - changed[upper]
    check_float(ex.average_incremental_accuracy(changed), ex.average_incremental_accuracy(R),
                "average_incremental_accuracy must not depend on R[i][j] for j > i (tasks not learned yet "
                "at step i): A_i averages row i over tasks 1..i only")
    R = torch.tensor([[1.0, 0.0], [0.5, 0.5]], dtype=torch.float64)  # A = (1.0, 0.5)
    check_float(ex.average_incremental_accuracy(R), 0.75,
                "R = [[1, 0], [.5, .5]]: A_1 = 1, A_2 = 0.5, AIA = 0.75 (the first step counts too)")


# ---------------------------------------------------------------- ex01.4 last accuracy (§3)

@pytest.mark.exercise("ex01.4")
def test_last_worked_example_as_list_and_tensors(ex):
    _check_forms(ex, "ex01.4", 0.75)  # A_3 = (0.60 + 0.80 + 0.85) / 3


@pytest.mark.exercise("ex01.4")
def test_last_random_matrices_match_reference(ex):
    _check_random(ex, "ex01.4")
    _check_inputs_untouched(ex, "ex01.4")


@pytest.mark.exercise("ex01.4")
def test_last_one_task(ex):
    _check_t1(ex, "ex01.4", 0.7)


@pytest.mark.exercise("ex01.4")
def test_last_is_the_last_point_of_the_curve(ex):
    R = _rand_matrix(5, 6)
    changed = R.clone()
    changed[:-1] = 1 - changed[:-1]
    check_float(ex.last_accuracy(changed), ex.last_accuracy(R),
                "last_accuracy depends only on the LAST row (A_T, after the last task)")
    check_float(ex.last_accuracy(R), R[-1].mean().item(), "last_accuracy = A_T = mean of the last row")


# ---------------------------------------------------------------- ex01.5 backward transfer (§3)

@pytest.mark.exercise("ex01.5")
def test_bwt_worked_example_as_list_and_tensors(ex):
    _check_forms(ex, "ex01.5", -0.225)  # ((0.60 − 0.90) + (0.80 − 0.95)) / 2


@pytest.mark.exercise("ex01.5")
def test_bwt_random_matrices_match_reference(ex):
    _check_random(ex, "ex01.5")
    _check_inputs_untouched(ex, "ex01.5")


@pytest.mark.exercise("ex01.5")
def test_bwt_one_task_is_nan(ex):
    _check_t1(ex, "ex01.5", math.nan)


@pytest.mark.exercise("ex01.5")
def test_bwt_sign_and_what_it_depends_on(ex):
    no_change = [[0.9, 0.1], [0.9, 0.8]]
    check_float(ex.backward_transfer(no_change), 0.0, "BWT of R = [[.9, .1], [.9, .8]] (task 1 kept its 0.9)")
    improved = [[0.5, 0.1, 0.1], [0.6, 0.7, 0.1], [0.8, 0.9, 0.6]]
    check_float(ex.backward_transfer(improved), 0.25,
                "BWT of [[.5,.1,.1],[.6,.7,.1],[.8,.9,.6]] = ((.8−.5) + (.9−.7)) / 2: positive when later "
                "training helped the old tasks")
    R = _rand_matrix(4, 7)
    changed = R.clone()
    upper = torch.triu(torch.ones(4, 4, dtype=torch.bool), diagonal=1)
    changed[upper] = 1 - changed[upper]
    changed[1:3, 0] = 1 - changed[1:3, 0]  # intermediate rows of an old task
    check_float(ex.backward_transfer(changed), ex.backward_transfer(R),
                "BWT uses only the diagonal R[j][j] and the last row R[T][j] (j < T): changing the upper "
                "triangle or the intermediate rows must not change it")


# ---------------------------------------------------------------- ex01.6 forgetting (§3)

@pytest.mark.exercise("ex01.6")
def test_forgetting_worked_example_as_list_and_tensors(ex):
    # f_1 = max(.90, .93) − .60 = .33, f_2 = .95 − .80 = .15 → 0.24, not −BWT = 0.225 (the diagonal)
    _check_forms(ex, "ex01.6", 0.24)


@pytest.mark.exercise("ex01.6")
def test_forgetting_random_matrices_match_reference(ex):
    _check_random(ex, "ex01.6")
    _check_inputs_untouched(ex, "ex01.6")


@pytest.mark.exercise("ex01.6")
def test_forgetting_one_task_is_nan(ex):
    _check_t1(ex, "ex01.6", math.nan)


@pytest.mark.exercise("ex01.6")
def test_forgetting_is_max_based_and_excludes_the_last_row(ex):
    peak_later = [[0.5, 0.0, 0.0], [0.9, 0.8, 0.0], [0.4, 0.8, 0.7]]
    check_float(ex.forgetting(peak_later), 0.25,
                "forgetting of [[.5,0,0],[.9,.8,0],[.4,.8,.7]]: f_1 = max(.5, .9) − .4 = .5 (from the BEST "
                "earlier accuracy, not from the diagonal .5), f_2 = .8 − .8 = 0, mean 0.25")
    improved = [[0.5, 0.0, 0.0], [0.4, 0.6, 0.0], [0.7, 0.9, 0.8]]
    check_float(ex.forgetting(improved), -0.25,
                "forgetting of [[.5,0,0],[.4,.6,0],[.7,.9,.8]]: f_1 = .5 − .7, f_2 = .6 − .9, mean −0.25 "
                "(the max runs over rows 1..T−1 only, so forgetting can be negative)")
    check_float(ex.forgetting([[0.8, 0.3], [0.8, 0.9]]), 0.0,
                "forgetting of [[.8, .3], [.8, .9]]: task 1 kept its 0.8; the last task is not averaged")


# ---------------------------------------------------------------- ex01.7 logit masks of the scenarios (§4)

SCENARIOS = ["task", "domain", "class"]
SIZES = {"split MNIST [2]*5": [2] * 5, "permuted MNIST [10]*3": [10] * 3, "uneven [3, 1, 4]": [3, 1, 4]}


def _mask(ex, scenario, sizes, trained_upto, task):
    out = ex.logit_mask(scenario, list(sizes), trained_upto, task)
    shown = f"[{sizes[0]}]*{len(sizes)}" if len(set(sizes)) == 1 else str(list(sizes))
    what = f"logit_mask({scenario!r}, {shown}, trained_upto={trained_upto}, task={task})"
    assert isinstance(out, torch.Tensor), f"{what}: expected a torch.Tensor, got {type(out).__name__}"
    assert out.dtype == torch.bool, f"{what}: expected a bool tensor, got dtype {out.dtype}"
    return out, what


@pytest.mark.exercise("ex01.7")
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("label", list(SIZES))
def test_mask_matches_reference(ex, scenario, label):
    sizes = SIZES[label]
    for trained_upto in range(len(sizes)):
        for task in range(trained_upto + 1):
            out, what = _mask(ex, scenario, sizes, trained_upto, task)
            check_equal(out, active_units(scenario, sizes, trained_upto, task), what)


@pytest.mark.exercise("ex01.7")
def test_mask_split_mnist_by_hand(ex):
    sizes = [2] * 5
    T, F = True, False
    cases = {
        ("task", 4, 1): [F, F, T, T, F, F, F, F, F, F],   # only task 1's block: digits 2, 3
        ("task", 1, 0): [T, T, F, F, F, F, F, F, F, F],
        ("domain", 3, 2): [T, T],                          # one shared 2-unit block: "first or second"
        ("class", 0, 0): [T, T, F, F, F, F, F, F, F, F],
        ("class", 2, 0): [T, T, T, T, T, T, F, F, F, F],   # all classes seen so far, whatever the task
        ("class", 4, 2): [T] * 10,
    }
    for (scenario, trained_upto, task), expected in cases.items():
        out, what = _mask(ex, scenario, sizes, trained_upto, task)
        check_equal(out, torch.tensor(expected), what)


@pytest.mark.exercise("ex01.7")
def test_mask_permuted_mnist_by_hand(ex):
    sizes = [10] * 3
    out, what = _mask(ex, "domain", sizes, 2, 1)
    check_equal(out, torch.ones(10, dtype=torch.bool), what + " (domain-IL: the 10 digit units, all active)")
    out, what = _mask(ex, "task", sizes, 2, 1)
    check_equal(out, torch.arange(30).div(10, rounding_mode="floor") == 1, what + " (task-IL: units 10..19)")
    out, what = _mask(ex, "class", sizes, 1, 1)
    check_equal(out, torch.arange(30) < 20, what + " (class-IL: units 0..19 of tasks 0 and 1)")


@pytest.mark.exercise("ex01.7")
@pytest.mark.parametrize("label", list(SIZES))
def test_mask_class_il_grows_task_il_does_not_move(ex, label):
    sizes = SIZES[label]
    previous = None
    for trained_upto in range(len(sizes)):
        out, what = _mask(ex, "class", sizes, trained_upto, 0)
        expected_count = sum(sizes[:trained_upto + 1])
        assert int(out.sum()) == expected_count, (
            f"{what}: class-IL keeps the units of ALL tasks seen so far active ({expected_count} units), "
            f"got {int(out.sum())} active")
        if previous is not None:
            assert bool(out[previous].all()), (
                f"{what}: units active after task {trained_upto - 1} must stay active (earlier classes are "
                "not forgotten by the mask)")
        previous = out
        for task in range(trained_upto + 1):
            check_equal(_mask(ex, "class", sizes, trained_upto, task)[0], out,
                         f"class-IL has no task identity: the mask must not depend on task ({what})")
            task_mask, task_what = _mask(ex, "task", sizes, trained_upto, task)
            check_equal(task_mask, _mask(ex, "task", sizes, len(sizes) - 1, task)[0],
                         f"task-IL: the mask is task {task}'s block whatever trained_upto is ({task_what})")


@pytest.mark.exercise("ex01.7")
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("args", [([2, True, 2], 1, 0), ([2, 2, 2], True, 0), ([2, 2, 2], 1, False)],
                         ids=["bool_size", "bool_trained_upto", "bool_task"])
def test_mask_rejects_a_bool_as_a_count(ex, scenario, args):
    sizes, trained_upto, task = args
    with pytest.raises(TypeError):
        ex.logit_mask(scenario, sizes, trained_upto, task)
        pytest.fail(f"logit_mask({scenario!r}, {sizes}, {trained_upto}, {task}) must raise TypeError: a bool is "
                    "not a count (Python would read True as 1)")


@pytest.mark.exercise("ex01.7")
def test_mask_task_without_classes(ex):
    sizes = [2, 0, 3]  # task 1 has no classes: an empty block between tasks 0 and 2
    cases = {("task", 2, 1): [False] * 5, ("task", 2, 2): [False, False, True, True, True],
             ("class", 1, 0): [True, True, False, False, False], ("class", 2, 2): [True] * 5,
             ("domain", 2, 1): [True] * 3}
    for (scenario, trained_upto, task), expected in cases.items():
        out, what = _mask(ex, scenario, sizes, trained_upto, task)
        check_equal(out, torch.tensor(expected), what + " (a task of size 0 has an empty block)")
        check_equal(out, active_units(scenario, sizes, trained_upto, task), what + ", compared with the reference")


@pytest.mark.exercise("ex01.7")
def test_mask_unknown_scenario_raises_value_error(ex):
    try:
        ex.logit_mask("instance", [2] * 5, 0, 0)
    except ValueError:
        return
    pytest.fail("logit_mask('instance', ...) must raise ValueError: only 'task', 'domain', 'class' exist")


# ---------------------------------------------------------------- ex01.8 split_by_classes (§4)

def _labels(n=500, classes=10, seed=0):
    return torch.randint(0, classes, (n,), generator=_gen(seed))


def _split(ex, y, groups):
    out = ex.split_by_classes(y.clone(), groups)  # a copy: y's own test is call_unchanged's
    what = f"split_by_classes(y, {groups})"
    assert isinstance(out, (list, tuple)), f"{what}: expected a list of tensors, got {type(out).__name__}"
    assert len(out) == len(groups), f"{what}: expected {len(groups)} index tensors (one per group), got {len(out)}"
    for k, idx in enumerate(out):
        assert isinstance(idx, torch.Tensor), f"{what}[{k}]: expected a torch.Tensor, got {type(idx).__name__}"
        assert idx.dtype == torch.int64 and idx.dim() == 1, (
            f"{what}[{k}]: expected a 1-d LongTensor (int64), got dtype {idx.dtype} and shape {tuple(idx.shape)}")
    return list(out), what


@pytest.mark.exercise("ex01.8")
@pytest.mark.parametrize("groups", [[[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]], [[3, 7, 1], [0], [9, 2]]],
                         ids=["split_mnist", "uneven_partial"])
def test_split_matches_reference(ex, groups):
    y = _labels()
    out, what = _split(ex, y, groups)
    for k, (idx, expected) in enumerate(zip(out, class_task_indices(y, groups))):
        check_equal(idx, expected, f"{what}[{k}] (indices of group {groups[k]}, in dataset order)")


@pytest.mark.exercise("ex01.8")
def test_split_by_hand(ex):
    y = torch.tensor([3, 0, 1, 3, 2, 1, 0, 5])
    out, what = _split(ex, y, [[0, 1], [3]])
    check_equal(out[0], torch.tensor([1, 2, 5, 6]), f"{what}[0] for y = {y.tolist()}: labels 0 or 1")
    check_equal(out[1], torch.tensor([0, 3]), f"{what}[1] for y = {y.tolist()}: label 3")


@pytest.mark.exercise("ex01.8")
def test_split_covers_each_example_of_the_listed_classes_once(ex):
    y = _labels(800, seed=1)
    groups = [[0, 1], [2, 3], [4, 5], [7]]  # 6, 8 and 9 are in no group
    out, what = _split(ex, y, groups)
    for k, idx in enumerate(out):
        assert bool((idx[1:] > idx[:-1]).all()), f"{what}[{k}]: indices must be increasing (dataset order)"
        assert bool(torch.isin(y[idx], torch.tensor(groups[k])).all()), (
            f"{what}[{k}]: holds examples whose label is not in group {groups[k]}")
    every = torch.cat(out)
    listed = torch.nonzero(torch.isin(y, torch.tensor([0, 1, 2, 3, 4, 5, 7]))).flatten()
    assert len(every) == len(every.unique()), f"{what}: an example appears in more than one group or twice"
    check_equal(every.sort().values, listed,
                 f"{what}: every example of a listed class must appear exactly once (and no other example)")


@pytest.mark.exercise("ex01.8")
def test_split_overlapping_groups_raise_value_error(ex):
    y = _labels(50, seed=2)
    try:
        ex.split_by_classes(y, [[0, 1], [1, 2]])
    except ValueError:
        return
    pytest.fail("split_by_classes(y, [[0, 1], [1, 2]]) must raise ValueError: class 1 is in two groups")


@pytest.mark.exercise("ex01.8")
def test_split_overlap_between_groups_far_apart_raises_value_error(ex):
    y = _labels(50, seed=3)
    try:
        ex.split_by_classes(y, [[0, 1], [2, 3], [4, 5], [1, 6]])
    except ValueError:
        return
    pytest.fail("split_by_classes(y, [[0, 1], [2, 3], [4, 5], [1, 6]]) must raise ValueError: class 1 is "
                "in the first and the last group (check every pair of groups, not only neighbours)")


@pytest.mark.exercise("ex01.8")
def test_split_leaves_y_unchanged_and_handles_an_empty_group(ex):
    y = torch.tensor([4, 9, 0, 4, 1, 9, 9, 0, 3])
    out = call_unchanged(ex.split_by_classes, y, [[9, 0], [], [4, 3]], what="split_by_classes(y, groups)")
    assert isinstance(out, (list, tuple)) and len(out) == 3, "split_by_classes must return one tensor per group"
    check_equal(out[0], torch.tensor([1, 2, 5, 6, 7]), f"split_by_classes(y, [[9, 0], [], [4, 3]])[0] for "
                f"y = {y.tolist()}: labels 9 or 0, in dataset order (not class by class)")
    check_equal(out[1], torch.zeros(0, dtype=torch.int64),
                "split_by_classes(y, [[9, 0], [], [4, 3]])[1]: an empty group gives an empty LongTensor")
    check_equal(out[2], torch.tensor([0, 3, 8]), "split_by_classes(y, [[9, 0], [], [4, 3]])[2]: labels 4 or 3")


@pytest.mark.exercise("ex01.8")
def test_split_group_without_examples_is_empty(ex):
    y = torch.tensor([0, 1, 0, 1, 2])
    out, what = _split(ex, y, [(0,), (7, 8), (2,)])
    check_equal(out[0], torch.tensor([0, 2]), f"{what}[0]")
    check_equal(out[1], torch.zeros(0, dtype=torch.int64),
                 f"{what}[1]: a group whose classes have no examples gives an empty LongTensor")
    check_equal(out[2], torch.tensor([4]), f"{what}[2]")
