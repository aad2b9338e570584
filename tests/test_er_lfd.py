"""Experience replay (Chaudhry et al. 2019) and LFD (Wen et al., TCSVT 2024, as HaitaoWen/PFCL computes
it): the per-(task, class) memory, the replayed examples in the loss, the direction search on the sphere
(and two ways of getting it wrong that leave the direction where it started), the orthogonal penalty,
the equilibrium point, resume after a kill, and end-to-end runs."""
import copy

import pytest
import torch
import torch.nn.functional as F

import clcourse as cl
from clcourse import engine
from clcourse.data.scenarios import TensorSet, masked_logits
from clcourse.experiment import build
from clcourse.memory import TaskMemory
from clcourse.methods import ER, LFD, METHODS
from clcourse.methods.lfd import RATIOS, interpolate, interpolate_and_slope, orthogonal_penalty
from clcourse.penalties import trainable
from resume import Killed, dies_in_task

FAST = {"direction_epochs": 4, "ep_epochs": 4}


def fit(cls, root, benchmark="permuted-mnist", args=None, **overrides):
    s = cl.make_settings(benchmark, "smoke", method_args=args or {}, **overrides)
    stream, scen, method, device = build(s, root, "cpu", method=cls)
    result = engine.fit(method, stream, scen, method.settings, device, progress=False)
    return method, result


def flat(tensors):
    return torch.cat([t.detach().reshape(-1) for t in tensors])


# --- the memory ---------------------------------------------------------------------------------
def test_task_memory_keeps_m_per_class_of_every_task_although_the_classes_repeat(tmp_path):
    x = torch.arange(60.0)[:, None].repeat(1, 3)
    y = torch.tensor([0, 1, 2]).repeat(20)
    mem = TaskMemory(2)
    assert mem.sample(4) is None and mem.as_tensorset() is None
    mem.add_task(0, x, y, generator=torch.Generator().manual_seed(0))
    mem.add_task(1, x + 100, y, generator=torch.Generator().manual_seed(1))
    assert mem.counts() == {0: {0: 2, 1: 2, 2: 2}, 1: {0: 2, 1: 2, 2: 2}} and len(mem) == 12
    data = mem.as_tensorset()
    assert data.t.tolist() == [0] * 6 + [1] * 6
    assert torch.equal(data.y, y[(data.x[:, 0] % 100).long()])        # each exemplar kept its label
    assert ((data.x[:, 0] >= 100) == (data.t == 1)).all()               # and its task's inputs
    with pytest.raises(ValueError, match="already"):
        mem.add_task(0, x, y)
    s = mem.sample(5, torch.Generator().manual_seed(0))
    assert len(s) == 5 and len(set(s.x[:, 0].tolist())) == 5            # distinct
    assert len(mem.sample(50, torch.Generator().manual_seed(0))) == 12   # at most all
    torch.save(mem.state_dict(), tmp_path / "m.pt")
    back = TaskMemory(1, "herding")
    back.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    assert back.counts() == mem.counts() and torch.equal(back.as_tensorset().x, data.x)
    with pytest.raises(ValueError):
        TaskMemory(0)


@pytest.mark.parametrize("benchmark, scenario, units", [("permuted-mnist", "domain", None),
                                                       ("split-mnist", "task", 2),
                                                       ("split-mnist", "class", 2)])
def test_er_memory_holds_per_class_times_classes_of_every_task(tiny_root, benchmark, scenario, units):
    m, _ = fit(ER, tiny_root, benchmark, args={"per_class": 3}, scenario=scenario, n_tasks=3)
    counts = m.memory.counts()
    assert list(counts) == [0, 1, 2]
    for t, per in counts.items():
        block = range(10) if units is None else m.scenario.block(t)
        assert per == {c: 3 for c in block}
        kept, data = m.memory.tasks[t].as_tensorset(), m.scenario.train_set(m.stream.tasks[t])
        same = (kept.x.flatten(1)[:, None] == data.x.flatten(1)[None]).all(2)
        assert same.any(1).all()                                         # real training examples
        assert torch.equal(kept.y, data.y[same.float().argmax(1)])       # with their own units


class RecordsReplay(ER):
    def train_set(self, task):
        data = super().train_set(task)
        self.sizes = {**getattr(self, "sizes", {}), task.id: (len(data), int((data.t < task.id).sum()))}
        return data

    def replay(self, n, generator):
        out = super().replay(n, generator)
        self.seen = getattr(self, "seen", {})
        self.seen.setdefault(self.task.id, []).append(None if out is None else out.t.clone())
        return out


