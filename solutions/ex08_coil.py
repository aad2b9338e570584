"""Lesson 08 — COIL: optimal transport between classes: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex08_coil.py`, or `clcourse grade --lesson 08`). Each exercise says which lesson
section explains it. Use plain tensor operations (`log`, `exp`, `torch.logsumexp`, `torch.log_softmax`,
`torch.softmax`, `F.normalize`, `torch.linalg.vector_norm`, `index_add_`, `torch.bincount`,
`torch.cdist`, matrix products, arithmetic, a Python loop): the point is to see every step. The tests
compare your results with `clcourse`'s own implementations (`clcourse.transport`: `sinkhorn`,
`class_cost`, `transport_rows`, `retrospective_loss`; `clcourse.memory.prototypes`) and with independent
oracles (Sinkhorn's plain scalings in float64, the marginals a plan must have, values worked by hand,
gradients by autograd) — write yours without looking at them first.

Conventions. A transport plan between n source classes and m target classes is an (n, m) tensor P ≥ 0
whose row sums are the source masses a (n,) and whose column sums are the target masses b (m,); the
cost matrix C is (n, m), C_ij the cost of moving a unit of mass from source i to target j. COIL (Zhou,
Ye & Zhan 2021, "Co-Transport for Class-Incremental Learning", ACM MM; this course follows the
authors' code, zhoudw-zdw/MM21-Coil `models/COIL.py` at f4ebcc15) relates the classes of two tasks by
such a plan and moves classifier rows along it:
  * §1 the entropic plan P_ε = argmin ⟨P, C⟩ − ε·H(P), found by Sinkhorn's iteration (Cuturi 2013,
    "Sinkhorn distances: lightspeed computation of optimal transport", NeurIPS), written on the logs of
    its scalings (Peyré & Cuturi 2019, "Computational Optimal Transport", Eq. 4.43) so that a small ε
    neither underflows nor overflows;
  * §2 COIL's cost between classes: the Minkowski-p distance (p = 3 in the code) between unit class
    prototypes (iCaRL's class means: Rebuffi et al. 2017, Alg. 1);
  * §3 prospective transport: the new classes' classifier rows start as the plan's mix of the old
    classes' unit rows, rescaled to the old rows' mean norm;
  * §4 retrospective transport: rows for the OLD classes, rebuilt from the new ones through a plan,
    are taught the old network's answers by distillation at temperature T.
float32 or float64 throughout, one dtype per call unless an exercise says otherwise. Return new
tensors: never modify an input, and leave its requires_grad flag alone.
"""
import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- §1 Sinkhorn's iteration

def sinkhorn_log(a, b, cost, eps, iters=500):
    """ex08.1 · Lesson 08 §1 — Sinkhorn's iteration in the log domain: the entropic plan P_ε (n, m).

    a: (n,) the source masses, b: (m,) the target masses, entries ≥ 0 (zeros allowed) with the SAME
    total (a plan has row sums a and column sums b, so Σa = Σb); cost: (n, m) finite costs C_ij; all
    three of one dtype (float32 or float64); eps: ε > 0, a Python float; iters: the number of sweeps, an
    int ≥ 1. With K = exp(−C/ε), the plan is diag(u)·K·diag(v) and Sinkhorn's scalings alternate
    u ← a/(K v), v ← b/(Kᵀ u); for a small ε every entry of K underflows to 0 (float32: exp(−C/ε) is 0
    once C/ε > 103) and u, v overflow. So iterate the potentials f = ε·log u (n,), g = ε·log v (m,)
    instead, both starting at ZERO, for exactly `iters` sweeps, each sweep f first, then g:
        f_i ← ε·(log a_i − logsumexp_j((g_j − C_ij)/ε))      (over the columns j, for every row i)
        g_j ← ε·(log b_j − logsumexp_i((f_i − C_ij)/ε))      (over the rows i, with the NEW f)
    and return the plan from the last f and g:
        P_ij = exp((f_i + g_j − C_ij)/ε)
    Use torch.logsumexp (it subtracts the largest term first): never form exp(−C/ε) itself. After each
    sweep the column sums are exactly b; the row sums approach a as the sweeps go on. A zero mass a_i
    has log a_i = −inf: its f_i is −inf and its row of the plan 0 — that is right, not an error.
    Return a NEW (n, m) tensor of cost's dtype. Raise ValueError when a is not (n,), b not (m,) for a
    cost (n, m), the dtypes differ, eps ≤ 0, iters is not an int ≥ 1 (a bool is not), or the totals
    differ (by more than 1e-5 relative to Σb: no plan exists, and the iteration cannot converge).
    Do not modify a, b or cost.
    """
    ### BEGIN SOLUTION
    if cost.dim() != 2 or a.shape != cost.shape[:1] or b.shape != cost.shape[1:]:
        raise ValueError(f"a {tuple(a.shape)} and b {tuple(b.shape)} do not fit the cost {tuple(cost.shape)}: "
                         "a (n,), b (m,), cost (n, m)")
    if a.dtype != cost.dtype or b.dtype != cost.dtype:
        raise ValueError(f"a, b and cost must have one dtype, got {a.dtype}, {b.dtype} and {cost.dtype}")
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps!r}")
    if isinstance(iters, bool) or not isinstance(iters, int) or iters < 1:
        raise ValueError(f"iters must be an int >= 1, got {iters!r}")
    if not abs(float(a.sum()) - float(b.sum())) <= 1e-5 * abs(float(b.sum())):
        raise ValueError(f"the totals differ (Σa = {float(a.sum())}, Σb = {float(b.sum())}): no plan has both")
    log_a, log_b = a.log(), b.log()
    f, g = torch.zeros_like(a), torch.zeros_like(b)
    for _ in range(iters):
        f = eps * (log_a - torch.logsumexp((g[None, :] - cost) / eps, dim=1))   # over j, per row i
        g = eps * (log_b - torch.logsumexp((f[:, None] - cost) / eps, dim=0))   # over i, per column j
    return torch.exp((f[:, None] + g[None, :] - cost) / eps)
    ### END SOLUTION


