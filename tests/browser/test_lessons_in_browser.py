"""Every lesson notebook (notebooks/NN_*.ipynb) opened in JupyterLab under headless Chromium, restarted
and run through the menu in the smoke profile (CLCOURSE_PROFILE=smoke: seconds of training; nbval runs
the class profile and enforces the 5-minute budget), its outputs checked as a student sees them, its
widgets moved by real input events (declared in lesson_widgets.py)."""
from __future__ import annotations

import os

import pytest

import browser_lab as bl
import lesson_widgets as lw

pytestmark = pytest.mark.browser

LESSONS = bl.lesson_notebooks()


def budget(lesson: str) -> float:
    """How long the lesson's smoke-profile run-all may take before it counts as stuck:
    $CLCOURSE_BROWSER_BUDGET_S (a slow machine), else its entry in lesson_widgets.BUDGET_S, else
    lesson_widgets.DEFAULT_BUDGET_S."""
    return float(os.environ.get("CLCOURSE_BROWSER_BUDGET_S") or
                 lw.BUDGET_S.get(lesson, lw.DEFAULT_BUDGET_S))


def test_the_lesson_widget_table_names_existing_lessons_and_valid_events():
    names = {nb.stem for nb in LESSONS}
    for lesson in list(lw.INTERACTIONS) + list(lw.BUDGET_S):
        assert lesson in names, f"lesson_widgets.py names {lesson!r}, but notebooks/{lesson}.ipynb is missing"
    for lesson, interactions in lw.INTERACTIONS.items():
        for it in interactions:
            bl.check_event(it.event)


def test_jupyterlab_page_has_the_widget_manager_and_no_extension_error(lab_page, shots):
    lab_page.open_lab()
    lab_page.page.screenshot(path=str(shots / "jupyterlab.png"))
    problems = bl.page_problems(lab_page)
    assert not problems, "JupyterLab page: " + "; ".join(map(str, problems))


@pytest.mark.parametrize("notebook", LESSONS, ids=[nb.stem for nb in LESSONS])
def test_lesson_runs_in_the_browser(notebook, lab, lab_page, shots):
    copy = lab.root / notebook.name
    try:
        report = bl.run_lesson(lab_page, copy, budget_s=budget(notebook.stem),
                               interactions=lw.INTERACTIONS.get(notebook.stem), shots=shots)
    finally:
        lab.shut_down_kernels(copy.relative_to(lab.root).as_posix())
    if report.run_s is not None:
        print(f"{notebook.stem}: {report.cells} cells, smoke run-all {report.run_s:.1f} s in the browser "
              f"(slowest: {report.slowest()})")
    report.check()