def test_er_replays_exemplars_of_earlier_tasks_in_every_step(tiny_root):
    m, r = fit(RecordsReplay, tiny_root, args={"replay_batch": 7}, n_tasks=3)
    assert all(v is None for v in m.seen[0])                              # nothing kept yet
    assert all(len(v) == 7 and (v == 0).all() for v in m.seen[1])         # task 0's exemplars
    assert all(len(v) == 7 and (v < 2).all() for v in m.seen[2])
    assert set(r.loss_terms[0]) == {"ce"} and {"ce", "replay"} <= set(r.loss_terms[2])
    default = ER.resolve_args(cl.make_settings("permuted-mnist", "smoke"), {})
    assert default == {"per_class": 1, "selection": "random", "replay_batch": 64}


def test_er_loss_is_the_cross_entropy_on_the_concatenation_and_the_replay_matters(tiny_root):
    m, _ = fit(ER, tiny_root, benchmark="split-mnist", args={"per_class": 2}, scenario="task",
               n_tasks=2)
    masks = m.scenario.mask_table(1, "cpu")
    cur = m.scenario.train_set(m.stream.tasks[1]).batch(torch.arange(6), masks)
    rep = m.memory.tasks[0].as_tensorset().batch(None, masks)          # 4 exemplars of task 0
    terms = m.loss(cur, rep)
    z = m.model(torch.cat([cur.x, rep.x]))
    by_hand = F.cross_entropy(masked_logits(z, torch.cat([cur.mask, rep.mask])), torch.cat([cur.y, rep.y]))
    torch.testing.assert_close(terms["ce"] + terms["replay"], by_hand)
    assert not torch.equal(rep.mask[0], cur.mask[0])                    # each on its own task's head
    m.model.zero_grad()
    terms["replay"].backward()
    assert m.model.head.heads[0].weight.grad.abs().sum() > 0            # old head learns from replay
    flipped = TensorSet(rep.x, 1 - rep.y, rep.t).batch(None, masks)
    assert not torch.allclose(m.loss(cur, flipped)["replay"], terms["replay"])
    torch.testing.assert_close(m.loss(cur, None)["ce"], F.cross_entropy(
        masked_logits(m.model(cur.x), cur.mask), cur.y))


def test_replay_batch_zero_puts_the_memory_into_the_training_set_instead(tiny_root):
    m, r = fit(RecordsReplay, tiny_root, args={"replay_batch": 0}, n_tasks=3)
    assert all(v is None for v in m.seen[1] + m.seen[2])
    assert m.sizes == {0: (200, 0), 1: (210, 10), 2: (220, 20)}  # the task's 200 + 10 per old task
    assert set(r.loss_terms[2]) == {"ce"}


# --- LFD: pure parts ----------------------------------------------------------------------------
def test_orthogonal_penalty_per_tensor_and_global():
    g = torch.Generator().manual_seed(0)
    nu = [torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)]
    kept = [v.clone() for v in nu]
    parallel = [2.5 * nu[0], -0.3 * nu[1]]                             # each tensor along its ν_l
    assert orthogonal_penalty(parallel, nu) < 1e-24
    delta = [torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(4, generator=g, dtype=torch.float64)]
    by_hand = sum(((d - v * (d * v).sum() / (v * v).sum()) ** 2).sum() for d, v in zip(delta, nu)) / 2
    torch.testing.assert_close(orthogonal_penalty(delta, nu), by_hand)
    # global: one projection of the whole vector; it differs when the tensors disagree ...
    D, N = flat(delta), flat(nu)
    glob = ((D - N * (D @ N) / (N @ N)) ** 2).sum() / 2
    torch.testing.assert_close(orthogonal_penalty(delta, nu, "global"), glob)
    assert orthogonal_penalty(parallel, nu, "global") > 1e-3             # parallel per tensor only
    assert abs(orthogonal_penalty(delta, nu, "global") - by_hand) > 1e-3
    along = [1.5 * nu[0], 1.5 * nu[1]]                                  # ... and agrees when δ ∥ ν
    assert orthogonal_penalty(along, nu, "global") < 1e-24 and orthogonal_penalty(along, nu) < 1e-24
    assert all(torch.equal(a, b) for a, b in zip(nu, kept))
    # its gradient is DCD's addition to the gradient: P⊥_{ν_l} δ_l (PFCL dcd.py)
    d = [t.clone().requires_grad_() for t in delta]
    orthogonal_penalty(d, nu).backward()
    for t, dl, v in zip(d, delta, nu):
        torch.testing.assert_close(t.grad, dl - v * (dl * v).sum() / (v * v).sum())
    with pytest.raises(ValueError):
        orthogonal_penalty(delta, nu, "layer")


