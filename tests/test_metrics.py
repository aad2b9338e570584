"""Metrics against hand-computed matrices (lesson 01 §3's worked example and two more by hand)."""
import math

import pytest

from clcourse import metrics

R = [[0.90, 0.20, 0.10],
     [0.93, 0.95, 0.15],
     [0.60, 0.80, 0.85]]


def test_worked_example_of_methods_section_0_5():
    assert metrics.average_accuracy(R) == pytest.approx(0.75)
    assert metrics.accuracy_after_each_task(R) == pytest.approx([0.90, 0.94, 0.75])
    assert metrics.average_incremental_accuracy(R) == pytest.approx(2.59 / 3)
    assert metrics.last_accuracy(R) == pytest.approx(0.75)
    assert metrics.backward_transfer(R) == pytest.approx(-0.225)
    assert metrics.forgetting_per_task(R) == pytest.approx([0.33, 0.15])
    assert metrics.forgetting(R) == pytest.approx(0.24)
    assert metrics.forward_transfer(R, [0.1, 0.1, 0.1]) == pytest.approx(0.075)


def test_forgetting_is_max_based_not_diagonal_based():
    # Task 1 peaks after task 2 (0.93 > 0.90): forgetting uses the peak, BWT the diagonal.
    assert metrics.forgetting(R) != pytest.approx(-metrics.backward_transfer(R))


def test_forgetting_at_an_intermediate_step():
    assert metrics.forgetting(R, k=1) == pytest.approx(0.90 - 0.93)  # improved: negative
    assert math.isnan(metrics.forgetting(R, k=0))


def test_no_forgetting_matrix():
    P = [[1.0, 0.0], [1.0, 1.0]]
    assert metrics.backward_transfer(P) == 0
    assert metrics.forgetting(P) == 0
    assert metrics.average_incremental_accuracy(P) == 1.0


def test_two_by_two_by_hand():
    Q = [[0.8, 0.1], [0.4, 0.9]]
    s = metrics.summarize(Q)
    assert s["average_accuracy"] == pytest.approx(0.65)
    assert s["average_incremental_accuracy"] == pytest.approx((0.8 + 0.65) / 2)
    assert s["bwt"] == pytest.approx(-0.4)
    assert s["forgetting"] == pytest.approx(0.4)


def test_single_task_has_no_backward_metrics():
    s = metrics.summarize([[0.97]])
    assert s["average_accuracy"] == pytest.approx(0.97)
    assert s["bwt"] is None and s["forgetting"] is None


@pytest.mark.parametrize("bad", [[], [[0.1, 0.2]], [[[0.1]]]])
def test_non_square_matrix_is_rejected(bad):
    with pytest.raises(ValueError, match="square"):
        metrics.average_accuracy(bad)