# ---------------------------------------------------------------- §2 COIL's cost between classes

def class_cost_matrix(features, labels, n_old, n_classes, p=3.0):
    """ex08.2 · Lesson 08 §2 — COIL's cost: Minkowski-p distances between old and new class prototypes.

    features: (N, d) the backbone's features of N samples (float32 or float64); labels: (N,) their
    classes (int64) in [0, n_classes), in ANY order and with any number of samples per class (at least
    one each); n_old: the old classes 0..n_old−1, an int with 1 ≤ n_old < n_classes; the new ones are
    n_old..n_classes−1; p ≥ 1: the Minkowski exponent (COIL's code: 3). As COIL computes it:
      1. each feature row L2-normalised, φ̄ = φ/‖φ‖ (every sample counts alike, whatever its norm);
      2. the prototype of class c: the mean of its samples' φ̄, L2-normalised AGAIN (a mean of unit
         vectors is shorter than 1) — iCaRL's class mean, `clcourse.memory.prototypes`;
      3. the cost Q_kj = ‖μ_k − μ_j‖_p = (Σ_e |μ_k,e − μ_j,e|^p)^(1/p) between old class k (ROWS) and new
         class j (COLUMNS): the distance itself, not its p-th power or its square (`torch.cdist(.., p=p)`).
    Return a NEW (n_old, n_classes − n_old) tensor of features' dtype (entries in [0, 2] for p ≥ 2).
    Raise ValueError when features is not (N, d) with one label per row, a label lies outside
    [0, n_classes), a class has no sample, n_old or n_classes is not an int (a bool is not) with
    1 ≤ n_old < n_classes, or p < 1. Do not modify features or labels.
    """
    ### BEGIN SOLUTION
    for name, v in (("n_old", n_old), ("n_classes", n_classes)):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{name} must be an int, got {v!r}")
    if not 1 <= n_old < n_classes:
        raise ValueError(f"need 1 <= n_old < n_classes, got n_old={n_old}, n_classes={n_classes}")
    if not p >= 1:
        raise ValueError(f"p must be >= 1, got {p!r}")
    if features.dim() != 2 or labels.shape != features.shape[:1]:
        raise ValueError(f"features {tuple(features.shape)} and labels {tuple(labels.shape)}: one label per row")
    if len(labels) and not (0 <= int(labels.min()) and int(labels.max()) < n_classes):
        raise ValueError(f"labels must lie in [0, {n_classes})")
    counts = torch.bincount(labels, minlength=n_classes)
    if (counts == 0).any():
        raise ValueError(f"classes {torch.nonzero(counts == 0).flatten().tolist()} have no sample")
    unit = F.normalize(features, dim=1)                                      # φ/‖φ‖, row by row
    sums = unit.new_zeros(n_classes, unit.shape[1]).index_add(0, labels, unit)
    protos = F.normalize(sums / counts[:, None].to(unit.dtype), dim=1)       # the mean, unit length again
    return torch.cdist(protos[:n_old], protos[n_old:], p=p)
    ### END SOLUTION


# ---------------------------------------------------------------- §3 prospective transport

