"""The Fisher kinds of ``clcourse.fisher``, each checked against an obviously right slow reference
written here: the closed form of softmax regression, a literal per-example backward loop, a network
with only the active units, and the Hessian identity F = −E[∇² log p].

Everything runs in float64 on tiny networks and data the tests make, so differences are algorithmic.
"""
import copy

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call

from clcourse.data.scenarios import TensorSet, masked_logits
from clcourse import fisher
from clcourse.fisher import KINDS, diagonal_fisher, full_fisher, softmax_regression_fisher
from clcourse.models import MLP, Classifier, GrowingHead, MultiHead, SingleHead


@pytest.fixture(autouse=True)
def float64():
    """Every test runs in float64 (the default dtype restored after)."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


def mlp(width_in=6, units=4, seed=0):
    """The 3-layer toy: Linear-ReLU-Linear-ReLU-head, with a growing head as in class-IL."""
    torch.manual_seed(seed)
    model = Classifier(MLP(width_in, (8, 7)), GrowingHead(7))
    model.ensure_outputs(units)
    return model.double()


class BNConvNet(nn.Module):
    """Conv + BatchNorm + ReLU + Linear: the per-layer closed forms of conv and BatchNorm."""

    def __init__(self, units=4):
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 3, 3, stride=2, padding=1), nn.BatchNorm2d(3)
        self.fc = nn.Linear(3 * 3 * 3, units)

    def forward(self, x):
        return self.fc(F.relu(self.bn(self.conv(x))).flatten(1))


def bn_net(seed=0):
    torch.manual_seed(seed)
    net = BNConvNet().double()
    with torch.no_grad():  # running statistics that are not the identity
        net.bn.running_mean.uniform_(-0.5, 0.5)
        net.bn.running_var.uniform_(0.5, 2.0)
    return net


def layernorm_net(seed=0):
    """LayerNorm has no per-layer rule in clcourse.fisher: the torch.func (vmap of grad) path runs."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8), nn.Tanh(), nn.Linear(8, 4)).double()


