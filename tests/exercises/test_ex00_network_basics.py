"""Grading tests of lesson 00 (network basics): exercises ex00.1–ex00.5, in the notebook's order.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse.nn_basics`, with PyTorch itself, and with
properties the result must have whatever the implementation.
"""
import pytest
import torch
import torch.nn.functional as F

from clcourse import nn_basics as ref

from checks import call_unchanged, check_tensor

EXERCISE_MODULE = "ex00_network_basics"


# ---------------------------------------------------------------- helpers

def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _randint(high, n, seed=0):
    return torch.randint(0, high, (n,), generator=torch.Generator().manual_seed(seed))



def gradcheck(fn, z, what):
    """torch.autograd.gradcheck on float64, with a message that says what failed."""
    z = z.detach().clone().requires_grad_()
    try:
        ok = torch.autograd.gradcheck(fn, (z,), eps=1e-6, atol=1e-5)
    except RuntimeError as err:
        if isinstance(err, NotImplementedError):
            raise
        raise AssertionError(
            f"{what}: autograd's gradient disagrees with finite differences (or the function is not "
            f"differentiable with torch operations: no NumPy, no .item(), no in-place edits of inputs).\n"
            f"{err}") from None
    assert ok, f"{what}: gradcheck failed"


# ---------------------------------------------------------------- ex00.1 activations (§3)

ACTIVATIONS = {
    "relu": (ref.relu, ref.relu_grad),
    "sigmoid": (ref.sigmoid, ref.sigmoid_grad),
    "tanh": (ref.tanh, ref.tanh_grad),
}
NAMES = list(ACTIVATIONS)


def _call_activation(ex, name, z):
    out = ex.activation(name, z.clone())  # a copy: a test about values must not fail on a mutation
    assert isinstance(out, tuple) and len(out) == 2, (
        f"activation({name!r}, z) must return a pair (value, derivative), got {type(out).__name__}")
    return out


@pytest.mark.exercise("ex00.1")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_activation_matches_reference(ex, name, dtype):
    z = 3 * _randn(3, 4, 5, dtype=dtype)
    f, df = ACTIVATIONS[name]
    value, derivative = _call_activation(ex, name, z)
    check_tensor(value, f(z), f"activation({name!r}, z) value, z of shape (3, 4, 5), {dtype}")
    check_tensor(derivative, df(z), f"activation({name!r}, z) derivative wrt z, {dtype}")
    value, derivative = _call_activation(ex, name, z[:0])
    assert value.shape == derivative.shape == (0, 4, 5), (
        f"activation({name!r}, z) of an empty tensor must return empty tensors of the same shape")


@pytest.mark.exercise("ex00.1")
@pytest.mark.parametrize("name", NAMES)
def test_activation_derivative_matches_autograd(ex, name):
    z = 3 * _randn(40, seed=1)
    z = z + 0.01 * z.sign()  # stay away from relu's kink at 0
    _, derivative = _call_activation(ex, name, z)
    zg = z.clone().requires_grad_()
    (expected,) = torch.autograd.grad(getattr(torch, name)(zg).sum(), zg)
    check_tensor(derivative, expected, f"activation({name!r}, z) derivative compared with autograd's")
    gradcheck(lambda t: ex.activation(name, t)[0], z[:6], f"activation({name!r}, z) value, float64")


@pytest.mark.exercise("ex00.1")
def test_activation_values_at_zero(ex):
    z = torch.zeros(2, dtype=torch.float64)
    expected = {"relu": (0.0, 0.0), "sigmoid": (0.5, 0.25), "tanh": (0.0, 1.0)}
    for name, (v0, d0) in expected.items():
        value, derivative = _call_activation(ex, name, z)
        check_tensor(value, torch.full((2,), v0, dtype=torch.float64), f"{name}(0)")
        check_tensor(derivative, torch.full((2,), d0, dtype=torch.float64),
                     f"{name}'(0)" + (" (by convention, as in PyTorch: 0 at the kink)" if name == "relu" else ""))


