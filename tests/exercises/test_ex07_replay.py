"""Grading tests of lesson 07 (generative replay, BI-R and XdG gating): ex07.1–ex07.5.

Each test calls your function (fixture `ex`: your `exercises/` module or the `solutions/` one, chosen
with `--impl`) and compares it with the reference in `clcourse.vae` (`reparameterize`, `vae_loss`,
`gmm_kl_sampled`, `gating_masks`) and `clcourse.losses` (`distillation`, `mix_current_replay`, put
together as `clcourse.methods.gr.GR.loss` does), with independent oracles (the formulas written out in
float64, values worked by hand, gradients by autograd and by hand) and with properties the result must
have whatever the implementation (a mask keeps exactly round(keep·n) units; the same seed gives the same
gate; no gradient reaches the teacher).

The reparameterisation's noise ε is an argument, drawn as `clcourse.vae.reparameterize` draws it
(`torch.randn(mu.shape, generator=g, dtype=mu.dtype)`), so the two give the same z from the same seed.
Every call checks that the inputs keep their values and their requires_grad flag.
"""
import math

import pytest
import torch
import torch.nn.functional as F

from clcourse.losses import distillation as ref_distillation
from clcourse.losses import mix_current_replay as ref_mix
from clcourse.vae import gating_masks as ref_gating_masks
from clcourse.vae import gmm_kl_sampled as ref_gmm_kl
from clcourse.vae import reparameterize as ref_reparameterize
from clcourse.vae import vae_loss as ref_vae_loss

from checks import call_unchanged, check_equal, check_tensor, raises_value_error

EXERCISE_MODULE = "ex07_replay"

DTYPES = [torch.float64, torch.float32]
DTYPE_IDS = ["float64", "float32"]
TOL = {torch.float32: dict(atol=1e-5, rtol=1e-5), torch.float64: dict(atol=1e-12, rtol=1e-12)}
LOG_2PI = math.log(2 * math.pi)
INF = float("inf")


# ---------------------------------------------------------------- helpers

def _gen(seed):
    return torch.Generator().manual_seed(seed)


def _randn(*shape, seed=0, dtype=torch.float64, scale=1.0, shift=0.0):
    return (shift + scale * torch.randn(tuple(shape), generator=_gen(seed), dtype=torch.float64)).to(dtype)


def _rand(*shape, seed=0, dtype=torch.float64, low=0.0, high=1.0):
    return (low + (high - low) * torch.rand(tuple(shape), generator=_gen(seed), dtype=torch.float64)).to(dtype)


def _tol(dtype, scale=1.0):
    """Tolerances for values of size ~ scale."""
    t = TOL[dtype]
    return dict(atol=t["atol"] * scale, rtol=t["rtol"])


def _grads(out, inputs, c):
    """The gradients of ⟨out, c⟩ in each input (None where it plays no part)."""
    return torch.autograd.grad((out * c).sum(), inputs, allow_unused=True)


def _is_like(out, shape, dtype, what):
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert tuple(out.shape) == tuple(shape), (
        f"expected shape {tuple(shape)}, got {tuple(out.shape)} — {what}")
    assert out.dtype == dtype, f"expected dtype {dtype}, got {out.dtype} — {what}"


# ---------------------------------------------------------------- ex07.1 reparameterize (§1)

def _reparam(ex, mu, logvar, eps, what):
    out = call_unchanged(ex.reparameterize, mu, logvar, eps,
                         what=what + " (build z = μ + σ·ε as a new tensor: no in-place ops on the inputs)")
    _is_like(out, mu.shape, mu.dtype, what)
    return out


def _latents(shape, seed, dtype):
    """μ, log σ² (spread over [−3, 3]: σ and σ² differ a lot) and ε drawn as clcourse.vae draws it."""
    mu = _randn(*shape, seed=seed, dtype=dtype, scale=2.0)
    logvar = _rand(*shape, seed=seed + 1, dtype=dtype, low=-3.0, high=3.0)
    eps = torch.randn(shape, generator=_gen(seed + 2), dtype=dtype)
    return mu, logvar, eps


