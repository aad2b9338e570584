"""Brain-inspired replay (van de Ven, Siegelmann & Tolias 2020) and context-dependent gating (XdG, Masse et
al. 2018): the decoder's gates keep the stated fraction and never change, a conditional VAE draws the
class it is asked for, frozen pre-trained conv layers stay bit-identical, replay is labelled by the
previous model, XdG gates by task (and refuses class-IL), runs by name, resume after a kill."""
import copy

import pytest
import torch
import torch.nn.functional as F

import clcourse as cl
from clcourse import engine, pretrain
from clcourse.cli import main
from clcourse.data.scenarios import masked_logits
from clcourse.experiment import build
from clcourse.gating import ContextGate, set_context
from clcourse.methods import BIR, BIRplusSI
from clcourse.models import MLP
from clcourse.vae_model import VAE
from resume import killed_and_resumed


def fit(root, scenario, args=None, n_tasks=3, method=BIR, **kw):
    s = cl.make_settings("split-mnist", "smoke", method_args=args or {}, scenario=scenario,
                         n_tasks=n_tasks, **kw)
    stream, scen, m, device = build(s, root, "cpu", method=method)
    return m, engine.fit(m, stream, scen, m.settings, device, progress=False)


def test_decoder_gates_keep_the_stated_fraction_per_class_and_never_change(tiny_root):
    s = cl.make_settings("split-mnist", "smoke", scenario="class", n_tasks=3)
    stream, scen, m, device = build(s, tiny_root, "cpu", method=BIR)
    gates = m.model.vae.gates
    before = [g.masks.clone() for g in gates]
    assert len(gates) == len(s.hidden) and all(g.masks.shape == (scen.n_outputs, 64) for g in gates)
    assert scen.n_outputs == 6                                             # one gate per class
    assert all((g.masks.sum(1) == round(0.2 * 64)).all() for g in gates)  # gate_prop 0.8 silenced
    assert not torch.equal(gates[0].masks[0], gates[0].masks[1])           # each class its own
    engine.fit(m, stream, scen, m.settings, device, progress=False)
    assert all(torch.equal(g.masks, b) for g, b in zip(gates, before))     # fixed through training
    z = torch.randn(4, m.model.vae.z_dim)
    out = {}
    gates[0].register_forward_hook(lambda mod, i, o: out.__setitem__("h", o))
    a = m.model.vae.decode(z, torch.tensor([3, 3, 3, 3]))
    assert (out["h"][:, ~gates[0].masks[3]] == 0).all()                    # silenced units are zero
    assert torch.equal(a, m.model.vae.decode(z, torch.tensor([3, 3, 3, 3])))  # same class, same gate
    assert not torch.equal(a, m.model.vae.decode(z, torch.tensor([4, 4, 4, 4])))
    with pytest.raises(ValueError, match="gated"):
        m.model.vae.decode(z)


def test_a_conditional_vae_draws_the_class_it_is_asked_for(tiny_root):
    """A VAE with one prior mode per class, trained on three classes, and a classifier trained on the same
    images: samples drawn from mode c are classified as c far above chance (1/3)."""
    torch.manual_seed(0)
    stream = cl.load_stream("split-mnist", "smoke", root=tiny_root, device="cpu", scenario="domain")
    x = torch.cat([t.x_train for t in stream.tasks[:2]])
    y = torch.cat([t.y_train for t in stream.tasks[:2]])
    keep = y < 3
    x, y = x[keep], y[keep]
    vae = VAE(x.shape[1:], (64,), 8, n_modes=3)
    clf = torch.nn.Sequential(MLP(784, (64,)), torch.nn.Linear(64, 3))
    opt = torch.optim.Adam([*vae.parameters(), *clf.parameters()], lr=1e-2)
    g = torch.Generator().manual_seed(0)
    for _ in range(300):
        opt.zero_grad()
        (vae.loss(x, y, g) + F.cross_entropy(clf(x), y)).backward()
        opt.step()
    for c in range(3):
        pred = clf(vae.sample(60, torch.Generator().manual_seed(c), y=c)).argmax(1)
        assert (pred == c).float().mean() > 0.9, c


def test_replay_comes_from_the_previous_model_and_an_old_class(tiny_root):
    m, r = fit(tiny_root, "class")
    rep = m.replay(16, torch.Generator().manual_seed(1))
    assert m.old is not None and all(not p.requires_grad for p in m.old.parameters())
    g = torch.Generator().manual_seed(1)
    y = m.old_units[torch.randint(len(m.old_units), (16,), generator=g)]
    assert set(y.tolist()) <= set(range(4))                  # classes of tasks 1-2 only
    x = m.old.module.vae.sample(16, g, y=y, context=y)
    assert torch.equal(rep.x, x) and (rep.t == 1).all()
    old = masked_logits(m.old.module(rep.x), m.scenario.mask_table(1, "cpu")[rep.t])
    assert torch.equal(rep.soft, old) and torch.equal(rep.y, old.argmax(1))
    assert torch.isinf(rep.soft[:, 4:]).all()                # zero targets on the new classes
    assert {"ce", "replay", "vae"} <= set(r.loss_terms[2]) and "replay" not in r.loss_terms[0]


