"""The two details of van de Ven & Tolias's 2019 code that decide "Three scenarios" Tables 4-5: the
distillation's reduction over the units (commit 86802a8 averaged, 26f00db summed) and the digit order
per seed (data.py: np.random.seed(seed); np.random.permutation(10))."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import clcourse as cl
from clcourse.config import make_settings
from clcourse.data.streams import digit_order
from clcourse.losses import distillation
from clcourse.methods import method_class


@pytest.mark.parametrize("seed", [1, 2, 3, 7, 12345])
def test_the_seeded_digit_order_is_numpys_permutation_as_the_2019_code_draws_it(seed):
    np.random.seed(seed)
    relabel = np.random.permutation(list(range(10)))  # data.py: digit y becomes class relabel[y]
    order = digit_order(seed)
    assert sorted(order) == list(range(10))
    assert all(order[relabel[y]] == y for y in range(10))
    assert order != list(range(10))


def test_seed_0_and_the_fixed_order_keep_the_digits_in_order():
    assert digit_order(0) == list(range(10))
    assert digit_order(5, "fixed") == list(range(10))


def test_split_mnist_tasks_follow_the_seeded_order(tiny_root):
    s = make_settings("split-mnist", "smoke", seed=3, class_order="seeded")
    stream = cl.load_stream("split-mnist", profile="smoke", root=tiny_root, seed=3, class_order="seeded")
    order = digit_order(3)
    assert [t.classes for t in stream.tasks] == [order[2 * t:2 * t + 2] for t in range(5)]
    for task in stream.tasks:
        assert set(task.y_train.tolist()) == set(task.classes)
    assert stream.info["digits"] == order and s.class_order == "seeded"
    with pytest.raises(ValueError, match="unknown class order 'random'"):
        make_settings("split-mnist", class_order="random")


def test_the_paper_profile_uses_the_2019_order_and_the_class_profile_the_fixed_one():
    assert make_settings("split-mnist", "paper").class_order == "seeded"
    assert make_settings("split-mnist", "class").class_order == "fixed"


def test_the_reduction_changes_only_the_scale_by_exactly_the_number_of_units():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(8, 6, generator=g), torch.randn(8, 6, generator=g)
    teacher[:, 4:] = float("-inf")   # class-IL: the teacher has no new units -> zero targets
    summed = distillation(student, teacher, 2.0)
    assert torch.allclose(distillation(student, teacher, 2.0, reduction="mean") * 6, summed)
    student[:, 5] = float("-inf")    # a unit masked out of the student: C counts only its units
    assert torch.allclose(distillation(student, teacher, 2.0, reduction="mean") * 5,
                          distillation(student, teacher, 2.0))
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        distillation(student, teacher, reduction="batchmean")


def test_lwf_averages_over_the_units_only_in_the_paper_profile_on_mnist():
    arg = method_class("lwf").all_arguments()["kd_reduction"]
    assert arg.value(make_settings("split-mnist", "paper")) == "mean"
    assert arg.value(make_settings("permuted-mnist", "paper")) == "mean"
    assert arg.value(make_settings("split-mnist", "class")) == "sum"
    assert arg.value(make_settings("split-cifar100", "paper")) == "sum"


@pytest.mark.parametrize("method", ["lwf", "icarl", "ewc"])
def test_methods_run_on_the_seeded_order_in_class_il(tiny_root, method):
    exp = cl.run("split-mnist", method, scenario="class", profile="smoke", seed=2, class_order="seeded",
                 root=tiny_root, save=False, progress=False)
    R = exp.result.accuracy_matrix
    assert len(R) == 5 and all(0.0 <= a <= 1.0 for row in R for a in row)
    assert exp.result.data["digits"] == digit_order(2)
