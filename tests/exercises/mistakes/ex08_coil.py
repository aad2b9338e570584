"""Plausible wrong answers to lesson 08's exercises (see ``__init__.py``)."""
import torch
import torch.nn.functional as F

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


# ex08.1 sinkhorn_log
def _sk_checked(a, b, cost, eps, iters):
    if cost.dim() != 2 or a.shape != cost.shape[:1] or b.shape != cost.shape[1:]:
        raise ValueError("shapes")
    if a.dtype != cost.dtype or b.dtype != cost.dtype:
        raise ValueError("dtypes")
    if not eps > 0 or isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError("eps or iters")
    if not abs(float(a.sum()) - float(b.sum())) <= 1e-5 * abs(float(b.sum())):
        raise ValueError("totals")


@mistake("ex08.1")
def sinkhorn_plain_scalings(a, b, cost, eps, iters=500):
    _sk_checked(a, b, cost, eps, iters)
    K = torch.exp(-cost / eps)  # underflows to 0 for a small ε: a/(Kv) is inf, then NaN
    u, v = torch.ones_like(a), torch.ones_like(b)
    for _ in range(iters):
        u = a / (K @ v)
        v = b / (K.T @ u)
    return u[:, None] * K * v[None, :]


@mistake("ex08.1")
def sinkhorn_logsumexp_wrong_axis(a, b, cost, eps, iters=500):
    _sk_checked(a, b, cost, eps, iters)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(iters):
        f = eps * (a.log() - torch.logsumexp((g[None, :] - cost) / eps, dim=1))
        g = eps * (b.log() - torch.logsumexp((f[:, None] - cost) / eps, dim=1))  # over j again, not over i
    return torch.exp((f[:, None] + g[None, :] - cost) / eps)


@mistake("ex08.1")
def sinkhorn_uniform_marginals(a, b, cost, eps, iters=500):
    _sk_checked(a, b, cost, eps, iters)
    n, m = cost.shape
    log_a, log_b = torch.full_like(a, -torch.log(torch.tensor(float(n))).item()), \
        torch.full_like(b, -torch.log(torch.tensor(float(m))).item())  # 1/n and 1/m, not a and b
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(iters):
        f = eps * (log_a - torch.logsumexp((g[None, :] - cost) / eps, dim=1))
        g = eps * (log_b - torch.logsumexp((f[:, None] - cost) / eps, dim=0))
    return torch.exp((f[:, None] + g[None, :] - cost) / eps)


@mistake("ex08.1")
def sinkhorn_marginals_without_log(a, b, cost, eps, iters=500):
    _sk_checked(a, b, cost, eps, iters)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(iters):
        f = eps * (a - torch.logsumexp((g[None, :] - cost) / eps, dim=1))  # a, not log a
        g = eps * (b - torch.logsumexp((f[:, None] - cost) / eps, dim=0))
    return torch.exp((f[:, None] + g[None, :] - cost) / eps)


@mistake("ex08.1")
def sinkhorn_plan_with_the_old_g(a, b, cost, eps, iters=500):
    _sk_checked(a, b, cost, eps, iters)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(iters):
        f = eps * (a.log() - torch.logsumexp((g[None, :] - cost) / eps, dim=1))
        plan = torch.exp((f[:, None] + g[None, :] - cost) / eps)  # before g's update
        g = eps * (b.log() - torch.logsumexp((f[:, None] - cost) / eps, dim=0))
    return plan


@mistake("ex08.1")
def sinkhorn_g_from_the_old_f(a, b, cost, eps, iters=500):
    _sk_checked(a, b, cost, eps, iters)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(iters):
        f, g = (eps * (a.log() - torch.logsumexp((g[None, :] - cost) / eps, dim=1)),
                eps * (b.log() - torch.logsumexp((f[:, None] - cost) / eps, dim=0)))  # both from the old values
    return torch.exp((f[:, None] + g[None, :] - cost) / eps)


