"""Generative replay (Shin et al. 2017; van de Ven, Siegelmann & Tolias 2020's code): replayed inputs come
from the frozen old VAE and are labelled by the frozen old classifier (hard or soft, zero-padded in
class-IL), the 1/t weighting, the VAE trained in the same steps, runs by name, resume after a kill."""
import copy

import pytest
import torch
import torch.nn.functional as F

import clcourse as cl
from clcourse import engine
from clcourse.data.scenarios import masked_logits
from clcourse.experiment import build
from clcourse.losses import distillation
from clcourse.methods import GR, METHODS
from resume import killed_and_resumed


class KeepsEnds(GR):
    """Keeps the classifier's and the VAE's weights as each task left them."""

    def after_task(self, task):
        super().after_task(task)
        self.ends = {**getattr(self, "ends", {}), task.id: (copy.deepcopy(self.model.state_dict()),
                                                            copy.deepcopy(self.vae.state_dict()))}


def fit(root, scenario, args=None, n_tasks=2, cls=KeepsEnds):
    s = cl.make_settings("split-mnist", "smoke", method_args=args or {}, scenario=scenario,
                         n_tasks=n_tasks)
    stream, scen, method, device = build(s, root, "cpu", method=cls)
    return method, engine.fit(method, stream, scen, method.settings, device, progress=False)


def same(a: dict, b: dict) -> bool:
    """Equal state dicts; ``a``'s tensors may be longer (a class-IL head grown before the copy): its
    first rows must equal ``b``'s."""
    return a.keys() == b.keys() and all(torch.equal(a[k][:len(b[k])], b[k]) for k in a)


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_replay_is_sampled_from_the_old_vae_and_labelled_by_the_old_classifier(tiny_root, scenario):
    m, r = fit(tiny_root, scenario, n_tasks=3)
    model_end, vae_end = m.ends[1]                       # as task 2 (id 1) left them
    assert same(m.old_model.module.state_dict(), model_end)   # the copies: bit-identical to them
    assert same(m.old_vae.module.state_dict(), vae_end)       # after the whole of task 3
    assert not same(m.vae.state_dict(), vae_end)              # while the VAE itself trained on
    assert not same(m.model.state_dict(), model_end)
    assert all(not p.requires_grad for p in [*m.old_vae.parameters(), *m.old_model.parameters()])
    rep = m.replay(8, torch.Generator().manual_seed(5))
    x = m.old_vae.module.sample(8, torch.Generator().manual_seed(5))
    tasks = [0, 1] if scenario == "task" else [1]        # task-IL: each sample on every old head
    assert torch.equal(rep.x, x.repeat(len(tasks), 1, 1, 1))
    assert rep.t.tolist() == [j for j in tasks for _ in range(8)] and rep.soft is None
    old = torch.stack([m.scenario.active(1, j) for j in rep.t.tolist()])
    assert torch.equal(rep.y, masked_logits(m.old_model(rep.x), old).argmax(1))
    assert old[torch.arange(len(rep)), rep.y].all()      # a label among the old model's units
    assert {"ce", "vae", "total"} == set(r.loss_terms[0]) and {"ce", "replay", "vae"} <= set(r.loss_terms[2])


def test_soft_targets_are_the_old_logits_zero_padded_on_the_new_classes(tiny_root):
    m, _ = fit(tiny_root, "class", args={"distill": True}, n_tasks=3, cls=GR)
    rep = m.replay(6, torch.Generator().manual_seed(0))
    assert rep.soft.shape == (6, m.scenario.n_outputs) and (rep.t == 1).all()
    new = torch.tensor([u >= m.scenario.offsets[2] for u in range(m.scenario.n_outputs)])
    assert torch.isinf(rep.soft[:, new]).all() and torch.isfinite(rep.soft[:, ~new]).all()
    torch.testing.assert_close(rep.soft[:, ~new], m.old_model(rep.x)[:, ~new])
    masks = m.scenario.mask_table(2, "cpu")
    cur = m.scenario.train_set(m.stream.tasks[2]).batch(torch.arange(5), masks)
    batch = rep.batch(None, masks)
    terms = m.loss(cur, batch)
    student = masked_logits(m.model(batch.x), batch.mask)
    p = torch.softmax(rep.soft / 2.0, 1)
    assert (p[:, new] == 0).all() and torch.allclose(p.sum(1), torch.ones(6))
    torch.testing.assert_close(terms["replay"], (1 - 1 / 3) * distillation(student, rep.soft, 2.0))
    torch.testing.assert_close(terms["ce"],
                               F.cross_entropy(masked_logits(m.model(cur.x), cur.mask), cur.y) / 3)
    m.model.zero_grad(), m.vae.zero_grad()
    terms["vae"].backward(retain_graph=True)             # the VAE's term trains the VAE only
    assert all(p.grad is None for p in m.model.parameters())
    assert all(p.grad is not None for p in m.vae.parameters())
    m.vae.zero_grad(set_to_none=True)
    (terms["ce"] + terms["replay"]).backward()           # and the classifier's terms the classifier
    assert all(p.grad is None for p in m.vae.parameters())


@pytest.mark.parametrize("scenario", ["task", "class"])
def test_gr_runs_by_name_in_task_and_class_il(tiny_root, scenario):
    assert METHODS["gr"] is GR
    r = cl.run("split-mnist", "gr", scenario=scenario, profile="smoke", root=tiny_root, n_tasks=3,
               save=False, progress=False)
    assert len(r.result.accuracy_matrix) == 3
    assert GR.resolve_args(cl.make_settings("split-mnist", "smoke"), {})["hidden"] == (400, 400)


@pytest.mark.parametrize("args", [{}, {"distill": True}])
def test_resume_after_a_kill_in_the_second_task_gives_the_same_run(tiny_root, tmp_path, args):
    full, resumed = killed_and_resumed(GR, tiny_root, tmp_path, args=args, scenario="class",
                                       n_tasks=3, epochs=4)
    assert resumed.result.accuracy_matrix == full.result.accuracy_matrix
    assert resumed.result.loss_terms == full.result.loss_terms
    assert same(resumed.method.vae.state_dict(), full.method.vae.state_dict())
    assert same(resumed.method.old_vae.state_dict(), full.method.old_vae.state_dict())


def test_task_il_soft_targets_cover_each_old_task_head_only(tiny_root):
    m, _ = fit(tiny_root, "task", args={"distill": True}, n_tasks=3, cls=GR)
    rep = m.replay(4, torch.Generator().manual_seed(1))
    heads = torch.stack([m.scenario.active(2, j) for j in rep.t.tolist()])   # the row's own head
    assert rep.t.tolist() == [0] * 4 + [1] * 4 and rep.soft.shape == heads.shape
    assert torch.isfinite(rep.soft[heads]).all() and torch.isinf(rep.soft[~heads]).all()
    assert torch.equal(rep.y, rep.soft.argmax(1))