def two_task_data(x, seed=0):
    """Labels and task ids for a mask table with two tasks: task 0 uses units 0-3, task 1 units 2-3."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randint(0, 2, (len(x),), generator=g)
    y = torch.where(t == 0, torch.randint(0, 4, (len(x),), generator=g),
                    torch.randint(2, 4, (len(x),), generator=g))
    table = torch.tensor([[True, True, True, True], [False, False, True, True]])
    return TensorSet(x, y, t), table


def loop_fisher(model, data, table, kind, batch_size=5, seed=0):
    """The slow reference: batch of 1, one backward per example (per class for "exact")."""
    model.eval()
    params = dict(model.named_parameters())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}

    def log_probs(i):
        return torch.log_softmax(masked_logits(model(data.x[i:i + 1]), table[data.t[i]]), 1)[0]

    def grad_of(value):
        model.zero_grad()
        value.backward()
        return {n: p.grad.clone() for n, p in params.items()}

    if kind == "batched":  # mean of the per-example gradients of a batch, squared, over batches
        starts = range(0, len(data), batch_size)
        for s in starts:
            idx = range(s, min(s + batch_size, len(data)))
            g = [grad_of(log_probs(i)[data.y[i]]) for i in idx]
            for n in fisher:
                fisher[n] += (sum(gi[n] for gi in g) / len(idx)) ** 2
        return {n: f / len(starts) for n, f in fisher.items()}
    with torch.no_grad():
        p_all = torch.stack([log_probs(i).exp() for i in range(len(data))])
    sampled = torch.multinomial(p_all, 1, generator=torch.Generator().manual_seed(seed))[:, 0]
    for i in range(len(data)):
        if kind == "exact":
            pairs = [(c, p_all[i, c]) for c in table[data.t[i]].nonzero().flatten().tolist()]
        else:
            label = {"sample": sampled[i], "empirical": data.y[i], "pred": p_all[i].argmax()}[kind]
            pairs = [(int(label), 1.0)]
        for c, w in pairs:
            g = grad_of(log_probs(i)[c])
            for n in fisher:
                fisher[n] += w * g[n] ** 2
    return {n: f / len(data) for n, f in fisher.items()}


def assert_same(a, b, rtol=1e-9):  # float64: far tighter than the 1e-5 a float32 run would allow
    assert a.keys() == b.keys()
    for n in a:
        assert a[n].shape == b[n].shape, n
        torch.testing.assert_close(a[n], b[n], rtol=rtol, atol=1e-12, msg=lambda m: f"{n}: {m}")


def flat(fisher):
    return torch.cat([v.flatten() for v in fisher.values()])


# --- the closed form and the Hessian identity ------------------------------------------------------
@pytest.mark.parametrize("masked", [False, True])
def test_exact_fisher_of_softmax_regression_matches_the_closed_form(masked):
    torch.manual_seed(0)
    model = nn.Linear(5, 4).double()
    x = torch.randn(30, 5) * 2
    mask = torch.tensor([True, False, True, True]) if masked else None
    data = TensorSet(x, torch.zeros(30, dtype=torch.long), torch.zeros(30, dtype=torch.long))
    closed = softmax_regression_fisher(model.weight, x, model.bias, mask=mask).detach()
    torch.testing.assert_close(full_fisher(model, data, mask), closed, rtol=1e-10, atol=1e-14)
    torch.testing.assert_close(flat(diagonal_fisher(model, data, mask)), closed.diagonal(),
                               rtol=1e-10, atol=1e-14)
    if masked:  # an inactive unit has no Fisher: its weights cannot change p
        assert diagonal_fisher(model, data, mask)["weight"][1].abs().max() == 0


@pytest.mark.parametrize("net", ["softmax-regression", "mlp"])
def test_exact_fisher_is_minus_the_expected_hessian(net):
    # F = −E_x E_{c~p}[∇² log p(c|x)]: exact for any network when c is drawn from the model, since
    # Σ_c p_c ∇_z log p_c = 0 kills the second-derivative-of-the-network term.
    torch.manual_seed(1)
    model = nn.Linear(3, 3).double() if net == "softmax-regression" else mlp(3, 3)
    x = torch.randn(12, 3)
    data = TensorSet(x, torch.zeros(12, dtype=torch.long), torch.zeros(12, dtype=torch.long))
    names = [n for n, _ in model.named_parameters()]
    shapes = [p.shape for _, p in model.named_parameters()]
    theta = torch.cat([p.detach().flatten() for p in model.parameters()])
    p_model = torch.softmax(model(x), 1).detach()  # the expectation's distribution is held fixed

    def expected_log_lik(vec):
        params, i = {}, 0
        for n, s in zip(names, shapes):
            params[n] = vec[i:i + s.numel()].reshape(s)
            i += s.numel()
        return (p_model * torch.log_softmax(functional_call(model, params, (x,)), 1)).sum(1).mean()

    hessian = torch.autograd.functional.hessian(expected_log_lik, theta)
    torch.testing.assert_close(full_fisher(model, data), -hessian, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_full_fisher_diagonal_is_the_diagonal_fisher(kind):
    model = bn_net()  # full_fisher: torch.func; diagonal_fisher: the per-layer closed forms
    data, table = two_task_data(torch.randn(16, 1, 6, 6))
    kw = dict(batch_size=4)
    full = full_fisher(model, data, table, kind, generator=torch.Generator().manual_seed(3), **kw)
    diag = diagonal_fisher(model, data, table, kind, generator=torch.Generator().manual_seed(3), **kw)
    torch.testing.assert_close(full.diagonal(), flat(diag), rtol=1e-10, atol=1e-14)
    assert torch.linalg.eigvalsh(full).min() > -1e-12  # a Fisher is positive semi-definite


# --- vectorised == per-example loop ----------------------------------------------------------------
@pytest.mark.parametrize("net", ["mlp", "batchnorm-cnn", "layernorm"])
@pytest.mark.parametrize("kind", KINDS)
def test_vectorised_diagonal_equals_a_per_example_loop(net, kind):
    model = {"mlp": mlp, "batchnorm-cnn": bn_net, "layernorm": layernorm_net}[net]()
    x = torch.randn(23, 1, 6, 6) if net == "batchnorm-cnn" else torch.randn(23, 6)
    data, table = two_task_data(x)
    fast = diagonal_fisher(model, data, table, kind, batch_size=5, chunk_size=7,  # chunks of 7
                           generator=torch.Generator().manual_seed(0))
    assert_same(fast, loop_fisher(model, data, table, kind, batch_size=5, seed=0))
    assert all(v.dtype == torch.float64 and not v.requires_grad for v in fast.values())


def test_n_samples_takes_the_first_or_a_seeded_random_subset():
    model = mlp()
    data, table = two_task_data(torch.randn(40, 6))
    first = diagonal_fisher(model, data, table, n_samples=10)
    assert_same(first, diagonal_fisher(model, TensorSet(data.x[:10], data.y[:10], data.t[:10]), table))
    idx = torch.randperm(40, generator=torch.Generator().manual_seed(5))[:10]
    rand = diagonal_fisher(model, data, table, n_samples=10, generator=torch.Generator().manual_seed(5))
    assert_same(rand, diagonal_fisher(model, TensorSet(data.x[idx], data.y[idx], data.t[idx]), table))


# --- masks -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["exact", "empirical", "pred", "batched"])
def test_a_mask_equals_a_network_with_only_the_active_units(kind):
    torch.manual_seed(2)
    full = Classifier(MLP(6, (8,)), SingleHead(8, 4)).double()
    small = copy.deepcopy(full)
    small.head = nn.Linear(8, 2).double()
    with torch.no_grad():
        small.head.weight.copy_(full.head.weight[[1, 3]])
        small.head.bias.copy_(full.head.bias[[1, 3]])
    x, y = torch.randn(20, 6), torch.randint(0, 2, (20,))
    t = torch.zeros(20, dtype=torch.long)
    mask = torch.tensor([False, True, False, True])
    f_full = diagonal_fisher(full, TensorSet(x, 2 * y + 1, t), mask, kind, batch_size=8)
    f_small = diagonal_fisher(small, TensorSet(x, y, t), None, kind, batch_size=8)
    for n in ["backbone.net.1.weight", "backbone.net.1.bias"]:
        torch.testing.assert_close(f_full[n], f_small[n], rtol=1e-10, atol=1e-14)
    for n in ["weight", "bias"]:
        torch.testing.assert_close(f_full[f"head.{n}"][[1, 3]], f_small[f"head.{n}"],
                                   rtol=1e-10, atol=1e-14)
        assert f_full[f"head.{n}"][[0, 2]].abs().max() == 0


def test_a_mask_table_row_per_task_equals_one_mask_per_task():
    model = mlp()
    data, table = two_task_data(torch.randn(30, 6))
    both = diagonal_fisher(model, data, table)
    parts = []
    for task in (0, 1):
        keep = data.t == task
        sub = TensorSet(data.x[keep], data.y[keep], data.t[keep])
        parts.append((diagonal_fisher(model, sub, table[task]), int(keep.sum())))
    for n in both:
        mix = sum(f[n] * k for f, k in parts) / len(data)
        torch.testing.assert_close(both[n], mix, rtol=1e-10, atol=1e-14)


def test_task_il_heads_of_other_tasks_get_no_fisher():
    torch.manual_seed(0)
    model = Classifier(MLP(6, (8,)), MultiHead(8, [2, 2])).double()
    table = torch.tensor([[True, True, False, False], [False, False, True, True]])  # task-IL rows
    data = TensorSet(torch.randn(10, 6), torch.full((10,), 3), torch.ones(10, dtype=torch.long))
    f = diagonal_fisher(model, data, table)
    assert f["head.heads.0.weight"].abs().max() == 0 and f["head.heads.1.weight"].abs().max() > 0


def test_sample_never_draws_an_inactive_unit():
    model = mlp()
    x = torch.randn(200, 6)
    data = TensorSet(x, torch.full((200,), 2), torch.ones(200, dtype=torch.long))
    _, table = two_task_data(x)  # task 1: units 2 and 3 only
    f = diagonal_fisher(model, data, table, "sample", generator=torch.Generator().manual_seed(0))
    assert f["head.weight"][:2].abs().max() == 0 and (f["head.weight"][2:].sum(1) > 0).all()


# --- the kinds differ as theory says ---------------------------------------------------------------
def teacher_data(n=4096, d=5, k=3, seed=0):
    """Inputs and labels DRAWN from a softmax-regression teacher: a well-specified model."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(k, d, generator=g)
    x = torch.randn(n, d, generator=g)
    y = torch.multinomial(torch.softmax(x @ W.T, 1), 1, generator=g)[:, 0]
    return TensorSet(x, y, torch.zeros(n, dtype=torch.long))