def test_interpolate():
    a, b = [torch.zeros(2), torch.ones(3)], [torch.ones(2) * 4, torch.zeros(3)]
    torch.testing.assert_close(interpolate(a, b, 0.25), [torch.ones(2), torch.full((3,), 0.75)])
    assert all(torch.equal(x, y) for x, y in zip(interpolate(a, b, 0.0), a))
    assert all(torch.equal(x, y) for x, y in zip(interpolate(a, b, 1.0), b))


# --- LFD: the direction search ---------------------------------------------------------------------
class Watches(LFD):
    """Keeps the direction's random start of every task."""

    def new_direction(self, task):
        nu = super().new_direction(task)
        self.starts = {**getattr(self, "starts", {}), task.id: [v.detach().clone() for v in nu]}
        return nu


class BlogDirection(Watches):
    """The seed blog's defect: ν created without requires_grad, the loss computed by the model at
    parameters written into it, so nothing ever reaches ν."""

    def new_direction(self, task):
        return [v.detach() for v in super().new_direction(task)]

    def segment_loss(self, nu, batch):
        total = 0
        for rho in RATIOS:
            net = copy.deepcopy(self.model)  # ŵ + ρν written into a copy of the network
            with torch.no_grad():
                for p, w, v in zip([p for p in net.parameters() if p.requires_grad], self.w_hat, nu):
                    p.copy_(w + rho * v)
            total = total + F.cross_entropy(masked_logits(net(batch.x), batch.mask), batch.y) / rho
        return total / len(RATIOS)


class LossNotAtDirection(Watches):
    """ν requires grad, but the loss is the model's own at ŵ: ν never enters it."""

    def segment_loss(self, nu, batch):
        return F.cross_entropy(masked_logits(self.model(batch.x), batch.mask), batch.y)


def searched(cls, root, seed=0, **args):
    """(did ν move from its start, did the segment loss on the memory go down, ‖ν‖ / r)."""
    m, r = fit(cls, root, args={**FAST, **args}, n_tasks=2, seed=seed)
    before, after = r.reports[-1]["direction_loss"][1]
    moved = not torch.equal(flat(m.nu), flat(m.starts[1]))
    return moved, after < before, flat(m.nu).norm().item() / m.args["radius"]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_the_direction_search_lowers_the_segment_loss_and_stays_on_the_sphere(tiny_root, seed):
    moved, lowered, ratio = searched(Watches, tiny_root, seed)
    assert moved and lowered and ratio == pytest.approx(1.0, rel=1e-5)


def test_the_search_catches_a_direction_that_gets_no_gradient(tiny_root):
    assert searched(Watches, tiny_root)[:2] == (True, True)
    for defect in (BlogDirection, LossNotAtDirection):
        assert searched(defect, tiny_root)[:2] == (False, False), defect.__name__


def test_nu_is_the_only_leaf_that_gets_gradients_and_every_tensor_of_it_gets_one(tiny_root):
    m, _ = fit(Watches, tiny_root, args=FAST, n_tasks=2)
    nu = [v.clone().requires_grad_() for v in m.nu]
    batch = m.memory.as_tensorset().batch(None, m.scenario.mask_table(1, "cpu"))
    m.model.zero_grad(set_to_none=True)
    m.segment_loss(nu, batch).backward()
    assert all(v.grad is not None and v.grad.abs().sum() > 0 for v in nu)
    assert all(p.grad is None for p in m.model.parameters()) and not any(w.requires_grad for w in m.w_hat)
    # the objective: the memory loss at ŵ + ρν, over ρ, divided by ρ, averaged
    with torch.no_grad():
        by_hand = sum(F.cross_entropy(masked_logits(m.at([w + rho * v for w, v in zip(m.w_hat, m.nu)],
                                                         batch.x), batch.mask), batch.y) / rho
                      for rho in (0.3, 0.5, 0.7, 0.9, 1.0)) / 5
        torch.testing.assert_close(m.segment_loss(m.nu, batch), by_hand)
        m.args["objective"] = "end"
        torch.testing.assert_close(m.segment_loss(m.nu, batch), m.memory_loss(
            [w + v for w, v in zip(m.w_hat, m.nu)], batch))
    for shape_w, v in zip(m.w_hat, m.nu):
        assert v.shape == shape_w.shape


# --- LFD: the penalty in training and the equilibrium point ----------------------------------------
class KeepsW(LFD):
    """Keeps w (the trained point, before the equilibrium point) of every task."""

    def after_task(self, task):
        self.w_end = {**getattr(self, "w_end", {}),
                      task.id: [p.detach().clone() for p in trainable(self.model).values()]}
        super().after_task(task)


