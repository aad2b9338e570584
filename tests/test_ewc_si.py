"""EWC, online EWC, SI and the L2 baseline (lesson 02): the penalty's value and gradient, that they protect an old task,
SI's importance, and resume after a kill for each."""
import dataclasses

import pytest
import torch

import clcourse as cl
from clcourse import engine, penalties
from clcourse.data.scenarios import Scenario
from clcourse.data.streams import Stream, Task
from clcourse.experiment import build
from clcourse.methods import EWC, L2, SI, Finetune, OnlineEWC
from clcourse.methods.ewc import LAMBDA_EXACT
from clcourse.methods.si import path_importance, path_integral, si_importance
from resume import killed_and_resumed


def small(cls, root, **kw):
    s = cl.make_settings("permuted-mnist", "smoke", **{"n_tasks": 3, **kw})
    return build(s, root, "cpu", method=cls)


def test_penalty_is_zero_at_the_anchor_and_its_gradient_is_lambda_F_times_the_offset(tiny_root):
    stream, scen, method, _ = small(EWC, tiny_root, method_args={"lam": 7.0})
    params = penalties.trainable(method.model)
    F = {n: torch.rand_like(p) for n, p in params.items()}
    method.terms = [(F, penalties.snapshot(method.model))]
    batch = scen.train_set(stream.tasks[0]).batch(torch.arange(8), scen.mask_table(0))
    assert method.loss(batch)["ewc"].item() == 0.0
    offset = {n: 0.01 * torch.randn_like(p) for n, p in params.items()}
    with torch.no_grad():
        for n, p in params.items():
            p += offset[n]
    penalty = method.loss(batch)["ewc"]
    grads = torch.autograd.grad(penalty, list(params.values()))
    for (n, p), g in zip(params.items(), grads):
        torch.testing.assert_close(g, 7.0 * F[n] * offset[n], rtol=1e-4, atol=1e-7)
    expected = 7.0 / 2 * sum((F[n] * offset[n] ** 2).sum() for n in params)
    torch.testing.assert_close(penalty, expected, rtol=1e-4, atol=1e-9)


def test_online_ewc_keeps_one_running_fisher_decayed_by_gamma(tiny_root):
    stream, scen, method, device = small(OnlineEWC, tiny_root, method_args={"gamma": 0.5})
    engine.fit(method, stream, scen, method.settings, device)
    assert len(method.terms) == 1  # one term, whatever the number of tasks
    offline_stream, offline_scen, offline, _ = small(EWC, tiny_root)
    engine.fit(offline, offline_stream, offline_scen, offline.settings, device)
    assert len(offline.terms) == 3


