"""Lesson 03 — knowledge distillation at a temperature, and Learning without Forgetting: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex03_distillation.py`, or `clcourse grade --lesson 03`). Each exercise says
which lesson section explains it. Use plain tensor operations (`exp`, `log`, `amax`, `sum`, `mean`,
indexing, `torch.log_softmax`, `torch.nn.functional.cross_entropy`, `.detach()`): the point is to see
every step. The tests compare your results with `clcourse`'s own implementations (`clcourse.losses`:
`tempered_softmax`, `distillation_gradient`, `distillation`, `hard_and_soft`, `lwf_loss`) and with
independent oracles (`torch.nn.functional.kl_div`,
`torch.autograd`, float64 computations) — write yours without looking at them first.

Conventions (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network", §2).
Logits are float tensors whose LAST dimension runs over the output units; a batch is (B, N): B
examples, N units. z are the student's logits, v the teacher's; at temperature T > 0
    q = softmax(z / T)   (the student's soft predictions),   p = softmax(v / T)   (the soft targets).
The teacher is frozen: no gradient may reach its logits. Return new tensors: never modify an input,
neither its values nor its `requires_grad` flag (`t.detach()` makes a new tensor; `t.detach_()` and
`t.requires_grad_(False)` change the caller's). The temperature T may be a Python number or a 0-d
tensor (`torch.tensor(2.0)`, of any float dtype): results keep the LOGITS' dtype either way.
"""
import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- §2 softmax at a temperature

def softmax_with_temperature(logits, T):
    """ex03.1 · Lesson 03 §2 — Softmax at temperature T, along the last dimension, stably.

    logits: a float tensor (..., N), any number of leading dimensions (a single row (N,), a batch
    (B, N), (B, K, N), ...), possibly non-contiguous (a transposed or sliced tensor); T: the temperature,
    a positive Python number or 0-d tensor. Return a NEW tensor of the shape and dtype of logits:
        softmax(z / T)_i = exp(z_i / T) / Σ_j exp(z_j / T)          (Hinton et al. 2015, Eq. 1)
    T = 1 is the usual softmax; a larger T gives a softer (flatter) distribution, more entropy, the same
    order of the units; T → 0 tends to a one-hot on the largest logit.
    It must stay finite and exact for logits as large as ±1e4 and any T from 0.5 to 100, in float32
    and in float64 (exp(1e4 / 0.5) = exp(2e4) overflows to inf in both). If T ≤ 0 there is no
    softmax: raise ValueError.
    Hint: subtract each ROW's largest scaled logit, `s.amax(dim=-1, keepdim=True)`, before `exp`
    (every exponent ≤ 0, and the ratio does not change); not the largest of the whole batch, where a row
    far below the others would underflow to 0 / 0. Write `s = logits / T` (a new tensor), not
    `logits /= T` (that changes the caller's logits).
    """
    ### BEGIN SOLUTION
    if not T > 0:
        raise ValueError(f"the temperature must be positive, got T = {T!r}")
    scaled = logits / T
    scaled = scaled - scaled.amax(dim=-1, keepdim=True)  # every exponent ≤ 0: exp cannot overflow
    e = scaled.exp()
    return e / e.sum(dim=-1, keepdim=True)
    ### END SOLUTION


# ---------------------------------------------------------------- §3 the soft cross-entropy

def soft_cross_entropy_gradient(student_logits, teacher_logits, T):
    """ex03.2 · Lesson 03 §3 — The soft cross-entropy's gradient in the student's logits, by hand.

    student_logits z, teacher_logits v: float tensors (B, N) of the same dtype; T > 0 a Python number.
    For one example the soft cross-entropy is
        C = −Σ_i p_i log q_i,       p = softmax(v / T),   q = softmax(z / T)
    and its gradient with respect to the student's logit z_i is (Hinton et al. 2015, §2.1, Eq. 2)
        ∂C/∂z_i = (q_i − p_i) / T
    (write log q_i = z_i/T − log Σ_j exp(z_j/T) and differentiate: the 1/T comes from z/T).
    Return these per-example gradients, one row per example: a (B, N) tensor of z's dtype — the
    gradient of each example's own C, NOT of the batch mean (no division by B). Compute it from the
    formula, without `backward` or `torch.autograd` (it must work under `torch.no_grad()`), finite for
    logits of ±1e4 in float32 and float64.
    Checks: each row sums to 0 (the probabilities q and p both sum to 1); it is 0 when z = v (the student
    already matches); it pushes z_i DOWN where the student is more confident than the teacher (q_i > p_i:
    gradient descent subtracts it). At high T with zero-mean logits it tends to (z − v) / (N T²) (Eq. 4):
    matching soft targets becomes matching logits, and the gradient shrinks as 1/T².
    Hint: your `softmax_with_temperature` gives q and p.
    """
    ### BEGIN SOLUTION
    q = softmax_with_temperature(student_logits, T)
    p = softmax_with_temperature(teacher_logits, T)
    return (q - p) / T
    ### END SOLUTION


