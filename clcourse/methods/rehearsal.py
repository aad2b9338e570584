"""Rehearsal on an exemplar memory: what iCaRL (lesson 04), BiC, WA and DER (lesson 05) share.

Rebuffi, Kolesnikov, Sperl & Lampert, CVPR 2017, Alg. 2-5: on task t the network trains on the new
task's data **plus every exemplar kept** (``train_set``); after the task the memory shrinks to
m = K / classes per class and herding picks m exemplars of each new class on the current network's
features (``after_task``; ``clcourse.memory``). Class-IL only: the memory exists to keep old classes
in the softmax.

``Distilled`` adds the loss BiC's first stage and WA share (Wu et al., CVPR 2019, §3; Zhao et al.,
CVPR 2020, §3; PyCIL ``models/bic.py`` and ``models/wa.py`` at 87cc4110):

    L = λ · KD_T(z[:, :n_old], z*[:, :n_old]) + (1 − λ) · CE(z, y),      λ = n_old / n,

n_old the classes seen before this task, n all classes seen now, z* the frozen previous network's
logits, KD_T ``losses.distillation`` at T = 2 without T² (both codes). The more old classes, the
more the old network's answers weigh.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.scenarios import TensorSet
from ..losses import distillation
from ..memory import SELECTIONS, ExemplarMemory
from ..models import Frozen
from .base import Arg, Method


class KeepsMemory(Method):
    """A method with ``self.memory`` (an ``ExemplarMemory`` or ``TaskMemory``): the features herding
    reads, and the memory in the checkpoint. Shared by ``Rehearsal`` and ER (``er.py``)."""

    def features(self, x):
        """The representation herding and NME work on (DER: all extractors, concatenated)."""
        return self.model.features(x)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "memory": self.memory.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.memory.load_state_dict(state["memory"], device=self.device)


class Rehearsal(KeepsMemory):
    """New data + the exemplar memory; herding after every task. Not a method on its own."""

    name = "rehearsal"
    arguments = {
        "budget": Arg(2000, "exemplars kept in all (m = budget / classes seen per class)",
                      "Rebuffi et al. 2017 (K = 2000); van de Ven & Tolias 2019 Table 4", low=1),
        "selection": Arg("herding", "how exemplars are chosen", "Rebuffi et al. 2017 Alg. 4",
                         choices=SELECTIONS),
    }

    def __init__(self, model, scenario, settings, stream=None):
        super().__init__(model, scenario, settings, stream)
        if scenario.kind != "class":
            raise ValueError(f"{self.name} is a class-incremental method: use --scenario class")
        if self.args["budget"] < scenario.n_outputs:  # say so now, not after the first task
            raise ValueError(f"{self.name}: a budget of {self.args['budget']} exemplars cannot keep "
                             f"one of each of the stream's {scenario.n_outputs} classes")
        self.memory = ExemplarMemory(self.args["budget"], selection=self.args["selection"])
        self.n_old = 0

    def before_task(self, task):
        super().before_task(task)
        self.n_old = self.scenario.offsets[task.id]  # units of the classes seen before this task

    @property
    def n_seen(self) -> int:
        """Units of every class seen up to and including the current task."""
        return self.n_old + self.scenario.sizes[self.task.id]

    def train_set(self, task) -> TensorSet:
        current = super().train_set(task)
        kept = self.memory.as_tensorset()
        return current if kept is None else TensorSet.cat([current, kept])

    def after_task(self, task):
        super().after_task(task)
        data = self.scenario.train_set(task)
        self.memory.add_classes(data.x, data.y, self.features,
                                classes=list(self.scenario.block(task.id)), t=task.id,
                                generator=self.rng(task, "memory"))


class Distilled(Rehearsal):
    """Rehearsal with λ·KD + (1 − λ)·CE, λ = n_old / n (BiC's stage 1, WA). Not a method on its own."""

    name = "distilled"
    arguments = {
        "T": Arg(2.0, "distillation temperature (no T² factor)",
                 "Wu et al. 2019 §3.1 (T = 2); PyCIL bic.py, wa.py (T = 2, no T²)", low=1e-3, high=1e3),
    }

    def before_task(self, task):
        super().before_task(task)
        self.teacher = Frozen.copy_of(self.model) if task.id > 0 else None

    def teacher_logits(self, x: torch.Tensor) -> torch.Tensor:
        """The previous network's logits on its own classes (BiC corrects them first)."""
        return self.teacher(x)[:, :self.n_old]

    def loss(self, batch, replay=None):
        z = self.outputs(batch)[:, :self.n_seen]  # class-IL: exactly the units seen so far
        ce = F.cross_entropy(z, batch.y)
        if self.teacher is None:
            return {"ce": ce}
        if batch.teacher is None:
            with torch.no_grad():
                batch.teacher = self.teacher_logits(batch.x)
        old = batch.teacher
        lam = self.n_old / self.n_seen
        kd = distillation(z[:, :self.n_old], old, self.args["T"], t_squared=False)
        return {"ce": (1 - lam) * ce, "kd": lam * kd}
