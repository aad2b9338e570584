"""The time of each part of the test run, printed at the end of `python -m pytest` (CI reads it).

Parts: the unit tests; grading (the grading tests on solutions/, the plausible mistakes, the exercise
generator); nbval, one line per lesson (class profile, compared with the committed outputs); the browser
suite, one line per lesson (smoke-profile run-all in JupyterLab) and one for its other checks. A part's
time is the sum of its tests' set-up, call and tear-down, as pytest measured them.
"""
from __future__ import annotations

import re
from collections import defaultdict

_PART_S: dict[str, float] = defaultdict(float)
_PART_N: dict[str, int] = defaultdict(int)
GRADING = ("tests/exercises/", "tests/test_grading_mistakes.py", "tests/test_exercise_pipeline.py")


def part_of(nodeid: str) -> str:
    """The part of the test run a test belongs to, from its node id."""
    path = nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        return "nbval " + path.rsplit("/", 1)[-1][:-len(".ipynb")]
    if path.startswith("tests/browser/"):
        lesson = re.search(r"\[(\d\d_\w+)\]", nodeid)
        return "browser " + lesson.group(1) if lesson else "browser (suite and page checks)"
    if path.startswith(GRADING):
        return "grading and generator"
    return "unit tests"


def pytest_runtest_logreport(report):
    part = part_of(report.nodeid)
    _PART_S[part] += report.duration
    _PART_N[part] += report.when == "call"


def pytest_terminal_summary(terminalreporter):
    if not _PART_S:
        return
    order = lambda part: (["unit tests", "grading and generator"].index(part)
                          if part in ("unit tests", "grading and generator") else 2, part)
    terminalreporter.section("time of each part")
    for part in sorted(_PART_S, key=order):
        terminalreporter.write_line(f"{part:<40} {_PART_N[part]:5d} tests {_PART_S[part]:8.1f} s")
    terminalreporter.write_line(f"{'all':<40} {sum(_PART_N.values()):5d} tests "
                                f"{sum(_PART_S.values()):8.1f} s")
