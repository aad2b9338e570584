# Generated from solutions/ex05_bic_wa_der.py by `clcourse exercises`. This is YOUR file: replace each
# `raise NotImplementedError(...)` with your code, then grade it with `clcourse grade --lesson 05`.
# `clcourse exercises` never overwrites your edits (it refuses unless --force, and keeps a copy
# in exercises/.backup/); `clcourse exercises --reset NN` restores this lesson's untouched file.
# clcourse-exercises fingerprint: 5af7a4582d924df41b7e954e583f6fce415ace293a78853ea43fff27e31ef93d
"""Lesson 05 — BiC, WA and DER: correcting the bias towards the new classes, and growing the network: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex05_bic_wa_der.py`, or `clcourse grade --lesson 05`). Each exercise says which lesson
section explains it. Use plain tensor operations (`torch.unique`, `nonzero`, `torch.randperm`, `torch.sort`,
`torch.cat`, indexing, `torch.linalg.vector_norm`, `mean`, `torch.where`, `torch.sigmoid`,
`F.cross_entropy`, `torch.autograd.grad`, a Python loop where the exercise says so): the point is to see
every step. The tests compare your results with `clcourse`'s own implementations
(`clcourse.calibration`: `balanced_split`, `bias_correction`, `fit_bias_correction`, `weight_align`;
`clcourse.methods.der.aux_targets`; `clcourse.masks`: `hat_scale`, `hat_gate`) and with independent
oracles (gradients written out by hand, cases small enough to do by hand) — write yours without
looking at them first.

Conventions. A class-incremental network has one output unit per class seen so far, C in all: the
n_old units 0..n_old−1 of the classes of earlier tasks ("old"), then the units n_old..C−1 of the
current task's classes ("new"). Logits are a float tensor (B, C), one example per ROW; the weight of
the last linear layer is a float tensor (C, d), one class per ROW. Trained on many new images and only
a few exemplars of the old classes, the network scores the new classes too high; three answers:
  * BiC (Wu, Chen, Wang, Ye, Liu, Guo & Fu 2019, "Large Scale Incremental Learning", CVPR): keep a small
    class-balanced validation set out of the training data (§2), then correct the new units' logits,
    q_k = α·o_k + β, with two scalars fitted on it while the network stays frozen.
  * WA (Zhao, Xiao, Gan, Zhang & Xia 2020, "Maintaining Discrimination and Fairness in Class Incremental
    Learning", CVPR): scale the new rows of the last layer's weight so that their mean norm equals the
    old rows' (§3).
  * DER (Yan, Xie & He 2021, "DER: Dynamically Expandable Representation for Class Incremental
    Learning", CVPR): a new feature extractor per task, with an auxiliary head that tells the new
    classes apart from "old" (§4), and channel masks à la HAT (Serrà, Surís, Miron & Karatzoglou 2018,
    "Overcoming Catastrophic Forgetting with Hard Attention to the Task", ICML) for pruning.
Counts (n_old, per_class, batch, ...) are Python ints, never bools: True is an int to Python
(isinstance(True, int) holds), but it is not a count — test for bool first. Indices and labels are
int64 (LongTensor). Return new tensors: never modify an input, and leave its requires_grad flag alone.
"""
import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- §2 BiC: the bias correction layer

def balanced_split(labels, per_class, generator=None):
    """ex05.1 · Lesson 05 §2 — BiC's class-balanced validation set: per_class random examples of each class.

    labels: an int64 tensor (n,), the class of each training example, in any order and with any class
    values (not necessarily 0..k−1, not sorted); per_class: a Python int ≥ 1; generator: a
    torch.Generator, or None for torch's global one. Wu et al. 2019 hold out a small validation set
    with the SAME number of examples of every class (old and new), on which the bias correction is
    fitted; the rest is trained on. Return (held_out, rest), two LongTensors of indices into labels:
      * held_out: per_class indices of every class present in labels, (n_classes · per_class,);
      * rest: every other index, (n − n_classes · per_class,);
    each sorted ASCENDING (not grouped by class, not in drawing order).
    Draw exactly as clcourse does, so that the same generator gives the same split, bit for bit:
        for each class c present in labels, in ASCENDING order of c (the order of torch.unique(labels)):
            where_c = the indices i with labels[i] == c, ascending    ((labels == c).nonzero().flatten())
            perm = torch.randperm(len(where_c), generator=generator)   (one permutation per class)
            held_out gets where_c[perm[:per_class]]                    (the first per_class of it)
    Nothing else is drawn from the generator (one randperm per class, in that order; not one
    permutation of all n examples, and not simply the first per_class examples of each class).
    Raise ValueError when per_class is a bool, not an int or < 1; when labels is not 1-D; or when a
    class has per_class examples or fewer (nothing of it would be left to train on). labels empty (n = 0):
    two empty LongTensors. Do not modify labels.
    """
    # TODO ex05.1 (Lesson 05 §2): BiC's class-balanced validation set: per_class random examples of each class.
    raise NotImplementedError("ex05.1: balanced_split is not implemented yet — see Lesson 05 §2")


