"""Elastic weight consolidation: EWC (one penalty per old task) and online EWC (one running penalty).

Kirkpatrick et al. 2017, "Overcoming catastrophic forgetting in neural networks", PNAS 114(13), Eq. 3;
online EWC: Schwarz et al. 2018 (Progress & Compress, ICML) and Huszár 2018 (PNAS 115(11)). Lesson 02.

    EWC         L(θ) = L_t(θ) + (λ/2) Σ_{k<t} Σ_i F_{k,i} (θ_i − θ*_{k,i})²
    online EWC  L(θ) = L_t(θ) + (λ/2) Σ_i γ F̃_{t−1,i} (θ_i − θ*_{t−1,i})²,  F̃_k = γ F̃_{k−1} + F_k

F_k: the diagonal Fisher after task k (``clcourse.fisher``, on the task's training data and the
scenario's active units), θ*_k: the parameters after task k. The γ inside the penalty follows van de
Ven's code (``continual_learner.py``: the stored F̃ is multiplied by γ once more in ``ewc_loss``).

Defaults. ``fisher="exact"``: the Fisher itself, recommended by van de Ven (2025, "On the computation
of the Fisher information in continual learning"); λ then comes from van de Ven, Tuytelaars & Tolias
2022's code (``params/param_values.py``), tuned for the exact Fisher. With ``fisher="pred"`` (the 2019
"Three scenarios" code's arg-max labels) λ and γ come from that code (branch ``preprints``,
``param_values.py``). λ spans ten orders of magnitude because the Fisher's size depends on its kind and
on the network's confidence: never carry λ from one Fisher kind to another.

Hooks: ``after_task`` (Fisher, anchor), ``loss`` (the penalty, logged as ``ewc``), ``state_dict``.
"""
from __future__ import annotations

from .. import fisher, penalties
from .base import Arg, Method

# λ by (benchmark family, scenario). 2022 code (exact Fisher): split MNIST 1e5 / 1e10 / 1e9, CIFAR-100
# 1e3 / 1e3 / 1e2, every other experiment 100. 2019 code ("pred" Fisher): EWC and online EWC.
LAMBDA_EXACT = {"split-mnist": {"task": 1e5, "domain": 1e10, "class": 1e9},
                "split-cifar100": {"task": 1e3, "domain": 1e3, "class": 1e2}}
LAMBDA_PRED = {"split-mnist": {"task": 1e7, "domain": 1e6, "class": 1e8},
               "permuted-mnist": {"task": 500.0, "domain": 500.0, "class": 1.0}}
LAMBDA_PRED_ONLINE = {"split-mnist": {"task": 1e8, "domain": 1e8, "class": 1e9},
                      "permuted-mnist": {"task": 500.0, "domain": 1000.0, "class": 5.0}}
GAMMA_PRED = {"split-mnist": {"task": 0.8, "domain": 0.7, "class": 0.8},
              "permuted-mnist": {"task": 0.8, "domain": 0.9, "class": 1.0}}


def online_fisher(running: dict, new: dict, gamma: float) -> dict:
    """F̃_t = γ F̃_{t−1} + F_t (Schwarz et al. 2018): the old running Fisher decays, the new one adds.
    New tensors; a grown parameter's new units start from the new Fisher alone."""
    out = {}
    for name, f in new.items():
        old = running.get(name)
        if old is None:
            out[name] = f.clone()
        else:
            out[name] = f.clone()
            out[name][tuple(slice(0, s) for s in old.shape)] += gamma * old
    return out


def _lookup(table, s, otherwise):
    return table.get(s.benchmark, {}).get(s.scenario, otherwise)


def default_lambda(s, online=False):
    if s.method_args.get("fisher", "exact") == "pred":
        return _lookup(LAMBDA_PRED_ONLINE if online else LAMBDA_PRED, s, 500.0)
    return _lookup(LAMBDA_EXACT, s, 100.0)  # online: no exact-Fisher value published; EWC's


class EWC(Method):
    """EWC: one quadratic penalty per finished task, each with its own Fisher and anchor."""
    name = "ewc"
    online = False
    arguments = {
        "lam": Arg(default_lambda, "penalty strength λ (unitless; depends on the Fisher's kind)",
                   "van de Ven et al. 2022 code (exact Fisher); 2019 code (pred)", low=0),
        "fisher": Arg("exact", "which Fisher (Lesson 02 §5)", "van de Ven 2025 (exact is best)",
                      choices=fisher.KINDS),
        "fisher_n": Arg(None, "examples per Fisher estimate (None: the whole task)",
                        "van de Ven's code: all training examples", low=1),
        "fisher_batch": Arg(lambda s: s.batch_size, "mini-batch of the 'batched' Fisher (examples)",
                            "the training batch, as in seed 000's code and Avalanche", low=1),
    }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.terms = []  # [(Fisher, anchor)] one per finished task (online: a single running one)

    def after_task(self, task):
        super().after_task(task)
        F = fisher.diagonal_fisher(
            self.model, self.scenario.train_set(task), self.scenario.mask_table(task.id, self.device),
            kind=self.args["fisher"], n_samples=self.args["fisher_n"],
            batch_size=self.args["fisher_batch"], generator=self.rng(task, "fisher"))
        if self.online and self.terms:  # F̃_t = γ F̃_{t−1} + F_t
            F = online_fisher(self.terms[0][0], F, self.args["gamma"])
        anchor = penalties.snapshot(self.model)
        self.terms = [(F, anchor)] if self.online else [*self.terms, (F, anchor)]

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        if self.terms:
            scale = self.args["gamma"] if self.online else 1.0
            penalty = sum(penalties.quadratic_penalty(self.model, F, anchor)
                          for F, anchor in self.terms)
            terms["ewc"] = self.args["lam"] / 2 * scale * penalty  # (λ/2) Σ_k Σ_i F_ki (θ_i − θ*_ki)²
        return terms

    def state_dict(self):
        return {**super().state_dict(), "terms": [list(term) for term in self.terms]}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.terms = [tuple(term) for term in state["terms"]]


class OnlineEWC(EWC):
    """Online EWC: one running Fisher F̃ (decayed by γ) and one anchor, the latest parameters."""
    name = "online-ewc"
    online = True
    arguments = {
        "lam": Arg(lambda s: default_lambda(s, online=True),
                   "penalty strength λ (unitless; depends on the Fisher's kind)",
                   "2019 code (pred); with the exact Fisher, EWC's 2022 value (none published)",
                   low=0),
        "gamma": Arg(lambda s: _lookup(GAMMA_PRED, s, 1.0), "decay γ of the running Fisher",
                     "van de Ven & Tolias 2019 code, param_values.py", low=0, high=1),
    }
