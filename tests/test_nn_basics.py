"""Unit tests of clcourse.nn_basics against PyTorch's own implementations (the oracles)."""
import pytest
import torch
import torch.nn.functional as F

from clcourse import nn_basics as nb


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64):
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


# ---------------------------------------------------------------- softmax / log-softmax

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(5, 7), (2, 3, 4), (1, 3)])
def test_softmax_matches_torch(shape, dtype):
    z = 3 * _randn(*shape, dtype=dtype)
    p = nb.stable_softmax(z)
    assert p.dtype == dtype and p.shape == z.shape
    torch.testing.assert_close(p, torch.softmax(z, dim=-1))
    torch.testing.assert_close(nb.log_softmax(z), torch.log_softmax(z, dim=-1))


def test_softmax_dim_and_temperature():
    z = _randn(4, 6)
    torch.testing.assert_close(nb.stable_softmax(z, dim=0), torch.softmax(z, dim=0))
    for T in (0.1, 0.5, 2.0, 10.0):
        torch.testing.assert_close(nb.stable_softmax(z, T=T), torch.softmax(z / T, dim=-1))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_softmax_extreme_logits_finite_and_exact(dtype):
    z = torch.tensor([[1e4, 0.0, -1e4], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4]], dtype=dtype)
    p = nb.stable_softmax(z)
    assert torch.isfinite(p).all()
    torch.testing.assert_close(p, torch.softmax(z, dim=-1))
    torch.testing.assert_close(p[0], torch.tensor([1.0, 0.0, 0.0], dtype=dtype))
    torch.testing.assert_close(p[1], torch.full((3,), 1 / 3, dtype=dtype))
    lp = nb.log_softmax(z)
    assert torch.isfinite(lp).all()
    torch.testing.assert_close(lp, torch.log_softmax(z, dim=-1))


def test_softmax_empty_batch():
    assert nb.stable_softmax(torch.zeros(0, 5)).shape == (0, 5)


def test_softmax_gradcheck():
    z = _randn(3, 4).requires_grad_()
    assert torch.autograd.gradcheck(lambda t: nb.stable_softmax(t, T=1.7), (z,))
    assert torch.autograd.gradcheck(nb.log_softmax, (z,))


# ---------------------------------------------------------------- losses

@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cross_entropy_matches_torch(dtype):
    logits = 2 * _randn(8, 5, dtype=dtype)
    y = torch.randint(0, 5, (8,), generator=_gen(1))
    loss = nb.cross_entropy_from_logits(logits, y)
    assert loss.shape == () and loss.dtype == dtype
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))