def prospective_rows(plan, old_rows):
    """ex08.3 · Lesson 08 §3 — COIL's prospective rows: Pᵀ·unit_rows(W_old), rescaled to W_old's mean norm.

    plan: (n, m) a transport plan P ≥ 0 from the n old classes (rows) to the m new ones (columns), as
    ex08.1 returns it; old_rows: (n, d) the old classes' classifier rows W_old (float32 or float64; the
    plan may be of another float dtype: COIL solves it in float64 — cast it to old_rows' dtype). As
    COIL's `solving_ot` does it:
        Ŵ   = W_old with every row divided by its L2 norm          (n, d) the directions only
        M   = Pᵀ·Ŵ                                                 (m, d) new row j mixes the old rows
                                                                  with the weights of the plan's column j
        s   = mean_k ‖W_old,k‖ / mean_j ‖M_j‖                     ONE factor for all rows
        W_new = s·M
    so that the new rows' MEAN norm equals the old rows' mean norm (rows the plan mixes from opposed
    directions come out shorter, and stay shorter: not each row rescaled on its own). An all-zero old row
    has no direction: it stays zero in Ŵ (F.normalize's rule). A plan of zeros gives zero rows, not NaN
    (clamp the denominator at 1e-30). Return a NEW (m, d) tensor of old_rows' dtype. Raise ValueError
    when the plan is not (n, m) for old_rows (n, d). Do not modify plan or old_rows (the old rows are the
    classifier's own weights).
    """
    ### BEGIN SOLUTION
    if plan.dim() != 2 or old_rows.dim() != 2 or plan.shape[0] != old_rows.shape[0]:
        raise ValueError(f"plan {tuple(plan.shape)} and old_rows {tuple(old_rows.shape)}: plan (n, m), rows (n, d)")
    unit = F.normalize(old_rows, dim=1)                       # the old rows' directions
    moved = plan.to(old_rows.dtype).T @ unit                  # (m, d): column j of P mixes row j
    target = torch.linalg.vector_norm(old_rows, dim=1).mean()
    scale = target / torch.linalg.vector_norm(moved, dim=1).mean().clamp_min(1e-30)
    return moved * scale
    ### END SOLUTION


# ---------------------------------------------------------------- §4 retrospective transport

def retrospective_loss(features, retro_rows, old_logits, T=2.0):
    """ex08.4 · Lesson 08 §4 — COIL's retrospective loss: the old network's answers taught to W_retro.

    features: (B, d) the CURRENT backbone's features of a batch (they require grad in training: the
    loss must train the backbone); retro_rows: (K, d) the old classes' rows rebuilt by retrospective
    transport, W_retro (a constant target geometry: no gradient may reach it, even if it requires grad);
    old_logits: (B, K) the OLD network's logits z* on the same batch, over the K old classes (a fixed
    target: no gradient reaches it either); T > 0 the temperature. B ≥ 1; one float dtype. With the
    cosine similarities cos(f, w_k) = ⟨f/‖f‖, w_k/‖w_k‖⟩ (BOTH normalised; no scale σ), and per sample
        p = softmax(z*/T),   log q = log_softmax(cos(f, W_retro)/T)      (over the K classes)
        L = −mean over the B samples of Σ_k p_k·log q_k
    — the teacher is the old network (p), the student the cosine logits (q); the temperature on BOTH;
    a SUM over the classes, a MEAN over the batch; no T². Old logits may be large (z* ~ 10³): use
    torch.softmax / torch.log_softmax (they subtract the row's maximum), not exp and a sum. Detach the
    rows and the old logits, never the features: where the plan of COIL's released code collapsed to
    zeros (lesson 08 §1), this term had no gradient into the backbone and trained nothing.
    Return a 0-d tensor of features' dtype, differentiable in features. Raise ValueError when features
    and retro_rows differ in d, old_logits is not (B, K), or T ≤ 0. Do not modify the inputs.
    """
    ### BEGIN SOLUTION
    if features.dim() != 2 or retro_rows.dim() != 2 or features.shape[1] != retro_rows.shape[1]:
        raise ValueError(f"features {tuple(features.shape)} and retro_rows {tuple(retro_rows.shape)}: "
                         "(B, d) and (K, d)")
    if old_logits.shape != (features.shape[0], retro_rows.shape[0]):
        raise ValueError(f"old_logits must be {(features.shape[0], retro_rows.shape[0])}, "
                         f"got {tuple(old_logits.shape)}")
    if not T > 0:
        raise ValueError(f"the temperature must be positive, got T = {T!r}")
    cos = F.normalize(features, dim=1) @ F.normalize(retro_rows.detach(), dim=1).T   # (B, K)
    p = torch.softmax(old_logits.detach() / T, dim=1)
    log_q = torch.log_softmax(cos / T, dim=1)
    return -(p * log_q).sum(1).mean()
    ### END SOLUTION
