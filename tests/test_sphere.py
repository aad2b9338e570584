"""Riemannian SGD on a sphere (``clcourse.sphere``; Bonnabel 2013, PFCL ``rsgd.py``): the tangent
projection, the retraction, the transport of the momentum, one sphere for all the parameters of a
group, a step against a hand computation, and the norm after many steps."""
import pytest
import torch

from clcourse.sphere import RiemannianSGD, random_direction, retract, rsgd_step, tangent, transport

SHAPES = [(3, 4), (5,), (2, 2, 2)]


def quadratic(params, seed=0):
    """A loss with a non-zero gradient everywhere near the sphere: ½‖A·θ − b‖², θ all params."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.cat([p.reshape(-1) for p in params])
    a = torch.randn(7, len(theta), generator=g, dtype=theta.dtype)
    b = torch.randn(7, generator=g, dtype=theta.dtype) * 10
    return 0.5 * (a @ theta - b).pow(2).sum()


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def test_tangent_removes_the_component_along_nu_and_leaves_its_inputs():
    g_ = torch.Generator().manual_seed(1)
    nu, g = torch.randn(4, 3, generator=g_, dtype=torch.float64), torch.randn(4, 3, generator=g_,
                                                                              dtype=torch.float64)
    nu0, g0 = nu.clone(), g.clone()
    v = tangent(nu, g)
    assert abs((v * nu).sum()) < 1e-12 * g.norm() * nu.norm()
    torch.testing.assert_close(v, g - (g * nu).sum() / (nu * nu).sum() * nu)
    torch.testing.assert_close(tangent(nu, v), v)                       # idempotent
    assert tangent(nu, 3 * nu).abs().max() < 1e-12                       # along ν: nothing left
    assert torch.equal(nu, nu0) and torch.equal(g, g0) and v.data_ptr() != g.data_ptr()
    assert torch.equal(tangent(torch.zeros(4, 3, dtype=torch.float64), g), g)  # no direction
    torch.testing.assert_close(transport(nu, g), v)
    with pytest.raises(ValueError):
        tangent(nu, g.reshape(-1))


def test_retract_and_random_direction_land_on_the_sphere():
    v = torch.tensor([3.0, 4.0])
    torch.testing.assert_close(retract(v, 10.0), torch.tensor([6.0, 8.0]))
    with pytest.raises(ValueError):
        retract(torch.zeros(3), 1.0)
    d = random_direction(SHAPES, 80.0, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert [tuple(t.shape) for t in d] == SHAPES
    assert flat(d).norm().item() == pytest.approx(80.0, rel=1e-12)
    same = random_direction(SHAPES, 80.0, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert all(torch.equal(a, b) for a, b in zip(d, same))
    # uniform on the sphere: no preferred direction (mean ≈ 0, each coordinate's E[x²] = r²/D)
    draws = torch.stack([flat(random_direction([(3,)], 1.0, torch.Generator().manual_seed(s)))
                         for s in range(3000)])
    assert draws.mean(0).abs().max() < 0.05
    torch.testing.assert_close(draws.pow(2).mean(0), torch.full((3,), 1 / 3), atol=0.03, rtol=0)


@pytest.mark.parametrize("momentum, lr", [(0.0, 0.1), (0.7, 0.01), (0.7, 5.0), (0.9, 50.0)])
def test_the_norm_stays_r_after_any_number_of_steps(momentum, lr):
    r = 7.0
    params = [t.requires_grad_() for t in random_direction(SHAPES, r, torch.Generator().manual_seed(2),
                                                           dtype=torch.float64)]
    opt = RiemannianSGD(params, lr=lr, momentum=momentum, radius=r)
    start = flat(params)
    for step in range(60):
        opt.zero_grad()
        quadratic(params).backward()
        opt.step()
        assert flat(params).norm().item() == pytest.approx(r, rel=1e-12), step
    assert not torch.equal(flat(params), start)
    if momentum:  # the transported momentum lies in the tangent space at the new point
        b = opt.state[params[0]]["momentum_buffer"]
        assert abs(b @ flat(params)) < 1e-9 * b.norm() * r


def test_a_point_off_the_sphere_is_moved_onto_it_by_the_first_step():
    p = torch.full((10,), 3.0, dtype=torch.float64, requires_grad=True)  # ‖p‖ ≈ 9.5
    opt = RiemannianSGD([p], lr=0.0, radius=2.0)
    p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(p.detach(), torch.full((10,), 2.0 / 10 ** 0.5, dtype=torch.float64))


def test_two_steps_match_a_hand_computation_on_one_sphere_for_all_tensors():
    r, lr, mu = 5.0, 0.3, 0.7
    params = [t.requires_grad_() for t in random_direction(SHAPES, r, torch.Generator().manual_seed(3),
                                                           dtype=torch.float64)]
    nu = flat(params)
    opt = RiemannianSGD(params, lr=lr, momentum=mu, radius=r)
    grads = []
    for seed in (4, 5):
        opt.zero_grad()
        quadratic(params, seed).backward()
        grads.append(flat([p.grad for p in params]))
        opt.step()
    # by hand: b1 = P_ν g1 (the buffer starts at the PROJECTED gradient: the departure from PFCL)
    b1 = grads[0] - (grads[0] @ nu) / (nu @ nu) * nu
    nu1 = r * (nu - lr * b1) / (nu - lr * b1).norm()
    b1 = b1 - (b1 @ nu1) / r ** 2 * nu1                                  # transported
    g2 = grads[1] - (grads[1] @ nu1) / (nu1 @ nu1) * nu1
    b2 = mu * b1 + g2
    nu2 = r * (nu1 - lr * b2) / (nu1 - lr * b2).norm()
    torch.testing.assert_close(flat(params), nu2)
    # one sphere for the group, not one per tensor: the pieces' norms are not each r
    norms = [p.detach().norm().item() for p in params]
    assert sum(n ** 2 for n in norms) == pytest.approx(r ** 2) and max(norms) < r - 0.5


def test_the_projected_gradient_is_orthogonal_to_nu_and_a_missing_grad_counts_as_zero():
    r = 3.0
    a, b = (t.requires_grad_() for t in random_direction([(4,), (3,)], r,
                                                         torch.Generator().manual_seed(6),
                                                         dtype=torch.float64))
    nu = flat([a, b])
    opt = RiemannianSGD([a, b], lr=1e-8, radius=r)
    a.grad = torch.arange(1.0, 5.0, dtype=torch.float64)  # b.grad stays None
    opt.step()
    step = (nu - flat([a, b])) / 1e-8                      # ≈ the projected gradient
    g = torch.cat([torch.arange(1.0, 5.0, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)])
    torch.testing.assert_close(step, tangent(nu, g), rtol=1e-4, atol=1e-6)
    assert abs(step @ nu) < 1e-3 * step.norm() * r


def test_bad_arguments_are_refused():
    p = torch.ones(3, requires_grad=True)
    for kw in (dict(lr=-1.0), dict(lr=0.1, momentum=-0.1), dict(lr=0.1, radius=0.0)):
        with pytest.raises(ValueError):
            RiemannianSGD([p], **kw)


def test_rsgd_step_is_the_optimiser_step_and_stays_on_the_sphere():
    from clcourse.sphere import RiemannianSGD, rsgd_step
    g = torch.Generator().manual_seed(0)
    nu0 = torch.randn(7, generator=g, dtype=torch.float64)
    nu0 = nu0 * (3.0 / nu0.norm())
    grads = [torch.randn(7, generator=g, dtype=torch.float64) for _ in range(4)]
    p = torch.nn.Parameter(nu0.clone())
    opt = RiemannianSGD([p], lr=0.1, momentum=0.7, radius=3.0)
    nu, buf = nu0.clone(), None
    for grad in grads:
        p.grad = grad.clone()
        opt.step()
        nu, buf = rsgd_step(nu, grad, buf, 0.1, 0.7, 3.0)
        torch.testing.assert_close(p.detach(), nu)
        assert abs(float(nu.norm()) - 3.0) < 1e-12 and abs(float(buf @ nu)) < 1e-10  # b in ν's tangent space
    first, _ = rsgd_step(nu0, grads[0], None, 0.1, 0.7, 3.0)
    no_momentum, _ = rsgd_step(nu0, grads[0], torch.ones(7, dtype=torch.float64), 0.1, 0.0, 3.0)
    torch.testing.assert_close(first, no_momentum)  # the first step and μ = 0 use the projected gradient


@pytest.mark.parametrize("scale", [1e20, 1e-25])
def test_tangent_and_retract_at_extreme_scales_in_float32(scale):
    # ‖ν‖² overflows (1e20) or underflows (1e-25) in float32: the power-of-two scaling keeps both right
    nu = torch.tensor([3.0, 4.0, 0.0]) * scale
    g = torch.tensor([1.0, 1.0, 5.0])
    torch.testing.assert_close(tangent(nu, g), torch.tensor([1 - 0.84, 1 - 1.12, 5.0]))
    torch.testing.assert_close(retract(nu, 10.0), torch.tensor([6.0, 8.0, 0.0]))
    new, b = rsgd_step(nu, g * scale, None, 0.0, 0.9, 2.0)
    torch.testing.assert_close(torch.linalg.vector_norm(new), torch.tensor(2.0))


def test_the_scaling_is_exact_at_ordinary_scales():
    g = torch.Generator().manual_seed(3)
    for dtype in (torch.float32, torch.float64):
        nu, x = torch.randn(257, generator=g, dtype=dtype) * 7, torch.randn(257, generator=g, dtype=dtype)
        by_formula = x - (x * nu).sum() / (nu * nu).sum() * nu
        assert torch.equal(tangent(nu, x), by_formula)
        assert torch.equal(retract(x, 80.0), x * (80.0 / torch.linalg.vector_norm(x)))
