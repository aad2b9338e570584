"""DER (Yan, Xie & He, CVPR 2021): Dynamically Expandable Representation (not Dark Experience Replay).

A new feature extractor per task, the old ones frozen (``expandable.ExpandableNet``), trained on the new
data plus the exemplar memory (``Rehearsal``) with

    L = CE(H_t(Φ_t(x)), y) + λ_a · CE(H^a_t(F_t(x)), y^a) [+ λ_s · L_S],

Φ_t = [F_1, …, F_t], y^a = ``aux_targets(y, n_old)`` (old classes → 0, new class c → c − n_old + 1;
from the second task on), λ_a = 1 (official ``incmodel.py``, PyCIL ``der.py``: ``loss_ce + loss_aux``).
After each task t ≥ 1 the head is re-initialised and re-trained alone on a class-balanced subset of
memory ∪ new data (official ``decouple`` block, Rhyssiyan/DER-ClassIL.pytorch @ dd4af618): CE on
logits / T, T = 5, SGD lr 0.1 momentum 0.9 wd 5e-4, 30 epochs, ×0.1 at 15. Departure: the official
loader augments the images; here the network is frozen, so the features are computed once, unaugmented,
and only the head trains on them. PyCIL (@ 87cc4110) has no such step: it applies WA's weight aligning
instead (``balanced=False`` + the ``wa`` method's idea). Then herding on Φ_t rebuilds the memory
(official order). Parameter counts per task go to ``report()``.

``prune=True`` adds channel masks, the sparsity loss λ_s·L_S and pruning (``clcourse.masks``): THIS
COURSE'S IMPLEMENTATION OF THE PAPER'S DESCRIPTION (Yan et al. 2021, §3.3), NOT THE AUTHORS' CODE, which
was never released; s_max = 400 is HAT's (Serrà et al., ICML 2018); λ_s and the threshold are this
course's choices.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.scenarios import TensorSet
from ..loop import steps_for
from ..expandable import ExpandableNet
from ..masks import hat_scale
from ..memory import extract_features
from ..models import make_backbone
from .base import Arg
from .rehearsal import Rehearsal

_MASKS = "this course's implementation of Yan et al. 2021 §3.3, not the authors' code"


def aux_targets(y: torch.Tensor, n_old: int) -> torch.Tensor:
    """The auxiliary head's targets: 0 for an old class (unit < n_old), c − n_old + 1 for a new
    class c; a new LongTensor (``y`` unchanged). ``n_old``: an int >= 0 (not a bool)."""
    if isinstance(n_old, bool) or not isinstance(n_old, int) or n_old < 0:
        raise ValueError(f"n_old must be an int >= 0, got {n_old!r}")
    y = y.long()
    return torch.where(y >= n_old, y - n_old + 1, torch.zeros_like(y))


def balanced_subset(y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Indices of an equal number of examples of every class in ``y`` (the smallest class's count),
    each class's drawn at random with ``generator`` (official ``construct_balanced_subset``)."""
    classes, counts = y.unique(return_counts=True)
    m = int(counts.min())
    picks = []
    for c in classes.tolist():
        idx = (y == c).nonzero().flatten()
        picks.append(idx[torch.randperm(len(idx), generator=generator, device=idx.device)[:m]])
    return torch.cat(picks)