@mistake("ex08.1")
def sinkhorn_without_eps_outside(a, b, cost, eps, iters=500):
    _sk_checked(a, b, cost, eps, iters)
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(iters):
        f = a.log() - torch.logsumexp((g[None, :] - cost) / eps, dim=1)  # log u, used as ε·log u
        g = b.log() - torch.logsumexp((f[:, None] - cost) / eps, dim=0)
    return torch.exp((f[:, None] + g[None, :] - cost) / eps)


@mistake("ex08.1")
def sinkhorn_no_total_check(a, b, cost, eps, iters=500):
    if cost.dim() != 2 or a.shape != cost.shape[:1] or b.shape != cost.shape[1:] or not eps > 0 \
            or isinstance(iters, bool) or not isinstance(iters, int) or iters < 1 \
            or a.dtype != cost.dtype or b.dtype != cost.dtype:
        raise ValueError("bad arguments")
    f, g = torch.zeros_like(a), torch.zeros_like(b)  # unequal totals iterate forever without converging
    for _ in range(iters):
        f = eps * (a.log() - torch.logsumexp((g[None, :] - cost) / eps, dim=1))
        g = eps * (b.log() - torch.logsumexp((f[:, None] - cost) / eps, dim=0))
    return torch.exp((f[:, None] + g[None, :] - cost) / eps)


# ex08.2 class_cost_matrix
def _cc_checked(features, labels, n_old, n_classes, p):
    if isinstance(n_old, bool) or isinstance(n_classes, bool) or not isinstance(n_old, int) \
            or not isinstance(n_classes, int) or not 1 <= n_old < n_classes or not p >= 1:
        raise ValueError("counts or p")
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError("shapes")
    if not (0 <= int(labels.min()) and int(labels.max()) < n_classes):
        raise ValueError("labels")
    counts = torch.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError("empty class")
    return counts


def _means(rows, labels, counts):
    sums = rows.new_zeros(len(counts), rows.shape[1]).index_add(0, labels, rows)
    return sums / counts[:, None].to(rows.dtype)


@mistake("ex08.2")
def cost_features_not_normalised(features, labels, n_old, n_classes, p=3.0):
    counts = _cc_checked(features, labels, n_old, n_classes, p)
    protos = F.normalize(_means(features, labels, counts), dim=1)  # long features weigh more
    return torch.cdist(protos[:n_old], protos[n_old:], p=p)


@mistake("ex08.2")
def cost_mean_not_renormalised(features, labels, n_old, n_classes, p=3.0):
    counts = _cc_checked(features, labels, n_old, n_classes, p)
    protos = _means(F.normalize(features, dim=1), labels, counts)  # shorter than 1
    return torch.cdist(protos[:n_old], protos[n_old:], p=p)


@mistake("ex08.2")
def cost_euclidean_always(features, labels, n_old, n_classes, p=3.0):
    counts = _cc_checked(features, labels, n_old, n_classes, p)
    protos = F.normalize(_means(F.normalize(features, dim=1), labels, counts), dim=1)
    return torch.cdist(protos[:n_old], protos[n_old:])  # p = 2, whatever p says


@mistake("ex08.2")
def cost_squared_distance(features, labels, n_old, n_classes, p=3.0):
    counts = _cc_checked(features, labels, n_old, n_classes, p)
    protos = F.normalize(_means(F.normalize(features, dim=1), labels, counts), dim=1)
    return torch.cdist(protos[:n_old], protos[n_old:], p=p) ** 2


@mistake("ex08.2")
def cost_p_th_power(features, labels, n_old, n_classes, p=3.0):
    counts = _cc_checked(features, labels, n_old, n_classes, p)
    protos = F.normalize(_means(F.normalize(features, dim=1), labels, counts), dim=1)
    return (protos[:n_old, None] - protos[None, n_old:]).abs().pow(p).sum(-1)  # without the 1/p root


@mistake("ex08.2")
def cost_transposed(features, labels, n_old, n_classes, p=3.0):
    counts = _cc_checked(features, labels, n_old, n_classes, p)
    protos = F.normalize(_means(F.normalize(features, dim=1), labels, counts), dim=1)
    return torch.cdist(protos[n_old:], protos[:n_old], p=p)  # new classes as rows


