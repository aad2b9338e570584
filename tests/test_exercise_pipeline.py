"""The exercise pipeline: generator (solutions/ → exercises/), its checks, and the grading scoreboard."""
import io
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from clcourse.exercises import (EditedExercisesError, ExerciseSourceError, generate_all, generate_text,
                                 is_edited, list_exercises, main)
from clcourse.grading import run_scoreboard

REPO = Path(__file__).resolve().parents[1]

SOLUTION = '''\
"""A tiny lesson."""
import math

SCALE = 2  # module-level code is copied as is


def double(x):
    """ex98.1 · Lesson 98 §1 — Twice x.

    More text that is not the summary.
    """
    ### BEGIN SOLUTION
    return SCALE * x
    ### END SOLUTION


class Box:
    def halve(self, x):
        """ex98.2 · Lesson 98 §2 — Half of x."""
        y = x  # code before the region stays
        ### BEGIN SOLUTION
        return y / 2
        ### END SOLUTION


def helper():
    return math.pi
'''


def test_regions_replaced_and_everything_else_byte_identical():
    out = generate_text(SOLUTION, "solutions/ex98_tiny.py")
    header, body = out.split('"""A tiny lesson."""', 1)
    assert header.startswith("# Generated from solutions/ex98_tiny.py by `clcourse exercises`")
    expected = SOLUTION.replace(
        "    ### BEGIN SOLUTION\n    return SCALE * x\n    ### END SOLUTION\n",
        "    # TODO ex98.1 (Lesson 98 §1): Twice x.\n"
        '    raise NotImplementedError("ex98.1: double is not implemented yet — see Lesson 98 §1")\n',
    ).replace(
        "        ### BEGIN SOLUTION\n        return y / 2\n        ### END SOLUTION\n",
        "        # TODO ex98.2 (Lesson 98 §2): Half of x.\n"
        '        raise NotImplementedError("ex98.2: halve is not implemented yet — see Lesson 98 §2")\n',
    )
    assert '"""A tiny lesson."""' + body == expected
    assert generate_text(SOLUTION, "solutions/ex98_tiny.py") == out  # deterministic

    namespace = {}
    exec(compile(out, "ex98_tiny.py", "exec"), namespace)
    with pytest.raises(NotImplementedError, match=r"^ex98\.1: double"):
        namespace["double"](1)
    with pytest.raises(NotImplementedError, match=r"^ex98\.2: halve"):
        namespace["Box"]().halve(1)
    assert namespace["helper"]() == pytest.approx(3.14159, abs=1e-5)


def test_crlf_and_empty_region_at_end_of_function():
    source = ('def f():\r\n    """ex98.1 · Lesson 98 §1 — F."""\r\n'
              "    ### BEGIN SOLUTION\r\n    ### END SOLUTION\r\n")
    out = generate_text(source, "ex98_crlf.py")
    stub = '    raise NotImplementedError("ex98.1: f is not implemented yet — see Lesson 98 §1")\r\n'
    assert out.endswith(stub)
    assert "### BEGIN" not in out


def _doc(i):
    return f'"""ex98.{i} · Lesson 98 §1 — Exercise {i}."""'


ERRORS = {
    "no END": (f"def f():\n    {_doc(1)}\n    ### BEGIN SOLUTION\n    return 1\n", 3, "no matching"),
    "END without BEGIN": (f"def f():\n    {_doc(1)}\n    return 1\n    ### END SOLUTION\n", 4,
                          "without a BEGIN"),
    "nested": (f"def f():\n    {_doc(1)}\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n"
               "    return 1\n    ### END SOLUTION\n    ### END SOLUTION\n", 4, "nested"),
    "outside a function": ("x = 1\n### BEGIN SOLUTION\ny = 2\n### END SOLUTION\n", 2, "outside a function"),
    "no exercise id": ('def f():\n    """Does f."""\n    ### BEGIN SOLUTION\n    return 1\n'
                       "    ### END SOLUTION\n", 1, "docstring does not start"),
    "duplicate id": (f"def f():\n    {_doc(1)}\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n"
                     f"def g():\n    {_doc(1)}\n    ### BEGIN SOLUTION\n    return 2\n    ### END SOLUTION\n",
                     6, "duplicate exercise id ex98.1"),
    "id without region": (f"def f():\n    {_doc(1)}\n    return 1\n", 1, "has no '### BEGIN SOLUTION'"),
    "malformed marker": (f"def f():\n    {_doc(1)}\n    ## BEGIN SOLUTION\n    return 1\n", 3, "malformed"),
    "two regions": (f"def f():\n    {_doc(1)}\n    ### BEGIN SOLUTION\n    ### END SOLUTION\n"
                    "    ### BEGIN SOLUTION\n    ### END SOLUTION\n", 5, "already has a solution region"),
    "syntax error": ("def f(:\n    pass\n", 1, "SyntaxError"),
}


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_errors_name_file_and_line(case):
    source, line, phrase = ERRORS[case]
    with pytest.raises(ExerciseSourceError) as err:
        generate_text(source, "solutions/ex98_bad.py")
    assert str(err.value).startswith(f"solutions/ex98_bad.py:{line}:")
    assert phrase in str(err.value)