def conflict_stream(n=400, d=8, seed=0):
    """Two domain-IL tasks in 8-D: task 1 labels the cloud around +μ by a random plane, task 2 the
    cloud around −μ by the OPPOSITE rule. Both can be learnt together, but training on task 2 alone
    rewrites the shared rule: fine-tuning forgets task 1 almost entirely."""
    g = torch.Generator().manual_seed(seed)
    w, tasks = torch.randn(d, generator=g), []
    for k, (shift, sign) in enumerate([(3.0, 1.0), (-3.0, -1.0)]):
        def draw(m):
            x = torch.randn(m, d, generator=g) + shift / d ** 0.5
            return x.view(m, 1, 1, d), (sign * (x @ w) > 0).long()
        (xtr, ytr), (xte, yte) = draw(n), draw(n // 2)
        tasks.append(Task(k, f"rule {k + 1}", [0, 1], xtr, ytr, xte, yte))
    return Stream("conflict", tasks, (1, 1, d))


def run_conflict(cls, args=None):
    s = cl.make_settings("permuted-mnist", "smoke", n_tasks=2, hidden=(64, 64), epochs=60,
                         batch_size=32, lr=3e-3, method=cls.name, method_args=args or {})
    s = dataclasses.replace(s, method_args=cls.resolve_args(s, s.method_args))
    cl.set_seed(0)
    stream = conflict_stream()
    scenario = Scenario("domain", stream)
    method = cls(cls.make_model(s, stream.input_shape, scenario), scenario, s, stream)
    return engine.fit(method, stream, scenario, s, torch.device("cpu"), progress=False).accuracy_matrix


@pytest.mark.parametrize("cls,args", [(EWC, {"lam": 100.0}), (OnlineEWC, {"lam": 100.0}),
                                      (SI, {"c": 10.0})], ids=["ewc", "online-ewc", "si"])
def test_the_method_keeps_the_old_task_better_than_finetuning(cls, args):
    ft = run_conflict(Finetune)
    kept = run_conflict(cls, args)
    assert ft[0][0] > 0.9 and ft[1][0] < 0.3          # fine-tuning forgets task 1 ...
    assert kept[1][0] > ft[1][0] + 0.3                # ... the method keeps it by a clear margin
    assert kept[1][1] > 0.9                           # and still learns task 2


def test_l2_keeps_the_old_task_but_learns_the_new_one_worse_than_ewc():
    """Kirkpatrick et al. 2017, Fig. 2A: holding every weight equally keeps task 1 but costs task 2."""
    ft, l2, ewc = run_conflict(Finetune), run_conflict(L2, {"lam": 1.0}), run_conflict(EWC, {"lam": 100.0})
    assert l2[1][0] > ft[1][0] + 0.3                  # L2 keeps task 1 ...
    assert l2[1][1] < ewc[1][1] - 0.05                # ... but learns task 2 worse than EWC does


def test_si_importance_is_non_negative_and_zero_where_nothing_moved_the_loss():
    stream = conflict_stream()
    for task in stream.tasks:  # input 0 is always 0: its first-layer weights never get a gradient
        task.x_train[..., 0] = 0
    s = cl.make_settings("permuted-mnist", "smoke", n_tasks=2, hidden=(32,), epochs=5,
                         optimizer="sgd", lr=0.05, method="si")
    s = dataclasses.replace(s, method_args=SI.resolve_args(s, {}))
    scenario = Scenario("domain", stream)
    method = SI(SI.make_model(s, stream.input_shape, scenario), scenario, s, stream)
    engine.fit(method, stream, scenario, s, torch.device("cpu"), progress=False)
    omega = method.omega["backbone.net.1.weight"]   # first layer: (32, 8)
    assert (omega >= 0).all()        # plain SGD: −g·Δθ = lr·g² ≥ 0 at every step
    assert omega[:, 0].abs().max() == 0              # never moved the loss: no importance
    assert omega[:, 1:].mean() > 0
    # The units whose weights moved the loss most are the important ones: Ω ranks them like the
    # accumulated lr·g² path it comes from (a parameter that never moved has Ω = 0, the rest > 0).
    assert (omega[:, 1:] > 0).float().mean() > 0.5


def test_default_lambda_follows_the_published_code_and_the_fisher_kind():
    s = cl.make_settings("split-mnist", "paper", scenario="class")
    assert EWC.resolve_args(s, {})["lam"] == LAMBDA_EXACT["split-mnist"]["class"] == 1e9
    pred = cl.make_settings("split-mnist", "paper", scenario="class", method_args={"fisher": "pred"})
    assert EWC.resolve_args(pred, {"fisher": "pred"})["lam"] == 1e8
    assert OnlineEWC.resolve_args(pred, {"fisher": "pred"})["lam"] == 1e9
    assert SI.resolve_args(s, {})["c"] == 0.5
    with pytest.raises(ValueError, match="fisher must be one of"):
        EWC.resolve_args(s, {"fisher": "empirial"})
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\]"):
        OnlineEWC.resolve_args(s, {"gamma": 1.5})


@pytest.mark.parametrize("cls", [EWC, OnlineEWC, SI, L2], ids=["ewc", "online-ewc", "si", "l2"])
def test_resume_after_a_kill_mid_stream_gives_the_identical_matrix(tiny_root, tmp_path, cls):
    full, resumed = killed_and_resumed(cls, tiny_root, tmp_path, n_tasks=3, scenario="class", epochs=4)
    full, resumed = full.result, resumed.result
    assert resumed.accuracy_matrix == full.accuracy_matrix
    assert resumed.loss_terms[2].keys() == full.loss_terms[2].keys() >= {"ce"}


def test_l2_is_ewc_with_a_fisher_of_ones(tiny_root):
    _, _, l2, _ = small(L2, tiny_root, method_args={"lam": 3.0})
    stream, scen, ewc, _ = small(EWC, tiny_root, method_args={"lam": 3.0})
    ewc.model.load_state_dict(l2.model.state_dict())
    anchor = penalties.snapshot(l2.model)
    l2.anchors = [anchor, {n: a + 0.1 for n, a in anchor.items()}]  # two finished tasks
    ewc.terms = [({n: torch.ones_like(a) for n, a in anchor.items()}, anchor)
                 for anchor in l2.anchors]
    with torch.no_grad():
        for p in penalties.trainable(l2.model).values():
            p += 0.05
        for p in penalties.trainable(ewc.model).values():
            p += 0.05
    batch = scen.train_set(stream.tasks[0]).batch(torch.arange(8), scen.mask_table(0))
    torch.testing.assert_close(l2.loss(batch)["l2"], ewc.loss(batch)["ewc"], rtol=1e-6, atol=0)
    assert L2.resolve_args(l2.settings, {})["lam"] == 0.01


def test_si_importance_of_a_recorded_path_is_the_path_integral_over_the_displacement():
    g = torch.tensor([[1.0, -2.0], [3.0, 1.0]], dtype=torch.float64)
    d = torch.tensor([[-0.5, 0.5], [-0.5, -0.5]], dtype=torch.float64)
    start = torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(path_integral(g, d), torch.tensor([2.0, 1.5], dtype=torch.float64))
    torch.testing.assert_close(si_importance(g, d, start, start + d.sum(0), 0.5),
                               path_importance(path_integral(g, d), start, start + d.sum(0), 0.5))
    torch.testing.assert_close(si_importance(g, d, start, start + d.sum(0), 0.5),
                               torch.tensor([2 / 1.5, 3.0], dtype=torch.float64))

