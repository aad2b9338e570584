"""Plausible wrong answers to lesson 03's exercises (see ``__init__.py``)."""
import torch
import torch.nn.functional as F

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


def _softmax(logits, T, dim=-1):  # a correct tempered softmax, for the mistakes of later exercises
    return torch.softmax(logits / T, dim=dim)


# ex03.1 softmax_with_temperature
@mistake("ex03.1")
def softmax_T_without_max_shift(logits, T):
    if T <= 0:
        raise ValueError("T must be positive")
    e = (logits / T).exp()  # exp(1e4 / T) = inf: inf / inf = NaN
    return e / e.sum(dim=-1, keepdim=True)


@mistake("ex03.1")
def softmax_T_shifted_by_the_batch_max(logits, T):
    if T <= 0:
        raise ValueError("T must be positive")
    s = logits / T
    e = (s - s.max()).exp()  # one max for the whole batch: a row far below it underflows to 0 / 0
    return e / e.sum(dim=-1, keepdim=True)


@mistake("ex03.1")
def softmax_T_over_the_wrong_axis(logits, T):
    if T <= 0:
        raise ValueError("T must be positive")
    s = logits / T
    e = (s - s.amax(dim=0, keepdim=True)).exp()  # columns sum to 1, not rows
    return e / e.sum(dim=0, keepdim=True)