def test_generate_all_writes_then_checks(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    (solutions / "ex98_tiny.py").write_text(SOLUTION, encoding="utf-8")
    assert [e[:3] for e in list_exercises(solutions)] == [("ex98.1", "double", "Lesson 98 §1"),
                                                          ("ex98.2", "halve", "Lesson 98 §2")]
    assert generate_all(solutions, exercises, check=True) == [str(exercises / "ex98_tiny.py")]
    assert not exercises.exists()  # check mode writes nothing
    assert generate_all(solutions, exercises) == [str(exercises / "ex98_tiny.py")]
    assert generate_all(solutions, exercises, check=True) == []

    (exercises / "ex98_tiny.py").write_text("# my edit\n", encoding="utf-8")  # a student's edit
    (exercises / "ex97_stale.py").write_text("", encoding="utf-8")  # no solution behind it
    args = ["--check", "--solutions", str(solutions), "--exercises", str(exercises)]
    assert main(args) == 1
    printed = capsys.readouterr().out
    assert "ex98_tiny.py" in printed and "ex97_stale.py" in printed
    assert (exercises / "ex98_tiny.py").read_text(encoding="utf-8") == "# my edit\n"

    (solutions / "ex98_copy.py").write_text(SOLUTION, encoding="utf-8")  # same ids in two files
    with pytest.raises(ExerciseSourceError, match="duplicate exercise id ex98.1"):
        list_exercises(solutions)


def test_repo_exercises_match_the_generator():
    """CI's check: exercises/ is exactly what `clcourse exercises` makes of solutions/."""
    assert generate_all(REPO / "solutions", REPO / "exercises", check=True) == []


def test_no_grading_test_passes_on_the_untouched_stubs(tmp_path):
    if not list((REPO / "solutions").glob("ex*.py")):
        pytest.skip("no solutions/ yet")
    report = tmp_path / "stubs.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "tests/exercises", "--impl", "exercises", "-q",
         "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=REPO, capture_output=True, text=True, timeout=900,
    )
    cases = ET.parse(report).getroot().iter("testcase")
    outcomes = [next((child.tag for child in case if child.tag in ("failure", "error", "skipped")),
                     "passed") for case in cases]
    assert outcomes, "no grading tests collected in tests/exercises"
    assert outcomes.count("passed") == 0


# --- the scoreboard, on a fake repository in tmp_path -------------------------------------------------

FAKE_SOLUTION = '''\
def double(x):
    """ex98.1 · Lesson 98 §1 — Twice x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION


def halve(x):
    """ex98.2 · Lesson 98 §2 — Half of x."""
    ### BEGIN SOLUTION
    return x / 2
    ### END SOLUTION


def square(x):
    """ex98.3 · Lesson 98 §2 — x squared."""
    ### BEGIN SOLUTION
    return x * x
    ### END SOLUTION


def fourth_power(x):
    """ex98.4 · Lesson 98 §3 — x to the 4th, from square."""
    ### BEGIN SOLUTION
    return square(square(x))
    ### END SOLUTION


def size(x):
    """ex98.5 · Lesson 98 §3 — How many elements x has."""
    ### BEGIN SOLUTION
    return len(x)
    ### END SOLUTION
'''

FAKE_TESTS = '''\
import math
import pytest

EXERCISE_MODULE = "ex98_fake"

@pytest.mark.exercise("ex98.1")
def test_double(ex):
    assert ex.double(3) == 6

@pytest.mark.exercise("ex98.2")
def test_halve_finite(ex):
    assert math.isfinite(ex.halve(1.0)), "halve(1.0) is not finite"

@pytest.mark.exercise("ex98.3")
def test_square(ex):
    assert ex.square(3) == 9

@pytest.mark.exercise("ex98.4")
def test_fourth_power(ex):
    assert ex.fourth_power(2) == 16

@pytest.mark.exercise("ex98.5")
def test_size(ex):
    assert ex.size([1, 2]) == 2
'''


