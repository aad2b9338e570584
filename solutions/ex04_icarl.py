"""Lesson 04 — iCaRL: the exemplar memory, herding, the nearest mean of exemplars: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex04_icarl.py`, or `clcourse grade --lesson 04`). Each exercise says which lesson
section explains it. Use plain tensor operations (`torch.linalg.vector_norm`, `F.normalize`, `mean`, `sum`,
`argmin`, broadcasting, indexing, `F.one_hot`, `torch.sigmoid`, a Python loop where the
exercise says so): the point is to see every step. The tests compare your results with `clcourse`'s
own implementations (`clcourse.memory`: `herding`, `nme_distances`, `nme_predict`, `keep_first`,
`ExemplarMemory`; `clcourse.methods.icarl.icarl_targets`) and with independent oracles (a literal per-candidate loop,
distances written out as explicit sums, cases small enough to do by hand) — write yours without
looking at them first.

Conventions (Rebuffi, Kolesnikov, Sperl & Lampert 2017, "iCaRL: Incremental Classifier and
Representation Learning", CVPR, Alg. 1–5). A feature φ(x) is the network's penultimate layer; a batch
of features is a float tensor (n, d) whose ROWS are the examples. iCaRL works with L2-normalised
features, each row divided by its own Euclidean length:
    φ̄(x) = φ(x) / ‖φ(x)‖,        ‖v‖ = sqrt(Σ_j v_j²)
(`torch.linalg.vector_norm(f, dim=1, keepdim=True)`: the norm of each ROW, dim=1, kept as a column so
that it broadcasts). Two cases need care wherever you normalise:
  * huge or tiny entries: in float32, 1e20² = 1e40 overflows to inf (and 1e-25² underflows to 0), so
    ‖v‖ computed directly is inf (or 0) although v / ‖v‖ is an ordinary unit vector. Divide the row by
    its largest |entry| first (the direction does not change), then by its norm.
  * an all-zero row has no direction: it stays all zero (the rule of `F.normalize`, which divides by
    max(‖v‖, 1e-12)) — never NaN. (Mind the first step: 0 / 0 is NaN.)
The memory keeps K exemplars in all:
m = K // t per class once t classes are kept, each class's exemplars in the order herding picked them.
Indices are int64 (LongTensor). Return new tensors and dicts: never modify an input.
"""
import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- §2 the budget and its reduction

def exemplars_per_class(budget, n_classes):
    """ex04.1 · Lesson 04 §2 — Exemplars per class: m = budget // n_classes, as a Python int.

    budget: K, the exemplars the memory may keep in all; n_classes: t, the classes it keeps. Both must
    be positive Python ints (not a float such as 2000.0, not a string, not None, and not a bool: True
    is an int to Python, but it is not a count): otherwise raise ValueError. Rebuffi et al. 2017,
    Alg. 2: m ← K / t, rounded DOWN, so that the t classes together never keep more than K:
    m · t ≤ K < (m + 1) · t. (Rounding up, as iCaRL's original Theano code does, can keep a few more
    than K.) If m would be 0 (fewer exemplars than classes: K < t), the memory cannot keep one of each
    class: raise ValueError. Return a Python int (`/` returns a float: 2000 / 10 = 200.0).
    """
    ### BEGIN SOLUTION
    for name, value in (("budget", budget), ("n_classes", n_classes)):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    m = budget // n_classes
    if m == 0:
        raise ValueError(f"a budget of {budget} cannot keep one exemplar of each of {n_classes} classes")
    return m
    ### END SOLUTION


def reduce_exemplars(exemplar_indices, m):
    """ex04.2 · Lesson 04 §2 — Shrink every class's exemplars to its first m, in herding order.

    exemplar_indices: a dict {class: LongTensor (n_c,)}, each class's exemplar indices in the order
    herding picked them (the first pick first); the classes come in any order (not sorted). m: a
    Python int ≥ 0 (a negative m, a non-int or a bool: raise ValueError — `v[:-1]` would silently
    drop the LAST exemplar instead). Rebuffi et al. 2017, Alg. 5 ("ReduceExemplarSet"):
    P_y ← (p_1, ..., p_m), the FIRST m of each list; a class that has fewer keeps all of them.
    Because herding picks greedily, the first m are exactly the exemplars herding would pick for m:
    shrinking never needs the images again.
    Return a NEW dict with the same classes in the same order (do not sort them), each value a NEW
    LongTensor: never modify the input dict, and copy the kept part: a slice is a view that shares the
    input's memory (clcourse's memory copies too, so that the dropped images can be freed). Do not
    sort or otherwise reorder the indices: their order is the herding order.
    """
    ### BEGIN SOLUTION
    if isinstance(m, bool) or not isinstance(m, int) or m < 0:
        raise ValueError(f"m must be an int >= 0, got {m!r}")
    return {c: indices[:m].clone() for c, indices in exemplar_indices.items()}
    ### END SOLUTION


