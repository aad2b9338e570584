"""The method API, proved piece by piece with the toy methods of tests/toy_methods.py: extra stages on
the shared loop, replay, what the optimiser trains, per-group learning rates, frozen parts, networks
that grow, task ids at prediction, arguments, combined methods, named loss terms, extra matrices."""
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import clcourse as cl
import toy_methods as toy
from clcourse import engine, loop
from clcourse.cli import main
from clcourse.data.scenarios import TensorSet
from clcourse.experiment import build

SMOKE = dict(profile="smoke", save=False)


def built(cls, root, benchmark="permuted-mnist", **kw):
    s = cl.make_settings(benchmark, "smoke", **kw)
    return build(s, root, "cpu", method=cls)


# --- extra stages ------------------------------------------------------------------------------
def test_a_second_stage_changes_only_what_its_optimizer_holds(tiny_root):
    stream, scen, method, device = built(toy.SecondStage, tiny_root, n_tasks=2)
    engine.fit(method, stream, scen, method.settings, device)
    after = method.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in method.before_stage.items())  # network untouched
    assert method.offset.abs().sum() > 0                                            # offset learnt
    assert len(method.stage_curves["stage"]) == 10  # the stage ran its 10 steps on the shared loop


def test_a_second_stage_resumes_identically_after_a_kill(tiny_root, tmp_path):
    kw = dict(profile="smoke", root=tiny_root, n_tasks=3)
    full = cl.run("permuted-mnist", toy.SecondStage, out=tmp_path / "full", **kw).result
    stream, scen, method, device = built(toy.SecondStage, tiny_root, n_tasks=3)
    method.kill_in_stage_of = 1  # dies in task 2's second stage, after task 1's checkpoint
    with pytest.raises(toy.Killed):
        engine.fit(method, stream, scen, method.settings, device,
                   checkpoint=tmp_path / "killed" / "checkpoint.pt")
    resumed = cl.run("permuted-mnist", toy.SecondStage, out=tmp_path / "killed", resume=True,
                     **kw).result
    assert resumed.accuracy_matrix == full.accuracy_matrix


def test_each_stage_has_its_own_reproducible_generator(tiny_root):
    _, _, method, _ = built(toy.SecondStage, tiny_root, n_tasks=2)
    method.task = method.stream.tasks[1]
    draw = lambda stage: torch.randint(10**9, (3,), generator=method.rng(method.task, stage))  # noqa
    assert torch.equal(draw("offset"), draw("offset"))
    assert not torch.equal(draw("offset"), draw("other"))


# --- replay --------------------------------------------------------------------------------------
def test_replayed_examples_are_masked_by_the_scenario_and_reach_every_step(tiny_root):
    stream, scen, method, device = built(toy.Replays, tiny_root, benchmark="split-mnist",
                                         scenario="task", n_tasks=3)
    result = engine.fit(method, stream, scen, method.settings, device)
    steps = engine.steps_per_task(method.settings, len(scen.train_set(stream.tasks[1])))[0]
    by_task = [[r for t, r in method.seen if t == k] for k in range(3)]
    assert all(r is None for r in by_task[0])                      # nothing to replay yet
    assert len(by_task[1]) == steps and all(r is not None for r in by_task[1])
    for t in (1, 2):
        for replay in by_task[t]:  # task-IL: a replayed example of task j is scored on head j
            expected = torch.stack([scen.active(t, j) for j in replay.t.tolist()])
            assert torch.equal(replay.mask, expected)
            assert set(replay.t.tolist()) <= set(range(t))    # examples of earlier tasks
    assert set(result.loss_terms[1]) == {"ce", "replay", "total"}


def test_replayed_images_are_augmented_like_the_current_ones():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float).view(2, 3, 8, 8)
    data = TensorSet(x, torch.zeros(2, dtype=torch.long), torch.zeros(2, dtype=torch.long))
    seen, w = [], torch.zeros(1, requires_grad=True)

    def loss(batch, replay):
        seen.append((batch.x.clone(), replay.x.clone()))
        return (w * batch.x.mean() + w * replay.x.mean()).pow(2)

    loop.run_steps(data, loss, torch.optim.SGD([w], lr=0.1), steps=20, batch_size=2,
                   generator=torch.Generator().manual_seed(0), replay=lambda n, g: data,
                   augment=True)
    assert any(not torch.equal(r, x) for _, r in seen)            # replayed images were cropped
    assert any(not torch.equal(b, r) for b, r in seen)            # with their own random draws