def test_task_il_replay_is_labelled_on_the_head_of_its_class(tiny_root):
    m, _ = fit(tiny_root, "task")
    rep = m.replay(32, torch.Generator().manual_seed(2))
    assert torch.equal(rep.t, rep.y // 2)                    # each class's own task
    assert torch.isfinite(rep.soft).sum(1).eq(2).all()       # two units: its task's head


def test_without_its_components_bir_has_a_separate_vae_and_hard_labels(tiny_root):
    m, r = fit(tiny_root, "class", dict(rtf=False, conditional=False, gating=False, distill=False))
    assert m.model.encoder is not m.model.vae.encoder and not m.model.vae.gates
    assert m.model.vae.n_modes == 0 and m.replay(4, torch.Generator()).soft is None
    rtf, _ = fit(tiny_root, "class", n_tasks=1)
    assert rtf.model.encoder is rtf.model.vae.encoder        # one network: the classifier encodes


def test_frozen_pretrained_conv_layers_are_bit_identical_after_incremental_training(cifar10_root,
                                                                                     capsys):
    pretrain.pretrain_convs((0, 1, 2, 3), "smoke", root=cifar10_root, device="cpu", progress=False)
    s = cl.make_settings("split-cifar10", "smoke", model="conv5", classes=(4, 5, 6, 7, 8, 9),
                         n_tasks=3, method_args={})
    stream, scen, m, device = build(s, cifar10_root, "cpu", method=BIR)
    assert m.args["internal"] and m.model.vae.likelihood == "gaussian"
    before = copy.deepcopy(m.model.convs.state_dict())
    loaded = pretrain.load_convs((0, 1, 2, 3), "smoke", device="cpu").state_dict()
    assert all(torch.equal(before["module." + k], v) for k, v in loaded.items())
    engine.fit(m, stream, scen, m.settings, device, progress=False)
    after = m.model.convs.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    rep = m.replay(5, torch.Generator())
    assert rep.x.shape == (5, 1024)                          # hidden features, never pixels


def test_bir_without_pretrained_conv_layers_says_which_command_makes_them(cifar10_root):
    with pytest.raises(FileNotFoundError, match="clcourse pretrain"):
        cl.run("split-cifar10", "bir", profile="smoke", model="conv5", classes=(4, 5, 6, 7, 8, 9),
               n_tasks=3, root=cifar10_root, save=False, device="cpu")


@pytest.mark.parametrize("method", ["bir", "bir-si"])
@pytest.mark.parametrize("scenario", ["task", "class"])
def test_bir_runs_by_name(tiny_root, tmp_path, capsys, method, scenario):
    assert main(["run", "--benchmark", "split-mnist", "--method", method, "--scenario", scenario,
                 "--profile", "smoke", "--tasks", "2", "--data", str(tiny_root),
                 "--out", str(tmp_path / "r"), "--no-progress"]) == 0
    assert "method arguments" in capsys.readouterr().out


@pytest.mark.parametrize("method,args,scenario", [
    (BIR, None, "class"), (BIRplusSI, None, "task"),
    (BIR, dict(rtf=False, conditional=False), "domain"), (cl.methods.Finetune, dict(xdg=0.5), "task")])
def test_resume_after_a_kill_gives_the_same_run(tiny_root, tmp_path, method, args, scenario):
    full, resumed = killed_and_resumed(method, tiny_root, tmp_path, args=args, scenario=scenario,
                                       n_tasks=3, batch_size=8)
    assert resumed.result.accuracy_matrix == full.result.accuracy_matrix
    assert resumed.result.loss_terms == full.result.loss_terms


# --- XdG ----------------------------------------------------------------------------------------------
def test_xdg_gates_each_task_on_its_own_fixed_units(tiny_root):
    m, _ = fit(tiny_root, "task", dict(xdg=0.75), method=cl.methods.Finetune)
    gates = [g for g in m.model.modules() if isinstance(g, ContextGate)]
    assert len(gates) == 1 and gates[0].masks.shape == (3, 64)
    assert (gates[0].masks.sum(1) == 16).all()               # 64 - int(0.75 * 64) kept per task
    x = torch.rand(2, 1, 28, 28)
    h = {}
    gates[0].register_forward_hook(lambda mod, i, o: h.__setitem__("h", o))
    m.predict(x, torch.tensor([0, 2]))
    assert (h["h"][0, ~gates[0].masks[0]] == 0).all() and (h["h"][1, ~gates[0].masks[2]] == 0).all()
    # Task 1's data moves no weight into a unit task 1 never uses.
    m.model.zero_grad()
    set_context(m.model, 0)
    m.model(x).sum().backward()
    first = m.model.backbone.net[1]
    assert (first.weight.grad[~gates[0].masks[0]] == 0).all()
    assert m.model.state_dict()["backbone.net.3.masks"].shape == (3, 64)  # saved with the model


def test_xdg_refuses_class_il_and_networks_without_gates(tiny_root):
    with pytest.raises(ValueError, match="class-IL"):
        cl.run("split-mnist", "finetune", scenario="class", profile="smoke", root=tiny_root,
               save=False, args=dict(xdg=0.9))
    with pytest.raises(ValueError, match="no XdG gates"):
        cl.run("split-mnist", "bir", scenario="task", profile="smoke", root=tiny_root, save=False,
               args=dict(xdg=0.9))
    with pytest.raises(ValueError, match=r"\[0.0, 0.99\]"):
        cl.run("split-mnist", "finetune", scenario="task", profile="smoke", root=tiny_root,
               save=False, args=dict(xdg=1.0))