@pytest.mark.exercise("ex07.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("shape", [(6, 4), (1, 3), (0, 5), (2, 3, 4)], ids=str)
def test_reparameterize_matches_the_formula_and_the_reference(ex, shape, dtype):
    mu, logvar, eps = _latents(shape, 10, dtype)
    what = f"reparameterize(mu {shape}, logvar {shape} in [−3, 3], eps {shape}), {dtype}"
    out = _reparam(ex, mu, logvar, eps, what)
    expected = mu.double() + torch.exp(0.5 * logvar.double()) * eps.double()
    check_tensor(out, expected.to(dtype), what + ": z = μ + exp(½·log σ²)·ε (σ, the standard deviation, "
                 "not σ² = exp(log σ²))", **_tol(dtype, 10.0))
    check_tensor(out, ref_reparameterize(mu, logvar, _gen(12)),
                 what + " compared with clcourse.vae.reparameterize with the same seed", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex07.1")
def test_reparameterize_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    mu, logvar = torch.tensor([[0.0, 1.0, -1.0]], **f64), torch.tensor([[math.log(4.0), 0.0, -2.0]], **f64)
    eps = torch.tensor([[1.0, -2.0, 0.5]], **f64)
    what = "reparameterize(mu [[0, 1, −1]], logvar [[log 4, 0, −2]], eps [[1, −2, 0.5]])"
    check_tensor(_reparam(ex, mu, logvar, eps, what),
                 torch.tensor([[2.0, -1.0, -1.0 + 0.5 * math.exp(-1.0)]], **f64),
                 what + ": σ = exp(½·log σ²) = [2, 1, e⁻¹]; z = μ + σ·ε = [0 + 2, 1 − 2, −1 + 0.5·e⁻¹] "
                 "(σ² = 4 would give 4 for the first; ε without σ gives 1; sqrt(log σ²) is NaN for the third)",
                 atol=1e-14, rtol=0)
    zero = torch.zeros(1, 3, **f64)
    what = "reparameterize(mu [[0, 1, −1]], logvar [[log 4, 0, −2]], eps zero)"
    check_tensor(_reparam(ex, mu, logvar, zero, what), mu, what + ": ε = 0 gives z = μ", atol=0, rtol=0)


@pytest.mark.exercise("ex07.1")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_reparameterize_passes_gradients_to_mu_and_logvar(ex, dtype):
    mu, logvar, eps = _latents((5, 3), 20, dtype)
    mu, logvar = mu.requires_grad_(), logvar.requires_grad_()
    what = f"reparameterize(mu (5, 3) requires_grad, logvar (5, 3) requires_grad, eps), {dtype}"
    out = _reparam(ex, mu, logvar, eps, what)
    assert out.requires_grad, f"z does not depend on μ or log σ² for autograd: no detach, no no_grad — {what}"
    c = _randn(5, 3, seed=23, dtype=dtype)
    g_mu, g_lv = _grads(out, (mu, logvar), c)
    assert g_mu is not None, f"no gradient reaches μ: do not detach mu — {what}"
    assert g_lv is not None, f"no gradient reaches log σ²: do not detach logvar — {what}"
    check_tensor(g_mu, c, what + ": ∂z/∂μ = 1 (the gradient of ⟨z, c⟩ in μ is c)", **_tol(dtype))
    sigma = torch.exp(0.5 * logvar.detach().double())
    check_tensor(g_lv, (c.double() * 0.5 * sigma * eps.double()).to(dtype),
                 what + ": ∂z/∂log σ² = ½·σ·ε (the gradient of ⟨z, c⟩ in log σ² is c·½·σ·ε)", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex07.1")
def test_reparameterize_keeps_the_inputs(ex):
    mu, logvar, eps = _latents((4, 2), 30, torch.float64)
    what = "reparameterize(mu, logvar, eps), then reparameterize again on the same tensors"
    first = _reparam(ex, mu, logvar, eps, what)
    check_tensor(_reparam(ex, mu, logvar, eps, what), first, what + ": the same inputs give the same z",
                 atol=0, rtol=0)
    assert first.untyped_storage().data_ptr() not in (mu.untyped_storage().data_ptr(),
                                                      eps.untyped_storage().data_ptr()), (
        f"z shares an input's memory: return a NEW tensor — {what}")


@pytest.mark.exercise("ex07.1")
@pytest.mark.parametrize("shapes", [((3, 2), (2, 3), (3, 2)), ((3, 2), (3, 2), (2,)), ((3, 2), (3, 1), (3, 2))],
                         ids=str)
def test_reparameterize_shape_mismatchraises_value_error(ex, shapes):
    raises_value_error(ex.reparameterize, *(torch.zeros(s) for s in shapes),
            what=f"reparameterize(mu {shapes[0]}, logvar {shapes[1]}, eps {shapes[2]}): the shapes must be equal "
            "(no broadcasting)")


# ---------------------------------------------------------------- ex07.2 vae_loss_per_sample (§1)

def _vae(ex, x, recon, mu, logvar, what):
    out = call_unchanged(ex.vae_loss_per_sample, x, recon, mu, logvar, what=what)
    _is_like(out, (len(x),), x.dtype, what + " (one loss per sample: not the batch mean)")
    return out


def _oracle_vae(x, recon, mu, logvar):
    x, r = x.detach().double().reshape(len(x), -1), recon.detach().double().reshape(len(x), -1)
    mu, logvar = mu.detach().double(), logvar.detach().double()
    bce = -(x * r.log().clamp(min=-100) + (1 - x) * (1 - r).log().clamp(min=-100)).sum(1)
    kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1)
    return (bce + kl) / x.shape[1]


LAYOUTS = {"(B, P)": ((7, 784), (7, 784)), "(B, 1, 28, 28)": ((7, 1, 28, 28), (7, 1, 28, 28)),
           "recon (B, P), x (B, 1, 28, 28)": ((7, 1, 28, 28), (7, 784)), "B = 1, P = 10": ((1, 10), (1, 10))}


@pytest.mark.exercise("ex07.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_vae_loss_matches_the_formula_and_the_reference(ex, layout, dtype):
    x_shape, r_shape = LAYOUTS[layout]
    b = x_shape[0]
    x = _rand(*x_shape, seed=40, dtype=dtype)  # grey levels in [0, 1]
    recon = torch.sigmoid(_randn(*r_shape, seed=41, scale=2.0)).to(dtype)
    mu = _randn(b, 6, seed=42, dtype=dtype, scale=3.0)  # a KL far from 0
    logvar = _rand(b, 6, seed=43, dtype=dtype, low=-3.0, high=2.0)
    what = f"vae_loss_per_sample(x {x_shape}, recon {r_shape}, mu ({b}, 6), logvar ({b}, 6)), {dtype}"
    out = _vae(ex, x, recon, mu, logvar, what)
    check_tensor(out, _oracle_vae(x, recon, mu, logvar).to(dtype),
                 what + ": (Σ_pixels BCE + ½·Σ_d (μ² + σ² − log σ² − 1)) / P, per sample, BOTH terms divided by P",
                 **_tol(dtype, 10.0))
    check_tensor(out, ref_vae_loss(x, recon, mu, logvar), what + " compared with clcourse.vae.vae_loss",
                 **_tol(dtype, 10.0))


@pytest.mark.exercise("ex07.2")
def test_vae_loss_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    x, half = torch.tensor([[1.0, 0.0]], **f64), torch.full((1, 2), 0.5, **f64)
    cases = [
        (torch.zeros(1, 1, **f64), torch.zeros(1, 1, **f64), math.log(2),
         "BCE = −log ½ − log ½ = 2·log 2, KL = 0 (μ = 0, σ² = 1), divided by P = 2: log 2"),
        (torch.tensor([[2.0]], **f64), torch.zeros(1, 1, **f64), (2 * math.log(2) + 2) / 2,
         "KL = ½·(2² + 1 − 0 − 1) = 2; (2·log 2 + 2) / 2 — the KL divided by P too"),
        (torch.zeros(1, 1, **f64), torch.tensor([[math.log(4.0)]], **f64),
         (2 * math.log(2) + 0.5 * (3 - math.log(4))) / 2,
         "σ² = exp(log σ²) = 4: KL = ½·(0 + 4 − log 4 − 1); (2·log 2 + KL) / 2"),
    ]
    for mu, logvar, expected, how in cases:
        what = f"vae_loss_per_sample(x [[1, 0]], recon [[0.5, 0.5]], mu {mu.tolist()}, logvar {logvar.tolist()})"
        check_tensor(_vae(ex, x, half, mu, logvar, what), torch.tensor([expected], **f64), what + ": " + how,
                     atol=1e-13, rtol=0)
    x2 = torch.tensor([[1.0, 0.0], [0.0, 0.0]], **f64)
    r2 = torch.tensor([[0.5, 0.5], [0.5, 0.5]], **f64)
    mu2 = torch.tensor([[0.0], [2.0]], **f64)
    what = "vae_loss_per_sample(x [[1, 0], [0, 0]], recon all 0.5, mu [[0], [2]], logvar [[0], [0]])"
    check_tensor(_vae(ex, x2, r2, mu2, torch.zeros(2, 1, **f64), what),
                 torch.tensor([math.log(2), math.log(2) + 1], **f64),
                 what + ": one loss per sample, each from its own pixels and latent units: [log 2, (2·log 2 + 2)/2]",
                 atol=1e-13, rtol=0)


@pytest.mark.exercise("ex07.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_vae_loss_with_reconstructions_of_exactly_0_and_1(ex, dtype):
    x = torch.tensor([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]], dtype=dtype)
    recon = torch.tensor([[0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]], dtype=dtype)
    zeros = torch.zeros(2, 3, dtype=dtype)
    what = (f"vae_loss_per_sample(x [[1, 0, 1, 0], [1, 1, 0, 0]], recon [[0, 1, 1, 0], [1, 1, 0, 0]], mu 0, "
            f"logvar 0), {dtype}")
    out = _vae(ex, x, recon, zeros, zeros, what)
    assert torch.isfinite(out).all(), (
        f"got {out.tolist()}: a log of 0 is −inf, and 0·log 0 is NaN — clamp each log at −100, as "
        f"F.binary_cross_entropy does — {what}")
    check_tensor(out, torch.tensor([50.0, 0.0], dtype=dtype),
                 what + ": each pixel with recon 0 where x = 1 (or 1 where x = 0) costs 100 (the log clamped at −100), "
                 "a perfect pixel 0: [200/4, 0/4]", **_tol(dtype, 50.0))
    check_tensor(out, ref_vae_loss(x, recon, zeros, zeros), what + " compared with clcourse.vae.vae_loss",
                 **_tol(dtype, 50.0))


@pytest.mark.exercise("ex07.2")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_vae_loss_gradients_match_the_reference(ex, dtype):
    x = (_rand(4, 1, 5, 5, seed=50) > 0.5).to(dtype)  # binary images
    recon = _rand(4, 25, seed=51, dtype=dtype, low=0.05, high=0.95).requires_grad_()
    mu = _randn(4, 3, seed=52, dtype=dtype).requires_grad_()
    logvar = _randn(4, 3, seed=53, dtype=dtype).requires_grad_()
    what = f"vae_loss_per_sample(x (4, 1, 5, 5) binary, recon (4, 25), mu, logvar: all requiring grad), {dtype}"
    out = _vae(ex, x, recon, mu, logvar, what)
    assert out.requires_grad, f"the loss does not depend on recon, μ or log σ² for autograd — {what}"
    c = _randn(4, seed=54, dtype=dtype)
    ref = _grads(ref_vae_loss(x, recon, mu, logvar), (recon, mu, logvar), c)
    for name, g, r in zip(("recon", "mu", "logvar"), _grads(out, (recon, mu, logvar), c), ref):
        assert g is not None, f"no gradient reaches {name}: do not detach it — {what}"
        check_tensor(g, r, what + f": the gradient in {name} compared with clcourse.vae.vae_loss's",
                     **_tol(dtype, 10.0))


@pytest.mark.exercise("ex07.2")
@pytest.mark.parametrize("shapes", [((3, 784), (3, 783), (3, 2)), ((3, 784), (2, 784), (3, 2)),
                                    ((3, 784), (3, 784), (2, 2))], ids=str)
def test_vae_loss_shape_mismatchraises_value_error(ex, shapes):
    x_shape, r_shape, m_shape = shapes
    raises_value_error(ex.vae_loss_per_sample, torch.full(x_shape, 0.5), torch.full(r_shape, 0.5), torch.zeros(m_shape),
            torch.zeros(m_shape),
            what=f"vae_loss_per_sample(x {x_shape}, recon {r_shape}, mu {m_shape}, logvar {m_shape}): the same samples "
            "and pixels, one latent row per sample")


# ---------------------------------------------------------------- ex07.3 replay_loss (§2)

def _replay(ex, args, what):
    out = call_unchanged(ex.replay_loss, *args, what=what)
    assert isinstance(out, tuple) and len(out) == 2, (
        f"expected a tuple (current term, replay term), got {type(out).__name__} — {what}")
    dtype = args[0].dtype
    _is_like(out[0], (), dtype, what + ": the current term")
    _is_like(out[1], (), dtype, what + ": the replay term")
    return out


def _ref_replay(cur, y, rep, teacher, k, T=2.0):
    """GR.loss's classifier terms with soft targets: clcourse.losses.mix_current_replay of the two."""
    return ref_mix(F.cross_entropy(cur, y), ref_distillation(rep, teacher, T), k)


def _oracle_replay(cur, y, rep, teacher, k, T):
    cur, rep, teacher = cur.detach().double(), rep.detach().double(), teacher.detach().double()
    ce = -torch.log_softmax(cur, 1)[torch.arange(len(y)), y].mean()
    p = torch.softmax(teacher / T, 1)
    log_q = torch.log_softmax(rep / T, 1)
    kd = -torch.where(p > 0, p * log_q, torch.zeros_like(p)).sum(1).mean() * T ** 2
    return ce / k, kd * (1 - 1 / k)


def _replay_batch(b, n, c, old, dtype, seed, mask_student=False, mask_current=False):
    """Logits of a class-IL step: c units, the teacher's `old` first ones finite, the rest −inf."""
    cur = _randn(b, c, seed=seed, dtype=dtype, scale=3.0)
    y = torch.randint(0, c, (b,), generator=_gen(seed + 1))
    if mask_current:  # task-IL: only the current task's units are active
        cur[:, :old] = -INF
        y = torch.randint(old, c, (b,), generator=_gen(seed + 1))
    rep = _randn(n, c, seed=seed + 2, dtype=dtype, scale=3.0)
    teacher = _randn(n, c, seed=seed + 3, dtype=dtype, scale=3.0)
    teacher[:, old:] = -INF
    if mask_student:
        rep[:, old:] = -INF
    return cur, y, rep, teacher


REPLAY_CASES = {"k=2 T=2": (2, 2.0), "k=3 T=2": (3, 2.0), "k=5 T=3.5": (5, 3.5), "k=4 T=1": (4, 1.0),
                "k=1 T=2": (1, 2.0)}


@pytest.mark.exercise("ex07.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("case", list(REPLAY_CASES))
def test_replay_loss_matches_the_formula_and_the_reference(ex, case, dtype):
    k, T = REPLAY_CASES[case]
    cur, y, rep, teacher = _replay_batch(6, 8, 10, 2 * (k - 1) or 2, dtype, seed=60 + k)
    what = (f"replay_loss(current (6, 10), y, replay (8, 10), teacher (8, 10) with −inf on the new classes, "
            f"k={k}, T={T}), {dtype}")
    out = _replay(ex, (cur, y, rep, teacher, k, T), what)
    oracle = _oracle_replay(cur, y, rep, teacher, k, T)
    check_tensor(out[0], oracle[0].to(dtype), what + ": current term = CE / k", **_tol(dtype, 10.0))
    check_tensor(out[1], oracle[1].to(dtype), what + ": replay term = (1 − 1/k)·T²·mean over rows of −Σ_i p_i·log q_i, "
                 "p = softmax(teacher/T), log q = log_softmax(replay/T)", **_tol(dtype, 10.0))
    ref = _ref_replay(cur, y, rep, teacher, k, T)
    check_tensor(out[0], ref[0], what + ": current term compared with clcourse.losses (GR.loss)", **_tol(dtype, 10.0))
    check_tensor(out[1], ref[1], what + ": replay term compared with clcourse.losses (GR.loss)", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex07.3")
def test_replay_loss_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    cur, y = torch.tensor([[0.0, 0.0]], **f64), torch.tensor([0])
    rep, teacher = torch.tensor([[0.0, 0.0]], **f64), torch.tensor([[0.0, -INF]], **f64)
    what = "replay_loss(current [[0, 0]], y [0], replay [[0, 0]], teacher [[0, −inf]], k=2, T=2)"
    out = _replay(ex, (cur, y, rep, teacher, 2, 2.0), what)
    check_tensor(out[0], torch.tensor(math.log(2) / 2, **f64), what + ": CE = log 2, times 1/k = ½", atol=1e-14, rtol=0)
    check_tensor(out[1], torch.tensor(2 * math.log(2), **f64),
                 what + ": p = [1, 0], log q = [−log 2, −log 2]: −Σ p·log q = log 2, × T² = 4, × (1 − 1/k) = ½: "
                 "2·log 2 (without the T²: log 2 / 2)", atol=1e-14, rtol=0)
    rep = torch.tensor([[math.log(3.0) * 2, 0.0]], **f64)  # at T = 2: q = [3/4, 1/4]
    teacher = torch.tensor([[0.0, 0.0]], **f64)  # p = [½, ½]
    what = "replay_loss(current [[0, 0]], y [0], replay [[2·log 3, 0]], teacher [[0, 0]], k=3, T=2)"
    out = _replay(ex, (cur, y, rep, teacher, 3, 2.0), what)
    kd = 4 * -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))
    check_tensor(out[0], torch.tensor(math.log(2) / 3, **f64), what + ": CE / k = log 2 / 3", atol=1e-14, rtol=0)
    check_tensor(out[1], torch.tensor(kd * 2 / 3, **f64),
                 what + ": at T = 2, q = softmax([log 3, 0]) = [¾, ¼] (the student's logits divided by T too), "
                 "p = [½, ½]: T²·−(½·log ¾ + ½·log ¼), × (1 − 1/3)", atol=1e-14, rtol=0)


@pytest.mark.exercise("ex07.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_replay_loss_with_masked_logits(ex, dtype):
    cur, y, rep, teacher = _replay_batch(5, 7, 6, 4, dtype, seed=70, mask_student=True, mask_current=True)
    what = (f"replay_loss(current (5, 6) with −inf on the old units, y, replay (7, 6) and teacher (7, 6) both −inf on "
            f"the 2 new classes, k=3, T=2), {dtype}")
    out = _replay(ex, (cur, y, rep, teacher, 3, 2.0), what)
    assert torch.isfinite(out[0]), (
        f"the current term is {out[0].item()}: a masked unit's −inf must not enter the sum (0·−inf is NaN; "
        f"F.cross_entropy takes the label's log-probability only) — {what}")
    assert torch.isfinite(out[1]), (
        f"the replay term is {out[1].item()}: where the teacher's target is 0 the term p·log q is 0, even where "
        f"log q = −inf (0·−inf is NaN: leave those units out) — {what}")
    ref = _ref_replay(cur, y, rep, teacher, 3, 2.0)
    check_tensor(out[0], ref[0], what + ": current term compared with clcourse.losses", **_tol(dtype, 10.0))
    check_tensor(out[1], ref[1], what + ": replay term compared with clcourse.losses", **_tol(dtype, 10.0))


@pytest.mark.exercise("ex07.3")
@pytest.mark.parametrize("n", [1, 9])
def test_replay_loss_with_one_task_is_the_cross_entropy(ex, n):
    cur, y, rep, teacher = _replay_batch(1, n, 4, 2, torch.float64, seed=80)
    what = f"replay_loss(current (1, 4), y, replay ({n}, 4), teacher ({n}, 4), k=1, T=2)"
    out = _replay(ex, (cur, y, rep, teacher, 1, 2.0), what)
    check_tensor(out[0], F.cross_entropy(cur, y), what + ": k = 1 (the first task): the current term is the plain CE",
                 atol=1e-14, rtol=1e-14)
    check_tensor(out[1], torch.tensor(0.0, dtype=torch.float64),
                 what + ": k = 1: nothing to replay, weight 1 − 1/1 = 0",
                 atol=0, rtol=0)


@pytest.mark.exercise("ex07.3")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_replay_loss_gradients_reach_the_student_not_the_teacher(ex, dtype):
    cur, y, rep, teacher = _replay_batch(4, 6, 6, 4, dtype, seed=90)
    cur, rep, teacher = cur.requires_grad_(), rep.requires_grad_(), teacher.requires_grad_()
    what = f"replay_loss(current, y, replay, teacher — all three requiring grad, k=3, T=2), {dtype}"
    out = _replay(ex, (cur, y, rep, teacher, 3, 2.0), what)
    total = out[0] + out[1]
    assert total.requires_grad, f"the loss does not depend on the logits for autograd — {what}"
    g_cur, g_rep, g_teacher = torch.autograd.grad(total, (cur, rep, teacher), allow_unused=True)
    assert g_teacher is None or not g_teacher.abs().max() > 0, (
        f"a gradient reaches the teacher's logits (up to {g_teacher.abs().max().item():.3g}): they are a fixed "
        f"target — detach them — {what}")
    ref_cur, ref_rep = torch.autograd.grad(sum(_ref_replay(cur, y, rep, teacher, 3, 2.0)), (cur, rep))
    assert g_cur is not None and g_rep is not None, f"no gradient reaches the student's logits — {what}"
    check_tensor(g_cur, ref_cur, what + ": the gradient in current_logits compared with clcourse.losses'",
                 **_tol(dtype))
    check_tensor(g_rep, ref_rep, what + ": the gradient in replay_logits compared with clcourse.losses'", **_tol(dtype))


@pytest.mark.exercise("ex07.3")
@pytest.mark.parametrize("bad", ["k=0", "T=0", "T=-1", "shapes"])
def test_replay_loss_bad_arguments_raise(ex, bad):
    cur, y, rep, teacher = _replay_batch(3, 4, 5, 3, torch.float64, seed=100)
    k, T = {"k=0": (0, 2.0), "T=0": (2, 0.0), "T=-1": (2, -1.0)}.get(bad, (2, 2.0))
    if bad == "shapes":
        teacher = teacher[:, :4]
    raises_value_error(ex.replay_loss, cur, y, rep, teacher, k, T,
            what=f"replay_loss(..., replay {tuple(rep.shape)}, teacher {tuple(teacher.shape)}, k={k}, T={T}): k ≥ 1, "
            "T > 0, replay and teacher logits of one shape")


# ---------------------------------------------------------------- ex07.4 gmm_kl (§4)

def _gmm(ex, args, what):
    out = call_unchanged(ex.gmm_kl, *args, what=what)
    _is_like(out, (len(args[0]),), args[0].dtype, what + " (one KL per sample)")
    return out


def _oracle_log_normal(v, mean, lv):
    return -0.5 * (LOG_2PI + lv + (v - mean) ** 2 / lv.exp()).sum(-1)


def _oracle_gmm(z, mu, logvar, means, logvars, y=None):
    z, mu, logvar, means, logvars = (t.detach().double() for t in (z, mu, logvar, means, logvars))
    if y is not None:
        m, s = means[y], logvars[y]
        return 0.5 * (s - logvar + (logvar.exp() + (mu - m) ** 2) / s.exp() - 1).sum(1)
    terms = _oracle_log_normal(z[:, None], means[None], logvars[None])  # (B, K)
    top = terms.max(1).values
    log_p = top + (terms - top[:, None]).exp().sum(1).log() - math.log(len(means))
    return _oracle_log_normal(z, mu, logvar) - log_p


def _gmm_inputs(b, d, k, dtype, seed):
    mu = _randn(b, d, seed=seed, dtype=dtype)
    logvar = _rand(b, d, seed=seed + 1, dtype=dtype, low=-2.0, high=1.0)
    z = (mu.double() + (0.5 * logvar.double()).exp() * _randn(b, d, seed=seed + 2)).to(dtype)
    means = _randn(k, d, seed=seed + 3, dtype=dtype, scale=2.0)
    logvars = _rand(k, d, seed=seed + 4, dtype=dtype, low=-1.0, high=1.0)
    return z, mu, logvar, means, logvars


@pytest.mark.exercise("ex07.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("b,k", [(6, 10), (5, 3), (1, 1), (0, 4)], ids=["B=6 K=10", "B=5 K=3", "B=1 K=1", "B=0 K=4"])
def test_gmm_kl_sampled_matches_the_formula_and_the_reference(ex, b, k, dtype):
    args = _gmm_inputs(b, 5, k, dtype, seed=110 + k)
    what = f"gmm_kl(z ({b}, 5), mu, logvar, means ({k}, 5), logvars ({k}, 5)), {dtype}"
    out = _gmm(ex, args, what)
    check_tensor(out, _oracle_gmm(*args).to(dtype),
                 what + ": log N(z; μ, σ²) − (logsumexp_k log N(z; m_k, s_k²) − log K)", **_tol(dtype, 100.0))
    check_tensor(out, ref_gmm_kl(*args), what + " compared with clcourse.vae.gmm_kl_sampled", **_tol(dtype, 100.0))


@pytest.mark.exercise("ex07.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
@pytest.mark.parametrize("b", [6, 1, 0])
def test_gmm_kl_given_the_class_matches_the_formula_and_the_reference(ex, b, dtype):
    z, mu, logvar, means, logvars = _gmm_inputs(b, 4, 5, dtype, seed=120 + b)
    y = torch.tensor([4, 0, 2, 2, 1, 3][:b], dtype=torch.long)
    what = f"gmm_kl(z ({b}, 4), mu, logvar, means (5, 4), logvars (5, 4), y {y.tolist()}), {dtype}"
    out = _gmm(ex, (z, mu, logvar, means, logvars, y), what)
    check_tensor(out, _oracle_gmm(z, mu, logvar, means, logvars, y).to(dtype),
                 what + ": the closed-form KL(N(μ, σ²) ‖ N(m_y, s_y²)) to each sample's OWN mode y",
                 **_tol(dtype, 100.0))
    check_tensor(out, ref_gmm_kl(z, mu, logvar, means, logvars, y),
                 what + " compared with clcourse.vae.gmm_kl_sampled", **_tol(dtype, 100.0))
    if b:
        what += ", then with another z"
        check_tensor(_gmm(ex, (z + 1.0, mu, logvar, means, logvars, y), what), out,
                     what + ": given y the KL is exact: z plays no part", **_tol(dtype, 100.0))


@pytest.mark.exercise("ex07.4")
def test_gmm_kl_by_hand(ex):
    f64 = dict(dtype=torch.float64)
    one, zero = torch.ones(1, 1, **f64), torch.zeros(1, 1, **f64)
    means, logvars = torch.tensor([[-1.0], [1.0]], **f64), torch.zeros(2, 1, **f64)
    what = "gmm_kl(z [[1]], mu [[1]], logvar [[0]], means [[−1], [1]], logvars [[0], [0]])"
    expected = math.log(2) - math.log(1 + math.exp(-2))
    check_tensor(_gmm(ex, (one, one, zero, means, logvars), what), torch.tensor([expected], **f64),
                 what + ": log q(1) = −½·log 2π; p(1) = ½·(N(1; −1, 1) + N(1; 1, 1)) = ½·(e⁻² + 1)/√(2π): "
                 "KL = log 2 − log(1 + e⁻²) (the mixture's weights ½ give the log 2; a mean of the log-densities "
                 "gives 1)", atol=1e-14, rtol=0)
    same = torch.zeros(3, 1, **f64)
    what = "gmm_kl(z [[1]], mu [[1]], logvar [[0]], means three times [0], logvars [[0]] × 3)"
    check_tensor(_gmm(ex, (one, one, zero, same, same), what), torch.tensor([0.5], **f64),
                 what + ": three equal modes N(0, 1) are N(0, 1): log q(1) − log p(1) = −½·log 2π + ½·log 2π + ½ = ½ "
                 "(without the −log K: ½ − log 3)", atol=1e-14, rtol=0)
    mode, mode_lv = torch.tensor([[2.0]], **f64), torch.tensor([[math.log(4.0)]], **f64)
    what = "gmm_kl(z [[5]], mu [[0]], logvar [[0]], means [[2]], logvars [[log 4]], y [0])"
    check_tensor(_gmm(ex, (torch.tensor([[5.0]], **f64), zero, zero, mode, mode_lv, torch.tensor([0])), what),
                 torch.tensor([0.5 * (math.log(4.0) + 5 / 4 - 1)], **f64),
                 what + ": KL(q ‖ p) = ½·(log 4 − 0 + (1 + (0 − 2)²)/4 − 1) (KL(p ‖ q) would be ½·(−log 4 + 8 − 1))",
                 atol=1e-14, rtol=0)


@pytest.mark.exercise("ex07.4")
@pytest.mark.parametrize("dtype", DTYPES, ids=DTYPE_IDS)
def test_gmm_kl_far_from_every_mode(ex, dtype):
    z = torch.zeros(2, 3, dtype=dtype)
    means = torch.full((4, 3), 1000.0, dtype=dtype)
    means[0] = -1000.0
    means[1, 0] = 999.0
    logvars = torch.zeros(4, 3, dtype=dtype)
    args = (z, z.clone(), z.clone(), means, logvars)
    what = f"gmm_kl(z = 0 (2, 3), mu 0, logvar 0, 4 modes ~1000 away, logvars 0), {dtype}"
    out = _gmm(ex, args, what)
    assert torch.isfinite(out).all(), (
        f"got {out.tolist()}: each log N(z; m_k, s_k²) is about −1.5·10⁶, whose exp is 0 — the log of a sum of exps "
        f"is then −inf; use torch.logsumexp (it subtracts the largest term first) — {what}")
    check_tensor(out, _oracle_gmm(*args).to(dtype), what + ": the logsumexp, computed stably",
                 atol=1e-9, rtol=1e-6 if dtype == torch.float32 else 1e-12)
    check_tensor(out, ref_gmm_kl(*args), what + " compared with clcourse.vae.gmm_kl_sampled",
                 atol=1e-9, rtol=1e-6 if dtype == torch.float32 else 1e-12)


@pytest.mark.exercise("ex07.4")
@pytest.mark.parametrize("with_y", [False, True], ids=["mixture", "given y"])
def test_gmm_kl_gradients_match_the_reference(ex, with_y):
    args = [t.requires_grad_() for t in _gmm_inputs(5, 3, 4, torch.float64, seed=130)]
    y = torch.tensor([3, 0, 1, 1, 2]) if with_y else None
    what = f"gmm_kl(z, mu, logvar, means, logvars — all requiring grad{', y' if with_y else ''})"
    out = _gmm(ex, (*args, y), what)
    assert out.requires_grad, f"the KL does not depend on its inputs for autograd — {what}"
    c = _randn(5, seed=131)
    names = ("z", "mu", "logvar", "means", "logvars")
    used = names[1:] if with_y else names
    ref = _grads(ref_gmm_kl(*args, y), args, c)
    for name, g, r in zip(names, _grads(out, args, c), ref):
        if name not in used:
            continue
        assert g is not None, f"no gradient reaches {name}: do not detach it — {what}"
        check_tensor(g, r, what + f": the gradient in {name} compared with clcourse.vae.gmm_kl_sampled's",
                     **_tol(torch.float64, 10.0))


@pytest.mark.exercise("ex07.4")
@pytest.mark.parametrize("bad", ["y = K", "y = -1", "z and mu", "means and logvars", "latent sizes"])
def test_gmm_kl_bad_arguments_raise(ex, bad):
    z, mu, logvar, means, logvars = _gmm_inputs(3, 4, 5, torch.float64, seed=140)
    y = {"y = K": torch.tensor([0, 5, 1]), "y = -1": torch.tensor([0, -1, 1])}.get(bad)
    if bad == "z and mu":
        mu = mu[:, :3]
    elif bad == "means and logvars":
        logvars = logvars[:4]
    elif bad == "latent sizes":
        means, logvars = means[:, :3], logvars[:, :3]
    raises_value_error(ex.gmm_kl, z, mu, logvar, means, logvars, y,
            what=f"gmm_kl with {bad} (z {tuple(z.shape)}, mu {tuple(mu.shape)}, means {tuple(means.shape)}, logvars "
            f"{tuple(logvars.shape)}, y {None if y is None else y.tolist()}): modes in [0, K), shapes that agree")


# ---------------------------------------------------------------- ex07.5 gating_mask (§4)

def _gate(ex, n, keep, generator, what):
    out = call_unchanged(ex.gating_mask, n, keep, generator, what=what)
    assert isinstance(out, torch.Tensor), f"expected a torch.Tensor, got {type(out).__name__} — {what}"
    assert out.dtype == torch.bool, (
        f"expected a mask of dtype torch.bool, got {out.dtype} — a float 0/1 mask is a number per unit, not a "
        f"mask (tensor[mask] would index, not select) — {what}")
    assert tuple(out.shape) == (n,), f"expected shape ({n},), got {tuple(out.shape)} — {what}"
    return out


GATES = [(10, 0.3, 0), (400, 0.2, 1), (5, 0.5, 2), (100, 0.29, 3), (7, 1.0, 4), (1, 1.0, 5), (3, 0.2, 6),
         (2000, 0.8, 7)]


@pytest.mark.exercise("ex07.5")
@pytest.mark.parametrize("n,keep,seed", GATES, ids=[f"n={n} keep={k}" for n, k, _ in GATES])
def test_gating_mask_matches_the_package(ex, n, keep, seed):
    what = f"gating_mask({n}, {keep}, a generator seeded {seed})"
    out = _gate(ex, n, keep, _gen(seed), what)
    expected_k = round(keep * n)
    kept = int(out.sum())
    assert kept == expected_k, (
        f"the mask keeps {kept} units, expected round({keep}·{n}) = {expected_k} (Python's round: round(2.5) = 2; "
        f"int() would cut 28.999… to 28) — {what}")
    check_equal(out, ref_gating_masks(1, n, keep, _gen(seed))[0],
                what + ": compared with clcourse.vae.gating_masks(1, n, keep, generator)[0] from the same seed — "
                "torch.rand(n, generator=generator).argsort()[:k] marks the k SMALLEST scores")


@pytest.mark.exercise("ex07.5")
def test_gating_mask_is_fixed_by_the_seed(ex):
    what = "gating_mask(50, 0.4, a generator seeded 11), twice with fresh generators"
    first = _gate(ex, 50, 0.4, _gen(11), what)
    check_equal(_gate(ex, 50, 0.4, _gen(11), what), first, what + ": the same seed must give the same gate")
    others = [_gate(ex, 50, 0.4, _gen(s), f"gating_mask(50, 0.4, a generator seeded {s})") for s in (12, 13)]
    assert not all(torch.equal(o, first) for o in others), (
        "seeds 11, 12 and 13 give the same gate: draw the scores with the generator passed in, not the global RNG")


@pytest.mark.exercise("ex07.5")
def test_gating_mask_draws_exactly_n_numbers(ex):
    g, g_ref = _gen(21), _gen(21)
    rows = [_gate(ex, 30, 0.5, g, f"gating_mask(30, 0.5, one generator seeded 21), call {i + 1} of 4")
            for i in range(4)]
    check_equal(torch.stack(rows), ref_gating_masks(4, 30, 0.5, g_ref),
                "4 calls gating_mask(30, 0.5, g) in a row with one generator: the 4 rows of "
                "clcourse.vae.gating_masks(4, 30, 0.5, g) — draw torch.rand(n, generator=g) once per call, nothing "
                "else")
    assert torch.equal(torch.rand(5, generator=g), torch.rand(5, generator=g_ref)), (
        "after 4 calls the generator is not where clcourse's is: draw exactly n numbers per call")


@pytest.mark.exercise("ex07.5")
@pytest.mark.parametrize("n,keep", [(10, 0.0), (10, 1.5), (10, -0.2), (10, 0.01), (0, 0.5), (-3, 0.5), (10.0, 0.5),
                                    (True, 0.5), (10, True), (10, "0.5")], ids=str)
def test_gating_mask_bad_arguments_raise(ex, n, keep):
    raises_value_error(ex.gating_mask, n, keep, _gen(0),
            what=f"gating_mask({n!r}, {keep!r}, g): n an int ≥ 1, keep a number in (0, 1], round(keep·n) ≥ 1")
