"""Plumbing of the grading tests: which implementation they grade, and the `ex` fixture that loads it.

A grading test file declares `EXERCISE_MODULE = "ex00_network_basics"`, takes the fixture `ex` (that
module, loaded from solutions/ or exercises/) and marks every test `@pytest.mark.exercise("ex00.1")`.

    pytest tests/exercises                    grades solutions/ (the default: the reference must pass)
    pytest tests/exercises --impl exercises   grades your exercises/ (`clcourse grade` shows a scoreboard)
"""
import importlib.util
import re
import sys
import traceback
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]  # tests/exercises/conftest.py → the repository
IMPLS = ("exercises", "solutions")
_EXERCISE_ID = re.compile(r"^ex\d{2}\.\d+$")


def pytest_addoption(parser):
    parser.addoption(
        "--impl", choices=IMPLS, default="solutions",
        help="which implementation the grading tests load: solutions/ (default) or exercises/",
    )
    parser.addoption("--impl-dir", default=None,
                     help="load the graded modules from this folder instead (the mistakes test)")
    parser.addoption("--exercise", default=None, help="run only the tests of this exercise (exNN.k)")


def pytest_collection_modifyitems(config, items):
    only = config.getoption("exercise", default=None)
    if not only:
        return
    keep = [i for i in items if only in [a for m in i.iter_markers("exercise") for a in m.args]]
    config.hook.pytest_deselected(items=[i for i in items if i not in keep])
    items[:] = keep


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "exercise(id): the exercise a grading test grades, e.g. exercise('ex00.1')"
    )


def load_implementation(impl: str, module_name: str, folder=None):
    """Import <repo>/<impl>/<module_name>.py (or <folder>/<module_name>.py) by path as
    `clcourse_<impl>_<module_name>`.

    The module is compiled afresh from its source every time (no stale bytecode after an edit), and any
    failure — missing file, SyntaxError, an exception at import — becomes one clear pytest failure
    instead of a traceback through this file.
    """
    path = (Path(folder) if folder else REPO / impl) / f"{module_name}.py"
    shown = str(path) if folder else f"{impl}/{module_name}.py"
    if not path.is_file():
        if folder:
            pytest.fail(f"no {path.name} in the graded folder {folder}", pytrace=False)
        hint = "run `clcourse exercises` to generate it" if impl == "exercises" else "it should be in git"
        pytest.fail(f"{shown} not found ({hint})", pytrace=False)
    unique_name = f"clcourse_{impl}_{module_name}"  # solutions and exercises can be loaded side by side
    spec = importlib.util.spec_from_file_location(unique_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[unique_name] = module  # dataclasses, pickling and typing look modules up here
    try:
        code = compile(path.read_bytes(), str(path), "exec")
        exec(code, module.__dict__)
    except SyntaxError as err:
        sys.modules.pop(unique_name, None)
        pytest.fail(f"could not import {shown} (line {err.lineno}): SyntaxError: {err.msg}", pytrace=False)
    except (Exception, SystemExit) as err:
        sys.modules.pop(unique_name, None)
        lines = [f.lineno for f in traceback.extract_tb(err.__traceback__) if f.filename == str(path)]
        where = f" (line {lines[-1]})" if lines else ""
        pytest.fail(f"could not import {shown}{where}: {type(err).__name__}: {err}", pytrace=False)
    return module


@pytest.fixture(scope="module")
def ex(request):
    """The implementation module named by the test file's EXERCISE_MODULE, from --impl's folder."""
    module_name = getattr(request.module, "EXERCISE_MODULE", None)
    if not module_name:
        pytest.fail(f"{request.module.__name__} must declare EXERCISE_MODULE = 'exNN_topic'", pytrace=False)
    impl = request.config.getoption("impl", default="solutions")  # default when loaded late
    return load_implementation(impl, module_name, request.config.getoption("impl_dir", default=None))


@pytest.fixture(autouse=True)
def _requires_exercise_marker(request):
    """Every grading test names its exercise, so the scoreboard can credit it."""
    ids = [arg for mark in request.node.iter_markers("exercise") for arg in mark.args]
    if not ids or not all(isinstance(i, str) and _EXERCISE_ID.match(i) for i in ids):
        pytest.fail(
            f"{request.node.nodeid}: mark each grading test with @pytest.mark.exercise('exNN.k')",
            pytrace=False,
        )
