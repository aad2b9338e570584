"""``clcourse check``: will the course work on this machine? One command for a fresh classroom machine.

It checks, in order, and prints one line per check (``ok`` or ``FAIL`` with how to fix it):

1. the data every lesson reads is present and loads (the benchmarks named in the notebooks' code);
2. the Jupyter kernel the lessons name (``python3``) exists and its Python imports the course;
3. the ipywidgets front-end (``@jupyter-widgets/jupyterlab-manager``) is installed and not disabled,
   so the lessons' sliders render instead of "Error displaying widget";
4. every lesson runs headless from the first cell to the last in the smoke profile (seconds of
   training; the claims about trained numbers are skipped), on a copy — the notebooks are not touched.

Exit status 0 only when every check passed. The lessons are not run when the data or the kernel is
missing (each would fail the same way).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

WIDGET_MANAGER = "@jupyter-widgets/jupyterlab-manager"
KERNEL = "python3"
# benchmark named in a lesson's code -> the data sets it reads
BENCHMARK_DATA = {"mnist": ("mnist",), "permuted-mnist": ("mnist",), "split-mnist": ("mnist",),
                  "mnist-usps": ("mnist", "usps"), "cifar10": ("cifar10",),
                  "split-cifar10": ("cifar10",),
                  "split-cifar100": ("cifar100",)}


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""
    fix: str = ""

    def line(self) -> str:
        text = f"{'ok  ' if self.ok else 'FAIL'} {self.name}" + (f": {self.detail}" if self.detail else "")
        return text + (f"\n       to fix: {self.fix}" if self.fix and not self.ok else "")


def lesson_notebooks(root: Path) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def datasets_needed(notebooks: list[Path]) -> dict[str, list[str]]:
    """data set -> the lessons that read it, from the benchmark names in the notebooks' code."""
    import nbformat

    quoted = re.compile(r"""["']([a-z0-9-]+)["']""")
    needed: dict[str, list[str]] = {}
    for path in notebooks:
        code = "\n".join(c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code")
        for name in sorted(set(quoted.findall(code)) & set(BENCHMARK_DATA)):
            for dataset in BENCHMARK_DATA[name]:
                needed.setdefault(dataset, [])
                if path.stem[:2] not in needed[dataset]:
                    needed[dataset].append(path.stem[:2])
    return needed


def check_data(needed: dict[str, list[str]], root=None) -> list[Check]:
    from .data.sources import data_report

    rows = {r["name"]: r for r in data_report(root)}
    checks = []
    for name, lessons in needed.items():
        r = rows[name]
        who = f"lessons {', '.join(lessons)}"
        if r["loadable"]:
            checks.append(Check(f"data {name}", True, f"{r['n_train']}/{r['n_test']} images, {r['where']} "
                                                      f"({who})"))
        else:
            first = r["message"].splitlines()[0] if r["message"] else "not found"
            checks.append(Check(f"data {name}", False, f"{first} ({who} need it)",
                                "put the files in the folder named by CLCOURSE_DATA (or set it to the folder "
                                "that holds them); `clcourse data` lists what is missing and where"))
    return checks


def check_kernel() -> Check:
    """The kernel the lessons name exists, and its Python imports the course and its dependencies."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    except ImportError:
        return Check("Jupyter kernel", False, "jupyter_client is not installed",
                     "pip install -e . in the course folder (it installs JupyterLab)")
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL)
    except NoSuchKernel:
        return Check("Jupyter kernel", False, f"no kernel named {KERNEL!r}",
                     f"{sys.executable} -m ipykernel install --sys-prefix --name {KERNEL}")
    exe = spec.argv[0]
    if exe in {"python", f"python{sys.version_info[0]}", "python%i.%i" % sys.version_info[:2]}:
        exe = sys.executable  # what jupyter_client does for this environment's own kernel
    probe = subprocess.run([exe, "-c", "import clcourse, torch, ipywidgets, matplotlib, ipykernel"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        why = (probe.stderr.strip().splitlines() or ["it failed"])[-1]
        return Check("Jupyter kernel", False, f"{KERNEL} runs {exe}, which cannot import the course: {why}",
                     f"{exe} -m pip install -e . in the course folder, or register this environment's "
                     f"kernel: {sys.executable} -m ipykernel install --user --name {KERNEL}")
    return Check("Jupyter kernel", True, f"{KERNEL} ({exe})")


def _disabled(config_dirs: list[str]) -> str | None:
    """The page_config.json that disables the widget manager, if any (JupyterLab reads every one)."""
    for folder in config_dirs:
        path = Path(folder) / "labconfig" / "page_config.json"
        try:
            disabled = json.loads(path.read_text()).get("disabledExtensions", {})
        except (OSError, ValueError):
            continue
        names = [k for k, v in disabled.items() if v] if isinstance(disabled, dict) else list(disabled)
        if any(n == WIDGET_MANAGER or n.startswith(WIDGET_MANAGER + ":") for n in names):
            return str(path)
    return None


def check_widgets(extension_dirs: list[str] | None = None, config_dirs: list[str] | None = None) -> Check:
    """ipywidgets' JupyterLab front-end is installed (in a labextensions folder) and not disabled."""
    from jupyter_core.paths import jupyter_config_path, jupyter_path

    name = "widget front-end"
    try:
        import ipywidgets
    except ImportError:
        return Check(name, False, "ipywidgets is not installed", "pip install -e . in the course folder")
    folders = jupyter_path("labextensions") if extension_dirs is None else extension_dirs
    found = [Path(f) / WIDGET_MANAGER for f in folders if (Path(f) / WIDGET_MANAGER / "package.json").is_file()]
    if not found:
        return Check(name, False, f"{WIDGET_MANAGER} is not in any labextensions folder "
                                  f"({', '.join(folders)}): the lessons' sliders would show "
                                  "'Error displaying widget'",
                     "pip install --force-reinstall jupyterlab_widgets (it ships the front-end), then "
                     "restart JupyterLab")
    blocked = _disabled(jupyter_config_path() if config_dirs is None else config_dirs)
    if blocked:
        return Check(name, False, f"{WIDGET_MANAGER} is disabled by {blocked}",
                     f"jupyter labextension enable {WIDGET_MANAGER}")
    return Check(name, True, f"{WIDGET_MANAGER} in {found[0].parent.parent} (ipywidgets {ipywidgets.__version__})")


def _hint(ename: str, evalue: str) -> str:
    if ename == "DataMissingError" or "CLCOURSE_DATA" in evalue:
        return "the data is missing: see `clcourse data`"
    if ename in ("ModuleNotFoundError", "ImportError"):
        return "a package is missing from the kernel's environment: pip install -e . in the course folder"
    return ("open the lesson in JupyterLab and run it with CLCOURSE_PROFILE=smoke to see the traceback; "
            "if it persists, tell the course's maintainers (the line above says where)")


def run_lesson(path: Path, profile: str = "smoke", timeout_s: float = 600.0) -> Check:
    """Execute a copy of one lesson from the first cell to the last; the file is never written."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(path, as_version=4)
    failed: dict = {}

    def on_error(cell, cell_index, execute_reply):  # nbclient's hook: remember where it failed
        failed.setdefault("index", cell_index)

    env = dict(os.environ, CLCOURSE_PROFILE=profile, CLCOURSE_PROGRESS="0", MPLBACKEND="agg")
    client = NotebookClient(nb, timeout=timeout_s, kernel_name=KERNEL, on_cell_error=on_error,
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.monotonic()
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError) as err:
        seconds = time.monotonic() - start
        index = failed.get("index")
        cell = nb.cells[index] if index is not None else None
        error = next((o for o in (cell.outputs if cell else []) if o.output_type == "error"), None)
        ename, evalue = (error.ename, error.evalue) if error else (type(err).__name__, str(err).strip()[-200:])
        where = f"cell {index + 1}" if index is not None else "a cell"
        first = (cell.source.strip().splitlines() or [""])[0][:60] if cell else ""
        return Check(f"lesson {path.stem}", False,
                     f"{where} ({first!r}) raised {ename}: {evalue[:300]} after {seconds:.0f} s",
                     _hint(ename, evalue))
    except Exception as err:  # noqa: BLE001 - the kernel did not start, a bad file: one line
        return Check(f"lesson {path.stem}", False, f"{type(err).__name__}: {str(err)[:300]}",
                     "see the Jupyter kernel line above")
    return Check(f"lesson {path.stem}", True, f"{len(nb.cells)} cells in {time.monotonic() - start:.1f} s "
                                             f"({profile} profile)")


def main(args) -> int:
    from .exercises import find_repo_root

    root = find_repo_root()
    notebooks = lesson_notebooks(root)
    if args.lessons:
        wanted = {n.zfill(2) for n in args.lessons}
        notebooks = [p for p in notebooks if p.stem[:2] in wanted]
    print(f"clcourse check: {root}, Python {sys.version.split()[0]}, {len(notebooks)} lesson(s)")
    start = time.monotonic()
    checks = check_data(datasets_needed(lesson_notebooks(root)), args.data)
    checks += [check_kernel(), check_widgets()]
    for c in checks:
        print(c.line(), flush=True)
    ready = all(c.ok for c in checks if c.name.startswith("data") or c.name == "Jupyter kernel")
    if args.no_lessons:
        print("lessons not run (--no-lessons)")
    elif not ready:
        print("lessons not run: fix the data and the kernel first (every lesson needs both)")
    else:
        if args.data:
            os.environ["CLCOURSE_DATA"] = str(Path(args.data).resolve())
        for path in notebooks:
            checks.append(run_lesson(path, args.profile))
            print(checks[-1].line(), flush=True)
    failed = [c for c in checks if not c.ok]
    print(f"{len(checks) - len(failed)} of {len(checks)} checks passed in {time.monotonic() - start:.0f} s: "
          + ("the course will work on this machine" if not failed and not args.no_lessons else
             "the set-up is ready (lessons not run)" if not failed else
             "NOT ready — fix the lines marked FAIL, then run `clcourse check` again"))
    return 0 if not failed else 1
