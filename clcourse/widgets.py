"""The lessons' interactive widgets (ipywidgets). They never train: they show results computed before.

``lambda_explorer`` (Lesson 02 §6): EWC's stability–plasticity trade-off. A λ sweep gives, for each
λ, the old task's and the new task's accuracy after the new task; the slider picks a λ and the widget
marks its point on the curve and says what it costs.

``temperature_explorer`` (Lesson 03 §2): soft targets. One image's logits from a teacher; the slider
picks a temperature T and the widget draws softmax(z / T) as bars and says its entropy (against the
uniform distribution's log N) and its largest probability: a higher T shows more of what the teacher
thinks of the wrong classes (Hinton et al. 2015's "dark knowledge").

Both are tested headlessly (``tests/test_widgets.py``) and through a real browser (``tests/browser``).
"""
from __future__ import annotations

import math

import ipywidgets as widgets
import matplotlib.pyplot as plt
import torch

from .losses import tempered_softmax
from .plots import OKABE_ITO


def _describe(lam, old, new, names) -> str:
    return (f"<b>λ = {lam:g}</b>: {names[0]} {100 * old:.1f}% (kept), "
            f"{names[1]} {100 * new:.1f}% (learnt)")


class _SliderExplorer(widgets.VBox):
    """A slider over precomputed values, a line of text and a plot; ``show(index)`` redraws both."""

    def __init__(self, labels, description):
        self.slider = widgets.SelectionSlider(
            options=[(label, i) for i, label in enumerate(labels)], value=0,
            description=description, continuous_update=False, layout=widgets.Layout(width="420px"))
        self.text = widgets.HTML()
        self.plot = widgets.Output()
        super().__init__([self.slider, self.text, self.plot])
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.show(0)

    def show(self, index: int) -> None:
        raise NotImplementedError


class LambdaExplorer(_SliderExplorer):
    """A slider over the swept λ values, a line of text and the trade-off curve with λ's point.

    ``sweep``: rows ``(λ, old-task accuracy, new-task accuracy)``, accuracies as fractions;
    ``names``: the two tasks' names, old first.
    """

    def __init__(self, sweep, names=("old task", "new task")):
        rows = sorted((float(lam), float(old), float(new)) for lam, old, new in sweep)
        if len(rows) < 2:
            raise ValueError("a λ sweep needs at least two values of λ")
        self.rows, self.names = rows, tuple(names)
        super().__init__([f"{lam:g}" for lam, _, _ in rows], "λ")

    @property
    def point(self) -> tuple:
        """(λ, old accuracy, new accuracy) of the λ the slider is on."""
        return self.rows[self.slider.value]

    def show(self, index: int) -> None:
        lam, old, new = self.rows[index]
        self.text.value = _describe(lam, old, new, self.names)
        self.plot.clear_output(wait=True)
        with self.plot:
            fig, ax = plt.subplots(figsize=(5.2, 3.6), dpi=90)
            ax.plot([100 * r[2] for r in self.rows], [100 * r[1] for r in self.rows], "o-",
                    color=OKABE_ITO[0], label="λ sweep")
            ax.plot([100 * new], [100 * old], "o", ms=14, mfc="none", mew=2.5, color=OKABE_ITO[5],
                    label=f"λ = {lam:g}")
            ax.set_xlabel(f"{self.names[1]} accuracy (%)")
            ax.set_ylabel(f"{self.names[0]} accuracy (%)")
            ax.set_title("stability (up) against plasticity (right)")
            ax.legend(loc="lower left")
            plt.show()


def lambda_explorer(sweep, names=("old task", "new task")) -> LambdaExplorer:
    """The λ explorer of Lesson 02 §6 for a precomputed sweep (see :class:`LambdaExplorer`)."""
    return LambdaExplorer(sweep, names)


def _entropy(p: torch.Tensor) -> float:
    """H(p) = −Σ p log p in nats (0 log 0 = 0)."""
    return float(-torch.special.xlogy(p, p).sum())