@pytest.mark.exercise("ex00.1")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("name", NAMES)
def test_activation_extreme_inputs_stay_finite(ex, name, dtype):
    # exp overflows beyond 88.7 in float32 and 709.8 in float64: an inf / inf hides at ±100 in float32
    z = torch.tensor([-1e4, -800.0, -100.0, -30.0, 30.0, 100.0, 800.0, 1e4], dtype=dtype)
    f, df = ACTIVATIONS[name]
    value, derivative = _call_activation(ex, name, z)
    check_tensor(value, f(z), f"activation({name!r}, z) value for z = ±30, ±100, ±800, ±1e4 in {dtype} "
                 "(exp overflows there: write the formula so that inf gives the right limit)")
    check_tensor(derivative, df(z), f"activation({name!r}, z) derivative for z = ±30, ±100, ±800, ±1e4 in "
                 f"{dtype}")


@pytest.mark.exercise("ex00.1")
@pytest.mark.parametrize("name", NAMES)
def test_activation_leaves_z_unchanged(ex, name):
    f, df = ACTIVATIONS[name]
    z = torch.tensor([-2.0, -0.5, 0.0, 0.5, 2.0], dtype=torch.float64)
    for zz in (z.clone(), z.clone().requires_grad_()):
        value, derivative = call_unchanged(ex.activation, name, zz,
                                           what=f"activation({name!r}, z), z.requires_grad={zz.requires_grad}")
        check_tensor(value, f(z), f"activation({name!r}, z) value, z = {z.tolist()}")
        check_tensor(derivative, df(z), f"activation({name!r}, z) derivative, z = {z.tolist()}")


@pytest.mark.exercise("ex00.1")
@pytest.mark.parametrize("name", NAMES)
def test_activation_0d_empty_and_higher_dimensional_inputs(ex, name):
    f, df = ACTIVATIONS[name]
    for z in (torch.tensor(-0.7, dtype=torch.float64), torch.tensor(1.3), torch.zeros(0, 3),
              _randn(2, 3, 4, seed=7, dtype=torch.float32)):
        value, derivative = _call_activation(ex, name, z)
        shape = f"z of shape {tuple(z.shape)}, {z.dtype}"
        check_tensor(value, f(z), f"activation({name!r}, z) value for {shape} (keep z's shape and dtype)")
        check_tensor(derivative, df(z), f"activation({name!r}, z) derivative for {shape} (keep z's shape "
                     "and dtype)")


@pytest.mark.exercise("ex00.1")
def test_activation_unknown_name_raises_value_error(ex):
    try:
        ex.activation("softplus", torch.zeros(3))
    except ValueError:
        return
    pytest.fail("activation('softplus', z) must raise ValueError: only 'relu', 'sigmoid', 'tanh' are known")


# ---------------------------------------------------------------- ex00.2 stable softmax (§5)

@pytest.mark.exercise("ex00.2")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("shape", [(4, 5), (2, 3, 6), (7,)], ids=["2d", "3d", "1d"])
def test_softmax_matches_reference(ex, shape, dtype):
    z = 3 * _randn(*shape, dtype=dtype)
    p = ex.stable_softmax(z)
    check_tensor(p, ref.stable_softmax(z), f"stable_softmax(z) for z of shape {shape}, {dtype}")
    check_tensor(p, torch.softmax(z, dim=-1), "stable_softmax(z) compared with torch.softmax(z, dim=-1)")


@pytest.mark.exercise("ex00.2")
def test_softmax_rows_are_probabilities_and_shift_invariant(ex):
    z = 2 * _randn(6, 4)
    p = ex.stable_softmax(z)
    assert (p >= 0).all(), "softmax probabilities must be ≥ 0"
    check_tensor(p.sum(dim=-1), torch.ones(6, dtype=torch.float64), "each row of softmax must sum to 1")
    shift = torch.tensor([[100.0], [-37.0], [0.5], [1e3], [-1e3], [0.0]], dtype=torch.float64)
    check_tensor(ex.stable_softmax(z + shift), p,
                 "softmax(z + c) must equal softmax(z) when a constant c is added to a whole row")


