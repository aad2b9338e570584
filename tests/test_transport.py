"""clcourse.transport: Sinkhorn's plans (marginals, the limit ε → 0, the log domain, POT), the exact
plan, COIL's cost, the transported rows and the two transport losses."""
import warnings

import pytest
import torch

from clcourse.memory import prototypes
from clcourse.transport import (class_cost, exact_plan, prospective_loss, retrospective_loss,
                                sinkhorn, transport_rows, uniform_marginals)


@pytest.fixture
def gradual_underflow():
    """Subnormal floats kept (numpy's and torch's default; ``cl.run`` flushes them to zero, which
    moves where an overflowing iteration stops): the unbalanced iterations below depend on it."""
    torch.set_flush_denormal(False)
    yield
    torch.set_flush_denormal(False)


def problem(n, m, seed, dtype=torch.float64, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, generator=g, dtype=dtype) + 0.1
    b = torch.rand(m, generator=g, dtype=dtype) + 0.1
    return a / a.sum(), b / b.sum(), scale * torch.rand(n, m, generator=g, dtype=dtype)


@pytest.mark.parametrize("n,m", [(2, 2), (4, 2), (2, 8), (7, 5), (10, 10)])
@pytest.mark.parametrize("eps", [1.0, 0.1, 0.02])
def test_plan_has_the_given_marginals(n, m, eps):
    a, b, C = problem(n, m, seed=n * 100 + m)
    P = sinkhorn(a, b, C, eps, iters=5000)
    assert (P >= 0).all()
    torch.testing.assert_close(P.sum(1), a, atol=1e-8, rtol=0)
    torch.testing.assert_close(P.sum(0), b, atol=1e-8, rtol=0)


def test_batched_plans_equal_one_at_a_time():
    problems = [problem(4, 3, seed) for seed in range(5)]
    a, b, C = (torch.stack(p) for p in zip(*problems))
    batched = sinkhorn(a, b, C, 0.1)
    for i, (ai, bi, Ci) in enumerate(problems):
        torch.testing.assert_close(batched[i], sinkhorn(ai, bi, Ci, 0.1), atol=1e-9, rtol=0)


@pytest.mark.parametrize("n,m,seed", [(2, 2, 0), (3, 5, 1), (6, 4, 2), (8, 8, 3)])
def test_entropic_plan_approaches_the_exact_plan_as_eps_shrinks(n, m, seed):
    a, b, C = problem(n, m, seed)
    exact = exact_plan(a, b, C)
    torch.testing.assert_close(exact.sum(1), a, atol=1e-12, rtol=0)
    torch.testing.assert_close(exact.sum(0), b, atol=1e-12, rtol=0)
    gaps = [((sinkhorn(a, b, C, eps, iters=20000) - exact).abs().sum().item(),
             ((sinkhorn(a, b, C, eps, iters=20000) * C).sum() - (exact * C).sum()).item())
            for eps in (1.0, 0.1, 0.01, 0.001)]
    distances = [d for d, _ in gaps]
    assert distances == sorted(distances, reverse=True)   # closer at every step
    assert distances[-1] < 1e-3 < distances[0]
    assert all(extra >= -1e-6 for _, extra in gaps)       # no plan beats the LP's optimum
    assert gaps[-1][1] < 1e-4


def test_exact_plan_beats_every_vertex_it_could_pick():
    # A 2x2 problem has a one-parameter family of plans: the optimum is at an end of it.
    a, b = torch.tensor([0.3, 0.7]), torch.tensor([0.6, 0.4])
    C = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
    torch.testing.assert_close(exact_plan(a, b, C),
                               torch.tensor([[0.3, 0.0], [0.3, 0.4]], dtype=torch.float64))


def test_log_domain_is_finite_where_the_plain_iteration_overflows():
    a, b, C = problem(6, 4, seed=7, dtype=torch.float32)
    eps = 0.005  # exp(-C/eps) underflows in float32 for C > ~0.5: the plain scalings blow up
    with pytest.warns(RuntimeWarning, match="overflowed"):
        plain = sinkhorn(a, b, C, eps, log_domain=False)
    assert not torch.allclose(plain.sum(1), a, atol=1e-3)
    P = sinkhorn(a, b, C, eps)
    assert torch.isfinite(P).all()
    torch.testing.assert_close(P.sum(1), a, atol=1e-5, rtol=0)
    torch.testing.assert_close(P.sum(0), b, atol=1e-5, rtol=0)
    same_in_float64 = sinkhorn(a.double(), b.double(), C.double(), eps)
    torch.testing.assert_close(P.double(), same_in_float64, atol=1e-5, rtol=0)
    exact = exact_plan(a, b, C)
    assert ((P.double() - exact) * C).sum().abs() < 0.01  # near the LP's optimal cost


@pytest.mark.parametrize("n,m,eps", [(2, 2, 0.464), (8, 2, 0.464), (5, 7, 0.05), (10, 10, 1.0)])
def test_equal_to_pot(n, m, eps):
    ot = pytest.importorskip("ot", reason="POT is a test extra (pip install POT)")
    a, b, C = problem(n, m, seed=n + 10 * m)
    ours = sinkhorn(a, b, C, eps, iters=10000)
    theirs = ot.sinkhorn(a.numpy(), b.numpy(), C.numpy(), eps, numItermax=10000)
    torch.testing.assert_close(ours, torch.as_tensor(theirs), atol=1e-7, rtol=1e-6)
    emd = ot.emd(a.numpy(), b.numpy(), C.numpy())
    torch.testing.assert_close(exact_plan(a, b, C), torch.as_tensor(emd), atol=1e-10, rtol=0)


