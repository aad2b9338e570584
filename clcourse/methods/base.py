"""The hooks a continual-learning method implements. The engine (``engine.py``) calls them; a method
never writes its own training loop: its extra stages run through ``loop.run_steps`` too.

Call order, for every task of the stream (``task.id`` = 0, 1, ...)::

    method.before_task(task)
    data = method.train_set(task)                 # what to train on (default: this task)
    optimizer = method.configure_optimizer()      # per task (or once: settings.keep_optimizer)
    for each mini-batch:                          # loop.run_steps
        replay = method.replay(n, generator)      # replayed examples, or None
        terms = method.loss(batch, replay)        # {"ce": ..., "penalty": ...}: summed, each logged
        backward, optimizer step
        method.after_step()
    method.after_task(task)                       # may run extra stages: self.run_stage(...)
    evaluate every task with method.predict(x, t)  # the scenario masks the logits, not the method
    ... and every extra predictor in method.extra_predictions()
    result.reports.append(method.report())        # numbers about the method (DER's size)

Every default below does the plain thing, so fine-tuning is this class with nothing overridden.
Methods combine by cooperative inheritance: every overriding hook calls ``super()``, so
``class BIRplusSI(SI, BIR)`` gets BI-R's replay loss plus SI's penalty.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from .. import loop
from ..data.scenarios import Batch, Scenario, TensorSet, masked_logits
from ..gating import add_gates, set_context
from ..models import build_model


@dataclass(frozen=True)
class Arg:
    """One hyperparameter of a method: its default (a value, or a function of the run's Settings
    when it depends on the scenario or benchmark), what it is with its unit, and its source;
    optionally the values it may take (``choices``) or the range of a number (``low``..``high``)."""
    default: Any
    doc: str
    source: str = ""
    choices: tuple = ()
    low: float | None = None
    high: float | None = None

    def value(self, settings):
        return self.default(settings) if callable(self.default) else self.default

    def check(self, method: str, key: str, value) -> None:
        if self.choices and value not in self.choices:
            raise ValueError(f"method {method!r}: {key} must be one of "
                             f"{', '.join(map(repr, self.choices))}, got {value!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if (self.low is not None and value < self.low) or \
                    (self.high is not None and value > self.high):
                raise ValueError(f"method {method!r}: {key} must lie in "
                                 f"[{self.low}, {self.high}], got {value!r}")


class Method:
    """Base class: holds the model, the scenario and the settings; every hook has a plain default."""

    name = "base"
    # The method's own hyperparameters (see Arg). Every method has ``xdg`` (``gating.py``).
    arguments: dict[str, Arg] = {
        "xdg": Arg(0.0, "XdG: proportion of each hidden layer's units gated off per task "
                   "(0 = no gating; task- and domain-IL only, the task is needed at test time)",
                   "Masse et al. 2018 PNAS; van de Ven & Tolias 2019 code `--xdg` (0.8 default); "
                   "van de Ven et al. 2020 code: 0.9 for split MNIST task-IL", low=0.0, high=0.99),
    }

    def __init__(self, model: torch.nn.Module, scenario: Scenario, settings, stream=None):
        self.model, self.scenario, self.settings, self.stream = model, scenario, settings, stream
        # The effective hyperparameters: resolved into settings.method_args before the run.
        self.args = {**self.resolve_args(settings, settings.method_args)}
        self.task = None
        if self.args.get("xdg") and not getattr(model, "xdg_gates", None):
            raise ValueError(f"method {self.name!r} builds its own network, which has no XdG gates: "
                             "use xdg with a method on the plain 'mlp' network")

    # --- the method's hyperparameters -------------------------------------------------------------
    @classmethod
    def all_arguments(cls) -> dict[str, Arg]:
        """Arguments of this method and of every method it combines (a subclass's entry wins)."""
        merged = {}
        for klass in reversed(cls.__mro__):
            merged.update(getattr(klass, "arguments", {}) or {})
        return merged

    @classmethod
    def resolve_args(cls, settings, given: dict) -> dict:
        """``{**defaults, **given}``; an unknown key is a ValueError listing the valid keys."""
        valid = cls.all_arguments()
        unknown = sorted(set(given) - set(valid))
        if unknown:
            takes = (f"valid arguments: {', '.join(valid)}" if valid
                     else "it takes no arguments")
            raise ValueError(f"method {cls.name!r} has no argument {', '.join(map(repr, unknown))}; "
                             f"{takes}")
        values = {key: arg.value(settings) for key, arg in valid.items()}
        for key, value in given.items():
            default = values[key]
            if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
            if default is not None and not isinstance(value, type(default)):
                raise ValueError(f"method {cls.name!r}: {key} must be a {type(default).__name__} "
                                 f"(like its default {default!r}), got {value!r}")
            values[key] = value
        for key, value in values.items():
            valid[key].check(cls.name, key, value)
        # The arguments every method shares (xdg) are recorded only when given: the settings, keys and
        # checkpoints of runs without them stay what they were before they existed.
        return {k: v for k, v in values.items()
                if not (k in Method.arguments and k not in given and v == Method.arguments[k].default)}

    # --- the network ----------------------------------------------------------------------------
    @classmethod
    def make_model(cls, settings, input_shape, scenario) -> torch.nn.Module:
        """The network the method trains (DER and BI-R build their own); with ``xdg`` > 0 its
        hidden layers get one fixed random gate per task (``gating.add_gates``)."""
        model = build_model(settings, input_shape, scenario)
        gated = settings.method_args.get("xdg", 0.0)
        if gated:
            if scenario.kind == "class":
                raise ValueError("xdg needs the task of every test example to choose its gate: "
                                 "task-IL or domain-IL, not class-IL")
            model.xdg_gates = add_gates(model.backbone, settings.n_tasks, gated, seed=settings.seed)
        return model

    def parameters(self):
        """What the optimiser trains: by default every parameter of the model that needs a grad
        (frozen parts excluded). A method with an extra module (GR's VAE) adds it here."""
        return [p for p in self.model.parameters() if p.requires_grad]

    def configure_optimizer(self) -> torch.optim.Optimizer:
        """The optimiser: built for every task, or once and kept (``settings.keep_optimizer``, as in
        van de Ven's code) unless ``parameters()`` changed. A method may return parameter groups
        at their own learning rates: the loop keeps each group's own lr."""
        return make_optimizer(self.parameters(), self.settings)

    # --- before and during training ------------------------------------------------------------
    def before_task(self, task) -> None:
        """Prepare for ``task`` (grow memories, freeze copies, ...)."""
        self.task = task
        set_context(self.model, task.id)  # XdG: the new task's gates, until told otherwise

    def train_set(self, task) -> TensorSet:
        """The examples trained on during ``task``: by default only its own."""
        return self.scenario.train_set(task)

    def replay(self, n: int, generator: torch.Generator) -> TensorSet | None:
        """Examples to replay next to a mini-batch of ``n`` current ones (inputs, target units,
        task ids, optional teacher logits in ``soft``), or None. The loop masks and augments
        them like the current batch and hands both to :meth:`loss`."""
        return None

    def loss(self, batch: Batch, replay: Batch | None = None) -> dict:
        """Named loss terms, summed by the loop and each logged in the run's history. Here:
        cross-entropy over the active output units (``batch.mask``, one row per example)."""
        return {"ce": F.cross_entropy(masked_logits(self.outputs(batch), batch.mask), batch.y)}

    def outputs(self, batch: Batch) -> torch.Tensor:
        """The model's logits for ``batch.x``, computed once per step and kept on the batch, so a
        method that adds a term on the same logits (LwF's distillation) costs no second forward.
        (The loop augments ``batch.x`` before :meth:`loss`, so the cache never sees stale inputs.)"""
        if batch.logits is None:
            batch.logits = self.forward(batch.x, batch.t)
        return batch.logits

    def forward(self, x: torch.Tensor, t: torch.Tensor, model=None) -> torch.Tensor:
        """``model``'s (default: the network's) logits for ``x``, its XdG gates (if any) set to each
        row's task ``t`` first. Plain ``self.model(x)`` keeps the gates of the last call."""
        model = self.model if model is None else model
        set_context(model, t)
        return model(x)

    def after_step(self) -> None:
        """Called after every optimiser step (SI accumulates its path integral here)."""

    def after_task(self, task) -> None:
        """Called when ``task``'s training is done, before evaluation (EWC computes its Fisher here;
        BiC runs its second stage)."""

    # --- extra training stages ------------------------------------------------------------------
    def rng(self, task, stage: str) -> torch.Generator:
        """A generator for one stage of one task, seeded by (seed, task, stage): a resumed run
        draws the same numbers. (The task's main stage uses the engine's own generator.)"""
        seed = (self.settings.seed * 1_000_003 + task.id) * 7919 + zlib.crc32(stage.encode())
        return torch.Generator(self.device).manual_seed(seed % 2**63)

    @property
    def device(self) -> torch.device:
        """Where the model lives (and so the data, the generators, the method's tensors)."""
        return next(iter(self.model.parameters()), torch.zeros(0)).device

    def run_stage(self, stage: str, data: TensorSet, loss_fn, optimizer, *, steps: int,
                  batch_size: int | None = None, masks=None, **kwargs) -> dict:
        """An extra training stage of the current task on the shared loop (``loop.run_steps``),
        with its own generator ``rng(task, stage)``; returns its loss curves."""
        return loop.run_steps(data, loss_fn, optimizer, steps=steps,
                              batch_size=batch_size or self.settings.batch_size,
                              generator=self.rng(self.task, stage), masks=masks, **kwargs)

    # --- evaluation -----------------------------------------------------------------------------
    def predict(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Logits for ``x`` (``t``: each example's task id, for task-gated networks); the engine
        masks them by scenario and takes the argmax."""
        return self.forward(x, t)

    def extra_predictions(self) -> dict:
        """Further predictors ``name -> f(x, t) -> logits``, each filling its own accuracy matrix
        (iCaRL's nearest-mean-of-exemplars next to its linear head; BiC before correction)."""
        return {}

    def report(self) -> dict:
        """Numbers about the method itself after each task (plain ints, floats, lists), stored per
        task in ``result.json``'s ``reports`` (DER's parameter count; WA's γ; BiC's α, β)."""
        return {}

    # --- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What the method must remember across tasks, beyond the model: tensors and plain
        containers only (checkpoints are loaded with ``weights_only=True``). Restored *before*
        the model's weights, so a network that grew can be rebuilt first."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def make_optimizer(params, s) -> torch.optim.Optimizer:
    """The optimiser named in the settings, over ``params`` (tensors or parameter groups).

    Adam(W) uses the fused kernel (one pass over all parameters) where this torch build has one for
    the device: on the 2-core CPU the unfused step was ~20% of an MLP step's time (profiled).
    """
    params = list(params)
    if s.optimizer == "sgd":
        return torch.optim.SGD(params, lr=s.lr, momentum=s.momentum, weight_decay=s.weight_decay)
    cls = torch.optim.AdamW if s.optimizer == "adamw" else torch.optim.Adam
    try:
        return cls(params, lr=s.lr, weight_decay=s.weight_decay, fused=True)
    except (RuntimeError, ValueError):  # no fused kernel for this device / dtype / torch version
        return cls(params, lr=s.lr, weight_decay=s.weight_decay)
