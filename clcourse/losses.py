"""Losses that several methods share: soft targets at a temperature (distillation), and the weighting
of the current task against what protects the old ones. Lesson 03 derives them.

Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural Network" (arXiv:1503.02531), §2:

    p = softmax(v / T)  (teacher),   q = softmax(z / T)  (student)
    C = −Σ_i p_i log q_i                                   the soft cross-entropy, Eq. 1's targets
    ∂C/∂z_i = (q_i − p_i) / T                              §2.1, Eq. 2
    ≈ (z_i − v_i) / (N T²)  for T ≫ |z|, zero-mean logits  Eq. 4: high T is logit matching

The soft gradient shrinks as 1/T², so "it is important to multiply them by T² when using both hard
and soft targets" (§2): with ``t_squared=True`` the loss is T² · C and its gradient T · (q − p).

Who multiplies by T² in their published code: Hinton et al. (the rule), van de Ven & Tolias's 2019
"Three scenarios" code (``utils.loss_fn_kd``, always), Mammoth's BiC. Who does not: Li & Hoiem's LwF
(2016, as reproduced by FACIL and Mammoth), van de Ven et al.'s 2022 code (``norm=False``), PyCIL's
LwF, iCaRL-variant, BiC and WA (``_KD_loss``), Avalanche's LwF. With T = 2 the two conventions weigh the
distillation term 4× apart: match the reference when matching its numbers.
"""
from __future__ import annotations

import torch


def tempered_softmax(logits: torch.Tensor, T: float = 1.0, dim: int = -1) -> torch.Tensor:
    """softmax(z / T): T = 1 is the usual softmax, a larger T flattens it (Hinton et al. 2015, Eq. 1).
    Stable at any logit size: torch's softmax subtracts the row maximum first."""
    if not T > 0:
        raise ValueError(f"the temperature must be positive, got T = {T!r}")
    return torch.softmax(logits / T, dim=dim)


def distillation(student: torch.Tensor, teacher: torch.Tensor, T: float = 2.0, *, units=None,
                 t_squared: bool = True, reduction: str = "sum") -> torch.Tensor:
    """The soft cross-entropy −Σ_i p_i log q_i of the student's logits against the teacher's, both at
    temperature T, averaged over the batch; × T² when ``t_squared`` (see the module docstring).

    ``reduction`` over the units: ``"sum"`` (Hinton et al.'s soft cross-entropy; van de Ven's code from
    commit 26f00db, 2019-05-17, "summation over classes was omitted", and its 2022 rewrite) or
    ``"mean"``, the sum divided by the number C of the student's units (those not masked to −inf):
    ``(-targets_norm * log_scores_norm).mean()`` over the B×C matrix in ``utils.loss_fn_kd`` at commit
    86802a8 (2019-04-17), the code that made "Three scenarios" Tables 4–5. The two differ by exactly C;
    in class-IL C = 2t grows with the tasks, and that factor decides whether LwF learns new classes.

    ``units``: the columns (a bool mask or indices) both distributions are formed over, e.g. one old
    task's head. A teacher logit of −inf (a unit the teacher did not have: class-IL's new classes)
    gives a zero target there, so the student is pulled toward the teacher's distribution over the
    old units and away from the new ones (van de Ven's ``loss_fn_kd`` pads the targets with zeros).
    Equals T² · (KL(p ‖ q) + H(p)): only the KL part depends on the student.
    """
    if units is not None:
        student, teacher = student[:, units], teacher[:, units]
    if student.shape != teacher.shape:
        raise ValueError(f"student logits {tuple(student.shape)} and teacher logits "
                         f"{tuple(teacher.shape)} must have the same shape")
    if reduction not in ("sum", "mean"):
        raise ValueError(f"reduction must be 'sum' or 'mean', got {reduction!r}")
    p = tempered_softmax(teacher.detach(), T)
    log_q = torch.log_softmax(student / T, dim=-1)
    # 0 · log q = 0 where the target is 0, even where log q = −inf (a masked student unit).
    per_example = -(p * log_q.masked_fill(p == 0, 0.0)).sum(-1)
    if reduction == "mean":
        per_example = per_example / (student > float("-inf")).sum(-1).clamp(min=1)
    loss = per_example.mean()
    # .to: a 0-d tensor T of another dtype (torch.tensor(2.0)) must not promote the student's dtype.
    return (loss * T ** 2).to(loss.dtype) if t_squared else loss


