"""The engine: trains a method task after task, evaluates it, and checkpoints the run.

It drives the hooks of ``methods.base.Method`` around the one optimisation loop (``loop.run_steps``):
``before_task``, ``train_set``, the loop with ``loss``/``replay``/``after_step``, ``after_task``, then
the evaluation of every task with ``predict`` (and any ``extra_predictions``). Masks come from the
scenario; the engine holds no method code.

Why it is fast: see ``loop.py`` (data resident on the device, index-slice batches); on CUDA the
forward pass can run under bf16 autocast; on the CPU subnormal floats are flushed to zero and Adam
runs as one fused kernel (``benchmarks/engine_throughput.py`` holds the measurements).

Why it is reproducible: ``runtime.set_seed`` before the model is built, and every task's batch order
comes from a generator seeded by (seed, task), not from the global RNG (a method's extra stage uses
``Method.rng(task, stage)``). A checkpoint written after every finished task holds the model, the
method's state, the global RNG state, the accuracy matrices and, with ``settings.keep_optimizer``,
the optimiser's state; ``resume=True`` continues from it and ends with the same matrix as an
uninterrupted run. Checkpoints hold tensors and plain containers only and are loaded with
``weights_only=True``, so a checkpoint from elsewhere cannot run code when it is opened.
"""
from __future__ import annotations

import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from . import runtime
from .data.scenarios import TensorSet, masked_logits
from .loop import run_steps, steps_for
from .results import Result, versions

EVAL_BATCH = 2048


def progress_enabled(progress: bool | None) -> bool:
    """``progress`` if given, else ``$CLCOURSE_PROGRESS`` (0 switches the bars off), else on."""
    if progress is not None:
        return progress
    return os.environ.get("CLCOURSE_PROGRESS", "1") != "0"


def steps_per_task(settings, n: int) -> tuple:
    """(number of optimiser steps, steps per epoch) for a task of ``n`` training examples."""
    return steps_for(n, settings.batch_size, settings.epochs, settings.iters)


def train_task(method, data: TensorSet, masks: torch.Tensor, settings, generator, device,
               progress=True, desc="", optimizer=None) -> dict:
    """Train ``method`` on ``data`` for the settings' epochs (or iterations): the task's main stage.
    Returns the loss curves of ``loop.run_steps`` (one per named loss term).

    ``optimizer``: one to continue with (``settings.keep_optimizer``); by default a fresh one from
    ``method.configure_optimizer()``. Each parameter group starts the task at its own initial lr.
    """
    method.model.train()
    optimizer = optimizer or method.configure_optimizer()
    steps, per_epoch = steps_per_task(settings, len(data))
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if settings.amp and device.type == "cuda" else nullcontext())
    return run_steps(data, method.loss, optimizer, steps=steps, batch_size=settings.batch_size,
                     generator=generator, masks=masks, replay=method.replay,
                     augment=settings.augment,
                     milestones=[m * per_epoch for m in settings.milestones],
                     lr_decay=settings.lr_decay,
                     after_step=method.after_step, autocast=autocast, progress=progress,
                     desc=desc)


