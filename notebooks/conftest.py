"""nbval on the lessons: the class profile, and each lesson's time budget.

`pytest --nbval notebooks/` (the repository's default `python -m pytest` includes it) runs every lesson
once, cell by cell, in the class profile, and compares each cell's output with the committed one. This
file adds two things:

* the profile: the committed outputs are the class profile's, so a run with `CLCOURSE_PROFILE` set to
  another profile is refused with one line saying what to run instead (`clcourse check` for smoke);
* the budget: after each lesson's last cell, one more test, ``<lesson>.ipynb::time budget``, fails when
  the lesson took longer than its budget — 5 minutes on a 2-core CPU (the course's promise to a class),
  or ``$CLCOURSE_LESSON_BUDGET_S`` on a machine known to be slower. The time is the sum of every cell's
  set-up, run and tear-down (the kernel's start included), as pytest measured them. A lesson that was
  only partly selected (``-k``) is not judged.
"""
from __future__ import annotations

import os
from collections import defaultdict

import pytest

DEFAULT_BUDGET_S = 300.0
_SPENT: dict[str, float] = defaultdict(float)   # notebook path → seconds of its cells so far
_RAN: dict[str, int] = defaultdict(int)         # notebook path → cells whose call phase ran


def budget_s() -> float:
    return float(os.environ.get("CLCOURSE_LESSON_BUDGET_S") or DEFAULT_BUDGET_S)


def _notebook_of(nodeid: str) -> str | None:
    path = nodeid.split("::", 1)[0]
    return path if path.endswith(".ipynb") else None


def pytest_configure(config):
    profile = os.environ.get("CLCOURSE_PROFILE", "").strip()
    if getattr(config.option, "nbval", False) and profile not in ("", "class"):
        raise pytest.UsageError(
            f"CLCOURSE_PROFILE={profile}: nbval compares the lessons with their committed outputs, which "
            "are the class profile's. Unset CLCOURSE_PROFILE for nbval; to run every lesson in the smoke "
            "profile, use `clcourse check`.")


class LessonBudget(pytest.Item):
    """Fails when the lesson's cells together took longer than the budget."""

    def __init__(self, *, cells: int, **kwargs):
        super().__init__(**kwargs)
        self.cells = cells

    def runtest(self):
        path = _notebook_of(self.nodeid)
        if _RAN[path] < self.cells:
            pytest.skip(f"only {_RAN[path]} of the lesson's {self.cells} cells ran: its time is not judged")
        spent, limit = _SPENT[path], budget_s()
        if spent > limit:
            raise AssertionError(f"{path} took {spent:.0f} s in the class profile, over its budget of "
                                 f"{limit:.0f} s: a class cannot run it in time (set "
                                 "CLCOURSE_LESSON_BUDGET_S on a machine known to be slower)")

    def reportinfo(self):
        return self.path, None, f"{self.name}: ≤ {budget_s():.0f} s"


def pytest_collection_modifyitems(session, config, items):
    """One budget test after the last cell of every lesson notebook."""
    out, last_parent, count = [], None, 0
    for item in items + [None]:
        parent = getattr(item, "parent", None)
        if last_parent is not None and parent is not last_parent:
            out.append(LessonBudget.from_parent(last_parent, name="time budget", cells=count))
            last_parent, count = None, 0
        if item is None:
            break
        out.append(item)
        if type(parent).__name__ == "IPyNbFile":
            last_parent, count = parent, count + 1
    items[:] = out


def pytest_runtest_logreport(report):
    path = _notebook_of(report.nodeid)
    if path and not report.nodeid.endswith("::time budget"):
        _SPENT[path] += report.duration
        if report.when == "call":
            _RAN[path] += 1