def fit(model, data, steps=60):
    """Full-batch L-BFGS to the maximum-likelihood point (the mean gradient is then ~0)."""
    opt = torch.optim.LBFGS(model.parameters(), max_iter=steps, tolerance_grad=1e-12,
                            tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(model(data.x), data.y)
        loss.backward()
        return loss
    opt.step(closure)
    return model


def test_empirical_is_not_the_fisher_on_a_confident_wrong_model():
    # Kunstner et al. 2019: the empirical Fisher uses the labels, the Fisher the model's own
    # predictions. A confident model whose predictions ignore the labels (random weights x 20):
    # exact ~ p(1 − p) is small, empirical ~ (1 − p_y)² is large. Measured empirical/exact (sums over
    # entries) 13-25 for seeds 0-3; asserted > 5.
    torch.manual_seed(0)
    model = nn.Linear(5, 3).double()
    with torch.no_grad():
        model.weight.mul_(20)
    data = teacher_data(512)
    exact = flat(diagonal_fisher(model, data)).sum()
    emp = flat(diagonal_fisher(model, data, kind="empirical")).sum()
    batched = flat(diagonal_fisher(model, data, kind="batched", batch_size=32)).sum()
    assert emp > 5 * exact
    # Far from a minimum the mean gradient μ is not small: E[ḡ²] = μ² + σ²/B, and batched is NOT
    # empirical/B. Measured 32·batched/empirical = 3.3-4.1 (seeds 0-3); asserted > 2.
    assert 32 * batched > 2 * emp


def test_at_a_well_specified_fit_empirical_and_sample_approach_exact_and_batched_is_b_times_smaller():
    data = teacher_data()
    torch.manual_seed(0)
    model = fit(nn.Linear(5, 3).double(), data)
    exact = flat(diagonal_fisher(model, data)).sum()
    emp = flat(diagonal_fisher(model, data, kind="empirical")).sum()
    # labels drawn from the model itself: the Monte-Carlo estimate of the exact Fisher
    sample = flat(diagonal_fisher(model, data, kind="sample",
                                  generator=torch.Generator().manual_seed(0)))
    # Near the optimum the mean gradient is ~0 and a mean of B gradients has variance σ²/B, so the
    # batched kind is the empirical one divided by B: a λ tuned for one kind means another for it.
    # Measured B·batched/empirical = 0.83-1.05 (B = 32 and 128, teacher seeds 0-3; the
    # finite-sample factor (N − B)/(N − 1) is 0.97-0.99); asserted within [0.5, 2].
    for B in (32, 128):
        batched = flat(diagonal_fisher(model, data, kind="batched", batch_size=B)).sum()
        assert 0.5 < B * batched / emp < 2.0, B
        assert 0.5 < B * batched / exact < 2.0, B
    assert abs(emp / exact - 1) < 0.1             # measured 0.98-1.015: the model is the data's own
    assert abs(sample.sum() / exact - 1) < 0.1    # measured 0.986-1.04 (one label per example)


# --- modes -----------------------------------------------------------------------------------------
def test_eval_mode_is_used_and_each_modules_mode_is_restored():
    model = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.ReLU(),
                          nn.Linear(8, 4)).double()
    with torch.no_grad():
        model[1].running_mean.uniform_(-1, 1)
    model.train()
    model[1].eval()  # a part kept frozen in eval mode must stay in eval
    before = {n: b.clone() for n, b in model.named_buffers()}
    modes = [m.training for m in model.modules()]
    data, _ = two_task_data(torch.randn(20, 6))
    f = {k: diagonal_fisher(model, data, kind=k, batch_size=5) for k in ("exact", "batched")}
    assert [m.training for m in model.modules()] == modes
    for n, b in model.named_buffers():
        assert torch.equal(b, before[n]), n  # running statistics untouched
    assert all(p.grad is None for p in model.parameters())  # .grad untouched
    model.eval()  # in eval mode dropout is off and BN uses its running stats: the same numbers
    for k in f:
        assert_same(f[k], diagonal_fisher(model, data, kind=k, batch_size=5), rtol=1e-12)


def test_an_unknown_kind_names_the_valid_ones():
    data, _ = two_task_data(torch.randn(4, 6))
    with pytest.raises(ValueError, match="valid kinds: exact, sample"):
        diagonal_fisher(mlp(), data, kind="true")


def test_fisher_from_grads_is_the_mean_of_squared_per_example_gradients():
    g = {"w": torch.tensor([[1.0, -2.0], [3.0, 0.0]], dtype=torch.float64, requires_grad=True),
         "b": torch.tensor([2.0, -2.0], dtype=torch.float64)}
    out = fisher.fisher_from_grads(g)
    torch.testing.assert_close(out["w"], torch.tensor([5.0, 2.0], dtype=torch.float64))
    torch.testing.assert_close(out["b"], torch.tensor(4.0, dtype=torch.float64))
    assert not out["w"].requires_grad and g["w"].requires_grad

