# Generated from solutions/ex01_forgetting.py by `clcourse exercises`. This is YOUR file: replace each
# `raise NotImplementedError(...)` with your code, then grade it with `clcourse grade --lesson 01`.
# `clcourse exercises` never overwrites your edits (it refuses unless --force, and keeps a copy
# in exercises/.backup/); `clcourse exercises --reset NN` restores this lesson's untouched file.
# clcourse-exercises fingerprint: e7dbc447b9b1efc3de14d2f9dfac28656c34a267b91275104a25614b03d40225
"""Lesson 01 — catastrophic forgetting and the three scenarios: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex01_forgetting.py`). Each exercise says which lesson section explains it.
Use plain tensor operations (indexing, `mean`, `max`, `sum`, comparisons): the point is to see every
step. The tests compare your results with `clcourse`'s own implementations (`clcourse.metrics`,
`clcourse.data.streams`, `clcourse.data.scenarios`) — write yours without looking at them first.

Conventions of the accuracy matrix (GEM, Lopez-Paz & Ranzato 2017, §2; lesson 01 §3): R[i][j] is the test accuracy on task j measured
right after training on task i — rows say how far training has gone, columns which task is tested.
Accuracies are fractions in [0, 1]. The formulas use 1-based task numbers, like the papers; in code,
task 1 is row/column 0 and task T is row/column T − 1 (`R[-1]` is the last row). The metrics must leave
R as it is: `torch.as_tensor` returns a float64 tensor R itself, not a copy, so an in-place operation on
it or on a view of it (`R[-1] -= ...`, `.cumsum_()`) changes the caller's matrix.
"""
import math

import torch


# ---------------------------------------------------------------- §1 permuted MNIST

def permute_images(x, perm):
    """ex01.1 · Lesson 01 §1 — Shuffle the pixels of every image by one fixed permutation.

    x: a batch of images, shape (N, 1, 28, 28) — or any (N, C, H, W) — or already flat, (N, D); N may be
    0 (an empty batch gives an empty batch) and x need not be contiguous.
    perm: a LongTensor holding a permutation of the D = C·H·W pixel positions (0 … D−1, each once).
    A bool tensor is a mask, not a list of positions: raise TypeError if perm.dtype is torch.bool.
    Return a tensor of the same shape and dtype as x in which pixel i of every image (counted in the
    flattened order, row by row) is pixel perm[i] of the same image of x:  out_flat[n, i] = x_flat[n, perm[i]].
    The SAME permutation is applied to every image of the batch: that is what makes a permuted-MNIST
    task a well-defined task (a fixed, if unnatural, re-wiring of the input) rather than noise.
    Leave x and perm as they are (no in-place operations, no change of requires_grad).
    Hint: flatten every image to a row of D pixels with `x.flatten(1)` (`x.reshape(len(x), -1)` fails on
    an empty batch: −1 is ambiguous when there are no elements), index the columns with perm, and reshape
    back to x's shape. Applying the inverse permutation (`torch.argsort(perm)`) afterwards gives the
    original images back.
    """
    # TODO ex01.1 (Lesson 01 §1): Shuffle the pixels of every image by one fixed permutation.
    raise NotImplementedError("ex01.1: permute_images is not implemented yet — see Lesson 01 §1")


# ---------------------------------------------------------------- §3 the metrics

def average_accuracy(R):
    """ex01.2 · Lesson 01 §3 — Average accuracy ACC: the mean accuracy over all tasks at the end.

    R: the T×T accuracy matrix, as a list of lists or a tensor (any float dtype).
        ACC = (1/T) Σ_{j=1..T} R[T][j]          (Lopez-Paz & Ranzato 2017, GEM §2)
    i.e. the mean of the LAST row. Return a Python float (`.item()` turns a 0-d tensor into one).
    T = 1 is fine: ACC = R[1][1].
    Hint: `R = torch.as_tensor(R, dtype=torch.float64)` accepts both lists and tensors.
    """
    # TODO ex01.2 (Lesson 01 §3): Average accuracy ACC: the mean accuracy over all tasks at the end.
    raise NotImplementedError("ex01.2: average_accuracy is not implemented yet — see Lesson 01 §3")