@pytest.mark.exercise("ex00.2")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_softmax_extreme_logits_stay_finite(ex, dtype):
    z = torch.tensor([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    expected = torch.tensor([[1.0, 0.0, 0.0], [1 / 3, 1 / 3, 1 / 3], [0.5, 0.5, 0.0]], dtype=dtype)
    check_tensor(ex.stable_softmax(z), expected,
                 "softmax of logits ±1e4 (exp(1e4) overflows: subtract each row's max first)")


@pytest.mark.exercise("ex00.2")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_softmax_rows_on_very_different_scales(ex, dtype):
    # Each row needs its OWN maximum: one shift for the whole batch sends a row far below it to 0 / 0.
    z = torch.tensor([[1e4, 1e4 - 1, 1e4 - 2], [0.0, 1.0, 2.0], [-1e4, -1e4 + 1, -1e4]], dtype=dtype)
    check_tensor(ex.stable_softmax(z), torch.softmax(z.double(), dim=-1).to(dtype),
                 f"softmax of rows around 1e4, 0 and -1e4 in {dtype} (shift each row by its own max)")
    # dividing by T = 0.01 rounds the scaled logits (≈ 1e4) to float32's 1e-3: a tolerance of that size
    tol = {"atol": 2e-3, "rtol": 0} if dtype == torch.float32 else {}
    check_tensor(ex.stable_softmax(z / 100, T=0.01), torch.softmax(z.double(), dim=-1).to(dtype),
                 f"softmax(z / 100, T=0.01) in {dtype}: the scaled logits reach ±1e4", **tol)


@pytest.mark.exercise("ex00.2")
def test_softmax_leaves_z_unchanged(ex):
    z = 3 * _randn(4, 5, seed=11)
    for zz in (z.clone(), z.clone().requires_grad_()):
        p = call_unchanged(ex.stable_softmax, zz, 2.0,
                           what=f"stable_softmax(z, 2.0), z.requires_grad={zz.requires_grad}")
        check_tensor(p, torch.softmax(z / 2.0, dim=-1), "stable_softmax(z, T=2.0)")


@pytest.mark.exercise("ex00.2")
def test_softmax_temperature(ex):
    z = 3 * _randn(5, 4, seed=1)
    for T in (0.5, 2.0, 7.0):
        check_tensor(ex.stable_softmax(z, T=T), ref.stable_softmax(z, T=T),
                     f"stable_softmax(z, T={T}) must equal softmax(z / T)")
    check_tensor(ex.stable_softmax(z, T=1e6), torch.full((5, 4), 0.25, dtype=torch.float64),
                 "a very high temperature must give (nearly) the uniform distribution", atol=1e-4, rtol=0)
    one_hot = F.one_hot(z.argmax(dim=-1), 4).to(torch.float64)
    check_tensor(ex.stable_softmax(z, T=1e-4), one_hot,
                 "a very low temperature must put (nearly) all mass on the largest logit", atol=1e-4, rtol=0)


@pytest.mark.exercise("ex00.2")
def test_softmax_gradcheck(ex):
    gradcheck(lambda t: ex.stable_softmax(t, T=1.5), _randn(3, 4, seed=2),
              "stable_softmax(z, T=1.5), float64")


@pytest.mark.exercise("ex00.2")
def test_softmax_batch_of_one_and_empty_batch(ex):
    z = _randn(1, 5, seed=3)
    check_tensor(ex.stable_softmax(z), torch.softmax(z, dim=-1), "stable_softmax of a batch of one row")
    empty = torch.zeros(0, 5)
    out = ex.stable_softmax(empty)
    check_tensor(out, empty, "stable_softmax of an empty batch (0 rows of 5 logits) must have shape (0, 5)")


# ---------------------------------------------------------------- ex00.3 cross-entropy (§6)

@pytest.mark.exercise("ex00.3")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_cross_entropy_matches_reference(ex, dtype):
    logits, y = 2 * _randn(8, 5, dtype=dtype), _randint(5, 8)
    loss = ex.cross_entropy_from_logits(logits, y)
    check_tensor(loss, ref.cross_entropy_from_logits(logits, y),
                 "cross_entropy_from_logits (a 0-dimensional tensor: the mean over the batch)")
    check_tensor(loss, F.cross_entropy(logits, y), "cross_entropy_from_logits compared with F.cross_entropy")


@pytest.mark.exercise("ex00.3")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_cross_entropy_extreme_logits_stay_finite(ex, dtype):
    logits = torch.tensor([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0]], dtype=dtype)
    y = torch.tensor([0, 1])
    # sample 0: the right class wins by 1e4, loss 0; sample 1: the right class loses by 2e4, loss 2e4
    check_tensor(ex.cross_entropy_from_logits(logits, y), torch.tensor(1e4, dtype=dtype),
                 "cross-entropy of logits ±1e4 (use log-sum-exp; never log of a softmax that underflowed)")


@pytest.mark.exercise("ex00.3")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_cross_entropy_rows_on_very_different_scales(ex, dtype):
    # Each row needs its OWN maximum: shifting by the batch's largest logit sends the lower rows'
    # exponentials to 0 and their log to -inf.
    logits = torch.tensor([[1e4, 1e4 - 1, 1e4 - 2], [0.0, 1.0, 2.0], [-1e4, -1e4 + 1, -1e4]], dtype=dtype)
    y = torch.tensor([0, 2, 1])
    check_tensor(ex.cross_entropy_from_logits(logits, y), F.cross_entropy(logits.double(), y).to(dtype),
                 f"cross-entropy of rows whose logits lie around 1e4, 0 and -1e4, {dtype} "
                 "(log-sum-exp shifted by each row's own max)")


@pytest.mark.exercise("ex00.3")
def test_cross_entropy_square_logits_with_unsorted_targets(ex):
    # N = C: an index mix-up (rows by target, columns by sample) runs without an error here; the targets
    # are unsorted, repeat a class and miss one, so no accident of the layout can make it right.
    logits, y = 2 * _randn(5, 5, seed=12), torch.tensor([3, 0, 4, 4, 1])
    check_tensor(ex.cross_entropy_from_logits(logits, y), F.cross_entropy(logits, y),
                 f"cross-entropy of 5 samples over 5 classes, targets {y.tolist()} (pick logp[n, y_n])")


@pytest.mark.exercise("ex00.3")
def test_cross_entropy_leaves_its_inputs_unchanged(ex):
    logits, y = 2 * _randn(6, 4, seed=13), torch.tensor([2, 0, 3, 3, 1, 0])
    for z in (logits.clone(), logits.clone().requires_grad_()):
        loss = call_unchanged(ex.cross_entropy_from_logits, z, y, what="cross_entropy_from_logits(logits, "
                              f"targets), logits.requires_grad={z.requires_grad}")
        check_tensor(loss, F.cross_entropy(logits, y), "cross_entropy_from_logits(logits, targets)")


@pytest.mark.exercise("ex00.3")
def test_cross_entropy_properties(ex):
    c = 7
    uniform = ex.cross_entropy_from_logits(torch.zeros(3, c, dtype=torch.float64), _randint(c, 3))
    check_tensor(uniform, torch.tensor(c, dtype=torch.float64).log(),
                 f"equal logits over {c} classes must give a loss of log({c})")
    logits, y = _randn(4, c, seed=1), _randint(c, 4, seed=1)
    loss = ex.cross_entropy_from_logits(logits, y)
    check_tensor(ex.cross_entropy_from_logits(logits + 123.0, y), loss,
                 "adding a constant to all logits must not change the loss")
    check_tensor(ex.cross_entropy_from_logits(torch.cat([logits, logits]), torch.cat([y, y])), loss,
                 "the loss is a MEAN over the batch: repeating the batch twice must not change it")


@pytest.mark.exercise("ex00.3")
def test_cross_entropy_gradient(ex):
    logits, y = _randn(5, 4, seed=2), _randint(4, 5, seed=2)
    gradcheck(lambda t: ex.cross_entropy_from_logits(t, y), logits, "cross_entropy_from_logits, float64")
    z = logits.clone().requires_grad_()
    (g,) = torch.autograd.grad(ex.cross_entropy_from_logits(z, y), z)
    expected = (torch.softmax(logits, dim=-1) - F.one_hot(y, 4).to(torch.float64)) / 5
    check_tensor(g, expected, "the gradient of the mean cross-entropy wrt the logits must be (p − Y) / N")


@pytest.mark.exercise("ex00.3")
def test_cross_entropy_batch_of_one(ex):
    logits, y = _randn(1, 6, seed=4), torch.tensor([2])
    check_tensor(ex.cross_entropy_from_logits(logits, y), -torch.log_softmax(logits, dim=-1)[0, 2],
                 "for a batch of one, the loss is −log softmax(logits)[target]")


# ---------------------------------------------------------------- ex00.4 manual backward pass (§7)

PARAM_NAMES = ["W1", "b1", "W2", "b2"]


def _network(n=6, d=4, h=5, c=3, seed=0, dtype=torch.float64):
    x = _randn(n, d, seed=seed, dtype=dtype)
    params = [_randn(h, d, seed=seed + 1, dtype=dtype), _randn(h, seed=seed + 2, dtype=dtype),
              _randn(c, h, seed=seed + 3, dtype=dtype), _randn(c, seed=seed + 4, dtype=dtype)]
    return x, params, _randint(c, n, seed=seed + 5)


def _autograd_grads(x, params, y):
    leaves = [p.clone().requires_grad_() for p in params]
    W1, b1, W2, b2 = leaves
    loss = F.cross_entropy(torch.relu(x @ W1.T + b1) @ W2.T + b2, y)
    return dict(zip(PARAM_NAMES, torch.autograd.grad(loss, leaves)))


def _call_backward(ex, x, params, y):
    # copies: a test about values must not fail on a mutation (that has a test of its own)
    grads = ex.two_layer_backward(x.clone(), *[p.clone() for p in params], y.clone())
    assert isinstance(grads, dict), f"two_layer_backward must return a dict, got {type(grads).__name__}"
    missing = {"dW1", "db1", "dW2", "db2"} - set(grads)
    assert not missing, f"two_layer_backward's dict is missing the keys {sorted(missing)}"
    return grads


@pytest.mark.exercise("ex00.4")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_backward_shapes_and_reference(ex, dtype):
    x, params, y = _network(dtype=dtype)
    grads = _call_backward(ex, x, params, y)
    _, cache = ref.two_layer_forward(x, *params)
    expected = ref.two_layer_backward(cache, y)
    for name, p in zip(PARAM_NAMES, params):
        check_tensor(grads["d" + name], expected["d" + name],
                     f"d{name} (must have the shape {tuple(p.shape)} and dtype of {name})")


@pytest.mark.exercise("ex00.4")
@pytest.mark.parametrize("n", [1, 7, 32], ids=["batch1", "batch7", "batch32"])
def test_backward_matches_autograd(ex, n):
    x, params, y = _network(n=n, seed=n)
    grads = _call_backward(ex, x, params, y)
    for name, g in _autograd_grads(x, params, y).items():
        check_tensor(grads["d" + name], g, f"d{name} for a batch of {n}, compared with autograd")


@pytest.mark.exercise("ex00.4")
def test_backward_is_of_the_mean_loss(ex):
    x, params, y = _network(n=4, seed=10)
    grads = _call_backward(ex, x, params, y)
    twice = _call_backward(ex, torch.cat([x, x]), params, torch.cat([y, y]))
    for name in PARAM_NAMES:
        check_tensor(twice["d" + name], grads["d" + name],
                     f"d{name}: the loss is a MEAN, so repeating the batch must not change the gradient "
                     f"(did you forget to divide by N?)")


@pytest.mark.exercise("ex00.4")
def test_backward_dead_relu_units_get_no_gradient(ex):
    x, params, y = _network(n=6, h=5, seed=20)
    params[1] = params[1].clone()
    params[1][:2] = -1e3  # hidden units 0 and 1 are always off: z1 < 0 for every sample
    grads = _call_backward(ex, x, params, y)
    zeros = torch.zeros(2, dtype=torch.float64)
    check_tensor(grads["db1"][:2], zeros, "db1 of hidden units that are never active (relu'(z1) = 0)")
    check_tensor(grads["dW1"][:2], torch.zeros(2, 4, dtype=torch.float64), "dW1 rows of units never active")
    check_tensor(grads["dW2"][:, :2], torch.zeros(3, 2, dtype=torch.float64),
                 "dW2 columns of units never active (their h is 0)")
    for name, g in _autograd_grads(x, params, y).items():
        check_tensor(grads["d" + name], g, f"d{name} with dead units, compared with autograd")


@pytest.mark.exercise("ex00.4")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_backward_extreme_logits(ex, dtype):
    x, params, y = _network(n=5, seed=30, dtype=dtype)
    params[2] = params[2] * 1e3  # logits of order ±1e3–1e4: softmax must be computed stably
    grads = _call_backward(ex, x, params, y)
    for name, g in _autograd_grads(x, params, y).items():
        check_tensor(grads["d" + name], g,
                     f"d{name} with logits of order 1e3–1e4, {dtype}, compared with autograd")


@pytest.mark.exercise("ex00.4")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=["float32", "float64"])
def test_backward_rows_on_very_different_scales(ex, dtype):
    # A relu network is positively homogeneous: scaling a row of x scales that row's logits (up to the
    # biases). Rows 1e4 apart need each row's own max in the softmax, not the batch's.
    x, params, y = _network(n=4, seed=40, dtype=dtype)
    x = x * torch.tensor([[1e4], [1.0], [1e-2], [3e3]], dtype=dtype)
    grads = _call_backward(ex, x, params, y)
    for name, g in _autograd_grads(x, params, y).items():
        check_tensor(grads["d" + name], g, f"d{name} for rows of x scaled by 1e4, 1, 1e-2, 3e3 ({dtype}), "
                     "compared with autograd")


