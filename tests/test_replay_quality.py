"""Precision and recall of generated samples (Kynkäänniemi et al. 2019), lesson 07 §8."""
import pytest
import torch

from clcourse.replay_quality import knn_radii, precision_recall


def test_radii_are_the_kth_neighbour_distances():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]
    with pytest.raises(ValueError):
        knn_radii(x, 4)


def test_the_same_distribution_scores_high_a_far_one_zero_a_collapsed_one_precise_but_narrow():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(400, 5, generator=g)
    same = torch.randn(400, 5, generator=g)
    p, r = precision_recall(real, same)
    assert p > 0.8 and r > 0.8
    assert precision_recall(real, same + 100.0) == (0.0, 0.0)
    collapsed = real[:1].repeat(400, 1) + 1e-3 * torch.randn(400, 5, generator=g)
    p, r = precision_recall(real, collapsed)
    assert p == 1.0 and r < 0.05                 # one realistic sample, drawn again and again
    noise = 10 * torch.randn(400, 5, generator=g)
    p, r = precision_recall(real, noise)
    assert p < 0.2 and r > 0.8                   # covers everything, mostly unrealistic


def test_shapes_are_checked():
    with pytest.raises(ValueError, match="same D"):
        precision_recall(torch.zeros(5, 3), torch.zeros(5, 4))