class DER(Rehearsal):
    name = "der"
    arguments = {
        "aux_weight": Arg(1.0, "λ_a, weight of the auxiliary loss", "official incmodel.py; PyCIL der.py",
                          low=0.0),
        "balanced": Arg(True, "re-train the head on a class-balanced subset after each task",
                        "official `decouple` block (PyCIL: none, WA instead)"),
        "balanced_epochs": Arg(30, "epochs of the balanced re-training (lr ×0.1 at half)",
                               "official decouple: 30 epochs, ×0.1 at 15", low=1),
        "T": Arg(5.0, "temperature of the balanced re-training's CE", "official decouple (T = 5)",
                 low=1e-3, high=1e3),
        "reuse_head": Arg(False, "copy the old head into the new one's first columns",
                          "official reuse_oldfc: False; PyCIL: True"),
        "prune": Arg(False, f"channel masks, sparsity loss and pruning ({_MASKS})", "Yan et al. 2021 §3.3"),
        "s_max": Arg(400.0, "HAT's largest gate scale", "Serrà et al. 2018 (DER's: UNVERIFIED)", low=1.0),
        "sparsity": Arg(1.0, "λ_s, weight of the sparsity loss L_S", f"{_MASKS}: a course choice",
                        low=0.0),
        "threshold": Arg(0.5, "a channel whose gate σ(s_max·e) is below it is pruned",
                         f"{_MASKS}: a course choice", low=0.0, high=1.0),
        "compensate": Arg(True, "HAT's gradient compensation for the gates",
                          "Serrà et al. 2018 §2.5 (DER's use: UNVERIFIED)"),
    }

    @classmethod
    def make_model(cls, settings, input_shape, scenario):
        a = cls.resolve_args(settings, settings.method_args)
        return ExpandableNet(make_backbone(settings.model, input_shape, settings.hidden),
                             input_shape[0], gated=a["prune"], s_max=a["s_max"],
                             compensate=a["compensate"], reuse_head=a["reuse_head"])

    def before_task(self, task):
        super().before_task(task)
        if task.id > 0:
            self.model.add_extractor()
            self.model.set_aux(self.scenario.sizes[task.id])
        self.step = 0
        self.per_epoch = steps_for(len(self.train_set(task)), self.settings.batch_size)[1]

    def loss(self, batch, replay=None):
        net = self.model
        if self.args["prune"]:
            net.newest.set_scale(hat_scale(self.step % self.per_epoch + 1, self.per_epoch,
                                           self.args["s_max"]))
        feats = net.features(batch.x)
        terms = {"ce": F.cross_entropy(net.head(feats)[:, :self.n_seen], batch.y)}
        if self.task.id > 0:
            aux = net.aux_head(feats[:, -net.d:])
            terms["aux"] = self.args["aux_weight"] * F.cross_entropy(aux, aux_targets(batch.y, self.n_old))
        if self.args["prune"]:
            terms["sparsity"] = self.args["sparsity"] * net.newest.sparsity()
        return terms

    def after_step(self):
        super().after_step()
        self.step += 1
        if self.args["prune"]:
            self.model.newest.clamp_gates()

    def after_task(self, task):
        if self.args["prune"]:
            self.model.newest.prune(self.args["threshold"])
        if task.id > 0 and self.args["balanced"]:
            self.retrain_head(task)
        super().after_task(task)  # herding on the concatenated features (Rehearsal)

    def balanced_set(self, task) -> TensorSet:
        """Memory ∪ the task's data, every class cut to the smallest class's count (drawn once)."""
        data = TensorSet.cat([self.scenario.train_set(task), self.memory.as_tensorset()])
        idx = balanced_subset(data.y, self.rng(task, "balanced"))
        return TensorSet(data.x[idx], data.y[idx], data.t[idx])

    def retrain_head(self, task):
        data = self.balanced_set(task)
        feats = TensorSet(extract_features(self.model.features, data.x), data.y, data.t)
        self.model.reset_head()
        head, T, n = self.model.head, self.args["T"], self.n_seen
        per_epoch, epochs = steps_for(len(feats), self.settings.batch_size)[1], self.args["balanced_epochs"]
        opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        self.run_stage("balanced", feats, lambda b, r: F.cross_entropy(head(b.x)[:, :n] / T, b.y),
                       opt, steps=epochs * per_epoch, milestones=[epochs // 2 * per_epoch])

    def report(self) -> dict:
        return {"parameters": self.model.parameter_count(), "extractors": len(self.model.extractors)}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "structure": self.model.structure()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.model.rebuild(state["structure"])
