"""Tests of the browser suite itself, on notebooks written here into the server's temporary folder:
the widget machinery answers real input events (before any lesson has a widget), and notebooks broken on
purpose make the checking function fail with a message naming the lesson and the cell."""
from __future__ import annotations

import re

import nbformat
import pytest

import browser_lab as bl
from lesson_widgets import Interaction, button, slider

pytestmark = pytest.mark.browser

PROBE_WIDGET = """\
import ipywidgets as widgets
n = widgets.IntSlider(value=0, min=0, max=20, description="n")
shown = widgets.HTML("n squared = 0")
n.observe(lambda change: setattr(shown, "value", f"n squared = {change['new'] ** 2}"), names="value")
more = widgets.Button(description="one more")
more.on_click(lambda _: setattr(n, "value", n.value + 1))
widgets.VBox([n, more, shown])"""

PROBE_INTERACTIONS = [
    Interaction(cell="widgets.VBox(", control=slider("n"), event="key:ArrowRight*3",
                watch=".widget-html", expect=r"n squared = 9\b", note="slider set by keyboard"),
    Interaction(cell="widgets.VBox(", control=button("one more"), event="click",
                watch=".widget-html", expect=r"n squared = 16\b", note="button clicked"),
    Interaction(cell="widgets.VBox(", control=slider("n"), event="drag:120",
                watch=".widget-html", note="slider dragged by the mouse"),
    Interaction(cell="widgets.VBox(", control=".widget-slider .widget-readout", event="type:7",
                watch=".widget-html", expect=r"n squared = 49\b", note="slider readout typed into"),
]

GHOST_WIDGET = """\
import ipywidgets as widgets
from traitlets import Unicode

class Ghost(widgets.DOMWidget):  # a widget whose front-end module no extension provides
    _model_module = Unicode("clcourse-no-such-frontend").tag(sync=True)
    _view_module = Unicode("clcourse-no-such-frontend").tag(sync=True)
    _model_name = Unicode("GhostModel").tag(sync=True)
    _view_name = Unicode("GhostView").tag(sync=True)

Ghost()"""


def write_notebook(folder, name, cells):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell(c[3:]) if c.startswith("md:") else
                nbformat.v4.new_code_cell(c) for c in cells]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def probe_notebook(lab, name):
    return write_notebook(lab.root / "selfcheck", name, [
        "md:# A widget probe", "print('before the widget')", PROBE_WIDGET, "print('after the widget')"])


def run(lab, lab_page, notebook, **kw):
    try:
        return bl.run_lesson(lab_page, notebook, budget_s=120, **kw)
    finally:
        lab.shut_down_kernels(notebook.relative_to(lab.root).as_posix())


def test_a_widget_responds_to_real_click_key_drag_and_typing(lab, lab_page, shots):
    notebook = probe_notebook(lab, "98_widget_probe")
    report = run(lab, lab_page, notebook, interactions=PROBE_INTERACTIONS, shots=shots)
    report.check()
    assert len(report.screenshots) == 1 + len(PROBE_INTERACTIONS)


def test_a_widget_that_is_never_moved_fails_the_lesson(lab, lab_page):
    """A lesson with an interactive widget and no entry in lesson_widgets.py fails, naming the cell."""
    notebook = probe_notebook(lab, "98_widget_undeclared")
    with pytest.raises(bl.LessonFailed) as failure:
        run(lab, lab_page, notebook, interactions=None).check()
    message = str(failure.value)
    assert "lesson 98_widget_undeclared" in message
    assert re.search(r"cell 3 \(code, \[\d+\] `import ipywidgets as widgets`\): shows an interactive "
                     r"widget but tests/browser/lesson_widgets.py declares no interactions", message)


def test_a_broken_copy_of_a_lesson_fails_naming_the_lesson_and_the_cells(lab, lab_page, shots):
    """A copy of lesson 00 with a widget whose front-end is missing and a cell that raises."""
    lesson = bl.lesson_notebooks()[0]
    nb = nbformat.read(lesson, as_version=4)
    code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    at = code[1] + 1                           # after the lesson's second code cell
    nb.cells[at:at] = [nbformat.v4.new_code_cell(GHOST_WIDGET),
                       nbformat.v4.new_code_cell('raise RuntimeError("broken on purpose")')]
    name = lesson.stem + "_broken"
    broken = lab.root / "selfcheck" / f"{name}.ipynb"
    broken.parent.mkdir(exist_ok=True)
    nbformat.write(nb, broken)

    with pytest.raises(bl.LessonFailed) as failure:
        run(lab, lab_page, broken, interactions=[], shots=shots).check()
    message = str(failure.value)
    assert message.startswith(f"lesson {name}:")
    assert f"cell {at + 1} (code, [" in message and "Error displaying widget" in message
    assert re.search(rf"cell {at + 2} \(code, \[\d+\] `raise RuntimeError\(\"broken on purpose\"\)`\): "
                     r"error output RuntimeError: broken on purpose", message)
    after = next(i for i in range(at + 2, len(nb.cells)) if nb.cells[i].cell_type == "code")
    assert re.search(rf"cell {after + 1} \(code, `[^`]*`\): did not run", message)
    assert f"{name}.png" in message


def test_a_disabled_widget_extension_fails_naming_the_extension_and_the_cell(lab, lab_page):
    notebook = probe_notebook(lab, "98_widget_no_frontend")
    config = lab.disable_extension(bl.WIDGET_MANAGER)
    try:
        with pytest.raises(bl.LessonFailed) as failure:
            run(lab, lab_page, notebook, interactions=PROBE_INTERACTIONS[:1]).check()
    finally:
        config.unlink()
    message = str(failure.value)
    assert "lesson 98_widget_no_frontend" in message
    assert f"{bl.WIDGET_MANAGER} is disabled" in message
    assert re.search(r"cell 3 \(code, \[\d+\] `import ipywidgets as widgets`\): widget did not render",
                     message)


def test_no_browser_means_one_line_saying_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("CLCOURSE_CHROMIUM", raising=False)
    assert bl.find_chromium(path=str(tmp_path)) is None
    assert "\n" not in bl.HOW_TO_GET_CHROMIUM and "apt-get install chromium" in bl.HOW_TO_GET_CHROMIUM