# ---------------------------------------------------------------- §3 herding

def herding_selection(features, m):
    """ex04.3 · Lesson 04 §3 — Herding: the indices of m exemplars of one class, in pick order.

    features: a float tensor (n, d), the n training images of ONE class (float32 or float64, possibly
    non-contiguous: a transposed or sliced tensor; entries possibly huge or tiny, rows possibly all
    zero: see the module docstring); m: a Python int ≥ 0. Rebuffi et al. 2017, Alg. 4
    ("ConstructExemplarSet"), on L2-normalised features:
        φ̄_i = φ_i / ‖φ_i‖                 (normalise each row first; a zero row stays zero)
        μ = (1/n) Σ_i φ̄_i                 (the class mean of the NORMALISED features; do not normalise μ)
        for k = 1, ..., m:
            p_k = argmin over the rows i not picked yet of  ‖ μ − (S_{k−1} + φ̄_i) / k ‖
            S_k = S_{k−1} + φ̄_{p_k}        (S_0 = 0: S_{k−1} is the sum of the k−1 rows picked so far)
    Each step adds the row that brings the mean of the picked rows, (S_{k−1} + φ̄_i)/k, closest to the
    class mean μ — not the row closest to μ itself (that is only the first pick). A picked row is never
    picked again. Return a LongTensor (m,): p_1, ..., p_m, in the order they were picked (so the
    first m' ≤ m are the exemplars for m': Alg. 5 keeps a prefix). If m > n, return all n rows, in
    herding order (a small class keeps every image); m = 0 gives an empty LongTensor.
    Ties: when rows are equally close (e.g. two identical images), pick the lowest index — what
    `argmin` does. Dtype: compute in features' dtype.
    A Python loop over the m picks is expected (each pick depends on the previous ones). Inside a pick,
    compute the distances of all candidates at once — `(total + phi) / k` broadcasts the sum (d,) over
    the rows (n, d) — and rule out the picked rows by setting their distance to `float("inf")` before
    `argmin`. A second loop over the candidates also gives the right answer, only slowly (n·m norms).
    Do not normalise in place (`features /= ...` changes the caller's tensor).
    """
    ### BEGIN SOLUTION
    tiny = torch.finfo(features.dtype).tiny
    scaled = features / features.abs().amax(dim=1, keepdim=True).clamp_min(tiny)  # no overflow
    phi = F.normalize(scaled, dim=1)             # φ̄: unit rows (a zero row stays zero)
    mu = phi.mean(dim=0)                         # μ, not re-normalised
    m = min(m, len(phi))                         # a class with fewer than m images keeps them all
    picked = torch.zeros(len(phi), dtype=torch.bool, device=phi.device)
    total = torch.zeros_like(mu)                 # S_{k−1}
    order = []
    for k in range(1, m + 1):
        dist = torch.linalg.vector_norm(mu - (total + phi) / k, dim=1)  # (n,): one per candidate
        dist[picked] = float("inf")              # never pick a row twice
        i = int(dist.argmin())                   # the lowest index on ties
        order.append(i)
        picked[i] = True
        total = total + phi[i]
    return torch.tensor(order, dtype=torch.long, device=phi.device)
    ### END SOLUTION


# ---------------------------------------------------------------- §4 the nearest mean of exemplars

def worked_example_distances(test_vector, class_means, normalize):
    """ex04.4 · Lesson 04 §4 — The distances of a worked example: one test vector to each class mean.

    test_vector: a float tensor (d,), one feature; class_means: a float tensor (n_classes, d) of the
    same dtype, one class mean per row; normalize: a bool. Return the (n_classes,) Euclidean
    distances, a tensor of the inputs' dtype:
        d_y = ‖ v − μ_y ‖ = sqrt( Σ_j (v_j − μ_yj)² )
    NOT squared. With normalize=True (iCaRL's rule, Rebuffi et al. 2017, Alg. 1), first
    L2-normalise the test vector (v / ‖v‖) and every mean row (μ_y / ‖μ_y‖, each row by its own norm;
    huge, tiny and zero vectors as the module docstring says); the distances then lie in [0, 2]
    (0: the same direction — parallel vectors are at distance 0 exactly, up to rounding; √2:
    orthogonal; 2: opposite). With normalize=False, the raw vectors. Take the distance as the norm of
    the difference: with unit vectors ‖a − b‖² = 2 − 2⟨a, b⟩ is true on paper, but in float32 its
    rounding error near a = b is ~1e-4 after the square root (or a NaN). The notebook uses it to check
    seed 000's worked example: the nearest mean (the smallest d_y) is NME's answer.
    Inputs may be non-contiguous; do not modify them.
    """
    ### BEGIN SOLUTION
    v, mu = test_vector, class_means
    if normalize:
        tiny = torch.finfo(v.dtype).tiny
        v = v / v.abs().amax().clamp_min(tiny)                             # no overflow
        mu = mu / mu.abs().amax(dim=1, keepdim=True).clamp_min(tiny)
        v, mu = F.normalize(v, dim=0), F.normalize(mu, dim=1)              # unit vectors (zero stays zero)
    return torch.linalg.vector_norm(mu - v, dim=1)                         # (n_classes,)
    ### END SOLUTION


