"""Networks: a feature extractor (backbone) followed by a head that maps features to logits.

Backbones: an MLP of configurable widths, the small two-conv MNIST CNN of the EWC lesson (seed
document 000's ``SimpleNet``), and the CIFAR ResNet of He et al. 2016 (ResNet-32, 64-d features, as in
iCaRL, Rebuffi et al. 2017, and PyCIL) with a reduced variant for CPU runs, and the five conv layers
of brain-inspired replay (``ConvLayers``, "conv5"; van de Ven, Siegelmann & Tolias 2020).

Heads (how the output units are laid out is the scenario's business, ``data/scenarios.py``):

* ``SingleHead`` — one linear layer over all units (domain-IL);
* ``MultiHead`` — one linear layer per task, outputs side by side (task-IL);
* ``GrowingHead`` — starts empty and grows new units as classes arrive (class-IL, iCaRL-style).
"""
from __future__ import annotations

import copy
import math
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F

from .config import MODELS


class MLP(nn.Module):
    """Flatten, then Linear+ReLU per hidden width. ``out_dim`` = the last width."""

    def __init__(self, in_features: int, hidden=(400, 400)):
        super().__init__()
        layers, width = [nn.Flatten()], in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        self.net, self.out_dim = nn.Sequential(*layers), width

    def forward(self, x):
        return self.net(x)