@mistake("ex08.2")
def cost_contiguous_equal_blocks(features, labels, n_old, n_classes, p=3.0):
    _cc_checked(features, labels, n_old, n_classes, p)
    unit = F.normalize(features, dim=1)  # assumes the rows sorted by class, the same count each
    protos = F.normalize(unit.reshape(n_classes, -1, unit.shape[1]).mean(1), dim=1)
    return torch.cdist(protos[:n_old], protos[n_old:], p=p)


@mistake("ex08.2")
def cost_classes_in_order_of_appearance(features, labels, n_old, n_classes, p=3.0):
    _cc_checked(features, labels, n_old, n_classes, p)
    unit = F.normalize(features, dim=1)
    seen = dict.fromkeys(labels.tolist())  # the classes in the order they come, not 0, 1, 2, ...
    protos = torch.stack([unit[labels == c].mean(0) for c in seen])
    protos = F.normalize(protos, dim=1)
    return torch.cdist(protos[:n_old], protos[n_old:], p=p)


@mistake("ex08.2")
def cost_no_checks(features, labels, n_old, n_classes, p=3.0):
    counts = torch.bincount(labels, minlength=n_classes)  # an empty class gives a zero prototype silently
    protos = F.normalize(_means(F.normalize(features, dim=1), labels, counts.clamp_min(1)), dim=1)
    return torch.cdist(protos[:n_old], protos[n_old:n_classes], p=p)


# ex08.3 prospective_rows
def _pr_checked(plan, old_rows):
    if plan.dim() != 2 or old_rows.dim() != 2 or plan.shape[0] != old_rows.shape[0]:
        raise ValueError("shapes")


def _norms(rows):
    return torch.linalg.vector_norm(rows, dim=1)


@mistake("ex08.3")
def rows_not_normalised_before_mixing(plan, old_rows):
    _pr_checked(plan, old_rows)
    moved = plan.to(old_rows.dtype).T @ old_rows  # long old rows dominate the mix
    return moved * (_norms(old_rows).mean() / _norms(moved).mean().clamp_min(1e-30))


@mistake("ex08.3")
def rows_plan_not_transposed(plan, old_rows):
    if plan.dim() != 2 or old_rows.dim() != 2:
        raise ValueError("shapes")
    moved = plan.to(old_rows.dtype) @ F.normalize(old_rows, dim=1)[:plan.shape[1]]  # P, not Pᵀ
    return moved * (_norms(old_rows).mean() / _norms(moved).mean().clamp_min(1e-30))


@mistake("ex08.3")
def rows_each_rescaled_alone(plan, old_rows):
    _pr_checked(plan, old_rows)
    moved = plan.to(old_rows.dtype).T @ F.normalize(old_rows, dim=1)
    return F.normalize(moved, dim=1) * _norms(old_rows).mean()  # every new row of the same norm


@mistake("ex08.3")
def rows_matched_to_the_max_norm(plan, old_rows):
    _pr_checked(plan, old_rows)
    moved = plan.to(old_rows.dtype).T @ F.normalize(old_rows, dim=1)
    return moved * (_norms(old_rows).max() / _norms(moved).max().clamp_min(1e-30))


@mistake("ex08.3")
def rows_matched_to_the_sum_of_norms(plan, old_rows):
    _pr_checked(plan, old_rows)
    moved = plan.to(old_rows.dtype).T @ F.normalize(old_rows, dim=1)
    return moved * (_norms(old_rows).sum() / _norms(moved).sum().clamp_min(1e-30))  # n/m times the mean's


@mistake("ex08.3")
def rows_not_rescaled(plan, old_rows):
    _pr_checked(plan, old_rows)
    return plan.to(old_rows.dtype).T @ F.normalize(old_rows, dim=1)  # as short as the plan's masses


@mistake("ex08.3")
def rows_normalised_in_place(plan, old_rows):
    _pr_checked(plan, old_rows)
    target = _norms(old_rows).mean()
    with torch.no_grad():
        old_rows.div_(_norms(old_rows)[:, None].clamp_min(1e-12))  # the classifier's own weights changed
    moved = plan.to(old_rows.dtype).T @ old_rows
    return moved * (target / _norms(moved).mean().clamp_min(1e-30))


