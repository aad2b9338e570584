"""The training loop: batching, determinism, resume after a kill, learning on tiny data."""
import json

import pytest
import torch

import clcourse as cl
from clcourse import engine, loop
from clcourse.experiment import build
from clcourse.methods.finetune import Finetune


def test_batches_cover_every_index_once_per_epoch():
    g = torch.Generator().manual_seed(0)
    got = list(loop.batches(10, 4, steps=6, generator=g, device="cpu"))
    assert [len(b) for b in got] == [4, 4, 2, 4, 4, 2]
    assert sorted(torch.cat(got[:3]).tolist()) == list(range(10))
    assert sorted(torch.cat(got[3:]).tolist()) == list(range(10))


def test_iterations_override_epochs():
    s = cl.make_settings("split-mnist", "smoke", iters=7)
    assert engine.steps_per_task(s, 1000) == (7, 16)
    s = cl.make_settings("split-mnist", "smoke", epochs=3, batch_size=100)
    assert engine.steps_per_task(s, 1000) == (30, 10)


def test_augment_is_a_shifted_crop_or_its_mirror():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float).view(2, 3, 8, 8)
    out = loop.augment_batch(x, torch.Generator().manual_seed(1), pad=2)
    assert out.shape == x.shape
    for i in range(2):  # every output image is a window of the padded image, maybe flipped
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        windows = [padded[:, a:a + 8, b:b + 8] for a in range(5) for b in range(5)]
        assert any(torch.equal(out[i], w) or torch.equal(out[i], w.flip(2)) for w in windows)


@pytest.mark.parametrize("scenario", ["task", "domain", "class"])
def test_training_learns_tiny_split_mnist(tiny_root, scenario):
    exp = cl.run("split-mnist", "finetune", scenario=scenario, profile="smoke", root=tiny_root,
                 save=False, epochs=20)
    R = exp.result.accuracy_matrix
    assert len(R) == 5 and all(len(row) == 5 for row in R)
    # Each task's own accuracy right after learning it is well above chance (50% within a pair).
    assert min(R[t][t] for t in range(5)) > 0.8
    if scenario == "class":  # class-IL fine-tuning only knows the last pair at the end
        assert R[4][0] < 0.2


def test_same_seed_gives_identical_matrix_and_other_seed_differs(tiny_root):
    run = lambda seed: cl.run("permuted-mnist", profile="smoke", root=tiny_root, save=False,  # noqa: E731
                              seed=seed, n_tasks=3).result.accuracy_matrix
    a, b, c = run(0), run(0), run(1)
    assert a == b
    assert a != c


class Killed(Exception):
    pass


class DiesMidTask(Finetune):
    """Fine-tuning that 'gets killed' after a few steps of task 2 (index 1)."""
    name = "finetune"
    current = 0

    def before_task(self, task):
        super().before_task(task)
        self.current, self.steps = task.id, 0

    def after_step(self):
        self.steps += 1
        if self.current == 1 and self.steps == 3:
            raise Killed


@pytest.mark.parametrize("scenario", ["domain", "class"])
def test_resume_after_kill_gives_the_uninterrupted_matrix(tiny_root, tmp_path, scenario):
    s = cl.make_settings("permuted-mnist", "smoke", n_tasks=3, scenario=scenario)
    full = cl.run("permuted-mnist", profile="smoke", root=tiny_root, n_tasks=3, scenario=scenario,
                  out=tmp_path / "full").result

    stream, scen, method, device = build(s, tiny_root, "cpu")
    killer = DiesMidTask(method.model, scen, s, stream)
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    with pytest.raises(Killed):
        engine.fit(killer, stream, scen, s, device, checkpoint=ckpt)
    assert torch.load(ckpt, weights_only=True)["completed"] == 1

    resumed = cl.run("permuted-mnist", profile="smoke", root=tiny_root, n_tasks=3,
                     scenario=scenario, out=tmp_path / "killed", resume=True).result
    assert resumed.accuracy_matrix == full.accuracy_matrix
    saved = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert saved["accuracy_matrix"] == full.accuracy_matrix


def test_resume_refuses_a_checkpoint_of_other_settings(tiny_root, tmp_path):
    cl.run("permuted-mnist", profile="smoke", root=tiny_root, out=tmp_path)
    with pytest.raises(ValueError, match="other settings.*epochs"):
        cl.run("permuted-mnist", profile="smoke", root=tiny_root, out=tmp_path, resume=True,
               epochs=2)


def test_joint_trains_on_everything_seen(tiny_root):
    s = cl.make_settings("split-mnist", "smoke", method="joint", scenario="class")
    stream, scen, method, _ = build(s, tiny_root, "cpu")
    sizes = [len(method.train_set(stream.tasks[t])) for t in range(5)]
    assert sizes == [sum(len(stream.tasks[j].y_train) for j in range(t + 1)) for t in range(5)]
    data = method.train_set(stream.tasks[2])
    assert set(data.t.tolist()) == {0, 1, 2}


def test_joint_beats_finetune_in_class_il(tiny_root):
    kw = dict(scenario="class", profile="smoke", root=tiny_root, save=False, epochs=2)
    ft = cl.run("split-mnist", "finetune", **kw).result.metrics["average_accuracy"]
    joint = cl.run("split-mnist", "joint", **kw).result.metrics["average_accuracy"]
    assert joint > ft + 0.3


