"""Settings of a run: profiles are data, one table per benchmark.

A run is described by one frozen :class:`Settings`. It is built from three layers, later ones winning:

1. ``BENCHMARK_DEFAULTS``: what every profile shares for a benchmark (model family, scenario);
2. ``PROFILES[profile][benchmark]``: the sizes of that profile (tasks, widths, epochs, batch, lr, ...);
3. the caller's overrides (``--epochs 3`` on the command line, ``epochs=3`` in a notebook).

Profiles:

* ``smoke`` — seconds; tiny per-class subsets. Used by the tests.
* ``class`` — the default; a lesson's run in minutes on a 2-core CPU.
* ``paper`` — the published settings (sources in the table comments), meant for a GPU.

Adding a benchmark or a profile is adding rows here, never a new code path.
"""
from __future__ import annotations

import dataclasses
import numbers
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

SCENARIOS = ("task", "domain", "class")
OPTIMIZERS = ("adamw", "adam", "sgd")
MODELS = ("mlp", "cnn", "resnet32", "resnet-reduced", "conv5")
HEADS = ("auto", "single", "multi", "grow", "cosine")
CLASS_ORDERS = ("fixed", "seeded")
# Benchmarks that can use a subset of their data set's classes (``classes``), and how many there are.
CLASS_SUBSETS = {"cifar10": 10, "split-cifar10": 10}

# What every profile shares for one benchmark.
BENCHMARK_DEFAULTS: dict[str, dict[str, Any]] = {
    # One task with all ten digits: plain supervised learning (lesson 00).
    "mnist": dict(scenario="domain", model="mlp", n_tasks=1),
    # Each task is MNIST under a fixed pixel permutation; labels shared -> domain-IL by default.
    "permuted-mnist": dict(scenario="domain", model="mlp"),
    # Five tasks of two digits {0,1},{2,3},...; van de Ven & Tolias 2019, §4.
    "split-mnist": dict(scenario="class", model="mlp", n_tasks=5),
    # Task 1 MNIST, task 2 USPS resized to 28x28: a domain shift with the same ten labels.
    "mnist-usps": dict(scenario="domain", model="mlp", n_tasks=2),
    # Ten tasks of ten CIFAR-100 classes in PyCIL's seed-1993 order (G-U-N/PyCIL, utils/data_manager.py).
    "split-cifar100": dict(scenario="class", model="resnet32", n_tasks=10, augment=True),
    # Five tasks of two CIFAR-10 classes in label order (lesson 05's colour benchmark).
    "split-cifar10": dict(scenario="class", model="resnet-reduced", n_tasks=5, augment=True),
    # CIFAR-10 as one task, for pre-training a feature extractor.
    "cifar10": dict(scenario="domain", model="resnet-reduced", n_tasks=1, augment=True),
}

_SMOKE_MLP = dict(hidden=(64,), epochs=1, batch_size=64, optimizer="adam", lr=1e-3,
                  train_per_class=30, test_per_class=20)

PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "mnist": dict(_SMOKE_MLP),
        "permuted-mnist": dict(_SMOKE_MLP, n_tasks=2),
        "split-mnist": dict(_SMOKE_MLP),
        "mnist-usps": dict(_SMOKE_MLP),
        "split-cifar100": dict(model="resnet-reduced", n_tasks=2, epochs=1, batch_size=16,
                               optimizer="sgd", lr=0.05, momentum=0.9, train_per_class=4,
                               test_per_class=2),
        "cifar10": dict(epochs=1, batch_size=16, optimizer="sgd", lr=0.05, momentum=0.9,
                        train_per_class=8, test_per_class=4),
        "split-cifar10": dict(n_tasks=2, epochs=1, batch_size=16, optimizer="sgd", lr=0.05,
                              momentum=0.9, train_per_class=8, test_per_class=4),
    },
    "class": {
        "mnist": dict(hidden=(400, 400), epochs=2, batch_size=256, optimizer="adamw", lr=1e-3,
                      weight_decay=1e-4),
        # The setting of the LFD blog's baseline (seed 001): first task falls 96.8% -> 52.7%.
        "permuted-mnist": dict(n_tasks=3, hidden=(400, 400, 400), epochs=2, batch_size=256,
                               optimizer="adamw", lr=1e-3, weight_decay=1e-4),
        # van de Ven's split-MNIST network and optimiser (van de Ven & Tolias 2019, §4), fewer iterations.
        "split-mnist": dict(hidden=(400, 400), epochs=2, batch_size=128, optimizer="adam", lr=1e-3),
        "mnist-usps": dict(hidden=(400, 400), epochs=2, batch_size=128, optimizer="adam", lr=1e-3),
        "split-cifar100": dict(model="resnet-reduced", epochs=5, batch_size=128, optimizer="sgd",
                               lr=0.1, momentum=0.9, weight_decay=5e-4, train_per_class=100,
                               test_per_class=50),
        "cifar10": dict(epochs=10, batch_size=128, optimizer="sgd", lr=0.1, momentum=0.9,
                        weight_decay=5e-4),
        # Lesson 05 on the staged 4,000-image subset: the MNIST CNN on colour, Adam, a few epochs.
        "split-cifar10": dict(model="cnn", epochs=5, batch_size=64, optimizer="adam", lr=1e-3),
    },
    "paper": {
        "mnist": dict(hidden=(400, 400), iters=2000, batch_size=128, optimizer="adam", lr=1e-3),
        # van de Ven & Tolias 2019, §4 and Appendix D: 10 tasks, 2x1000, Adam 1e-4, batch 128,
        # 5000 iterations per task, MNIST zero-padded to 32x32 before permuting.
        "permuted-mnist": dict(n_tasks=10, hidden=(1000, 1000), iters=5000, batch_size=128,
                               optimizer="adam", lr=1e-4, pad_to=32, keep_optimizer=True,
                               head="single"),
        # van de Ven & Tolias 2019, §4: 2x400, Adam 1e-3, batch 128, 2000 iterations per task.
        # van de Ven's code keeps one Adam across tasks (its default `--optimizer adam`; `adam_reset`
        # is the option) and one output layer with all units, masked per scenario (head="single").
        # Digits are assigned to tasks as the 2019 code does (class_order="seeded", below).
        "split-mnist": dict(hidden=(400, 400), iters=2000, batch_size=128, optimizer="adam",
                            lr=1e-3, keep_optimizer=True, head="single", class_order="seeded"),
        # No published setting for this pair; split-MNIST's network and optimiser.
        "mnist-usps": dict(hidden=(400, 400), iters=2000, batch_size=128, optimizer="adam",
                           lr=1e-3),
        # PyCIL's iCaRL/ResNet-32 protocol (G-U-N/PyCIL models/icarl.py): SGD 0.1, momentum 0.9, batch 128,
        # 170 epochs, lr x0.1 at 80 and 120, weight decay 2e-4 (PyCIL's value after task 1).
        "split-cifar100": dict(model="resnet32", epochs=170, batch_size=128, optimizer="sgd",
                               lr=0.1, momentum=0.9, weight_decay=2e-4, milestones=(80, 120)),
        "cifar10": dict(model="resnet32", epochs=160, batch_size=128, optimizer="sgd", lr=0.1,
                        momentum=0.9, weight_decay=5e-4, milestones=(80, 120)),
        # PyCIL's ResNet-32 schedule (models/icarl.py, as split-cifar100), on the full CIFAR-10.
        "split-cifar10": dict(model="resnet32", epochs=170, batch_size=128, optimizer="sgd",
                              lr=0.1, momentum=0.9, weight_decay=2e-4, milestones=(80, 120)),
    },
}

BENCHMARKS = tuple(BENCHMARK_DEFAULTS)
PROFILE_NAMES = tuple(PROFILES)


@dataclass(frozen=True)
class Settings:
    """Everything that decides a run's numbers. Two runs with equal Settings give equal matrices."""

    benchmark: str
    method: str = "finetune"
    profile: str = "class"
    scenario: str = "domain"
    seed: int = 0
    n_tasks: int = 1
    model: str = "mlp"
    hidden: Tuple[int, ...] = (400, 400)
    head: str = "auto"              # auto: multi for task-IL, grow for class-IL, single for domain-IL;
                                    # cosine: σ·cos(h, w) (UCIR, COIL), growing in class-IL
    epochs: int = 1
    iters: Optional[int] = None     # iterations per task; when set, overrides epochs
    batch_size: int = 128
    optimizer: str = "adam"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0
    milestones: Tuple[int, ...] = ()  # epochs at which the lr is multiplied by lr_decay (per task)
    lr_decay: float = 0.1           # the factor at each milestone (iCaRL's CIFAR schedule: 0.2)
    keep_optimizer: bool = False    # one optimiser (with its state) for all tasks, not one per task
    train_per_class: Optional[int] = None   # subset: at most this many training images per class
    test_per_class: Optional[int] = None
    pad_to: Optional[int] = None    # zero-pad digit images to this size (permuted MNIST, paper)
    augment: bool = False           # random crop + flip on the device (CIFAR)
    # split MNIST's digits per task: "fixed" {0,1},...,{8,9}; "seeded" as van de Ven's 2019 code
    # (data.py at 86802a8: np.random.seed(seed), np.random.permutation(10); seed 0 keeps 0-9)
    class_order: str = "fixed"
    # a subset of the data set's classes, in this order (empty: all). cifar10: one task of them;
    # split-cifar10: n_tasks equal tasks of consecutive ones, e.g. (4, 5, 6, 7, 8, 9) with n_tasks=3
    classes: Tuple[int, ...] = ()
    amp: bool = True                # bf16 autocast, used on CUDA only
    method_args: dict = field(default_factory=dict)  # the method's own hyperparameters

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["hidden"], d["milestones"] = list(self.hidden), list(self.milestones)
        d["classes"] = list(self.classes)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Settings":
        d = dict(d)
        d["hidden"], d["milestones"] = tuple(d["hidden"]), tuple(d["milestones"])
        d["classes"] = tuple(d.get("classes", ()))  # (dicts written before classes existed)
        return cls(**d)


