"""The one training loop of clcourse, its evaluation and its checkpoints.

Why it is fast: the whole stream already sits on the device as float tensors, so a mini-batch is an
index slice (``x[idx]``) of a random permutation made on the device — no ``DataLoader``, no worker
processes, no per-sample Python, no host-to-device copy in the hot path. On CUDA the forward pass can
run under bf16 autocast; on the CPU subnormal floats are flushed to zero (``runtime.flush_denormals``,
a process-wide switch) and Adam runs as one fused kernel. ``benchmarks/engine_throughput.py`` measures
the gain over a DataLoader loop (README: 3.9x on the 2-core course machine, 74% of matmul peak).

Why it is reproducible: ``runtime.set_seed`` before the model is built, and every task's batch order
comes from a generator seeded by (seed, task), not from the global RNG. A checkpoint written after
every finished task holds the model, the method's state, the global RNG state and the accuracy
matrix; ``resume=True`` continues from it and ends with the same matrix as an uninterrupted run.
(The optimiser is fresh at every task, so no optimiser state has to be saved.)
"""
from __future__ import annotations

import math
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from . import runtime
from .data.scenarios import TensorSet, masked_logits
from .results import Result, versions

EVAL_BATCH = 2048


def progress_enabled(progress: bool | None) -> bool:
    """``progress`` if given, else ``$CLCOURSE_PROGRESS`` (0 switches the bars off), else on."""
    if progress is not None:
        return progress
    return os.environ.get("CLCOURSE_PROGRESS", "1") != "0"


