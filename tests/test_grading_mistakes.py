"""The grading tests fail plausible wrong answers, not only stubs.

For every mistake in tests/exercises/mistakes/exNN_topic.py: a copy of the reference solutions with
that one function replaced by the mistake is graded (only that exercise's tests), and the exercise
must come out *failed*. A new lesson's mistakes module is picked up automatically.
"""
import importlib
import sys
from pathlib import Path

import pytest

from clcourse import grading
from clcourse.exercises import list_exercises

REPO = Path(__file__).resolve().parents[1]
MISTAKES_DIR = REPO / "tests" / "exercises" / "mistakes"
if str(MISTAKES_DIR.parent) not in sys.path:  # `import mistakes.exNN_topic`
    sys.path.insert(0, str(MISTAKES_DIR.parent))


def _cases():
    for path in sorted(MISTAKES_DIR.glob("ex[0-9][0-9]_*.py")):
        module = importlib.import_module(f"mistakes.{path.stem}")
        for exercise_id, wrong in module.MISTAKES.items():
            for fn in wrong:
                yield pytest.param(path.stem, exercise_id, fn.__name__,
                                   id=f"{exercise_id}-{fn.__name__}")


def _with_mistake(folder: Path, lesson_module: str, exercise_id: str, mistake: str) -> None:
    """Write folder/<lesson_module>.py: the reference solutions with one function swapped."""
    function = next(e.function_name for e in list_exercises(REPO / "solutions")
                    if e.exercise_id == exercise_id)
    solutions = REPO / "solutions" / f"{lesson_module}.py"
    (folder / f"{lesson_module}.py").write_text(
        f"import sys\nsys.path.insert(0, {str(MISTAKES_DIR.parent)!r})\n"
        f"exec(compile(open({str(solutions)!r}).read(), {str(solutions)!r}, 'exec'))\n"
        f"from mistakes.{lesson_module} import {mistake} as {function}\n")


def test_every_lesson_with_exercises_has_its_mistakes():
    lessons = {e.exercise_id[2:4] for e in list_exercises(REPO / "solutions")}
    have = {p.stem[2:4] for p in MISTAKES_DIR.glob("ex[0-9][0-9]_*.py")}
    assert lessons <= have, f"lessons without a mistakes module: {sorted(lessons - have)}"
    for path in MISTAKES_DIR.glob("ex[0-9][0-9]_*.py"):
        listed = importlib.import_module(f"mistakes.{path.stem}").MISTAKES
        ids = {e.exercise_id for e in list_exercises(REPO / "solutions")
               if e.exercise_id.startswith(path.stem[:4])}
        assert ids <= set(listed), f"{path.name}: no mistake for {sorted(ids - set(listed))}"
        assert all(len(v) >= 2 for v in listed.values()), f"{path.name}: keep a few per exercise"


def _grade(tmp_path, lesson_module, exercise_id, mistake=None):
    if mistake:
        _with_mistake(tmp_path, lesson_module, exercise_id, mistake)
    else:  # the unmodified reference, through the same path
        (tmp_path / f"{lesson_module}.py").write_text(
            (REPO / "solutions" / f"{lesson_module}.py").read_text())
    graded = grading.grade("solutions", lessons=[lesson_module[2:4]], repo=REPO,
                           impl_dir=tmp_path, exercise=exercise_id)
    assert graded is not None, "grading could not run"
    rows, _, _ = graded
    return {i: (status, reason) for i, status, reason in rows}


@pytest.mark.parametrize("lesson_module,exercise_id,mistake", list(_cases()))
def test_a_plausible_mistake_fails_its_own_exercise(tmp_path, lesson_module, exercise_id, mistake):
    rows = _grade(tmp_path, lesson_module, exercise_id, mistake)
    assert set(rows) == {exercise_id}  # only that exercise's tests ran
    status, reason = rows[exercise_id]
    assert status == "failed", f"{mistake} passes the grading tests of {exercise_id}"
    assert "could not import" not in reason, reason


def test_the_swap_itself_keeps_the_reference_passing(tmp_path):
    rows = _grade(tmp_path, "ex00_network_basics", "ex00.1")
    assert rows == {"ex00.1": ("passed", "")}
