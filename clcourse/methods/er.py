"""Experience replay (ER) on a tiny episodic memory: Chaudhry, Rohrbach, Elhoseiny, Ajanthan, Dokania,
Torr & Ranzato 2019, "On tiny episodic memories in continual learning" (arXiv:1902.10486), as the LFD
authors' code uses it (HaitaoWen/PFCL ``scheme.py::ER``, ``sampler.py::MemoryBatchSampler``).

After every task, m examples of each of its classes are kept (``per_class``; random by default, herding
optional) in a memory keyed by (task, class) (``clcourse.memory.TaskMemory``): in domain-IL the same
units come back in every task, and each task keeps its own m of them. On task t every step draws
``replay_batch`` distinct exemplars of tasks < t and trains on the concatenation of the current batch
B and the replayed batch M, one cross-entropy over both (each example on its own task's active units):

    L = 1/(|B| + |M|) · [ Σ_{(x,y)∈B} CE(f(x), y) + Σ_{(x,y)∈M} CE(f(x), y) ],

logged as two terms, "ce" (the first sum) and "replay" (the second), which add up to that mean. One
forward pass over the concatenation (batch-norm sees both, as in Chaudhry et al.'s ER).

PFCL has both ways of mixing the memory in: with ``--mcat`` every batch gets ``--mbs`` (10) memory
examples next to ``--bs`` (10) current ones, as here; its scripts (``scripts/er.sh``, ``er-pfcl.sh``)
run without it, so the memory joins the task's training set and each exemplar is seen once per epoch
among the task's examples: ``replay_batch=0`` does that (``train_set``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.scenarios import TensorSet, masked_logits
from ..loop import steps_for
from ..memory import SELECTIONS, TaskMemory
from .base import Arg
from .rehearsal import KeepsMemory


class ER(KeepsMemory):
    """Experience replay: every batch of task t is trained together with exemplars of tasks < t."""

    name = "er"
    arguments = {
        "per_class": Arg(1, "exemplars kept per class of every task (examples)",
                         "PFCL scripts `--memory 1`; Chaudhry et al. 2019 (1 per class)", low=1),
        "selection": Arg("random", "how each task's exemplars are chosen",
                         "PFCL scheme.py::ER (random; herding with `--opt herding`)",
                         choices=SELECTIONS),
        "replay_batch": Arg(lambda s: s.batch_size,
                            "exemplars replayed next to every batch (0: the memory joins the "
                            "task's training set instead, PFCL's scripts)",
                            "Chaudhry et al. 2019 and PFCL `--mbs 10` (= `--bs`): the batch size",
                            low=0),
    }

    def __init__(self, model, scenario, settings, stream=None):
        super().__init__(model, scenario, settings, stream)
        self.memory = TaskMemory(self.args["per_class"], self.args["selection"])

    def train_set(self, task) -> TensorSet:
        data = super().train_set(task)
        kept = self.memory.as_tensorset()
        if self.args["replay_batch"] == 0 and kept is not None:
            return TensorSet.cat([data, kept])
        return data

    def replay(self, n, generator):
        replayed = super().replay(n, generator)
        if replayed is not None or self.args["replay_batch"] == 0:
            return replayed
        return self.memory.sample(self.args["replay_batch"], generator)

    def loss(self, batch, replay=None):
        if replay is None or len(replay) == 0:
            return super().loss(batch, replay)
        n, m = len(batch), len(replay)
        z = self.model(torch.cat([batch.x, replay.x]))
        batch.logits = z[:n]  # Method.loss (and any other term) reuses the current batch's logits
        terms = super().loss(batch, replay)
        replayed = F.cross_entropy(masked_logits(z[n:], replay.mask), replay.y, reduction="sum")
        return {**terms, "ce": terms["ce"] * (n / (n + m)), "replay": replayed / (n + m)}

    def after_task(self, task):
        super().after_task(task)
        data = self.scenario.train_set(task)
        self.memory.add_task(task.id, data.x, data.y,
                             self.features if self.args["selection"] == "herding" else None,
                             generator=self.rng(task, "memory"))

    def memory_stage(self, name, loss_fn, optimizer, epochs) -> list:
        """An extra stage (``run_stage``) of ``epochs`` over the memory of every task kept, lr ×0.1
        at ½ and ¾ of them, in train mode (batch-norm statistics are the caller's to keep: LFD
        evaluates through ``functional_call`` on copies); ``loss_fn`` on the whole memory
        [before, after] it. LFD's direction search and λ fit (PFCL's stages run in train mode)."""
        data, masks = self.memory.as_tensorset(), self.scenario.mask_table(self.task.id, self.device)
        whole, per_epoch = data.batch(None, masks), steps_for(len(data), self.settings.batch_size)[1]
        mode = self.model.training
        self.model.train()  # PFCL's stages run in train mode
        try:
            with torch.no_grad():
                before = loss_fn(whole, None).item()
            self.run_stage(name, data, loss_fn, optimizer, steps=epochs * per_epoch, masks=masks,
                           milestones=[epochs // 2 * per_epoch, 3 * epochs // 4 * per_epoch])
            with torch.no_grad():
                return [before, loss_fn(whole, None).item()]
        finally:
            self.model.train(mode)
