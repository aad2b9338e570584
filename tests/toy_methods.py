"""Toy methods that exercise every piece of the method API (tests/test_method_api.py).

None of them is a real continual-learning method; each is the smallest method that needs one hook:
a second stage, a replay source, an extra module, its own learning rates, a frozen part, a network
that grows, task ids at prediction, arguments, combined penalties, an extra predictor.

Run as a script, it trains ``Grows`` (for the SIGKILL test, which needs a separate process):
    python tests/toy_methods.py ROOT OUT [--resume]
"""
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from clcourse.data.scenarios import TensorSet, masked_logits
from clcourse.methods import Arg, Method
from clcourse.models import Classifier, Frozen, SingleHead


class Killed(Exception):
    pass


class SecondStage(Method):
    """After each task, fit a per-unit logit offset on the task's data, the network held fixed."""
    name = "toy-second-stage"
    kill_in_stage_of = None  # task id whose second stage "gets killed" (raises)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.offset = torch.zeros(self.scenario.n_outputs, device=self.device, requires_grad=True)

    def after_task(self, task):
        super().after_task(task)
        self.model.eval()
        self.before_stage = {k: v.clone() for k, v in self.model.state_dict().items()}
        data = self.scenario.train_set(task)
        masks = self.scenario.mask_table(task.id, self.device)
        steps = [0]

        def stage_loss(batch, replay):
            with torch.no_grad():
                z = self.model(batch.x)
            return {"stage": F.cross_entropy(masked_logits(z + self.offset, batch.mask), batch.y)}

        def count():
            steps[0] += 1
            if task.id == self.kill_in_stage_of and steps[0] == 3:
                raise Killed("killed in the second stage")

        self.stage_curves = self.run_stage("offset", data, stage_loss,
                                           torch.optim.SGD([self.offset], lr=0.5), steps=10,
                                           masks=masks, after_step=count)

    def predict(self, x, t):
        return self.model(x) + self.offset.detach()

    def state_dict(self):
        return {**super().state_dict(), "offset": self.offset.detach().clone()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        with torch.no_grad():
            self.offset.copy_(state["offset"])


class Replays(Method):
    """Keeps 8 training examples of every finished task and replays 4 of them at every step."""
    name = "toy-replay"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memory, self.seen = None, []

    def after_task(self, task):
        super().after_task(task)
        data = self.scenario.train_set(task)
        kept = TensorSet(data.x[:8], data.y[:8], data.t[:8])
        self.memory = kept if self.memory is None else TensorSet.cat([self.memory, kept])

    def replay(self, n, generator):
        if self.memory is None:
            return None
        idx = torch.randint(len(self.memory), (4,), generator=generator, device=self.device)
        return TensorSet(self.memory.x[idx], self.memory.y[idx], self.memory.t[idx])

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        self.seen.append((self.task.id, replay))
        if replay is not None:
            z = masked_logits(self.model(replay.x), replay.mask)
            terms["replay"] = F.cross_entropy(z, replay.y)
        return terms


class ExtraModule(Method):
    """Trains an extra module (a reconstruction decoder) next to the classifier."""
    name = "toy-extra-module"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.decoder = nn.Linear(self.scenario.n_outputs, 4).to(self.device)
        self.built = 0

    def parameters(self):
        return [*super().parameters(), *self.decoder.parameters()]

    def configure_optimizer(self):
        self.built += 1
        self.optimizer = super().configure_optimizer()
        return self.optimizer

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        terms["decoder"] = self.decoder(self.model(batch.x)).pow(2).mean()
        return terms


class OwnLearningRates(Method):
    """The head in its own parameter group at lr 0 (BiC keeps a bias group at lr 0 this way)."""
    name = "toy-own-lr"

    def configure_optimizer(self):
        head = list(self.model.head.parameters())
        rest = [p for p in self.model.parameters() if all(p is not h for h in head)]
        self.optimizer = torch.optim.Adam([{"params": rest}, {"params": head, "lr": 0.0}],
                                          lr=self.settings.lr)
        return self.optimizer


class FrozenBackbone(Method):
    """A batch-norm feature extractor that must not change, and a head that learns on top."""
    name = "toy-frozen"

    @classmethod
    def make_model(cls, settings, input_shape, scenario):
        c, h, w = input_shape
        features = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, 16), nn.BatchNorm1d(16),
                                 nn.ReLU())
        return Classifier(Frozen(features), SingleHead(16, scenario.n_outputs))


class Branch(nn.Module):
    """One extractor per task, features summed (a toy DER)."""

    def __init__(self, in_features, n_outputs):
        super().__init__()
        self.in_features, self.branches = in_features, nn.ModuleList()
        self.head = nn.Linear(8, n_outputs)

    def grow(self):
        self.branches.append(nn.Linear(self.in_features, 8).to(self.head.weight.device))

    def forward(self, x):
        return self.head(sum(torch.relu(b(x.flatten(1))) for b in self.branches))


class Grows(Method):
    """Adds an extractor branch at every task: resume must rebuild them before loading weights."""
    name = "toy-grows"

    @classmethod
    def make_model(cls, settings, input_shape, scenario):
        c, h, w = input_shape
        return Branch(c * h * w, scenario.n_outputs)

    def before_task(self, task):
        super().before_task(task)
        self.model.grow()

    def state_dict(self):
        return {**super().state_dict(), "branches": len(self.model.branches)}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        while len(self.model.branches) < state["branches"]:
            self.model.grow()


class SeesTaskIds(Method):
    """Records the task ids ``predict`` receives."""
    name = "toy-task-ids"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.seen_ids = []

    def predict(self, x, t):
        self.seen_ids.append(t.clone())
        return super().predict(x, t)


class WithArguments(Method):
    name = "toy-args"
    arguments = {
        "lam": Arg(1.0, "strength of nothing, unitless", "a test"),
        "kind": Arg(lambda s: "per-task" if s.scenario == "task" else "shared", "a choice"),
    }


class PenaltyA(Method):
    name = "toy-penalty-a"
    arguments = {"a": Arg(0.5, "weight of penalty a")}

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        terms["a"] = self.args["a"] * sum(p.pow(2).sum() for p in self.model.parameters())
        return terms


class PenaltyB(Method):
    name = "toy-penalty-b"
    arguments = {"b": Arg(0.25, "weight of penalty b")}

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        terms["b"] = self.args["b"] * sum(p.abs().sum() for p in self.model.parameters())
        return terms


class BothPenalties(PenaltyA, PenaltyB):  # a combined method is declared in one line
    name = "toy-a+b"


class ExtraPredictor(Method):
    """Reports a second accuracy matrix: a predictor that always answers the first active unit."""
    name = "toy-extra-predictor"

    def extra_predictions(self):
        return {"first-unit": lambda x, t: torch.zeros(len(x), self.scenario.n_outputs,
                                                       device=x.device)}


if __name__ == "__main__":
    import clcourse as cl

    root, out = sys.argv[1], sys.argv[2]
    cl.run("permuted-mnist", Grows, profile="smoke", root=root, out=out, n_tasks=3, epochs=150,
           resume="--resume" in sys.argv, progress=False)
