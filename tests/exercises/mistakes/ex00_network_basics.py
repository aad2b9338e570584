"""Plausible wrong answers to lesson 00's exercises (see ``__init__.py``)."""
import torch
import torch.nn.functional as F

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


# ex00.2 stable_softmax
@mistake("ex00.2")
def softmax_without_max_shift(z, T=1.0):
    e = (z / T).exp()  # exp(1e4) = inf
    return e / e.sum(dim=-1, keepdim=True)


@mistake("ex00.2")
def softmax_shifted_by_the_batch_max(z, T=1.0):
    s = z / T
    e = (s - s.max()).exp()  # one max for the whole batch: a row far below it underflows to 0/0
    return e / e.sum(dim=-1, keepdim=True)


@mistake("ex00.2")
def softmax_over_the_wrong_axis(z, T=1.0):
    s = z / T
    e = (s - s.amax(dim=0, keepdim=True)).exp()
    return e / e.sum(dim=0, keepdim=True)


@mistake("ex00.2")
def softmax_ignoring_the_temperature(z, T=1.0):
    e = (z - z.amax(dim=-1, keepdim=True)).exp()
    return e / e.sum(dim=-1, keepdim=True)


@mistake("ex00.2")
def softmax_shifts_z_in_place(z, T=1.0):
    z -= z.amax(dim=-1, keepdim=True)  # "saves memory", but shifts the caller's logits too
    e = (z / T).exp()
    return e / e.sum(dim=-1, keepdim=True)


# ex00.3 cross_entropy_from_logits
@mistake("ex00.3")
def cross_entropy_shifted_by_the_batch_max(logits, targets):
    shifted = logits - logits.max()
    log_probs = shifted - shifted.exp().sum(dim=-1, keepdim=True).log()
    return -log_probs[torch.arange(len(targets)), targets].mean()


@mistake("ex00.3")
def cross_entropy_as_log_of_softmax(logits, targets):
    p = torch.softmax(logits, dim=-1)  # underflows to 0 for logits far below the max: log 0 = -inf
    return -p[torch.arange(len(targets)), targets].log().mean()


@mistake("ex00.3")
def cross_entropy_summed_not_averaged(logits, targets):
    log_probs = torch.log_softmax(logits, dim=-1)
    return -log_probs[torch.arange(len(targets)), targets].sum()


@mistake("ex00.3")
def cross_entropy_with_a_broadcast_gather(logits, targets):
    log_probs = torch.log_softmax(logits, dim=-1)
    return -log_probs[:, targets].mean()  # (N, N): every row at every target


@mistake("ex00.3")
def cross_entropy_log_sum_exp_without_the_shift(logits, targets):
    log_probs = logits - logits.exp().sum(dim=-1, keepdim=True).log()  # log(inf) at 1e4
    return -log_probs[torch.arange(len(targets)), targets].mean()


@mistake("ex00.3")
def cross_entropy_indexed_target_first(logits, targets):
    log_probs = torch.log_softmax(logits, dim=-1)
    return -log_probs[targets, torch.arange(len(targets))].mean()  # rows by target: runs when N = C


@mistake("ex00.3")
def cross_entropy_shifts_logits_in_place(logits, targets):
    logits -= logits.amax(dim=-1, keepdim=True)  # the caller's logits move
    log_probs = logits - logits.exp().sum(dim=-1, keepdim=True).log()
    return -log_probs[torch.arange(len(targets)), targets].mean()


# ex00.1 activation
@mistake("ex00.1")
def activation_relu_derivative_one_at_zero(name, z):
    if name == "relu":
        return z.clamp_min(0), (z >= 0).to(z.dtype)
    if name == "sigmoid":
        f = torch.sigmoid(z)
        return f, f * (1 - f)
    if name == "tanh":
        f = torch.tanh(z)
        return f, 1 - f ** 2
    raise ValueError(name)


@mistake("ex00.1")
def activation_tanh_by_its_formula(name, z):
    if name == "relu":
        return z.clamp_min(0), (z > 0).to(z.dtype)
    if name == "sigmoid":
        f = torch.sigmoid(z)
        return f, f * (1 - f)
    if name == "tanh":
        f = (z.exp() - (-z).exp()) / (z.exp() + (-z).exp())  # inf / inf = NaN at 1e4
        return f, 1 - f ** 2
    raise ValueError(name)


@mistake("ex00.1")
def activation_derivatives_in_terms_of_z(name, z):
    if name == "relu":
        return z.clamp_min(0), (z > 0).to(z.dtype)
    if name == "sigmoid":
        f = torch.sigmoid(z)
        return f, z * (1 - z)  # f'(z) written with z instead of f
    if name == "tanh":
        return torch.tanh(z), 1 - z ** 2
    raise ValueError(name)


@mistake("ex00.1")
def activation_unknown_name_returns_identity(name, z):
    if name == "relu":
        return z.clamp_min(0), (z > 0).to(z.dtype)
    if name == "sigmoid":
        f = torch.sigmoid(z)
        return f, f * (1 - f)
    if name == "tanh":
        f = torch.tanh(z)
        return f, 1 - f ** 2
    return z, torch.ones_like(z)


def _activation(name, z, relu=None, sigmoid=None):
    if name == "relu":
        return relu(z) if relu else (z.clamp_min(0), (z > 0).to(z.dtype))
    if name == "sigmoid":
        if sigmoid:
            return sigmoid(z)
        f = 1 / (1 + torch.exp(-z))
        return f, f * (1 - f)
    if name == "tanh":
        f = torch.tanh(z)
        return f, 1 - f ** 2
    raise ValueError(name)


