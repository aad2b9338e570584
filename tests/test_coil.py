"""COIL (lesson 08): the cosine head, the prospective rows, the retrospective term's gradient on every
incremental task (and the released code's collapse, caught), σ's learning rate, resume after a kill."""
import pytest
import torch

import clcourse as cl
from clcourse.methods import COIL, METHODS
from clcourse.models import CosineHead, GrowingHead
from resume import killed_and_resumed

FIVE = dict(profile="smoke", scenario="class", epochs=2, save=False)


def test_cosine_head_is_sigma_times_cosine_and_grows():
    head = CosineHead(4, 3)
    with torch.no_grad():
        head.sigma.fill_(5.0)
    h = torch.randn(6, 4)
    cos = torch.nn.functional.cosine_similarity(h[:, None], head.weight[None], dim=2)
    torch.testing.assert_close(head(h), 5 * cos)
    old = head.weight.detach().clone()
    head.grow(5)
    assert head.weight.shape == (5, 4) and torch.equal(head.weight[:3], old)
    assert head.bias is None
    torch.testing.assert_close(head(h * 8.0), head(h))   # the length of h is gone


class Watched(COIL):
    """Records the head's rows after each prospective step, and the norm of the retrospective
    term's gradient into the backbone at its first step of every task."""

    def before_task(self, task):
        super().before_task(task)
        self.rows = getattr(self, "rows", {})
        self.rows[task.id] = self.model.head.weight.detach().clone()
        self.retro_grad = getattr(self, "retro_grad", {})

    def loss(self, batch, replay=None):
        terms = super().loss(batch, replay)
        if "retro" in terms and self.task.id not in self.retro_grad:
            params = list(self.model.backbone.parameters())
            grads = torch.autograd.grad(terms["retro"], params, retain_graph=True)
            self.retro_grad[self.task.id] = sum(g.norm() ** 2 for g in grads).sqrt().item()
            self.retro_mass = {**getattr(self, "retro_mass", {}), self.task.id: self.retro_plan.sum().item()}
        return terms


def test_prospective_rows_have_the_old_rows_mean_norm(tiny_root):
    run = cl.run("split-mnist", Watched, root=tiny_root, **FIVE)
    method = run.method
    for t in range(1, 5):
        rows, n_old = method.rows[t], 2 * t
        old_norm, new_norm = rows[:n_old].norm(dim=1).mean(), rows[n_old:n_old + 2].norm(dim=1).mean()
        torch.testing.assert_close(new_norm, old_norm)
        plan = torch.tensor(run.result.reports[t]["plan"])
        assert plan.shape == (n_old, 2)
        torch.testing.assert_close(plan.sum(0), torch.full((2,), 0.5), atol=1e-5, rtol=0)
        torch.testing.assert_close(plan.sum(1), torch.full((n_old,), 1 / n_old), atol=1e-5, rtol=0)
    assert run.result.reports[0]["plan"] is None


def test_retrospective_term_reaches_the_backbone_on_every_incremental_task(tiny_root):
    balanced = cl.run("split-mnist", Watched, root=tiny_root, **FIVE).method
    assert sorted(balanced.retro_grad) == [1, 2, 3, 4]
    assert all(g > 0 for g in balanced.retro_grad.values())
    assert all(m == pytest.approx(1.0) for m in balanced.retro_mass.values())
    # The released code's marginals (1/n_old on both sides, total masses n_new/n_old and 1): no plan
    # exists; the scalings overflow from 6 old classes on (task 4), which gets a non-converged plan,
    # and on task 5 (8 old classes) the plan is all zeros, and so is the term's gradient.
    with pytest.warns(RuntimeWarning, match="overflowed"):
        code = cl.run("split-mnist", Watched, root=tiny_root, args=dict(marginals="code"),
                      **FIVE).method
    assert code.retro_grad[1] > 0 and code.retro_grad[2] > 0
    assert code.retro_mass[1] == pytest.approx(1.0) and code.retro_mass[2] == pytest.approx(0.5)
    assert code.retro_mass[3] < 1 / 3 - 0.01
    assert code.retro_mass[4] == 0 and code.retro_grad[4] == 0


def test_sigma_trains_at_its_own_learning_rate_and_linear_head_has_none(tiny_root):
    run = cl.run("split-mnist", "coil", root=tiny_root, n_tasks=2, **{**FIVE, "scenario": "class"})
    head = run.method.model.head
    assert isinstance(head, CosineHead)
    groups = run.method.configure_optimizer().param_groups
    assert [g["lr"] for g in groups] == [run.settings.lr, 0.1] and groups[1]["params"] == [head.sigma]
    assert head.sigma.item() > 1.05   # moved at 0.1 per Adam step, not 1e-3
    linear = cl.run("split-mnist", "coil", root=tiny_root, n_tasks=2, args=dict(head="linear"), **FIVE)
    assert type(linear.method.model.head) is GrowingHead
    assert len(linear.method.configure_optimizer().param_groups) == 1


def test_paper_profiles_single_layer_becomes_a_full_cosine_head(tiny_root):
    run = cl.run("split-mnist", "coil", root=tiny_root, profile="smoke", scenario="class",
                 head="single", n_tasks=2, keep_optimizer=True, save=False)
    head = run.method.model.head
    assert isinstance(head, CosineHead) and head.weight.shape[0] == 4   # every unit of 2 tasks
    assert len(run.result.accuracy_matrix) == 2


def test_coil_refuses_other_scenarios_and_bad_arguments(tiny_root):
    with pytest.raises(ValueError, match="class-incremental"):
        cl.run("split-mnist", "coil", root=tiny_root, profile="smoke", scenario="task", save=False)
    with pytest.raises(ValueError, match="marginals"):
        cl.run("split-mnist", "coil", root=tiny_root, args=dict(marginals="half"), **FIVE)
    assert METHODS["coil"] is COIL


@pytest.mark.parametrize("args", [{}, dict(head="linear", prospective=False)])
def test_resume_after_a_kill_gives_identical_matrices(args, tiny_root, tmp_path):
    full, resumed = killed_and_resumed(COIL, tiny_root, tmp_path, args=args, n_tasks=3,
                                       scenario="class", epochs=3)
    assert resumed.result.accuracy_matrix == full.result.accuracy_matrix
    assert resumed.result.reports == full.result.reports
    assert torch.equal(resumed.method.model.head.weight, full.method.model.head.weight)


def test_cli_runs_coil(tiny_root, tmp_path):
    from clcourse.cli import main
    assert main(["run", "--benchmark", "split-mnist", "--method", "coil", "--profile", "smoke",
                 "--scenario", "class", "--tasks", "2", "--data", str(tiny_root),
                 "--out", str(tmp_path / "run"), "--arg", "retro_every=5"]) == 0
    assert (tmp_path / "run" / "result.json").exists()
