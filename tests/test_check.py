"""`clcourse check`: passes on a machine with the data and the front-end, fails with a clear line without."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat

from clcourse import check

REPO = Path(__file__).resolve().parents[1]


def clcourse_check(*args, env_extra=None):
    import os
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([sys.executable, "-m", "clcourse", "check", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=900)


def test_the_lessons_name_the_data_they_need():
    needed = check.datasets_needed(check.lesson_notebooks(REPO))
    assert "00" in needed["mnist"] and "01" in needed["usps"]  # lesson 01 trains MNIST -> USPS


def test_an_empty_data_folder_fails_with_the_data_line_and_runs_no_lesson(tmp_path):
    empty = tmp_path / "data"
    empty.mkdir()
    out = clcourse_check("--data", str(empty))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "FAIL data mnist: DataMissingError" in out.stdout
    assert "to fix: put the files in the folder named by CLCOURSE_DATA" in out.stdout
    assert "lessons not run: fix the data" in out.stdout
    assert "NOT ready" in out.stdout.splitlines()[-1]


def test_a_missing_widget_front_end_fails_with_how_to_install_it(tmp_path):
    result = check.check_widgets(extension_dirs=[str(tmp_path)], config_dirs=[])
    assert not result.ok
    assert "is not in any labextensions folder" in result.detail
    assert "jupyterlab_widgets" in result.fix
    assert check.check_widgets(config_dirs=[]).ok  # this environment has it


def test_a_disabled_widget_front_end_fails_the_command(tmp_path, tiny_root):
    config = tmp_path / "jupyter-config"
    (config / "labconfig").mkdir(parents=True)
    (config / "labconfig" / "page_config.json").write_text(
        json.dumps({"disabledExtensions": {check.WIDGET_MANAGER + ":plugin": True}}))
    out = clcourse_check("--no-lessons", "--data", str(tiny_root),
                         env_extra={"JUPYTER_CONFIG_DIR": str(config)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert f"FAIL widget front-end: {check.WIDGET_MANAGER} is disabled by" in out.stdout
    assert f"to fix: jupyter labextension enable {check.WIDGET_MANAGER}" in out.stdout
    assert "ok   Jupyter kernel" in out.stdout and "ok   data mnist" in out.stdout  # only the widgets fail


def test_a_failing_lesson_names_its_cell_and_error(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# a lesson"),
                                         nbformat.v4.new_code_cell("x = 1"),
                                         nbformat.v4.new_code_cell("import no_such_module_here")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "98_broken.ipynb"
    nbformat.write(nb, path)
    before = path.read_bytes()
    result = check.run_lesson(path)
    assert not result.ok
    assert "cell 3 ('import no_such_module_here') raised ModuleNotFoundError" in result.detail
    assert "pip install -e ." in result.fix
    assert path.read_bytes() == before  # a copy ran: the notebook is untouched


def test_the_whole_course_passes_the_check_in_the_smoke_profile(real_root):
    """The classroom check on this machine: data, kernel, widgets, and every lesson in smoke."""
    out = clcourse_check()
    assert out.returncode == 0, out.stdout + out.stderr
    lessons = [line for line in out.stdout.splitlines() if line.startswith("ok   lesson ")]
    assert len(lessons) == len(check.lesson_notebooks(REPO)) >= 5
    assert "the course will work on this machine" in out.stdout.splitlines()[-1]
    print(out.stdout)