@mistake("ex00.1")
def activation_sigmoid_as_exp_over_one_plus_exp(name, z):
    # e^z / (1 + e^z): inf / inf = NaN once e^z overflows (z > 88.7 in float32, > 709.8 in float64)
    return _activation(name, z, sigmoid=lambda z: (z.exp() / (1 + z.exp()), z.exp() / (1 + z.exp()) ** 2))


@mistake("ex00.1")
def activation_sigmoid_derivative_from_its_formula(name, z):
    def sigmoid(z):
        f = 1 / (1 + torch.exp(-z))
        return f, torch.exp(-z) / (1 + torch.exp(-z)) ** 2  # inf / inf for z ≪ 0
    return _activation(name, z, sigmoid=sigmoid)


@mistake("ex00.1")
def activation_relu_in_place(name, z):
    def relu(z):
        derivative = (z > 0).to(z.dtype)
        return z.clamp_(min=0), derivative  # overwrites the caller's z
    return _activation(name, z, relu=relu)


@mistake("ex00.1")
def activation_relu_derivative_in_the_default_dtype(name, z):
    return _activation(name, z, relu=lambda z: (z.clamp_min(0), torch.where(z > 0, 1.0, 0.0)))  # float32


# ex00.4 two_layer_backward
def _backward(x, W1, b1, W2, b2, targets, mean=True, mask_from="z1", sum_dim=0,
              softmax=lambda logits: torch.softmax(logits, dim=-1)):
    """The backward pass with one slip chosen by the arguments (mask_from: "z1" right, "h", "none")."""
    z1 = x @ W1.T + b1
    h = z1.clamp_min(0)
    p = softmax(h @ W2.T + b2)
    y = torch.zeros_like(p)
    y[torch.arange(len(x)), targets] = 1.0
    d = (p - y) / (len(x) if mean else 1)
    dh = d @ W2
    dz1 = dh if mask_from == "none" else dh * ((z1 > 0) if mask_from == "z1" else (h >= 0)).to(dh.dtype)
    return {"dW1": dz1.T @ x, "db1": dz1.sum(dim=sum_dim) if sum_dim == 0 else dz1.sum(dim=1)[:len(b1)],
            "dW2": d.T @ h, "db2": d.sum(dim=0)}


@mistake("ex00.4")
def backward_of_the_summed_loss(x, W1, b1, W2, b2, targets):
    return _backward(x, W1, b1, W2, b2, targets, mean=False)


@mistake("ex00.4")
def backward_relu_mask_from_h_ge_0(x, W1, b1, W2, b2, targets):
    return _backward(x, W1, b1, W2, b2, targets, mask_from="h")  # h >= 0 everywhere: no mask at all


@mistake("ex00.4")
def backward_forgets_the_relu(x, W1, b1, W2, b2, targets):
    return _backward(x, W1, b1, W2, b2, targets, mask_from="none")  # dz1 = dh: ReLU's derivative left out


@mistake("ex00.4")
def backward_with_a_naive_softmax(x, W1, b1, W2, b2, targets):
    def naive(logits):  # overflows for large logits: inf / inf
        e = logits.exp()
        return e / e.sum(dim=-1, keepdim=True)
    return _backward(x, W1, b1, W2, b2, targets, softmax=naive)


@mistake("ex00.4")
def backward_softmax_shifted_by_the_batch_max(x, W1, b1, W2, b2, targets):
    def batch_max(logits):  # one max for the batch: a row far below it becomes 0 / 0
        e = (logits - logits.max()).exp()
        return e / e.sum(dim=-1, keepdim=True)
    return _backward(x, W1, b1, W2, b2, targets, softmax=batch_max)


@mistake("ex00.4")
def backward_with_autograd_on_the_inputs(x, W1, b1, W2, b2, targets):
    params = [W1, b1, W2, b2]
    for p in params:
        p.requires_grad_()  # switches autograd on for the caller's tensors
    loss = F.cross_entropy(torch.relu(x @ W1.T + b1) @ W2.T + b2, targets)
    return {k: g.detach() for k, g in zip(["dW1", "db1", "dW2", "db2"], torch.autograd.grad(loss, params))}


# ex00.5 sgd_momentum_step
@mistake("ex00.5")
def sgd_updates_in_place(params, grads, velocities, lr, momentum):
    for p, g, v in zip(params, grads, velocities):
        v.mul_(momentum).add_(g)
        p.sub_(lr * v)
    return params, velocities


@mistake("ex00.5")
def sgd_steps_with_the_old_velocity(params, grads, velocities, lr, momentum):
    new_v = [momentum * v + g for v, g in zip(velocities, grads)]
    return [p - lr * v for p, v in zip(params, velocities)], new_v


@mistake("ex00.5")
def sgd_velocity_includes_the_learning_rate(params, grads, velocities, lr, momentum):
    new_v = [momentum * v + lr * g for v, g in zip(velocities, grads)]  # another convention, other v
    return [p - v for p, v in zip(params, new_v)], new_v


@mistake("ex00.5")
def sgd_updates_param_data(params, grads, velocities, lr, momentum):
    new_params, new_velocities = [], []
    for p, g, v in zip(params, grads, velocities):
        v_new = momentum * v + g
        p.data -= lr * v_new  # no autograd error, but the caller's parameter changes
        new_params.append(p)
        new_velocities.append(v_new)
    return new_params, new_velocities
