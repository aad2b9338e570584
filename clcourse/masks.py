"""Channel masks for DER's pruning: HAT-style gates, their sparsity loss, and a parameter counter.

THIS COURSE'S IMPLEMENTATION OF THE PAPER'S DESCRIPTION (Yan, Xie & He, CVPR 2021, §3.3), NOT THE
AUTHORS' CODE: the DER authors never released their masking and pruning code (Rhyssiyan/
DER-ClassIL.pytorch @ dd4af618 ships only ``der_womask``; PyCIL @ 87cc4110 has no masks either).

* Gate (HAT, Serrà et al., ICML 2018, Eq. 1-3): every output channel of every conv layer (every unit of
  every Linear layer) of an extractor is multiplied by m_l = σ(s·e_l), e_l learnable, after the layer's
  batch norm when one follows it (so the norm cannot undo the gate). s is annealed linearly within
  each epoch over its batches b = 1..B: s = 1/s_max + (s_max − 1/s_max)(b − 1)/(B − 1)
  (``hat_scale``); in eval mode s = s_max.
* Gradient compensation (HAT §2.5, optional): the gradient reaching e is s_max·σ'(e)·∂L/∂m instead of
  s·σ'(s·e)·∂L/∂m, the value of the gate unchanged; e is kept in [−6, 6] (HAT's code). Whether DER
  uses it: UNVERIFIED.
* Sparsity (Yan et al. §3.3): L_S = Σ_l K_l‖m_{l−1}‖₁‖m_l‖₁ / Σ_l K_l c_{l−1} c_l, K_l the kernel's
  elements (1 for Linear), ‖m_0‖₁ the input channels; the fraction of weights still in use.
  For a residual block the input of the next layer is the union (elementwise max) of the branch's
  and the shortcut's masks — this course's reading, since a channel lives while either path feeds it.
* Pruning: after the task every gate with σ(s_max·e) < threshold becomes a fixed 0, the others a fixed
  1; ``parameter_count`` then counts only the weights between surviving channels (the gate
  embeddings e are training machinery and are not counted).
"""
from __future__ import annotations

import torch
import torch.nn as nn

E_INIT = 0.01  # this course's choice (HAT: N(0, 1)): every gate starts open, σ(s_max·e) = σ(4) ≈ 0.98, and
#               Adam (lr 1e-3) can close it within a task of ~70 steps (from 0.1 it could not)
E_CLAMP = 6.0  # HAT's code (thres_emb = 6)


def hat_scale(batch: int, n_batches: int, s_max: float) -> float:
    """HAT's annealed scale for batch ``batch`` (1-based) of ``n_batches``: 1/s_max at the first,
    s_max at the last, linear in between; s_max when an epoch has one batch."""
    if isinstance(batch, bool) or isinstance(n_batches, bool) or not 1 <= batch <= n_batches:
        raise ValueError(f"need 1 <= batch <= n_batches, got batch={batch!r}, n_batches={n_batches!r}")
    if n_batches == 1:
        return float(s_max)
    return 1 / s_max + (s_max - 1 / s_max) * (batch - 1) / (n_batches - 1)


def hat_gate(e: torch.Tensor, s: float) -> torch.Tensor:
    """The gate σ(s·e), a new tensor (``e`` unchanged)."""
    return torch.sigmoid(s * e)


def compensated_gate(e: torch.Tensor, s: float, s_max: float) -> torch.Tensor:
    """σ(s·e) in value, with HAT's compensated gradient s_max·σ'(e) with respect to e."""
    ref = s_max * torch.sigmoid(e)
    return hat_gate(e, s).detach() + (ref - ref.detach())


def sparsity_loss(layers) -> torch.Tensor:
    """L_S = Σ_l K_l‖m_in,l‖₁‖m_l‖₁ / Σ_l K_l c_in,l c_l for ``layers``: (K_l, m_in, m_out) triples,
    the masks 1-D (m_in of the first layer: ones of the input channels)."""
    used = sum(k * m_in.sum() * m_out.sum() for k, m_in, m_out in layers)
    full = sum(k * m_in.numel() * m_out.numel() for k, m_in, m_out in layers)
    return used / full


class Gate(nn.Module):
    """A Conv2d or Linear layer (with the batch norm that follows it, if any) whose output channels
    are gated: out = bn(layer(x)) · m."""

    def __init__(self, layer: nn.Module, norm: nn.Module | None = None, s_max: float = 400.0,
                 compensate: bool = True):
        super().__init__()
        self.layer, self.norm = layer, norm if norm is not None else nn.Identity()
        n = layer.out_channels if isinstance(layer, nn.Conv2d) else layer.out_features
        self.e = nn.Parameter(torch.full((n,), E_INIT))
        self.register_buffer("keep", torch.ones(n))
        self.register_buffer("pruned", torch.tensor(False))
        self.s_max, self.s, self.compensate = float(s_max), float(s_max), compensate
        self.is_pruned = False  # mirrors the buffer ``pruned``: no device sync in forward

    @property
    def kernel(self) -> int:
        return self.layer.kernel_size[0] * self.layer.kernel_size[1] \
            if isinstance(self.layer, nn.Conv2d) else 1

    @property
    def in_width(self) -> int:
        return self.layer.in_channels if isinstance(self.layer, nn.Conv2d) else self.layer.in_features

    def mask(self) -> torch.Tensor:
        """The fixed 0/1 mask once pruned; else σ(s·e) in training, σ(s_max·e) in eval."""
        if self.is_pruned:
            return self.keep
        if not self.training:
            return hat_gate(self.e, self.s_max)
        if self.compensate:
            return compensated_gate(self.e, self.s, self.s_max)
        return hat_gate(self.e, self.s)

    def forward(self, x):
        out = self.norm(self.layer(x))
        m = self.mask().to(out.dtype)
        return out * (m.view(1, -1, 1, 1) if out.dim() == 4 else m)

    @torch.no_grad()
    def prune(self, threshold: float) -> None:
        self.keep.copy_((hat_gate(self.e, self.s_max) >= threshold).float())
        self.pruned.fill_(True)
        self.is_pruned = True

    @torch.no_grad()
    def reset(self) -> None:
        self.e.fill_(E_INIT)
        self.keep.fill_(1.0)
        self.pruned.fill_(False)
        self.is_pruned = False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self.is_pruned = bool(self.pruned)


