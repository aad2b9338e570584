"""``clcourse reproduce``: the grid runs in worker processes (or submitit jobs) into a cache keyed by
everything that decides a run's numbers, resumes after a kill, and compares with the paper.

Runs use the tiny MNIST of ``tiny_root`` and the smoke profile (a second or so each); the numbers
they give are not results. The table test writes fake cache entries to test the formatter only.
"""
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from clcourse.cli import main
from clcourse.experiment import run
from clcourse.methods import METHODS
from clcourse.published import TABLES
from clcourse.reproduce import Cell, write_json

SMOKE = ["--profile", "smoke", "--methods", "finetune"]


def cache_files(cache) -> dict:
    """name -> (mtime_ns, content) of every cache entry."""
    return {p.name: (p.stat().st_mtime_ns, p.read_text()) for p in sorted(cache.glob("*.json"))}


def test_a_grid_runs_on_two_worker_processes_and_fills_the_cache(tiny_root, tmp_path, capsys):
    cache = tmp_path / "cache"
    argv = ["reproduce", "table4", *SMOKE, "--scenarios", "task", "domain", "--seeds", "1", "2",
            "--workers", "2", "--cache", str(cache), "--data", str(tiny_root)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "4 runs in the grid, 0 already" in out and "on 2 worker process(es)" in out
    assert out.count("] finetune ") == 4 and "summary:" in out
    entries = [json.loads(text) for _, text in cache_files(cache).values()]
    assert len(entries) == 4
    for e in entries:
        assert set(e) >= {"key", "keyed", "value", "accuracy_matrix", "wall_s", "machine", "date"}
        assert set(e["machine"]) >= {"machine", "cpu", "cpu_capability", "torch", "threads", "device"}
        assert len(e["accuracy_matrix"]) == 5 and e["keyed"]["settings"]["profile"] == "smoke"
    # A cell's value is the run's average accuracy, in percent: the same run here gives it.
    one = next(e for e in entries if e["keyed"]["settings"]["scenario"] == "task"
               and e["keyed"]["settings"]["seed"] == 2)
    exp = run("split-mnist", "finetune", scenario="task", profile="smoke", seed=2, save=False,
              progress=False, root=tiny_root)
    assert one["value"] == pytest.approx(100 * exp.result.metrics["average_accuracy"])
    # The cache is complete: the same command runs nothing.
    assert main(argv) == 0
    assert "4 runs in the grid, 4 already" in capsys.readouterr().out


def test_a_killed_reproduction_resumes_without_rerunning_finished_cells(tiny_root, tmp_path,
                                                                          capsys):
    cache = tmp_path / "cache"
    argv = ["reproduce", "table4", *SMOKE, "--scenarios", "task", "domain", "--seeds", "1", "2",
            "--workers", "1", "--set", "iters=200", "--cache", str(cache), "--data", str(tiny_root)]
    log = tmp_path / "killed.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "clcourse", *argv], cwd=tmp_path, stdout=f,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group: worker included
    deadline = time.monotonic() + 60
    while not list(cache.glob("*.json")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)  # as a cluster or a power cut would: no cleanup
    proc.wait()
    before = cache_files(cache)
    assert 1 <= len(before) < 4, f"killed after {len(before)} of 4 runs:\n{log.read_text()}"

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert f"4 runs in the grid, {len(before)} already" in out
    assert out.count("] finetune ") == 4 - len(before)  # only the missing ones ran
    after = cache_files(cache)
    assert len(after) == 4
    assert {name: after[name] for name in before} == before  # untouched: same content and mtime


def test_the_cache_key_changes_with_a_setting_or_a_method_argument_and_nothing_else(monkeypatch):
    def cell(**overrides):
        return Cell("split-mnist", "ewc", "task", 1, "smoke", {"iters": 5, **overrides})

    key = cell().key
    assert cell().key == key
    assert cell(hidden=(64,)).key == key          # the smoke profile's own width: the same run
    assert cell(test_per_class=None).key == key   # None means "the profile's value"
    for changed in (cell(iters=6), cell(lr=2e-3), cell(hidden=(32,)),
                    dataclasses.replace(cell(), seed=2), dataclasses.replace(cell(), scenario="domain"),
                    dataclasses.replace(cell(), profile="class")):
        assert changed.key != key
    ewc = METHODS["ewc"]
    monkeypatch.setitem(ewc.arguments, "fisher", dataclasses.replace(ewc.arguments["fisher"],
                                                                      default="empirical"))
    assert cell().key != key                      # a changed default in the code: a new key
    monkeypatch.undo()
    assert cell().key == key
    # The key is a content hash: another process computes the same one.
    code = ("from clcourse.reproduce import Cell; "
            "print(Cell('split-mnist', 'ewc', 'task', 1, 'smoke', {'iters': 5}).key)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == key


def test_submitit_jobs_on_the_local_executor_fill_the_same_cache(tiny_root, tmp_path, capsys):
    pytest.importorskip("submitit")
    cache = tmp_path / "cache"
    common = ["reproduce", "table4", *SMOKE, "--scenarios", "task", "--seeds", "1", "2",
              "--cache", str(cache), "--data", str(tiny_root)]
    assert main(common + ["--executor", "submitit-local"]) == 0
    assert "submitted 2 job(s) via submitit (local)" in capsys.readouterr().out
    cells = [Cell("split-mnist", "finetune", "task", seed, "smoke") for seed in (1, 2)]
    assert all(c.path(cache).exists() for c in cells)
    assert main(common) == 0  # the local executor finds them: nothing left to run
    out = capsys.readouterr().out
    assert "2 runs in the grid, 2 already" in out and "] finetune" not in out


def test_the_table_gives_a_verdict_per_cell_and_markdown_goes_between_the_markers(tmp_path,
                                                                                     capsys):
    """Fake cache entries (a test of the formatter, not a result) for finetune on table 4:
    Task-IL 87.19 ± 0.94 (band ±8.41), Class-IL 19.90 ± 0.02 (band ±0.18), Domain-IL one seed."""
    cache = tmp_path / "cache"
    fake = {"task": [86.0, 87.0, 88.0], "class": [25.0, 25.0, 25.0], "domain": [60.0]}
    for scenario, values in fake.items():
        for seed, value in enumerate(values, 1):
            cell = Cell("split-mnist", "finetune", scenario, seed, "paper")
            write_json(cell.path(cache), {
                "key": cell.key, "keyed": cell.keyed(), "value": value, "wall_s": 12.0,
                "date": "2025-01-02T03:04:05+00:00",
                "machine": {"machine": "x86_64", "cpu": "Test CPU", "cpu_capability": "AVX2",
                            "torch": "2.x", "threads": 1, "device": "cpu"}})
    assert TABLES["table4"].rows[0].values["task"].sd == pytest.approx(0.94 * 20 ** 0.5)

    doc = tmp_path / "RESULTS.md"
    doc.write_text("# Results\nkept above\n<!-- reproduce:table4 -->\nold table\n"
                   "<!-- /reproduce:table4 -->\nkept below\n")
    argv = ["reproduce", "table4", "--methods", "finetune", "xdg", "--cache", str(cache),
            "--report", "--markdown", str(doc)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    lines = {(line.split()[0], line.split()[2]): line for line in out.splitlines()
             if line.startswith(("None", "XdG"))}
    assert "87.00 ± 1.00 (n=3)" in lines["None", "Task-IL"]
    assert lines["None", "Task-IL"].endswith("reproduces")
    assert lines["None", "Class-IL"].endswith("outside the band by 4.92")  # 5.10 - 0.18
    assert lines["None", "Domain-IL"].endswith("pending 1/3")
    assert lines["XdG", "Task-IL"].endswith("pending 0/3")   # finetune with xdg=0.9, not yet run
    assert "summary: 1 of 4 cells reproduce, 1 outside the band, 2 pending" in out

    text = doc.read_text()
    assert text.startswith("# Results\nkept above\n<!-- reproduce:table4 -->\n")
    assert text.endswith("<!-- /reproduce:table4 -->\nkept below\n") and "old table" not in text
    assert "| None (`finetune`) | Task-IL | 87.00 ± 1.00 (n=3) | 87.19 ± 0.94 | -0.19 | reproduces " \
           "| Test CPU (AVX2, 1 thread) | 12.0 s |" in text
    assert "`clcourse reproduce table4 --profile paper --seeds 1 2 3 --methods finetune xdg" in text
    assert main(argv) == 0 and doc.read_text() == text  # regenerating changes nothing

    bare = tmp_path / "NOTES.md"
    bare.write_text("no markers here\n")
    assert main(argv[:-1] + [str(bare)]) == 2
    assert "add both" in capsys.readouterr().err and bare.read_text() == "no markers here\n"


def test_a_bad_method_name_exits_2_listing_the_valid_ones(capsys):
    assert main(["reproduce", "table5", "--methods", "ewcc", "--report"]) == 2
    err = capsys.readouterr().err
    assert "ewcc" in err and "online-ewc" in err and "icarl" in err
