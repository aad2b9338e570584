"""WA (Zhao et al., CVPR 2020): distillation, then the new classes' weight norms aligned to the old. Lesson 05.

Zhao, Xiao, Gan, Zhang & Xia, "Maintaining Discrimination and Fairness in Class Incremental Learning",
CVPR 2020: weight aligning.

Training (``rehearsal.Distilled``): new data + exemplars with

    L = λ · KD_T(z[:, :n_old], z*[:, :n_old]) + (1 − λ) · CE(z, y),   λ = n_old / n, T = 2,

on a linear head without bias (``bias=False``; PyCIL keeps it), whose weights are clipped to ≥ 0
after every optimiser step from the first task on (``clip``; the DER authors' WA,
Rhyssiyan/DER-ClassIL.pytorch ``inclearn/models/align.py`` at dd4af618, ``p.data.clamp_(0.0)``;
PyCIL has no clipping). With ReLU features ≥ 0 and weights ≥ 0 every product f_j·w_kj is ≥ 0, so a
logit grows with its row's norm: ``calibration.positive_fraction`` measures how far that holds.

After each task t ≥ 1 (``align``): the new rows w_k, k = n_old … n−1, are multiplied by

    γ = mean_{k < n_old} ‖w_k‖₂ / mean_{n_old ≤ k < n} ‖w_k‖₂

(``calibration.weight_align``; PyCIL ``IncrementalNet.weight_align`` at 87cc4110), over the rows of
the classes seen so far only: with a single head (the paper profile's ``head="single"``) the rows of
unseen classes neither count nor change. The aligned weights stay in the network, so the next task's
teacher is aligned too (DER-ClassIL scales the teacher's logits instead: the same numbers). PyCIL
aligns a second time in ``after_task`` (γ ≈ 1); here once. Herding reads features only, so
alignment does not change the memory.

``report()``: {"gamma": [...]}, one entry per task, None for task 0 (nothing to align); with
``align=False`` the γ WA would have applied (nothing is changed). Extra matrix "unaligned": the head
with the newest rows as they were before this task's alignment (kept in the state: exact on resume).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..calibration import weight_align
from ..models import GrowingHead, SingleHead, build_model
from .base import Arg
from .rehearsal import Distilled


class WA(Distilled):
    name = "wa"
    arguments = {
        "bias": Arg(False, "keep a bias in the linear head (WA does not align it)",
                    "DER-ClassIL WA config use_bias: False; PyCIL wa.py keeps it (True)"),
        "clip": Arg(True, "clamp the head's weights of seen classes to >= 0 after every step",
                    "DER-ClassIL inclearn/models/align.py; PyCIL: none"),
        "align": Arg(True, "multiply the new rows by γ after every task t >= 1",
                     "Zhao et al. 2020; PyCIL IncrementalNet.weight_align"),
    }

    def __init__(self, model, scenario, settings, stream=None):
        super().__init__(model, scenario, settings, stream)
        self.gamma, self.unaligned = [], None

    @classmethod
    def make_model(cls, settings, input_shape, scenario):
        model = build_model(settings, input_shape, scenario)
        bias = cls.resolve_args(settings, settings.method_args)["bias"]
        head, dim = model.head, model.backbone.out_dim
        if isinstance(head, GrowingHead):
            model.head = GrowingHead(dim, bias=bias)
        elif isinstance(head, SingleHead):
            model.head = SingleHead(dim, head.out_features, bias=bias)
        else:
            raise ValueError(f"wa needs a single or growing head, not {type(head).__name__}")
        return model

    @property
    def head(self):
        return self.model.head

    def after_step(self):
        super().after_step()
        if self.args["clip"]:
            with torch.no_grad():
                self.head.weight[:self.n_seen].clamp_(min=0)

    def after_task(self, task):
        super().after_task(task)  # the memory
        if task.id == 0:
            self.gamma, self.unaligned = [None], None
            return
        weight = self.head.weight
        with torch.no_grad():
            aligned, gamma = weight_align(weight[:self.n_seen], self.n_old)
            self.unaligned = weight[self.n_old:self.n_seen].clone()
            if self.args["align"]:
                weight[self.n_old:self.n_seen] = aligned[self.n_old:]
        self.gamma = self.gamma[:task.id] + [gamma.item()]

    def unaligned_logits(self, x, t):
        if self.unaligned is None:
            return self.model(x)
        lo = self.scenario.offsets[self.task.id]
        weight = self.head.weight.detach().clone()
        weight[lo:lo + len(self.unaligned)] = self.unaligned
        return F.linear(self.model.features(x), weight, self.head.bias)

    def extra_predictions(self) -> dict:
        return {"unaligned": self.unaligned_logits}

    def report(self) -> dict:
        return {"gamma": list(self.gamma)}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "gamma": list(self.gamma), "unaligned": self.unaligned}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.gamma = list(state["gamma"])
        u = state["unaligned"]
        self.unaligned = None if u is None else u.to(self.device)
