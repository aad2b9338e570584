"""Learning without Forgetting (LwF). Li & Hoiem, ECCV 2016 / IEEE TPAMI 40(12) 2018, §3. Lesson 03.

No old data is kept. Before task t, a frozen copy of the network (the teacher, θ*_{t−1}) is taken; its
outputs on the *new* task's images are the targets that protect what the old tasks' units computed:

    L(θ) = w_new · CE(y, f_θ(x)) + w_old · (1/G) Σ_g KD_T(f_θ(x)[units_g], f_θ*(x)[units_g])

over the current mini-batch x only. KD_T is ``losses.distillation`` (soft cross-entropy at temperature
T). The groups g are the old units as each scenario sees them: task-IL one group per old task's head,
averaged (van de Ven & Tolias 2019's code); domain-IL the one shared head; class-IL all units seen so
far, the teacher's distribution over the old classes padded with zero targets on the new ones.

Weighting. ``"1/t"`` (default): w_new = 1/t, w_old = 1 − 1/t with t tasks seen, every task counting
equally, and KD × T², as van de Ven & Tolias 2019's ("Three scenarios") code does for its Table 4.
``"lambda"``: w_new = 1, w_old = λ_o, the paper's loss (Li & Hoiem: λ_o = 1, no T²: set t_squared=False).
Reduction over the units (``kd_reduction``). ``"sum"``: the soft cross-entropy summed over the units
(Hinton et al.; van de Ven's code since commit 26f00db, 2019-05-17). ``"mean"``: averaged over the C
units the student's distribution covers, as ``utils.loss_fn_kd`` did at commit 86802a8 (2019-04-17),
the code that made "Three scenarios" Tables 4–5 — a term C = 2t times weaker in class-IL. The paper
profile on split and permuted MNIST uses the mean (to reproduce those tables), every other setting the
sum. With the sum and the 1/t weighting, class-IL's zero targets on the new units outweigh the CE: the
new classes are never learnt and task 1 is kept; with the mean, new tasks are learnt and forgetting
is partial (lesson 03 shows both accuracy matrices).
Optional warm-up (the paper's): first train only the head, on the new task's own units, then all.

Hooks: ``before_task`` (teacher, warm-up), ``loss`` (the KD term, logged as ``kd``).
"""
from __future__ import annotations

import torch

from ..data.scenarios import active_units, masked_logits
from ..losses import distillation, mix_current_replay
from ..models import Frozen
from .base import Arg, Method, make_optimizer


def paper_kd_reduction(settings) -> str:
    """The reduction of the code behind "Three scenarios" Tables 4-5 for their paper-profile runs."""
    return "mean" if settings.profile == "paper" and settings.benchmark in ("split-mnist",
                                                                             "permuted-mnist") else "sum"


class LwF(Method):
    name = "lwf"
    arguments = {
        "T": Arg(2.0, "temperature of the soft targets", "Li & Hoiem 2016 §3 (T = 2 by grid search); "
                 "van de Ven & Tolias 2019 code (KD_temp = 2)", low=1e-3, high=1e3),
        "t_squared": Arg(True, "multiply the distillation term by T² (Hinton et al. 2015 §2)",
                         "van de Ven & Tolias 2019 code (utils.loss_fn_kd); Li & Hoiem: False"),
        "kd_reduction": Arg(paper_kd_reduction, "'sum' or 'mean' of the soft cross-entropy over the units; "
                            "default 'mean' in the paper profile on split and permuted MNIST", "van de Ven & Tolias 2019 code: mean at 86802a8 (Tables 4-5), "
                            "sum from 26f00db", choices=("sum", "mean")),
        "weighting": Arg("1/t", "'1/t': (1/t)·CE + (1 − 1/t)·KD; 'lambda': CE + lam·KD",
                         "van de Ven & Tolias 2019 code (rnt = 1/task); Li & Hoiem 2016 Eq. (λ_o)",
                         choices=("1/t", "lambda")),
        "lam": Arg(1.0, "λ_o, the old tasks' weight when weighting='lambda'",
                   "Li & Hoiem 2016 §3 (λ_o = 1 in most experiments)", low=0.0),
        "warmup": Arg(0, "steps that train only the head on the new task before joint training",
                      "Li & Hoiem 2016 §3 (warm-up); none in van de Ven & Tolias 2019's code", low=0),
    }

    def before_task(self, task):
        super().before_task(task)
        self.teacher, self.groups = None, []
        if task.id == 0:
            return
        # The network exactly as the previous task left it: a copy, frozen, always in eval mode.
        self.teacher = Frozen.copy_of(self.model)
        sc, t = self.scenario, task.id
        if sc.kind == "task":
            self.groups = [(active_units("task", sc.sizes, t, k),) * 2 for k in range(t)]
        elif sc.kind == "domain":
            self.groups = [(sc.active(t, t), sc.active(t, t))]
        else:  # student over every unit seen so far, teacher over the old ones only
            self.groups = [(sc.active(t, t), sc.active(t - 1, t - 1))]
        self.groups = [(s.to(self.device), o.to(self.device)) for s, o in self.groups]
        if self.args["warmup"]:
            self.warm_up(task)

    def warm_up(self, task):
        """Train only the head, on CE over the new task's own units (the new head, Li & Hoiem §3)."""
        own = torch.stack([active_units("task" if self.scenario.kind != "domain" else "domain",
                                        self.scenario.sizes, task.id, k)
                           for k in range(self.scenario.n_tasks)]).to(self.device)
        head = make_optimizer(self.model.head.parameters(), self.settings)
        self.run_stage("warmup", self.scenario.train_set(task), super().loss, head,
                       steps=self.args["warmup"], masks=own)

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        if self.teacher is None:
            return terms
        logits = self.outputs(batch)  # the same forward pass as the CE term's
        with torch.no_grad():
            old = self.teacher(batch.x)
        kd = sum(distillation(masked_logits(logits, s), masked_logits(old, o), self.args["T"],
                              t_squared=self.args["t_squared"], reduction=self.args["kd_reduction"])
                 for s, o in self.groups)
        kd = kd / len(self.groups)
        if self.args["weighting"] == "1/t":
            ce, kd = mix_current_replay(terms["ce"], kd, self.task.id + 1)
            return {"ce": ce, "kd": kd}
        return {"ce": terms["ce"], "kd": self.args["lam"] * kd}
