"""The lessons' widgets, driven headlessly: set the control, check what it shows."""
import matplotlib
import pytest

matplotlib.use("Agg")

from clcourse.widgets import lambda_explorer  # noqa: E402

SWEEP = [(0.0, 0.55, 0.95), (100.0, 0.70, 0.93), (1e4, 0.85, 0.80), (1e6, 0.96, 0.30)]


def test_the_slider_moves_the_point_and_the_text():
    w = lambda_explorer(SWEEP, names=("MNIST", "USPS"))
    assert w.point == (0.0, 0.55, 0.95)
    assert "λ = 0</b>: MNIST 55.0% (kept), USPS 95.0% (learnt)" in w.text.value
    w.slider.value = 2
    assert w.point == (1e4, 0.85, 0.80)
    assert "λ = 10000</b>: MNIST 85.0% (kept), USPS 80.0% (learnt)" in w.text.value
    assert [label for label, _ in w.slider.options] == ["0", "100", "10000", "1e+06"]


def test_the_sweep_is_sorted_by_lambda_and_needs_two_points():
    w = lambda_explorer(list(reversed(SWEEP)))
    assert [r[0] for r in w.rows] == [0.0, 100.0, 1e4, 1e6]
    with pytest.raises(ValueError, match="at least two"):
        lambda_explorer(SWEEP[:1])
