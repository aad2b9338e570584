"""The Fisher information of a classifier, as EWC needs it: the reference of Lesson 02 (§3 the Fisher,
its identity F = −E[∇² log p] and the full matrix next to its diagonal; §5 what code computes).

EWC (Kirkpatrick et al. 2017, PNAS) keeps parameter i near its old value with weight F_i, the diagonal
of F = E_x E_{c~p(·|x)}[∇ log p(c|x) ∇ log p(c|x)ᵀ]. What code calls "the Fisher" is one of these
(van de Ven & Tolias 2019 and van de Ven et al. 2022 code; g(x, c) = ∇_θ log p(c|x), squares
element-wise, N examples, M mini-batches of B):

    "exact"      (1/N) Σ_n Σ_c p(c|x_n) g(x_n, c)²   expectation over the model's OWN labels (default)
    "sample"     (1/N) Σ_n g(x_n, ĉ_n)², ĉ_n ~ p(·|x_n)   one Monte-Carlo label: unbiased for "exact"
    "empirical"  (1/N) Σ_n g(x_n, y_n)²   true labels: not an estimate of the Fisher unless the model
                 fits the data (Kunstner et al. 2019, "Limitations of the empirical Fisher";
                 Martens 2020, "New insights and perspectives on the natural gradient method")
    "pred"       (1/N) Σ_n g(x_n, argmax p)²   van de Ven & Tolias 2019's code: biased
    "batched"    (1/M) Σ_m (mean_{n∈m} g(x_n, y_n))²   squared mini-batch-MEAN gradients (the course's
                 seed-000 EWC code, Avalanche, PyCIL). Near a minimum the mean gradient is ~0 and a
                 mean of B gradients has variance σ²/B, so this is ~B times smaller: its λ means
                 something else.

"exact" is the default: it is the Fisher itself, and van de Ven (2025, "On the computation of the
Fisher information in continual learning") recommends it for EWC, also on a subset (``n_samples``).

How it is computed: in eval mode (BatchNorm uses its running statistics, so examples do not interact;
every module's mode is restored after), on the scenario's active units only (inactive logits are -inf,
``masked_logits``), with no Python loop over examples. A linear layer's per-example weight gradient is
an outer product δ aᵀ (gradient at its output, its input), so Σ_n (δ_n a_nᵀ)² = (δ²)ᵀ(a²): one matrix
product per layer and no per-example gradient stored (Goodfellow 2015, "Efficient per-example gradient
computations"); convolutions and BatchNorm have closed forms too. Networks built from these layers
(every network of ``models.py``) take that route; any other goes through ``torch.func`` (``vmap`` of
``grad`` of a ``functional_call``), which ``full_fisher`` always uses.
"""
from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.func import functional_call, grad, vmap
from torch.nn.modules.batchnorm import _BatchNorm

from .data.scenarios import TensorSet, masked_logits
from .models import GrowingHead

KINDS = ("exact", "sample", "empirical", "pred", "batched")