def average_incremental_accuracy(R):
    """ex01.3 · Lesson 01 §3 — Average incremental accuracy AIA: the mean of the accuracy curve.

    R: the T×T accuracy matrix (list of lists or tensor). After each step i, the accuracy over the tasks
    seen so far is the mean of the first i entries of row i:
        A_i = (1/i) Σ_{j=1..i} R[i][j]           (only tasks 1..i: the later ones are not learned yet)
        AIA = (1/T) Σ_{i=1..T} A_i               (iCaRL's summary of its curve, task-level version)
    The average INCLUDES the first step A_1 = R[1][1] (some papers leave it out; this course keeps it).
    Return a Python float. T = 1 is fine: AIA = R[1][1].
    Worked example (lesson §3): A = (0.90, 0.94, 0.75) gives AIA = 2.59 / 3 = 0.8633….
    """
    # TODO ex01.3 (Lesson 01 §3): Average incremental accuracy AIA: the mean of the accuracy curve.
    raise NotImplementedError("ex01.3: average_incremental_accuracy is not implemented yet — see Lesson 01 §3")


def last_accuracy(R):
    """ex01.4 · Lesson 01 §3 — Last accuracy A_T: the accuracy over all tasks after the last one.

    R: the T×T accuracy matrix (list of lists or tensor).
        A_T = (1/T) Σ_{j=1..T} R[T][j]
    the last point of the accuracy curve of ex01.3. When every step adds one task, as here, it equals
    ACC; it is reported separately because iCaRL-style papers quote "last" next to "average
    incremental" accuracy. Return a Python float. T = 1 is fine: R[1][1].
    """
    # TODO ex01.4 (Lesson 01 §3): Last accuracy A_T: the accuracy over all tasks after the last one.
    raise NotImplementedError("ex01.4: last_accuracy is not implemented yet — see Lesson 01 §3")


def backward_transfer(R):
    """ex01.5 · Lesson 01 §3 — Backward transfer BWT: how training on later tasks changed old ones.

    R: the T×T accuracy matrix (list of lists or tensor).
        BWT = (1/(T−1)) Σ_{j=1..T−1} (R[T][j] − R[j][j])      (GEM §2)
    final accuracy on each old task minus its accuracy just after it was learned (the diagonal); the
    last task is left out (it has no "later"). Negative BWT = forgetting, positive = later learning
    helped. Return a Python float. For T = 1 there is no old task: return `math.nan` (float('nan')).
    Worked example (lesson §3): ((0.60 − 0.90) + (0.80 − 0.95)) / 2 = −0.225.
    """
    # TODO ex01.5 (Lesson 01 §3): Backward transfer BWT: how training on later tasks changed old ones.
    raise NotImplementedError("ex01.5: backward_transfer is not implemented yet — see Lesson 01 §3")


def forgetting(R):
    """ex01.6 · Lesson 01 §3 — Average forgetting F_T (Chaudhry et al. 2018, RWalk): max-based.

    R: the T×T accuracy matrix (list of lists or tensor). The forgetting of an old task j (j < T) is the
    drop from the BEST accuracy it had at any earlier step to its final accuracy:
        f_j = max_{l=1..T−1} R[l][j] − R[T][j]         (the max runs over rows 1..T−1, not the last)
        F_T = (1/(T−1)) Σ_{j=1..T−1} f_j               (the last task is left out)
    Rows l < j are included in the max as written (accuracy on task j before it was learned is usually
    low, so it rarely matters). It is NOT the same as −BWT: BWT starts from R[j][j], forgetting from the
    best value, which is higher when a later task helped task j before another one hurt it. F_T can be
    negative when every task ends better than it ever was. Return a Python float; for T = 1 there is
    nothing to forget: return `math.nan`.
    Worked example (lesson §3): f_1 = max(0.90, 0.93) − 0.60 = 0.33, f_2 = 0.95 − 0.80 = 0.15, F = 0.24.
    """
    # TODO ex01.6 (Lesson 01 §3): Average forgetting F_T (Chaudhry et al. 2018, RWalk): max-based.
    raise NotImplementedError("ex01.6: forgetting is not implemented yet — see Lesson 01 §3")


