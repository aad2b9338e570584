"""``clcourse reproduce TABLE``: run a published table's grid, cache every run, compare with the paper.

The tables are those of van de Ven & Tolias 2019, "Three scenarios for continual learning"
(arXiv:1904.07734v1): Table 4 (split MNIST) and Table 5 (permuted MNIST), in
:mod:`clcourse.published`. A table's *grid* is every (method, scenario, seed) *cell* whose method
exists in ``clcourse.methods.METHODS`` and whose scenario has a published value; methods the course
does not have yet are listed as "no method yet" and join the grid when they are added.

A cell's value is the average accuracy over all tasks after the last one (``average_accuracy``,
percent), the quantity of the paper's tables. Each finished run is written at once, atomically, to
one JSON file in the cache folder (default ``runs/reproduce/``), named by a hash of everything that
decides its numbers: the run's :class:`~clcourse.config.Settings` and the method's effective
arguments (defaults included, so a changed default in the code gives a new key, never a stale hit).
A cell already in the cache is never run again: a reproduction that was stopped goes on where it
stopped. The runs go to worker processes on this machine (``--executor local``), or to SLURM jobs
through submitit (``--executor submitit``; ``submitit-local`` runs those jobs on this machine).

The criterion. The paper reports mean ± SEM over 20 seeds, so its standard deviation over seeds is
s.d. = SEM × √20. A cell **reproduces** when our mean over seeds lies within two of those standard
deviations of the published mean, |ours − published| ≤ 2 × s.d.: the band in which about 95% of
single runs of the paper's setup would land, if its seeds scatter normally (a mean over our seeds
scatters less, so the band is a lenient test of it). Otherwise the cell is **outside the band**, by
how much is printed. With fewer seeds than asked in the cache it is **pending** k/n.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .config import make_settings
from .methods import METHODS, method_class
from .published import N_SEEDS, TABLES, Row, Table, Value

DEFAULT_SEEDS = (1, 2, 3)   # the 2019 code's multi-seed runs start at seed 1
DEFAULT_CACHE = Path("runs") / "reproduce"
SCENARIO_NAMES = {"task": "Task-IL", "domain": "Domain-IL", "class": "Class-IL"}
# Settings that came after the first cached runs, with their defaults: a key leaves them out while
# they hold these values (Cell.keyed). (Method.resolve_args does the same for the shared xdg.)
LATE_DEFAULTS = {"classes": ((), [])}
# Settings a cell fixes itself: --set may not change them.
_CELL_FIELDS = ("benchmark", "profile", "method", "scenario", "seed", "method_args")


# --- the grid -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cell:
    """One run of the grid: a method in a scenario with a seed, under a profile and overrides."""
    benchmark: str
    method: str
    scenario: str
    seed: int
    profile: str
    overrides: dict = field(default_factory=dict)
    args: dict = field(default_factory=dict)      # the method's arguments the paper's row sets
    name: str = ""                                # the row's name (default: the method's)

    def keyed(self) -> dict:
        """Everything that decides the run's numbers: its settings and the method's arguments.
        Settings added to the code after a cache was written are left out while they hold their
        default (``LATE_DEFAULTS``), so the runs cached before stay hits."""
        s = make_settings(self.benchmark, self.profile, method=self.method,
                          scenario=self.scenario, seed=self.seed, **self.overrides)
        arguments = method_class(self.method).resolve_args(s, self.args)
        def kept(values: dict) -> dict:
            return {k: v for k, v in values.items() if v not in LATE_DEFAULTS.get(k, ())}
        return {"settings": kept(s.to_dict()), "method_args": kept(arguments)}

    @property
    def key(self) -> str:
        text = json.dumps(self.keyed(), sort_keys=True, default=repr)
        return hashlib.sha256(text.encode()).hexdigest()[:20]

    def path(self, cache) -> Path:
        """The cell's cache file: readable names, then the key that decides a hit."""
        return Path(cache) / (f"{self.benchmark}_{self.name or self.method}_{self.scenario}_{self.profile}_"
                              f"seed{self.seed}_{self.key}.json")


