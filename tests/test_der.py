"""DER (Yan, Xie & He, CVPR 2021): frozen old extractors, the aux head, the balanced re-training, the
channel masks and pruning (this course's implementation of the paper's §3.3), reports, resume."""
import math

import pytest
import torch
import torch.nn as nn

import clcourse as cl
from clcourse import engine
from clcourse.experiment import build
from clcourse.masks import GatedExtractor, hat_gate, hat_scale, parameter_count, sparsity_loss
from clcourse.methods import DER
from clcourse.methods.der import aux_targets, balanced_subset
from clcourse.models import Frozen
from resume import killed_and_resumed
from test_cifar_streams import write_cifar_npz


def fit(cls, root, benchmark="split-mnist", args=None, **overrides):
    s = cl.make_settings(benchmark, "smoke", method_args=args or {}, **overrides)
    stream, scen, method, device = build(s, root, "cpu", method=cls)
    engine.fit(method, stream, scen, method.settings, device, progress=False)
    return method


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


class Watches(DER):
    """Keeps the first extractor's state when the second task starts, and the second's initial state."""

    def before_task(self, task):
        super().before_task(task)
        if task.id == 1:
            self.old = snapshot(self.model.extractors[0].module)
            self.new_start = snapshot(self.model.newest)


def test_old_extractors_keep_parameters_and_batchnorm_buffers_bit_identical(tmp_path):
    write_cifar_npz(tmp_path, "cifar100", 100)
    m = fit(Watches, tmp_path, "split-cifar100", args={"balanced_epochs": 2})  # resnet-reduced
    old, new = m.model.extractors[0], m.model.newest
    assert isinstance(old, Frozen) and not old.module.training
    assert any(k.endswith("running_mean") for k in m.old)
    after = old.module.state_dict()
    assert all(torch.equal(after[k], v) for k, v in m.old.items())    # weights and BN buffers
    assert all(torch.equal(m.new_start[k], v) for k, v in m.old.items())  # F_2 started as F_1
    moved = [k for k, v in new.state_dict().items() if not torch.equal(v, m.old[k])]
    assert any("running_mean" in k for k in moved) and any("weight" in k for k in moved)


def test_aux_targets_map_old_classes_to_zero_and_leave_y_unchanged():
    y = torch.tensor([5, 0, 4, 3, 6])
    kept = y.clone()
    torch.testing.assert_close(aux_targets(y, 4), torch.tensor([2, 0, 1, 0, 3]))
    assert torch.equal(y, kept) and aux_targets(y, 0).dtype == torch.long
    torch.testing.assert_close(aux_targets(y, 0), y + 1)
    for bad in (True, -1, 2.0):
        with pytest.raises(ValueError):
            aux_targets(y, bad)


def test_head_width_aux_units_and_only_the_new_extractor_trains(tiny_root):
    m = fit(DER, tiny_root, n_tasks=3, model="cnn", args={"balanced_epochs": 1})
    net = m.model
    assert len(net.extractors) == 3 and net.head.in_dim == 3 * net.d == 150
    assert net.head.n_units == 6 and net.aux_head.out_features == 2 + 1
    trained = {id(p) for p in m.parameters()}
    assert trained == {id(p) for p in [*net.newest.parameters(), *net.head.parameters(),
                                       *net.aux_head.parameters()]}
    batch = m.scenario.train_set(m.task).batch(torch.arange(8))
    terms = m.loss(batch)
    assert set(terms) == {"ce", "aux"}
    assert all(p.grad is None for f in net.extractors[:2] for p in f.parameters())
    net.zero_grad(set_to_none=True)
    sum(terms.values()).backward()
    assert all(p.grad is None for f in net.extractors[:2] for p in f.parameters())
    assert all(p.grad is not None for p in net.newest.parameters())


class KeepsBalancedSet(DER):
    def balanced_set(self, task):
        self.kept = super().balanced_set(task)
        return self.kept


def test_balanced_subset_has_equal_counts_per_class(tiny_root):
    y = torch.tensor([0] * 7 + [1] * 3 + [2] * 5)[torch.randperm(15)]
    idx = balanced_subset(y, torch.Generator().manual_seed(0))
    assert torch.bincount(y[idx]).tolist() == [3, 3, 3] and len(set(idx.tolist())) == 9
    m = fit(KeepsBalancedSet, tiny_root, n_tasks=2, args={"budget": 20, "balanced_epochs": 1})
    # before herding on task 2: 10 exemplars per old class; the new classes' 30 images cut to 10
    assert torch.bincount(m.kept.y).tolist() == [10, 10, 10, 10]


