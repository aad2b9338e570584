"""Fixtures of the browser suite: one JupyterLab server (this environment's) on a temporary copy of the
lesson notebooks, one headless Chromium driven by Playwright, a fresh page per test.

Where no Chromium/Chrome is found the whole suite is skipped with one line saying how to get one, except
in CI (CI=true), where .ci/run installs Debian's chromium and a missing browser fails instead.
Screenshots go to runs/browser/ (gitignored), or to $CLCOURSE_BROWSER_SHOTS.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

import browser_lab as bl


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: the lessons in JupyterLab under headless Chromium "
                                       "(tests/browser; needs chromium)")


_SKIPPED_BECAUSE: set[str] = set()  # the reasons the suite was skipped for (one line each, below)


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(reason, pytrace=False)
    _SKIPPED_BECAUSE.add(reason)
    pytest.skip(reason)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Every test skipped for want of a browser reports the same place, so `-rs` shows one line."""
    report = (yield).get_result()
    if (report.skipped and isinstance(report.longrepr, tuple)
            and report.longrepr[2].removeprefix("Skipped: ") in _SKIPPED_BECAUSE):
        where = Path(__file__).relative_to(bl.ROOT)
        report.longrepr = (str(where), _unavailable.__code__.co_firstlineno, report.longrepr[2])


def pytest_terminal_summary(terminalreporter, config):
    """Without -rs, still one line saying why the browser suite did not run and how to get it."""
    chars = config.option.reportchars or ""
    if _SKIPPED_BECAUSE and not set(chars) & set("saA"):
        for reason in sorted(_SKIPPED_BECAUSE):
            terminalreporter.write_line(f"tests/browser skipped: {reason}", yellow=True)


@pytest.fixture(scope="session")
def chromium() -> str:
    path = bl.find_chromium()
    if path is None:
        _unavailable(bl.HOW_TO_GET_CHROMIUM)
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed for the browser tests: .venv/bin/pip install -e '.[dev]'")
    return path


@pytest.fixture(scope="session")
def lab_home():
    home = Path(tempfile.mkdtemp(prefix="clcourse-browser-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def lab(chromium, lab_home):
    """JupyterLab serving a copy of notebooks/ (the run-all would otherwise overwrite the committed,
    executed lessons). Tests may add their own notebooks under ``lab.root``."""
    root = lab_home / "course" / "notebooks"
    root.mkdir(parents=True)
    for nb in bl.lesson_notebooks():
        shutil.copy2(nb, root / nb.name)
    server = bl.JupyterLab(root, lab_home / "jupyter").start()
    yield server
    server.stop()
    shots = Path(os.environ.get("CLCOURSE_BROWSER_SHOTS") or bl.ROOT / "runs" / "browser")
    if shots.is_dir():  # the server's log beside the screenshots, for a failure to be looked at
        shutil.copy2(server.log_path, shots / "jupyterlab.log")


@pytest.fixture(scope="session")
def browser_context(chromium, lab_home):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    context = pw.chromium.launch_persistent_context(
        str(lab_home / "chromium-profile"), executable_path=chromium, headless=True,
        args=bl.CHROMIUM_FLAGS, viewport={"width": 1280, "height": 900})
    yield context
    context.close()
    pw.stop()


@pytest.fixture
def lab_page(lab, browser_context):
    page = browser_context.new_page()
    yield bl.LabPage(page, lab)
    page.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    folder = Path(os.environ.get("CLCOURSE_BROWSER_SHOTS") or bl.ROOT / "runs" / "browser")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
