"""Plausible wrong answers to lesson 02's exercises (see ``__init__.py``)."""
import torch

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


# ex02.1 laplace_variance
def _derivatives(log_density, theta_star):
    theta = torch.as_tensor(theta_star, dtype=torch.float64).detach().clone().requires_grad_()
    (first,) = torch.autograd.grad(log_density(theta), theta, create_graph=True)
    (second,) = torch.autograd.grad(first, theta)
    return first.detach(), second


@mistake("ex02.1")
def laplace_returns_the_curvature(log_density, theta_star):
    return _derivatives(log_density, theta_star)[1]  # the precision's negative, not the variance


@mistake("ex02.1")
def laplace_without_the_minus_sign(log_density, theta_star):
    second = _derivatives(log_density, theta_star)[1]
    if second == 0:
        raise ValueError("flat")
    return 1.0 / second  # negative: the curvature at a maximum is < 0


@mistake("ex02.1")
def laplace_from_the_first_derivative(log_density, theta_star):
    first, _ = _derivatives(log_density, theta_star)
    return 1.0 / first.abs()  # the first derivative vanishes at the mode


@mistake("ex02.1")
def laplace_by_finite_differences(log_density, theta_star):
    h = 1e-2  # a "small" step: the error of the central difference is ~h² f''''/12
    t = torch.as_tensor(theta_star, dtype=torch.float64).detach()
    second = (log_density(t + h) - 2 * log_density(t) + log_density(t - h)) / h ** 2
    if not second < 0:
        raise ValueError("not a maximum")
    return -1.0 / second


# ex02.4 empirical_fisher_diagonal
@mistake("ex02.4")
def empirical_fisher_squares_the_mean_gradient(per_sample_grads):
    return {n: g.mean(dim=0) ** 2 for n, g in per_sample_grads.items()}  # the "batched" kind


@mistake("ex02.4")
def empirical_fisher_sums_over_examples(per_sample_grads):
    return {n: (g ** 2).sum(dim=0) for n, g in per_sample_grads.items()}


@mistake("ex02.4")
def empirical_fisher_mean_over_the_last_axis(per_sample_grads):
    return {n: (g ** 2).mean(dim=-1) for n, g in per_sample_grads.items()}


@mistake("ex02.4")
def empirical_fisher_without_squaring(per_sample_grads):
    return {n: g.abs().mean(dim=0) for n, g in per_sample_grads.items()}


# ex02.2 softmax_regression_fisher
def _kron_mean(cov, x, order="kdle"):
    K, D = cov.shape[1], x.shape[1]
    return torch.einsum(f"nkl,nd,ne->{order}", cov, x, x).reshape(K * D, K * D) / len(x)


@mistake("ex02.2")
def softmax_fisher_with_the_predicted_label(W, x):
    p = torch.softmax(x @ W.T, dim=1)
    r = torch.nn.functional.one_hot(p.argmax(1), W.shape[0]).to(p.dtype) - p  # e_ĉ − p, ĉ = argmax
    return _kron_mean(r[:, :, None] * r[:, None, :], x)


@mistake("ex02.2")
def softmax_fisher_diagonal_of_p_only(W, x):
    p = torch.softmax(x @ W.T, dim=1)
    return _kron_mean(torch.diag_embed(p), x)  # forgets − p pᵀ


@mistake("ex02.2")
def softmax_fisher_kronecker_in_the_wrong_order(W, x):
    p = torch.softmax(x @ W.T, dim=1)
    cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return _kron_mean(cov, x, order="dkel")  # x xᵀ ⊗ cov: column-major vec(W)


@mistake("ex02.2")
def softmax_fisher_summed_over_examples(W, x):
    p = torch.softmax(x @ W.T, dim=1)
    cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return _kron_mean(cov, x) * len(x)


# ex02.3 ewc_penalty
@mistake("ex02.3")
def ewc_value_without_the_half(params, fisher, anchor, lam):
    value = lam * sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in params.items())
    return value, {n: lam * fisher[n] * (p - anchor[n]) for n, p in params.items()}


@mistake("ex02.3")
def ewc_gradient_keeps_the_half(params, fisher, anchor, lam):
    value = lam / 2 * sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in params.items())
    return value, {n: lam / 2 * fisher[n] * (p - anchor[n]) for n, p in params.items()}


@mistake("ex02.3")
def ewc_absolute_distance(params, fisher, anchor, lam):
    value = lam / 2 * sum((fisher[n] * (p - anchor[n]).abs()).sum() for n, p in params.items())
    return value, {n: lam / 2 * fisher[n] * (p - anchor[n]).sign() for n, p in params.items()}


@mistake("ex02.3")
def ewc_gradient_sign_flipped(params, fisher, anchor, lam):
    value = lam / 2 * sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in params.items())
    return value, {n: lam * fisher[n] * (anchor[n] - p) for n, p in params.items()}


# ex02.6 online_fisher_update
def _online(running, new, combine):
    out = {}
    for n, f in new.items():
        out[n] = f.clone()
        if n in running:
            block = tuple(slice(0, s) for s in running[n].shape)
            out[n][block] = combine(running[n], f[block])
    return out


@mistake("ex02.6")
def online_fisher_decays_the_new_term(running, new, gamma):
    return _online(running, new, lambda old, f: old + gamma * f)


