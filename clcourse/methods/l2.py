"""L2: EWC's penalty with every weight equally important (F ≡ 1) — the baseline EWC was compared with.

Kirkpatrick et al. 2017 (PNAS 114(13), Fig. 2A) train permuted MNIST with plain SGD, with an L2
penalty that holds every weight to its old value with the same stiffness, and with EWC, whose
stiffness is the Fisher F_i. L2 keeps the old tasks but cannot learn the new ones as well: the
weights the old tasks do not need are held as firmly as those they do. Lesson 02 §7.

    L(θ) = L_t(θ) + (λ/2) Σ_{k<t} Σ_i (θ_i − θ*_{k,i})²        (EWC with F_{k,i} = 1)

λ is in different units from EWC's: EWC's F_i averages ~1e-4 on the course's MNIST MLP, so the same
average stiffness is λ_L2 ≈ λ_EWC · mean(F). The default, 0.01, is that for EWC's λ = 100.

Hooks: ``after_task`` (anchor), ``loss`` (the penalty, logged as ``l2``), ``state_dict``.
"""
from __future__ import annotations

from .. import penalties
from .base import Arg, Method


class L2(Method):
    """One quadratic penalty per finished task, the same stiffness for every weight."""
    name = "l2"
    arguments = {
        "lam": Arg(0.01, "penalty strength λ (per weight; EWC's λ × its mean Fisher)",
                   "Kirkpatrick et al. 2017, Fig. 2A (L2 baseline); this course's choice", low=0),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.anchors = []  # θ*_k, one per finished task

    def after_task(self, task):
        super().after_task(task)
        self.anchors.append(penalties.snapshot(self.model))

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        if self.anchors:
            penalty = sum(penalties.quadratic_penalty(self.model, None, anchor) for anchor in self.anchors)
            terms["l2"] = self.args["lam"] / 2 * penalty  # (λ/2) Σ_k Σ_i (θ_i − θ*_ki)²
        return terms

    def state_dict(self):
        return {**super().state_dict(), "anchors": self.anchors}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.anchors = list(state["anchors"])