def test_hat_scale_endpoints_and_gate():
    assert hat_scale(1, 5, 400.0) == pytest.approx(1 / 400)
    assert hat_scale(5, 5, 400.0) == pytest.approx(400.0)
    assert hat_scale(3, 5, 400.0) == pytest.approx((1 / 400 + 400) / 2)
    assert hat_scale(1, 1, 400.0) == 400.0
    with pytest.raises(ValueError):
        hat_scale(0, 5, 400.0)
    e = torch.tensor([-1.0, 0.0, 0.01], requires_grad=True)
    kept = e.detach().clone()
    g = hat_gate(e, 400.0)
    torch.testing.assert_close(g, torch.sigmoid(torch.tensor([-400.0, 0.0, 4.0])))
    assert g is not e and torch.equal(e.detach(), kept) and e.requires_grad


def two_layer_net():
    net = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(), nn.Conv2d(3, 2, 1))
    net.out_dim = 2
    return GatedExtractor(net, in_channels=2, s_max=400.0)


def test_sparsity_loss_matches_a_hand_computed_value():
    m1, m2 = torch.tensor([1.0, 0.5, 0.0]), torch.tensor([0.25, 1.0])
    by_hand = (9 * 2 * 1.5 + 1 * 1.5 * 1.25) / (9 * 2 * 3 + 1 * 3 * 2)
    got = sparsity_loss([(9, torch.ones(2), m1), (1, m1, m2)])
    assert got.item() == pytest.approx(by_hand)
    f = two_layer_net().eval()
    with torch.no_grad():
        f.gates()[0].e.copy_(torch.logit(m1.clamp(1e-6, 1 - 1e-6)) / 400)
        f.gates()[1].e.copy_(torch.logit(m2) / 400)
    assert f.sparsity().item() == pytest.approx(by_hand, rel=1e-4)


def test_pruned_channels_output_zero_and_are_not_counted():
    f = two_layer_net()
    assert parameter_count(f)[0] == 2 * 3 * 9 + 3 + 3 * 2 + 2  # nothing pruned yet: everything
    with torch.no_grad():
        f.gates()[0].e.copy_(torch.tensor([1.0, -1.0, 1.0]))
    f.prune(0.5)
    out = f.net[0](torch.randn(4, 2, 5, 5))
    assert out[:, 1].abs().max() == 0 and out[:, 0].abs().max() > 0
    assert parameter_count(f)[0] == 2 * 2 * 9 + 2 + 2 * 2 + 2


def test_pruning_reduces_the_parameter_count_of_the_same_run(tiny_root):
    kw = dict(n_tasks=2, model="cnn", epochs=4, lr=0.05)
    plain = fit(DER, tiny_root, args={"balanced_epochs": 1}, **kw)
    pruned = fit(DER, tiny_root, args={"balanced_epochs": 1, "prune": True, "sparsity": 5.0}, **kw)
    for a, b in zip(plain.model.extractors, pruned.model.extractors):
        assert parameter_count(b.module if isinstance(b, Frozen) else b)[0] < \
            parameter_count(a.module if isinstance(a, Frozen) else a)[0]
    assert pruned.report()["parameters"] < plain.report()["parameters"]
    dead = pruned.model.extractors[0].module.net.fc.keep == 0
    assert dead.any()
    with torch.no_grad():
        feats = pruned.model.features(pruned.scenario.train_set(pruned.task).x[:16])
    assert feats[:, :50][:, dead].abs().max() == 0  # a pruned unit of F_1 outputs zero


@pytest.mark.parametrize("prune", [False, True])
def test_resume_after_a_kill_gives_the_same_matrix(tiny_root, tmp_path, prune):
    full, resumed = killed_and_resumed(DER, tiny_root, tmp_path, n_tasks=3, scenario="class",
                                       model="cnn", epochs=3, args={"prune": prune, "balanced_epochs": 2})
    assert resumed.result.accuracy_matrix == full.result.accuracy_matrix
    assert resumed.result.reports == full.result.reports


def test_split_mnist_end_to_end_reports_growing_parameter_counts(tiny_root):
    r = cl.run("split-mnist", "der", scenario="class", profile="smoke", root=tiny_root,
               model="cnn", save=False)
    reports = r.result.reports
    assert [rep["extractors"] for rep in reports] == [1, 2, 3, 4, 5]
    counts = [rep["parameters"] for rep in reports]
    assert all(b > a for a, b in zip(counts, counts[1:]))
    one = sum(p.numel() for p in r.model.extractors[0].parameters())
    assert counts[-1] == 5 * one + 10 * 5 * 50  # five extractors + a 10 × 250 head, no aux head
    assert len(r.result.accuracy_matrix) == 5 and not math.isnan(r.result.accuracy_matrix[-1][0])