# --- what the optimiser trains ---------------------------------------------------------------------
def test_an_extra_module_keeps_one_adam_state_across_tasks(tiny_root):
    stream, scen, method, device = built(toy.ExtraModule, tiny_root, n_tasks=3,
                                         keep_optimizer=True, head="single")
    engine.fit(method, stream, scen, method.settings, device)
    assert method.built == 1                                   # never rebuilt
    held = {id(p) for g in method.optimizer.param_groups for p in g["params"]}
    assert all(id(p) in held for p in method.decoder.parameters())
    steps = sum(engine.steps_per_task(method.settings, len(scen.train_set(t)))[0]
                for t in stream.tasks)
    assert method.optimizer.state[method.decoder.weight]["step"].item() == steps


def test_a_parameter_group_at_its_own_learning_rate_keeps_it(tiny_root):
    stream, scen, method, device = built(toy.OwnLearningRates, tiny_root, n_tasks=2,
                                         keep_optimizer=True, head="single")
    head_before = method.model.head.weight.detach().clone()
    engine.fit(method, stream, scen, method.settings, device)
    assert [g["lr"] for g in method.optimizer.param_groups] == [method.settings.lr, 0.0]
    assert torch.equal(method.model.head.weight, head_before)   # lr 0: the head never moved


# --- frozen parts and networks that grow ------------------------------------------------------------
def test_a_frozen_subnetwork_is_bit_identical_after_training(tiny_root):
    stream, scen, method, device = built(toy.FrozenBackbone, tiny_root, n_tasks=2)
    frozen = method.model.backbone
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    head = method.model.head.weight.detach().clone()
    engine.fit(method, stream, scen, method.settings, device)
    assert any("running_mean" in k for k in before)
    assert all(torch.equal(frozen.state_dict()[k], v) for k, v in before.items())
    assert not torch.equal(method.model.head.weight, head)       # the rest did train
    method.model.train()
    assert frozen.training and not frozen.module.training        # train() leaves it in eval
    assert all(not p.requires_grad for p in frozen.parameters())
    assert len(method.parameters()) == 2                          # only the head's weight and bias


