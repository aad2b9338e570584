"""CIFAR streams from tiny archives in the documented npz format (the real CIFAR-100 is not staged)."""
import numpy as np
import pytest
import torch

import clcourse as cl
from clcourse.data.streams import CIFAR100_ORDER_1993


def write_cifar_npz(root, name, n_classes, per_class_train=2, per_class_test=1):
    """``<name>.npz`` with the keys of mnist.npz: x_* N×32×32×3 uint8, y_* labels (+ coarse)."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, n in (("train", per_class_train), ("test", per_class_test)):
        y = np.tile(np.arange(n_classes), n)
        x = rng.integers(0, 256, size=(len(y), 32, 32, 3), dtype=np.uint8)
        x[np.arange(len(y)), y % 32, :, :] = 255  # a class-dependent bright row
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
        if n_classes == 100:
            arrays[f"y_{split}_coarse"] = y // 5
    np.savez(root / f"{name}.npz", **arrays)


@pytest.fixture
def cifar_root(tmp_path):
    write_cifar_npz(tmp_path, "cifar100", 100)
    write_cifar_npz(tmp_path, "cifar10", 10, per_class_train=8, per_class_test=4)
    return tmp_path


def test_split_cifar100_follows_the_pycil_1993_class_order(cifar_root):
    stream = cl.load_stream("split-cifar100", "class", root=cifar_root)
    assert len(stream.tasks) == 10
    assert [t.classes for t in stream.tasks] == [CIFAR100_ORDER_1993[10 * i:10 * i + 10]
                                                 for i in range(10)]
    assert stream.tasks[0].classes[:4] == [68, 56, 78, 8]  # PyCIL's class order (seed 1993)
    assert stream.input_shape == (3, 32, 32)
    assert all(len(t.y_train) == 20 and len(t.y_test) == 10 for t in stream.tasks)
    x = torch.cat([t.x_train for t in stream.tasks])
    assert abs(x.mean().item()) < 0.5  # standardised per channel


def test_split_cifar100_smoke_run_with_a_growing_head(cifar_root):
    exp = cl.run("split-cifar100", "finetune", profile="smoke", root=cifar_root, save=False)
    R = exp.result.accuracy_matrix
    assert len(R) == 2 and exp.model.head.n_units == 100
    assert R[0][1] == 0.0  # class-IL: unseen classes cannot be predicted


def test_cifar10_single_task_with_augmentation(cifar_root):
    exp = cl.run("cifar10", "finetune", profile="smoke", root=cifar_root, save=False)
    assert exp.settings.augment and len(exp.result.accuracy_matrix) == 1
    assert exp.result.data["source"] == "npz"


def test_icarl_on_split_cifar100_with_its_paper_schedule_from_the_command_line(cifar_root, capsys):
    # The iCaRL paper's CIFAR-100 schedule (Rebuffi et al. 2017 §4): lr 2.0 divided by 5 at epochs 49
    # and 63, weight decay 1e-5, batch 128; here 3 epochs with drops at 1 and 2 on tiny files.
    from clcourse.cli import main
    main(["run", "--benchmark", "split-cifar100", "--method", "icarl", "--profile", "smoke",
          "--data", str(cifar_root), "--epochs", "3", "--lr", "2.0", "--milestones", "1", "2",
          "--lr-decay", "0.2", "--weight-decay", "1e-5", "--arg", "budget=100", "--no-progress",
          "--out", str(cifar_root / "run")])
    out = capsys.readouterr().out
    assert "linear: accuracy" in out and "budget=100" in out
    result = __import__("json").loads((cifar_root / "run" / "result.json").read_text())
    assert result["config"]["lr_decay"] == 0.2 and result["config"]["milestones"] == [1, 2]
    assert result["config"]["augment"] is True  # CIFAR: crops and flips, so class means use flips


def test_split_cifar10_is_five_tasks_of_two_classes_in_label_order(cifar_root):
    stream = cl.load_stream("split-cifar10", "class", root=cifar_root)
    assert [t.classes for t in stream.tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert all(len(t.y_train) == 16 and len(t.y_test) == 8 for t in stream.tasks)
    assert stream.info["n_train"] == 80 and stream.input_shape == (3, 32, 32)
    exp = cl.run("split-cifar10", "finetune", profile="smoke", root=cifar_root, save=False)
    assert len(exp.result.accuracy_matrix) == 2 and exp.settings.augment
    with pytest.raises(ValueError, match="dividing 10"):
        cl.make_settings("split-cifar10", "class", n_tasks=3)