def distillation_loss(student_logits, teacher_logits, T):
    """ex03.3 · Lesson 03 §3 — The distillation loss: T² times the batch mean of the soft cross-entropy.

    student_logits z, teacher_logits v: float tensors (B, N) of the same dtype; T > 0 a Python number.
    Return a 0-d tensor of z's dtype:
        L = T² · (1/B) Σ_b [ −Σ_i p_bi log q_bi ],      p = softmax(v / T),   q = softmax(z / T)
    the sum over the units i, the MEAN over the B examples. Why T²: the gradient of C is (q − p)/T, and
    (q − p) itself shrinks as 1/T at high T, so the soft term's gradients scale as 1/T²; "it is important
    to multiply them by T² when using both hard and soft targets" (Hinton et al. 2015, §2), so that its
    weight against the hard loss does not depend on T.
    The cross-entropy is KL(p ‖ q) + H(p): its GRADIENT is the KL's, but its VALUE includes the teacher's
    entropy H(p) = −Σ p log p, so L is not 0 when the student equals the teacher (it is T² H(p) there,
    the smallest it can be). The direction matters: p (the teacher) weighs log q (the student), not the
    other way round.
    The teacher is frozen: detach its logits (`teacher_logits.detach()`), so that no gradient reaches
    it even when they require grad. The student's side must stay differentiable (no `.item()`, no NumPy).
    It must stay finite for logits of ±1e4 (float32 and float64): `log(softmax(...))` underflows to
    log 0 = −inf there; take log q = z/T − logsumexp(z/T) (`torch.log_softmax(z / T, dim=-1)`) instead.
    T may be a 0-d tensor of another dtype than z: PyTorch promotes an operation between two 0-d
    tensors to the wider dtype (float32 loss × float64 T² = float64), so apply T² while the losses still
    have their batch dimension, or work with `float(T)`.
    """
    ### BEGIN SOLUTION
    p = softmax_with_temperature(teacher_logits.detach(), T)  # the soft targets: no gradient
    log_q = torch.log_softmax(student_logits / T, dim=-1)     # stable log-softmax of the student
    per_example = -(p * log_q).sum(dim=-1)                    # (B,): sum over the units
    return (T ** 2 * per_example).mean()                      # mean over the batch, z's dtype
    ### END SOLUTION


# ---------------------------------------------------------------- §4 the student's loss

def student_loss(logits, labels, teacher_logits, T, alpha):
    """ex03.4 · Lesson 03 §4 — The student's loss: a weighted average of the hard and the soft loss.

    logits: the student's logits (B, N); labels: the true labels (B,), int64 unit indices;
    teacher_logits: the teacher's logits (B, N) on the same images; T > 0 the distillation temperature;
    alpha in [0, 1] the weight of the hard loss. Return a 0-d tensor of logits' dtype:
        L = alpha · CE(logits, labels) + (1 − alpha) · distillation_loss(logits, teacher_logits, T)
    (Hinton et al. 2015, §2: "a weighted average of two different objective functions"). The hard loss
    CE is the usual mean cross-entropy with the true labels at T = 1 (`F.cross_entropy(logits, labels)`:
    the student is used at T = 1 after training); the soft loss is your `distillation_loss`, with its T²
    so that alpha means the same at every T. alpha = 1: plain training on the labels; alpha = 0: pure
    distillation. No gradient reaches the teacher. Finite for logits of ±1e4 (float32 and float64).
    """
    ### BEGIN SOLUTION
    hard = F.cross_entropy(logits, labels)                    # at T = 1, mean over the batch
    soft = distillation_loss(logits, teacher_logits, T)       # at T, × T²
    return alpha * hard + (1 - alpha) * soft
    ### END SOLUTION


# ---------------------------------------------------------------- §5 Learning without Forgetting

def lwf_loss(logits, labels, teacher_logits, old_units, T, lam):
    """ex03.5 · Lesson 03 §5 — Learning without Forgetting's loss on a batch of the NEW task.

    Li & Hoiem 2016: no old data is kept. Before the new task a frozen copy of the network (the old
    model, the teacher) is taken; on each mini-batch of the NEW task's images, its outputs on the OLD
    units are the soft targets that keep those units computing what they did.
    logits: the student's logits (B, C) over every active unit (old and new); labels: the new task's
    labels (B,), int64 unit indices into the C columns; teacher_logits: the old network's logits
    (B, K) on the K old units for the same images, column j for unit old_units[j]; old_units: an int64
    tensor (K,) of column indices of logits, in any order (they need not be 0..K−1, nor sorted: column
    j of teacher_logits goes with column old_units[j] of logits); T > 0; lam ≥ 0 (λ_o). Return a
    0-d tensor of logits' dtype:
        L = CE(logits, labels) + lam · distillation_loss(logits[:, old_units], teacher_logits, T)
    The hard loss is the usual cross-entropy over ALL C units (the new task's labels compete with every
    unit); the distillation compares the student's distribution over the old units ALONE (the softmax is
    renormalised over the K old columns, like the teacher's) with the teacher's. teacher_logits are
    already the old units' logits: do not index them again. lam weighs only the old tasks' term.
    Finite for logits of ±1e4 (float32 and float64).
    (Li & Hoiem's loss has no T² on that term: L_new + λ_o · L_old. This exercise uses your
    `distillation_loss`, with its T², so lam means the same at every T — with T = 2, lam = 1 here is
    λ_o = 4 in the paper's units. `clcourse.methods.LwF` has both: `t_squared`.)
    """
    ### BEGIN SOLUTION
    hard = F.cross_entropy(logits, labels)                                     # all C units
    old = distillation_loss(logits[:, old_units], teacher_logits, T)           # the K old units only
    return hard + lam * old
    ### END SOLUTION