def _choice(kind: str, value: str, valid) -> None:
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid {kind}s: {', '.join(valid)}")


def make_settings(benchmark: str, profile: str = "class", **overrides) -> Settings:
    """The settings of ``benchmark`` under ``profile``, with ``overrides`` applied and checked.

    ``None`` overrides are ignored, so a CLI can pass every option through. Raises ``ValueError``
    with the list of valid names for an unknown name, and a clear message for a bad number.
    """
    _choice("benchmark", benchmark, BENCHMARKS)
    _choice("profile", profile, PROFILE_NAMES)
    values = dict(BENCHMARK_DEFAULTS[benchmark])
    values.update(PROFILES[profile][benchmark])
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise ValueError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    for key in ("hidden", "milestones"):
        if key in values:
            values[key] = tuple(int(v) for v in values[key])
    if "classes" in values:
        values["classes"] = _class_ids(values["classes"])
    settings = Settings(benchmark=benchmark, profile=profile, **values)
    validate(settings)
    return settings


def _class_ids(classes) -> tuple:
    """A tuple of class ids: numpy ints become ints; anything else is left for validate()."""
    if isinstance(classes, (str, bytes)) or not hasattr(classes, "__iter__"):
        raise ValueError(f"classes must be a sequence of class ids, e.g. (0, 1, 2, 3); "
                         f"got {classes!r}")
    return tuple(int(c) if isinstance(c, numbers.Integral) and not isinstance(c, bool) else c
                 for c in classes)


def validate(s: Settings) -> None:
    """Reject names and numbers that cannot make a run, with a message a student can act on."""
    # The method name is checked by clcourse.methods.make_method (config knows no method).
    _choice("scenario", s.scenario, SCENARIOS)
    _choice("optimizer", s.optimizer, OPTIMIZERS)
    _choice("model", s.model, MODELS)
    _choice("head", s.head, HEADS)
    _choice("class order", s.class_order, CLASS_ORDERS)
    positive = dict(n_tasks=s.n_tasks, epochs=s.epochs, batch_size=s.batch_size)
    positive.update({k: v for k, v in dict(iters=s.iters, train_per_class=s.train_per_class,
                                            test_per_class=s.test_per_class,
                                            pad_to=s.pad_to).items() if v is not None})
    for name, value in positive.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not s.lr > 0:
        raise ValueError(f"lr must be > 0, got {s.lr!r}")
    if not 0 < s.lr_decay <= 1:
        raise ValueError(f"lr_decay must lie in (0, 1], got {s.lr_decay!r}")
    if s.weight_decay < 0 or s.momentum < 0:
        raise ValueError("weight_decay and momentum must be >= 0")
    if any(h < 1 for h in s.hidden) or not s.hidden:
        raise ValueError(f"hidden widths must be positive integers, got {s.hidden!r}")
    if s.benchmark == "split-mnist" and s.n_tasks > 5:
        raise ValueError("split-mnist has at most 5 tasks of two digits")
    if s.classes:
        _validate_classes(s)
    elif s.benchmark == "split-cifar10" and 10 % s.n_tasks:
        raise ValueError("split-cifar10 needs n_tasks dividing 10 (1, 2, 5 or 10)")
    if s.benchmark == "split-cifar100" and 100 % s.n_tasks:
        raise ValueError("split-cifar100 needs n_tasks dividing 100 (e.g. 2, 5, 10, 20)")
    if s.benchmark in ("mnist-usps",) and s.n_tasks != 2:
        raise ValueError("mnist-usps has exactly 2 tasks")
    if s.benchmark in ("mnist", "cifar10") and s.n_tasks != 1:
        raise ValueError(f"{s.benchmark} is a single task (n_tasks=1)")


def _validate_classes(s: Settings) -> None:
    """``classes``: known ids of the data set, no duplicates, split evenly into the tasks."""
    if s.benchmark not in CLASS_SUBSETS:
        raise ValueError(f"classes= is supported for {', '.join(CLASS_SUBSETS)} only, "
                         f"not {s.benchmark}")
    n = CLASS_SUBSETS[s.benchmark]
    bad = [c for c in s.classes if isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < n]
    if bad:
        raise ValueError(f"unknown class id(s) {bad} for {s.benchmark}: valid ids are 0-{n - 1}")
    twice = sorted({c for c in s.classes if s.classes.count(c) > 1})
    if twice:
        raise ValueError(f"classes must not repeat, got {list(s.classes)} ({twice} twice)")
    if len(s.classes) % s.n_tasks:
        pairs = len(s.classes) // 2
        hint = f"; tasks of 2 classes: n_tasks={pairs}" if len(s.classes) % 2 == 0 else ""
        raise ValueError(f"{len(s.classes)} classes {list(s.classes)} cannot be split into "
                         f"n_tasks={s.n_tasks} equal tasks: n_tasks must divide "
                         f"{len(s.classes)}{hint}")