def augment_batch(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (zero padding ``pad``) and horizontal flip, per image, on the device (CIFAR)."""
    B, C, H, W = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy, dx = (torch.randint(0, 2 * pad + 1, (2, B), device=x.device, generator=generator))
    rows = (dy[:, None] + torch.arange(H, device=x.device))[:, :, None]   # B×H×1
    cols = (dx[:, None] + torch.arange(W, device=x.device))[:, None, :]   # B×1×W
    out = xp.permute(0, 2, 3, 1)[torch.arange(B, device=x.device)[:, None, None], rows, cols]
    out = out.permute(0, 3, 1, 2)
    flip = torch.rand(B, device=x.device, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(3), out)


def batches(n: int, batch_size: int, steps: int, generator: torch.Generator, device):
    """Yield ``steps`` index tensors: consecutive slices of fresh random permutations of range(n).

    One epoch = one permutation; the last batch of an epoch may be smaller (like a DataLoader with
    ``shuffle=True, drop_last=False``).
    """
    done = 0
    while done < steps:
        perm = torch.randperm(n, device=device, generator=generator)
        for start in range(0, n, batch_size):
            if done == steps:
                return
            yield perm[start:start + batch_size]
            done += 1


def steps_per_task(settings, n: int) -> tuple:
    """(number of optimiser steps, steps per epoch) for a task of ``n`` training examples."""
    per_epoch = math.ceil(n / settings.batch_size)
    return (settings.iters or settings.epochs * per_epoch), per_epoch


def train_task(method, data: TensorSet, masks: torch.Tensor, settings, generator, device,
               progress=True, desc="", optimizer=None) -> list:
    """Train ``method`` on ``data`` for the settings' epochs (or iterations). Returns the loss curve:
    the mean training loss over each stretch of ``log_every`` steps.

    ``optimizer``: one to continue with (``settings.keep_optimizer``); by default a fresh one from
    ``method.configure_optimizer()``. Either way the task starts at the settings' learning rate.
    """
    model = method.model
    model.train()
    runtime.flush_denormals()
    optimizer = optimizer or method.configure_optimizer()
    for group in optimizer.param_groups:
        group["lr"] = settings.lr
    steps, per_epoch = steps_per_task(settings, len(data))
    milestones = {m * per_epoch for m in settings.milestones}
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16)
                if settings.amp and device.type == "cuda" else nullcontext())
    log_every, running, curve = max(1, steps // 50), torch.zeros((), device=device), []
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False, mininterval=0.5)
    for step, idx in enumerate(batches(len(data), settings.batch_size, steps, generator, device)):
        if step in milestones:  # step-wise lr schedule, restarted at every task
            for group in optimizer.param_groups:
                group["lr"] *= 0.1
        x, y, t = data.x[idx], data.y[idx], data.t[idx]
        if settings.augment:
            x = augment_batch(x, generator)
        with autocast:
            loss = method.loss(x, y, t, masks[t])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        method.after_step()
        running += loss.detach().float()
        if (step + 1) % log_every == 0:
            curve.append(running.item() / log_every)  # one host sync per log_every steps
            running.zero_()
        bar.update()
    bar.close()
    return curve


@torch.no_grad()
def predict(method, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Predicted output unit of every row of ``x``: argmax of the method's logits over ``mask``."""
    method.model.eval()
    out = [masked_logits(method.predict(x[i:i + EVAL_BATCH]).float(), mask).argmax(1)
           for i in range(0, len(x), EVAL_BATCH)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.long, device=x.device)


def evaluate(method, stream, scenario, trained_upto: int, device) -> list:
    """Row ``trained_upto`` of the accuracy matrix: accuracy on every task's test set, each scored
    on the units the scenario makes active for it."""
    masks = scenario.mask_table(trained_upto, device)
    row = []
    for task in stream.tasks:
        test = scenario.test_set(task)
        pred = predict(method, test.x, masks[task.id])
        row.append((pred == test.y).float().mean().item() if len(test) else float("nan"))
    return row


# --- checkpoints ----------------------------------------------------------------------------------
def save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: a kill during the write leaves the previous checkpoint intact


def load_checkpoint(path: Path, settings) -> dict | None:
    if not path.exists():
        return None
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state["settings"] != settings.to_dict():
        changed = [k for k, v in settings.to_dict().items() if state["settings"].get(k) != v]
        raise ValueError(f"checkpoint {path} was written by a run with other settings "
                         f"(differs in: {', '.join(changed)}); use another --out or drop --resume")
    return state


def same_parameters(optimizer, model) -> bool:
    """Does ``optimizer`` update exactly the model's current parameters? (Not after a head grew.)"""
    if optimizer is None:
        return False
    params = [p for group in optimizer.param_groups for p in group["params"]]
    return [id(p) for p in params] == [id(p) for p in model.parameters()]


def refuse_to_overwrite_unfinished(path: Path, n_tasks: int) -> None:
    """Starting afresh over an interrupted run would throw its finished tasks away: refuse."""
    if path.exists():
        done = torch.load(path, map_location="cpu", weights_only=False)["completed"]
        if done < n_tasks:
            raise ValueError(f"{path.parent} holds an interrupted run ({done} of {n_tasks} tasks "
                             f"done); add --resume (resume=True) to continue it, or choose another "
                             f"--out, or delete that folder to start over")


def fit(method, stream, scenario, settings, device, checkpoint: Path | None = None,
        resume: bool = False, progress: bool | None = None) -> Result:
    """Train ``method`` on every task of ``stream`` in order; fill the accuracy matrix after each.

    With ``checkpoint``, the run state is written there after every task; with ``resume`` too, a
    run continues after the last finished task recorded in it.
    """
    progress = progress_enabled(progress)
    T = len(stream.tasks)
    matrix, history, timings, start = [], [], {"train": [], "eval": []}, 0
    if checkpoint and not resume:
        refuse_to_overwrite_unfinished(Path(checkpoint), T)
    state = load_checkpoint(Path(checkpoint), settings) if (resume and checkpoint) else None
    optimizer = None  # kept across tasks only with settings.keep_optimizer
    if state is not None:
        method.model.load_state_dict(state["model"])
        method.load_state_dict(state["method"])
        matrix, history, timings = state["matrix"], state["history"], state["timings"]
        runtime.set_rng_state(state["rng"])
        start = state["completed"]
        if state.get("optimizer") is not None:
            optimizer = method.configure_optimizer()
            optimizer.load_state_dict(state["optimizer"])
    for t in range(start, T):
        task = stream.tasks[t]
        tic = time.perf_counter()
        method.model.ensure_outputs(scenario.units_seen(t))
        method.before_task(t, task)
        data = method.train_set(t, task)
        generator = torch.Generator(device).manual_seed(settings.seed * 1_000_003 + t)
        if not settings.keep_optimizer or not same_parameters(optimizer, method.model):
            optimizer = method.configure_optimizer()  # fresh per task, or the network grew
        history.append(train_task(method, data, scenario.mask_table(t, device), settings,
                                  generator, device, progress, desc=f"task {t + 1}/{T}",
                                  optimizer=optimizer))
        method.after_task(t, task)
        if device.type == "cuda":
            torch.cuda.synchronize()
        timings["train"].append(time.perf_counter() - tic)
        tic = time.perf_counter()
        matrix.append(evaluate(method, stream, scenario, t, device))
        timings["eval"].append(time.perf_counter() - tic)
        if checkpoint:
            save_checkpoint(Path(checkpoint), {
                "settings": settings.to_dict(), "completed": t + 1, "matrix": matrix,
                "history": history, "timings": timings, "rng": runtime.rng_state(),
                "model": method.model.state_dict(), "method": method.state_dict(),
                "optimizer": optimizer.state_dict() if settings.keep_optimizer else None})
    timings["total"] = sum(timings["train"]) + sum(timings["eval"])
    return Result(config=settings.to_dict(), seed=settings.seed, accuracy_matrix=matrix,
                  task_names=[task.name for task in stream.tasks], data=dict(stream.info),
                  history=history, timings=timings, versions=versions(device))
