"""BI-R's conv layers (models.ConvLayers), the ``classes`` subset of the CIFAR-10 streams, and their
pre-training (clcourse.pretrain, ``clcourse pretrain``), on tiny CIFAR-10 files in the npz format."""
import numpy as np
import pytest
import torch

import clcourse as cl
from clcourse import pretrain
from clcourse.config import Settings, make_settings
from clcourse.data.scenarios import Scenario
from clcourse.models import ConvLayers, make_backbone


# --- ConvLayers ------------------------------------------------------------------------------------
def test_conv_layers_are_bir_c3_5x16_with_1024_flat_features():
    convs = ConvLayers()
    assert convs.out_dim == 1024 and convs(torch.zeros(2, 3, 32, 32)).shape == (2, 1024)
    layers = [getattr(convs, f"convLayer{i}") for i in range(1, 6)]
    shapes = [(m.conv.in_channels, m.conv.out_channels, m.conv.stride[0], m.conv.kernel_size[0],
               m.conv.padding[0], m.conv.bias is not None) for m in layers]
    assert shapes == [(3, 16, 1, 3, 1, True), (16, 32, 2, 3, 1, True), (32, 64, 2, 3, 1, True),
                      (64, 128, 2, 3, 1, True), (128, 256, 2, 3, 1, True)]
    assert all(isinstance(m.bn, torch.nn.BatchNorm2d) and isinstance(m.nl, torch.nn.ReLU)
               for m in layers[:4])
    assert list(dict(layers[4].named_children())) == ["conv"]  # output="none": a bare last conv
    assert hasattr(ConvLayers(output="normal").convLayer5, "bn")
    # The original's state-dict keys and size (its store/models/C3-5x16-bn has 393,088 parameters).
    assert "convLayer1.bn.running_mean" in convs.state_dict()
    assert sum(p.numel() for p in convs.parameters()) == 393_088
    assert isinstance(make_backbone("conv5", (3, 32, 32)), ConvLayers)
    assert ConvLayers(image_size=28).out_dim == 256 * 2 * 2


# --- the classes setting ---------------------------------------------------------------------------
def test_cifar10_on_a_subset_of_classes_maps_them_to_units_in_order(cifar10_root):
    stream = cl.load_stream("cifar10", "smoke", root=cifar10_root, classes=(3, 0, 2))
    task, = stream.tasks
    assert task.classes == [3, 0, 2] and stream.info["n_train"] == 24 == len(task.y_train)
    assert set(task.y_test.tolist()) == {0, 2, 3}
    train = Scenario("domain", stream).train_set(task)
    assert train.y[task.y_train == 3].eq(0).all() and train.y[task.y_train == 2].eq(2).all()


def test_split_cifar10_on_classes_4_to_9_in_three_tasks(cifar10_root):
    stream = cl.load_stream("split-cifar10", "smoke", root=cifar10_root,
                            classes=(4, 5, 6, 7, 8, 9), n_tasks=3)
    assert [t.classes for t in stream.tasks] == [[4, 5], [6, 7], [8, 9]]
    scenario = Scenario("class", stream)
    units = [scenario.train_set(t).y.unique().tolist() for t in stream.tasks]
    assert units == [[0, 1], [2, 3], [4, 5]] and scenario.n_outputs == 6
    assert stream.info["n_train"] == 48


@pytest.mark.parametrize("benchmark, kwargs, message", [
    ("cifar10", dict(classes=(0, 10)), "unknown class id"),
    ("cifar10", dict(classes=(-1,)), "unknown class id"),
    ("cifar10", dict(classes=(1.5,)), "unknown class id"),
    ("cifar10", dict(classes=(1, 2, 1)), "must not repeat"),
    ("split-cifar10", dict(classes=(4, 5, 6, 7, 8, 9), n_tasks=4), "n_tasks must divide 6"),
    ("split-cifar10", dict(classes=(4, 5, 6, 7, 8, 9)), "n_tasks=3"),  # the default 5 tasks
    ("split-mnist", dict(classes=(0, 1)), "supported for cifar10, split-cifar10 only"),
    ("cifar10", dict(classes=3), "sequence of class ids"),
])
def test_bad_classes_are_rejected(benchmark, kwargs, message):
    with pytest.raises(ValueError, match=message):
        make_settings(benchmark, "class", **kwargs)


