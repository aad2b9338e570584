"""The three scenarios of van de Ven & Tolias (2019; van de Ven, Tuytelaars & Tolias 2022): which output units exist, which are
active, and which unit is the right answer.

Each task's classes occupy a *block* of output units:

* **task-IL**: one block per task (``sum of task sizes`` units). Training and evaluation on task j use
  only block j — the task identity is given, so this is a multi-head network.
* **domain-IL**: every task shares one block (``max task size`` units), all of them always active;
  the answer is the label's position inside its task (split MNIST: "first or second digit").
* **class-IL**: one block per task, like task-IL, but after training on task t the active units are
  the blocks of *all tasks seen so far*, in training and in evaluation (the "all-so-far" convention of
  the 2019 code and of iCaRL); the task identity is never used.

The engine asks the scenario for these masks; no method computes them itself.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from ..config import SCENARIOS
from .streams import Stream, Task


@dataclass
class TensorSet:
    """Training or test data as the engine sees it: inputs, target *units*, task id per example.

    ``soft``: optional teacher logits per example (a replay source's soft targets).
    """
    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    soft: Optional[torch.Tensor] = None

    def __len__(self):
        return len(self.y)

    def batch(self, idx=None, masks: Optional[torch.Tensor] = None) -> "Batch":
        """The examples ``idx`` (all if None) with their masks: ``masks[t]`` for each example's
        own task id, from the scenario's mask table (None: no mask, every unit active)."""
        pick = (lambda v: v) if idx is None else (lambda v: v[idx])
        t = pick(self.t)
        soft = pick(self.soft) if self.soft is not None else None
        return Batch(pick(self.x), pick(self.y), t, masks[t] if masks is not None else None, soft)

    @staticmethod
    def cat(sets: list) -> "TensorSet":
        x, y, t = (torch.cat([getattr(s, k) for s in sets]) for k in ("x", "y", "t"))
        softs = [s.soft for s in sets]
        if all(v is None for v in softs):
            return TensorSet(x, y, t)
        if any(v is None for v in softs):
            raise ValueError("cannot concatenate sets with and without soft targets")
        width = max(v.shape[1] for v in softs)  # teachers of different ages: pad with -inf units
        softs = [torch.nn.functional.pad(v, (0, width - v.shape[1]), value=float("-inf"))
                 for v in softs]
        return TensorSet(x, y, t, torch.cat(softs))


@dataclass
class Batch:
    """One mini-batch as a method's ``loss`` sees it.

    ``mask`` (B, units) bool: the units active for each example, from the scenario; ``soft``:
    teacher logits of replayed examples, when their source gave them; ``logits``: the model's
    output for ``x``, filled once per step by ``Method.outputs`` so that every term shares it;
    ``features``: the backbone's output, where a method keeps it next to the logits (COIL);
    ``teacher``: the frozen previous network's logits, computed once per step (``Distilled``).
    """
    x: torch.Tensor
    y: torch.Tensor
    t: torch.Tensor
    mask: Optional[torch.Tensor] = None
    soft: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    features: Optional[torch.Tensor] = None
    teacher: Optional[torch.Tensor] = None

    def __len__(self):
        return len(self.y)


class Scenario:
    def __init__(self, kind: str, stream: Stream):
        if kind not in ("task", "domain", "class"):
            raise ValueError(f"unknown scenario {kind!r}; valid scenarios: {', '.join(SCENARIOS)}")
        self.kind = kind
        self.n_tasks = len(stream.tasks)
        sizes = [len(task.classes) for task in stream.tasks]
        if kind == "domain":
            self.offsets = [0] * self.n_tasks
            self.n_outputs = max(sizes)
        else:
            self.offsets = [sum(sizes[:t]) for t in range(self.n_tasks)]
            self.n_outputs = sum(sizes)
        self.sizes = sizes

    def block(self, t: int) -> range:
        """The output units of task t's classes."""
        return range(self.offsets[t], self.offsets[t] + self.sizes[t])

    def units_seen(self, t: int) -> int:
        """How many output units exist once tasks 0..t have arrived (what a growing head needs)."""
        return self.n_outputs if self.kind == "domain" else self.offsets[t] + self.sizes[t]

    def to_units(self, task: Task, y: torch.Tensor) -> torch.Tensor:
        """Original labels of ``task`` -> index of their output unit."""
        size = max(int(max(task.classes)), int(y.max()) if len(y) else 0) + 1
        lut = torch.full((size,), -1, dtype=torch.long, device=y.device)
        lut[torch.tensor(task.classes, device=y.device)] = torch.arange(
            self.offsets[task.id], self.offsets[task.id] + len(task.classes), device=y.device)
        units = lut[y]
        if (units < 0).any():
            raise ValueError(f"task {task.id} holds labels outside its classes {task.classes}")
        return units

    def active(self, trained_upto: int, t: int) -> torch.Tensor:
        """Bool mask (n_outputs,) of the units that compete for an example of task t, once the
        model has been trained up to task ``trained_upto``."""
        return active_units(self.kind, self.sizes, trained_upto, t)

    def mask_table(self, trained_upto: int, device=None) -> torch.Tensor:
        """(n_tasks, n_outputs) bool: row j = ``active(trained_upto, j)``. Indexing it with a batch's
        task ids gives the batch's masks in one gather."""
        rows = [self.active(trained_upto, j) for j in range(self.n_tasks)]
        return torch.stack(rows).to(device)

    def train_set(self, task: Task) -> TensorSet:
        t = torch.full_like(task.y_train, task.id)
        return TensorSet(task.x_train, self.to_units(task, task.y_train), t)

    def test_set(self, task: Task) -> TensorSet:
        t = torch.full_like(task.y_test, task.id)
        return TensorSet(task.x_test, self.to_units(task, task.y_test), t)


def active_units(kind: str, sizes, trained_upto: int, t: int) -> torch.Tensor:
    """The logit mask of a scenario, from the task sizes alone (the rule of the module docstring).

    ``sizes[j]`` = number of classes of task j. Returns a bool tensor over the scenario's units:
    domain-IL ``max(sizes)`` units, all True; task-IL ``sum(sizes)`` units, True on task t's block;
    class-IL ``sum(sizes)`` units, True on the blocks of tasks 0..trained_upto.
    Counts are ints: a bool among ``sizes``, ``trained_upto`` or ``t`` raises TypeError (Python would
    read True as 1). A task of size 0 has an empty block: no unit, an all-False task-IL mask.
    """
    if any(isinstance(v, bool) for v in [*sizes, trained_upto, t]):
        raise TypeError(f"sizes, trained_upto and t are counts, not bools: got {list(sizes)}, "
                        f"{trained_upto}, {t}")
    if kind == "domain":
        return torch.ones(max(sizes), dtype=torch.bool)
    mask = torch.zeros(sum(sizes), dtype=torch.bool)
    if kind == "task":
        mask[sum(sizes[:t]):sum(sizes[:t + 1])] = True
    elif kind == "class":
        mask[:sum(sizes[:trained_upto + 1])] = True
    else:
        raise ValueError(f"unknown scenario {kind!r}; valid scenarios: {', '.join(SCENARIOS)}")
    return mask


def masked_logits(logits: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Inactive units get -inf, so softmax, cross-entropy and argmax see only the active ones.

    ``mask`` may be wider than ``logits`` (a growing head that has not yet grown its later units).
    """
    return logits.masked_fill(~mask[..., :logits.shape[-1]], float("-inf"))