@dataclass
class Entry:
    """One line of a table: a published value and the cells that reproduce it (none when the
    method does not exist yet)."""
    row: Row
    scenario: str
    cells: list

    @property
    def published(self) -> Value:
        return self.row.values[self.scenario]


def plan(table: Table, methods=None, scenarios=None, seeds=DEFAULT_SEEDS, profile="paper",
         overrides=None) -> list:
    """The table's entries in the paper's order, limited to ``methods`` (clcourse names) and
    ``scenarios``; an unknown name is a ValueError listing the valid ones."""
    valid = list(dict.fromkeys(row.key for row in table.rows))
    unknown = [m for m in methods or () if m not in valid]
    if unknown:
        raise ValueError(f"{table.name} has no method {', '.join(map(repr, unknown))}; "
                         f"valid methods: {', '.join(valid)}")
    bad = [s for s in scenarios or () if s not in SCENARIO_NAMES]
    if bad:
        raise ValueError(f"unknown scenario {', '.join(map(repr, bad))}; "
                         f"valid scenarios: {', '.join(SCENARIO_NAMES)}")
    fixed = sorted(set(overrides or ()) & set(_CELL_FIELDS))
    if fixed:
        raise ValueError(f"--set cannot change {', '.join(fixed)}: the table and --methods, "
                         "--scenarios, --seeds, --profile decide them")
    if not seeds:
        raise ValueError("give at least one seed")
    entries = []
    for row in table.rows:
        if methods and row.key not in methods:
            continue
        for scenario in row.values:
            if scenarios and scenario not in scenarios:
                continue
            cells = [Cell(table.benchmark, row.method, scenario, seed, profile, dict(overrides or {}),
                          dict(row.args), row.key) for seed in seeds] if row.method in METHODS else []
            if cells:
                cells[0].keyed()  # bad settings fail here, before anything runs
            entries.append(Entry(row, scenario, cells))
    return entries


# --- one run --------------------------------------------------------------------------------------
def machine(versions: dict) -> dict:
    """What made a run: CPU (model, instruction set torch dispatches to), torch, threads, device."""
    import torch

    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    about = {"machine": platform.machine(), "cpu": cpu,
             "cpu_capability": torch.backends.cpu.get_cpu_capability(),
             "torch": torch.__version__, "threads": torch.get_num_threads(),
             "device": versions.get("device")}
    if "gpu" in versions:
        about["gpu"] = versions["gpu"]
    return about


def write_json(path: Path, data: dict) -> None:
    """Write atomically: a temporary file in the same folder, then ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def run_cell(cell: Cell, cache, root=None, threads: int = 1, device=None) -> dict:
    """Run one cell and write its cache file the moment it finishes; return the cache entry.
    The job of every executor (worker process, submitit job)."""
    from . import runtime
    from .experiment import run

    runtime.set_threads(threads)
    keyed = cell.keyed()
    tic = time.perf_counter()
    exp = run(cell.benchmark, cell.method, scenario=cell.scenario, profile=cell.profile,
              seed=cell.seed, save=False, progress=False, root=root, device=device,
              args=dict(cell.args), **cell.overrides)
    entry = {"key": cell.key, "keyed": keyed, "name": cell.name or cell.method,
             "value": 100 * exp.result.metrics["average_accuracy"],
             "accuracy_matrix": exp.result.accuracy_matrix, "metrics": exp.result.metrics,
             "wall_s": time.perf_counter() - tic, "machine": machine(exp.result.versions),
             "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json(cell.path(cache), entry)
    return entry


def load(cell: Cell, cache) -> dict | None:
    path = cell.path(cache)
    return json.loads(path.read_text()) if path.exists() else None


# --- running the missing cells --------------------------------------------------------------------
def default_workers(threads: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, (cores or 1) // threads)


def _finished_line(entry: dict, done: int, total: int) -> str:
    s = entry["keyed"]["settings"]
    name = entry.get("name") or s["method"]
    return (f"[{done}/{total}] {name} {SCENARIO_NAMES[s['scenario']]} seed {s['seed']}: "
            f"{entry['value']:.2f} % in {entry['wall_s']:.1f} s")


def _on_local_workers(missing, cache, root, threads, device, workers):
    """Yield each entry as its run finishes, from ``workers`` spawned processes."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(max_workers=min(workers, len(missing)),
                               mp_context=multiprocessing.get_context("spawn"))
    try:
        futures = [pool.submit(run_cell, cell, cache, root, threads, device) for cell in missing]
        for future in as_completed(futures):
            yield future.result()
    finally:  # on an error or an interrupt, start nothing more
        pool.shutdown(wait=False, cancel_futures=True)


