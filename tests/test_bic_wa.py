"""BiC and WA (lesson 05) and their shared pieces (clcourse.calibration): the bias correction and its
fit, the class-balanced validation split, weight aligning, clipping, and resume after a kill."""
import pytest
import torch
import torch.nn.functional as F

import clcourse as cl
from clcourse import calibration, engine
from clcourse.calibration import (balanced_split, bias_correction, fit_bias_correction,
                                  positive_fraction, weight_align)
from clcourse.data.scenarios import TensorSet
from clcourse.experiment import build
from clcourse.methods import METHODS, BiC, WA
from clcourse.models import GrowingHead, SingleHead
from resume import Killed, dies_in_task, killed_and_resumed

SMALL = dict(profile="smoke", n_tasks=3, scenario="class", save=False)


def biased_logits(n=120, classes=6, n_old=4, seed=0):
    """Logits where the true class scores high, and the new classes' logits are inflated."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat(n // classes)
    z = torch.randn(n, classes, generator=g) * 2
    z[torch.arange(n), y] += 4
    z[:, n_old:] = 1.5 * z[:, n_old:] + 3
    return z, y


# --- calibration: bias_correction and its fit --------------------------------------------------------
def test_bias_correction_changes_only_the_new_columns_and_leaves_its_inputs_alone():
    z = torch.randn(5, 6, requires_grad=True)
    before = z.detach().clone()
    a, b = torch.tensor(0.5, requires_grad=True), torch.tensor(-1.0, requires_grad=True)
    q = bias_correction(z, 4, a, b)
    assert q.data_ptr() != z.data_ptr()
    assert torch.equal(q[:, :4], z[:, :4])                       # bit-identical old columns
    torch.testing.assert_close(q[:, 4:], 0.5 * before[:, 4:] - 1.0)
    assert torch.equal(z.detach(), before) and z.requires_grad and a.requires_grad
    q.sum().backward()                                            # differentiable in α and β
    torch.testing.assert_close(a.grad, before[:, 4:].sum())
    assert b.grad == 10
    torch.testing.assert_close(bias_correction(before, 0, 2.0, 1.0), 2 * before + 1)
    assert torch.equal(bias_correction(before, 6, 2.0, 1.0), before)


@pytest.mark.parametrize("n_old, logits", [(-1, torch.zeros(2, 3)), (4, torch.zeros(2, 3)),
                                            (True, torch.zeros(2, 3)), (1, torch.zeros(3)),
                                            (1.0, torch.zeros(2, 3))])
def test_bias_correction_rejects_bad_arguments(n_old, logits):
    with pytest.raises(ValueError):
        bias_correction(logits, n_old, 1.0, 0.0)


def test_fit_lowers_the_validation_ce_runs_on_the_loop_and_pulls_beta_to_zero(monkeypatch):
    z, y = biased_logits()
    calls = []
    real = calibration.run_steps
    monkeypatch.setattr(calibration, "run_steps", lambda *a, **k: calls.append(k) or real(*a, **k))
    z_in = z.clone().requires_grad_()
    a, b = fit_bias_correction(z_in, y, 4)
    assert len(calls) == 1 and calls[0]["steps"] == 200 and calls[0]["batch_size"] == len(y)
    assert a.dim() == b.dim() == 0 and not a.requires_grad and not b.requires_grad
    assert torch.equal(z_in.detach(), z) and z_in.grad is None
    before, after = F.cross_entropy(z, y), F.cross_entropy(bias_correction(z, 4, a, b), y)
    assert after < before - 0.1, (before, after)
    assert a < 1  # the inflated new logits are scaled down
    free = fit_bias_correction(z, y, 4, beta_decay=0.0)[1]
    pulled = fit_bias_correction(z, y, 4, beta_decay=20.0)[1]
    assert abs(pulled) < 0.5 * abs(free), (free, pulled)
    a2, b2 = fit_bias_correction(z, y, 4)
    assert torch.equal(a, a2) and torch.equal(b, b2)             # deterministic
    a0, b0 = fit_bias_correction(z, y, 4, steps=0)
    assert a0 == 1 and b0 == 0


# --- calibration: balanced_split, weight_align, positive_fraction ----------------------------------
def test_balanced_split_holds_out_per_class_sorted_disjoint_and_complete():
    labels = torch.tensor([3, 1, 1, 3, 0, 3, 1, 0, 0, 3, 1, 0, 7, 7])
    copy = labels.clone()
    held, rest = balanced_split(labels, 1, torch.Generator().manual_seed(0))
    assert torch.equal(labels, copy)
    assert held.dtype == rest.dtype == torch.long
    assert torch.equal(held, held.sort().values) and torch.equal(rest, rest.sort().values)
    assert torch.equal(torch.cat([held, rest]).sort().values, torch.arange(len(labels)))
    assert sorted(labels[held].tolist()) == [0, 1, 3, 7]
    held2, _ = balanced_split(labels[:12], 3, torch.Generator().manual_seed(0))
    assert torch.bincount(labels[held2]).tolist() == [3, 3, 0, 3]
    # same generator seed, same split; the draws are random, not the first of each class
    g = lambda s: torch.Generator().manual_seed(s)
    assert torch.equal(balanced_split(labels[:12], 2, g(0))[0], balanced_split(labels[:12], 2, g(0))[0])
    assert len({tuple(balanced_split(labels[:12], 2, g(s))[0].tolist()) for s in range(10)}) > 1


@pytest.mark.parametrize("per_class", [True, 0, -1, 1.0, "2"])
def test_balanced_split_rejects_bad_counts(per_class):
    with pytest.raises(ValueError, match="per_class"):
        balanced_split(torch.tensor([0, 0, 1, 1]), per_class)


def test_balanced_split_names_a_class_too_small_to_train_on():
    with pytest.raises(ValueError, match="class 5 has 2 examples"):
        balanced_split(torch.tensor([0, 0, 0, 5, 5]), 2)


def test_weight_align_equalises_mean_norms_and_keeps_old_rows_and_its_input():
    w = torch.randn(7, 5, requires_grad=True)
    before = w.detach().clone()
    aligned, gamma = weight_align(w, 4)
    assert torch.equal(w.detach(), before) and w.requires_grad
    norms = aligned.detach().norm(dim=1)
    torch.testing.assert_close(norms[:4].mean(), norms[4:].mean())
    assert torch.equal(aligned[:4].detach(), before[:4])
    expected = before[:4].norm(dim=1).mean() / before[4:].norm(dim=1).mean()
    assert gamma.dim() == 0
    torch.testing.assert_close(gamma.detach(), expected)
    torch.testing.assert_close(aligned[4:].detach(), before[4:] * expected)
    for n_old in (0, 7, True, -1):
        with pytest.raises(ValueError):
            weight_align(before, n_old)
    zero_new = before.clone()
    zero_new[4:] = 0
    with pytest.raises(ValueError, match="zero"):
        weight_align(zero_new, 4)


def test_positive_fraction_counts_positive_among_the_non_zero_products():
    f = torch.tensor([[1.0, -2.0, 0.0], [3.0, 1.0, -1.0]])
    w = torch.tensor([[1.0, 1.0, -1.0], [-1.0, 2.0, 0.0]])
    prod = f[:, None, :] * w[None, :, :]
    brute = ((prod > 0).sum() / (prod != 0).sum()).item()
    assert positive_fraction(f, w) == pytest.approx(brute) == pytest.approx(5 / 9)
    assert positive_fraction(f.abs(), w.abs() + 1) == 1.0  # a zero feature is not counted
    assert positive_fraction(f.clamp(min=0), w.clamp(min=0)) == 1.0  # ReLU features, clipped weights
    tiny = torch.full((1, 1), 1e-30)
    assert positive_fraction(tiny, tiny) == 1.0  # by sign: the float32 product underflows to 0
    with pytest.raises(ValueError):
        positive_fraction(f, w[:, :2])
    with pytest.raises(ValueError):
        positive_fraction(torch.zeros(2, 3), w)


# --- BiC --------------------------------------------------------------------------------------------
class SeesItsBatches(BiC):
    """Records every batch's inputs, the validation set, and at task 3 the teacher's logits."""

    def loss(self, batch, replay=None):
        self.seen = getattr(self, "seen", {})
        self.seen.setdefault(self.task.id, []).append(batch.x.clone())
        if self.task.id == 2 and not hasattr(self, "teacher_seen"):
            with torch.no_grad():
                self.teacher_seen = (batch.x, self.teacher(batch.x), self.teacher_logits(batch.x),
                                     list(self.alpha), list(self.beta))
        return super().loss(batch, replay)

    def after_task(self, task):
        self.vals = getattr(self, "vals", {})
        self.vals[task.id] = self.validation
        super().after_task(task)


class TrainsOnItsValidation(SeesItsBatches):
    """The bug: the validation images are held out but trained on all the same."""

    def train_set(self, task):
        data = super().train_set(task)
        if self.validation is None:
            return data
        v = self.validation
        return TensorSet.cat([data, TensorSet(v.x, v.y, v.t)])


def leaked(cls, root):
    r = cl.run("split-mnist", cls, root=root, epochs=2, args={"budget": 30}, **SMALL)
    m, out = r.method, {}
    for t in (1, 2):
        seen = torch.cat(m.seen[t]).flatten(1)
        val = m.vals[t].x.flatten(1)
        out[t] = int((torch.cdist(val, seen) == 0).any(1).sum())
    return m, out


def test_validation_images_never_enter_stage_one_training(tiny_root):
    m, leaks = leaked(SeesItsBatches, tiny_root)
    assert leaks == {1: 0, 2: 0}
    assert m.vals[0] is None
    # v = int(0.1 · 30 / n_old), at least 1, of every class seen: old exemplars and new data
    assert torch.bincount(m.vals[1].y).tolist() == [1, 1, 1, 1]
    assert torch.bincount(m.vals[2].y).tolist() == [1] * 6
    _, buggy = leaked(TrainsOnItsValidation, tiny_root)  # the test catches the leak
    assert buggy[1] > 0 and buggy[2] > 0


def test_bic_corrects_only_the_newest_task_and_its_teacher_the_previous_one(tiny_root):
    r = cl.run("split-mnist", SeesItsBatches, root=tiny_root, args={"budget": 30}, **SMALL)
    m, reports = r.method, r.result.reports
    assert [len(rep["alpha"]) for rep in reports] == [1, 2, 3]
    assert reports[0] == {"alpha": [1.0], "beta": [0.0]}
    assert reports[2]["alpha"][:2] == reports[1]["alpha"] and reports[2]["beta"][:2] == reports[1]["beta"]
    assert reports[2]["alpha"][2] != 1.0 and reports[2]["beta"][2] != 0.0  # stage 2 did something
    x = r.stream.tasks[0].x_test
    with torch.no_grad():
        raw, pred = r.model(x), m.predict(x, None)
    assert torch.equal(pred[:, :4], raw[:, :4])                 # old columns bit-identical
    torch.testing.assert_close(pred[:, 4:], m.alpha[2] * raw[:, 4:] + m.beta[2])
    _, t_raw, t_corr, alpha, beta = m.teacher_seen                # teacher of task 3: task 2's (α, β)
    assert torch.equal(t_corr[:, :2], t_raw[:, :2])
    torch.testing.assert_close(t_corr[:, 2:4], alpha[1] * t_raw[:, 2:4] + beta[1])
    assert set(r.result.extra_matrices) == {"uncorrected"}


def test_bic_keep_all_corrects_every_task_like_pycil(tiny_root):
    r = cl.run("split-mnist", "bic", root=tiny_root, args={"budget": 30, "keep_all": True}, **SMALL)
    m, x = r.method, r.stream.tasks[0].x_test
    with torch.no_grad():
        raw, pred = r.model(x), m.predict(x, None)
    assert torch.equal(pred[:, :2], raw[:, :2])
    for k, (lo, hi) in enumerate([(2, 4), (4, 6)], start=1):
        torch.testing.assert_close(pred[:, lo:hi], m.alpha[k] * raw[:, lo:hi] + m.beta[k])


def test_bic_runs_end_to_end_by_name_and_reports(tiny_root):
    r = cl.run("split-mnist", "bic", scenario="class", profile="smoke", root=tiny_root, n_tasks=3,
               args={"budget": 30}, save=False)
    assert METHODS["bic"] is BiC
    assert set(r.result.extra_matrices) == {"uncorrected"}
    assert len(r.result.extra_matrices["uncorrected"]) == 3
    assert all(isinstance(v, float) for v in r.result.reports[-1]["alpha"] + r.result.reports[-1]["beta"])
    with pytest.raises(ValueError, match="too few to hold out"):
        cl.run("split-mnist", "bic", root=tiny_root, args={"budget": 6}, **SMALL)


DiesInTask3 = dies_in_task(2)  # killed in the third task, so the restored state is not trivial


@pytest.mark.parametrize("cls, args", [(BiC, {"budget": 30}), (BiC, {"budget": 30, "keep_all": True}),
                                       (WA, {"budget": 30})])
def test_resume_after_a_kill_gives_identical_matrices(cls, args, tiny_root, tmp_path):
    kw = dict(n_tasks=3, scenario="class", epochs=4)
    full, resumed = killed_and_resumed(cls, tiny_root, tmp_path, args=args, **kw)
    assert resumed.result.accuracy_matrix == full.result.accuracy_matrix
    assert resumed.result.extra_matrices == full.result.extra_matrices
    assert resumed.result.reports == full.result.reports
    # killed in the third task: the (α, β), γ and memory of two finished tasks are restored
    s = cl.make_settings("split-mnist", "smoke", method_args=args, **kw)
    stream, scen, method, device = build(s, tiny_root, "cpu", method=type("D3", (DiesInTask3, cls), {}))
    with pytest.raises(Killed):
        engine.fit(method, stream, scen, method.settings, device,
                   checkpoint=tmp_path / "k3" / "checkpoint.pt")
    late = cl.run("split-mnist", cls, profile="smoke", root=tiny_root, args=args,
                  out=tmp_path / "k3", resume=True, **kw)
    assert late.result.accuracy_matrix == full.result.accuracy_matrix
    assert late.result.extra_matrices == full.result.extra_matrices
    assert late.result.reports == full.result.reports


# --- WA ---------------------------------------------------------------------------------------------
class WatchesItsHead(WA):
    """Records the head's weights just before and after each task's after_task."""

    def after_task(self, task):
        self.before = getattr(self, "before", {})
        self.after = getattr(self, "after", {})
        self.before[task.id] = self.model.head.weight.detach().clone()
        super().after_task(task)
        self.after[task.id] = self.model.head.weight.detach().clone()


def test_wa_aligns_the_new_rows_to_the_old_mean_norm_and_keeps_the_old_rows(tiny_root):
    r = cl.run("split-mnist", WatchesItsHead, root=tiny_root, args={"budget": 30}, **SMALL)
    m = r.method
    assert isinstance(m.model.head, GrowingHead) and m.model.head.bias is None
    assert torch.equal(m.before[0], m.after[0])                    # task 0: nothing to align
    for t, (n_old, n_seen) in {1: (2, 4), 2: (4, 6)}.items():
        before, after = m.before[t], m.after[t]
        assert torch.equal(after[:n_old], before[:n_old])
        norms = after[:n_seen].norm(dim=1)
        torch.testing.assert_close(norms[:n_old].mean(), norms[n_old:n_seen].mean())
        gamma = r.result.reports[t]["gamma"][t]
        assert gamma != pytest.approx(1.0, abs=1e-3)
        torch.testing.assert_close(after[n_old:n_seen], before[n_old:n_seen] * gamma)
    assert r.result.reports[0] == {"gamma": [None]} and len(r.result.reports[2]["gamma"]) == 3
    # the extra matrix: the head before the last alignment
    x = r.stream.tasks[2].x_test
    with torch.no_grad():
        expected = F.linear(m.model.features(x), m.before[2])
        torch.testing.assert_close(m.extra_predictions()["unaligned"](x, None), expected)
    assert set(r.result.extra_matrices) == {"unaligned"}
    assert METHODS["wa"] is WA


def test_wa_clips_head_weights_to_non_negative_and_not_without_clip(tiny_root):
    clipped = cl.run("split-mnist", "wa", root=tiny_root, args={"budget": 30}, **SMALL)
    assert clipped.model.head.weight.min() >= 0
    free = cl.run("split-mnist", "wa", root=tiny_root, args={"budget": 30, "clip": False}, **SMALL)
    assert free.model.head.weight.min() < 0


def test_wa_single_head_aligns_only_the_seen_rows(tiny_root):
    r = cl.run("split-mnist", WatchesItsHead, root=tiny_root, args={"budget": 30}, head="single",
               **{**SMALL, "n_tasks": 4})
    m = r.method
    assert isinstance(m.model.head, SingleHead) and m.model.head.bias is None
    assert m.model.head.weight.shape[0] == 8
    for t, (n_old, n_seen) in {1: (2, 4), 2: (4, 6)}.items():
        before, after = m.before[t], m.after[t]
        assert torch.equal(after[n_seen:], before[n_seen:])       # unseen units untouched
        assert after[n_seen:].min() < 0                             # and not clipped either
        norms = after[:n_seen].norm(dim=1)
        torch.testing.assert_close(norms[:n_old].mean(), norms[n_old:n_seen].mean())
        expected = before[:n_old].norm(dim=1).mean() / before[n_old:n_seen].norm(dim=1).mean()
        assert r.result.reports[t]["gamma"][t] == pytest.approx(expected.item(), rel=1e-5)


def test_wa_bias_and_align_arguments(tiny_root):
    r = cl.run("split-mnist", WatchesItsHead, root=tiny_root,
               args={"budget": 30, "bias": True, "align": False}, **SMALL)
    assert r.model.head.bias is not None
    assert all(torch.equal(r.method.before[t], r.method.after[t]) for t in range(3))
    assert r.result.reports[2]["gamma"][2] is not None  # the γ WA would have applied
    assert r.result.extra_matrices["unaligned"] == r.result.accuracy_matrix
