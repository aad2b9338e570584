"""Optimal transport between classes: entropic plans by Sinkhorn, exact plans of small problems. Lesson 08.

Given masses a (n,) and b (m,) of equal total and a cost matrix C (n, m), a transport plan P ≥ 0 has
row sums a and column sums b; the optimal one minimises ⟨P, C⟩ = Σ_ij P_ij C_ij (a linear program,
``exact_plan``). The entropic problem (Cuturi, NeurIPS 2013, Eq. 2)

    P_ε = argmin_P ⟨P, C⟩ − ε H(P),      H(P) = −Σ_ij P_ij (log P_ij − 1),

has the solution P_ε = diag(u) K diag(v), K = exp(−C/ε), and Sinkhorn's iteration finds the scalings
by matching the marginals in turn (Cuturi 2013, Alg. 1; Peyré & Cuturi, "Computational Optimal
Transport", 2019, Eq. 4.15):

    u ← a / (K v),      v ← b / (Kᵀ u).

For small ε the entries of K underflow to 0 and u, v overflow, so ``sinkhorn`` iterates the logs
f = ε log u, g = ε log v instead (Peyré & Cuturi 2019, Eq. 4.43), with a log-sum-exp that never
exponentiates a large number:

    f ← ε log a − ε logsumexp_j((g_j − C_ij)/ε),     g ← ε log b − ε logsumexp_i((f_i − C_ij)/ε).

If a and b have different totals no plan exists and the iteration cannot converge: every sweep
multiplies u by the mass ratio. COIL's released code (zhoudw-zdw/MM21-Coil ``models/COIL.py`` at
f4ebcc15, and PyCIL's ``models/coil.py``) calls POT's ``ot.sinkhorn`` with such marginals; its
retrospective iteration then overflows, and POT returns the last finite iterate, which has neither
marginal (on many costs, all zeros). ``sinkhorn`` refuses unequal
totals unless told (``balanced=False``, which only the lesson uses to show the collapse).

``class_cost``: COIL's cost, the Minkowski-p distance (p = 3 in the code, ``norm_term``) between
L2-normalised class means. ``transport_rows``: weight rows moved through a plan (COIL's prospective
and retrospective classifiers), rescaled to the source rows' mean norm.
"""
from __future__ import annotations

import warnings

import torch

from .losses import distillation
from .memory import unit_rows
from .models import cosine_logits


def _check(a, b, cost, balanced=True):
    """Shapes fit, masses >= 0, costs finite, and (``balanced``) equal total masses."""
    if cost.dim() < 2 or a.shape != cost.shape[:-1] or b.shape != cost.shape[:-2] + cost.shape[-1:]:
        raise ValueError(f"marginals {tuple(a.shape)} and {tuple(b.shape)} do not fit the cost "
                         f"matrix {tuple(cost.shape)}: a (..., n), b (..., m), cost (..., n, m)")
    if (a < 0).any() or (b < 0).any() or not torch.isfinite(cost).all():
        raise ValueError("the marginals must be >= 0 and the costs finite")
    total_a, total_b = a.sum(-1), b.sum(-1)
    if balanced and not torch.allclose(total_a, total_b, rtol=1e-5, atol=1e-12):
        raise ValueError(f"the marginals have different total mass ({total_a.tolist()} vs "
                         f"{total_b.tolist()}): no plan has both, and Sinkhorn cannot converge. "
                         "Normalise both to the same total (COIL's released code does not)")


