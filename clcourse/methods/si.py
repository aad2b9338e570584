"""Synaptic intelligence (SI): each parameter's importance is the loss decrease it was responsible for.

Zenke, Poole & Ganguli 2017, "Continual learning through synaptic intelligence", ICML, Eqs. 3–5;
Lesson 02 §6. While task t trains, every optimiser step adds its share of the path integral

    ω_i += −g_i Δθ_i          (g: the gradient the step used, Δθ: the step it took; > 0 helped)

and when the task ends, the importance of what moved is consolidated, divided by how far it moved:

    Ω_i += ω_i / ((θ_i(end) − θ_i(start))² + ξ)          ξ > 0 keeps a parameter that barely moved bounded

The loss of the next tasks adds  c Σ_i Ω_i (θ_i − θ̃_i)²  (no ½), θ̃ = the parameters at the end of the
last task. As in van de Ven's code (``continual_learner.py``) g is the gradient of the total loss that
was back-propagated and Ω is not clamped at 0 (the official code clamps it with a ReLU).

Defaults: c per benchmark and scenario from van de Ven & Tolias 2019's code (branch ``preprints``,
``param_values.py``: split MNIST 50 / 500 / 0.5, permuted MNIST 5 / 5 / 0.1 for task / domain /
class-IL); elsewhere the 2022 code's (CIFAR-100 100 / 500 / 5, other 10 / 10 / 5). ξ = 0.1: van de
Ven's ``--epsilon`` and the official permuted-MNIST notebook.

Hooks: ``before_task`` (reset ω), ``after_step`` (accumulate ω), ``after_task`` (Ω), ``loss``
(the penalty, logged as ``si``), ``state_dict``. Lesson 07 combines it with BI-R.
"""
from __future__ import annotations

import torch

from .. import penalties
from .base import Arg, Method

C_2019 = {"split-mnist": {"task": 50.0, "domain": 500.0, "class": 0.5},
          "permuted-mnist": {"task": 5.0, "domain": 5.0, "class": 0.1}}
C_2022 = {"split-cifar100": {"task": 100.0, "domain": 500.0, "class": 5.0}}


def path_importance(path: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                    xi: float) -> torch.Tensor:
    """One task's contribution to Ω (Zenke et al. 2017, Eq. 5): ω / ((θ(end) − θ(start))² + ξ),
    where ``path`` = ω = −Σ_steps g Δθ was accumulated while the task trained."""
    return path / ((end - start) ** 2 + xi)


def path_integral(grads: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """ω = −Σ_s g_s Δθ_s (Zenke et al. 2017, Eq. 3) over a recorded path: rows s of ``grads`` and
    ``deltas`` (S, P) are each step's gradient and parameter change. ``after_step`` accumulates the same
    sum one step at a time."""
    return -(grads * deltas).sum(dim=0)


def si_importance(grads: torch.Tensor, deltas: torch.Tensor, start: torch.Tensor, end: torch.Tensor,
                  xi: float) -> torch.Tensor:
    """Ω of one task from its recorded path (Zenke et al. 2017, Eqs. 3–5): ``path_importance`` of
    ``path_integral``. Lesson 02 §6's reference."""
    return path_importance(path_integral(grads, deltas), start, end, xi)


def default_c(s):
    table = C_2019 if s.benchmark in C_2019 else C_2022
    return table.get(s.benchmark, {}).get(s.scenario, {"class": 5.0}.get(s.scenario, 10.0))


class SI(Method):
    name = "si"
    arguments = {
        "c": Arg(default_c, "penalty strength c (unitless)",
                 "van de Ven & Tolias 2019 code; 2022 code elsewhere", low=0),
        "xi": Arg(0.1, "damping ξ of the importance, in (parameter units)²",
                  "van de Ven's --epsilon; Zenke et al.'s permuted-MNIST code", low=0),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.omega, self.anchor = {}, {}  # Ω and θ̃ after the last finished task

    def before_task(self, task):
        super().before_task(task)
        self.start = penalties.snapshot(self.model)                  # θ(start) of this task
        self.previous = {n: p.clone() for n, p in self.start.items()}  # θ before the next step
        self.path = {n: torch.zeros_like(p) for n, p in self.start.items()}  # ω of this task

    def after_step(self):
        """ω_i += −g_i Δθ_i, with the gradient of the step just taken and the move it made."""
        super().after_step()
        with torch.no_grad():
            for n, p in penalties.trainable(self.model).items():
                if p.grad is not None:
                    self.path[n] -= p.grad * (p - self.previous[n])
                self.previous[n].copy_(p)

    def after_task(self, task):
        super().after_task(task)
        now = penalties.snapshot(self.model)
        omega = penalties.grow_like(self.omega, self.model)
        for n in now:  # Ω_i += ω_i / (Δθ_i² + ξ)
            omega[n] = omega[n] + path_importance(self.path[n], self.start[n], now[n],
                                                  self.args["xi"])
        self.omega, self.anchor = omega, now

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        if self.omega:
            terms["si"] = self.args["c"] * penalties.quadratic_penalty(self.model, self.omega,
                                                                        self.anchor)
        return terms

    def state_dict(self):
        return {**super().state_dict(), "omega": self.omega, "anchor": self.anchor}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.omega, self.anchor = state["omega"], state["anchor"]