def _submitit():
    try:
        import submitit
    except ImportError:
        raise ImportError('--executor submitit needs submitit: pip install -e ".[cluster]"') from None
    return submitit


def _on_submitit(missing, cache, root, threads, device, cluster, parameters):
    """Yield each entry as its job finishes: one submitit job per cell (a SLURM job array where
    SLURM is available; ``cluster="local"``: processes on this machine)."""
    submitit = _submitit()
    executor = submitit.AutoExecutor(folder=Path(cache) / "submitit", cluster=cluster)
    try:
        executor.update_parameters(**{"name": "clcourse-reproduce", "timeout_min": 720,
                                      "cpus_per_task": threads, **parameters})
    except (NameError, AssertionError) as err:  # submitit's errors for bad parameters
        raise ValueError(f"--submitit: {err}") from None
    if executor.cluster != "slurm" and cluster is None:
        print(f"note: no SLURM here; submitit runs all {len(missing)} jobs at once on this "
              "machine (--executor local runs --workers at a time)")
    n = len(missing)
    jobs = executor.map_array(run_cell, missing, [cache] * n, [root] * n, [threads] * n,
                              [device] * n)
    print(f"submitted {n} job(s) via submitit ({executor.cluster}); logs in {executor.folder}")
    poll = 10 if executor.cluster == "slurm" else 0.5
    for job in submitit.helpers.as_completed(jobs, poll_frequency=poll):
        yield job.result()


def run_missing(cells, cache, executor: str = "local", workers: int | None = None,
                threads: int = 1, root=None, device=None, submitit_parameters=None) -> int:
    """Run every cell not in the cache; return how many ran. Prints one line per finished run
    under a progress bar over them (the bar is off when ``$CLCOURSE_PROGRESS`` is 0)."""
    from tqdm.auto import tqdm

    from .engine import progress_enabled

    if threads < 1 or (workers is not None and workers < 1):
        raise ValueError("--workers and --threads must be positive integers")
    missing = [cell for cell in cells if not cell.path(cache).exists()]
    workers = workers or default_workers(threads)
    how = (f"{min(workers, len(missing))} worker process(es) × {threads} thread(s)"
           if executor == "local" else f"submitit jobs of {threads} thread(s)")
    print(f"{len(cells)} runs in the grid, {len(cells) - len(missing)} already in {cache}"
          + (f"; running {len(missing)} on {how}" if missing else ""))
    if not missing:
        return 0
    if executor == "local":
        finished = _on_local_workers(missing, cache, root, threads, device, workers)
    else:
        finished = _on_submitit(missing, cache, root, threads, device,
                                "local" if executor == "submitit-local" else None,
                                dict(submitit_parameters or {}))
    with tqdm(total=len(missing), unit="run", disable=not progress_enabled(None)) as bar:
        for done, entry in enumerate(finished, 1):
            bar.update()
            tqdm.write(_finished_line(entry, done, len(missing)), file=sys.stdout)
    return len(missing)


