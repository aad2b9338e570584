"""COIL (Zhou, Ye & Zhan, "Co-Transport for Class-Incremental Learning", ACM MM 2021). Lesson 08.

Classes are related by an optimal-transport plan between their means, and classifier rows move along
it both ways. As the authors' code computes it (zhoudw-zdw/MM21-Coil ``models/COIL.py`` at f4ebcc15,
the algorithm of PyCIL's ``models/coil.py``); the paper's text was not read. A cosine head σ·cos(f, w)
(``models.CosineHead``); memory, herding and λ·KD + (1 − λ)·CE, λ = n_old/n: ``rehearsal.Distilled``.

Prospective (``before_task``, t ≥ 1): unit class means μ, cost Q_kj = ‖μ_k − μ_j‖_3, plan
P = Sinkhorn(a, b, Q, ε = 0.464) (``transport``); the new rows start as Pᵀ·Ŵ_old at the old rows' mean
norm, and in the first epoch teach the new logits, 1e-3 · L_pro with
    L_pro = −mean_x Σ_j softmax(cos(f, W_pro)/T)_j · log softmax(z_new/T)_j.
Retrospective (from the second epoch, recomputed every ``retro_every`` steps, in eval mode): a plan P'
from the new classes to the old, W_retro = P'ᵀ·Ŵ_new, and reg·(e/E)² · L_retro (e the epoch, E the
task's epochs; iterations are counted in epochs of the task's data) with
    L_retro = −mean_x Σ_{k<n_old} softmax(z*/T)_k · log softmax(cos(f, W_retro)/T)_k,
W_retro constant: the gradient reaches the backbone only.

Departures from the code: (1) balanced marginals 1/n, 1/m (the code gives both sides 1/n_old: no plan
exists; from n_old/n_new = 3 on, tasks 4 and 5 of split MNIST, the retrospective iteration overflows
and returns an iterate with neither marginal, on many costs all zeros; ``marginals="code"``); (2) the old classes' means come from the exemplars
(the code reads all old training data, beyond the memory budget); (3) σ trains at the code's lr 0.1.
"""
from __future__ import annotations

import torch

from ..loop import steps_for
from ..memory import extract_features, prototypes
from ..models import CosineHead, GrowingHead, build_model
from ..transport import (class_cost, prospective_loss, retrospective_loss, sinkhorn,
                         transport_rows, uniform_marginals)
from .base import Arg, make_optimizer
from .rehearsal import Distilled

CODE = "MM21-Coil models/COIL.py, main.py at f4ebcc15"