# ---------------------------------------------------------------- §4 split MNIST and the three scenarios

def logit_mask(scenario, sizes, trained_upto, task):
    """ex01.7 · Lesson 01 §4 — Which output units compete for an example, in each scenario.

    scenario: "task", "domain" or "class" (anything else raises ValueError).
    sizes: a list, sizes[j] = number of classes of task j (0-based tasks), e.g. split MNIST [2]*5 or
    permuted MNIST [10]*3. trained_upto: the last task the model has been trained on (0-based);
    task: the task of the example (0-based). Return a 1-d bool tensor, True for the active units:
      * task-IL: one block of output units per task, laid out in task order (sum(sizes) units; task j's
        block starts at sum(sizes[:j])). The task identity is given, so only the example's own task's
        block is active — a multi-head network. trained_upto does not matter.
      * domain-IL: all tasks share one block of max(sizes) units ("first or second digit of its pair"),
        all of them always active: the task identity is neither given nor needed.
      * class-IL: the blocks of task-IL (sum(sizes) units), but the task identity is NOT given, so task
        does not matter: the active units are the blocks of ALL tasks seen so far, 0..trained_upto (the
        "all-so-far" convention of van de Ven's 2019 code and of iCaRL; lesson 01 §4). Earlier
        classes stay active — that is the whole difficulty: the new classes compete with the old ones.
        Classes not seen yet stay inactive, so an untrained unit cannot win (and training does not push
        down units of classes that have no examples yet).
    Example: sizes [2, 2, 2] → task-IL, task 1: [F F T T F F]; class-IL, trained_upto 1: [T T T T F F].
    Counts are ints: a bool (True, False) among sizes, trained_upto or task raises TypeError — Python
    would silently read True as 1. A task of size 0 (no classes) has an empty block: it adds no unit, and
    its task-IL mask is all False.
    """
    # TODO ex01.7 (Lesson 01 §4): Which output units compete for an example, in each scenario.
    raise NotImplementedError("ex01.7: logit_mask is not implemented yet — see Lesson 01 §4")


def split_by_classes(y, class_groups):
    """ex01.8 · Lesson 01 §4 — Split a labelled set into tasks: the example indices of each class group.

    y: a 1-d LongTensor of labels, e.g. MNIST's 60000 digits.
    class_groups: a list of groups of classes, e.g. split MNIST [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]].
    Return a list with one 1-d LongTensor (int64) per group: the indices n of the examples with y[n] in
    that group, in increasing order (dataset order), whatever the order of the labels and of the classes
    inside a group. Examples of classes in no group are left out; a group whose classes have no examples,
    and an empty group [], give an empty LongTensor. Leave y as it is (do not mark used examples in it).
    If two groups share a class, raise ValueError: a split into tasks must put every example into at
    most one task (otherwise "old" and "new" tasks would share examples and forgetting is ill-defined).
    Hint: `torch.isin(y, torch.tensor(group))` is a bool mask; `torch.nonzero(mask).flatten()` (or
    `torch.where(mask)[0]`) gives its indices in increasing order.
    """
    # TODO ex01.8 (Lesson 01 §4): Split a labelled set into tasks: the example indices of each class group.
    raise NotImplementedError("ex01.8: split_by_classes is not implemented yet — see Lesson 01 §4")