@pytest.mark.parametrize("projection", ["tensor", "global"])
def test_the_penalty_term_is_kappa_times_the_orthogonal_penalty(tiny_root, projection):
    m, r = fit(KeepsW, tiny_root, args={**FAST, "projection": projection, "kappa": 0.5}, n_tasks=2)
    assert "penalty" in r.loss_terms[1] and "penalty" not in r.loss_terms[0]
    batch = m.scenario.train_set(m.task).batch(torch.arange(5), m.scenario.mask_table(1, "cpu"))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p, w, v in zip(trainable(m.model).values(), m.w_hat, m.nu):
            p.copy_(w + 0.01 * v)                                          # along ν: free
    assert m.loss(batch)["penalty"].item() < 1e-9
    with torch.no_grad():
        for p, w in zip(trainable(m.model).values(), m.w_hat):
            p.copy_(w + 0.1 * torch.randn(w.shape, generator=g))
    delta = [p.detach() - w for p, w in zip(trainable(m.model).values(), m.w_hat)]
    torch.testing.assert_close(m.loss(batch)["penalty"].detach(),
                               0.5 * orthogonal_penalty(delta, m.nu, projection))


def memory_loss_at(m, w, lam):
    batch = m.memory.as_tensorset().batch(None, m.scenario.mask_table(m.task.id, "cpu"))
    with torch.no_grad():
        return m.memory_loss(interpolate(m.w_hat, w, lam), batch).item()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_equilibrium_point_does_not_raise_the_memory_loss(tiny_root, seed):
    m, r = fit(KeepsW, tiny_root, args={"direction_epochs": 4}, n_tasks=3, seed=seed, epochs=3)
    lams = r.reports[-1]["lambda"]  # the default fit (20 epochs): a short one stops before its minimum
    assert lams[0] is None and all(isinstance(v, float) for v in lams[1:])
    lam, w = lams[2], m.w_end[2]
    fitted = memory_loss_at(m, w, lam)
    assert fitted <= memory_loss_at(m, w, 0.5) + 1e-6 and fitted <= memory_loss_at(m, w, 1.0) + 1e-6
    for p, v in zip(trainable(m.model).values(), interpolate(m.w_hat, w, lam)):
        torch.testing.assert_close(p.detach(), v)                          # the model took w(λ)


def test_without_ep_the_model_keeps_w(tiny_root):
    m, r = fit(KeepsW, tiny_root, args={**FAST, "ep": False}, n_tasks=2)
    assert r.reports[-1]["lambda"] == [None, None]
    assert all(torch.equal(p, w) for p, w in zip(trainable(m.model).values(), m.w_end[1]))


# --- resume, runs by name -----------------------------------------------------------------------------
DiesInTask3 = dies_in_task(2)


@pytest.mark.parametrize("cls, args", [(ER, {}), (LFD, FAST), (LFD, {**FAST, "ep": False})])
def test_resume_after_a_kill_in_the_third_task_gives_the_same_matrix(cls, args, tiny_root, tmp_path):
    kw = dict(profile="smoke", root=tiny_root, args=args, n_tasks=3)
    full = cl.run("permuted-mnist", cls, out=tmp_path / "full", **kw)
    s = cl.make_settings("permuted-mnist", "smoke", method_args=args, n_tasks=3)
    stream, scen, method, device = build(s, tiny_root, "cpu", method=type("D3", (DiesInTask3, cls), {}))
    with pytest.raises(Killed):
        engine.fit(method, stream, scen, method.settings, device,
                   checkpoint=tmp_path / "killed" / "checkpoint.pt", progress=False)
    resumed = cl.run("permuted-mnist", cls, out=tmp_path / "killed", resume=True, **kw)
    assert resumed.result.accuracy_matrix == full.result.accuracy_matrix
    assert resumed.result.reports == full.result.reports
    assert resumed.method.memory.counts() == full.method.memory.counts()
    if cls is LFD:
        assert torch.equal(flat(resumed.method.nu), flat(full.method.nu))


def test_lfd_runs_end_to_end_by_name(tiny_root):
    assert METHODS["er"] is ER and METHODS["lfd"] is LFD
    r = cl.run("permuted-mnist", "lfd", profile="smoke", root=tiny_root, save=False)
    reports = r.result.reports
    assert len(r.result.accuracy_matrix) == 2 and reports[0]["direction_loss"] == [None]
    before, after = reports[1]["direction_loss"][1]
    assert after < before and isinstance(reports[1]["lambda"][1], float)


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_er_and_lfd_run_in_task_and_class_il(tiny_root, scenario):
    for method in ("er", "lfd"):
        r = cl.run("split-mnist", method, scenario=scenario, profile="smoke", root=tiny_root,
                   n_tasks=3, args=FAST if method == "lfd" else None, save=False)
        assert len(r.result.accuracy_matrix) == 3


