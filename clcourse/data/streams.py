"""Continual-learning streams: a benchmark becomes a list of tasks with tensors on the device.

Every benchmark function turns raw uint8 images (``sources.load_dataset``) into a :class:`Stream`:
float tensors already on the training device, the original labels, and each task's class list.
How labels become output units (task-, domain-, class-IL) is *not* decided here: that is the
scenario's job (``scenarios.py``), so one stream serves all three scenarios.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .sources import load_dataset

# PyCIL's class order for CIFAR-100: np.random.seed(1993); np.random.permutation(100).
# Element i is the original label that becomes class i (PyCIL, G-U-N/PyCIL utils/data_manager.py).
CIFAR100_ORDER_1993 = [
    68, 56, 78, 8, 23, 84, 90, 65, 74, 76, 40, 89, 3, 92, 55, 9, 26, 80, 43, 38,
    58, 70, 77, 1, 85, 19, 17, 50, 28, 53, 13, 81, 45, 82, 6, 59, 83, 16, 15, 44,
    91, 41, 72, 60, 79, 52, 20, 10, 31, 54, 37, 95, 14, 71, 96, 98, 97, 2, 64, 66,
    42, 22, 35, 86, 24, 34, 87, 21, 99, 0, 88, 27, 18, 94, 11, 12, 47, 25, 30, 46,
    62, 69, 36, 61, 7, 63, 75, 5, 32, 4, 51, 48, 73, 93, 39, 67, 29, 49, 57, 33]

# Per-channel statistics of the training sets, for normalising CIFAR inputs.
CIFAR_STATS = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": ((0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


@dataclass
class Task:
    """One task: its data (float tensors on the device, original labels) and its classes.

    ``classes`` lists the original labels of this task in the order their output units are laid
    out by the scenario.
    """
    id: int
    name: str
    classes: list
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@dataclass
class Stream:
    name: str
    tasks: list
    input_shape: tuple
    info: dict = field(default_factory=dict)  # where the data came from, permutation seed, ...

    def __len__(self):
        return len(self.tasks)


def subset_per_class(x: torch.Tensor, y: torch.Tensor, per_class: int | None):
    """Keep the first ``per_class`` examples of every class, in dataset order (deterministic)."""
    if per_class is None:
        return x, y
    keep = torch.zeros_like(y, dtype=torch.bool)
    for c in y.unique():
        keep[torch.nonzero(y == c).flatten()[:per_class]] = True
    return x[keep], y[keep]


def to_float(x_uint8: torch.Tensor, device, stats=None) -> torch.Tensor:
    """uint8 N×C×H×W -> float in [0, 1] on ``device``, optionally standardised per channel."""
    x = x_uint8.to(device).float().div_(255)
    if stats is not None:
        mean, std = (torch.tensor(s, device=device).view(1, -1, 1, 1) for s in stats)
        x = (x - mean) / std
    return x


def _split(raw, s, device, stats=None, pad_to=None, size=None):
    """The (x_train, y_train, x_test, y_test) of a raw dataset after subsetting, on the device."""
    out = []
    for x, y, n in ((raw.x_train, raw.y_train, s.train_per_class),
                    (raw.x_test, raw.y_test, s.test_per_class)):
        x, y = subset_per_class(x, y, n)
        x = to_float(x, device, stats)
        if size is not None and x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        if pad_to is not None and x.shape[-1] < pad_to:
            p = pad_to - x.shape[-1]
            x = F.pad(x, (p // 2, p - p // 2, p // 2, p - p // 2))
        out += [x, y.to(device)]
    return out


def permute_pixels(x: torch.Tensor, perm: torch.Tensor) -> torch.Tensor:
    """Shuffle the pixels of every image in ``x`` (N×C×H×W or N×D) by the same permutation
    ``perm`` of the C·H·W (or D) positions; the shape is kept. Pixel i of the output is pixel
    ``perm[i]`` of the input."""
    return x.flatten(1)[:, perm].view(x.shape)


def permutations(n_tasks: int, n_pixels: int, seed: int) -> list:
    """Pixel permutations of permuted MNIST: task 0 is the identity, the rest come from ``seed``.

    A generator of its own, so the permutations do not depend on what else used the global RNG.
    """
    g = torch.Generator().manual_seed(10_000 + seed)
    return [torch.arange(n_pixels)] + [torch.randperm(n_pixels, generator=g)
                                       for _ in range(n_tasks - 1)]


def permuted_mnist(s, root=None, device="cpu") -> Stream:
    xtr, ytr, xte, yte = _split(load_dataset("mnist", root), s, device, pad_to=s.pad_to)
    tasks = []
    for t, perm in enumerate(permutations(s.n_tasks, xtr[0].numel(), s.seed)):
        perm = perm.to(device)
        tasks.append(Task(t, f"permutation {t}" if t else "identity", list(range(10)),
                          permute_pixels(xtr, perm), ytr, permute_pixels(xte, perm), yte))
    return Stream("permuted-mnist", tasks, tuple(xtr.shape[1:]), {"permutation_seed": 10_000 + s.seed,
                                                   "first_task": "identity"})


def class_task_indices(y: torch.Tensor, class_groups) -> list:
    """For each group of classes, the indices (in dataset order) of the examples whose label is in
    it. Groups must not share a class: a split into tasks puts every example in at most one task."""
    seen = [c for group in class_groups for c in group]
    if len(seen) != len(set(seen)):
        raise ValueError(f"class groups overlap: {class_groups}")
    return [torch.nonzero(torch.isin(y, torch.tensor(list(g), device=y.device))).flatten()
            for g in class_groups]


def class_tasks(x_train, y_train, x_test, y_test, class_groups, names=None) -> list:
    """Split a labelled set into tasks, one per group of classes (labels are kept as they are)."""
    tasks = []
    for t, (group, tr, te) in enumerate(zip(class_groups, class_task_indices(y_train, class_groups),
                                            class_task_indices(y_test, class_groups))):
        name = names[t] if names else "classes " + ",".join(map(str, group))
        tasks.append(Task(t, name, list(group), x_train[tr], y_train[tr], x_test[te], y_test[te]))
    return tasks


def digit_order(seed: int, order: str = "seeded") -> list:
    """The digits in the order they become classes 0-9 (two per task): ``"fixed"`` 0-9, ``"seeded"``
    as van de Ven's 2019 code (GMvandeVen/continual-learning data.py at 86802a8): for seed ≠ 0,
    ``np.random.seed(seed); p = np.random.permutation(10)`` relabels digit y as class p[y], so class c
    is digit argsort(p)[c]; seed 0 keeps 0-9."""
    import numpy as np

    if order == "fixed" or seed == 0:
        return list(range(10))
    relabel = np.random.RandomState(seed).permutation(10)  # the legacy global RNG's stream
    return np.argsort(relabel).tolist()


def split_mnist(s, root=None, device="cpu") -> Stream:
    xtr, ytr, xte, yte = _split(load_dataset("mnist", root), s, device, pad_to=s.pad_to)
    digits = digit_order(s.seed, s.class_order)
    groups = [digits[2 * t:2 * t + 2] for t in range(s.n_tasks)]
    return Stream("split-mnist", class_tasks(xtr, ytr, xte, yte, groups), tuple(xtr.shape[1:]),
                  {"class_order": s.class_order, "digits": digits})


def mnist(s, root=None, device="cpu") -> Stream:
    xtr, ytr, xte, yte = _split(load_dataset("mnist", root), s, device, pad_to=s.pad_to)
    task = Task(0, "MNIST", list(range(10)), xtr, ytr, xte, yte)
    return Stream("mnist", [task], tuple(xtr.shape[1:]))


def mnist_usps(s, root=None, device="cpu") -> Stream:
    """Task 0 MNIST, task 1 USPS (16×16, bilinearly resized to 28×28): a domain shift.

    USPS comes in one preprocessing for both splits (torchvision's LIBSVM files when both are
    present, else the ESL/ZIP-code archive); ``info["usps_source"]`` records which.
    """
    m = _split(load_dataset("mnist", root), s, device)
    usps = load_dataset("usps", root)
    u = _split(usps, s, device, size=28)
    tasks = [Task(0, "MNIST", list(range(10)), *m), Task(1, "USPS", list(range(10)), *u)]
    return Stream("mnist-usps", tasks, tuple(m[0].shape[1:]), {"usps_source": usps.source})


def split_cifar100(s, root=None, device="cpu") -> Stream:
    raw = load_dataset("cifar100", root)
    xtr, ytr, xte, yte = _split(raw, s, device, CIFAR_STATS["cifar100"])
    k = 100 // s.n_tasks
    groups = [CIFAR100_ORDER_1993[t * k:(t + 1) * k] for t in range(s.n_tasks)]
    return Stream("split-cifar100", class_tasks(xtr, ytr, xte, yte, groups),
                  tuple(xtr.shape[1:]), {"class_order": "PyCIL seed 1993", "source": raw.source})


def cifar10(s, root=None, device="cpu") -> Stream:
    """CIFAR-10 as one task: all ten classes, or ``s.classes`` (e.g. (0, 1, 2, 3), to pre-train
    BI-R's conv layers on some classes, ``clcourse.pretrain``); labels stay the original ones, the
    scenario maps them to units 0..K-1 in the order of ``s.classes``."""
    raw = load_dataset("cifar10", root)
    xtr, ytr, xte, yte = _split(raw, s, device, CIFAR_STATS["cifar10"])
    classes = list(s.classes) or list(range(10))
    name = "CIFAR-10" if not s.classes else "CIFAR-10 classes " + ",".join(map(str, classes))
    task, = class_tasks(xtr, ytr, xte, yte, [classes], names=[name])
    info = {"source": raw.source, "n_train": len(task.y_train)}
    return Stream("cifar10", [task], tuple(xtr.shape[1:]),
                  dict(info, classes=classes) if s.classes else info)


def split_cifar10(s, root=None, device="cpu") -> Stream:
    """CIFAR-10 in tasks of 10 / n_tasks classes, in label order (airplane, automobile | bird, cat |
    ...), as PyCIL's ``iCIFAR10`` with ``shuffle: false``; or ``s.classes`` in their order, in
    n_tasks equal tasks (``classes=(4, 5, 6, 7, 8, 9), n_tasks=3``: {4,5}, {6,7}, {8,9}). On the
    course machine: the staged 4,000 / 1,000-image subset (``info["n_train"]`` says which); the
    full set wherever torchvision has it."""
    raw = load_dataset("cifar10", root)
    xtr, ytr, xte, yte = _split(raw, s, device, CIFAR_STATS["cifar10"])
    order = list(s.classes) or list(range(10))
    k = len(order) // s.n_tasks
    groups = [order[t * k:(t + 1) * k] for t in range(s.n_tasks)]
    tasks = class_tasks(xtr, ytr, xte, yte, groups)
    return Stream("split-cifar10", tasks, tuple(xtr.shape[1:]),
                  {"class_order": "label order" if not s.classes else f"classes {order}",
                   "source": raw.source, "n_train": sum(len(t.y_train) for t in tasks)})


STREAMS = {
    "mnist": mnist,
    "permuted-mnist": permuted_mnist,
    "split-mnist": split_mnist,
    "mnist-usps": mnist_usps,
    "split-cifar100": split_cifar100,
    "cifar10": cifar10,
    "split-cifar10": split_cifar10,
}


def make_stream(settings, root=None, device="cpu") -> Stream:
    """The stream of ``settings.benchmark`` (sizes from the settings), tensors on ``device``."""
    if settings.benchmark not in STREAMS:
        raise ValueError(f"unknown benchmark {settings.benchmark!r}; valid: {', '.join(STREAMS)}")
    return STREAMS[settings.benchmark](settings, root=root, device=device)