def sinkhorn(a: torch.Tensor, b: torch.Tensor, cost: torch.Tensor, eps: float, *, iters: int = 1000,
             tol: float = 1e-9, log_domain: bool = True, balanced: bool = True) -> torch.Tensor:
    """The entropic plan P_ε (..., n, m) between ``a`` (..., n) and ``b`` (..., m), batched over
    leading dimensions, on the inputs' device and dtype.

    Stops after ``iters`` sweeps or when every row sum is within ``tol`` of ``a`` (checked every 10
    sweeps; the column sums are exact after each sweep). POT's defaults (``ot.sinkhorn``: 1000
    iterations, stopThr 1e-9), which COIL's code uses. ``log_domain=False``: the plain scalings
    u, v; where they stop being finite, the last finite iterate is returned (what POT does).
    ``balanced=False`` allows marginals of unequal mass (the iteration then does not converge).
    """
    _check(a, b, cost, balanced)
    if not eps > 0:
        raise ValueError(f"the regularisation must be positive, got eps = {eps!r}")
    tol = max(tol, 8 * torch.finfo(a.dtype).eps)  # (1e-9 is below float32's resolution)
    if not log_domain:
        return _sinkhorn_plain(a, b, cost, eps, iters, tol)
    log_a, log_b = a.log(), b.log()       # log 0 = −inf: a row of zero mass gets f = −inf, P = 0
    f = torch.zeros_like(a)
    g = torch.zeros_like(b)
    for sweep in range(iters):
        f = eps * (log_a - torch.logsumexp((g[..., None, :] - cost) / eps, dim=-1))
        g = eps * (log_b - torch.logsumexp((f[..., :, None] - cost) / eps, dim=-2))
        if sweep % 10 == 9 and _converged(_plan(f, g, cost, eps), a, tol):
            break
    return _plan(f, g, cost, eps)


def _plan(f, g, cost, eps):
    return torch.exp((f[..., :, None] + g[..., None, :] - cost) / eps)


def _converged(plan, a, tol) -> bool:
    return bool((plan.sum(-1) - a).abs().max() <= tol)


def _sinkhorn_plain(a, b, cost, eps, iters, tol):
    # POT's ``sinkhorn_knopp`` step for step (0.7.0 to 0.9.7): u, v start at 1/n, 1/m; v first, then
    # u = 1 / ((K / a) v); the column sums' L2 error checked every 10 sweeps from the first.
    K = torch.exp(-cost / eps)
    Kp = K / a[..., :, None]
    u = torch.full_like(a, 1.0 / a.shape[-1])
    v = torch.full_like(b, 1.0 / b.shape[-1])
    for sweep in range(iters):
        Ktu = (K.transpose(-1, -2) @ u[..., None])[..., 0]
        v_next = b / Ktu
        u_next = 1.0 / (Kp @ v_next[..., None])[..., 0]
        if (Ktu == 0).any() or not (torch.isfinite(u_next).all() and torch.isfinite(v_next).all()):
            warnings.warn(f"Sinkhorn's scalings overflowed at sweep {sweep}: returning the last "
                          "finite iterate (as POT does); use log_domain=True", RuntimeWarning)
            break                       # overflow or 0/0: keep the previous iterate (POT's rule)
        u, v = u_next, v_next
        if sweep % 10 == 0:  # the rows are exact after u: check the columns
            columns = (u[..., :, None] * K * v[..., None, :]).sum(-2)
            if torch.linalg.vector_norm(columns - b, dim=-1).max() < tol:
                break
    return u[..., :, None] * K * v[..., None, :]   # (u·K)·v, in POT's order: u·K can underflow