@mistake("ex03.1")
def softmax_T_forgets_to_divide_by_T(logits, T):
    if T <= 0:
        raise ValueError("T must be positive")
    e = (logits - logits.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


@mistake("ex03.1")
def softmax_T_without_the_check_of_T(logits, T):
    s = logits / T  # T = 0: ±inf and NaN, no error; T < 0: the order of the units is reversed
    e = (s - s.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


# ex03.2 soft_cross_entropy_gradient
@mistake("ex03.2")
def gradient_sign_flipped(student_logits, teacher_logits, T):
    return (_softmax(teacher_logits, T) - _softmax(student_logits, T)) / T  # p − q: gradient ASCENT


@mistake("ex03.2")
def gradient_forgets_the_1_over_T(student_logits, teacher_logits, T):
    return _softmax(student_logits, T) - _softmax(teacher_logits, T)


@mistake("ex03.2")
def gradient_times_T(student_logits, teacher_logits, T):
    # the gradient of T² · C (the distillation LOSS), not of C
    return T * (_softmax(student_logits, T) - _softmax(teacher_logits, T))


@mistake("ex03.2")
def gradient_of_the_batch_mean(student_logits, teacher_logits, T):
    q, p = _softmax(student_logits, T), _softmax(teacher_logits, T)
    return (q - p) / T / len(student_logits)  # the gradient of the mean over the batch, not per example


@mistake("ex03.2")
def gradient_teacher_at_T_1(student_logits, teacher_logits, T):
    return (_softmax(student_logits, T) - _softmax(teacher_logits, 1.0)) / T  # p without its temperature


# ex03.3 distillation_loss
@mistake("ex03.3")
def distillation_times_T_not_T_squared(student_logits, teacher_logits, T):
    p = _softmax(teacher_logits.detach(), T)
    return T * -(p * torch.log_softmax(student_logits / T, dim=-1)).sum(dim=-1).mean()


@mistake("ex03.3")
def distillation_summed_over_the_batch(student_logits, teacher_logits, T):
    p = _softmax(teacher_logits.detach(), T)
    return T ** 2 * -(p * torch.log_softmax(student_logits / T, dim=-1)).sum()


@mistake("ex03.3")
def distillation_kl_in_the_wrong_direction(student_logits, teacher_logits, T):
    # F.kl_div(input, target) is KL(target ‖ exp(input)): here KL(q ‖ p), the student weighing the teacher
    log_p = torch.log_softmax(teacher_logits.detach() / T, dim=-1)
    q = _softmax(student_logits, T)
    return T ** 2 * F.kl_div(log_p, q, reduction="batchmean")


@mistake("ex03.3")
def distillation_teacher_not_detached(student_logits, teacher_logits, T):
    p = _softmax(teacher_logits, T)  # the gradient flows into the teacher too
    return T ** 2 * -(p * torch.log_softmax(student_logits / T, dim=-1)).sum(dim=-1).mean()


@mistake("ex03.3")
def distillation_log_of_softmax(student_logits, teacher_logits, T):
    p = _softmax(teacher_logits.detach(), T)
    log_q = _softmax(student_logits, T).log()  # q underflows to 0 for logits of 1e4: log 0 = −inf
    return T ** 2 * -(p * log_q).sum(dim=-1).mean()


# ex03.4 student_loss
def _kd(student_logits, teacher_logits, T):
    p = _softmax(teacher_logits.detach(), T)
    return (T ** 2 * -(p * torch.log_softmax(student_logits / T, dim=-1)).sum(dim=-1)).mean()


@mistake("ex03.4")
def student_loss_weights_swapped(logits, labels, teacher_logits, T, alpha):
    return (1 - alpha) * F.cross_entropy(logits, labels) + alpha * _kd(logits, teacher_logits, T)


@mistake("ex03.4")
def student_loss_hard_loss_at_T(logits, labels, teacher_logits, T, alpha):
    hard = F.cross_entropy(logits / T, labels)  # the hard targets use T = 1
    return alpha * hard + (1 - alpha) * _kd(logits, teacher_logits, T)


@mistake("ex03.4")
def student_loss_soft_loss_without_T_squared(logits, labels, teacher_logits, T, alpha):
    return alpha * F.cross_entropy(logits, labels) + (1 - alpha) * _kd(logits, teacher_logits, T) / T ** 2


@mistake("ex03.4")
def student_loss_without_one_minus_alpha(logits, labels, teacher_logits, T, alpha):
    return alpha * F.cross_entropy(logits, labels) + _kd(logits, teacher_logits, T)


@mistake("ex03.4")
def student_loss_cross_entropy_of_probabilities(logits, labels, teacher_logits, T, alpha):
    hard = F.cross_entropy(torch.softmax(logits, dim=-1), labels)  # F.cross_entropy takes LOGITS
    return alpha * hard + (1 - alpha) * _kd(logits, teacher_logits, T)


# ex03.5 lwf_loss
@mistake("ex03.5")
def lwf_student_softmax_over_every_unit(logits, labels, teacher_logits, old_units, T, lam):
    p = _softmax(teacher_logits.detach(), T)
    log_q = torch.log_softmax(logits / T, dim=-1)[:, old_units]  # normalised over ALL units, then cut
    return F.cross_entropy(logits, labels) + lam * T ** 2 * -(p * log_q).sum(dim=-1).mean()


@mistake("ex03.5")
def lwf_cross_entropy_on_the_new_units_only(logits, labels, teacher_logits, old_units, T, lam):
    is_new = torch.ones(logits.shape[1], dtype=torch.bool)
    is_new[old_units] = False
    position = is_new.cumsum(0) - 1  # unit index → column among the new units
    hard = F.cross_entropy(logits[:, is_new], position[labels])
    return hard + lam * _kd(logits[:, old_units], teacher_logits, T)


@mistake("ex03.5")
def lwf_lam_on_the_cross_entropy(logits, labels, teacher_logits, old_units, T, lam):
    return lam * F.cross_entropy(logits, labels) + _kd(logits[:, old_units], teacher_logits, T)


@mistake("ex03.5")
def lwf_weighted_average(logits, labels, teacher_logits, old_units, T, lam):
    # student_loss's convex weighting: (1 − λ) · CE + λ · KD
    return (1 - lam) * F.cross_entropy(logits, labels) + lam * _kd(logits[:, old_units], teacher_logits, T)


@mistake("ex03.5")
def lwf_indexes_the_teacher_again(logits, labels, teacher_logits, old_units, T, lam):
    # teacher_logits are already the old units' (B, K): this picks other columns or fails
    return F.cross_entropy(logits, labels) + lam * _kd(logits[:, old_units], teacher_logits[:, old_units], T)


# ---- inputs changed, temperatures as 0-d tensors, extreme logits, indices out of order

@mistake("ex03.1")
def softmax_T_divides_the_logits_in_place(logits, T):
    if not T > 0:
        raise ValueError("T must be positive")
    s = logits
    s /= T  # the caller's logits are divided too (and fails on a leaf that requires grad)
    e = (s - s.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


@mistake("ex03.1")
def softmax_T_rejects_a_tensor_temperature(logits, T):
    if not isinstance(T, (int, float)) or T <= 0:  # torch.tensor(2.0) is a valid temperature too
        raise ValueError(f"T must be a positive number, got {T!r}")
    s = logits / T
    e = (s - s.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


@mistake("ex03.2")
def gradient_without_the_max_shift(student_logits, teacher_logits, T):
    def softmax(z):
        e = (z / T).exp()  # exp(1e4 / T) = inf: inf / inf = NaN, in float64 too at T < 14
        return e / e.sum(dim=-1, keepdim=True)
    return (softmax(student_logits) - softmax(teacher_logits)) / T


@mistake("ex03.2")
def gradient_shifts_the_logits_in_place(student_logits, teacher_logits, T):
    student_logits -= student_logits.amax(dim=-1, keepdim=True)  # the caller's logits move
    teacher_logits -= teacher_logits.amax(dim=-1, keepdim=True)
    return (_softmax(student_logits, T) - _softmax(teacher_logits, T)) / T


@mistake("ex03.3")
def distillation_detaches_the_teacher_in_place(student_logits, teacher_logits, T):
    teacher_logits.detach_()  # detach_ changes the caller's tensor: it no longer requires grad
    p = _softmax(teacher_logits, T)
    return (T ** 2 * -(p * torch.log_softmax(student_logits / T, dim=-1)).sum(dim=-1)).mean()


@mistake("ex03.3")
def distillation_T_squared_after_the_mean(student_logits, teacher_logits, T):
    p = _softmax(teacher_logits.detach(), T)
    # 0-d loss × T² with T a float64 0-d tensor: float64, not the student's float32
    return T ** 2 * -(p * torch.log_softmax(student_logits / T, dim=-1)).sum(dim=-1).mean()


@mistake("ex03.3")
def distillation_logsumexp_without_the_max(student_logits, teacher_logits, T):
    p = _softmax(teacher_logits.detach(), T)
    s = student_logits / T
    log_q = s - s.exp().sum(dim=-1, keepdim=True).log()  # exp overflows for logits of 1e4
    return (T ** 2 * -(p * log_q).sum(dim=-1)).mean()


@mistake("ex03.4")
def student_loss_turns_off_the_teachers_grad(logits, labels, teacher_logits, T, alpha):
    teacher_logits.requires_grad_(False)  # "freezes" the caller's tensor instead of detaching a copy
    return alpha * F.cross_entropy(logits, labels) + (1 - alpha) * _kd(logits, teacher_logits, T)


@mistake("ex03.4")
def student_loss_log_of_softmax(logits, labels, teacher_logits, T, alpha):
    p = _softmax(teacher_logits.detach(), T)
    log_q = _softmax(logits, T).log()  # −inf where q underflows: logits of 1e4
    soft = (T ** 2 * -(p * log_q).sum(dim=-1)).mean()
    return alpha * F.cross_entropy(logits, labels) + (1 - alpha) * soft


@mistake("ex03.5")
def lwf_old_units_as_a_mask(logits, labels, teacher_logits, old_units, T, lam):
    is_old = torch.zeros(logits.shape[1], dtype=torch.bool)
    is_old[old_units] = True  # a mask keeps the columns in sorted order, not in old_units' order
    return F.cross_entropy(logits, labels) + lam * _kd(logits[:, is_old], teacher_logits, T)


@mistake("ex03.5")
def lwf_detaches_the_teacher_in_place(logits, labels, teacher_logits, old_units, T, lam):
    teacher_logits.detach_()
    return F.cross_entropy(logits, labels) + lam * _kd(logits[:, old_units], teacher_logits, T)


@mistake("ex03.5")
def lwf_log_of_softmax(logits, labels, teacher_logits, old_units, T, lam):
    p = _softmax(teacher_logits.detach(), T)
    log_q = _softmax(logits[:, old_units], T).log()  # −inf where q underflows
    return F.cross_entropy(logits, labels) + lam * (T ** 2 * -(p * log_q).sum(dim=-1)).mean()
