"""The machinery of the browser suite: JupyterLab on a copy of the lessons, Chromium driven by
Playwright, "Restart Kernel and Run All Cells" through the menu, and the checks of what the page shows.

`run_lesson` is the one checking function: it opens a notebook, runs it, performs its widget interactions
(tests/browser/lesson_widgets.py) and returns a `LessonReport`; `LessonReport.check()` raises
`LessonFailed` naming the lesson and every cell that went wrong, with the screenshot's path.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from clcourse import check
from clcourse.check import WIDGET_MANAGER

ROOT = Path(__file__).resolve().parents[2]
WIDGET_PLUGIN = WIDGET_MANAGER + ":plugin"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

# The flags this machine's closed network needs (no background fetches, no QUIC, no sync), headless.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
HOW_TO_GET_CHROMIUM = ("no Chromium/Chrome found for the browser tests: apt-get install chromium "
                       "(Debian/Ubuntu), or put chromium/google-chrome on PATH, or set "
                       "CLCOURSE_CHROMIUM=/path/to/chrome")


def lesson_notebooks() -> list[Path]:
    """Every lesson notebook, notebooks/NN_topic.ipynb, in course order (as `clcourse check` runs them)."""
    return check.lesson_notebooks(ROOT)


def find_chromium(path: str | None = None) -> str | None:
    """$CLCOURSE_CHROMIUM, else /usr/bin/chromium, else a chromium/chrome on PATH; None if none."""
    explicit = os.environ.get("CLCOURSE_CHROMIUM")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if path is None and os.access("/usr/bin/chromium", os.X_OK):
        return "/usr/bin/chromium"
    for name in CHROMIUM_NAMES:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------------------- JupyterLab
class JupyterLab:
    """``python -m jupyter lab`` from this environment, on 127.0.0.1, a free port and a random token,
    serving ``root`` (a temporary folder holding copies of the notebooks). Its configuration, data,
    runtime, settings and workspace folders live under ``home``, so nothing of the user's own Jupyter
    set-up (kernels, extensions, settings) leaks in and nothing is written outside the temporary folder.
    """

    def __init__(self, root: Path, home: Path, env: dict | None = None, profile: str = "smoke"):
        self.root, self.home, self.profile = Path(root), Path(home), profile
        self.port = free_port()
        self.token = os.urandom(16).hex()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = self.home / "jupyterlab.log"
        self.config_dir = self.home / "config"
        self.env = self._environment(env if env is not None else os.environ)
        self.proc: subprocess.Popen | None = None

    def _environment(self, base) -> dict:
        env = dict(base)
        # what a student's kernel would not have: the unit tests' one-thread setting, a forced backend
        for name in ("CLCOURSE_THREADS", "MPLBACKEND", "JUPYTER_PATH", "JUPYTER_CONFIG_PATH"):
            env.pop(name, None)
        dirs = {"JUPYTER_CONFIG_DIR": "config", "JUPYTER_DATA_DIR": "data",
                "JUPYTER_RUNTIME_DIR": "runtime", "JUPYTERLAB_SETTINGS_DIR": "settings",
                "JUPYTERLAB_WORKSPACES_DIR": "workspaces", "IPYTHONDIR": "ipython",
                "CLCOURSE_CACHE": "cache"}
        for name, sub in dirs.items():
            (self.home / sub).mkdir(parents=True, exist_ok=True)
            env[name] = str(self.home / sub)
        env["CLCOURSE_PROGRESS"] = "0"
        # The browser checks what only a browser can see (rendering, widgets, error output, the cell
        # order): the smoke profile trains for seconds. nbval runs each lesson in the class profile.
        env["CLCOURSE_PROFILE"] = self.profile
        env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
        # JupyterLab's default windowing attaches off-screen cells lazily; attach every cell so that
        # each cell's outputs can be checked (what is rendered is the same, only when differs).
        # The kernel websocket speaks Jupyter's legacy message format. With the newer v1 format, a
        # restart on a loaded machine can race: jupyter_server reads the client's first v1 message
        # before the socket's subprotocol is known, decodes it as legacy ("struct.error: unpack
        # requires a buffer of 402653184 bytes"), and Restart-and-Run-All then waits forever with the
        # kernel "starting" (seen here under load, jupyter_server 2.21, JupyterLab 4.6).
        (self.home / "config" / "jupyter_server_config.json").write_text(
            json.dumps({"ZMQChannelsWebsocketConnection": {"kernel_ws_protocol": ""}}))
        # The news question ("Would you like to get notified ...") is answered: never fetch.
        settings = {("notebook-extension", "tracker"): {"windowingMode": "none"},
                    ("apputils-extension", "notification"): {"fetchNews": "false",
                                                             "checkForUpdates": False}}
        for (extension, plugin), values in settings.items():
            folder = self.home / "settings" / "@jupyterlab" / extension
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{plugin}.jupyterlab-settings").write_text(json.dumps(values))
        return env

    def start(self, timeout: float = 120.0) -> "JupyterLab":
        cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--ServerApp.allow_root=True", "--ServerApp.terminals_enabled=False",
               "--LabApp.expose_app_in_browser=True", "--LabApp.extension_manager=readonly",
               "--LabApp.news_url=None",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
                                     cwd=self.root)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("GET", "api/status")
                return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if getattr(self, "_log", None):
            self._log.close()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def last_error(self) -> str:
        """'; JupyterLab's log: <its last error line>', or '' when it logged none."""
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        errors = [ln.strip() for ln in lines if ln.startswith("[E ") or re.match(r"\s*\w+(Error|Exception):", ln)]
        return f"; JupyterLab's log: {errors[-1][:200]}" if errors else ""

    def url(self, path: str, **query) -> str:
        return f"{self.base}/{path}?" + urllib.parse.urlencode({"token": self.token, **query})

    def api(self, method: str, path: str):
        req = urllib.request.Request(self.url(path), method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
        return json.loads(body) if body else None

    def shut_down_kernels(self, notebook_path: str) -> None:
        for s in self.api("GET", "api/sessions") or []:
            if s.get("path") == notebook_path:
                self.api("DELETE", f"api/sessions/{s['id']}")

    def disable_extension(self, name: str) -> Path:
        """Write labconfig/page_config.json disabling ``name`` (read on every page load)."""
        path = self.config_dir / "labconfig" / "page_config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"disabledExtensions": {name: True}}))
        return path


# ------------------------------------------------------------------------------------ the page
class LabPage:
    """A Playwright page on JupyterLab that records console errors, uncaught exceptions and the
    requests to other hosts (aborted: the suite never reaches outside localhost)."""

    def __init__(self, page, lab: JupyterLab):
        self.page, self.lab = page, lab
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.outside_requests: list[str] = []
        page.on("console", lambda m: self.console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        page.route(re.compile(r"^(?!https?://(127\.0\.0\.1|localhost)[:/]).*"), self._outside)

    def _outside(self, route):
        self.outside_requests.append(route.request.url)
        route.abort()

    def open(self, notebook_path: str, timeout: float = 120.0) -> None:
        """Open ``notebook_path`` (relative to the server's root) in a fresh workspace and wait until its
        kernel is idle."""
        self.page.goto(self.lab.url("lab/tree/" + urllib.parse.quote(notebook_path), reset=""))
        self.page.wait_for_function(_JS_PANEL_READY, arg=notebook_path, timeout=timeout * 1000)

    def open_lab(self, timeout: float = 120.0) -> None:
        self.page.goto(self.lab.url("lab", reset=""))
        self.page.wait_for_function("() => window.jupyterapp && document.querySelector('.jp-LabShell')",
                                    timeout=timeout * 1000)
        self.page.wait_for_timeout(1500)  # late plugin activations and their error dialogs

    def dialog_text(self) -> str:
        return self.page.evaluate(
            "() => Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.innerText).join(' | ')")

    def menu(self, menu: str, item: str) -> None:
        self.page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{re.escape(menu)}$")).click()
        self.page.locator(".lm-Menu-itemLabel",
                          has_text=re.compile(f"^{re.escape(item)}$")).first.click()


_JS_PANEL_READY = """(path) => {
  const app = window.jupyterapp; if (!app || !app.shell) return false;
  for (const w of app.shell.widgets('main')) {
    if (w.context && w.context.path === path && w.content && w.content.model) {
      // the toolbar says "idle" before any kernel exists: wait for a connected, idle kernel
      const kernel = w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
      const ind = w.node.querySelector('.jp-Notebook-ExecutionIndicator');
      return w.context.isReady && !!kernel && kernel.status === 'idle'
             && kernel.connectionStatus === 'connected'
             && ind && ind.getAttribute('data-status') === 'idle'
             && w.content.widgets.length === w.content.model.cells.length;
    }
  }
  return false;
}"""

# Everything the checks need, read off the page in one go: JupyterLab's model of the notebook (nbformat
# JSON) and, per cell, what the DOM shows for it.
_JS_SNAPSHOT = """(path) => {
  const app = window.jupyterapp;
  let panel = null;
  for (const w of app.shell.widgets('main')) if (w.context && w.context.path === path) panel = w;
  if (!panel) return null;
  const cells = Array.from(panel.node.querySelectorAll('.jp-Notebook .jp-Cell'));
  const interactive = 'input, select, textarea, button, .noUi-handle, [contenteditable="true"]';
  return {
    model: panel.content.model.toJSON(),
    status: (panel.node.querySelector('.jp-Notebook-ExecutionIndicator') || {getAttribute: () => null})
              .getAttribute('data-status'),
    dom: cells.map(c => {
      const area = c.querySelector('.jp-Cell-outputArea');
      const kids = area ? Array.from(area.querySelectorAll(':scope > .jp-OutputArea-child')) : [];
      return {
        type: c.classList.contains('jp-CodeCell') ? 'code'
              : c.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw',
        prompt: ((c.querySelector('.jp-InputArea-prompt') || {}).textContent || '').trim(),
        outputs: kids.map(k => {
          const out = k.querySelector('.jp-OutputArea-output') || k;
          const imgs = Array.from(out.querySelectorAll('img')).filter(i => !i.closest('.jupyter-widgets'));
          const w = out.querySelector('.jupyter-widgets');
          return {
            mime: out.getAttribute('data-mime-type'),
            text: (out.textContent || '').slice(0, 4000),
            images: imgs.length,
            images_ok: imgs.filter(i => i.complete && i.naturalWidth > 0).length,
            widget: !!w,
            widget_error: !!out.querySelector('.jupyter-widgets-error-widget'),
            controls: w ? out.querySelectorAll(interactive).length : 0,
          };
        }),
      };
    }),
  };
}"""

_JS_WATCH_RUN = """(path) => {
  window.__clcourseRun = {queued: false};
  const app = window.jupyterapp;
  let panel = null;
  for (const w of app.shell.widgets('main')) if (w.context && w.context.path === path) panel = w;
  const node = panel.node;
  const obs = new MutationObserver(() => {
    for (const p of node.querySelectorAll('.jp-InputArea-prompt'))
      if (p.textContent.includes('*')) { window.__clcourseRun.queued = true; obs.disconnect(); return; }
  });
  obs.observe(node, {subtree: true, childList: true, characterData: true});
}"""

_JS_RUN_STATE = """(path) => {
  const app = window.jupyterapp;
  let panel = null;
  for (const w of app.shell.widgets('main')) if (w.context && w.context.path === path) panel = w;
  const prompts = Array.from(panel.node.querySelectorAll('.jp-Cell')).map(
      c => ((c.querySelector('.jp-InputArea-prompt') || {}).textContent || '').trim());
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  const ind = panel.node.querySelector('.jp-Notebook-ExecutionIndicator');
  const shown = ind ? ind.getAttribute('data-status') : null;
  return {queued: window.__clcourseRun.queued,
          status: kernel ? (kernel.connectionStatus === 'connected' ? kernel.status : kernel.connectionStatus)
                         : 'no kernel',
          shown: shown,
          running: prompts.map((p, i) => p.includes('*') ? i : -1).filter(i => i >= 0),
          dialog: Array.from(document.querySelectorAll('.jp-Dialog')).map(d => d.innerText).join(' | ')};
}"""

_JS_SETTLED = """() => !document.body.textContent.includes('Loading widget...')
  && Array.from(document.querySelectorAll('.jp-Notebook img')).every(i => i.complete)"""

_JS_SIGNATURE = """(els) => {
  let s = els.map(e => e.textContent).join('\\u241e');
  for (const e of els) for (const i of e.querySelectorAll('img, canvas')) s += '|' + (i.src || i.toDataURL());
  let h = 5381; for (let k = 0; k < s.length; k++) h = ((h * 33) ^ s.charCodeAt(k)) >>> 0;
  return {hash: h + ':' + s.length, text: els.map(e => e.textContent).join(' ').slice(0, 2000)};
}"""


# ------------------------------------------------------------------------------------ reporting
@dataclass
class Problem:
    where: str          # "cell 7 ([5] `plot_matrix(R)`)" or "page" / "run"
    what: str
    dom_index: int | None = None

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


class LessonFailed(AssertionError):
    pass


@dataclass
class LessonReport:
    lesson: str
    problems: list[Problem] = field(default_factory=list)
    run_s: float | None = None
    screenshots: list[Path] = field(default_factory=list)
    cells: int = 0
    cell_s: dict[int, float] = field(default_factory=dict)   # seconds each cell was seen running

    def slowest(self, n: int = 3) -> str:
        top = sorted(self.cell_s.items(), key=lambda kv: -kv[1])[:n]
        return ", ".join(f"cell {i + 1} {t:.0f} s" for i, t in top)

    def check(self, limit: int = 20) -> None:
        if not self.problems:
            return
        lines = [f"lesson {self.lesson}: {len(self.problems)} problem(s) in JupyterLab"]
        lines += [f"  - {p}" for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"  … and {len(self.problems) - limit} more")
        if self.screenshots:
            lines.append(f"  screenshot: {self.screenshots[0]}")
        raise LessonFailed("\n".join(lines))


def cell_label(index: int, cell, execution_count=None) -> str:
    first = next((ln.strip() for ln in cell.source.splitlines() if ln.strip()), "")
    first = first if len(first) <= 60 else first[:57] + "..."
    count = f"[{execution_count}] " if execution_count else ""
    return f"cell {index + 1} ({cell.cell_type}, {count}`{first}`)"


# ------------------------------------------------------------------------------------ the checks
def page_problems(lp: LabPage) -> list[Problem]:
    """The JupyterLab page: ipywidgets' front-end extension installed, enabled and active; no
    extension or widget-manager error reported by the page."""
    problems = []
    info = lp.page.evaluate("""(plugin) => {
      const cfg = JSON.parse(document.getElementById('jupyter-config-data').textContent);
      const app = window.jupyterapp;
      return {federated: (cfg.federated_extensions || []).map(e => e.name),
              disabled: cfg.disabledExtensions || [],
              has: !!(app && app.hasPlugin(plugin)),
              active: !!(app && app.isPluginActivated && app.isPluginActivated(plugin))};
    }""", WIDGET_PLUGIN)
    disabled = info["disabled"] if isinstance(info["disabled"], list) else [
        k for k, v in info["disabled"].items() if v]
    if WIDGET_MANAGER not in info["federated"]:
        problems.append(Problem("page", f"ipywidgets' front-end extension {WIDGET_MANAGER} is not "
                                        "installed in this environment (pip install ipywidgets)"))
    elif any(d == WIDGET_MANAGER or d.startswith(WIDGET_MANAGER + ":") for d in disabled):
        problems.append(Problem("page", f"ipywidgets' front-end extension {WIDGET_MANAGER} is disabled "
                                        f"(jupyter labextension enable {WIDGET_MANAGER})"))
    if not info["active"]:
        problems.append(Problem("page", f"the widget manager plugin {WIDGET_PLUGIN} is not active "
                                        "in JupyterLab"))
    pattern = re.compile(r"extension|plugin|widget manager|federated", re.I)
    for text in lp.console_errors:
        first = (text.splitlines() or [""])[0]
        if pattern.search(first) and re.search(r"fail|error|cannot|could not|not found", first, re.I):
            problems.append(Problem("page", f"JupyterLab reported: {first[:300]}"))
    for text in lp.page_errors:  # JupyterLab's own restart noise ("Canceled future ...") is no problem
        first = (text.splitlines() or [""])[0]
        if pattern.search(text) and "Canceled future" not in first:
            problems.append(Problem("page", f"uncaught error in the page: {first[:300]}"))
    dialog = lp.dialog_text()
    if dialog:
        problems.append(Problem("page", f"dialog open: {dialog[:300]}"))
    return problems


def _source_list(cells) -> list[tuple[str, str]]:
    return [(c["cell_type"], "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
            for c in cells]


def structure_problems(nb, model) -> list[Problem]:
    """The cells JupyterLab holds are the file's cells, in the file's order."""
    file_cells, lab_cells = _source_list(nb.cells), _source_list(model["cells"])
    if len(file_cells) != len(lab_cells):
        return [Problem("notebook", f"JupyterLab shows {len(lab_cells)} cells, the file has "
                                    f"{len(file_cells)}")]
    for i, (f, b) in enumerate(zip(file_cells, lab_cells)):
        if f != b:
            return [Problem(cell_label(i, nb.cells[i]),
                            f"differs from the file's cell {i + 1} (order or content): JupyterLab shows "
                            f"a {b[0]} cell starting `{b[1][:60]}`")]
    return []


def output_problems(nb, snap, lesson: str, declared: bool) -> list[Problem]:
    """Per cell: error outputs, tracebacks, widgets that did not render, figures that are not images,
    cells that did not run or ran out of order."""
    problems: list[Problem] = []
    model_cells, dom_cells = snap["model"]["cells"], snap["dom"]
    if len(dom_cells) != len(model_cells):
        problems.append(Problem("notebook", f"the page renders {len(dom_cells)} cells, JupyterLab's "
                                            f"model has {len(model_cells)}"))
    if [d["type"] for d in dom_cells] != [c.cell_type for c in nb.cells][:len(dom_cells)]:
        problems.append(Problem("notebook", "the rendered cell types differ from the file's"))
    last_count, not_run = 0, []
    for i, (cell, mcell) in enumerate(zip(nb.cells, model_cells)):
        if cell.cell_type != "code":
            continue
        count = mcell.get("execution_count")
        where = cell_label(i, cell, count)
        if not cell.source.strip():
            continue
        if count is None:
            not_run.append(i)
            continue
        if count <= last_count:
            problems.append(Problem(where, f"ran out of order (execution count {count} after "
                                           f"{last_count})", i))
        last_count = count
        outputs = mcell.get("outputs", [])
        dom_out = dom_cells[i]["outputs"] if i < len(dom_cells) else []
        errors = [o for o in outputs if o.get("output_type") == "error"]
        for o in errors:
            problems.append(Problem(where, f"error output {o.get('ename')}: "
                                           f"{str(o.get('evalue'))[:200]}", i))
        for k, o in enumerate(outputs):
            d = dom_out[k] if k < len(dom_out) else None
            data = o.get("data", {})
            if WIDGET_MIME in data:
                if d is None or not d["widget"]:
                    shown = (d["text"].strip()[:80] if d else "nothing")
                    problems.append(Problem(where, f"widget did not render (the page shows "
                                                   f"{shown!r} instead: is {WIDGET_MANAGER} active?)", i))
                elif d["widget_error"] or "Error displaying widget" in d["text"]:
                    why = [e.splitlines()[0] for e in snap.get("console_errors", [])
                           if e.strip() and ("module" in e or "widget" in e)]
                    problems.append(Problem(where, "widget shows 'Error displaying widget' (its front-end "
                                                   "is missing)" + (f": {why[-1][:200]}" if why else ""), i))
            if any(m.startswith("image/") for m in data):
                if d is None or d["images_ok"] < 1:
                    problems.append(Problem(where, "a figure output did not render as an image", i))
            elif data.get("text/plain", "").startswith("<Figure size") or (
                    o.get("output_type") == "stream" and "<Figure size" in "".join(o.get("text", ""))):
                problems.append(Problem(where, "a figure was printed as text (`<Figure size ...>`) "
                                               "instead of shown as an image", i))
        text = " ".join(d["text"] for d in dom_out)
        if not errors and ("Traceback (most recent call last)" in text
                           or "Error displaying widget" in text):
            line = next((ln for ln in text.splitlines() if "Error" in ln), "")[:200]
            problems.append(Problem(where, f"the output shows a traceback or widget error: {line}", i))
        committed = sum(1 for o in cell.get("outputs", [])
                        if any(m.startswith("image/") for m in o.get("data", {})))
        shown = sum(1 for o in outputs if any(m.startswith("image/") for m in o.get("data", {})))
        if shown < committed:
            problems.append(Problem(where, f"shows {shown} figure(s), the committed notebook has "
                                           f"{committed}", i))
        if not declared and any(x["widget"] and x["controls"] for x in dom_out):
            problems.append(Problem(where, f"shows an interactive widget but tests/browser/"
                                           f"lesson_widgets.py declares no interactions for {lesson}", i))
    if not_run:
        first = not_run[0]
        problems.append(Problem(cell_label(first, nb.cells[first]),
                                f"did not run ({len(not_run)} code cell(s) from here on have no "
                                "execution count)", first))
    return problems


# ------------------------------------------------------------------------------------ running
KERNEL_START_S = 120.0  # a restarted kernel that is neither busy nor idle by then is stuck


def restart_and_run_all(lp: LabPage, path: str, budget_s: float
                        ) -> tuple[float, list[Problem], dict[int, float]]:
    """Kernel ▸ Restart Kernel and Run All Cells… ▸ Restart, then wait until every queued cell has run
    and the kernel is idle. Returns (seconds, problems, seconds per cell index as seen running)."""
    page, problems, per_cell = lp.page, [], {}
    page.evaluate(_JS_WATCH_RUN, path)
    lp.menu("Kernel", "Restart Kernel and Run All Cells…")
    page.locator(".jp-Dialog .jp-mod-accept").click()
    start = last = settled_kernel = time.monotonic()
    idle_since, running = None, None
    while True:
        page.wait_for_timeout(500)
        state = page.evaluate(_JS_RUN_STATE, path)
        now = time.monotonic()
        if running is not None:
            per_cell[running] = per_cell.get(running, 0.0) + now - last
        last, elapsed = now, now - start
        running = state["running"][0] if state["running"] else None
        if state["dialog"]:
            problems.append(Problem("run", f"JupyterLab showed a dialog during the run: "
                                           f"{state['dialog'][:300]}", running))
            page.keyboard.press("Escape")
        if state["status"] in ("busy", "idle"):
            settled_kernel = now
        elif now - settled_kernel > KERNEL_START_S:
            problems.append(Problem("run", f"the kernel was still {state['status']!r} {KERNEL_START_S:.0f} s "
                                           f"after the restart{lp.lab.last_error()}", running))
            break
        if state["status"] in ("dead", "autorestarting"):  # not "unknown": seen during a restart
            where = f" in cell {running + 1}" if running is not None else ""
            problems.append(Problem("run", f"the kernel died{where} (status {state['status']}) after "
                                           f"{elapsed:.0f} s", running))
            break
        if (state["queued"] and state["status"] == "idle" and state["shown"] == "idle"
                and not state["running"]):
            idle_since = idle_since or now
            if now - idle_since >= 1.0:
                break
        else:
            idle_since = None
        if elapsed > budget_s:
            where = f"cell {running + 1}" if running is not None else "the kernel"
            slow = ", ".join(f"cell {i + 1} {t:.0f} s" for i, t in
                             sorted(per_cell.items(), key=lambda kv: -kv[1])[:3])
            problems.append(Problem("run", f"Restart Kernel and Run All Cells did not finish within the "
                                           f"lesson's budget of {budget_s:.0f} s (still running: {where}; "
                                           f"slowest: {slow})", running))
            lp.menu("Kernel", "Interrupt Kernel")
            break
    seconds = time.monotonic() - start - (1.0 if idle_since else 0.0)
    try:
        page.wait_for_function(_JS_SETTLED, timeout=20_000)
    except Exception:  # noqa: BLE001 - reported as a problem
        problems.append(Problem("run", "widgets or images were still loading 20 s after the run"))
    return seconds, problems, per_cell


def _parse_event(event: str):
    kind, _, arg = event.partition(":")
    if kind == "click" and not arg:
        return kind, None
    if kind == "key" and arg:
        key, _, times = arg.partition("*")
        return kind, (key, int(times or 1))
    if kind == "drag" and arg:
        parts = [float(v) for v in arg.split(",")]
        return kind, (parts[0], parts[1] if len(parts) > 1 else 0.0)
    if kind == "type":
        return kind, arg
    raise ValueError(f"unknown event {event!r}: use click, key:KEY[*N], drag:DX[,DY] or type:TEXT")


def check_event(event: str) -> None:
    _parse_event(event)


def perform(page, control, event: str) -> None:
    """One real input event on ``control`` (a Playwright locator)."""
    kind, arg = _parse_event(event)
    control.scroll_into_view_if_needed()
    if kind == "click":
        control.click()
    elif kind == "key":
        key, times = arg
        control.focus()
        for _ in range(times):
            page.keyboard.press(key)
    elif kind == "drag":
        box = control.bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x + arg[0], y + arg[1], steps=12)
        page.mouse.up()
    elif kind == "type":
        control.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(arg)
        page.keyboard.press("Enter")


def interaction_problems(lp: LabPage, nb, path: str, interactions, lesson: str,
                         shots: Path | None, report: LessonReport) -> list[Problem]:
    page, problems, traceback_seen = lp.page, [], False
    cells = page.locator(".jp-Notebook .jp-Cell")
    for n, it in enumerate(interactions, 1):
        label = f"interaction {n} ({it.note or it.event + ' on ' + it.control})"
        if it.cell:
            idx = next((i for i, c in enumerate(nb.cells)
                        if c.cell_type == "code" and it.cell in c.source), None)
            if idx is None:
                problems.append(Problem(label, f"no code cell contains {it.cell!r}"))
                continue
            scope, where = cells.nth(idx).locator(".jp-Cell-outputArea"), cell_label(idx, nb.cells[idx])
        else:
            idx, scope, where = None, page.locator(".jp-Notebook"), "notebook"
        control, watch = scope.locator(it.control).first, scope.locator(it.watch)
        if control.count() == 0:
            problems.append(Problem(f"{where}, {label}", f"control {it.control!r} not found", idx))
            continue
        if watch.count() == 0:
            problems.append(Problem(f"{where}, {label}", f"watched output {it.watch!r} not found", idx))
            continue
        before = watch.evaluate_all(_JS_SIGNATURE)
        try:
            perform(page, control, it.event)
        except Exception as e:  # noqa: BLE001 - the message goes into the report
            problems.append(Problem(f"{where}, {label}", f"{it.event} failed: {str(e).splitlines()[0]}",
                                    idx))
            continue
        # wait for a change, then for it to settle (1 s unchanged): the event's final effect is checked,
        # not a state passed on the way (two key presses give two updates from the kernel)
        deadline, after, still_since = time.monotonic() + it.timeout_s, before, None
        while time.monotonic() < deadline:
            page.wait_for_timeout(250)
            now = watch.evaluate_all(_JS_SIGNATURE)
            if now["hash"] != after["hash"]:
                after, still_since = now, time.monotonic()
            elif after["hash"] != before["hash"] and time.monotonic() - still_since >= 1.0:
                break
        if after["hash"] == before["hash"]:
            problems.append(Problem(f"{where}, {label}", f"{it.watch!r} did not change within "
                                    f"{it.timeout_s:.0f} s (it shows {after['text'][:120]!r})", idx))
        elif it.expect and not re.search(it.expect, after["text"]):
            problems.append(Problem(f"{where}, {label}", f"{it.watch!r} changed but does not match "
                                    f"{it.expect!r} (it shows {after['text'][:120]!r})", idx))
        text = " ".join(t["text"] for d in page.evaluate(_JS_SNAPSHOT, path)["dom"]
                        for t in d["outputs"])
        if "Traceback (most recent call last)" in text and not traceback_seen:
            problems.append(Problem(f"{where}, {label}", "a traceback appeared after the event", idx))
            traceback_seen = True
        if shots is not None:
            shot = shots / f"{lesson}-interaction-{n}.png"
            page.screenshot(path=str(shot))
            report.screenshots.append(shot)
    return problems


def run_lesson(lp: LabPage, notebook: Path, *, lesson: str | None = None, budget_s: float = 300.0,
               interactions=None, shots: Path | None = None) -> LessonReport:
    """Open ``notebook`` (a file under the server's root) in JupyterLab, restart its kernel and run all
    cells through the menu, check the page, the cells and the outputs, perform the widget
    ``interactions`` (None: the lesson declares none) and save screenshots under ``shots``.
    """
    notebook = Path(notebook)
    lesson = lesson or notebook.stem
    path = notebook.relative_to(lp.lab.root).as_posix()
    nb = nbformat.read(notebook, as_version=4)
    report = LessonReport(lesson, cells=len(nb.cells))
    if shots is not None:
        shots.mkdir(parents=True, exist_ok=True)
        for old in [shots / f"{lesson}.png", shots / f"{lesson}.json",
                    *shots.glob(f"{lesson}-interaction-*.png")]:
            old.unlink(missing_ok=True)
    snap = None
    try:
        lp.open(path)
        report.problems += page_problems(lp)
        report.problems += structure_problems(nb, lp.page.evaluate(_JS_SNAPSHOT, path)["model"])
        report.run_s, run_problems, report.cell_s = restart_and_run_all(lp, path, budget_s)
        report.problems += run_problems
        snap = lp.page.evaluate(_JS_SNAPSHOT, path)
        snap["console_errors"] = lp.console_errors
        report.problems += structure_problems(nb, snap["model"])
        report.problems += output_problems(nb, snap, lesson, declared=interactions is not None)
        if interactions and not any(p.where == "run" for p in run_problems):
            report.problems += interaction_problems(lp, nb, path, interactions, lesson, shots, report)
        report.problems += page_problems(lp)
    except Exception as e:  # noqa: BLE001 - a driver error is a failure of this lesson, with its name
        detail = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        report.problems.append(Problem("browser", f"{type(e).__name__}: {detail[:300]}"))
    unique = {str(p): p for p in reversed(report.problems)}  # checked before and after the run: once
    report.problems = [p for p in report.problems if unique.get(str(p)) is p]
    if shots is not None:
        try:
            target = next((p.dom_index for p in report.problems if p.dom_index is not None), None)
            if target is None and snap:  # the last figure or widget the lesson shows, else its top
                target = next((i for i in range(len(snap["dom"]) - 1, -1, -1)
                               if any(o["images"] or o["widget"] for o in snap["dom"][i]["outputs"])), 0)
            if target is not None:
                lp.page.locator(".jp-Notebook .jp-Cell").nth(target).scroll_into_view_if_needed(
                    timeout=5000)
            shot = shots / f"{lesson}.png"
            lp.page.screenshot(path=str(shot))
            report.screenshots.insert(0, shot)
        except Exception:  # noqa: BLE001 - no screenshot is no reason to hide the report
            pass
        (shots / f"{lesson}.json").write_text(json.dumps({
            "lesson": lesson, "cells": report.cells, "run_all_s": report.run_s,
            "slowest_cells": {f"cell {i + 1}": round(t, 1) for i, t in
                              sorted(report.cell_s.items(), key=lambda kv: -kv[1])[:5]},
            "problems": [str(p) for p in report.problems],
            "screenshots": [p.name for p in report.screenshots]}, indent=1, ensure_ascii=False))
    return report
