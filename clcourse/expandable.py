"""DER's network (Yan, Xie & He, CVPR 2021, §3.1): one feature extractor per task, a head over them all.

Φ_t(x) = [F_1(x), …, F_t(x)] (t·d features); the head H_t maps Φ_t to the logits of every class seen;
the auxiliary head H^a_t maps F_t(x) alone to |new| + 1 units (all old classes in unit 0).

* ``add_extractor()``: F_t starts as a copy of F_{t−1} (weights and batch-norm buffers); F_{t−1} is
  wrapped in ``models.Frozen`` (no gradients, always in eval: its parameters and BN statistics never
  change again). Official ``network.py::_add_classes_multi_fc``; PyCIL ``inc_net.py::DERNet.update_fc``.
* The head: bias-free, a NEW layer each task, not reusing the old weights (official, ``use_bias:
  False``, ``reuse_oldfc: False``); ``reuse_head=True``: the old rows are copied into the first
  (t−1)·d columns (PyCIL, which also has a bias; the official code's ``reuse_oldfc: True``).
  The aux head is bias-free too (official ``_gen_classifier``).
* ``gated=True``: every extractor is a ``masks.GatedExtractor`` (channel masks and pruning — this
  course's implementation of the paper's description, Yan et al. 2021 §3.3, not the authors' code).
"""
from __future__ import annotations

import copy

import torch
import torch.nn as nn

from .masks import GatedExtractor, parameter_count
from .models import Frozen, GrowingHead


class ExpandableNet(nn.Module):
    """``features(x)``: the concatenated features; ``forward(x)``: the head's logits; ``aux(x)``: the
    auxiliary head's logits on the newest extractor's features."""

    def __init__(self, backbone: nn.Module, in_channels: int, gated: bool = False,
                 s_max: float = 400.0, compensate: bool = True, reuse_head: bool = False):
        super().__init__()
        first = GatedExtractor(backbone, in_channels, s_max, compensate) if gated else backbone
        self.extractors = nn.ModuleList([first])
        self.d, self.gated, self.reuse_head = backbone.out_dim, gated, reuse_head
        self.head = GrowingHead(self.d, bias=False)
        self.aux_head = None

    @property
    def newest(self) -> nn.Module:
        return self.extractors[-1]

    def features(self, x):
        return torch.cat([f(x) for f in self.extractors], dim=1)

    def forward(self, x):
        return self.head(self.features(x))

    def aux(self, x):
        """The auxiliary head on F_t(x) alone (from the second task on)."""
        return self.aux_head(self.newest(x))

    def ensure_outputs(self, n_units: int) -> None:
        self.head.grow(n_units)

    def add_extractor(self) -> None:
        """F_t from F_{t−1} (gates reset), F_{t−1} frozen; a new head over t·d features."""
        new = copy.deepcopy(self.newest)
        if self.gated:
            new.reset_gates()
        new.requires_grad_(True)
        new.train(self.training)
        for p in self.newest.parameters():
            p.grad = None  # its last step's gradients: no longer needed
        self.extractors[-1] = Frozen(self.newest)
        self.extractors.append(new)
        old = self.head
        self.head = GrowingHead(self.d * len(self.extractors), bias=False).to(old.weight.device)
        self.head.grow(old.n_units)
        if self.reuse_head:
            with torch.no_grad():
                self.head.weight[:, :old.in_dim] = old.weight

    def set_aux(self, n_new: int) -> None:
        """A fresh auxiliary head with ``n_new`` + 1 units."""
        device = self.head.weight.device
        self.aux_head = nn.Linear(self.d, n_new + 1, bias=False).to(device)

    @torch.no_grad()
    def reset_head(self) -> None:
        """Re-initialise the head in place, as ``nn.Linear.reset_parameters`` does (official
        ``_after_task`` before the balanced re-training)."""
        nn.init.kaiming_uniform_(self.head.weight, a=5 ** 0.5)

    # --- structure, for a checkpoint ------------------------------------------------------------
    def structure(self) -> dict:
        return {"extractors": len(self.extractors),
                "aux": 0 if self.aux_head is None else self.aux_head.out_features - 1}

    def rebuild(self, structure: dict) -> None:
        """Grow to ``structure`` (before a checkpoint's weights are loaded)."""
        while len(self.extractors) < structure["extractors"]:
            self.add_extractor()
        if structure["aux"]:
            self.set_aux(structure["aux"])

    @torch.no_grad()
    def parameter_count(self) -> int:
        """Parameters of the inference network: every extractor (pruned channels excluded) and the
        head's columns of surviving features. The aux head (training only) is not counted."""
        total, alive = 0, []
        for f in self.extractors:
            n, mask = parameter_count(f.module if isinstance(f, Frozen) else f)
            total, alive = total + n, alive + [mask]
        return total + self.head.n_units * int(torch.cat(alive).sum())
