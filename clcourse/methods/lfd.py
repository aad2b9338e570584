"""LFD: less-forgetting direction and equilibrium point (Wen, Qiu, Wang et al., "Class incremental
learning with less forgetting direction and equilibrium point", IEEE TCSVT 2024), as the authors'
public precursor code computes it (HaitaoWen/PFCL ``scheme.py::ER_PFCL``: ``lfd_train``,
``path_train``, ``recall``; ``rsgd.py``; ``dcd.py``), on top of ER (``er.py``). For every task t ≥ 1:

(1) Direction (``lfd_train``): ŵ = the current parameters, frozen; ν starts uniform on ONE sphere
    ‖ν‖ = r over all parameters and moves by Riemannian SGD (``clcourse.sphere``) on the memory M of
    tasks < t, the network evaluated at ŵ + ρν by ``torch.func.functional_call``, to minimise

        L_dir(ν) = (1/5) Σ_{ρ ∈ {0.3, 0.5, 0.7, 0.9, 1.0}} L_M(ŵ + ρν) / ρ    ("segment"; "end": L_M(ŵ + ν))

(2) Training (``path_train``): ER on current data + memory, plus

        penalty = (κ/2) Σ_l ‖P⊥_{ν_l}(w_l − ŵ_l)‖²,    P⊥_ν x = x − ν ⟨x, ν⟩ / ‖ν‖²,

    per parameter tensor (``projection="tensor"``, PFCL ``dcd.py``, which adds its gradient
    κ·P⊥(w − ŵ) inside the optimiser before momentum: the same update) or over all of them at once
    (``"global"``): moving along ν is free, moving across it costs.
(3) Equilibrium point (``recall``, once the task's exemplars are in memory): one scalar λ from 0.5,
    fitted by SGD on the memory of all tasks ≤ t through w(λ) = (1 − λ)ŵ + λw, its gradient clamped
    to [−5, 5] (PFCL's norm clip 5), λ itself unclamped; the model takes w(λ) (``ep=False``: keeps w).
Both stages: ``ER.memory_stage``. Departures from PFCL: RSGD's momentum starts at the projected
gradient; the first task trains with the settings' optimiser (PFCL: SGD with weight decay κ).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..data.scenarios import masked_logits
from ..penalties import across_penalty, directions, orthogonal_penalty, trainable  # noqa: F401
from ..sphere import RiemannianSGD, random_direction
from .base import Arg
from .er import ER

RATIOS = (0.3, 0.5, 0.7, 0.9, 1.0)  # PFCL scheme.py::lfd_train ``ratios``


def interpolate(w_hat, w, lam):
    """[(1 − λ) ŵ_l + λ w_l]: the point at λ on the line through ŵ (λ = 0) and w (λ = 1)."""
    return [(1 - lam) * a + lam * b for a, b in zip(w_hat, w)]


def interpolate_and_slope(w_hat, w, lam, loss_fn):
    """(w(λ), dL/dλ): ``interpolate`` at ``lam`` (detached) and the slope there, by autograd on a new
    leaf λ: dL/dλ = Σ_l ⟨∇_{w_l} L(w(λ)), w_l − ŵ_l⟩, the gradient the λ fit follows (inputs untouched)."""
    if len(w_hat) != len(w):
        raise ValueError(f"{len(w_hat)} tensors in w_hat, {len(w)} in w")
    t = torch.tensor(float(lam), dtype=w[0].dtype, device=w[0].device, requires_grad=True)
    weights = interpolate([a.detach() for a in w_hat], [b.detach() for b in w], t)
    (slope,) = torch.autograd.grad(loss_fn(weights), t)
    return [x.detach() for x in weights], slope.detach()


class LFD(ER):
    """ER + a direction searched on a sphere, a penalty across it, and an equilibrium point."""

    name = "lfd"
    arguments = {
        "radius": Arg(80.0, "r, the norm of ν", "PFCL scripts/er-pfcl.sh `--lambd 80`", low=1e-6),
        "kappa": Arg(0.01, "κ, strength of the orthogonal penalty", "PFCL er-pfcl.sh `--decay 0.01`",
                     low=0.0),
        "direction_epochs": Arg(20, "epochs of the direction search", "PFCL `--omega 20`", low=1),
        "direction_lr": Arg(0.01, "RSGD learning rate", "PFCL `--beta 0.01`", low=0.0),
        "direction_momentum": Arg(0.7, "RSGD momentum", "PFCL `--momentum 0.7`", low=0.0, high=1.0),
        "objective": Arg("segment", "L_dir on five points of the segment, or its end only",
                         "PFCL lfd_train (segment)", choices=("segment", "end")),
        "projection": Arg("tensor", "P⊥ per parameter tensor or over all parameters",
                          "PFCL dcd.py (per tensor)", choices=("tensor", "global")),
        "ep": Arg(True, "fit the equilibrium point λ after each task", "PFCL `--recall`"),
        "ep_epochs": Arg(20, "epochs of the λ fit", "PFCL `--theta 20`", low=1),
        "ep_lr": Arg(0.1, "SGD learning rate of λ", "PFCL `--delta 0.1`", low=0.0),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.names, self.w_hat, self.nu, self.across = [], None, None, None
        self.lambdas, self.direction_losses = [], []

    def at(self, weights, x):
        """The network's logits for ``x`` with ``weights`` (one per name in ``self.names``) in place of
        its parameters; batch-norm buffers are copies, so running statistics stay as they are."""
        buffers = {n: b.clone() for n, b in self.model.named_buffers()}
        return functional_call(self.model, {**dict(zip(self.names, weights)), **buffers}, (x,))

    def memory_loss(self, weights, batch):  # the mean CE on a memory batch at ``weights``
        return F.cross_entropy(masked_logits(self.at(weights, batch.x), batch.mask), batch.y)

    def segment_loss(self, nu, batch):
        """L_dir(ν) on ``batch``: the memory loss at ŵ + ρν, / ρ, averaged over ρ."""
        ratios = RATIOS if self.args["objective"] == "segment" else (1.0,)
        return sum(self.memory_loss([w + rho * v for w, v in zip(self.w_hat, nu)], batch) / rho
                   for rho in ratios) / len(ratios)

    def new_direction(self, task):  # the search's start: uniform on the sphere, requiring gradients
        nu = random_direction([w.shape for w in self.w_hat], self.args["radius"],
                              self.rng(task, "direction"))
        return [v.to(self.w_hat[0].dtype).requires_grad_() for v in nu]

    def before_task(self, task):
        super().before_task(task)
        if task.id == 0:
            return
        self.names = list(trainable(self.model))
        self.w_hat = [p.detach().clone() for p in trainable(self.model).values()]
        nu = self.new_direction(task)
        optimizer = RiemannianSGD(nu, lr=self.args["direction_lr"],
                                  momentum=self.args["direction_momentum"], radius=self.args["radius"])
        self.direction_losses.append(self.memory_stage(
            "direction", lambda b, r: self.segment_loss(nu, b), optimizer, self.args["direction_epochs"]))
        self.nu = [v.detach() for v in nu]
        self.across = directions(self.nu, self.args["projection"])

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        if self.nu is not None and self.task.id > 0:
            delta = [p - w for p, w in zip(trainable(self.model).values(), self.w_hat)]
            terms["penalty"] = self.args["kappa"] * across_penalty(delta, self.across)
        return terms

    def after_task(self, task):
        super().after_task(task)  # ER: this task's exemplars join the memory first
        if task.id == 0 or not self.args["ep"]:
            self.lambdas.append(None)
            return
        w = [p.detach().clone() for p in trainable(self.model).values()]
        lam = torch.tensor(0.5, device=self.device, requires_grad=True)
        lam.register_hook(lambda g: g.clamp(-5.0, 5.0))  # clip_grad_norm_(λ, 5) for one scalar
        self.memory_stage("ep", lambda b, r: self.memory_loss(interpolate(self.w_hat, w, lam), b),
                          torch.optim.SGD([lam], lr=self.args["ep_lr"]), self.args["ep_epochs"])
        with torch.no_grad():
            for p, v in zip(trainable(self.model).values(), interpolate(self.w_hat, w, lam)):
                p.copy_(v)
        self.lambdas.append(lam.item())

    def report(self) -> dict:  # λ per task, the memory's L_dir [before, after] each direction search
        return {"lambda": list(self.lambdas), "direction_loss": [None] + [list(v) for v in self.direction_losses]}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "names": self.names, "w_hat": self.w_hat, "nu": self.nu,
                "lambdas": self.lambdas, "direction_losses": self.direction_losses}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.names, self.lambdas = list(state["names"]), list(state["lambdas"])
        self.direction_losses = [list(v) for v in state["direction_losses"]]
        self.w_hat, self.nu = ([v.to(self.device) for v in state[k]] if state[k] is not None else None
                               for k in ("w_hat", "nu"))
        self.across = directions(self.nu, self.args["projection"]) if self.nu is not None else None
