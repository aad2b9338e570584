"""iCaRL (Rebuffi, Kolesnikov, Sperl & Lampert, CVPR 2017, Alg. 1-5): exemplars, herding, NME. Lesson 04.

Incremental classifier and representation learning, for class-IL, on an exemplar memory
(``clcourse.memory``).

Representation learning (Alg. 3) on the new task's data plus every exemplar kept, with sigmoid outputs
and binary cross-entropy over the units seen so far:

    L(θ) = −Σ_y [ ŷ_y log σ(z_y) + (1 − ŷ_y) log(1 − σ(z_y)) ],
    ŷ_y = σ(z*_y / T) for the old units y (the frozen previous network's output: distillation),
    ŷ_y = [y = label] for the new task's units (one-hot),

summed over units, averaged over the batch (van de Ven's code from commit 26f00db, 2019-05-17; at
86802a8, the code of "Three scenarios" Table 4, the mean over the units too: a constant factor C on the
whole loss, which Adam's step size barely feels — unlike LwF's ``kd_reduction``, where it reweighs two
terms). Rebuffi et al. have no temperature (T = 1); van de Ven's
iCaRL (``--bce --bce-distill``) divides the old logits by its KD temperature (T = 2). ``variant="ce-kd"``
is the form several toolkits use (PyCIL's ``icarl.py``): softmax cross-entropy + ``losses.distillation``
on the old units at T (no T²).

Then (Alg. 4-5): the memory shrinks to m = K / classes per class, keeping the first m in herding order,
and herding picks m exemplars of each new class. Classification (Alg. 1): the nearest mean of exemplars
(NME), the class means recomputed with the current network after every task; the linear head is
reported too, as the extra matrix "linear" (lesson 04 compares them).

The memory, training on data + exemplars and herding after each task come from ``rehearsal.Rehearsal``
(shared with BiC, WA and DER). Hooks here: ``before_task`` (teacher), ``loss``, ``after_task`` (means),
``predict`` (NME), ``extra_predictions``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import distillation
from ..memory import nme_logits
from ..models import Frozen
from .base import Arg
from .rehearsal import Rehearsal


def icarl_targets(labels: torch.Tensor, n_units: int, old_logits: torch.Tensor | None,
                  T: float = 1.0) -> torch.Tensor:
    """iCaRL's BCE targets (B, n_units): one-hot labels, with the first ``old_logits.shape[1]`` units
    replaced by the old network's sigmoid outputs σ(z*/T) (Rebuffi et al. 2017, Alg. 3)."""
    targets = F.one_hot(labels, n_units).to(old_logits.dtype if old_logits is not None else torch.float)
    if old_logits is not None:
        targets[:, :old_logits.shape[1]] = torch.sigmoid(old_logits / T)
    return targets


class ICaRL(Rehearsal):
    name = "icarl"
    arguments = {
        "variant": Arg("bce", "'bce': sigmoid + BCE with distilled targets (the paper); 'ce-kd': "
                       "softmax CE + KD on the old units", "Rebuffi et al. 2017; PyCIL icarl.py",
                       choices=("bce", "ce-kd")),
        "T": Arg(2.0, "temperature of the old network's outputs (targets σ(z*/T), or KD at T)",
                 "van de Ven et al. 2022 code (KD_temp = 2); Rebuffi et al.: none (T = 1)",
                 low=1e-3, high=1e3),
    }

    def __init__(self, model, scenario, settings, stream=None):
        super().__init__(model, scenario, settings, stream)
        self.means, self.teacher = None, None

    def before_task(self, task):
        super().before_task(task)
        self.teacher = Frozen.copy_of(self.model) if task.id > 0 else None

    def loss(self, batch, replay=None):
        # Class-IL: the active units are exactly the first n_old + new ones.
        z = self.outputs(batch)[:, :self.n_seen]
        old = None
        if self.teacher is not None:
            with torch.no_grad():
                old = self.teacher(batch.x)[:, :self.n_old]
        if self.args["variant"] == "ce-kd":
            terms = {"ce": F.cross_entropy(z, batch.y)}
            if old is not None:
                terms["kd"] = distillation(z[:, :self.n_old], old, self.args["T"], t_squared=False)
            return terms
        targets = icarl_targets(batch.y, z.shape[1], old, self.args["T"])
        bce = F.binary_cross_entropy_with_logits(z, targets, reduction="none").sum(1).mean()
        return {"bce": bce}

    def after_task(self, task):
        super().after_task(task)  # the memory (Rehearsal)
        self.update_means()

    def update_means(self):
        """Class means of the exemplars under the current network (Alg. 1); images that may be
        flipped (the CIFAR benchmarks' augmentation) average in their mirror images."""
        self.means = self.memory.class_means(self.features, flip=bool(self.settings.augment),
                                             n_units=self.scenario.n_outputs)

    def predict(self, x, t):
        if self.means is None:  # after a resume: the weights are loaded by now
            self.update_means()
        return nme_logits(self.features(x), self.means)

    def extra_predictions(self) -> dict:
        return {"linear": lambda x, t: self.model(x)}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.means = None  # recomputed when needed, with the weights that are loaded after this
