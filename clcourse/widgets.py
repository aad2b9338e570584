"""The lessons' interactive widgets (ipywidgets). They never train: they show results computed before.

``lambda_explorer`` (Lesson 02 §6): EWC's stability–plasticity trade-off. A λ sweep gives, for each
λ, the old task's and the new task's accuracy after the new task; the slider picks a λ and the widget
marks its point on the curve and says what it costs. Tested headlessly (``tests/test_widgets.py``)
and through a real browser (``tests/browser``).
"""
from __future__ import annotations

import ipywidgets as widgets
import matplotlib.pyplot as plt

from .plots import OKABE_ITO


def _describe(lam, old, new, names) -> str:
    return (f"<b>λ = {lam:g}</b>: {names[0]} {100 * old:.1f}% (kept), "
            f"{names[1]} {100 * new:.1f}% (learnt)")


class LambdaExplorer(widgets.VBox):
    """A slider over the swept λ values, a line of text and the trade-off curve with λ's point.

    ``sweep``: rows ``(λ, old-task accuracy, new-task accuracy)``, accuracies as fractions;
    ``names``: the two tasks' names, old first.
    """

    def __init__(self, sweep, names=("old task", "new task")):
        rows = sorted((float(lam), float(old), float(new)) for lam, old, new in sweep)
        if len(rows) < 2:
            raise ValueError("a λ sweep needs at least two values of λ")
        self.rows, self.names = rows, tuple(names)
        self.slider = widgets.SelectionSlider(
            options=[(f"{lam:g}", i) for i, (lam, _, _) in enumerate(rows)], value=0,
            description="λ", continuous_update=False, layout=widgets.Layout(width="420px"))
        self.text = widgets.HTML()
        self.plot = widgets.Output()
        super().__init__([self.slider, self.text, self.plot])
        self.slider.observe(lambda change: self.show(change["new"]), names="value")
        self.show(0)

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
