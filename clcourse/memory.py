"""The exemplar memory of iCaRL (Rebuffi, Kolesnikov, Sperl & Lampert, CVPR 2017, Alg. 1, 4, 5),
which BiC, WA, DER and LFD reuse: the training images kept of each class, and the
nearest-mean-of-exemplars (NME) classifier built on them. Lesson 04.

* Budget (Alg. 2): K images in all, m = K // C per class once C classes are kept (PyCIL's floor;
  the Theano code rounds up and may keep a few more than K), or a fixed m per class (``per_class``).
* Herding (Alg. 4): on L2-normalised features φ̄ with class mean μ = mean_i φ̄_i (not
  re-normalised, as in both codes), step k picks p_k = argmin_i ‖μ − (S_{k−1} + φ̄_i)/k‖, S_{k−1}
  the sum of the k−1 picked; a picked sample is never picked again (PyCIL's rule; the Theano code
  runs a related Welling-style iteration). "random" selection: a uniform subset.
* Reduction (Alg. 5): exemplars are stored in pick order and shrinking keeps the first m, so
  herding's set for m is a prefix of its set for any larger m.
* Normalisation: ``unit_rows`` divides each row by its length after an exact power-of-two rescaling,
  so float32 features of any size (1e20 overflows when squared) are normalised; a zero row stays zero.
* NME (Alg. 1): class y's prototype is the mean of its exemplars' normalised features under
  the CURRENT network, re-normalised (with ``flip``: over each image and its mirror, as the CIFAR
  code does); a test image goes to the prototype nearest to its normalised feature.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .data.scenarios import TensorSet
from .nn_basics import scaled_to_unit_peak

SELECTIONS = ("herding", "random")


def unit_rows(v: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """``v`` with every slice along ``dim`` divided by its Euclidean length, φ̄ = φ / ‖φ‖ (Rebuffi et
    al. 2017, Alg. 1 and 4: features and class means are L2-normalised). Each slice is first scaled by
    a power of two near its largest |entry|: exact in floating point, so the result equals
    ``F.normalize(v, dim=dim)`` wherever that neither overflows (float32 entries above ~1e19 square to
    inf) nor underflows or hits its 1e-12 floor; here those rows are normalised too. An all-zero
    slice has no direction: it stays zero (``F.normalize``'s rule). NaN and inf entries give NaN."""
    if v.numel() == 0:
        return v.clone()
    return F.normalize(scaled_to_unit_peak(v, dim), dim=dim)


def nme_distances(features: torch.Tensor, means: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """(B, n_classes) Euclidean distances ‖φ̄(x) − μ̄_y‖ (not squared) from each row of ``features``
    to each row of ``means``: what Rebuffi et al.'s Alg. 1 minimises over y. ``normalize``: L2-normalise
    both first (``unit_rows``; the distances then lie in [0, 2]); False: the raw vectors."""
    f, mu = _rows(features, "features"), _rows(means, "means")
    if normalize:
        f, mu = unit_rows(f, dim=1), unit_rows(mu, dim=1)
    return torch.linalg.vector_norm(f[:, None, :] - mu[None, :, :], dim=2)


def prototypes(features: torch.Tensor, labels: torch.Tensor, n_units: int, *,
               normalized: bool = False) -> torch.Tensor:
    """(n_units, d) class prototypes: each feature L2-normalised, averaged per label, the mean
    L2-normalised again (Rebuffi et al. 2017, Alg. 1; COIL's ``_extract_class_means``). A unit with
    no example gets a NaN row. ``normalized``: the features are unit rows already."""
    feats = features if normalized else F.normalize(features, dim=1)
    sums = feats.new_zeros(n_units, feats.shape[1]).index_add_(0, labels, feats)
    counts = torch.bincount(labels, minlength=n_units)[:, None]
    return F.normalize(sums / counts.clamp_min(1), dim=1).masked_fill(counts == 0, float("nan"))


def keep_first(exemplar_indices: dict, m: int) -> dict:
    """Rebuffi et al. 2017, Alg. 5 ("ReduceExemplarSet"): a new dict, same keys in the same order,
    each value's first ``m`` entries (all of them if fewer), cloned. The values are in herding order,
    so the first m are herding's own set for m. ``m``: an int >= 0 (a bool or a negative m raises
    ValueError: ``v[:-1]`` would drop the last exemplar)."""
    m = _count(m, "m")
    return {c: v[:m].clone() for c, v in exemplar_indices.items()}


_GRAM_MAX = 1 << 26  # n·n entries (256 MB in float32) up to which herding may keep the Gram matrix


def herding(features: torch.Tensor, m: int, *, gram: bool | None = None) -> torch.Tensor:
    """Indices of ``m`` rows of ``features`` (n, d) chosen by herding, in pick order (a LongTensor
    on their device). ``m > n`` gives all n, in herding order: a small class keeps every image.
    ``gram``: score with the Gram matrix (True) or one matrix-vector product a pick (False);
    None picks the faster (the Gram matrix once 8m ≥ n, if it has at most 2^26 entries)."""
    # (float32 at least: in half precision the running sums drift)
    phi = unit_rows(_rows(features, "features").to(torch.promote_types(features.dtype,
                                                                       torch.float32)), dim=1)
    m = min(_count(m, "m"), len(phi))
    if gram is None:
        gram = 8 * m >= len(phi) and len(phi) ** 2 <= _GRAM_MAX and m > 1
    picks = (_herding_gram if gram else _herding_addmv)(phi, phi.mean(0), m)
    return torch.cat(picks) if picks else torch.zeros(0, dtype=torch.long, device=phi.device)


# ‖μ − (S + φ̄_i)/k‖² = const + (‖φ̄_i‖² − 2⟨w, φ̄_i⟩)/k² with w = kμ − S, so step k picks the
# argmin of ‖φ̄_i‖² − 2⟨w, φ̄_i⟩. ‖φ̄_i‖² is 1 (0 for an all-zero feature), set to +inf once i is
# picked. Indices stay tensors: on a GPU the loops never wait for the device.

def _herding_addmv(phi, mu, m):
    """Small m: one matrix-vector product ⟨w, φ̄_i⟩ a pick."""
    w, score, picks = mu.clone(), (phi * phi).sum(1), []
    for _ in range(m):
        i = torch.addmv(score, phi, w, alpha=-2).argmin(0, keepdim=True)
        picks.append(i)
        w += mu - phi[i][0]                     # w for the next pick: (k+1)μ − S_k
        score[i] = float("inf")
    return picks


def _herding_gram(phi, mu, m):
    """Large m: w ← w + μ − φ̄_p changes every score by −2⟨μ − φ̄_p, φ̄_i⟩, so with the Gram matrix
    ΦΦᵀ made once (a fast matrix product) a pick reads one of its rows, not all n × d features
    (memory-bound: see benchmarks/herding_speed.py). The scores run in float64: summed in float32
    over hundreds of picks they drift and break near-ties differently (MNIST: from pick 324)."""
    acc = torch.float32 if phi.device.type == "mps" else torch.float64  # (MPS has no float64)
    rows = phi @ phi.T                          # row p: ⟨φ̄_p, φ̄_i⟩ for every i
    a = phi.to(acc) @ mu.to(acc)                # ⟨μ, φ̄_i⟩, added k times: exact enough
    score, picks = (phi * phi).sum(1).to(acc) - 2 * a, []
    for _ in range(m):
        i = score.argmin(0, keepdim=True)
        picks.append(i)
        score += 2 * (rows[i][0] - a)           # the next pick's scores
        score[i] = float("inf")
    return picks


def random_selection(n: int, m: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``min(m, n)`` distinct indices of range(n), uniformly drawn, on the generator's device."""
    device = generator.device if generator is not None else None
    return torch.randperm(n, generator=generator, device=device)[:_count(m, "m")]


@torch.no_grad()
def extract_features(features_fn, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """``features_fn(x)`` in batches, without gradients, in eval mode (BatchNorm on its running
    statistics, no dropout). ``features_fn``: a module or a bound method of one (``model.features``)
    whose modules each get their own mode back after; any other callable is called as it is."""
    owner = getattr(features_fn, "__self__", features_fn)
    modes = [(mod, mod.training) for mod in owner.modules()] if isinstance(owner, nn.Module) else []
    for mod, _ in modes:
        mod.training = False
    try:
        return torch.cat([features_fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])
    finally:
        for mod, mode in modes:
            mod.training = mode


def nme_logits(features: torch.Tensor, means: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """(B, n_classes) scores −‖φ̄(x) − μ_y‖²: the argmax is the nearest mean and the scenario's mask
    applies as to logits. ``normalize``: L2-normalise features and means first (iCaRL), so a score
    is 2·cos − 2 and ranks as cosine similarity; False: raw Euclidean distances. A NaN row of
    ``means`` (a class without a prototype, see ``class_means``) scores −inf."""
    f, mu = _rows(features, "features"), _rows(means, "means")
    if normalize:
        f, mu = unit_rows(f, dim=1), unit_rows(mu, dim=1)
    scores = -torch.cdist(f, mu.nan_to_num()).pow(2)
    return scores.masked_fill(mu.isnan().any(1), float("-inf"))


def nme_predict(features: torch.Tensor, means: torch.Tensor, normalize: bool = True):
    """The class of the nearest mean, for each row of ``features``: (B,)."""
    return nme_logits(features, means, normalize).argmax(1)


class ExemplarMemory:
    """Exemplars per class (target unit) in pick order, on the device of the data they came from.

    ``budget``: K images in all (m = K // classes kept), or ``per_class``: m fixed; give one.
    ``selection``: "herding" or "random"; ``batch_size``: images per feature pass (memory only).
    """

    def __init__(self, budget: int | None = None, *, per_class: int | None = None,
                 selection: str = "herding", batch_size: int = 512):
        if (budget is None) == (per_class is None):
            raise ValueError("give either a total budget or per_class, not "
                             + ("both" if budget is not None else "neither"))
        if selection not in SELECTIONS:
            raise ValueError(f"unknown selection {selection!r}; valid: {', '.join(SELECTIONS)}")
        self.budget = None if budget is None else _count(budget, "budget", positive=True)
        self.per_class = None if per_class is None else _count(per_class, "per_class", True)
        self.selection, self.batch_size = selection, batch_size
        self.x, self.t = {}, {}  # class unit -> its exemplars in pick order, their task ids
        self._set = None         # as_tensorset(), kept until the memory changes

    def m(self, n_classes: int | None = None) -> int:
        """Exemplars per class once ``n_classes`` classes are kept (default: those kept now)."""
        n = len(self.x) if n_classes is None else n_classes
        if self.per_class is not None:
            return self.per_class
        if n > self.budget:
            raise ValueError(f"a budget of {self.budget} exemplars cannot keep {n} classes "
                             f"(m = budget // classes would be 0)")
        return self.budget // max(n, 1)

    def add_classes(self, x, y, features_fn=None, classes=None, *, t=0, generator=None) -> None:
        """Keep exemplars of each class in ``classes`` (default: every unit in ``y``) from examples
        ``x`` with target units ``y`` and task ids ``t`` (one per example, or one int). The kept
        classes first shrink to the new m (Alg. 5), then each new class gets m: herding on
        ``features_fn`` of its examples (Alg. 4), or a random subset drawn with ``generator``."""
        if y.dim() != 1 or len(y) != len(x):
            raise ValueError(f"y must be 1-D, one unit per example of x; got {tuple(y.shape)}")
        classes = sorted(set(y.tolist())) if classes is None else [int(c) for c in classes]
        t = torch.as_tensor(t, dtype=torch.long, device=y.device).expand(len(y))
        if kept := [c for c in classes if c in self.x]:
            raise ValueError(f"classes {kept} are already in the memory")
        if self.selection == "herding" and features_fn is None:
            raise ValueError("herding needs features_fn (e.g. model.features)")
        where = {c: (y == c).nonzero().flatten() for c in classes}
        if empty := [c for c, idx in where.items() if len(idx) == 0]:
            raise ValueError(f"classes {empty} have no examples in y")
        m = self.m(len(self.x) + len(classes))
        self.reduce(m)
        for c, idx in where.items():
            keep = (herding(extract_features(features_fn, x[idx], self.batch_size), m)
                    if self.selection == "herding" else random_selection(len(idx), m, generator))
            idx = idx[keep.to(idx.device)]
            self.x[c], self.t[c] = x[idx], t[idx]

    def reduce(self, m: int | None = None) -> None:
        """Keep the first ``m`` exemplars of every class (default: the current m)."""
        m = self.m() if m is None else _count(m, "m")
        # cloned: a view would keep the dropped images alive
        self.x, self.t = keep_first(self.x, m), keep_first(self.t, m)
        self._set = None

    def as_tensorset(self) -> TensorSet | None:
        """All exemplars, class after class (x, target units y, task ids t); None if empty."""
        if self._set is None and self.x:
            y = [torch.full((len(v),), c, device=v.device) for c, v in self.x.items()]
            self._set = TensorSet(torch.cat(list(self.x.values())), torch.cat(y),
                                  torch.cat(list(self.t.values())))
        return self._set

    def sample(self, n: int, generator: torch.Generator | None = None) -> TensorSet | None:
        """``min(n, len(self))`` distinct exemplars drawn uniformly (as Mammoth's buffer does), or
        None if the memory is empty: what ``Method.replay`` returns."""
        data = self.as_tensorset()
        if data is None:
            return None
        idx = random_selection(len(data), n, generator).to(data.y.device)
        return TensorSet(data.x[idx], data.y[idx], data.t[idx])

    def class_means(self, features_fn, flip: bool = False, n_units: int | None = None):
        """(n_units, d) prototypes (Alg. 1) under the current ``features_fn``; the row of a class
        not kept is NaN (``nme_logits`` scores it −inf); ``n_units``: by default the largest unit
        kept + 1. ``flip``: average in the mirrored images' features too (CIFAR; never digits)."""
        data = self.as_tensorset()
        if data is None:
            raise ValueError("the memory is empty: no class has a mean yet")
        n_units = int(data.y.max()) + 1 if n_units is None else n_units
        if n_units <= int(data.y.max()):
            raise ValueError(f"n_units={n_units}, but the memory keeps unit {int(data.y.max())}")
        if flip and data.x.dim() != 4:
            raise ValueError(f"flip needs images (N, C, H, W), got {tuple(data.x.shape)}")
        feats = F.normalize(extract_features(features_fn, data.x, self.batch_size), dim=1)
        if flip:  # ½ (mean φ̄(x) + mean φ̄(mirrored x)), as the original CIFAR code
            mirrored = extract_features(features_fn, data.x.flip(-1), self.batch_size)
            feats = (feats + F.normalize(mirrored, dim=1)) / 2
        return prototypes(feats, data.y, n_units, normalized=True)

    def counts(self) -> dict:
        """{class unit: exemplars kept}."""
        return {c: len(v) for c, v in self.x.items()}

    def __len__(self) -> int:
        return sum(len(v) for v in self.x.values())

    def state_dict(self) -> dict:
        """Settings and exemplars: ints, a string, lists of tensors (``weights_only`` loads it)."""
        return {"budget": self.budget, "per_class": self.per_class, "selection": self.selection,
                "classes": list(self.x), "x": list(self.x.values()), "t": list(self.t.values())}

    def load_state_dict(self, state: dict, device=None) -> None:
        """Restore :meth:`state_dict`'s settings and exemplars (moved to ``device`` if given)."""
        self.budget, self.per_class = state["budget"], state["per_class"]
        self.selection, classes = state["selection"], [int(c) for c in state["classes"]]
        self.x = {c: v.to(device or v.device) for c, v in zip(classes, state["x"])}
        self.t = {c: v.to(device or v.device) for c, v in zip(classes, state["t"])}
        self._set = None


class TaskMemory:
    """An episodic memory keyed by (task, class): one ``ExemplarMemory(per_class=m)`` per task, so
    a class unit that comes back in a later task (domain-IL: every permuted-MNIST task has the
    digits 0-9 on the same ten units) gets m exemplars of that task too, where ``ExemplarMemory``
    alone refuses a class it already keeps. The memory of ER (Chaudhry et al. 2019, "On tiny
    episodic memories in continual learning": m examples per class of every task) and of PFCL's
    ``scheme.py::ER`` (``--memory m``, kept forever, never shrunk).
    ``selection``: "random" (PFCL's default) or "herding" (PFCL's ``--opt herding``)."""

    def __init__(self, per_class: int, selection: str = "random", batch_size: int = 512):
        ExemplarMemory(per_class=per_class, selection=selection)  # checks the arguments
        self.per_class, self.selection, self.batch_size = per_class, selection, batch_size
        self.tasks = {}   # task id -> its ExemplarMemory
        self._set = None

    def add_task(self, task_id: int, x, y, features_fn=None, classes=None, *, generator=None):
        """Keep ``per_class`` exemplars of each class in ``classes`` (default: every unit in ``y``)
        of task ``task_id`` (a task kept already: ValueError)."""
        if task_id in self.tasks:
            raise ValueError(f"task {task_id} is already in the memory")
        mem = ExemplarMemory(per_class=self.per_class, selection=self.selection,
                             batch_size=self.batch_size)
        mem.add_classes(x, y, features_fn, classes, t=task_id, generator=generator)
        self.tasks[task_id], self._set = mem, None

    def as_tensorset(self) -> TensorSet | None:
        """All exemplars, task after task and class after class (x, units y, task ids t); None if
        empty."""
        if self._set is None and self.tasks:
            self._set = TensorSet.cat([m.as_tensorset() for m in self.tasks.values()])
        return self._set

    sample = ExemplarMemory.sample  # min(n, len) distinct exemplars over all tasks, or None if empty

    def counts(self) -> dict:
        """{task id: {class unit: exemplars kept}}."""
        return {t: m.counts() for t, m in self.tasks.items()}

    def __len__(self) -> int:
        return sum(len(m) for m in self.tasks.values())

    def state_dict(self) -> dict:
        return {"per_class": self.per_class, "selection": self.selection,
                "task_ids": list(self.tasks), "tasks": [m.state_dict() for m in self.tasks.values()]}

    def load_state_dict(self, state: dict, device=None) -> None:
        self.per_class, self.selection = state["per_class"], state["selection"]
        self.tasks = {}
        for t, s in zip(state["task_ids"], state["tasks"]):
            mem = ExemplarMemory(per_class=self.per_class, selection=self.selection,
                                 batch_size=self.batch_size)
            mem.load_state_dict(s, device)
            self.tasks[int(t)] = mem
        self._set = None


def _rows(v: torch.Tensor, name: str) -> torch.Tensor:
    if v.dim() != 2:
        raise ValueError(f"{name} must be 2-D (rows, dimension), got shape {tuple(v.shape)}")
    return v


def _count(v, name: str, positive: bool = False) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < int(positive):
        raise ValueError(f"{name} must be an integer {'> 0' if positive else '>= 0'}, got {v!r}")
    return v