def bias_correction(logits, n_old, alpha, beta):
    """ex05.2 · Lesson 05 §2 — BiC's bias correction layer: the new units' logits become α·o + β.

    logits: a float tensor (B, C) (float32 or float64, possibly non-contiguous); n_old: a Python int,
    0 ≤ n_old ≤ C; alpha, beta: Python numbers or 0-d tensors (possibly requires_grad=True: ex05.3 fits
    them by gradient descent, so gradients must flow to them — do not call float() or .item() on them,
    do not detach). Wu et al. 2019, the bias correction layer:
        q_k = o_k              for the old units k < n_old   (unchanged)
        q_k = α·o_k + β        for the new units k ≥ n_old
    Return a NEW tensor (B, C) of logits' dtype: the old columns exact copies of logits', the new ones
    α·o + β. n_old = C: every column old (a copy); n_old = 0: every column corrected.
    Raise ValueError when logits is not 2-D, or n_old is a bool, not an int, < 0 or > C.
    Do not modify logits (`logits[:, n_old:] *= alpha` changes the caller's tensor); building the
    result with `torch.cat` of the two blocks, or writing into a clone, both work.
    """
    # TODO ex05.2 (Lesson 05 §2): BiC's bias correction layer: the new units' logits become α·o + β.
    raise NotImplementedError("ex05.2: bias_correction is not implemented yet — see Lesson 05 §2")


def fit_bias_correction(logits, labels, n_old, steps):
    """ex05.3 · Lesson 05 §2 — BiC's second stage: fit (α, β) on the validation set's frozen logits.

    logits: a float tensor (n, C), the frozen network's logits on the balanced validation set (float32
    or float64; it may come straight from the network with requires_grad=True: the network is frozen,
    so detach it and never backpropagate into it); labels: int64 (n,), each a unit index in 0..C−1;
    n_old: a Python int in [0, C]; steps: a Python int ≥ 0. Wu et al. 2019's second stage, with clcourse's
    settings: minimise
        L(α, β) = mean_i CE(q_i, labels_i) + (λ/2)·β²,      λ = 0.1 (the penalty on β only),
    q = bias_correction(logits, n_old, α, β) (ex05.2) — the cross-entropy of the corrected LOGITS
    (`F.cross_entropy(q, labels)`, which applies the log-softmax itself; do not softmax q first) — by
    full-batch gradient descent with momentum, every example in every step, from (α, β) = (1, 0):
        v ← 0 (one for α, one for β)
        repeat `steps` times:
            g ← ∂L/∂(α, β) at the current (α, β)       (e.g. torch.autograd.grad(L, (alpha, beta)))
            v ← μ·v + g                                  μ = 0.9 (momentum)
            (α, β) ← (α, β) − lr·v                       lr = 0.1
    — exactly what `torch.optim.SGD([alpha, beta], lr=0.1, momentum=0.9)` does (its first step takes
    v = g, which is μ·0 + g), so you may use it instead of writing the update. No weight decay on α,
    no learning-rate schedule.
    Return (alpha, beta): two 0-d tensors of logits' dtype, detached (requires_grad False).
    steps = 0: (1, 0). Raise ValueError when labels is not 1-D or has not one label per row of logits,
    when there is no example (n = 0), when steps is a bool, not an int or < 0, and when n_old is invalid
    (as in ex05.2).
    Logits may be large (±1e4): F.cross_entropy stays finite there; a softmax written out with exp does
    not. Do not modify logits or labels, nor their requires_grad flag (`logits.requires_grad_(False)`
    changes the caller's tensor; `logits.detach()` is a new one).
    """
    # TODO ex05.3 (Lesson 05 §2): BiC's second stage: fit (α, β) on the validation set's frozen logits.
    raise NotImplementedError("ex05.3: fit_bias_correction is not implemented yet — see Lesson 05 §2")


# ---------------------------------------------------------------- §3 WA: weight aligning