def test_resume_after_a_real_kill_of_the_process(tiny_root, tmp_path):
    """SIGKILL a `clcourse run` once its first task is checkpointed, then --resume it."""
    import signal
    import subprocess
    import sys
    import time

    args = ["--benchmark", "permuted-mnist", "--profile", "smoke", "--tasks", "3", "--epochs", "150",
            "--data", str(tiny_root), "--no-progress"]
    ckpt = tmp_path / "killed" / "checkpoint.pt"
    proc = subprocess.Popen([sys.executable, "-m", "clcourse", "run", *args, "--out",
                             str(tmp_path / "killed")], stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not ckpt.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert ckpt.exists(), "the run never wrote a checkpoint"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL  # killed, not finished
    assert torch.load(ckpt, weights_only=True)["completed"] < 3
    resumed = subprocess.run([sys.executable, "-m", "clcourse", "run", *args, "--out",
                              str(tmp_path / "killed"), "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    full = cl.run("permuted-mnist", profile="smoke", root=tiny_root, n_tasks=3, epochs=150,
                  save=False).result
    saved = json.loads((tmp_path / "killed" / "result.json").read_text())
    assert saved["accuracy_matrix"] == full.accuracy_matrix


def test_paper_profile_pads_permuted_mnist_to_32(tiny_root):
    exp = cl.run("permuted-mnist", profile="paper", root=tiny_root, save=False, n_tasks=2, iters=3,
                 hidden=(16,))
    assert exp.stream.input_shape == (1, 32, 32)
    assert len(exp.result.history[0]) == 3  # one loss value per step when there are few steps


class RecordsOptimizer(Finetune):
    name = "finetune"

    def configure_optimizer(self):
        self.optimizer = super().configure_optimizer()
        return self.optimizer


def test_milestones_divide_the_learning_rate_by_ten(tiny_root):
    s = cl.make_settings("split-mnist", "smoke", n_tasks=1, epochs=3, optimizer="sgd", lr=0.1,
                         milestones=(1, 2))
    stream, scen, method, device = build(s, tiny_root, "cpu")
    method = RecordsOptimizer(method.model, scen, s, stream)
    engine.fit(method, stream, scen, s, device)
    assert method.optimizer.param_groups[0]["lr"] == pytest.approx(0.001)


def test_lr_decay_sets_the_factor_of_each_milestone(tiny_root):  # iCaRL's CIFAR schedule: ÷5
    s = cl.make_settings("split-mnist", "smoke", n_tasks=1, epochs=3, optimizer="sgd", lr=2.0,
                         milestones=(1, 2), lr_decay=0.2)
    stream, scen, method, device = build(s, tiny_root, "cpu")
    method = RecordsOptimizer(method.model, scen, s, stream)
    engine.fit(method, stream, scen, s, device)
    assert method.optimizer.param_groups[0]["lr"] == pytest.approx(2.0 / 25)
    with pytest.raises(ValueError, match="lr_decay must lie in"):
        cl.make_settings("split-mnist", "smoke", lr_decay=0.0)


def test_an_interrupted_run_is_never_overwritten_without_resume(tiny_root, tmp_path):
    s = cl.make_settings("permuted-mnist", "smoke", n_tasks=3)
    stream, scen, method, device = build(s, tiny_root, "cpu")
    with pytest.raises(Killed):
        engine.fit(DiesMidTask(method.model, scen, s, stream), stream, scen, s, device,
                   checkpoint=tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="interrupted run \\(1 of 3 tasks done\\).*--resume"):
        cl.run("permuted-mnist", profile="smoke", root=tiny_root, n_tasks=3, out=tmp_path)
    # A finished run may be run again (same seed, same numbers): nothing is lost.
    cl.run("permuted-mnist", profile="smoke", root=tiny_root, n_tasks=3, out=tmp_path, resume=True)
    cl.run("permuted-mnist", profile="smoke", root=tiny_root, n_tasks=3, out=tmp_path)


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_resume_with_a_kept_optimizer_gives_the_uninterrupted_matrix(tiny_root, tmp_path, scenario):
    kw = dict(profile="smoke", root=tiny_root, n_tasks=3, scenario=scenario, keep_optimizer=True,
              head="single")
    full = cl.run("permuted-mnist", out=tmp_path / "full", **kw).result
    s = cl.make_settings("permuted-mnist", "smoke", n_tasks=3, scenario=scenario,
                         keep_optimizer=True, head="single")
    stream, scen, method, device = build(s, tiny_root, "cpu")
    with pytest.raises(Killed):
        engine.fit(DiesMidTask(method.model, scen, s, stream), stream, scen, s, device,
                   checkpoint=tmp_path / "killed" / "checkpoint.pt")
    resumed = cl.run("permuted-mnist", out=tmp_path / "killed", resume=True, **kw).result
    assert resumed.accuracy_matrix == full.accuracy_matrix
    fresh = cl.run("permuted-mnist", save=False, **dict(kw, keep_optimizer=False)).result
    assert fresh.accuracy_matrix != full.accuracy_matrix  # the kept Adam state does matter


def test_kept_optimizer_is_rebuilt_when_the_head_grows(tiny_root):
    s = cl.make_settings("split-mnist", "smoke", n_tasks=2, keep_optimizer=True, head="grow")
    stream, scen, method, device = build(s, tiny_root, "cpu")
    opt = method.configure_optimizer()
    assert engine.same_parameters(opt, method.parameters())
    method.model.ensure_outputs(4)
    assert not engine.same_parameters(opt, method.parameters())