def exact_plan(a, b, cost) -> torch.Tensor:
    """An optimal plan of the linear program min ⟨P, C⟩ (no entropy) for one small problem, by
    successive shortest paths on the bipartite flow network (Ahuja, Magnanti & Orlin, "Network
    Flows", 1993, §9.7): send mass along the cheapest residual path from a row with mass left to a
    column with room left until all is sent. Pure Python in float64: a reference for tests and
    the lesson, for n, m up to a few dozen."""
    a, b, cost = (torch.as_tensor(v, dtype=torch.float64).cpu() for v in (a, b, cost))
    _check(a, b, cost)
    n, m = cost.shape
    C, flow = cost.tolist(), [[0.0] * m for _ in range(n)]
    supply, demand = a.tolist(), b.tolist()
    tiny = 1e-12 * max(1.0, sum(supply))
    while max(supply) > tiny and max(demand) > tiny:  # (equal totals up to rounding)
        # Bellman-Ford from all rows with supply: forward arcs i -> j cost C_ij, backward j -> i
        # (undoing flow) cost -C_ij where flow_ij > 0.
        dist = [0.0 if s > tiny else float("inf") for s in supply] + [float("inf")] * m
        prev = [None] * (n + m)
        for _ in range(n + m):
            changed = False
            for i in range(n):
                for j in range(m):
                    if dist[i] + C[i][j] < dist[n + j] - 1e-15:
                        dist[n + j], prev[n + j], changed = dist[i] + C[i][j], i, True
                    if flow[i][j] > tiny and dist[n + j] - C[i][j] < dist[i] - 1e-15:
                        dist[i], prev[i], changed = dist[n + j] - C[i][j], n + j, True
            if not changed:
                break
        end = min((j for j in range(m) if demand[j] > tiny), key=lambda j: dist[n + j])
        path, node = [], n + end                     # walk back to a row with supply
        while prev[node] is not None:
            path.append((prev[node], node))
            node = prev[node]
        start = node
        push = min(supply[start], demand[end],
                   *(flow[v][u - n] for u, v in path if u >= n))  # backward arcs: their flow
        for u, v in path:
            if u < n:
                flow[u][v - n] += push
            else:
                flow[v][u - n] -= push
        supply[start] -= push
        demand[end] -= push
    return torch.tensor(flow, dtype=torch.float64).clamp_(min=0)


def class_cost(source_means: torch.Tensor, target_means: torch.Tensor, p: float = 3.0) -> torch.Tensor:
    """(n, m) Minkowski-p distances between the L2-normalised rows of two sets of class means: COIL's
    cost matrix (``torch.cdist(old_means, new_means, p=norm_term)``, norm_term = 3, in MM21-Coil
    ``models/COIL.py`` at f4ebcc15). Entries lie in [0, 2] (unit vectors, p ≥ 2)."""
    return torch.cdist(unit_rows(source_means), unit_rows(target_means), p=p)


def uniform_marginals(n: int, m: int, like: torch.Tensor) -> tuple:
    """(1/n, ..., 1/n), (1/m, ..., 1/m): balanced marginals of total mass 1 (the code gives both
    sides 1/n, of total masses 1 and m/n: see the module docstring)."""
    return (like.new_full((n,), 1.0 / n), like.new_full((m,), 1.0 / m))


def transport_rows(plan: torch.Tensor, source_rows: torch.Tensor) -> torch.Tensor:
    """(m, d) rows Pᵀ · unit_rows(W_src), rescaled so that their mean L2 norm equals the mean norm of
    the source rows ``W_src`` (n, d): COIL's ``solving_ot`` (the plan's column j is the recipe of
    target row j; C_t · γ · PᵀŴ in the code, where the factor C_t cancels in γ)."""
    moved = plan.transpose(0, 1).to(source_rows.dtype) @ unit_rows(source_rows)
    scale = source_rows.norm(dim=1).mean() / moved.norm(dim=1).mean().clamp_min(1e-30)
    return moved * scale


def retrospective_loss(features, retro_rows, old_logits, T: float = 2.0) -> torch.Tensor:
    """L_retro = −mean_x Σ_k softmax(z*/T)_k · log softmax(cos(f, W_retro)/T)_k: the old network's
    answers taught to the transported old-class rows, without σ (COIL's ``old_branch_distill_loss``).
    The rows are constants: the gradient flows into the features only."""
    return distillation(cosine_logits(features, retro_rows.detach()), old_logits, T, t_squared=False)


def prospective_loss(features, pro_rows, new_logits, T: float = 2.0) -> torch.Tensor:
    """L_pro = −mean_x Σ_j softmax(cos(f, W_pro)/T)_j · log softmax(z_new/T)_j: the transported rows
    teach the new logits. The teacher side is not detached (COIL's ``new_branch_distill_loss``)."""
    teacher = torch.softmax(cosine_logits(features, pro_rows) / T, dim=1)
    return -(teacher * torch.log_softmax(new_logits / T, dim=1)).sum(1).mean()