@pytest.mark.exercise("ex00.4")
def test_backward_leaves_inputs_and_their_flags_unchanged(ex):
    x, params, y = _network(n=5, seed=50)
    expected = _autograd_grads(x, params, y)
    for flags in (False, True):  # plain tensors, then parameters that require grad (as a model's do)
        ps = [p.clone().requires_grad_(flags) for p in params]
        grads = call_unchanged(ex.two_layer_backward, x.clone(), *ps, y.clone(),
                               what=f"two_layer_backward with parameters of requires_grad={flags} "
                               "(compute the gradients by hand; do not switch autograd on for the inputs)")
        for name, g in expected.items():
            check_tensor(grads["d" + name], g, f"d{name}, parameters with requires_grad={flags}")


# ---------------------------------------------------------------- ex00.5 SGD with momentum (§7)

def _call_step(ex, params, grads, velocities, lr, momentum, copy=True):
    if copy:  # a test about values must not fail on a mutation (that has a test of its own)
        params, grads, velocities = ([t.clone() for t in group] for group in (params, grads, velocities))
    out = ex.sgd_momentum_step(params, grads, velocities, lr, momentum)
    assert isinstance(out, tuple) and len(out) == 2, (
        "sgd_momentum_step must return a pair (new_params, new_velocities)")
    new_params, new_velocities = out
    assert len(new_params) == len(params) and len(new_velocities) == len(params), (
        f"expected {len(params)} new parameters and {len(params)} new velocities, "
        f"got {len(new_params)} and {len(new_velocities)}")
    return list(new_params), list(new_velocities)


