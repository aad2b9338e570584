"""The hooks a continual-learning method implements. The engine (``engine.py``) calls them; a method
never writes its own training loop.

Call order, for every task t of the stream::

    method.before_task(t, task)
    data = method.train_set(t, task)              # what to train on (default: this task)
    optimizer = method.configure_optimizer()      # per task (or once: settings.keep_optimizer)
    for each mini-batch (x, y, task_ids, mask):
        loss = method.loss(x, y, task_ids, mask)  # cross-entropy on the active units + extra terms
        backward, optimizer step
        method.after_step()
    method.after_task(t, task)
    evaluate every task with method.predict(x)     # the scenario masks the logits, not the method

Every default below does the plain thing, so fine-tuning is this class with nothing overridden.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..data.scenarios import Scenario, TensorSet, masked_logits


class Method:
    """Base class: holds the model, the scenario and the settings; every hook has a plain default."""

    name = "base"

    def __init__(self, model: torch.nn.Module, scenario: Scenario, settings, stream=None):
        self.model, self.scenario, self.settings, self.stream = model, scenario, settings, stream
        # A method's own hyperparameters live in settings.method_args, documented in its file.
        self.args = dict(settings.method_args)

    # --- before and during training ------------------------------------------------------------
    def before_task(self, t: int, task) -> None:
        """Prepare for task t (grow memories, freeze copies, ...)."""

    def train_set(self, t: int, task) -> TensorSet:
        """The examples trained on during task t: by default only task t's own."""
        return self.scenario.train_set(task)

    def configure_optimizer(self) -> torch.optim.Optimizer:
        """The optimiser: built for every task, or once and kept (``settings.keep_optimizer``, as in
        van de Ven's code) unless the network grew new units."""
        return make_optimizer(self.model.parameters(), self.settings)

    def loss(self, x, y, task_ids, mask) -> torch.Tensor:
        """Cross-entropy over the active output units (``mask``, one row per example)."""
        return F.cross_entropy(masked_logits(self.model(x), mask), y)

    def after_step(self) -> None:
        """Called after every optimiser step (SI accumulates its path integral here)."""

    def after_task(self, t: int, task) -> None:
        """Called when task t's training is done, before evaluation (EWC computes its Fisher here)."""

    # --- evaluation -----------------------------------------------------------------------------
    def predict(self, x) -> torch.Tensor:
        """Logits for ``x``; the engine masks them by scenario and takes the argmax."""
        return self.model(x)

    # --- resume ---------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        """What the method must remember across tasks, beyond the model (saved after each task)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def make_optimizer(params, s) -> torch.optim.Optimizer:
    """The optimiser named in the settings.

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
