"""BiC (Wu et al., CVPR 2019): distillation, then the new classes' logits rescaled on a held-out set. Lesson 05.

Wu, Chen, Wang, Ye, Liu, Guo & Fu, "Large Scale Incremental Learning", CVPR 2019: bias correction.

Stage 1 (``rehearsal.Distilled``): train on the new data + exemplars with

    L = λ · KD_T(z[:, :n_old], z*[:, :n_old]) + (1 − λ) · CE(z, y),   λ = n_old / n, T = 2,

except a class-balanced validation set, held out at every task t ≥ 1: v = int(val_fraction · K /
n_old) images (at least 1) of each new class's training data and of each old class's exemplars
(PyCIL ``models/bic.py`` at 87cc4110, ``val_samples_per_class``; ``calibration.balanced_split``). The
held-out new-class images may still be herded into the memory afterwards, as in PyCIL.

Stage 2 (``after_task``, t ≥ 1): the network frozen and in eval mode, its logits on the validation set
computed once; the newest task's logits o_k become q_k = α·o_k + β, (α, β) fitted from (1, 0) by SGD
on CE(q, y) + 0.05·β² (``calibration.fit_bias_correction``; official code wuyuebupt/
LargeScaleIncrementalLearning ``resnet.py`` at 7f687a32: lr 0.1, momentum 0.9, 200 epochs,
``0.1 * tf.nn.l2_loss(gamma)``). PyCIL runs stage 2 with the network in train() mode, so 170 epochs
on the small validation set overwrite every batch-norm running statistic; here they stay as stage 1
left them. Stage 2 only reads features, herding only reads features: their order does not matter.

Which logits are corrected. Official (default): (α_t, β_t) corrects only task t's logits, at task t's
evaluation and in the next task's teacher (the previous model's newest group passes through it); later
those logits are used uncorrected — the paper's "correct the new classes only". ``keep_all=True``
(PyCIL's ``IncrementalNetWithBias``): every task k keeps its (α_k, β_k) in the forward pass forever —
in the student, the teacher, stage 2's logits and at prediction. Task 0 has none: (α_0, β_0) = (1, 0).

``predict``: the corrected logits; extra matrix "uncorrected": the raw head. ``report``: α, β per task.
"""
from __future__ import annotations

import torch

from ..calibration import balanced_split, bias_correction, fit_bias_correction
from ..data.scenarios import TensorSet
from ..memory import extract_features
from .base import Arg
from .rehearsal import Distilled


class BiC(Distilled):
    name = "bic"
    arguments = {
        "val_fraction": Arg(0.1, "share of the budget held out for stage 2: int(val_fraction·K/n_old) "
                            "images per class", "PyCIL models/bic.py (split_ratio 0.1); official "
                            "imagenet_main.py (≈ 9:1 train:val per class)", low=0.0, high=1.0),
        "bias_steps": Arg(200, "SGD steps of stage 2, each on the whole validation set",
                          "official resnet.py: 200 epochs (PyCIL: 170)", low=0),
        "bias_lr": Arg(0.1, "SGD learning rate of stage 2 (momentum 0.9, constant)",
                       "official resnet.py and PyCIL bic.py: 0.1", low=0.0),
        "beta_decay": Arg(0.1, "L2 on the offset β only: (beta_decay/2)·β²",
                          "official resnet.py: 0.1·tf.nn.l2_loss(gamma)", low=0.0),
        "keep_all": Arg(False, "every task's (α, β) stays in the forward pass (PyCIL); False: only "
                        "the newest task's, at its own evaluation and in the next teacher (official)",
                        "PyCIL utils/inc_net.py IncrementalNetWithBias; official resnet.py EVAL"),
    }

    def __init__(self, model, scenario, settings, stream=None):
        super().__init__(model, scenario, settings, stream)
        self.alpha, self.beta, self.validation = [], [], None
        for t in range(1, scenario.n_tasks):  # say so now, not after the first tasks
            n_old = scenario.offsets[t]
            if self.memory.m(n_old) <= self.val_per_class(n_old):
                raise ValueError(f"bic: a budget of {self.args['budget']} keeps {self.memory.m(n_old)} "
                                 f"exemplars per class at task {t + 1}: too few to hold out "
                                 f"{self.val_per_class(n_old)} for validation and train on the rest")

    def val_per_class(self, n_old: int) -> int:
        return max(1, int(self.args["val_fraction"] * self.args["budget"] / n_old))

    def correct(self, z: torch.Tensor, upto: int) -> torch.Tensor:
        """``z`` with the corrections of task ``upto`` (official) or of tasks 1..upto (keep_all)."""
        for k in (range(1, upto + 1) if self.args["keep_all"] else [upto]):
            if k >= 1:
                hi = self.scenario.offsets[k] + self.scenario.sizes[k]
                z = torch.cat([bias_correction(z[:, :hi], self.scenario.offsets[k],
                                               self.alpha[k], self.beta[k]), z[:, hi:]], 1)
        return z

    def train_set(self, task) -> TensorSet:
        data = super().train_set(task)  # new data + every exemplar
        if task.id == 0:
            self.validation = None
            return data
        held, rest = balanced_split(data.y, self.val_per_class(self.n_old),
                                    self.rng(task, "validation"))
        self.validation = TensorSet(data.x[held], data.y[held], data.t[held])
        return TensorSet(data.x[rest], data.y[rest], data.t[rest])

    def outputs(self, batch):
        if batch.logits is None and self.args["keep_all"]:  # PyCIL: old layers in the student too
            batch.logits = self.correct(self.model(batch.x), self.task.id - 1)
        return super().outputs(batch)

    def teacher_logits(self, x):
        return self.correct(super().teacher_logits(x), self.task.id - 1)

    def after_task(self, task):
        super().after_task(task)  # the memory
        if task.id == 0:
            self.alpha, self.beta = [1.0], [0.0]
            return
        # frozen: the logits once, in eval mode (batch norm on its running statistics), no grad
        z = extract_features(self.model, self.validation.x)[:, :self.n_seen]
        if self.args["keep_all"]:
            z = self.correct(z, task.id - 1)
        alpha, beta = fit_bias_correction(z, self.validation.y, self.n_old,
                                          steps=self.args["bias_steps"], lr=self.args["bias_lr"],
                                          beta_decay=self.args["beta_decay"],
                                          generator=self.rng(task, "bias"))
        self.alpha, self.beta = self.alpha[:task.id] + [alpha.item()], self.beta[:task.id] + [beta.item()]

    def predict(self, x, t):
        return self.correct(self.model(x), self.task.id)

    def extra_predictions(self) -> dict:
        return {"uncorrected": lambda x, t: self.model(x)}

    def report(self) -> dict:
        return {"alpha": list(self.alpha), "beta": list(self.beta)}

    def state_dict(self) -> dict:
        # The validation set is not kept: a resumed task draws it again from the same generator.
        return {**super().state_dict(), "alpha": list(self.alpha), "beta": list(self.beta)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.alpha, self.beta = list(state["alpha"]), list(state["beta"])