def nme_predict(features, class_means, normalize=True):
    """ex04.5 · Lesson 04 §4 — The nearest-mean-of-exemplars classifier: the class of each feature.

    features: a float tensor (B, d), one test image's feature per row; class_means: a float tensor
    (C, d) of the same dtype, row y the mean of class y's exemplars (the prototype μ_y); normalize: a
    bool. Rebuffi et al. 2017, Alg. 1 ("classify"):
        y*(x) = argmin over y of ‖ φ̄(x) − μ̄_y ‖
    With normalize=True (iCaRL), L2-normalise BOTH: every feature row and every mean row (each row by its
    own norm, dim=1; huge, tiny and zero rows as the module docstring says). The means must be
    re-normalised even when they are averages of normalised features: an average of unit vectors is
    shorter than 1, and a class whose exemplars spread more would get a shorter mean. With
    normalize=False, use the raw vectors: plain Euclidean distances.
    Return a LongTensor (B,): for each row of features, the index (0..C−1) of the nearest mean — the
    SMALLEST distance (argmin), never the largest. Ties: the lowest class index (what `argmin` does);
    a zero feature row is at distance 1 from every normalised mean, so it goes to class 0.
    Inputs may be non-contiguous; do not modify them.
    Hint: all distances at once by broadcasting, `f[:, None, :] − mu[None, :, :]` is (B, C, d); its norm
    over the last dimension is (B, C). (`torch.cdist(f, mu)` computes the same (B, C) with less memory.)
    """
    ### BEGIN SOLUTION
    f, mu = features, class_means
    if normalize:
        tiny = torch.finfo(f.dtype).tiny
        f = F.normalize(f / f.abs().amax(dim=1, keepdim=True).clamp_min(tiny), dim=1)      # each row
        mu = F.normalize(mu / mu.abs().amax(dim=1, keepdim=True).clamp_min(tiny), dim=1)   # re-normalised
    dist = torch.linalg.vector_norm(f[:, None, :] - mu[None, :, :], dim=2)  # (B, C)
    return dist.argmin(dim=1)
    ### END SOLUTION


# ---------------------------------------------------------------- §5 the representation update

def icarl_targets(labels, n_units, old_logits, T=1.0):
    """ex04.6 · Lesson 04 §5 — iCaRL's binary cross-entropy targets, with the old network's outputs.

    labels: int64 (B,), each a unit index in 0..n_units−1 (new classes and, for exemplars, old ones);
    n_units: the number of output units trained now (old + new); old_logits: the frozen previous
    network's logits (B, K) on the K old units (units 0..K−1), float32 or float64, possibly
    non-contiguous (e.g. `teacher(x)[:, :K]`), or None on the first task; T > 0: a temperature.
    Rebuffi et al. 2017, Alg. 3: every unit is a sigmoid output trained with binary cross-entropy, and
        target_y = σ(z*_y / T)       for the old units y < K     (distillation: the old network's output)
        target_y = [y = label]       for the new units y ≥ K     (one-hot)
    σ(s) = 1 / (1 + e^(−s)), the SIGMOID of each unit on its own (not a softmax over the units: the
    old units' targets need not sum to 1). The paper has T = 1; van de Ven's iCaRL divides by its
    distillation temperature (T = 2): divide the logits by T before the sigmoid.
    An exemplar of an old class has its label among the old units: there too the target is the old
    network's output, not 1 (the old network says how sure it was).
    Return a NEW float tensor (B, n_units) of old_logits' dtype (float32 when old_logits is None):
    the one-hot of labels (`F.one_hot(labels, n_units)`, cast to the float dtype) with its first K
    columns replaced by σ(old_logits / T). old_logits None: the plain one-hot. K may be 0.
    Old logits may be large (±1000 in float32, or ±50 with T = 0.01): compute σ so that it gives 0 or 1
    there, never NaN (e^1000 is inf in both float32 and float64).
    Do not modify old_logits (`old_logits /= T` changes the caller's tensor).
    """
    ### BEGIN SOLUTION
    dtype = old_logits.dtype if old_logits is not None else torch.float32
    targets = F.one_hot(labels, n_units).to(dtype)      # (B, n_units): 1 at each label
    if old_logits is not None:
        K = old_logits.shape[1]
        targets[:, :K] = torch.sigmoid(old_logits / T)  # the old units: the old network's outputs
    return targets
    ### END SOLUTION
