"""LFD: less-forgetting direction and equilibrium point (Wen, Qiu, Wang et al., "Class incremental
learning with less forgetting direction and equilibrium point", IEEE TCSVT 2024), as the authors'
public precursor code computes it (HaitaoWen/PFCL ``scheme.py::ER_PFCL``: ``lfd_train``, ``path_train``,
``recall``; ``rsgd.py``; ``dcd.py``). On top of experience replay (``er.py``). For every task t ≥ 1:

(1) Direction (before training; ``lfd_train``). ŵ = the current parameters, frozen. ν starts uniform on
    the sphere ‖ν‖ = r (all parameters flattened together: ONE sphere) and is moved by Riemannian SGD
    (``clcourse.sphere``) on the memory M of tasks < t to minimise the segment objective

        L_dir(ν) = (1/5) Σ_{ρ ∈ {0.3, 0.5, 0.7, 0.9, 1.0}} L_M(ŵ + ρν) / ρ      (objective="segment")

    (``objective="end"``: L_M(ŵ + ν) alone). The network is evaluated at ŵ + ρν with
    ``torch.func.functional_call``; ν is the only tensor that gets gradients.
(2) Training (``path_train`` with PFCL's DCD optimiser): ER on current data + memory, plus

        penalty = (κ/2) Σ_l ‖P⊥_{ν_l}(w_l − ŵ_l)‖²,    P⊥_ν x = x − ν ⟨x, ν⟩ / ‖ν‖²,

    per parameter tensor l (``projection="tensor"``, DCD's) or with one projection over all
    parameters (``projection="global"``): moving along ν is free, moving across it costs. DCD adds
    κ·P⊥(w − ŵ) to the gradient inside its optimiser, before momentum; the term's gradient is exactly
    that, so the loss term "penalty" gives the same update.
(3) Equilibrium point (after the task, once its exemplars are in memory; ``recall``): one scalar λ,
    from 0.5, fitted by plain SGD on the memory of ALL tasks ≤ t through w(λ) = (1 − λ)ŵ + λw
    (gradient-norm clip 5, i.e. λ's gradient clamped to [−5, 5]; no clamp of λ itself); the model
    then takes w(λ) (``ep=False``: keeps w).

Both stages run ``direction_epochs``/``ep_epochs`` over the memory at the settings' batch size, lr ×0.1
at ½ and ¾ of the epochs (PFCL: 10 and 15 of 20). Departures from PFCL: the RSGD momentum starts at the
projected gradient (``sphere.RiemannianSGD``); the stages run in train mode as PFCL's do, but leave
batch-norm running statistics untouched; PFCL trains the FIRST task with SGD weight decay κ (its
``--decay`` doubles as both), here with the settings' optimiser; PFCL's 30-epoch schedule [15, 25]
would here be [15, 22].
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.func import functional_call

from ..data.scenarios import masked_logits
from ..loop import steps_for
from ..sphere import RiemannianSGD, random_direction, tangent
from .base import Arg
from .er import ER

RATIOS = (0.3, 0.5, 0.7, 0.9, 1.0)  # PFCL scheme.py::lfd_train ``ratios``


def orthogonal_penalty(delta, nu, projection: str = "tensor") -> torch.Tensor:
    """(1/2) Σ_l ‖P⊥_{ν_l} δ_l‖² over the lists of tensors ``delta`` and ``nu`` (``"tensor"``), or
    (1/2) ‖P⊥_ν δ‖² with all tensors flattened into one vector (``"global"``); P⊥_ν x = x − ν⟨x, ν⟩/‖ν‖²
    (a zero ν_l removes nothing). Without κ."""
    if len(delta) != len(nu):
        raise ValueError(f"{len(delta)} tensors in delta, {len(nu)} in nu")
    if projection == "global":
        delta = [torch.cat([d.reshape(-1) for d in delta])]
        nu = [torch.cat([v.reshape(-1) for v in nu])]
    elif projection != "tensor":
        raise ValueError(f"projection must be 'tensor' or 'global', got {projection!r}")
    return sum(tangent(v, d).pow(2).sum() for d, v in zip(delta, nu)) / 2


def interpolate(w_hat, w, lam):
    """[(1 − λ) ŵ_l + λ w_l]: the point at λ on the line through ŵ (λ = 0) and w (λ = 1)."""
    return [(1 - lam) * a + lam * b for a, b in zip(w_hat, w)]


class LFD(ER):
    """ER + a direction searched on a sphere, a penalty across it, and an equilibrium point."""

    name = "lfd"
    arguments = {
        "radius": Arg(80.0, "r, the norm of the direction ν",
                      "PFCL scripts/er-pfcl.sh `--lambd 80` (permuted MNIST)", low=1e-6),
        "kappa": Arg(0.01, "κ, strength of the orthogonal penalty",
                     "PFCL scripts/er-pfcl.sh `--decay 0.01` (permuted MNIST)", low=0.0),
        "direction_epochs": Arg(20, "epochs of the direction search over the memory",
                                "PFCL `--omega 20`", low=1),
        "direction_lr": Arg(0.01, "RSGD learning rate", "PFCL `--beta 0.01`", low=0.0),
        "direction_momentum": Arg(0.7, "RSGD momentum", "PFCL `--momentum 0.7`", low=0.0, high=1.0),
        "objective": Arg("segment", "L_dir: five points of the segment, or its end point only",
                         "PFCL lfd_train (segment)", choices=("segment", "end")),
        "projection": Arg("tensor", "P⊥ per parameter tensor or over all parameters",
                          "PFCL dcd.py (per tensor)", choices=("tensor", "global")),
        "ep": Arg(True, "fit the equilibrium point λ after each task", "PFCL `--recall`"),
        "ep_epochs": Arg(20, "epochs of the λ fit over the memory", "PFCL `--theta 20`", low=1),
        "ep_lr": Arg(0.1, "SGD learning rate of λ", "PFCL `--delta 0.1`", low=0.0),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.names, self.w_hat, self.nu, self.lambdas, self.direction_losses = [], None, None, [], []

    def trained(self) -> dict:
        return {n: p for n, p in self.model.named_parameters() if p.requires_grad}

    def at(self, weights, x):
        """The network's logits for ``x`` with ``weights`` (one per name in ``self.names``) in place of
        its parameters; batch-norm buffers are copies, so running statistics stay as they are."""
        buffers = {n: b.clone() for n, b in self.model.named_buffers()}
        return functional_call(self.model, {**dict(zip(self.names, weights)), **buffers}, (x,))

    def memory_loss(self, weights, batch):
        return F.cross_entropy(masked_logits(self.at(weights, batch.x), batch.mask), batch.y)

    def segment_loss(self, nu, batch):
        """L_dir(ν) on ``batch``: the memory loss at ŵ + ρν, divided by ρ, averaged over ρ."""
        ratios = RATIOS if self.args["objective"] == "segment" else (1.0,)
        return sum(self.memory_loss([w + rho * v for w, v in zip(self.w_hat, nu)], batch) / rho
                   for rho in ratios) / len(ratios)

    def new_direction(self, task):
        """The search's start: uniform on the sphere, leaves that require gradients."""
        nu = random_direction([w.shape for w in self.w_hat], self.args["radius"],
                              self.rng(task, "direction"))
        return [v.to(self.w_hat[0].dtype).requires_grad_() for v in nu]

    def stage(self, name, loss_fn, optimizer, epochs) -> list:
        """A stage on the memory of every task kept; returns ``loss_fn`` on the whole memory
        [before, after] it."""
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

    def before_task(self, task):
        super().before_task(task)
        if task.id == 0:
            return
        self.names = list(self.trained())
        self.w_hat = [p.detach().clone() for p in self.trained().values()]
        nu = self.new_direction(task)
        optimizer = RiemannianSGD(nu, lr=self.args["direction_lr"],
                                  momentum=self.args["direction_momentum"], radius=self.args["radius"])
        self.direction_losses.append(self.stage("direction", lambda b, r: self.segment_loss(nu, b),
                                                optimizer, self.args["direction_epochs"]))
        self.nu = [v.detach() for v in nu]

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        if self.nu is not None and self.task.id > 0:
            delta = [p - w for p, w in zip(self.trained().values(), self.w_hat)]
            terms["penalty"] = self.args["kappa"] * orthogonal_penalty(delta, self.nu,
                                                                       self.args["projection"])
        return terms

    def after_task(self, task):
        super().after_task(task)  # ER: this task's exemplars join the memory first
        if task.id == 0 or not self.args["ep"]:
            self.lambdas.append(None)
            return
        w = [p.detach().clone() for p in self.trained().values()]
        lam = torch.tensor(0.5, device=self.device, requires_grad=True)
        lam.register_hook(lambda g: g.clamp(-5.0, 5.0))  # clip_grad_norm_(λ, 5) for one scalar
        self.stage("ep", lambda b, r: self.memory_loss(interpolate(self.w_hat, w, lam), b),
                   torch.optim.SGD([lam], lr=self.args["ep_lr"]), self.args["ep_epochs"])
        with torch.no_grad():
            for p, v in zip(self.trained().values(), interpolate(self.w_hat, w, lam)):
                p.copy_(v)
        self.lambdas.append(lam.item())

    def report(self) -> dict:
        return {**super().report(), "lambda": list(self.lambdas),
                "direction_loss": [None] + [list(v) for v in self.direction_losses]}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "names": self.names, "w_hat": self.w_hat, "nu": self.nu,
                "lambdas": self.lambdas, "direction_losses": self.direction_losses}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.names, self.lambdas = list(state["names"]), list(state["lambdas"])
        self.direction_losses = [list(v) for v in state["direction_losses"]]
        self.w_hat, self.nu = ([v.to(self.device) for v in state[k]] if state[k] is not None else None
                               for k in ("w_hat", "nu"))
