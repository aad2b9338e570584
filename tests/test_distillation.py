"""The distillation loss (lesson 03) against its closed forms, and LwF: its teacher, its units, resume."""
import copy
import dataclasses

import pytest
import torch
import torch.nn.functional as F

import clcourse as cl
from clcourse import engine
from clcourse.data.scenarios import Scenario
from clcourse.data.streams import Stream, Task
from clcourse.experiment import build
from clcourse.losses import (distillation, distillation_gradient, hard_and_soft, lwf_loss, mix_current_replay,
                             tempered_softmax)
from clcourse.methods import Finetune, LwF
from resume import killed_and_resumed


def logits(*shape, scale=3.0, seed=0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


@pytest.mark.parametrize("T", [1.0, 2.0, 5.0, 20.0])
def test_the_loss_is_T2_times_kl_plus_the_teachers_entropy(T):
    z, v = logits(16, 10), logits(16, 10, seed=1)
    p = torch.softmax(v / T, -1)
    kl = F.kl_div(torch.log_softmax(z / T, -1), p, reduction="batchmean")
    entropy = -(p * p.log()).sum(-1).mean()
    torch.testing.assert_close(distillation(z, v, T), (kl + entropy) * T ** 2)
    torch.testing.assert_close(distillation(z, v, T, t_squared=False), kl + entropy)


@pytest.mark.parametrize("T", [1.0, 2.0, 10.0])
def test_with_T2_the_gradient_per_example_is_T_times_q_minus_p(T):
    z, v = logits(8, 5).requires_grad_(), logits(8, 5, seed=1)
    (grad,) = torch.autograd.grad(distillation(z, v, T) * len(z), z)  # per example: undo the mean
    q, p = torch.exp(z.detach() / T), torch.exp(v / T)  # by hand: no softmax call
    q, p = q / q.sum(1, keepdim=True), p / p.sum(1, keepdim=True)
    torch.testing.assert_close(grad, T * (q - p))
    (plain,) = torch.autograd.grad(distillation(z, v, T, t_squared=False) * len(z), z)
    torch.testing.assert_close(plain, (q - p) / T)  # Hinton et al. 2015, Eq. 2


def test_the_gradient_vanishes_when_the_student_equals_the_teacher():
    v = logits(8, 10)
    z = v.clone().requires_grad_()
    loss = distillation(z, v, 4.0)
    (grad,) = torch.autograd.grad(loss, z)
    assert grad.abs().max() < 1e-12
    assert loss > 0  # ... but the loss itself is the teacher's entropy (× T²), not zero


def test_at_high_temperature_the_unscaled_gradient_shrinks_as_one_over_T_squared():
    z, v = logits(8, 10, scale=1.0), logits(8, 10, seed=1, scale=1.0)
    z, v = z - z.mean(1, keepdim=True), v - v.mean(1, keepdim=True)  # zero-mean logits (Eq. 4)
    errors = []
    for T in (50.0, 100.0, 200.0):
        zz = z.clone().requires_grad_()
        (grad,) = torch.autograd.grad(distillation(zz, v, T, t_squared=False) * len(z), zz)
        limit = (z - v) / 10  # T² · gradient → (z − v) / N as T → ∞ (N = 10 classes)
        errors.append(float((T ** 2 * grad - limit).abs().max() / limit.abs().max()))
    assert errors[0] < 0.05 and errors[1] < errors[0] / 1.8 and errors[2] < errors[1] / 1.8, errors


def test_stable_for_logits_of_magnitude_1e4():
    z = logits(4, 10, scale=1e4).float().requires_grad_()
    v = logits(4, 10, seed=1, scale=1e4).float()
    loss = distillation(z, v, 2.0)
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(loss) and torch.isfinite(grad).all()
    exact = distillation(z.detach().double(), v.double(), 2.0)
    torch.testing.assert_close(loss.double(), exact, rtol=1e-5, atol=1e-3)
    assert torch.isfinite(tempered_softmax(z.detach(), 0.5)).all()
    with pytest.raises(ValueError, match="temperature must be positive"):
        tempered_softmax(z, 0.0)


def test_units_and_masked_teacher_units_give_zero_targets_and_no_nan():
    z, v = logits(6, 6).requires_grad_(), logits(6, 6, seed=1)
    torch.testing.assert_close(distillation(z, v, 2.0, units=[1, 2]), distillation(z[:, 1:3], v[:, 1:3], 2.0))
    old = v.clone()
    old[:, 4:] = float("-inf")              # class-IL: the teacher never had units 4 and 5
    student = z.masked_fill(torch.tensor([False] * 5 + [True]), float("-inf"))  # unit 5 inactive
    loss = distillation(student, old, 2.0)
    (grad,) = torch.autograd.grad(loss, z)
    assert torch.isfinite(loss) and torch.isfinite(grad).all() and (grad[:, 5] == 0).all()
    assert (grad[:, 4] > 0).all()  # a unit with zero target is pushed down
    with pytest.raises(ValueError, match="same shape"):
        distillation(z, v[:, :3])


@pytest.mark.parametrize("T", [1.0, 2.0, 7.0])
def test_distillation_gradient_is_autograds_per_example_gradient(T):
    z, v = logits(5, 6).requires_grad_(), logits(5, 6, seed=1)
    (grad,) = torch.autograd.grad(distillation(z, v, T, t_squared=False) * len(z), z)
    torch.testing.assert_close(distillation_gradient(z.detach(), v, T), grad)


def test_a_0d_tensor_temperature_keeps_the_students_dtype():
    z, v = logits(4, 5).float(), logits(4, 5, seed=1).float()
    T = torch.tensor(2.0, dtype=torch.float64)
    assert distillation(z, v, T).dtype == torch.float32
    torch.testing.assert_close(distillation(z, v, T), distillation(z, v, 2.0))


def test_hard_and_soft_is_alpha_hard_plus_one_minus_alpha_soft():
    z, v, y = logits(6, 4), logits(6, 4, seed=1), torch.tensor([0, 3, 1, 1, 2, 0])
    hard, soft = F.cross_entropy(z, y), distillation(z, v, 5.0)
    torch.testing.assert_close(hard_and_soft(z, y, v, 5.0, 1.0), hard)
    torch.testing.assert_close(hard_and_soft(z, y, v, 5.0, 0.0), soft)
    torch.testing.assert_close(hard_and_soft(z, y, v, 5.0, 0.25), 0.25 * hard + 0.75 * soft)


def test_lwf_loss_is_li_and_hoiems_without_T2_and_takes_the_old_units_in_order():
    z, y = logits(6, 7), torch.tensor([1, 4, 4, 6, 1, 3])
    old = torch.tensor([5, 0, 2])  # unsorted: teacher column j is unit old[j]
    v = logits(6, 3, seed=1)
    ce = F.cross_entropy(z, y)
    p, log_q = torch.softmax(v / 2, -1), torch.log_softmax(z[:, [5, 0, 2]] / 2, -1)
    paper = ce + 1.5 * -(p * log_q).sum(-1).mean()
    torch.testing.assert_close(lwf_loss(z, y, v, old, 2.0, 1.5), paper)
    torch.testing.assert_close(lwf_loss(z, y, v, old, 2.0, 1.5, t_squared=True), ce + 4 * (paper - ce))


def test_mix_current_replay_weighs_every_task_equally():
    cur, rep = torch.tensor(3.0), torch.tensor(5.0)
    assert mix_current_replay(cur, rep, 1) == (3.0, 0.0)
    assert mix_current_replay(cur, rep, 4) == (0.75, 3.75)
    with pytest.raises(ValueError):
        mix_current_replay(cur, rep, 0)


# --- LwF ------------------------------------------------------------------------------------------
def shared_input_stream(n=600, d=10, seed=0):
    """Two task-IL tasks on the SAME inputs with unrelated labelling rules: LwF's ideal case, since
    the teacher's outputs on task 2's images are outputs on task 1's distribution too."""
    g = torch.Generator().manual_seed(seed)
    tasks = []
    for k in range(2):
        w = torch.randn(d, 2, generator=g)

        def draw(m):
            x = torch.randn(m, d, generator=g)
            return x.view(m, 1, 1, d), (x @ w).argmax(1) + 2 * k
        (xtr, ytr), (xte, yte) = draw(n), draw(n // 2)
        tasks.append(Task(k, f"rule {k + 1}", [2 * k, 2 * k + 1], xtr, ytr, xte, yte))
    return Stream("shared", tasks, (1, 1, d))


class RecordsTheTeacher(LwF):
    """LwF that keeps the weights it had at the end of each task and the teacher after each task."""

    def after_task(self, task):
        super().after_task(task)
        self.ends = getattr(self, "ends", []) + [copy.deepcopy(self.model.state_dict())]
        self.teachers = getattr(self, "teachers", []) + [
            None if self.teacher is None else copy.deepcopy(self.teacher.module.state_dict())]


class AliasedTeacher(RecordsTheTeacher):
    """A plausible bug: the 'teacher' is the live network, so it moves while the student trains."""

    def before_task(self, task):
        super().before_task(task)
        if self.teacher is not None:
            self.teacher.module = self.model


def run_shared(cls, args=None, epochs=80):
    s = cl.make_settings("permuted-mnist", "smoke", n_tasks=2, hidden=(6,), epochs=epochs,
                         batch_size=32, lr=1e-2, method=cls.name, scenario="task")
    s = dataclasses.replace(s, method_args=cls.resolve_args(s, args or {}))
    cl.set_seed(0)
    stream = shared_input_stream()
    scenario = Scenario("task", stream)
    method = cls(cls.make_model(s, stream.input_shape, scenario), scenario, s, stream)
    result = engine.fit(method, stream, scenario, s, torch.device("cpu"), progress=False)
    return method, result.accuracy_matrix


def teacher_is_last_tasks_network(method) -> bool:
    got, want = method.teachers[1], method.ends[0]
    return all(torch.equal(got[k], want[k]) for k in want)


def test_the_teacher_is_the_network_as_the_previous_task_left_it():
    method, _ = run_shared(RecordsTheTeacher, epochs=5)
    assert method.teachers[0] is None
    assert teacher_is_last_tasks_network(method)
    assert not all(torch.equal(method.ends[0][k], method.ends[1][k]) for k in method.ends[0])
    buggy, _ = run_shared(AliasedTeacher, epochs=5)  # the test catches a teacher that trains
    assert not teacher_is_last_tasks_network(buggy)


def test_lwf_keeps_the_old_task_better_than_finetuning_in_task_il():
    _, ft = run_shared(Finetune)
    _, lwf = run_shared(LwF)
    assert ft[0][0] > 0.9 and ft[1][1] > 0.9
    assert ft[1][0] < 0.85 and lwf[1][0] > ft[1][0] + 0.1, (ft, lwf)  # measured: 0.77 vs 0.98
    assert lwf[1][1] > 0.85


def test_warm_up_trains_only_the_head_on_the_new_units(tiny_root):
    s = cl.make_settings("split-mnist", "smoke", n_tasks=2, scenario="class",
                         method_args={"warmup": 5})
    stream, scen, method, device = build(s, tiny_root, "cpu", method=LwF)
    method.model.ensure_outputs(scen.units_seen(1))  # what the engine does before each task
    method.before_task(stream.tasks[0])
    body = copy.deepcopy(method.model.backbone.state_dict())
    head = copy.deepcopy(method.model.head.state_dict())
    method.before_task(stream.tasks[1])  # teacher, then 5 warm-up steps
    assert all(torch.equal(body[k], v) for k, v in method.model.backbone.state_dict().items())
    w, w0 = method.model.head.weight, head["weight"]
    assert torch.equal(w[:2], w0[:2]) and not torch.equal(w[2:4], w0[2:4])  # old units untouched


@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
def test_resume_after_a_kill_gives_the_identical_matrix(tiny_root, tmp_path, scenario):
    full, resumed = killed_and_resumed(LwF, tiny_root, tmp_path, args={"warmup": 2}, n_tasks=3,
                                       scenario=scenario, epochs=3)
    full, resumed = full.result, resumed.result
    assert resumed.accuracy_matrix == full.accuracy_matrix
    assert set(resumed.loss_terms[2]) == {"ce", "kd", "total"}