def test_a_growing_network_resumes_after_sigkill_with_the_identical_matrix(tiny_root, tmp_path):
    script = Path(toy.__file__)
    out = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(tiny_root), str(out)],
                            stdout=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while not (out / "checkpoint.pt").exists() and time.time() < deadline \
                and proc.poll() is None:
            time.sleep(0.02)
        assert (out / "checkpoint.pt").exists(), "the run never wrote a checkpoint"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert torch.load(out / "checkpoint.pt", weights_only=True)["completed"] < 3
    resumed = subprocess.run([sys.executable, str(script), str(tiny_root), str(out), "--resume"],
                             capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    full = cl.run("permuted-mnist", toy.Grows, root=tiny_root, n_tasks=3, epochs=150,
                  **SMOKE)
    assert len(full.model.branches) == 3
    saved = json.loads((out / "result.json").read_text())
    assert saved["accuracy_matrix"] == full.result.accuracy_matrix


# --- prediction and evaluation -------------------------------------------------------------------
def test_predict_sees_the_examples_task_ids(tiny_root):
    stream, scen, method, device = built(toy.SeesTaskIds, tiny_root, benchmark="split-mnist",
                                         scenario="task", n_tasks=3)
    engine.fit(method, stream, scen, method.settings, device)
    last_eval = torch.cat(method.seen_ids[-3:])  # the final row: every task's test set in order
    expected = torch.cat([scen.test_set(t).t for t in stream.tasks])
    assert torch.equal(last_eval, expected) and set(expected.tolist()) == {0, 1, 2}


def test_extra_predictors_fill_their_own_matrix_in_result_json(tiny_root, tmp_path, capsys):
    exp = cl.run("split-mnist", toy.ExtraPredictor, scenario="class", profile="smoke",
                 root=tiny_root, out=tmp_path, n_tasks=2)
    extra = json.loads((tmp_path / "result.json").read_text())["extra_matrices"]["first-unit"]
    assert [len(r) for r in extra] == [2, 2]
    assert extra[1][1] == 0.0 and extra[0][0] == pytest.approx(0.5, abs=0.1)  # unit 0 of a pair
    assert "first-unit" in exp.result.table()


# --- arguments -----------------------------------------------------------------------------------
def test_arguments_resolve_into_the_settings_and_result(tiny_root, tmp_path):
    exp = cl.run("split-mnist", toy.WithArguments, scenario="task", profile="smoke",
                 root=tiny_root, out=tmp_path, n_tasks=1, args=dict(lam=3))
    assert exp.settings.method_args == {"lam": 3.0, "kind": "per-task"}
    assert exp.method.args == {"lam": 3.0, "kind": "per-task"}
    saved = json.loads((tmp_path / "result.json").read_text())["config"]["method_args"]
    assert saved == {"lam": 3.0, "kind": "per-task"}
    exp = cl.run("split-mnist", toy.WithArguments, scenario="domain", root=tiny_root,
                 n_tasks=1, **SMOKE)
    assert exp.settings.method_args["kind"] == "shared"  # the default depends on the scenario


def test_an_unknown_or_ill_typed_argument_is_one_clear_error(tiny_root):
    with pytest.raises(ValueError, match=r"no argument 'lamda'; valid arguments: xdg, lam, kind"):
        cl.run("split-mnist", toy.WithArguments, root=tiny_root, args=dict(lamda=1), **SMOKE)
    with pytest.raises(ValueError, match="lam must be a float"):
        cl.run("split-mnist", toy.WithArguments, root=tiny_root, args=dict(lam="big"), **SMOKE)


def test_method_name_and_arguments_are_checked_before_any_data_is_loaded(tmp_path):
    empty = tmp_path / "no-data-here"
    with pytest.raises(ValueError, match="unknown method .ewk.; valid methods: finetune, joint, (l2, )?ewc"):
        cl.run("split-mnist", "ewk", root=empty, **SMOKE)
    with pytest.raises(ValueError, match="valid arguments: xdg$"):
        cl.run("split-mnist", "finetune", root=empty, args=dict(lam=1), **SMOKE)


def test_cli_finetune_with_an_argument_exits_2_with_a_clear_message(tiny_root, capsys):
    code = main(["run", "--benchmark", "split-mnist", "--profile", "smoke", "--data",
                 str(tiny_root), "--arg", "lam=1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "method 'finetune' has no argument 'lam'; valid arguments: xdg" in err
    assert len(err.strip().splitlines()) == 1


def test_cli_arg_values_are_python_literals_or_strings():
    from clcourse.cli import parse_arg
    assert parse_arg("lam=1e4") == ("lam", 1e4)
    assert parse_arg("online=True") == ("online", True)
    assert parse_arg("kind=exact") == ("kind", "exact")
    with pytest.raises(Exception, match="key=value"):
        parse_arg("lam")


def test_clcourse_methods_lists_every_method_with_its_arguments(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "\nfinetune: Fine-tuning" in out and "\njoint: Joint training" in out
    assert out.count("(no arguments)") == 2                   # finetune, joint: only the shared xdg
    assert out.startswith("every method:\n    xdg = 0\n") and out.count("xdg = ") == 1


# --- combined methods and named terms -------------------------------------------------------------
def test_a_combined_method_applies_both_parents_terms(tiny_root):
    exp = cl.run("permuted-mnist", toy.BothPenalties, root=tiny_root, n_tasks=2, **SMOKE)
    terms = exp.result.loss_terms
    assert set(terms[0]) == {"ce", "a", "b", "total"}
    assert exp.settings.method_args == {"a": 0.5, "b": 0.25}
    for task in terms:  # the total is the sum of the named terms, logged side by side
        for i, total in enumerate(task["total"]):
            assert total == pytest.approx(task["ce"][i] + task["a"][i] + task["b"][i], rel=1e-5)
    assert exp.result.history[0] == terms[0]["total"]


def test_named_loss_terms_appear_in_the_history(tiny_root, tmp_path):
    cl.run("permuted-mnist", toy.PenaltyA, profile="smoke", root=tiny_root, out=tmp_path,
           n_tasks=2)
    saved = json.loads((tmp_path / "result.json").read_text())
    assert [set(t) for t in saved["loss_terms"]] == [{"ce", "a", "total"}] * 2
    assert all(v > 0 for v in saved["loss_terms"][0]["a"])


# --- timings and checkpoints -----------------------------------------------------------------------
def test_work_after_a_task_is_timed_on_its_own(tiny_root):
    exp = cl.run("permuted-mnist", toy.SecondStage, root=tiny_root, n_tasks=2, **SMOKE)
    t = exp.result.timings
    assert len(t["after_task"]) == 2 and all(v > 0 for v in t["after_task"])
    assert t["total"] == pytest.approx(sum(t["train"]) + sum(t["after_task"]) + sum(t["eval"]))


def test_a_checkpoint_that_would_run_code_is_refused(tiny_root, tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("this ran on load",))
    torch.save({"completed": 1, "settings": {}, "payload": Evil()}, tmp_path / "checkpoint.pt")
    with pytest.raises(ValueError, match="not a readable clcourse checkpoint"):
        cl.run("permuted-mnist", root=tiny_root, out=tmp_path, **dict(SMOKE, save=True))
