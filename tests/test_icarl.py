"""iCaRL (lesson 04): its BCE targets, that the exemplars really are trained on, NME as its classifier,
and resume after a kill with the memory restored."""
import pytest
import torch

import clcourse as cl
from clcourse import engine
from clcourse.experiment import build
from clcourse.methods import ICaRL
from clcourse.methods.icarl import icarl_targets
from resume import killed_and_resumed


def test_targets_are_one_hot_for_new_units_and_old_sigmoids_for_old_units():
    labels = torch.tensor([2, 3, 0])
    old = torch.tensor([[0.0, 2.0], [-4.0, 0.5], [1.0, -1.0]])
    targets = icarl_targets(labels, 4, old, T=2.0)
    assert targets.shape == (3, 4)
    torch.testing.assert_close(targets[:, :2], torch.sigmoid(old / 2))
    torch.testing.assert_close(targets[:, 2:], torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]]))
    # an old-class exemplar's own label does not override the teacher: its target is σ(z*/T) too
    assert targets[2, 0] == torch.sigmoid(torch.tensor(0.5))
    torch.testing.assert_close(icarl_targets(labels, 4, None), torch.eye(4)[labels])


class SeesItsBatches(ICaRL):
    """Records the labels of every mini-batch it trains on."""

    def loss(self, batch, replay=None):
        self.seen = getattr(self, "seen", {})
        self.seen.setdefault(self.task.id, []).append(batch.y.clone())
        return super().loss(batch, replay)


class ForgetsItsExemplars(SeesItsBatches):
    """The classic bug: exemplars are stored but never trained on."""

    def train_set(self, task):
        return self.scenario.train_set(task)


def labels_seen(cls, root):
    s = cl.make_settings("split-mnist", "smoke", n_tasks=3, scenario="class", epochs=2,
                         method_args={"budget": 20})
    stream, scen, method, device = build(s, root, "cpu", method=cls)
    engine.fit(method, stream, scen, method.settings, device, progress=False)
    return method, {t: torch.cat(v) for t, v in method.seen.items()}


def test_the_exemplars_enter_training_after_the_first_task(tiny_root):
    method, seen = labels_seen(SeesItsBatches, tiny_root)
    assert set(seen[0].unique().tolist()) == {0, 1}
    assert {0, 1} <= set(seen[1].unique().tolist())       # task 2 trains on old classes' exemplars
    assert {0, 1, 2, 3} <= set(seen[2].unique().tolist())
    assert int((seen[1] < 2).sum()) == 2 * 20   # all 20 exemplars (10 per class), once per epoch, 2 epochs
    assert method.memory.counts() == {u: 20 // 6 for u in range(6)}
    _, buggy = labels_seen(ForgetsItsExemplars, tiny_root)  # the test catches the classic bug
    assert not {0, 1} & set(buggy[1].unique().tolist())


def test_the_main_matrix_is_nme_and_the_linear_head_is_extra(tiny_root):
    r = cl.run("split-mnist", ICaRL, profile="smoke", root=tiny_root, n_tasks=2, scenario="class",
               epochs=3, args={"budget": 20}, save=False)
    assert set(r.result.extra_matrices) == {"linear"}
    assert r.method.means.shape[0] == r.scenario.n_outputs
    x = r.stream.tasks[0].x_test[:5]
    from clcourse.memory import nme_logits
    with torch.no_grad():
        torch.testing.assert_close(r.method.predict(x, None), nme_logits(r.model.features(x), r.method.means))


def test_icarl_refuses_other_scenarios_and_bad_budgets(tiny_root):
    with pytest.raises(ValueError, match="class-incremental"):
        cl.run("split-mnist", "icarl", profile="smoke", root=tiny_root, scenario="task", save=False)
    with pytest.raises(ValueError, match="budget"):
        cl.run("split-mnist", "icarl", profile="smoke", root=tiny_root, scenario="class",
               args={"budget": 0}, save=False)
    with pytest.raises(ValueError, match="cannot keep one of each of the stream's 10 classes"):
        cl.run("split-mnist", "icarl", profile="smoke", root=tiny_root, scenario="class",
               args={"budget": 9}, save=False)


@pytest.mark.parametrize("variant", ["bce", "ce-kd"])
def test_resume_after_a_kill_restores_the_memory_and_gives_the_identical_matrix(tiny_root, tmp_path,
                                                                               variant):
    full, resumed = killed_and_resumed(ICaRL, tiny_root, tmp_path, n_tasks=3, scenario="class",
                                       epochs=3, args={"budget": 30, "variant": variant})
    assert resumed.result.accuracy_matrix == full.result.accuracy_matrix
    assert resumed.result.extra_matrices == full.result.extra_matrices
    for a, b in zip(resumed.method.memory.x.values(), full.method.memory.x.values()):
        assert torch.equal(a, b)