def test_classes_round_trip_through_a_dict():
    s = make_settings("split-cifar10", "class", classes=[np.int64(4), 5, 6, 7, 8, 9], n_tasks=3)
    assert s.classes == (4, 5, 6, 7, 8, 9) and type(s.classes[0]) is int
    assert s.to_dict()["classes"] == [4, 5, 6, 7, 8, 9] and Settings.from_dict(s.to_dict()) == s
    old = {k: v for k, v in make_settings("cifar10").to_dict().items() if k != "classes"}
    assert Settings.from_dict(old).classes == ()


# --- pre-training ----------------------------------------------------------------------------------
def test_pretrain_writes_reuses_and_force_retrains(cifar10_root, monkeypatch, capsys):
    runs = []

    def counting_run(*args, **kwargs):
        runs.append(cl.run(*args, **kwargs))
        return runs[-1]

    monkeypatch.setattr(pretrain, "run", counting_run)
    path = pretrain.pretrain_convs(profile="smoke", root=cifar10_root, device="cpu")
    assert path == cl.data.cache_root() / "pretrained" / "conv5_cifar10_c0123_smoke_seed0.pt"
    assert path.is_file() and len(runs) == 1 and str(path) in capsys.readouterr().out
    assert runs[0].settings.model == "conv5" and runs[0].settings.classes == (0, 1, 2, 3)
    assert runs[0].stream.info["n_train"] == 32  # the smoke row's 8 per class, 4 classes

    saved = torch.load(path, weights_only=True)
    meta = saved["meta"]
    assert (meta["classes"], meta["profile"], meta["seed"]) == ([0, 1, 2, 3], "smoke", 0)
    assert meta["settings"]["model"] == "conv5" and 0 <= meta["test_accuracy"] <= 1
    assert meta["torch"] == str(torch.__version__) and meta["date"]

    convs = pretrain.load_convs(profile="smoke")
    trained = runs[0].model.backbone.state_dict()
    loaded = convs.state_dict()
    assert loaded.keys() == trained.keys() and not convs.training and convs.meta == meta
    assert all(torch.equal(loaded[k], trained[k].cpu()) for k in trained)  # BN buffers included
    assert loaded["convLayer1.bn.num_batches_tracked"] > 0

    mtime = path.stat().st_mtime_ns
    assert pretrain.pretrain_convs(profile="smoke", root=cifar10_root) == path
    assert len(runs) == 1 and path.stat().st_mtime_ns == mtime  # reused, not retrained
    assert "reusing" in capsys.readouterr().out
    pretrain.pretrain_convs(profile="smoke", root=cifar10_root, force=True)
    assert len(runs) == 2 and not list(path.parent.glob("*.tmp"))


def test_load_convs_without_the_file_names_the_command():
    with pytest.raises(FileNotFoundError) as err:
        pretrain.load_convs(classes=(0, 1, 2, 3), profile="class", seed=2)
    assert "clcourse pretrain --classes 0 1 2 3 --profile class --seed 2" in str(err.value)
    assert "pretrain_convs(classes=(0, 1, 2, 3), profile='class', seed=2)" in str(err.value)


def test_pretrain_rejects_bad_arguments_before_loading_data(tmp_path):
    with pytest.raises(ValueError, match="valid profiles: smoke, class, paper"):
        pretrain.pretrain_convs(profile="fast", root=tmp_path)
    with pytest.raises(ValueError, match="unknown class id"):
        pretrain.pretrain_convs(classes=(0, 12), root=tmp_path)


def test_pretrain_command_end_to_end(cifar10_root, capsys):
    from clcourse.cli import main
    assert main(["pretrain", "--classes", "4", "5", "--profile", "smoke", "--data",
                 str(cifar10_root), "--threads", "1", "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    assert printed[-1].endswith("conv5_cifar10_c45_smoke_seed0.pt")
    assert pretrain.load_convs(classes=(4, 5), profile="smoke").meta["classes"] == [4, 5]
    assert main(["pretrain", "--classes", "1", "1", "--data", str(cifar10_root)]) == 2
    assert capsys.readouterr().err.strip().count("\n") == 0  # one line: clcourse: error: ...


def test_paper_profile_is_bir_main_pretrain_for_cifar10():
    # create_figures.sh: main_pretrain.py --experiment=CIFAR10 --epochs=100 --augment; options.py:
    # single-task defaults lr 1e-4, batch 256; main_pretrain.py: Adam, betas (0.9, 0.999).
    s = pretrain.pretrain_settings(profile="paper")
    assert (s.model, s.epochs, s.optimizer, s.lr, s.batch_size, s.augment, s.weight_decay,
            s.milestones, s.classes) == ("conv5", 100, "adam", 1e-4, 256, True, 0.0, (), (0, 1, 2, 3))
