"""Published results as data: the tables that ``clcourse reproduce`` runs and compares against.

van de Ven & Tolias 2019, "Three scenarios for continual learning", arXiv:1904.07734v1:

* Table 4 — split MNIST (benchmark ``split-mnist``: five tasks of two digits);
* Table 5 — permuted MNIST (benchmark ``permuted-mnist``: ten permutations).

Each entry is the average test accuracy (%) over all tasks after the last one, as the paper's mean
(± SEM) over 20 random seeds, in the three scenarios Task-IL, Domain-IL and Class-IL (``task``,
``domain``, ``class``); "–" in the paper (a method that does not apply to a scenario) is absent here.

Every row names the clcourse method that reproduces it (None → ``finetune``, Offline → ``joint``).
XdG, DGR and DGR+distill carry the names their methods will take; until ``clcourse.methods.METHODS``
has them, ``clcourse reproduce`` lists them as "no method yet".
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field


N_SEEDS = 20  # every value of the tables is over 20 seeds


@dataclass(frozen=True)
class Value:
    """A published mean ± SEM (percent) over ``n`` seeds."""
    mean: float
    sem: float
    n: int = N_SEEDS

    @property
    def sd(self) -> float:
        """The standard deviation over seeds the SEM implies: SEM × √n."""
        return self.sem * math.sqrt(self.n)


@dataclass(frozen=True)
class Row:
    label: str                  # the method as the paper names it
    method: str                 # its name in clcourse.methods
    values: dict = field(default_factory=dict)  # scenario -> Value
    args: dict = field(default_factory=dict)    # the method's arguments that make the paper's row
    name: str = ""              # the row's name for `--methods` (default: the method's)

    @property
    def key(self) -> str:
        return self.name or self.method


@dataclass(frozen=True)
class Table:
    name: str
    benchmark: str
    source: str
    rows: tuple


def _row(label: str, method: str, task=None, domain=None, klass=None, args=None, name="") -> Row:
    values = {scenario: Value(*v) for scenario, v in
              (("task", task), ("domain", domain), ("class", klass)) if v is not None}
    return Row(label, method, values, dict(args or {}), name)


# The arguments that make a row's method the paper's. XdG: the proportion of hidden units gated per
# task; the 2019 code's `_compare.py` default is 0.8; van de Ven et al. 2020's grid search gave 0.9 for
# split MNIST task-IL (brain-inspired-replay @ 1a030f7, options.py set_defaults): used for Table 4.
XDG_SPLIT = {"xdg": 0.9}
XDG_PERMUTED = {"xdg": 0.8}
DISTILL = {"distill": True}
# Permuted MNIST's VAE has the classifier's 2 x 1000 hidden units ("Three scenarios" Appendix D).
GR_PERMUTED = {"hidden": (1000, 1000)}

_PAPER = 'van de Ven & Tolias 2019, "Three scenarios for continual learning", arXiv:1904.07734v1'

TABLES = {
    "table4": Table("table4", "split-mnist", f"{_PAPER}, Table 4 (split MNIST)", (
        _row("None", "finetune", (87.19, 0.94), (59.21, 2.04), (19.90, 0.02)),
        _row("Offline", "joint", (99.66, 0.02), (98.42, 0.06), (97.94, 0.03)),
        _row("XdG", "finetune", (99.10, 0.08), args=XDG_SPLIT, name="xdg"),
        _row("EWC", "ewc", (98.64, 0.22), (63.95, 1.90), (20.01, 0.06)),
        _row("Online EWC", "online-ewc", (99.12, 0.11), (64.32, 1.90), (19.96, 0.07)),
        _row("SI", "si", (99.09, 0.15), (65.36, 1.57), (19.99, 0.06)),
        _row("LwF", "lwf", (99.57, 0.02), (71.50, 1.63), (23.85, 0.44)),
        _row("DGR", "gr", (99.50, 0.03), (95.72, 0.25), (90.79, 0.41)),
        _row("DGR+distill", "gr", (99.61, 0.02), (96.83, 0.20), (91.79, 0.32), args=DISTILL,
             name="gr-distill"),
        _row("iCaRL (budget 2000)", "icarl", klass=(94.57, 0.11)),
    )),
    "table5": Table("table5", "permuted-mnist", f"{_PAPER}, Table 5 (permuted MNIST)", (
        _row("None", "finetune", (81.79, 0.48), (78.51, 0.24), (17.26, 0.19)),
        _row("Offline", "joint", (97.68, 0.01), (97.59, 0.01), (97.59, 0.02)),
        _row("XdG", "finetune", (91.40, 0.23), args=XDG_PERMUTED, name="xdg"),
        _row("EWC", "ewc", (94.74, 0.05), (94.31, 0.11), (25.04, 0.50)),
        _row("Online EWC", "online-ewc", (95.96, 0.06), (94.42, 0.13), (33.88, 0.49)),
        _row("SI", "si", (94.75, 0.14), (95.33, 0.11), (29.31, 0.62)),
        _row("LwF", "lwf", (69.84, 0.46), (72.64, 0.52), (22.64, 0.23)),
        _row("DGR", "gr", (92.52, 0.08), (95.09, 0.04), (92.19, 0.09), args=GR_PERMUTED),
        _row("DGR+distill", "gr", (97.51, 0.01), (97.35, 0.02), (96.38, 0.03),
             args={**GR_PERMUTED, **DISTILL}, name="gr-distill"),
        _row("iCaRL (budget 2000)", "icarl", klass=(94.85, 0.03)),
    )),
}