def _params():
    return [_randn(3, 2, seed=1), _randn(2, seed=2)]


@pytest.mark.exercise("ex00.5")
def test_sgd_first_step_from_zero_velocity(ex):
    params = _params()
    grads = [_randn(*p.shape, seed=5 + i) for i, p in enumerate(params)]
    zeros = [torch.zeros_like(p) for p in params]
    new_p, new_v = _call_step(ex, params, grads, zeros, lr=0.1, momentum=0.9)
    exp_p, exp_v = ref.sgd_momentum_step(params, grads, zeros, lr=0.1, momentum=0.9)
    for i in range(len(params)):
        check_tensor(new_v[i], grads[i], f"velocity {i} after the first step (v = 0.9·0 + g = g)")
        check_tensor(new_v[i], exp_v[i], f"velocity {i} after the first step, compared with the reference")
        check_tensor(new_p[i], params[i] - 0.1 * grads[i], f"parameter {i} after the first step (p − lr·g)")
        check_tensor(new_p[i], exp_p[i], f"parameter {i} after the first step, compared with the reference")


@pytest.mark.exercise("ex00.5")
@pytest.mark.parametrize("momentum", [0.0, 0.9], ids=["plain_sgd", "momentum0.9"])
def test_sgd_matches_torch_optim_over_three_steps(ex, momentum):
    params = _params()
    velocities = [torch.zeros_like(p) for p in params]
    torch_params = [p.clone().requires_grad_() for p in params]
    opt = torch.optim.SGD(torch_params, lr=0.05, momentum=momentum)
    for step in range(3):
        grads = [_randn(*p.shape, seed=10 * step + i) for i, p in enumerate(params)]
        for tp, g in zip(torch_params, grads):
            tp.grad = g.clone()
        opt.step()
        params, velocities = _call_step(ex, params, grads, velocities, lr=0.05, momentum=momentum)
        for i, (p, tp) in enumerate(zip(params, torch_params)):
            check_tensor(p, tp.detach(),
                         f"parameter {i} after step {step + 1}, compared with torch.optim.SGD("
                         f"lr=0.05, momentum={momentum}) (v ← μ·v + g; p ← p − lr·v)")