class TemperatureExplorer(_SliderExplorer):
    """A slider over temperatures, a line of text and the bar chart of softmax(z / T).

    ``logits``: one example's logits z (a 1-D tensor or sequence of N ≥ 2 finite numbers, e.g. a
    teacher's 10 logits for one digit); ``names``: the N units' names (default "0", "1", ...);
    ``temperatures``: at least two distinct positive temperatures, shown in increasing order.
    ``.T`` is the temperature the slider is on and ``.probs`` softmax(z / T) there (float64).
    """

    def __init__(self, logits, names=None, temperatures=(1, 2, 5, 10, 20)):
        z = torch.as_tensor(logits).detach().to("cpu", torch.float64)
        if z.dim() != 1 or len(z) < 2:
            raise ValueError(f"logits must be a 1-D tensor of at least two units' logits (one example), "
                             f"got shape {tuple(z.shape)}")
        if not torch.isfinite(z).all():
            raise ValueError(f"logits must be finite, got {z.tolist()}")
        names = [str(i) for i in range(len(z))] if names is None else [str(n) for n in names]
        if len(names) != len(z):
            raise ValueError(f"names must name each of the {len(z)} units, got {len(names)} names")
        try:
            temps = [float(t) for t in temperatures]
        except (TypeError, ValueError):
            raise ValueError(f"temperatures must be a sequence of numbers, got {temperatures!r}") from None
        if len(temps) < 2:
            raise ValueError(f"a temperature explorer needs at least two temperatures, got {temps}")
        if not all(t > 0 and math.isfinite(t) for t in temps):
            raise ValueError(f"every temperature must be positive and finite, got {temps}")
        if len(set(temps)) != len(temps):
            raise ValueError(f"the temperatures must be distinct, got {temps}")
        self.logits, self.names, self.temperatures = z, tuple(names), sorted(temps)
        super().__init__([f"{t:g}" for t in self.temperatures], "T")

    @property
    def T(self) -> float:
        """The temperature the slider is on."""
        return self.temperatures[self.slider.value]

    @property
    def probs(self) -> torch.Tensor:
        """softmax(z / T) at the slider's temperature, a float64 tensor of shape (N,)."""
        return tempered_softmax(self.logits, self.T)

    def describe(self) -> str:
        p, n = self.probs, len(self.logits)
        top = int(p.argmax())
        return (f"<b>T = {self.T:g}</b>: entropy {_entropy(p):.2f} nats (max log {n} = {math.log(n):.2f}); "
                f"largest p = {p[top].item():.2f} for '{self.names[top]}'")

    def show(self, index: int) -> None:
        T, p = self.temperatures[index], tempered_softmax(self.logits, self.temperatures[index])
        self.text.value = self.describe()
        top = int(p.argmax())
        self.plot.clear_output(wait=True)
        with self.plot:
            fig, ax = plt.subplots(figsize=(5.2, 3.4), dpi=90)
            colours = [OKABE_ITO[1] if i == top else OKABE_ITO[0] for i in range(len(p))]
            ax.bar(range(len(p)), p.tolist(), color=colours)
            ax.axhline(1 / len(p), color=OKABE_ITO[7], ls="--", lw=1, label=f"uniform 1/{len(p)}")
            ax.set_xticks(range(len(p)), self.names)
            ax.set_ylim(0, 1.05)
            ax.set_xlabel("unit")
            ax.set_ylabel("softmax(z / T)")
            ax.set_title(f"soft targets at T = {T:g}")
            ax.legend(loc="upper right")
            plt.show()


def temperature_explorer(logits, names=None, temperatures=(1, 2, 5, 10, 20)) -> TemperatureExplorer:
    """The temperature explorer of Lesson 03 §2 for one example's logits (see
    :class:`TemperatureExplorer`)."""
    return TemperatureExplorer(logits, names, temperatures)