def test_cross_entropy_extreme_logits():
    logits = torch.tensor([[1e4, -1e4, 0.0], [1e4, -1e4, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    loss = nb.cross_entropy_from_logits(logits, y)
    assert torch.isfinite(loss)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))
    torch.testing.assert_close(loss, torch.tensor(1e4, dtype=torch.float64))  # (0 + 2e4) / 2


def test_cross_entropy_gradient_matches_torch():
    logits = _randn(6, 4).requires_grad_()
    y = torch.randint(0, 4, (6,), generator=_gen(2))
    (g,) = torch.autograd.grad(nb.cross_entropy_from_logits(logits, y), logits)
    (g_ref,) = torch.autograd.grad(F.cross_entropy(logits, y), logits)
    torch.testing.assert_close(g, g_ref)
    assert torch.autograd.gradcheck(lambda t: nb.cross_entropy_from_logits(t, y), (logits,))


def test_mse_matches_torch():
    a, b = _randn(4, 3, seed=1), _randn(4, 3, seed=2)
    torch.testing.assert_close(nb.mse(a, b), F.mse_loss(a, b))


# ---------------------------------------------------------------- activations

ACTS = [
    (nb.relu, nb.relu_grad, torch.relu),
    (nb.sigmoid, nb.sigmoid_grad, torch.sigmoid),
    (nb.tanh, nb.tanh_grad, torch.tanh),
]


@pytest.mark.parametrize("f, df, oracle", ACTS, ids=["relu", "sigmoid", "tanh"])
def test_activation_and_derivative_match_autograd(f, df, oracle):
    z = (3 * _randn(50)).requires_grad_()
    torch.testing.assert_close(f(z), oracle(z))
    (g,) = torch.autograd.grad(oracle(z).sum(), z)
    torch.testing.assert_close(df(z.detach()), g)


@pytest.mark.parametrize("f, df, oracle", ACTS, ids=["relu", "sigmoid", "tanh"])
def test_activation_extremes_finite(f, df, oracle):
    z = torch.tensor([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=torch.float64)
    assert torch.isfinite(f(z)).all() and torch.isfinite(df(z)).all()
    torch.testing.assert_close(f(z), oracle(z))


def test_activation_values_at_zero():
    z = torch.zeros(1, dtype=torch.float64)
    assert nb.relu_grad(z).item() == 0.0  # the convention at the kink
    assert nb.sigmoid(z).item() == 0.5 and nb.sigmoid_grad(z).item() == 0.25
    assert nb.tanh(z).item() == 0.0 and nb.tanh_grad(z).item() == 1.0


# ---------------------------------------------------------------- two-layer network

def _two_layer(n=5, d=4, h=6, c=3, seed=0):
    x = _randn(n, d, seed=seed)
    W1, b1 = _randn(h, d, seed=seed + 1), _randn(h, seed=seed + 2)
    W2, b2 = _randn(c, h, seed=seed + 3), _randn(c, seed=seed + 4)
    y = torch.randint(0, c, (n,), generator=_gen(seed + 5))
    return x, W1, b1, W2, b2, y


def test_two_layer_forward_matches_nn_modules():
    x, W1, b1, W2, b2, _ = _two_layer()
    lin1, lin2 = torch.nn.Linear(4, 6).double(), torch.nn.Linear(6, 3).double()
    with torch.no_grad():
        lin1.weight.copy_(W1); lin1.bias.copy_(b1); lin2.weight.copy_(W2); lin2.bias.copy_(b2)
        expected = lin2(torch.relu(lin1(x)))
    logits, cache = nb.two_layer_forward(x, W1, b1, W2, b2)
    torch.testing.assert_close(logits, expected)
    assert set(cache) >= {"x", "z1", "h", "W2"}


@pytest.mark.parametrize("n", [1, 5, 32])
def test_two_layer_backward_matches_autograd(n):
    x, W1, b1, W2, b2, y = _two_layer(n=n, seed=n)
    params = [t.clone().requires_grad_() for t in (W1, b1, W2, b2)]
    loss = F.cross_entropy(torch.relu(x @ params[0].T + params[1]) @ params[2].T + params[3], y)
    auto = torch.autograd.grad(loss, params)
    _, cache = nb.two_layer_forward(x, W1, b1, W2, b2)
    grads = nb.two_layer_backward(cache, y)
    for name, g in zip(["dW1", "db1", "dW2", "db2"], auto):
        torch.testing.assert_close(grads[name], g, msg=lambda m, name=name: f"{name}: {m}")


# ---------------------------------------------------------------- optimizer

@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_momentum_matches_torch_optim(momentum):
    params = [_randn(3, 2, seed=1), _randn(2, seed=2)]
    torch_params = [p.clone().requires_grad_() for p in params]
    opt = torch.optim.SGD(torch_params, lr=0.1, momentum=momentum)
    velocities = None
    for step in range(4):
        grads = [_randn(*p.shape, seed=10 * step + i) for i, p in enumerate(params)]
        for tp, g in zip(torch_params, grads):
            tp.grad = g.clone()
        opt.step()
        params, velocities = nb.sgd_momentum_step(params, grads, velocities, lr=0.1, momentum=momentum)
        for p, tp in zip(params, torch_params):
            torch.testing.assert_close(p, tp.detach())


def test_sgd_momentum_does_not_modify_inputs():
    p, g, v = [_randn(4, seed=1)], [_randn(4, seed=2)], [_randn(4, seed=3)]
    copies = [t[0].clone() for t in (p, g, v)]
    new_p, new_v = nb.sgd_momentum_step(p, g, v, lr=0.5, momentum=0.9)
    for t, c in zip((p, g, v), copies):
        assert torch.equal(t[0], c)
    torch.testing.assert_close(new_v[0], 0.9 * v[0] + g[0])
    torch.testing.assert_close(new_p[0], p[0] - 0.5 * new_v[0])


def test_activation_and_derivative_and_two_layer_gradients_wrap_the_pieces():
    z = _randn(7, seed=3)
    for name, f in (("relu", torch.relu), ("sigmoid", torch.sigmoid), ("tanh", torch.tanh)):
        value, derivative = nb.activation_and_derivative(name, z)
        zg = z.clone().requires_grad_()
        (auto,) = torch.autograd.grad(f(zg).sum(), zg)
        torch.testing.assert_close(value, f(z))
        torch.testing.assert_close(derivative, auto)
    with pytest.raises(ValueError):
        nb.activation_and_derivative("softplus", z)
    x, y = _randn(5, 4, seed=4), torch.tensor([0, 2, 1, 2, 0])
    params = [_randn(6, 4, seed=5), _randn(6, seed=6), _randn(3, 6, seed=7), _randn(3, seed=8)]
    leaves = [p.clone().requires_grad_() for p in params]
    loss = F.cross_entropy(torch.relu(x @ leaves[0].T + leaves[1]) @ leaves[2].T + leaves[3], y)
    auto = torch.autograd.grad(loss, leaves)
    grads = nb.two_layer_gradients(x, *params, y)
    for name, g in zip(["dW1", "db1", "dW2", "db2"], auto):
        torch.testing.assert_close(grads[name], g)
