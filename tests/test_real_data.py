"""End-to-end runs on the real staged data (smoke profile) and the real streams' shapes.

They read ``$CLCOURSE_DATA``; with CI=true a missing data folder fails with the data error.
"""
import pytest
import torch

import clcourse as cl


def test_split_mnist_smoke_run_on_real_mnist(real_root):
    exp = cl.run("split-mnist", "finetune", scenario="class", profile="smoke", root=real_root,
                 save=False, epochs=5)
    R = exp.result.accuracy_matrix
    assert len(R) == 5
    assert min(R[t][t] for t in range(5)) > 0.8       # each pair is learnt
    assert exp.result.metrics["average_accuracy"] < 0.4  # class-IL fine-tuning forgets


def test_real_streams_have_the_documented_shapes(real_root):
    s = cl.load_stream("split-mnist", "class", root=real_root)
    assert [t.classes for t in s.tasks] == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    assert sum(len(t.y_test) for t in s.tasks) == 10_000
    p = cl.load_stream("permuted-mnist", "paper", root=real_root, n_tasks=2)
    assert p.input_shape == (1, 32, 32)  # zero-padded before permuting (van de Ven & Tolias 2019, Appendix D)
    # Same pixels, other order: the permutation keeps each image's pixel multiset.
    assert torch.equal(p.tasks[0].x_test[0].flatten().sort().values,
                       p.tasks[1].x_test[0].flatten().sort().values)
    u = cl.load_stream("mnist-usps", "class", root=real_root)
    assert u.tasks[1].x_train.shape == (7291, 1, 28, 28) and u.info["usps_source"] == "esl-npz"


def test_mnist_usps_smoke_run(real_root):
    exp = cl.run("mnist-usps", "joint", profile="smoke", root=real_root, save=False, epochs=3)
    assert exp.result.accuracy_matrix[1][1] > 0.6  # USPS learnt
    assert exp.result.data["usps_source"] == "esl-npz"