def test_the_authors_protocol_settings_run(tiny_root):
    """PFCL's permuted-MNIST protocol as overrides (a short run here: two tasks, a few steps)."""
    kw = dict(hidden=(256, 256), epochs=1, iters=None, batch_size=10, optimizer="sgd", lr=0.01,
              momentum=0.7)
    s = cl.make_settings("permuted-mnist", "paper", method="lfd", n_tasks=20, **kw)
    assert (s.hidden, s.batch_size, s.optimizer, s.lr, s.momentum, s.n_tasks) == \
        ((256, 256), 10, "sgd", 0.01, 0.7, 20)
    # what the paper profile keeps: a None override is ignored, so its 5000 iterations per task
    # stay (PFCL: one epoch = 6000 steps at batch 10), and so do pad_to=32 and keep_optimizer
    assert (s.iters, s.pad_to, s.keep_optimizer, s.weight_decay) == (5000, 32, True, 0.0)
    r = cl.run("permuted-mnist", "lfd", profile="paper", root=tiny_root, save=False,
               **{**kw, "n_tasks": 2, "iters": 5})
    assert len(r.result.accuracy_matrix) == 2 and r.result.reports[1]["lambda"][1] is not None


def test_orthogonal_penalty_of_no_tensors_is_a_zero_tensor():
    value = orthogonal_penalty([], [])
    assert torch.is_tensor(value) and value.shape == () and value.item() == 0.0


def test_interpolate_and_slope_matches_a_finite_difference_and_leaves_inputs_alone():
    g = torch.Generator().manual_seed(0)
    w_hat = [torch.randn(3, 2, generator=g, dtype=torch.float64), torch.randn(3, generator=g, dtype=torch.float64)]
    w = [v.clone().requires_grad_() for v in (torch.randn(3, 2, generator=g, dtype=torch.float64),
                                              torch.randn(3, generator=g, dtype=torch.float64))]
    x = torch.randn(5, 2, generator=g, dtype=torch.float64)

    def loss(ws):
        return torch.tanh(x @ ws[0].T + ws[1]).pow(2).sum()

    lam = torch.tensor(0.3, dtype=torch.float64)
    weights, slope = interpolate_and_slope(w_hat, w, lam, loss)
    for a, b in zip(weights, interpolate(w_hat, [v.detach() for v in w], 0.3)):
        torch.testing.assert_close(a, b)
    h = 1e-6
    fd = (loss(interpolate(w_hat, w, 0.3 + h)) - loss(interpolate(w_hat, w, 0.3 - h))) / (2 * h)
    torch.testing.assert_close(slope, fd.detach(), rtol=1e-7, atol=1e-9)
    assert not slope.requires_grad and not lam.requires_grad and all(v.grad is None for v in w)
    with pytest.raises(ValueError):
        interpolate_and_slope(w_hat, w[:1], 0.5, loss)


@pytest.mark.parametrize("projection", ["tensor", "global"])
def test_the_penalty_gradient_is_the_orthogonal_residual(projection):
    # the custom backward returns P⊥δ: compare with autograd through the formula written out
    g = torch.Generator().manual_seed(5)
    shapes = [(4, 3), (4,), (1,)]
    nu = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    nu[2] = torch.zeros(1, dtype=torch.float64)  # a zero piece removes nothing
    delta = [torch.randn(s, generator=g, dtype=torch.float64, requires_grad=True) for s in shapes]
    orthogonal_penalty(delta, nu, projection).backward()
    mine = [d.grad.clone() for d in delta]
    for d in delta:
        d.grad = None
    if projection == "tensor":
        expected = sum(((d - v * (d * v).sum() / (v * v).sum().clamp_min(1e-300)) ** 2).sum()
                       for d, v in zip(delta, nu)) / 2
    else:
        flat_d, flat_v = torch.cat([d.reshape(-1) for d in delta]), torch.cat([v.reshape(-1) for v in nu])
        expected = ((flat_d - flat_v * (flat_d @ flat_v) / (flat_v @ flat_v)) ** 2).sum() / 2
    torch.testing.assert_close(orthogonal_penalty(delta, nu, projection), expected)
    expected.backward()
    for a, d in zip(mine, delta):
        torch.testing.assert_close(a, d.grad)