def weight_align(weight, n_old):
    """ex05.4 · Lesson 05 §3 — Weight aligning: scale the new classes' weight rows to the old rows' mean norm.

    weight: a float tensor (C, d), the last linear layer's weight, one row w_k per class (float32 or
    float64, possibly non-contiguous, possibly an nn.Parameter with requires_grad=True); n_old: a Python
    int with 1 ≤ n_old ≤ C − 1 (both groups non-empty). Zhao et al. 2020, weight aligning:
        γ = mean_{k < n_old} ‖w_k‖ / mean_{k ≥ n_old} ‖w_k‖,      ‖w‖ = sqrt(Σ_j w_j²)
    the mean norm of the OLD rows over the mean norm of the NEW rows — each mean over its own group
    (a sum would weigh the larger group more), and norms, not squared norms. Return (aligned, γ):
      * aligned: a NEW tensor (C, d) of weight's dtype: the old rows exact copies, the new rows w_k·γ
        (so the new rows' mean norm becomes the old rows'; the old rows are NOT rescaled);
      * γ: a 0-d tensor of weight's dtype.
    Huge or tiny rows (float32: 1e20² overflows to inf, 1e-25² underflows to 0): compute each row's
    norm as its largest |entry| times the norm of the row divided by that largest |entry| (lesson 04's
    rule); an all-zero row has norm 0.
    Raise ValueError when weight is not 2-D, when n_old is a bool, not an int or outside [1, C − 1], or
    when every new row is zero (γ would be infinite). Every old row zero: γ = 0 (the new rows become 0).
    Do not modify weight (`weight[n_old:] *= gamma` changes the network's layer: WA applies γ once, on
    purpose, in clcourse.methods.wa — here, return a new tensor).
    """
    # TODO ex05.4 (Lesson 05 §3): Weight aligning: scale the new classes' weight rows to the old rows' mean norm.
    raise NotImplementedError("ex05.4: weight_align is not implemented yet — see Lesson 05 §3")


# ---------------------------------------------------------------- §4 DER: the auxiliary head and the channel masks

def aux_targets(y, n_old):
    """ex05.5 · Lesson 05 §4 — The targets of DER's auxiliary head: every old class is one class, 0.

    y: an integer tensor (any shape, usually (B,)), each a unit index (old classes < n_old, new classes
    ≥ n_old), in any order; n_old: a Python int ≥ 0. Yan et al. 2021, the auxiliary loss: the auxiliary classifier
    sees the new extractor's features alone and has 1 + (number of new classes) outputs: output 0 for
    "one of the old classes" (all of them together), output c − n_old + 1 for the new class c:
        y^a = 0                  if y < n_old
        y^a = y − n_old + 1      if y ≥ n_old
    (so the first new class, n_old, is 1 — not 0, that is the old classes' output — and no target is
    negative). n_old = 0: every class is new, y^a = y + 1.
    Return a NEW int64 tensor of y's shape (int64 even when y is int32). Raise ValueError when n_old is
    a bool, not an int or < 0. Do not modify y (`y[y < n_old] = 0` changes the caller's labels).
    """
    # TODO ex05.5 (Lesson 05 §4): The targets of DER's auxiliary head: every old class is one class, 0.
    raise NotImplementedError("ex05.5: aux_targets is not implemented yet — see Lesson 05 §4")


def annealed_gate(e, batch, n_batches, s_max):
    """ex05.6 · Lesson 05 §4 — HAT's annealed gate σ(s_b·e) for batch b of an epoch of B batches.

    e: a float tensor (any shape; float32 or float64; usually an nn.Parameter, requires_grad=True), the
    gate embeddings of one layer's channels; batch: b, a Python int, 1-BASED (the first batch of the
    epoch is b = 1); n_batches: B, a Python int, the batches in the epoch; s_max: a float > 0 (HAT and
    clcourse use 400). Serrà et al. 2018 (HAT): the gate m = σ(s·e) (σ the sigmoid, elementwise),
    its scale s annealed linearly over the epoch, from 1/s_max at the first batch to s_max at the last:
        s_b = 1/s_max + (s_max − 1/s_max) · (b − 1) / (B − 1)
    B = 1 (an epoch of one batch): s_b = s_max (the formula would divide by zero). Early in the epoch
    s is small and every gate is near σ(0) = 1/2, soft and trainable; at the end it is s_max and the
    gates are nearly 0 or 1.
    Return σ(s_b·e): a NEW tensor of e's shape and dtype, through which gradients flow back to e (do not
    detach). Large s·e must give 0 or 1, never NaN (e^(s·e) overflows: use torch.sigmoid).
    Raise ValueError when batch or n_batches is a bool, or unless 1 ≤ batch ≤ n_batches.
    Do not modify e.
    """
    # TODO ex05.6 (Lesson 05 §4): HAT's annealed gate σ(s_b·e) for batch b of an epoch of B batches.
    raise NotImplementedError("ex05.6: annealed_gate is not implemented yet — see Lesson 05 §4")