@mistake("ex08.3")
def rows_zero_plan_divides_by_zero(plan, old_rows):
    _pr_checked(plan, old_rows)
    moved = plan.to(old_rows.dtype).T @ F.normalize(old_rows, dim=1)
    return moved * (_norms(old_rows).mean() / _norms(moved).mean())  # 0/0 = NaN for a zero plan


# ex08.4 retrospective_loss
def _rl_checked(features, retro_rows, old_logits, T):
    if features.dim() != 2 or retro_rows.dim() != 2 or features.shape[1] != retro_rows.shape[1] \
            or old_logits.shape != (features.shape[0], retro_rows.shape[0]) or not T > 0:
        raise ValueError("bad arguments")


def _soft_ce(student_logits, teacher_logits, T):
    p = torch.softmax(teacher_logits.detach() / T, dim=1)
    return -(p * torch.log_softmax(student_logits / T, dim=1)).sum(1).mean()


@mistake("ex08.4")
def retro_features_not_normalised(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    logits = features @ F.normalize(retro_rows.detach(), dim=1).T  # ⟨f, w/‖w‖⟩, not a cosine
    return _soft_ce(logits, old_logits, T)


@mistake("ex08.4")
def retro_rows_not_normalised(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    logits = F.normalize(features, dim=1) @ retro_rows.detach().T
    return _soft_ce(logits, old_logits, T)


@mistake("ex08.4")
def retro_temperature_on_the_teacher_only(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    cos = F.normalize(features, dim=1) @ F.normalize(retro_rows.detach(), dim=1).T
    p = torch.softmax(old_logits.detach() / T, dim=1)
    return -(p * torch.log_softmax(cos, dim=1)).sum(1).mean()


@mistake("ex08.4")
def retro_mean_over_classes(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    cos = F.normalize(features, dim=1) @ F.normalize(retro_rows.detach(), dim=1).T
    p = torch.softmax(old_logits.detach() / T, dim=1)
    return -(p * torch.log_softmax(cos / T, dim=1)).mean()  # divided by K too


@mistake("ex08.4")
def retro_student_and_teacher_swapped(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    cos = F.normalize(features, dim=1) @ F.normalize(retro_rows.detach(), dim=1).T
    return -(torch.softmax(cos / T, dim=1) * torch.log_softmax(old_logits.detach() / T, dim=1)).sum(1).mean()


@mistake("ex08.4")
def retro_features_detached(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    cos = F.normalize(features.detach(), dim=1) @ F.normalize(retro_rows.detach(), dim=1).T  # COIL's code
    return _soft_ce(cos, old_logits, T)


@mistake("ex08.4")
def retro_sum_over_the_batch(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    cos = F.normalize(features, dim=1) @ F.normalize(retro_rows.detach(), dim=1).T
    p = torch.softmax(old_logits.detach() / T, dim=1)
    return -(p * torch.log_softmax(cos / T, dim=1)).sum()


@mistake("ex08.4")
def retro_rows_not_detached(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    cos = F.normalize(features, dim=1) @ F.normalize(retro_rows, dim=1).T  # the rows get trained too
    return _soft_ce(cos, old_logits, T)


@mistake("ex08.4")
def retro_naive_softmax(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    cos = F.normalize(features, dim=1) @ F.normalize(retro_rows.detach(), dim=1).T
    e = torch.exp(old_logits.detach() / T)  # overflows for logits of 10³: inf/inf = NaN
    p = e / e.sum(1, keepdim=True)
    return -(p * torch.log_softmax(cos / T, dim=1)).sum(1).mean()


@mistake("ex08.4")
def retro_with_t_squared(features, retro_rows, old_logits, T=2.0):
    _rl_checked(features, retro_rows, old_logits, T)
    cos = F.normalize(features, dim=1) @ F.normalize(retro_rows.detach(), dim=1).T
    return _soft_ce(cos, old_logits, T) * T ** 2  # Hinton's T², which COIL's term does not have