@pytest.mark.exercise("ex00.5")
def test_sgd_velocity_is_a_geometric_sum_for_a_constant_gradient(ex):
    params, g, mu = [torch.zeros(3, dtype=torch.float64)], [torch.ones(3, dtype=torch.float64)], 0.5
    velocities = [torch.zeros(3, dtype=torch.float64)]
    for k in range(1, 5):
        params, velocities = _call_step(ex, params, g, velocities, lr=1.0, momentum=mu)
        expected = (1 - mu**k) / (1 - mu)  # 1 + μ + … + μ^(k−1)
        check_tensor(velocities[0], torch.full((3,), expected, dtype=torch.float64),
                     f"velocity after {k} steps of a constant gradient 1 with momentum {mu}")


@pytest.mark.exercise("ex00.5")
def test_sgd_does_not_modify_inputs(ex):
    params, grads, velocities = _params(), [_randn(3, 2, seed=7), _randn(2, seed=8)], \
        [_randn(3, 2, seed=9), _randn(2, seed=10)]
    for flags in (False, True):  # plain tensors, then parameters that require grad (as a model's do)
        ps = [p.clone().requires_grad_(flags) for p in params]
        new_p, new_v = call_unchanged(_call_step, ex, ps, grads, velocities, lr=0.1, momentum=0.9, copy=False,
                                      what=f"sgd_momentum_step with params of requires_grad={flags} "
                                      "(return new tensors; no -=, .add_(), p.data)")
        for i in range(2):
            check_tensor(new_v[i], 0.9 * velocities[i] + grads[i], f"velocity {i}: μ·v + g")
            check_tensor(new_p[i], params[i] - 0.1 * new_v[i], f"parameter {i}: p − lr·v_new")


@pytest.mark.exercise("ex00.5")
def test_sgd_0d_and_empty_parameters_in_float32(ex):
    # A scalar parameter (a temperature, a gain) is a 0-d tensor; an empty one has shape (0,).
    params = [torch.tensor(0.5), torch.zeros(0), torch.tensor([[1.0, -2.0], [3.0, 0.25]])]
    grads = [torch.tensor(2.0), torch.zeros(0), torch.tensor([[0.5, 0.5], [-1.0, 2.0]])]
    velocities = [torch.tensor(1.0), torch.zeros(0), torch.tensor([[0.0, 1.0], [1.0, 0.0]])]
    new_p, new_v = _call_step(ex, params, grads, velocities, lr=0.1, momentum=0.5)
    exp_p, exp_v = ref.sgd_momentum_step(params, grads, velocities, lr=0.1, momentum=0.5)
    for i, shape in enumerate(["0-d", "empty", "2×2"]):
        check_tensor(new_v[i], exp_v[i], f"velocity {i} ({shape}, float32): 0.5·v + g")
        check_tensor(new_p[i], exp_p[i], f"parameter {i} ({shape}, float32): p − 0.1·v_new")