def _gate_layers(module: nn.Module, s_max: float, compensate: bool) -> None:
    """Replace every Conv2d/Linear (and the BatchNorm right after it) by a Gate, in place."""
    names = list(module._modules)
    for i, name in enumerate(names):
        child = module._modules[name]
        if isinstance(child, (nn.Conv2d, nn.Linear)):
            nxt = module._modules[names[i + 1]] if i + 1 < len(names) else None
            width = child.out_channels if isinstance(child, nn.Conv2d) else child.out_features
            paired = isinstance(nxt, nn.modules.batchnorm._BatchNorm) and nxt.num_features == width
            module._modules[name] = Gate(child, nxt if paired else None, s_max, compensate)
            if paired:
                module._modules[names[i + 1]] = nn.Identity()
        elif child is not None and not isinstance(child, Gate):
            _gate_layers(child, s_max, compensate)


def _walk(module, m_in, mask_of, out):
    """Visit the Gates in forward order; ``out`` gets (gate, m_in, m_out) per Gate; returns the mask
    of ``module``'s output channels."""
    if isinstance(module, Gate):
        width = module.in_width
        if m_in.numel() != width:  # a Linear after a flattened conv map: each channel repeated
            if width % m_in.numel():
                raise ValueError(f"cannot map {m_in.numel()} channels onto {width} inputs")
            m_in = m_in.repeat_interleave(width // m_in.numel())
        out.append((module, m_in, mask_of(module)))
        return out[-1][2]
    if hasattr(module, "conv2") and hasattr(module, "shortcut"):  # models.BasicBlock
        branch = _walk(module.conv2, _walk(module.conv1, m_in, mask_of, out), mask_of, out)
        short = _walk(module.shortcut, m_in, mask_of, out)
        return torch.maximum(branch, short)
    for child in module.children():
        m_in = _walk(child, m_in, mask_of, out)
    return m_in


class GatedExtractor(nn.Module):
    """A backbone (``models.make_backbone``) with a Gate on every Conv2d/Linear; same forward,
    same ``out_dim``. ``in_channels``: the input's channels (‖m_0‖₁)."""

    def __init__(self, backbone: nn.Module, in_channels: int, s_max: float = 400.0,
                 compensate: bool = True):
        super().__init__()
        _gate_layers(backbone, s_max, compensate)
        self.net, self.in_channels, self.out_dim = backbone, in_channels, backbone.out_dim

    def forward(self, x):
        return self.net(x)

    def gates(self) -> list:
        return [m for m in self.modules() if isinstance(m, Gate)]

    def set_scale(self, s: float) -> None:
        for g in self.gates():
            g.s = float(s)

    def layers(self, mask_of=Gate.mask) -> tuple:
        """([(gate_l, m_in, m_out), ...] in forward order, the output features' mask)."""
        out = []
        m = _walk(self.net, self.gates()[0].e.new_ones(self.in_channels), mask_of, out)
        return out, m

    def sparsity(self) -> torch.Tensor:
        return sparsity_loss([(g.kernel, m_in, m) for g, m_in, m in self.layers()[0]])

    def prune(self, threshold: float) -> None:
        for g in self.gates():
            g.prune(threshold)

    def reset_gates(self) -> None:
        for g in self.gates():
            g.reset()

    @torch.no_grad()
    def clamp_gates(self) -> None:
        for g in self.gates():
            g.e.clamp_(-E_CLAMP, E_CLAMP)


@torch.no_grad()
def parameter_count(extractor: nn.Module) -> tuple:
    """(parameters of ``extractor`` between surviving channels, 0/1 mask of its output features).
    A plain module: every parameter, all features. Gates not yet pruned count every channel."""
    if not isinstance(extractor, GatedExtractor):
        n = sum(p.numel() for p in extractor.parameters())
        return n, torch.ones(extractor.out_dim)
    alive = lambda g: g.keep if g.is_pruned else torch.ones_like(g.keep)  # noqa: E731
    layers, out = extractor.layers(alive)
    total = sum(int(g.kernel * m_in.sum() * m_out.sum()) for g, m_in, m_out in layers)
    for gate, _, m_out in layers:
        per_channel = sum(p.numel() for name, p in gate.named_parameters()
                          if name != "e" and name != "layer.weight") / m_out.numel()
        total += int(per_channel * m_out.sum())  # biases, batch-norm scale and shift
    gated = {id(p) for g in extractor.gates() for p in g.parameters()}
    total += sum(p.numel() for p in extractor.parameters() if id(p) not in gated)
    return total, out.float().cpu()
