"""The widget interactions of every lesson, as data. The browser suite (tests/browser) runs each lesson
in JupyterLab ("Restart Kernel and Run All Cells"), then performs that lesson's interactions here with real
input events and checks that what the widget shows changed.

A lesson that shows an interactive widget (a slider, a button, a text box, ...) and has no entry here fails
the suite, so every widget joins the tests with its lesson. One entry per lesson, keyed by the notebook's
file name without ``.ipynb``; each `Interaction` is performed in order, on the page as the run left it:

    cell     text found in the source of the code cell whose output holds the widget (its first match);
             control and watch are looked up inside that cell's output ("" = the whole notebook)
    control  Playwright selector of the control to act on; its first match is used. Helpers:
             slider("λ") = the handle of the slider labelled λ, button("Train") = the button with that text
    event    the real input event, one of
               "click"                       a mouse click on the control
               "key:ArrowRight" / "key:ArrowRight*3" / "key:End"
                                             focus the control, press that key (n times), e.g. step a
                                             slider by keyboard
               "drag:80" / "drag:80,0"       press the mouse on the control's centre, move dx (,dy)
                                             pixels, release: a slider dragged by hand
               "type:0.5"                    click the control, select its text, type, press Enter
                                             (a text box, or a slider's editable readout)
    watch    Playwright selector of what must change; all its matches' text and image data together
             must differ from before the event (within timeout_s seconds)
    expect   optional regular expression that the watched text must then contain (re.search)

Example (the shape lesson 02's λ explorer entry takes; selectors depend on how the widget is built):

    "02_ewc": [
        Interaction(cell="lambda_explorer(", control=slider("λ"), event="key:ArrowRight*2",
                    watch=".widget-output", note="λ slider by keyboard redraws the plot"),
        Interaction(cell="lambda_explorer(", control=slider("λ"), event="drag:-60",
                    watch=".widget-output", note="λ slider dragged back redraws the plot"),
    ],
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Interaction:
    control: str
    event: str
    watch: str
    cell: str = ""
    expect: str = ""
    note: str = ""
    timeout_s: float = 30.0


def slider(description: str) -> str:
    """The draggable, keyboard-focusable handle of the ipywidgets slider labelled ``description``."""
    return f'.widget-slider:has(.widget-label:text-is("{description}")) .noUi-handle'


def button(text: str) -> str:
    """The ipywidgets button showing ``text``."""
    return f'button.jupyter-button:has-text("{text}")'


# lesson (notebook file name without .ipynb) -> its interactions, performed in order after the run-all.
INTERACTIONS: dict[str, list[Interaction]] = {
    "02_ewc": [
        Interaction(cell="lambda_explorer(", control=slider("λ"), event="key:ArrowRight",
                    watch=".widget-html, .widget-output", expect=r"λ = 10\b",
                    note="λ explorer: one step right by keyboard → λ = 10, text and plot redrawn"),
        Interaction(cell="lambda_explorer(", control=slider("λ"), event="drag:-200",
                    watch=".widget-html, .widget-output", expect=r"λ = 0\b",
                    note="λ explorer: dragged back to the left end → λ = 0"),
    ],
    "03_distillation": [
        Interaction(cell="temperature_explorer(", control=slider("T"), event="key:ArrowRight",
                    watch=".widget-html, .widget-output", expect=r"T = 2\b",
                    note="temperature explorer: one step right by keyboard → T = 2, text and bars redrawn"),
        Interaction(cell="temperature_explorer(", control=slider("T"), event="drag:200",
                    watch=".widget-html, .widget-output", expect=r"T = 20\b",
                    note="temperature explorer: dragged to the right end → T = 20"),
    ],
}

# lesson -> seconds its smoke-profile "Restart Kernel and Run All Cells" may take in the browser before
# the run counts as stuck (default below; each lesson takes 10-40 s on a quiet 2-core machine). The
# class profile's 5-minute budget is enforced by nbval (notebooks/conftest.py).
# Lesson 07's smoke run-all took 123 s here with the other core busy (60 cells, 14 figures, two dozen
# short runs): more room than the default.
BUDGET_S: dict[str, float] = {"07_replay": 300.0}
DEFAULT_BUDGET_S = 180.0