def distillation_gradient(student: torch.Tensor, teacher: torch.Tensor, T: float = 2.0) -> torch.Tensor:
    """∂C/∂z = (q − p) / T, one row per example: the gradient of each example's own soft cross-entropy
    C = −Σ_i p_i log q_i in the student's logits z (Hinton et al. 2015, §2.1, Eq. 2), without the T²
    and without the batch mean of ``distillation``. Computed from the formula, no autograd."""
    return (tempered_softmax(student, T) - tempered_softmax(teacher, T)) / T


def hard_and_soft(logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor, T: float = 2.0,
                  alpha: float = 0.5) -> torch.Tensor:
    """Hinton et al. 2015's student loss, §2 ("a weighted average of two different objective
    functions"): α · CE(labels, logits) at T = 1 + (1 − α) · T² · C(teacher, student) at T, both
    batch means. α = 1: training on the labels alone; α = 0: distillation alone."""
    hard = torch.nn.functional.cross_entropy(logits, labels)
    return alpha * hard + (1 - alpha) * distillation(logits, teacher, T)


def lwf_loss(logits: torch.Tensor, labels: torch.Tensor, teacher: torch.Tensor, old_units, T: float = 2.0,
             lam: float = 1.0, *, t_squared: bool = False) -> torch.Tensor:
    """Learning without Forgetting's loss on a batch of the new task (Li & Hoiem 2016, §3):

        L = L_new + λ_o · L_old,   L_new = CE(labels, logits) over every unit,
        L_old = −Σ_i y'_o,i log ŷ'_o,i   over the old units only, both at temperature T

    (the paper writes y' = y^{1/T} / Σ_j y_j^{1/T} on the probabilities, which is softmax(logits / T);
    T = 2, λ_o = 1 in most of its experiments; weight decay R is the optimiser's). ``teacher``: the
    frozen old network's logits on the same images, one column per entry of ``old_units`` (column
    indices of ``logits``, in any order). The paper has no T² on L_old: ``t_squared=True`` adds it
    (lesson 03's exercise ex03.5, and ``clcourse.methods.LwF``'s default). One group of old units; the
    method (``clcourse.methods.lwf``) averages several (task-IL heads) and offers other weightings."""
    hard = torch.nn.functional.cross_entropy(logits, labels)
    return hard + lam * distillation(logits[:, old_units], teacher, T, t_squared=t_squared)


def mix_current_replay(current: torch.Tensor, replayed: torch.Tensor, k: int) -> tuple:
    """(1/k · current, (1 − 1/k) · replayed): with k tasks seen, each counts equally, the current one
    through its own loss and the k − 1 old ones through the replayed term. van de Ven & Tolias 2019's
    weighting for replay and LwF (``rnt = 1/task`` in their ``train.py``)."""
    if k < 1:
        raise ValueError(f"k counts the tasks seen so far (1 or more), got {k}")
    return current / k, replayed * (1 - 1 / k)


def replayed_loss(student: torch.Tensor, replay, T: float = 2.0, reduction: str = "sum") -> torch.Tensor:
    """The classifier's loss on replayed inputs (generative replay, BI-R): cross-entropy on the old
    model's hard labels ``replay.y``, or, when the replay carries the old logits ``replay.soft``,
    distillation at T (× T², zero targets where the old model had no unit)."""
    if replay.soft is None:
        return torch.nn.functional.cross_entropy(student, replay.y)
    return distillation(student, replay.soft, T, reduction=reduction)


def soft_replay_loss(current: torch.Tensor, labels: torch.Tensor, replayed: torch.Tensor,
                     teacher: torch.Tensor, k: int, T: float = 2.0, reduction: str = "sum") -> tuple:
    """(1/k · CE(current, labels), (1 − 1/k) · T² · KD_T(replayed, teacher)): generative replay's two
    weighted classifier terms with soft targets (``methods.gr``; lesson 07's ex07.3)."""
    return mix_current_replay(torch.nn.functional.cross_entropy(current, labels),
                              distillation(replayed, teacher, T, reduction=reduction), k)