class SmallCNN(nn.Module):
    """conv5(10) → pool → ReLU → conv5(20) → pool → ReLU → fc 50: the EWC lesson's MNIST CNN."""

    def __init__(self, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 10, kernel_size=5)
        self.conv2 = nn.Conv2d(10, 20, kernel_size=5)
        side = ((image_size - 4) // 2 - 4) // 2
        self.fc = nn.Linear(20 * side * side, 50)
        self.out_dim = 50

    def forward(self, x):
        x = F.relu(F.max_pool2d(self.conv1(x), 2))
        x = F.relu(F.max_pool2d(self.conv2(x), 2))
        return F.relu(self.fc(x.flatten(1)))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:  # option B: 1x1 projection when the shape changes
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False),
                                          nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 images: three stages of n blocks, widths w, 2w, 4w; global pooling.

    n=5, w=16 is ResNet-32 with 64-d features (iCaRL, PyCIL). The reduced variant (n=1) is
    ResNet-8: the same shape of network, cheap enough for a CPU lesson.
    """

    def __init__(self, n: int = 5, width: int = 16, in_channels: int = 3):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                  nn.BatchNorm2d(width), nn.ReLU())
        blocks, c = [], width
        for stage, w in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                blocks.append(BasicBlock(c, w, 2 if (stage > 0 and i == 0) else 1))
                c = w
        self.blocks, self.out_dim = nn.Sequential(*blocks), c

    def forward(self, x):
        return F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1)


class ConvLayers(nn.Module):
    """BI-R's conv stack "C3-5x16-bn" (van de Ven, Siegelmann & Tolias 2020, Nat. Commun. 11:4069;
    GMvandeVen/brain-inspired-replay @ 1a030f7, ``models/conv/nets.py`` ``ConvLayers`` and
    ``models/conv/layers.py`` ``conv_layer``), returning the FLATTENED features (B, ``out_dim``).

    ``depth`` 3×3 conv layers, padding 1; the last ``reducing`` of them have stride 2 and double
    the channels (``channels`` in the first). Defaults on 32×32 CIFAR: 16@32, 32@16, 64@8, 128@4,
    256@2 → ``out_dim`` 1024. As in that code, every conv has a bias, layers 1..depth-1 are
    conv → BatchNorm → ReLU, and the last is a bare conv (``output="none"``: what BI-R's
    ``Classifier`` and ``AutoEncoder`` build, ``no_fnl=True``; the "n" of the label "bn" — "b" is
    batch-norm); ``output="normal"`` gives the last layer BatchNorm and ReLU too.
    The state-dict keys are the original's (``convLayer1.conv.weight``, ``convLayer1.bn.*``, ...),
    so its stored ``store/models/C3-5x16-bn`` (``torch.load(f)["state"]``) loads as it is.
    """

    def __init__(self, in_channels: int = 3, channels: int = 16, depth: int = 5,
                 reducing: int = 4, image_size: int = 32, output: str = "none"):
        super().__init__()
        if not 0 <= reducing <= depth:
            raise ValueError(f"reducing must lie in 0..depth={depth}, got {reducing}")
        if output not in ("none", "normal"):
            raise ValueError(f"output must be 'none' or 'normal', got {output!r}")
        self.depth, c_in, c_out, side = depth, in_channels, channels, image_size
        for i in range(1, depth + 1):
            reduce = i > depth - reducing
            if reduce and i > 1:  # the first layer cannot double: it sets the start width
                c_out *= 2
            bare = output == "none" and i == depth
            setattr(self, f"convLayer{i}", self._layer(c_in, c_out, 2 if reduce else 1, bare))
            c_in, side = c_out, (side + 1) // 2 if reduce else side
        self.out_channels, self.out_size = c_out, side
        self.out_dim = c_out * side * side

    @staticmethod
    def _layer(c_in: int, c_out: int, stride: int, bare: bool) -> nn.Sequential:
        parts = OrderedDict(conv=nn.Conv2d(c_in, c_out, 3, stride, 1))
        if not bare:
            parts.update(bn=nn.BatchNorm2d(c_out), nl=nn.ReLU())
        return nn.Sequential(parts)

    def forward(self, x):
        for i in range(1, self.depth + 1):
            x = getattr(self, f"convLayer{i}")(x)
        return x.flatten(1)


class SingleHead(nn.Linear):
    """All units in one layer."""


class MultiHead(nn.Module):
    """One linear layer per task; the logits of all heads side by side, block t = head t."""

    def __init__(self, in_dim: int, sizes):
        super().__init__()
        self.heads = nn.ModuleList(nn.Linear(in_dim, k) for k in sizes)

    def forward(self, h):
        return torch.cat([head(h) for head in self.heads], dim=1)


class GrowingHead(nn.Module):
    """A linear layer whose number of units grows when new classes arrive; old units are kept.

    ``bias=False``: no bias (WA, Zhao et al. 2020: scaling a row then scales its logit exactly).
    ``norms()``: the L2 norm of each unit's weight vector, the quantity WA aligns (lesson 05's plots).
    """

    def __init__(self, in_dim: int, bias: bool = True):
        super().__init__()
        self.in_dim = in_dim
        self.weight = nn.Parameter(torch.empty(0, in_dim))
        if bias:
            self.bias = nn.Parameter(torch.empty(0))
        else:  # (assigning None first would make "bias" a plain attribute that cannot be registered)
            self.register_parameter("bias", None)

    @property
    def n_units(self) -> int:
        return self.weight.shape[0]

    def grow(self, n_units: int) -> None:
        """Add units up to ``n_units``, initialised as ``nn.Linear`` would. No-op if big enough."""
        new = n_units - self.n_units
        if new <= 0:
            return
        fresh = nn.Linear(self.in_dim, new).to(self.weight.device, self.weight.dtype)
        self.weight = nn.Parameter(torch.cat([self.weight.data, fresh.weight.data]))
        if self.bias is not None:
            self.bias = nn.Parameter(torch.cat([self.bias.data, fresh.bias.data]))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """Re-initialise every unit as ``nn.Linear`` would (GR's ``reinit``)."""
        fresh = nn.Linear(self.in_dim, self.n_units).to(self.weight.device, self.weight.dtype)
        self.weight.copy_(fresh.weight)
        if self.bias is not None:
            self.bias.copy_(fresh.bias)

    @torch.no_grad()
    def norms(self) -> torch.Tensor:
        """(n_units,) ‖w_k‖₂ of every unit's weight row."""
        return torch.linalg.vector_norm(self.weight, dim=1)

    def forward(self, h):
        return F.linear(h, self.weight, self.bias)

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # A checkpoint may hold more units than a freshly built head: grow to fit first.
        key = prefix + "weight"
        if key in state_dict:
            self.grow(state_dict[key].shape[0])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class CosineHead(GrowingHead):
    """logits = σ · cos(h, w_k) = σ · ⟨h/‖h‖, w_k/‖w_k‖⟩: a growing head without bias whose scale is
    one learnable scalar σ (init 1). UCIR's ``CosineLinear`` (Hou et al., CVPR 2019), the head of
    COIL's ``SimpleCosineIncrementalNet`` (PyCIL ``convs/linears.py`` at 87cc4110: weights
    U(−1/√d, 1/√d) as ``nn.Linear``, σ trained with the rest). A row's length no longer changes its
    logit, only how fast its direction moves."""

    def __init__(self, in_dim: int, n_units: int = 0):
        super().__init__(in_dim, bias=False)
        self.sigma = nn.Parameter(torch.ones(1))
        self.grow(n_units)

    def forward(self, h):
        return self.sigma * cosine_logits(h, self.weight)


def cosine_logits(features: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """(B, K) cos(f, w_k) = ⟨f/‖f‖, w_k/‖w_k‖⟩ of every feature row with every weight row."""
    return F.linear(F.normalize(features, dim=1), F.normalize(rows, dim=1))


class Frozen(nn.Module):
    """A sub-network that training must not change: no gradients, and always in eval mode, so
    batch-norm keeps its running statistics although the engine calls ``model.train()``.
    (DER's old extractors, BI-R's pre-trained conv layers.)

    Its state-dict keys are the inner module's under ``module.``.
    """

    def __init__(self, module: nn.Module):
        super().__init__()
        self.module = module
        self.module.requires_grad_(False)
        self.module.eval()

    def train(self, mode: bool = True):
        super().train(mode)
        self.module.eval()  # whatever mode the outer network is put in
        return self

    @classmethod
    def copy_of(cls, module: nn.Module) -> "Frozen":
        """A frozen deep copy of ``module`` as it is now (the teacher or old model of LwF, iCaRL, GR,
        BI-R): later training of ``module`` leaves it unchanged."""
        return cls(copy.deepcopy(module))

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)


class Classifier(nn.Module):
    """backbone → head. ``features(x)`` gives the representation, ``forward(x)`` the logits."""

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def features(self, x):
        return self.backbone(x)

    def forward(self, x):
        return self.head(self.backbone(x))

    def ensure_outputs(self, n_units: int) -> None:
        """Make sure ``n_units`` logits exist (grows a GrowingHead; fixed heads already do)."""
        if isinstance(self.head, GrowingHead):
            self.head.grow(n_units)


def make_backbone(name: str, input_shape, hidden=(400, 400)) -> nn.Module:
    c, h, _ = input_shape
    if name == "mlp":
        return MLP(math.prod(input_shape), hidden)
    if name == "cnn":
        return SmallCNN(c, h)
    if name == "resnet32":
        return CifarResNet(n=5, in_channels=c)
    if name == "resnet-reduced":
        return CifarResNet(n=1, in_channels=c)
    if name == "conv5":
        return ConvLayers(in_channels=c, image_size=h)
    raise ValueError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")


def build_model(settings, input_shape, scenario) -> Classifier:
    """The network of ``settings`` with the head its scenario calls for (``head="auto"``)."""
    backbone = make_backbone(settings.model, input_shape, settings.hidden)
    return Classifier(backbone, make_head(settings, backbone.out_dim, scenario))


def make_head(settings, in_dim: int, scenario) -> nn.Module:
    """The output layer of ``settings.head`` over ``in_dim`` features ("auto": by scenario)."""
    kind = settings.head
    if kind == "auto":
        kind = {"task": "multi", "domain": "single", "class": "grow"}[scenario.kind]
    if kind == "single":
        return SingleHead(in_dim, scenario.n_outputs)
    if kind == "cosine":  # grows in class-IL (``ensure_outputs``), all units at once otherwise
        return CosineHead(in_dim, 0 if scenario.kind == "class" else scenario.n_outputs)
    if kind == "multi":
        if scenario.kind == "domain":
            raise ValueError("a multi-head network needs task- or class-IL output blocks")
        return MultiHead(in_dim, scenario.sizes)
    return GrowingHead(in_dim)