def _fake_repo(tmp_path):
    """solutions/, generated exercises/ and grading tests for lessons 98 (edited) and 99 (broken)."""
    repo = tmp_path / "repo"
    for folder in ("solutions", "exercises", "tests/exercises"):
        (repo / folder).mkdir(parents=True)
    shutil.copy(REPO / "tests" / "exercises" / "conftest.py", repo / "tests" / "exercises")
    (repo / "solutions" / "ex98_fake.py").write_text(FAKE_SOLUTION, encoding="utf-8")
    (repo / "tests" / "exercises" / "test_ex98_fake.py").write_text(FAKE_TESTS, encoding="utf-8")
    lesson_99 = FAKE_SOLUTION.replace("ex98", "ex99").replace("Lesson 98", "Lesson 99")
    (repo / "solutions" / "ex99_broken.py").write_text(lesson_99, encoding="utf-8")
    (repo / "tests" / "exercises" / "test_ex99_broken.py").write_text(
        FAKE_TESTS.replace("ex98", "ex99").replace("ex99_fake", "ex99_broken"), encoding="utf-8")
    generate_all(repo / "solutions", repo / "exercises")

    student = repo / "exercises" / "ex98_fake.py"
    text = student.read_text(encoding="utf-8")
    for function, body in [("double", "return 2 * x"), ("halve", "return float('nan')"),
                           ("fourth_power", "return square(square(x))"), ("size", "return x.shape[0]")]:
        head, tail = text.split(f"def {function}(x):", 1)
        stub_start = tail.index("    # TODO")
        stub_end = tail.index("\n", tail.index("raise NotImplementedError")) + 1
        text = f"{head}def {function}(x):{tail[:stub_start]}    {body}\n{tail[stub_end:]}"
    student.write_text(text, encoding="utf-8")
    broken = repo / "exercises" / "ex99_broken.py"
    broken.write_text(broken.read_text(encoding="utf-8") + "\ndef oops(:\n", encoding="utf-8")
    return repo


def _board(**kwargs):
    stream = io.StringIO()
    code = run_scoreboard(stream=stream, **kwargs)
    return code, {line.split()[0]: line for line in stream.getvalue().splitlines()
                  if line.startswith("  ex")}, stream.getvalue()


def test_scoreboard_classifies_each_exercise(tmp_path):
    repo = _fake_repo(tmp_path)
    code, rows, text = _board(impl="exercises", repo=repo)
    assert code == 1
    assert rows["ex98.1"].endswith("passed")
    assert "failed: AssertionError: halve(1.0) is not finite" in rows["ex98.2"]
    assert rows["ex98.3"].endswith("not attempted")
    assert "failed: needs ex98.3 first" in rows["ex98.4"]
    assert "failed: AttributeError: 'list' object has no attribute 'shape'" in rows["ex98.5"]
    for i in range(1, 6):  # the student's SyntaxError: one clear line per exercise, no traceback
        assert re.search(r"could not import exercises/ex99_broken.py \(line \d+\): SyntaxError",
                         rows[f"ex99.{i}"])
    assert "Traceback" not in text
    assert text.rstrip().endswith("1/10 exercises passed")

    # Only lesson 98, after the student fixes ex98.2: the edit is seen (no stale module or bytecode).
    student = repo / "exercises" / "ex98_fake.py"
    student.write_text(student.read_text(encoding="utf-8").replace("float('nan')", "x / 2"), encoding="utf-8")
    code, rows, text = _board(impl="exercises", repo=repo, lessons=["98"])
    assert sorted(rows) == [f"ex98.{i}" for i in range(1, 6)]
    assert rows["ex98.2"].endswith("passed") and text.rstrip().endswith("2/5 exercises passed")


def test_scoreboard_on_solutions_passes(tmp_path):
    code, rows, text = _board(impl="solutions", repo=_fake_repo(tmp_path))
    assert code == 0 and len(rows) == 10 and text.rstrip().endswith("10/10 exercises passed")


