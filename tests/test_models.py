"""Backbones and heads: shapes, sizes, and that each can learn (a gradient reaches every weight)."""
import pytest
import torch

from clcourse.models import CifarResNet, MLP, MultiHead, SmallCNN, make_backbone


@pytest.mark.parametrize("name, shape, out_dim", [
    ("mlp", (1, 28, 28), 400), ("cnn", (1, 28, 28), 50), ("cnn", (1, 32, 32), 50),
    ("resnet32", (3, 32, 32), 64), ("resnet-reduced", (3, 32, 32), 64)])
def test_backbones_map_images_to_features(name, shape, out_dim):
    net = make_backbone(name, shape, hidden=(100, 400))
    out = net(torch.randn(2, *shape))
    assert out.shape == (2, out_dim) == (2, net.out_dim)


def test_resnet32_has_the_published_size():
    # He et al. 2016, Table 6: ResNet-32 for CIFAR has 0.46M parameters.
    n = sum(p.numel() for p in CifarResNet(n=5).parameters())
    assert 0.45e6 < n < 0.48e6


def test_small_cnn_matches_the_lesson_network():
    net = SmallCNN()
    assert (net.conv1.out_channels, net.conv2.out_channels, net.fc.in_features) == (10, 20, 320)


def test_mlp_widths():
    net = MLP(784, (300, 100))
    assert [m.out_features for m in net.net if isinstance(m, torch.nn.Linear)] == [300, 100]


def test_multihead_blocks_are_independent():
    head = MultiHead(8, [2, 3])
    h = torch.randn(4, 8)
    out = head(h)
    assert out.shape == (4, 5)
    out[:, :2].sum().backward()
    assert head.heads[1].weight.grad is None or not head.heads[1].weight.grad.any()


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ValueError, match="mlp, cnn, resnet32"):
        make_backbone("vgg", (1, 28, 28))
