"""Context-dependent gating (XdG): Masse, Grant & Freedman 2018, "Alleviating catastrophic forgetting
using context-dependent gating and synaptic stabilization", PNAS 115(44):E10467. Lesson 07.

Each task (context) c owns a fixed random subset of every hidden layer's units; the others are
silenced whenever an example of task c passes:

    h_l = ReLU(W_l h_{l−1} + b_l) ⊙ m_l[c],    m_l[c] ∈ {0, 1}^{n_l},  Σ m_l[c] = round(keep · n_l)

Two tasks then share only about keep² of a layer, so training one moves fewer of the weights the
other relies on. The gate needs the task of every example, at training AND at test time: XdG is
for task-IL (and domain-IL, where knowing the task makes it task-IL in all but the output layer);
in class-IL the task is what must be inferred, so there is nothing to choose the gate with.

As van de Ven & Tolias's code (GMvandeVen/continual-learning @ 86802a8, ``main.py``: ``--xdg`` is the
proportion gated, ``int(prop · n)`` units per layer and task drawn with ``np.random.choice``), every
hidden layer of the fully connected stack is gated (gating after the ReLU equals gating before it).
The masks are buffers of the model (saved with it: a resumed run keeps them) drawn from a generator
seeded by the run's seed (``vae.gating_masks``: exactly round(keep · n) units per context).

The gates read the task of each row from ``set_context`` (a tensor of task ids, or one int), which
``Method.outputs``, ``Method.forward`` and ``Method.predict`` call; between calls the last context
stays (``Method.before_task`` sets the new task's), so a method's own forward passes on the current
task's data (EWC's Fisher) use the current task's gates.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .vae import gating_masks


class ContextGate(nn.Module):
    """Multiplies its input (B, n) by ``masks[context]``: row i keeps the units of its task."""

    def __init__(self, masks: torch.Tensor):
        super().__init__()
        self.register_buffer("masks", masks.bool())
        self.context: torch.Tensor | int | None = None

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.context is None:
            raise RuntimeError("XdG gates need the task of every example: call "
                               "clcourse.gating.set_context(model, t) before the forward pass")
        mask = self.masks[self.context]
        if mask.dim() == 1:
            mask = mask.expand(len(h), -1)
        if len(mask) != len(h):
            raise ValueError(f"context holds {len(mask)} task ids for a batch of {len(h)}")
        return h * mask.to(h.dtype)


def add_gates(mlp: nn.Module, n_contexts: int, gated: float, seed: int) -> list:
    """Insert a ``ContextGate`` after every ReLU of ``mlp`` (an ``models.MLP``), each keeping
    round((1 − gated) · n) of its n units per context; returns the gates. ``gated``: the proportion
    silenced (the code's ``--xdg``), in (0, 1)."""
    if not 0 < gated < 1:
        raise ValueError(f"xdg is the proportion of units gated per task, in (0, 1); got {gated!r}")
    net = getattr(mlp, "net", None)
    if not isinstance(net, nn.Sequential) or not any(isinstance(m, nn.ReLU) for m in net):
        raise ValueError("xdg gates the hidden layers of a fully connected backbone (model 'mlp'); "
                         f"this network has none ({type(mlp).__name__})")
    generator = torch.Generator().manual_seed(seed)
    layers, gates, width = [], [], None
    for module in net:
        layers.append(module)
        if isinstance(module, nn.Linear):
            width = module.out_features
        elif isinstance(module, nn.ReLU):
            gate = ContextGate(gating_masks(n_contexts, width, 1 - gated, generator))
            layers.append(gate)
            gates.append(gate)
    mlp.net = nn.Sequential(*layers)
    return gates


def set_context(model: nn.Module, t) -> None:
    """Tell every gate of ``model`` the task of each row of the next batch (a (B,) tensor of task
    ids, or an int for the whole batch). No-op for a model without gates."""
    for module in model.modules():
        if isinstance(module, ContextGate):
            module.context = t
