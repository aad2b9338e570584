"""The student's scoreboard: `clcourse grade [--impl exercises|solutions] [--lesson NN ...]`.

Runs the grading tests (tests/exercises/test_exNN_*.py) in-process with pytest, keeps pytest's own
output out of sight, and prints one row per exercise:

    passed          every test of the exercise passed
    not attempted   a test hit the stub's NotImplementedError (raised from the graded file)
    failed: ...     the first failing test's exception, in one line

Whatever the student's code does (raise, return NaN, fail to import), it shows up in a row — the
command itself never crashes with a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import re
import sys
from pathlib import Path

from .exercises import find_repo_root, id_sort_key, list_exercises

UNMARKED = "(no exercise marker)"


class _Collector:
    """A pytest plugin that records, per test: its exercise ids and its first failure."""

    def __init__(self, impl_dir: Path):
        self.impl_dir = impl_dir.resolve()
        self.tests = {}  # nodeid → dict(name, ids, outcome, reason, not_attempted_ids)
        self.collect_errors = []  # one line per file pytest could not collect
        self._raw = {}  # (nodeid, phase) → exception details, taken before pytest formats them

    def _test(self, nodeid, name=None, ids=(UNMARKED,)):
        return self.tests.setdefault(nodeid, dict(name=name or nodeid, ids=list(ids), outcome=None,
                                                  reason="", not_attempted_ids=set()))

    def pytest_itemcollected(self, item):
        ids = [a for mark in item.iter_markers("exercise") for a in mark.args] or [UNMARKED]
        self._test(item.nodeid, item.name, ids)

    def pytest_deselected(self, items):  # --exercise: the other exercises' tests are not graded
        for item in items:
            self.tests.pop(item.nodeid, None)

    def pytest_collectreport(self, report):
        if report.failed:
            lines = str(report.longrepr).strip().splitlines() or ["?"]
            error = next((l[1:].strip() for l in reversed(lines) if l.startswith("E ")), lines[-1])
            self.collect_errors.append(f"{report.nodeid or 'collection'}: {error}")

    def pytest_runtest_makereport(self, item, call):
        # Runs before pytest's own makereport (plugins passed to pytest.main are called first), so the
        # traceback is still raw: its innermost frame is where the exception was raised.
        if call.excinfo is None:
            return None
        err, tb = call.excinfo.value, call.excinfo.tb
        while tb is not None and tb.tb_next is not None:
            tb = tb.tb_next
        raised_in = Path(tb.tb_frame.f_code.co_filename).resolve() if tb is not None else None
        self._raw[(item.nodeid, call.when)] = dict(
            type=type(err).__name__, message=str(err),
            from_impl=raised_in is not None and self.impl_dir in raised_in.parents,
            is_nie=isinstance(err, NotImplementedError),
        )
        return None

    def pytest_runtest_logreport(self, report):
        test = self._test(report.nodeid)
        if test["outcome"] == "failed":
            return  # keep the first failure (setup's, say, rather than teardown's)
        if report.failed:
            raw = self._raw.get((report.nodeid, report.when), {})
            test["outcome"] = "failed"
            test["reason"] = _one_line(raw) if raw else f"{report.when} failed"
            if report.when == "call":  # a setup failure (file missing, import error) is not the test's
                test["reason"] += f"  [{test['name']}]"
            if raw.get("is_nie") and raw.get("from_impl"):
                # The stub says which exercise it belongs to ("ex00.1: ..."); a stub of *another*
                # exercise (called by this one) is a plain failure: "needs ex00.1 first".
                said = re.match(r"(ex\d{2}\.\d+):", raw["message"])
                test["not_attempted_ids"] = {i for i in test["ids"] if not said or said.group(1) == i}
                if said and said.group(1) not in test["ids"]:
                    test["reason"] = (f"needs {said.group(1)} first (it is still a stub, and this "
                                      f"exercise calls it)  [{test['name']}]")
        elif report.when == "call":
            test["outcome"] = "skipped" if report.skipped else "passed"
        elif report.skipped and test["outcome"] is None:
            test["outcome"] = "skipped"


def _one_line(raw: dict, limit: int = 110) -> str:
    message = (raw["message"].strip().splitlines() or [""])[0]
    text = message if raw["type"] == "Failed" else f"{raw['type']}: {message}".rstrip(": ")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _rows(collector: _Collector):
    """(exercise id, status, reason) per exercise, in id order."""
    by_id = {}
    for test in collector.tests.values():  # insertion order = collection order
        for exercise_id in test["ids"]:
            by_id.setdefault(exercise_id, []).append(test)
    rows = []
    for exercise_id in sorted(by_id, key=id_sort_key):
        tests = by_id[exercise_id]
        failed = [t for t in tests if t["outcome"] == "failed"]
        if any(exercise_id in t["not_attempted_ids"] for t in failed):
            rows.append((exercise_id, "not attempted", ""))
        elif failed:
            rows.append((exercise_id, "failed", failed[0]["reason"]))
        elif any(t["outcome"] == "passed" for t in tests):
            rows.append((exercise_id, "passed", ""))
        else:
            rows.append((exercise_id, "skipped", ""))
    return rows


def _test_files(repo: Path, lessons, stream) -> list[Path]:
    folder = repo / "tests" / "exercises"
    if not lessons:
        return sorted(folder.glob("test_ex*.py"))
    files = []
    for lesson in lessons:
        number = re.sub(r"\D", "", str(lesson).split("_")[0]).zfill(2)
        found = sorted(folder.glob(f"test_ex{number}_*.py"))
        if not found:
            print(f"no grading tests for lesson {number} (tests/exercises/test_ex{number}_*.py)", file=stream)
        files += found
    return files


def grade(impl="exercises", lessons=None, repo=None, impl_dir=None, exercise=None,
          stream=sys.stdout):
    """Run the grading tests on ``<repo>/<impl>/`` (or on the modules in ``impl_dir``), in-process.

    ``exercise``: grade only that exercise (e.g. "ex00.1"). Returns ``(rows, collector, exit_code)``
    with one ``(exercise id, status, reason)`` row per exercise, or None when grading could not run
    (the reason is printed to ``stream``).
    """
    try:
        import pytest
    except ImportError:
        print("grading needs pytest: pip install pytest", file=stream)
        return None

    repo = Path(repo).resolve() if repo else find_repo_root()
    files = _test_files(repo, lessons, stream)
    if not files:
        print(f"no grading tests found under {repo / 'tests' / 'exercises'}", file=stream)
        return None
    graded_dir = Path(impl_dir).resolve() if impl_dir else (repo / impl).resolve()
    collector = _Collector(graded_dir)
    args = [str(f) for f in files] + [
        "--impl", impl, "--rootdir", str(repo), "-q", "--no-header", "--tb=no",
        "-p", "no:cacheprovider", "--continue-on-collection-errors",
        "-o", "addopts=",  # the repository's own options (--nbval ...) need the dev extras
    ]
    if impl_dir:
        args += ["--impl-dir", str(graded_dir)]
    if exercise:
        args += ["--exercise", exercise]
    # pytest.main in this process leaves the test modules it imported in sys.modules and their folder
    # on sys.path; undo both so that a second run (another repo, an edited file) starts clean.
    modules_before, path_before = set(sys.modules), list(sys.path)
    pytest_output = io.StringIO()
    try:
        with contextlib.redirect_stdout(pytest_output), contextlib.redirect_stderr(pytest_output):
            exit_code = pytest.main(args, plugins=[collector])
    except (Exception, SystemExit) as err:  # a crash of pytest itself, not of a test
        print(f"grading could not run: {type(err).__name__}: {err}", file=stream)
        return None
    finally:
        # Only what lives in tests/ or the graded folder: clcourse itself must stay imported once.
        graded = (repo / "tests", graded_dir)
        for name in set(sys.modules) - modules_before:
            file = getattr(sys.modules[name], "__file__", None)
            if file and any(folder in Path(file).resolve().parents for folder in graded):
                del sys.modules[name]
        sys.path[:] = path_before

    for line in collector.collect_errors:
        print(f"could not load {line}", file=stream)
    if exit_code not in (0, 1) and not collector.tests:  # usage error, internal error, nothing ran
        print(f"grading could not run (pytest exit code {int(exit_code)}):", file=stream)
        print("\n".join(pytest_output.getvalue().strip().splitlines()[-15:]), file=stream)
        return None
    return _rows(collector), collector, exit_code


def run_scoreboard(impl="exercises", lessons=None, repo=None, stream=sys.stdout, folder=None) -> int:
    """Grade `<repo>/<impl>/` (or a student's collected exercises in ``folder``) with the grading
    tests and print the scoreboard; 0 if all passed."""
    if folder is not None:
        folder = Path(folder)
        if not folder.is_dir():
            print(f"no such folder: {folder}", file=stream)
            return 1
        if not any(folder.glob("ex[0-9][0-9]_*.py")):
            print(f"{folder} holds no exercise files (exNN_topic.py): give the student's exercises/ "
                  "folder", file=stream)
            return 1
    graded = grade(impl, lessons, repo, impl_dir=folder, stream=stream)
    if graded is None:
        return 1
    rows, collector, exit_code = graded
    repo = Path(repo).resolve() if repo else find_repo_root()
    names = {}
    with contextlib.suppress(Exception):  # names are a nicety; a broken solutions/ must not stop grading
        names = {e.exercise_id: f"{e.function_name} ({e.lesson_section})"
                 for e in list_exercises(repo / "solutions")}
    if not rows:
        print("no grading tests ran", file=stream)
        return 1
    shown = f"{folder}" if folder is not None else f"{impl}/"
    print(f"Scoreboard for {shown} ({len(collector.tests)} tests)\n", file=stream)
    width = max([len(names.get(i, "")) for i, _, _ in rows] + [0])
    for exercise_id, status, reason in rows:
        line = f"  {exercise_id:<8} {names.get(exercise_id, ''):<{width}}  {status}"
        print(line + (f": {reason}" if reason else ""), file=stream)
    passed = sum(status == "passed" for _, status, _ in rows)
    counted = sum(status != "skipped" for _, status, _ in rows)
    print(f"\n{passed}/{counted} exercises passed", file=stream)
    ok = passed == counted and not collector.collect_errors and exit_code in (0, 1, 5)
    return 0 if ok else 1


def main(argv=None) -> int:
    """`clcourse grade [--impl exercises|solutions | --dir FOLDER] [--lesson NN ...]`."""
    parser = argparse.ArgumentParser(prog="clcourse grade", description="Grade your exercises.")
    parser.add_argument("--impl", choices=("exercises", "solutions"), default="exercises",
                        help="what to grade: your exercises/ (default) or the reference solutions/")
    parser.add_argument("--dir", type=Path, metavar="FOLDER",
                        help="grade the exercise files in FOLDER instead (a student's hand-in: a copy "
                             "of their exercises/ folder); lessons whose file is missing fail")
    parser.add_argument("--lesson", nargs="+", action="extend", metavar="NN",
                        help="only these lessons, e.g. --lesson 00 02")
    args = parser.parse_args(argv)
    return run_scoreboard(impl=args.impl, lessons=args.lesson, folder=args.dir)


if __name__ == "__main__":
    sys.exit(main())