def test_generator_never_overwrites_an_edited_file(tmp_path, capsys):
    solutions, exercises = tmp_path / "solutions", tmp_path / "exercises"
    solutions.mkdir()
    (solutions / "ex98_tiny.py").write_text(SOLUTION, encoding="utf-8")
    (solutions / "ex97_other.py").write_text(
        SOLUTION.replace("ex98", "ex97").replace("Lesson 98", "Lesson 97"), encoding="utf-8")
    args = ["--solutions", str(solutions), "--exercises", str(exercises)]
    assert main(args) == 0
    mine = exercises / "ex98_tiny.py"
    generated = mine.read_text(encoding="utf-8")
    assert "# clcourse-exercises fingerprint: " in generated
    assert not is_edited(mine) and not is_edited(exercises / "ex97_other.py")

    # The student writes code; then the instructor changes the solutions and regenerates.
    edited = generated.replace('raise NotImplementedError("ex98.1', 'return 2 * x  # mine\n    raise NotImplementedError("ex98.1')
    mine.write_text(edited, encoding="utf-8")
    assert is_edited(mine)
    for path in solutions.glob("*.py"):
        path.write_text(path.read_text(encoding="utf-8").replace("Twice x.", "Two times x."), encoding="utf-8")
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "Refusing to overwrite" in err and "ex98_tiny.py" in err and "ex97_other.py" not in err
    assert "--reset" in err and "--force" in err
    assert mine.read_text(encoding="utf-8") == edited                     # nothing lost
    assert "Twice x." in (exercises / "ex97_other.py").read_text(encoding="utf-8")  # nothing written
    with pytest.raises(EditedExercisesError) as caught:
        generate_all(solutions, exercises)
    assert caught.value.files == [str(mine)]

    # --reset restores one lesson (keeping a copy of the student's file), and only that lesson.
    assert main(args + ["--reset", "ex98"]) == 0
    out = capsys.readouterr().out
    assert "wrote" in out and "ex98_tiny.py" in out and "ex97_other.py" not in out
    assert "Two times x." in mine.read_text(encoding="utf-8") and not is_edited(mine)
    kept = list((exercises / ".backup").glob("ex98_tiny.py.*"))
    assert len(kept) == 1 and kept[0].read_text(encoding="utf-8") == edited
    assert f"kept as" in out
    # Unedited but stale files are simply regenerated.
    assert main(args) == 0 and "Two times x." in (exercises / "ex97_other.py").read_text(encoding="utf-8")

    # --force overwrites edited files too, after backing them up; a file from before fingerprints
    # counts as edited only when an exercise body is no longer the stub.
    mine.write_text(edited, encoding="utf-8")
    (solutions / "ex98_tiny.py").write_text(SOLUTION, encoding="utf-8")
    assert main(args + ["--force"]) == 0
    assert len(list((exercises / ".backup").glob("ex98_tiny.py.*"))) == 2
    old_style = re.sub(r"# clcourse-exercises fingerprint: \w+\n", "", mine.read_text(encoding="utf-8"))
    mine.write_text(old_style, encoding="utf-8")
    assert not is_edited(mine)
    mine.write_text(old_style.replace(
        'raise NotImplementedError("ex98.2: halve is not implemented yet — see Lesson 98 §2")',
        "return y / 2"), encoding="utf-8")
    assert is_edited(mine)
    assert main(args + ["--reset", "42"]) == 2 and "no lesson '42'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(args + ["--check", "--force"])


def test_grade_a_collected_folder(tmp_path, capsys):
    repo = _fake_repo(tmp_path)
    handed_in = tmp_path / "alice"
    handed_in.mkdir()
    shutil.copy(repo / "exercises" / "ex98_fake.py", handed_in)  # lesson 99's file not handed in
    code, rows, text = _board(impl="exercises", repo=repo, folder=handed_in)
    assert code == 1 and f"Scoreboard for {handed_in}" in text
    assert rows["ex98.1"].endswith("passed") and rows["ex98.3"].endswith("not attempted")
    assert "failed: no ex99_broken.py in the graded folder" in rows["ex99.1"]
    code, rows, text = _board(impl="exercises", repo=repo, folder=tmp_path / "nobody")
    assert code == 1 and "no such folder" in text
    code, rows, text = _board(impl="exercises", repo=repo, folder=repo / "tests")
    assert code == 1 and "holds no exercise files" in text


def test_grading_needs_only_the_runtime_dependencies():
    """`pip install -e .` (no dev extras: no nbval) can grade: the repository's --nbval options are not
    passed to the in-process pytest."""
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    done = subprocess.run([sys.executable, "-m", "clcourse", "grade", "--impl", "solutions", "--lesson", "00"],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"(\d+)/\1 exercises passed", done.stdout), done.stdout