@torch.no_grad()
def predict(method, x: torch.Tensor, mask: torch.Tensor, t: torch.Tensor | None = None,
            predictor=None) -> torch.Tensor:
    """Predicted output unit of every row of ``x``: argmax of the logits over ``mask``.

    ``t``: the rows' task ids, handed to the predictor (task-gated networks need them);
    ``predictor``: ``f(x, t) -> logits``, by default ``method.predict``.
    """
    method.model.eval()
    predictor = predictor or method.predict
    if t is None:
        t = torch.zeros(len(x), dtype=torch.long, device=x.device)
    out = [masked_logits(predictor(x[i:i + EVAL_BATCH], t[i:i + EVAL_BATCH]).float(), mask)
           .argmax(1) for i in range(0, len(x), EVAL_BATCH)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def evaluate(method, stream, scenario, trained_upto: int, device) -> dict:
    """Row ``trained_upto`` of every accuracy matrix: accuracy on every task's test set, each scored
    on the units the scenario makes active for it. Key ``""``: ``method.predict``; then one key per
    extra predictor of the method."""
    masks = scenario.mask_table(trained_upto, device)
    predictors = {"": method.predict, **method.extra_predictions()}
    rows = {name: [] for name in predictors}
    for task in stream.tasks:
        test = scenario.test_set(task)
        for name, predictor in predictors.items():
            pred = predict(method, test.x, masks[task.id], test.t, predictor)
            rows[name].append((pred == test.y).float().mean().item() if len(test)
                              else float("nan"))
    return rows


# --- checkpoints ----------------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a kill during the write leaves the previous checkpoint intact


def read_checkpoint(path: Path) -> dict:
    """A checkpoint's contents, loaded safely: tensors and plain containers only, no code."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickled objects (not a clcourse checkpoint) or a damaged file
        raise ValueError(f"{path} is not a readable clcourse checkpoint ({type(err).__name__}: "
                         f"{str(err).splitlines()[0] if str(err) else ''}); delete it or choose "
                         f"another --out") from None


def load_checkpoint(path: Path, settings) -> dict | None:
    if not path.exists():
        return None
    state = read_checkpoint(path)
    if state["settings"] != settings.to_dict():
        changed = [k for k, v in settings.to_dict().items() if state["settings"].get(k) != v]
        raise ValueError(f"checkpoint {path} was written by a run with other settings "
                         f"(differs in: {', '.join(changed)}); use another --out or drop --resume")
    return state


def same_parameters(optimizer, params) -> bool:
    """Does ``optimizer`` update exactly ``params`` (what the method trains now)? Not after a head
    grew or a method added a module: then a kept optimiser has to be rebuilt."""
    if optimizer is None:
        return False
    held = [p for group in optimizer.param_groups for p in group["params"]]
    return [id(p) for p in held] == [id(p) for p in params]


def refuse_to_overwrite_unfinished(path: Path, n_tasks: int) -> None:
    """Starting afresh over an interrupted run would throw its finished tasks away: refuse."""
    if path.exists():
        done = read_checkpoint(path)["completed"]
        if done < n_tasks:
            raise ValueError(f"{path.parent} holds an interrupted run ({done} of {n_tasks} tasks "
                             f"done); add --resume (resume=True) to continue it, or choose another "
                             f"--out, or delete that folder to start over")


def _elapsed(tic: float, device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - tic


def fit(method, stream, scenario, settings, device, checkpoint: Path | None = None,
        resume: bool = False, progress: bool | None = None) -> Result:
    """Train ``method`` on every task of ``stream`` in order; fill the accuracy matrix after each.

    With ``checkpoint``, the run state is written there after every task; with ``resume`` too, a
    run continues after the last finished task recorded in it.
    """
    progress = progress_enabled(progress)
    T = len(stream.tasks)
    run = dict(matrix=[], extra={}, history=[], loss_terms=[],
               timings={"train": [], "after_task": [], "eval": []})
    start, optimizer = 0, None  # the optimiser is kept across tasks only with keep_optimizer
    if checkpoint and not resume:
        refuse_to_overwrite_unfinished(Path(checkpoint), T)
    state = load_checkpoint(Path(checkpoint), settings) if (resume and checkpoint) else None
    if state is not None:
        method.load_state_dict(state["method"])       # first: a network that grew is rebuilt,
        method.model.load_state_dict(state["model"])  # then its weights are loaded
        run = state["run"]
        runtime.set_rng_state(state["rng"])
        start = state["completed"]
        if state.get("optimizer") is not None:
            optimizer = method.configure_optimizer()
            optimizer.load_state_dict(state["optimizer"])
    for t in range(start, T):
        task = stream.tasks[t]
        tic = time.perf_counter()
        if hasattr(method.model, "ensure_outputs"):
            method.model.ensure_outputs(scenario.units_seen(t))
        method.before_task(task)
        data = method.train_set(task)
        generator = torch.Generator(device).manual_seed(settings.seed * 1_000_003 + t)
        if not settings.keep_optimizer or not same_parameters(optimizer, method.parameters()):
            optimizer = method.configure_optimizer()  # fresh per task, or what it trains changed
        curves = train_task(method, data, scenario.mask_table(t, device), settings, generator,
                            device, progress, desc=f"task {t + 1}/{T}", optimizer=optimizer)
        run["history"].append(curves.get("total", next(iter(curves.values()), [])))
        run["loss_terms"].append(curves)
        run["timings"]["train"].append(_elapsed(tic, device))
        tic = time.perf_counter()
        method.after_task(task)
        run["timings"]["after_task"].append(_elapsed(tic, device))
        tic = time.perf_counter()
        rows = evaluate(method, stream, scenario, t, device)
        run["matrix"].append(rows.pop(""))
        for name, row in rows.items():
            run["extra"].setdefault(name, []).append(row)
        run.setdefault("reports", []).append(method.report())
        run["timings"]["eval"].append(_elapsed(tic, device))
        if checkpoint:
            save_checkpoint(Path(checkpoint), {
                "settings": settings.to_dict(), "completed": t + 1, "run": run,
                "rng": runtime.rng_state(), "model": method.model.state_dict(),
                "method": method.state_dict(),
                "optimizer": optimizer.state_dict() if settings.keep_optimizer else None})
    timings = dict(run["timings"])
    timings["total"] = sum(sum(v) for v in run["timings"].values())
    return Result(config=settings.to_dict(), seed=settings.seed, accuracy_matrix=run["matrix"],
                  task_names=[task.name for task in stream.tasks], data=dict(stream.info),
                  history=run["history"], loss_terms=run["loss_terms"],
                  extra_matrices=run["extra"], reports=run.get("reports", []), timings=timings,
                  versions=versions(device))
