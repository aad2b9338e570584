"""The lessons' widgets, driven headlessly: set the control, check what it shows."""
import math

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from clcourse.widgets import TemperatureExplorer, lambda_explorer, temperature_explorer  # noqa: E402

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


# A teacher's logits for one image of a 3: confident, with a runner-up (8) and a far-off (1).
DIGIT = torch.tensor([-1.0, -4.0, 0.5, 9.0, -2.0, 1.0, -3.0, 0.0, 4.0, -0.5])


def _softmax(z, T):
    return torch.softmax(z.double() / T, dim=0)


def _entropy(p):
    return float(-(p * p.log()).sum())


def test_the_temperature_slider_moves_the_bars_and_the_text():
    w = temperature_explorer(DIGIT)
    assert isinstance(w, TemperatureExplorer)
    assert w.slider.description == "T" and w.slider.continuous_update is False
    assert [label for label, _ in w.slider.options] == ["1", "2", "5", "10", "20"]
    assert w.T == 1.0
    torch.testing.assert_close(w.probs, _softmax(DIGIT, 1.0))
    p = _softmax(DIGIT, 1.0)
    assert w.text.value == (f"<b>T = 1</b>: entropy {_entropy(p):.2f} nats (max log 10 = 2.30); "
                            f"largest p = {p[3]:.2f} for '3'")
    before = w.text.value
    w.slider.value = 2
    assert w.T == 5.0 and w.text.value != before
    assert w.text.value.startswith("<b>T = 5</b>: entropy ")
    torch.testing.assert_close(w.probs, _softmax(DIGIT, 5.0))
    assert f"largest p = {_softmax(DIGIT, 5.0)[3]:.2f} for '3'" in w.text.value


def test_the_bar_chart_shows_the_probabilities(monkeypatch):
    import matplotlib.pyplot as plt
    shown = []
    monkeypatch.setattr(plt, "show", lambda: shown.append(plt.gcf()))
    w = temperature_explorer(DIGIT, temperatures=(1, 10))
    w.slider.value = 1
    assert len(shown) == 2  # drawn at the start, redrawn when the slider moved
    for fig, T in zip(shown, (1.0, 10.0)):
        ax = fig.axes[0]
        heights = [bar.get_height() for bar in ax.patches]
        torch.testing.assert_close(torch.tensor(heights, dtype=torch.float64), _softmax(DIGIT, T))
        assert [t.get_text() for t in ax.get_xticklabels()] == [str(i) for i in range(10)]
        assert f"T = {T:g}" in ax.get_title()
        plt.close(fig)


def test_entropy_rises_along_the_slider_towards_log_n():
    w = temperature_explorer(DIGIT, names=[f"digit {i}" for i in range(10)], temperatures=(20, 1, 0.5, 5, 100))
    assert w.temperatures == [0.5, 1.0, 5.0, 20.0, 100.0]  # shown in increasing order
    entropies = []
    for i, T in enumerate(w.temperatures):
        w.slider.value = i
        assert w.T == T
        torch.testing.assert_close(w.probs, _softmax(DIGIT, T))
        assert abs(float(w.probs.sum()) - 1) < 1e-12
        entropies.append(_entropy(w.probs))
        assert f"entropy {entropies[-1]:.2f} nats" in w.text.value
        assert "for 'digit 3'" in w.text.value  # a temperature never changes which unit is largest
    assert all(a < b for a, b in zip(entropies, entropies[1:])), entropies
    assert entropies[-1] < math.log(10) and math.log(10) - entropies[-1] < 0.05


def test_the_temperature_explorer_takes_lists_and_huge_logits():
    w = temperature_explorer([0, 1e4, -1e4], names="abc", temperatures=[0.5, 1e4])
    assert torch.isfinite(w.probs).all() and w.probs[1] == 1.0
    assert "largest p = 1.00 for 'b'" in w.text.value
    w.slider.value = 1
    torch.testing.assert_close(w.probs, _softmax(torch.tensor([0, 1e4, -1e4]), 1e4))


@pytest.mark.parametrize("kwargs,match", [
    (dict(logits=torch.zeros(2, 10)), "1-D"),
    (dict(logits=torch.tensor(3.0)), "1-D"),
    (dict(logits=torch.tensor([1.0])), "at least two units"),
    (dict(logits=torch.tensor([1.0, float("nan")])), "finite"),
    (dict(logits=DIGIT, names=["a", "b"]), "each of the 10 units"),
    (dict(logits=DIGIT, temperatures=(2,)), "at least two temperatures"),
    (dict(logits=DIGIT, temperatures=(1, 0)), "positive"),
    (dict(logits=DIGIT, temperatures=(1, -2)), "positive"),
    (dict(logits=DIGIT, temperatures=(1, float("inf"))), "positive and finite"),
    (dict(logits=DIGIT, temperatures=(1, 2, 2)), "distinct"),
    (dict(logits=DIGIT, temperatures=5), "sequence of numbers"),
])
def test_the_temperature_explorer_rejects_bad_inputs(kwargs, match):
    with pytest.raises(ValueError, match=match):
        temperature_explorer(**kwargs)