@mistake("ex02.6")
def online_fisher_moving_average(running, new, gamma):
    return _online(running, new, lambda old, f: gamma * old + (1 - gamma) * f)


@mistake("ex02.6")
def online_fisher_in_place(running, new, gamma):
    for n, f in new.items():
        if n in running:
            running[n].mul_(gamma).add_(f)  # the caller's running Fisher changes
        else:
            running[n] = f.clone()
    return running


@mistake("ex02.6")
def online_fisher_ignores_grown_units(running, new, gamma):
    return {n: gamma * running[n] + f if n in running else f.clone() for n, f in new.items()}


# ex02.5 si_importance
@mistake("ex02.5")
def si_sign_flipped(grads, deltas, theta_start, theta_end, xi):
    return (grads * deltas).sum(dim=0) / ((theta_end - theta_start) ** 2 + xi)


@mistake("ex02.5")
def si_without_xi(grads, deltas, theta_start, theta_end, xi):
    return -(grads * deltas).sum(dim=0) / (theta_end - theta_start) ** 2


@mistake("ex02.5")
def si_divides_every_step(grads, deltas, theta_start, theta_end, xi):
    return (-(grads * deltas) / (deltas ** 2 + xi)).sum(dim=0)


@mistake("ex02.5")
def si_path_length_as_displacement(grads, deltas, theta_start, theta_end, xi):
    return -(grads * deltas).sum(dim=0) / (deltas.abs().sum(dim=0) ** 2 + xi)


# ---- kinds of issue 22 §2: dtype, extreme inputs, inputs changed (values or autograd flags), aliasing
@mistake("ex02.1")
def laplace_in_the_input_dtype(log_density, theta_star):
    t = torch.as_tensor(theta_star)
    dtype = t.dtype if t.is_floating_point() else torch.float64
    theta = t.detach().clone().to(dtype).requires_grad_()  # float32 θ*: float32 derivatives
    (first,) = torch.autograd.grad(log_density(theta.double()), theta, create_graph=True)
    (second,) = torch.autograd.grad(first, theta)
    if not second < 0:
        raise ValueError("not a maximum")
    return (-1.0 / second.detach()).double()


@mistake("ex02.4")
def empirical_fisher_squares_in_place(per_sample_grads):
    return {n: g.detach().pow_(2).mean(dim=0) for n, g in per_sample_grads.items()}  # detach shares memory


@mistake("ex02.4")
def empirical_fisher_divides_by_n_minus_1(per_sample_grads):
    return {n: (g ** 2).sum(dim=0) / (g.shape[0] - 1) for n, g in per_sample_grads.items()}  # a variance habit


@mistake("ex02.2")
def softmax_fisher_with_naive_exp(W, x):
    z = (x @ W.T).exp()
    p = z / z.sum(dim=1, keepdim=True)  # overflows to inf/inf = NaN for large logits
    cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return _kron_mean(cov, x)


@mistake("ex02.2")
def softmax_fisher_marks_w_for_autograd(W, x):
    W.requires_grad_()  # "so that autograd can differentiate": changes the caller's W
    p = torch.softmax(x @ W.detach().T, dim=1)
    cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]
    return _kron_mean(cov, x)


@mistake("ex02.3")
def ewc_grads_by_autograd_on_the_inputs(params, fisher, anchor, lam):
    for p in params.values():
        p.requires_grad_()  # the caller's tensors now require grad
    value = lam / 2 * sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in params.items())
    grads = torch.autograd.grad(value, list(params.values()), create_graph=True)
    return value, {n: g.detach() for n, g in zip(params, grads)}


@mistake("ex02.3")
def ewc_value_through_item(params, fisher, anchor, lam):
    total = sum((fisher[n] * (p - anchor[n]) ** 2).sum() for n, p in params.items())
    dtype = next(iter(params.values())).dtype
    value = torch.tensor(lam / 2 * total.item(), dtype=dtype)  # no graph: the loss cannot back-propagate
    return value, {n: lam * fisher[n] * (p - anchor[n]) for n, p in params.items()}


@mistake("ex02.5")
def si_clamps_negative_importance(grads, deltas, theta_start, theta_end, xi):
    return (-(grads * deltas).sum(dim=0)).clamp_min(0) / ((theta_end - theta_start) ** 2 + xi)  # a ReLU


@mistake("ex02.5")
def si_xi_inside_the_square(grads, deltas, theta_start, theta_end, xi):
    return -(grads * deltas).sum(dim=0) / ((theta_end - theta_start).abs() + xi) ** 2


@mistake("ex02.5")
def si_accumulates_into_grads(grads, deltas, theta_start, theta_end, xi):
    grads.mul_(deltas).neg_()  # reuses the caller's tensor
    return grads.sum(dim=0) / ((theta_end - theta_start) ** 2 + xi)


@mistake("ex02.6")
def online_fisher_aliases_new_when_running_is_empty(running, new, gamma):
    if not running:
        return dict(new)  # the caller's F_1 tensors themselves
    return _online(running, new, lambda old, f: gamma * old + f)


@mistake("ex02.6")
def online_fisher_adds_into_new(running, new, gamma):
    out = {}
    for n, f in new.items():
        if n in running:
            f[tuple(slice(0, s) for s in running[n].shape)] += gamma * running[n]  # changes `new`
        out[n] = f.clone()
    return out