def diagonal_fisher(model, data: TensorSet, masks=None, kind: str = "exact", *, n_samples=None,
                    batch_size: int = 128, generator=None, chunk_size: int = 1024) -> dict:
    """The diagonal Fisher of ``model`` on ``data``, averaged over examples (Lesson 02 §5).

    ``masks``: None (every unit active), one bool row (n_units,) for all examples, or a mask table
    (n_tasks, n_units) such as ``scenario.mask_table(t, device)``, indexed by ``data.t``.
    ``n_samples``: use that many examples, drawn at random with ``generator`` if one is given, else
    the first ones. ``generator`` also draws the labels of "sample" (one ``torch.multinomial`` over
    all examples, in data order). ``batch_size``: the mini-batch of "batched" (its value depends on
    it); ``chunk_size``: examples per vectorised pass (memory only). Returns {name: tensor shaped like
    the parameter} for every parameter that requires grad; ``.grad`` is never touched.
    """
    params, (x, y, mask) = _trainable(model), _select(model, data, masks, n_samples, generator)
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    with _eval_mode(model), torch.enable_grad():
        if _check(kind) == "batched":
            for count, g in enumerate(_batch_mean_grads(model, params, x, y, mask, batch_size), 1):
                for n in total:
                    total[n] += g[n] ** 2
            return {n: v / count for n, v in total.items()}
        labels, root_w = _labels(model, x, y, mask, kind, generator, chunk_size)
        layers = _layers(model, params)
        if layers is None:  # hold at most ~2^25 numbers of per-example gradients at once
            per_example = sum(p.numel() for p in params.values()) * labels.shape[1]
            chunk_size = max(1, min(chunk_size, (1 << 25) // per_example))
        for i in range(0, len(x), chunk_size):
            part = [v[i:i + chunk_size] for v in (x, mask, labels, root_w)]
            sq = (_layerwise_squared_grads(model, layers, *part) if layers is not None else
                  {n: (g ** 2).sum(0) for n, g in _weighted_grads(model, params, *part).items()})
            for n in total:
                total[n] += sq.get(n, 0.0)  # a layer the forward never used keeps 0
    return {n: v / len(x) for n, v in total.items()}


def full_fisher(model, data: TensorSet, masks=None, kind: str = "exact", *, n_samples=None,
                batch_size: int = 128, generator=None) -> torch.Tensor:
    """The full P×P Fisher, for tiny networks (Lesson 02 §3: the full matrix next to its diagonal).

    Parameters are flattened in ``model.named_parameters()`` order, each row-major: an entry's index
    is its place in ``torch.cat([p.flatten() for p in params])``. Same arguments as
    :func:`diagonal_fisher`, whose result is this matrix's diagonal.
    """
    params, (x, y, mask) = _trainable(model), _select(model, data, masks, n_samples, generator)

    def flat(grads):  # {name: (rows, *shape)} or {name: shape} -> (rows, P) or (P,)
        return torch.cat([g.flatten(start_dim=g.dim() - params[n].dim()) for n, g in grads.items()], -1)
    with _eval_mode(model), torch.enable_grad():
        if _check(kind) == "batched":
            batches = _batch_mean_grads(model, params, x, y, mask, batch_size)
            G = torch.stack([flat(g) for g in batches])
            return G.T @ G / len(G)
        labels, root_w = _labels(model, x, y, mask, kind, generator)
        G = flat(_weighted_grads(model, params, x, mask, labels, root_w))
        return G.T @ G / len(x)  # the rows of G are √w·g, so GᵀG = Σ w g gᵀ


def fisher_from_grads(per_sample_grads: dict) -> dict:
    """The diagonal Fisher from per-example gradients: {name: (1/N) Σ_n g_n²}, g_n = ∇_θ log p(y_n|x_n)
    stacked along dimension 0 of each tensor (N, *shape). With the true labels y_n this is the
    "empirical" Fisher (Kunstner et al. 2019); with labels drawn from the model, the "sample" one.
    Lesson 02 §5's reference; the mean of the squares, never the square of the mean (the "batched" kind)."""
    return {name: g.detach().pow(2).mean(dim=0) for name, g in per_sample_grads.items()}


def softmax_regression_fisher(W: torch.Tensor, x: torch.Tensor, b=None, mask=None) -> torch.Tensor:
    """The exact Fisher of softmax regression p = softmax(W x + b), in closed form (Lesson 02 §3).

    ∇_W log p(c|x) = (e_c − p) xᵀ and E_{c~p}[(e_c − p)(e_c − p)ᵀ] = diag(p) − p pᵀ, so for row-major
    vec(W) (``W.flatten()``):  F = E_x[(diag(p) − p pᵀ) ⊗ x xᵀ]. A bias is a weight on a constant
    input 1; rows and columns are then ordered [vec(W), b], as ``nn.Linear``'s parameters.
    """
    z = x @ W.T + (b if b is not None else 0)
    p = torch.softmax(masked_logits(z, mask) if mask is not None else z, dim=1)
    xa = torch.cat([x, torch.ones_like(x[:, :1])], 1) if b is not None else x
    (N, K), D = p.shape, xa.shape[1]
    cov = torch.diag_embed(p) - p[:, :, None] * p[:, None, :]                # (N, K, K)
    fisher = torch.einsum("nkl,nd,ne->kdle", cov, xa, xa).reshape(K * D, K * D) / N
    if b is None:
        return fisher
    order = torch.arange(K * D, device=p.device).reshape(K, D)  # [W | b] row-major -> [vec(W), b]
    order = torch.cat([order[:, :-1].flatten(), order[:, -1]])
    return fisher[order][:, order]


# --- the pieces ------------------------------------------------------------------------------------
def _check(kind):
    if kind not in KINDS:
        raise ValueError(f"unknown Fisher kind {kind!r}; valid kinds: {', '.join(KINDS)}")
    return kind


def _trainable(model):
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


@contextmanager
def _eval_mode(model):
    """Eval mode inside, then every module back in ITS OWN mode (a frozen part may be in eval)."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield
    finally:
        for m, mode in modes:
            m.training = mode


def _select(model, data, masks, n_samples, generator):
    """(x, y, mask rows) of the examples used: the mask of example n is masks[t_n]."""
    idx = torch.arange(len(data), device=data.y.device)
    if n_samples is not None and n_samples < len(data):
        idx = (torch.randperm(len(data), generator=generator, device=generator.device)[:n_samples]
               .to(idx.device) if generator is not None else idx[:n_samples])
    x, y, t = data.x[idx], data.y[idx], data.t[idx]
    if masks is None:
        with torch.no_grad(), _eval_mode(model):
            masks = torch.ones(model(x[:1]).shape[1], dtype=torch.bool, device=y.device)
    return x, y, (masks.expand(len(y), -1) if masks.dim() == 1 else masks[t])


def _log_probs(logits, mask):
    """log p over the active units; 0 (not -inf) on inactive ones, so no gradient there is NaN."""
    mask = mask[:, :logits.shape[1]]
    return torch.log_softmax(masked_logits(logits, mask), dim=1).masked_fill(~mask, 0.0)


@torch.no_grad()
def _labels(model, x, y, mask, kind, generator, chunk_size=4096):
    """(labels, √weights), both (N, K): the Fisher is (1/N) Σ_n Σ_k w_nk g(x_n, label_nk)². "exact"
    has K = the most active units of any example and w = p(c|x) (0 in padding slots); the others have
    K = 1 and w = 1."""
    logp = torch.cat([_log_probs(model(x[i:i + chunk_size]), mask[i:i + chunk_size])
                      for i in range(0, len(x), chunk_size)])
    active = mask[:, :logp.shape[1]]
    p = logp.exp() * active
    if kind == "exact":  # active units first, then padding: inactive units, whose p is 0
        labels = active.float().argsort(dim=1, descending=True, stable=True)
        labels = labels[:, :int(active.sum(1).max())]
        return labels, p.gather(1, labels).sqrt()
    g_device = generator.device if generator is not None else p.device  # draw where the generator is
    labels = {"sample": lambda: torch.multinomial(p.to(g_device), 1, generator=generator).to(p.device),
              "empirical": lambda: y[:, None], "pred": lambda: p.argmax(1, keepdim=True)}[kind]()
    return labels, torch.ones(labels.shape, dtype=p.dtype, device=p.device)


def _layers(model, params):
    """{name: module} of the layers with trainable parameters whose per-example gradient has a closed
    form here (linear, conv2d, BatchNorm with running statistics; forward not overridden), if they
    hold every trainable parameter; else None, and ``torch.func`` does the work. (Assumes, as every
    network of ``models.py`` does, that a parameter is used only by its own layer's forward.)"""
    def closed_form(m):
        forward = getattr(type(m), "forward", None)
        if forward is nn.Conv2d.forward:
            return m.groups == 1 and m.padding_mode == "zeros" and not isinstance(m.padding, str)
        return forward in (nn.Linear.forward, GrowingHead.forward) or (
            forward is _BatchNorm.forward and m.track_running_stats)
    own = {n: [_join(n, k) for k, _ in m.named_parameters(recurse=False)]
           for n, m in model.named_modules() if closed_form(m)}
    layers = {n: model.get_submodule(n) for n, names in own.items() if set(names) & set(params)}
    return layers if {k for n in layers for k in own[n]} >= set(params) else None


def _join(module_name, param_name):
    return f"{module_name}.{param_name}" if module_name else param_name


def _layerwise_squared_grads(model, layers, x, mask, labels, root_w):
    """Σ_n Σ_k w (∇ log p)², layer by layer, from each layer's input a and the gradient δ at its
    output: one backward per label slot k for ALL examples at once. A linear layer's per-example
    weight gradient is δ aᵀ, so Σ_n Σ_k (δ aᵀ)² = (Σ_k δ²)ᵀ (a²) and no per-example gradient is ever
    stored (Goodfellow 2015, "Efficient per-example gradient computations"); a convolution's is
    δ·patchesᵀ (one batched product on ``unfold``-ed inputs); BatchNorm's is Σ_pixels δ·x̂ and Σ δ."""
    seen = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen.setdefault(n, []).append((i[0], o)))
             for n, m in layers.items()]
    try:
        logp = _log_probs(model(x), mask)
    finally:
        for h in hooks:
            h.remove()
    if any(len(v) != 1 or (_is_linear(layers[n]) and v[0][0].dim() != 2) for n, v in seen.items()):
        raise ValueError("per-layer Fisher: each layer must run once, linear ones on (batch, features)")
    names, outputs = list(seen), [seen[n][0][1] for n in seen]
    inputs = {n: _layer_input(layers[n], seen[n][0][0].detach()) for n in names}
    sums = {n: {} for n in names}
    for k in range(labels.shape[1]):
        seed = torch.zeros_like(logp).scatter_(1, labels[:, k:k + 1], root_w[:, k:k + 1])
        deltas = torch.autograd.grad(logp, outputs, seed, retain_graph=True, allow_unused=True)
        for n, d in zip(names, deltas):
            if d is not None:
                for key, g2 in _squared_grads(layers[n], inputs[n], d).items():
                    sums[n][key] = sums[n].get(key, 0.0) + g2
    out = {}
    for n, acc in sums.items():
        if "delta2" in acc:  # linear: Σ_n Σ_k δ² a², one product per layer
            acc = {"weight": acc["delta2"].T @ inputs[n], "bias": acc["delta2"].sum(0)}
        out.update({_join(n, key): v.view(getattr(layers[n], key).shape) for key, v in acc.items()
                    if getattr(layers[n], key, None) is not None})
    return out


def _layer_input(m, a):
    """What a layer's per-example gradient needs from its input a: a² (linear), the patches of each
    output pixel (conv, ``unfold``: (N, C_in·kh·kw, pixels)), x̂ = (a − μ)/σ (BatchNorm, eval)."""
    if isinstance(m, nn.Conv2d):
        return F.unfold(a, m.kernel_size, m.dilation, m.padding, m.stride)
    if isinstance(m, _BatchNorm):
        shape = (1, -1) + (1,) * (a.dim() - 2)
        xhat = (a - m.running_mean.view(shape)) / (m.running_var.view(shape) + m.eps).sqrt()
        return xhat.reshape(len(a), a.shape[1], -1)
    return a.square()


def _is_linear(m):
    return not isinstance(m, (nn.Conv2d, _BatchNorm))


def _squared_grads(m, a, d):
    """Σ_n (per-example gradient)² of one label slot, given the output gradients d (N, C_out, ...);
    for a linear layer just δ², multiplied by a² once all slots are summed."""
    if _is_linear(m):
        return {"delta2": d ** 2}
    d = d.reshape(len(d), d.shape[1], -1)                  # (N, C_out, pixels)
    weight = torch.bmm(d, a.transpose(1, 2)) if isinstance(m, nn.Conv2d) else (d * a).sum(2)
    return {"weight": (weight ** 2).sum(0), "bias": (d.sum(2) ** 2).sum(0)}


def _weighted_grads(model, params, x, mask, labels, root_w):
    """{name: (pairs, *shape)}: √w·∇ log p(label|x) for every (example, label) pair of nonzero w,
    by ``vmap(grad)`` of a one-example ``functional_call`` (any network, BatchNorm in eval mode)."""
    n, k = root_w.nonzero(as_tuple=True)

    def weighted_log_lik(p, x1, mask1, label, rw):  # one example: x1 (features...), label ()
        logp = _log_probs(functional_call(model, p, (x1[None],)), mask1[None])[0]
        return rw * logp.gather(0, label[None])[0]
    detached = {name: p.detach() for name, p in params.items()}
    per_pair = vmap(grad(weighted_log_lik), in_dims=(None, 0, 0, 0, 0))
    return per_pair(detached, x[n], mask[n], labels[n, k], root_w[n, k])


def _batch_mean_grads(model, params, x, y, mask, batch_size):
    """For each consecutive mini-batch: the gradient of its MEAN log-likelihood (what toolkits do)."""
    for i in range(0, len(x), batch_size):
        loss = F.nll_loss(_log_probs(model(x[i:i + batch_size]), mask[i:i + batch_size]),
                          y[i:i + batch_size])
        g = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
        yield {n: gi if gi is not None else torch.zeros_like(p)
               for (n, p), gi in zip(params.items(), g)}