# --- the comparison -------------------------------------------------------------------------------
def verdict(ours: list, n: int, published: Value) -> str:
    """The criterion of the module docstring: |mean(ours) − published| ≤ 2 × published s.d."""
    if len(ours) < n:
        return f"pending {len(ours)}/{n}"
    band = 2 * published.sd
    gap = abs(statistics.mean(ours) - published.mean)
    return "reproduces" if gap <= band else f"outside the band by {gap - band:.2f}"


def assess(entry: Entry, cache) -> dict:
    """One line of the comparison: our runs of the entry found in the cache, and the verdict."""
    runs = [r for r in (load(cell, cache) for cell in entry.cells) if r is not None]
    ours = [r["value"] for r in runs]
    line = {"label": entry.row.label, "method": entry.row.key, "scenario": entry.scenario,
            "published": entry.published, "runs": runs, "ours": ours,
            "verdict": verdict(ours, len(entry.cells), entry.published) if entry.cells
            else "no method yet"}
    line["delta"] = statistics.mean(ours) - entry.published.mean if ours else None
    return line


def _ours(ours: list) -> str:
    if not ours:
        return "–"
    if len(ours) == 1:
        return f"{ours[0]:.2f} (n=1)"
    return f"{statistics.mean(ours):.2f} ± {statistics.stdev(ours):.2f} (n={len(ours)})"


def _machines(runs: list) -> str:
    labels = []
    for r in runs:
        m = r["machine"]
        label = m.get("gpu") or (f"{m['cpu']} ({m['cpu_capability']}, {m['threads']} thread"
                                 f"{'s' if m['threads'] != 1 else ''})")
        if label not in labels:
            labels.append(label)
    return "; ".join(labels) or "–"


def _wall(runs: list) -> str:
    if not runs:
        return "–"
    s = statistics.mean(r["wall_s"] for r in runs)
    return f"{s:.1f} s" if s < 60 else f"{s / 60:.1f} min"


def summary(lines: list) -> str:
    """One line: how many cells reproduce, and how many are outside, pending, without a method."""
    def count(prefix: str) -> int:
        return sum(line["verdict"].startswith(prefix) for line in lines)

    parts = [f"{count('reproduces')} of {len(lines) - count('no method')} cells reproduce"]
    parts += [f"{count(prefix)} {text}" for prefix, text in (
        ("outside", "outside the band"), ("pending", "pending"), ("no method", "with no method yet"))
        if count(prefix)]
    return "summary: " + ", ".join(parts)


def criterion() -> str:
    return ("a cell reproduces when |ours − published| ≤ 2 × published s.d., "
            f"s.d. = SEM × √{N_SEEDS} (the paper's {N_SEEDS} seeds)")


def format_text(table: Table, lines: list, profile: str, seeds) -> str:
    """The comparison as aligned text, one line per cell, and the summary."""
    header = ("method", "scenario", "ours (mean ± s.d.)", "published (± SEM)", "Δ", "±2 s.d.",
              "verdict")
    rows = [header]
    for line in lines:
        p = line["published"]
        rows.append((f"{line['label']} [{line['method']}]", SCENARIO_NAMES[line["scenario"]],
                     _ours(line["ours"]), f"{p.mean:.2f} ± {p.sem:.2f}",
                     "" if line["delta"] is None else f"{line['delta']:+.2f}", f"{2 * p.sd:.2f}",
                     line["verdict"]))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    text = [f"{table.source}; profile {profile}, seeds {' '.join(map(str, seeds))}",
            criterion()]
    text += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows]
    return "\n".join(text + [summary(lines)])