def test_unequal_masses_are_refused_and_collapse_where_allowed(gradual_underflow):
    n, m = 6, 2
    C = torch.rand(n, m, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    a, b = torch.full((n,), 1 / n, dtype=torch.float64), torch.full((m,), 1 / n, dtype=torch.float64)
    with pytest.raises(ValueError, match="different total mass"):
        sinkhorn(a, b, C, 0.464)
    # COIL's released retrospective call: the scalings overflow, the plan that comes back is zero.
    with pytest.warns(RuntimeWarning, match="overflowed"):
        P = sinkhorn(b.new_full((m,), 1 / n), a.new_full((n,), 1 / n), C.T, 0.464,
                     log_domain=False, balanced=False)
    assert P.abs().max() == 0
    # and the prospective call (mass ratio 2 on a 4 x 2 problem) still gives a plan: rows 1/4 each
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        P = sinkhorn(a[:4] * 6 / 4, b * 6 / 4, C[:4], 0.464, log_domain=False, balanced=False)
    torch.testing.assert_close(P.sum(1), a[:4] * 6 / 4)


@pytest.mark.parametrize("n_old,n_new", [(2, 2), (4, 2), (6, 2), (8, 2), (20, 10), (30, 10)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_coils_unbalanced_calls_equal_pots(n_old, n_new, dtype, gradual_underflow):
    ot = pytest.importorskip("ot", reason="POT is a test extra (pip install POT)")
    C = torch.rand(n_new, n_old, generator=torch.Generator().manual_seed(n_old), dtype=dtype)
    a, b = torch.full((n_new,), 1 / n_old, dtype=dtype), torch.full((n_old,), 1 / n_old, dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = sinkhorn(a, b, C, 0.464, log_domain=False, balanced=False, tol=0.0)
        theirs = ot.sinkhorn(a, b, C, 0.464, stopThr=0.0)
    torch.testing.assert_close(ours, theirs, atol=1e-6 if dtype == torch.float32 else 1e-12, rtol=0)
    if dtype == torch.float64:  # the retrospective collapse (float32 overflows sooner)
        assert (ours.abs().max() == 0) == (n_old / n_new >= 3)


@pytest.mark.parametrize("bad", [
    lambda a, b, C: sinkhorn(a, b[:-1], C, 0.1),
    lambda a, b, C: sinkhorn(a, b, C, 0.0),
    lambda a, b, C: sinkhorn(-a, b, C, 0.1),
    lambda a, b, C: sinkhorn(a, b, C.masked_fill(C > 0.5, float("nan")), 0.1),
    lambda a, b, C: exact_plan(a, b * 2, C),
])
def test_bad_input_is_a_clear_error(bad):
    with pytest.raises(ValueError):
        bad(*problem(4, 3, seed=1))


def test_class_cost_is_minkowski_between_unit_means():
    g = torch.Generator().manual_seed(0)
    feats, labels = torch.randn(60, 5, generator=g), torch.randint(0, 5, (60,), generator=g)
    mu = prototypes(feats, labels, 5)
    Q = class_cost(3 * mu[:3], mu[3:], p=3.0)       # the scale of a mean does not matter
    expect = ((mu[:3, None] - mu[None, 3:]).abs() ** 3).sum(-1) ** (1 / 3)
    torch.testing.assert_close(Q, expect)
    assert Q.shape == (3, 2) and (Q >= 0).all() and (Q <= 2).all()


def test_transported_rows_have_the_old_rows_mean_norm():
    g = torch.Generator().manual_seed(0)
    old = torch.randn(6, 8, generator=g) * torch.arange(1, 7)[:, None]
    a, b = uniform_marginals(6, 2, old)
    plan = sinkhorn(a, b, torch.rand(6, 2, generator=g), 0.464)
    rows = transport_rows(plan, old)
    assert rows.shape == (2, 8)
    torch.testing.assert_close(rows.norm(dim=1).mean(), old.norm(dim=1).mean())
    # each row is the plan's column-weighted mix of the old directions
    mix = plan.T @ (old / old.norm(dim=1, keepdim=True))
    torch.testing.assert_close(rows / rows.norm(dim=1, keepdim=True),
                               mix / mix.norm(dim=1, keepdim=True))


def test_retrospective_loss_trains_the_features_not_the_rows():
    g = torch.Generator().manual_seed(0)
    f = torch.randn(16, 8, generator=g).requires_grad_()
    rows = torch.randn(4, 8, generator=g).requires_grad_()
    old = torch.randn(16, 4, generator=g) * 1e3   # extreme teacher logits: still finite
    loss = retrospective_loss(f, rows, old, T=2.0)
    loss.backward()
    assert torch.isfinite(loss) and f.grad.abs().sum() > 0 and rows.grad is None
    cos = (f / f.norm(dim=1, keepdim=True)) @ (rows / rows.norm(dim=1, keepdim=True)).T
    expect = -(torch.softmax(old / 2, 1) * torch.log_softmax(cos / 2, 1)).sum(1).mean()
    torch.testing.assert_close(loss, expect)


def test_prospective_loss_is_the_soft_cross_entropy_of_the_transported_logits():
    g = torch.Generator().manual_seed(1)
    f, rows, z = torch.randn(8, 6, generator=g), torch.randn(2, 6, generator=g), torch.randn(8, 2, generator=g)
    cos = torch.nn.functional.normalize(f, dim=1) @ torch.nn.functional.normalize(rows, dim=1).T
    expect = -(torch.softmax(cos / 2, 1) * torch.log_softmax(z / 2, 1)).sum(1).mean()
    torch.testing.assert_close(prospective_loss(f, rows, z), expect)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert prospective_loss(f, rows, z * 1e4).isfinite()