class COIL(Distilled):
    name = "coil"
    arguments = {
        "head": Arg("cosine", "σ·cos head (the code's) or a linear one", CODE,
                    choices=("cosine", "linear")),
        "eps": Arg(0.464, "Sinkhorn's entropic regularisation ε", CODE + " (--sinkhorn)", low=1e-4),
        "p": Arg(3.0, "Minkowski p of the cost between unit means", CODE + " (--norm_term)", low=1.0),
        "prospective": Arg(True, "initialise the new rows by transport from the old ones", CODE),
        "pro_weight": Arg(1e-3, "weight of L_pro in the task's first epoch", CODE + " (0.001)", low=0.0),
        "retro_weight": Arg(1e-3, "reg of L_retro, × (epoch/epochs)²", CODE + " (--reg_term)", low=0.0),
        "retro_every": Arg(30, "steps between recomputations of the retrospective plan",
                           CODE + " (i % 30; CIL_Survey: 200)", low=1),
        "sigma_lr": Arg(0.1, "learning rate of the cosine head's σ (the code trains everything at "
                        "0.1 with SGD; at Adam's 1e-3 σ would stay near 1 and cap the logits)",
                        CODE + " (lrate = 0.1)", low=0.0),
        "marginals": Arg("balanced", "'balanced': 1/n, 1/m; 'code': 1/n_old on both sides", CODE,
                         choices=("balanced", "code")),
    }

    def __init__(self, model, scenario, settings, stream=None):
        super().__init__(model, scenario, settings, stream)
        self.plans, self.pro_rows, self.retro_rows, self.retro_plan = {}, None, None, None
        self.step, self.per_epoch, self.epochs = 0, 1, 1  # the step in the task; set per task

    @classmethod
    def make_model(cls, settings, input_shape, scenario):
        model = build_model(settings, input_shape, scenario)
        if cls.resolve_args(settings, settings.method_args)["head"] == "cosine":
            full = settings.head == "single"  # the paper profile's one layer with every unit
            model.head = CosineHead(model.backbone.out_dim, scenario.n_outputs if full else 0)
        elif not isinstance(model.head, (GrowingHead, torch.nn.Linear)):
            raise ValueError(f"coil needs a single or growing head, not {type(model.head).__name__}")
        return model

    def configure_optimizer(self):
        sigma = getattr(self.model.head, "sigma", None)
        if sigma is None:
            return super().configure_optimizer()
        rest = [p for p in self.parameters() if p is not sigma]  # σ is the last parameter
        return make_optimizer([{"params": rest}, {"params": [sigma], "lr": self.args["sigma_lr"]}],
                              self.settings)

    def solve(self, source_means, target_means, transposed=False):
        """The plan between two sets of class means (float64: the plans are tiny)."""
        cost = class_cost(source_means.double(), target_means.double(), self.args["p"])
        n, m = cost.shape
        if self.args["marginals"] == "code":  # 1/n_old on both sides (the released code)
            n_old = m if transposed else n
            a, b = cost.new_full((n,), 1 / n_old), cost.new_full((m,), 1 / n_old)
            return sinkhorn(a, b, cost, self.args["eps"], log_domain=False, balanced=False)
        return sinkhorn(*uniform_marginals(n, m, cost), cost, self.args["eps"])

    @torch.no_grad()
    def class_means(self, task):
        """Unit means of the old classes (exemplars) and of ``task``'s classes (all its data)."""
        was_training = self.model.training
        self.model.eval()
        old = self.memory.class_means(self.features, n_units=self.scenario.n_outputs)[:self.n_old]
        data = self.scenario.train_set(task)
        new = prototypes(extract_features(self.features, data.x), data.y, self.n_seen)[self.n_old:]
        self.model.train(was_training)
        return old, new

    def before_task(self, task):
        super().before_task(task)  # the teacher (Distilled), n_old
        self.step, self.retro_rows, self.pro_rows = 0, None, None
        if task.id == 0 or not self.args["prospective"]:
            return
        old, new = self.class_means(task)
        plan = self.solve(old, new)
        self.plans[task.id] = plan.float()
        weight = self.model.head.weight
        with torch.no_grad():
            self.pro_rows = transport_rows(plan, weight[:self.n_old].double()).to(weight.dtype)
            weight[self.n_old:self.n_seen] = self.pro_rows

    def train_set(self, task):
        data = super().train_set(task)
        s = self.settings
        steps, self.per_epoch = steps_for(len(data), s.batch_size, s.epochs, s.iters)
        self.epochs = -(-steps // self.per_epoch)  # (iterations: epochs of the task's data)
        return data

    def retrospective_rows(self):
        """W_retro = P'ᵀ·Ŵ_new: the old classes' rows rebuilt from the current new ones."""
        old, new = self.class_means(self.task)
        self.retro_plan = plan = self.solve(new, old, transposed=True)
        weight = self.model.head.weight.detach()
        return transport_rows(plan, weight[self.n_old:self.n_seen].double()).to(weight.dtype)

    def loss(self, batch, replay=None):
        if batch.logits is None:  # one backbone pass for the logits and the features
            f = self.model.features(batch.x)
            batch.logits, batch.features = self.model.head(f), f
        terms = super().loss(batch)  # ce (and kd on an incremental task)
        if self.teacher is None:
            return terms
        epoch, i = divmod(self.step, self.per_epoch)
        T, f = self.args["T"], batch.features
        if epoch == 0 and self.pro_rows is not None:
            new_logits = batch.logits[:, self.n_old:self.n_seen]
            terms["pro"] = self.args["pro_weight"] * prospective_loss(f, self.pro_rows, new_logits, T)
        elif epoch > 0 and self.args["retro_weight"] > 0:
            if self.retro_rows is None or i % self.args["retro_every"] == 0:
                self.retro_rows = self.retrospective_rows()
            weight = self.args["retro_weight"] * (epoch / self.epochs) ** 2
            terms["retro"] = weight * retrospective_loss(f, self.retro_rows, batch.teacher, T)
        return terms

    def after_step(self):
        super().after_step()
        self.step += 1

    def report(self) -> dict:
        plan = self.plans.get(self.task.id)
        return {"plan": None if plan is None else plan.tolist()}