def format_markdown(table: Table, lines: list, command: str) -> str:
    """The comparison as a markdown table, with the machine and wall time behind each cell."""
    dates = sorted({r["date"][:10] for line in lines for r in line["runs"]})
    when = f" (runs of {' to '.join(dict.fromkeys([dates[0], dates[-1]]))})" if dates else ""
    out = [f"{table.source}, reproduced with `clcourse`{when}. Criterion: {criterion()}.",
           f"Regenerate (runs only what the cache lacks): `{command}`",
           "",
           "| Method | Scenario | Ours (mean ± s.d.) | Published (mean ± SEM) | Δ | Verdict "
           "| Machine | Wall time per run |",
           "|---|---|---|---|---|---|---|---|"]
    for line in lines:
        p = line["published"]
        delta = "" if line["delta"] is None else f"{line['delta']:+.2f}"
        out.append(f"| {line['label']} (`{line['method']}`) | {SCENARIO_NAMES[line['scenario']]} "
                   f"| {_ours(line['ours'])} | {p.mean:.2f} ± {p.sem:.2f} | {delta} "
                   f"| {line['verdict']} | {_machines(line['runs'])} | {_wall(line['runs'])} |")
    return "\n".join(out + ["", summary(lines)])


def _between_markers(path: Path, name: str) -> tuple:
    """(lines of ``path``, index of ``<!-- reproduce:NAME -->``, index of ``<!-- /reproduce:NAME -->``);
    a file without both lines, in that order, is a ValueError that says to add them."""
    start, end = f"<!-- reproduce:{name} -->", f"<!-- /reproduce:{name} -->"
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    stripped = [line.strip() for line in lines]
    if start not in stripped or end not in stripped[stripped.index(start):]:
        raise ValueError(f"{path} has no lines {start} ... {end}: add both where the table "
                         "should go (nothing else in the file is ever written)")
    i = stripped.index(start)
    return lines, i, stripped.index(end, i)


def write_markdown(path, name: str, text: str) -> None:
    """Replace what lies between the marker lines of ``name`` in ``path`` by ``text``, atomically;
    touch nothing else."""
    path = Path(path)
    lines, i, j = _between_markers(path, name)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text("".join(lines[:i + 1]) + text.rstrip("\n") + "\n" + "".join(lines[j:]))
    os.replace(tmp, path)


# --- the command ----------------------------------------------------------------------------------
def command_line(args) -> str:
    """The command that regenerates the markdown table: the options that decide the grid."""
    parts = ["clcourse", "reproduce", args.table, "--profile", args.profile,
             "--seeds", *map(str, args.seeds or DEFAULT_SEEDS)]
    if args.methods:
        parts += ["--methods", *args.methods]
    if args.scenarios:
        parts += ["--scenarios", *args.scenarios]
    for key, value in args.overrides or []:
        parts += ["--set", f"{key}={value}"]
    if args.cache:
        parts += ["--cache", str(args.cache)]
    return " ".join(map(shlex.quote, parts + ["--markdown", str(args.markdown)]))


def main(args) -> int:
    """``clcourse reproduce``: run what the cache lacks (unless ``--report``), print the table,
    write it into ``--markdown`` FILE between its markers."""
    table = TABLES[args.table]
    cache = Path(args.cache or DEFAULT_CACHE)
    seeds = tuple(args.seeds or DEFAULT_SEEDS)
    entries = plan(table, args.methods, args.scenarios, seeds, args.profile,
                   dict(args.overrides or []))
    if args.markdown:
        _between_markers(Path(args.markdown), table.name)  # fail before any run, not after
    try:
        if not args.report:
            run_missing([cell for e in entries for cell in e.cells], cache, args.executor,
                        args.workers, args.threads, args.data, args.device,
                        dict(args.submitit or []))
    except ImportError as err:
        print(f"clcourse: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"\ninterrupted: every finished run is in {cache}; the same command goes on from "
              "there", file=sys.stderr)
        return 130
    lines = [assess(e, cache) for e in entries]
    print(format_text(table, lines, args.profile, seeds))
    if args.markdown:
        write_markdown(args.markdown, table.name, format_markdown(table, lines, command_line(args)))
        print(f"wrote the table into {args.markdown}")
    return 0
