"""The one optimisation loop of clcourse: ``run_steps``.

The engine runs it once per task (``engine.fit``); a method runs it again from ``after_task`` for its
extra stages: BiC's bias correction on a held-out set, DER's classifier re-training on a balanced
memory, LFD's direction search. So every stage of every method trains through these forty lines, and
none of them knows about methods or settings: it gets data, a loss function, an optimiser and numbers.

Why it is fast: the data already sits on the device as float tensors, so a mini-batch is an index
slice (``x[idx]``) of a random permutation made on the device: no ``DataLoader``, no worker
processes, no per-sample Python, no host-to-device copy in the hot path.

One step::

    batch  = data[idx], with its masks from the scenario's table (``masks[batch.t]``)
    replay = replay(len(idx), generator)   # a method's replayed examples, masked the same way
    loss   = loss_fn(batch, replay)        # a tensor, or a dict of named terms that are summed
    backward, optimizer.step(), after_step()
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch
from tqdm.auto import tqdm

from . import runtime
from .data.scenarios import Batch, TensorSet


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


def steps_for(n: int, batch_size: int, epochs: int = 1, iters: int | None = None) -> tuple:
    """(number of optimiser steps, steps per epoch) for ``n`` examples: ``iters`` if given."""
    per_epoch = math.ceil(n / batch_size)
    return (iters or epochs * per_epoch), per_epoch


def total_loss(terms) -> tuple:
    """(the loss to minimise, its named terms): a dict of terms is summed in order."""
    if isinstance(terms, torch.Tensor):
        return terms, {"loss": terms}
    values = list(terms.values())
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total, terms


def run_steps(data: TensorSet, loss_fn, optimizer: torch.optim.Optimizer, *, steps: int,
              batch_size: int, generator: torch.Generator, masks: torch.Tensor | None = None,
              replay=None, augment: bool = False, milestones=(), lr_decay: float = 0.1,
              after_step=None,
              autocast=None, progress: bool = False, desc: str = "") -> dict:
    """Run ``steps`` optimiser steps of ``loss_fn(batch, replay_batch)`` on ``data``.

    ``masks``: the scenario's (n_tasks, n_units) mask table; each example gets ``masks[t]`` for its
    own task id ``t`` (replayed examples too). ``replay(n, generator)`` may return a TensorSet of
    replayed examples for the step, or None. ``milestones``: steps at which every group's lr is
    multiplied by ``lr_decay``. Each parameter group starts at its *own* initial lr (``initial_lr``, set the
    first time the group is seen), so a group a method put at another lr keeps it.

    Returns the loss curves: for every named term (``"loss"`` if ``loss_fn`` returns a tensor), its
    mean over each stretch of ``log_every`` steps, plus ``"total"`` when there are several terms.
    """
    runtime.flush_denormals()
    for group in optimizer.param_groups:  # every stage restarts at the groups' own lr
        group["lr"] = group.setdefault("initial_lr", group["lr"])
    milestones = set(milestones)
    autocast = autocast or nullcontext()
    device = data.x.device
    log_every, running, curves = max(1, steps // 50), {}, {}
    bar = tqdm(total=steps, desc=desc, disable=not progress, leave=False, mininterval=0.5)
    for step, idx in enumerate(batches(len(data), batch_size, steps, generator, device)):
        if step in milestones:  # step-wise lr schedule, restarted at every stage
            for group in optimizer.param_groups:
                group["lr"] *= lr_decay
        batch = data.batch(idx, masks)
        replayed = replay(len(idx), generator) if replay is not None else None
        replayed = replayed.batch(None, masks) if replayed is not None else None
        if augment:  # replayed images are augmented like current ones
            batch.x = augment_batch(batch.x, generator)
            if replayed is not None and replayed.x.dim() == 4:
                replayed.x = augment_batch(replayed.x, generator)
        with autocast:
            loss, terms = total_loss(loss_fn(batch, replayed))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if after_step is not None:
            after_step()
        if len(terms) > 1:
            terms = {**terms, "total": loss}
        for name, value in terms.items():
            running[name] = running.get(name, 0) + value.detach().float()
        if (step + 1) % log_every == 0:  # one host sync per log_every steps
            for name, value in running.items():
                curves.setdefault(name, []).append(value.item() / log_every)
            running = {}
        bar.update()
    bar.close()
    return curves
