"""Plausible wrong answers to lesson 05's exercises (see ``__init__.py``)."""
import torch
import torch.nn.functional as F

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


def _count(value, name, low):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an int >= {low}")


# ex05.1 balanced_split
def _checked_split(labels, per_class):
    _count(per_class, "per_class", 1)
    if labels.dim() != 1:
        raise ValueError("labels must be 1-D")
    for c in torch.unique(labels).tolist():
        if int((labels == c).sum()) <= per_class:
            raise ValueError("a class is too small")


def _rest(labels, held):
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[held] = False
    return keep.nonzero().flatten()


def _drawn(labels, per_class, generator):
    """The right draws, in drawing order (class by class), not sorted."""
    held = [torch.zeros(0, dtype=torch.long)]
    for c in torch.unique(labels).tolist():
        where = (labels == c).nonzero().flatten()
        held.append(where[torch.randperm(len(where), generator=generator)[:per_class]])
    return torch.cat(held)


@mistake("ex05.1")
def split_not_sorted(labels, per_class, generator=None):
    _checked_split(labels, per_class)
    held = _drawn(labels, per_class, generator)  # grouped by class, in drawing order
    return held, _rest(labels, held)


@mistake("ex05.1")
def split_one_permutation_of_everything(labels, per_class, generator=None):
    _checked_split(labels, per_class)
    perm = torch.randperm(len(labels), generator=generator)  # one shuffle, then the first per_class of each class
    held = torch.cat([perm[labels[perm] == c][:per_class] for c in torch.unique(labels).tolist()]).sort().values
    return held, _rest(labels, held)


@mistake("ex05.1")
def split_first_per_class(labels, per_class, generator=None):
    _checked_split(labels, per_class)
    held = torch.cat([(labels == c).nonzero().flatten()[:per_class]  # not random at all
                      for c in torch.unique(labels).tolist()] + [torch.zeros(0, dtype=torch.long)]).sort().values
    return held, _rest(labels, held)


@mistake("ex05.1")
def split_accepts_a_bool(labels, per_class, generator=None):
    if not isinstance(per_class, int) or per_class < 1:  # isinstance(True, int) holds: True passes as 1
        raise ValueError("per_class must be an int >= 1")
    _checked_split(labels, int(per_class))
    held = _drawn(labels, per_class, generator).sort().values
    return held, _rest(labels, held)


@mistake("ex05.1")
def split_marks_the_labels(labels, per_class, generator=None):
    _checked_split(labels, per_class)
    held = _drawn(labels, per_class, generator).sort().values
    labels[held] = -1  # "mark" the held-out examples in the caller's labels
    return held, (labels != -1).nonzero().flatten()


@mistake("ex05.1")
def split_classes_in_order_of_appearance(labels, per_class, generator=None):
    _checked_split(labels, per_class)
    classes = list(dict.fromkeys(labels.tolist()))  # the first class seen first, not ascending
    held = [torch.zeros(0, dtype=torch.long)]
    for c in classes:
        where = (labels == c).nonzero().flatten()
        held.append(where[torch.randperm(len(where), generator=generator)[:per_class]])
    held = torch.cat(held).sort().values
    return held, _rest(labels, held)


# ex05.2 bias_correction
def _checked_correction(logits, n_old):
    if logits.dim() != 2:
        raise ValueError("logits must be 2-D")
    _count(n_old, "n_old", 0)
    if n_old > logits.shape[1]:
        raise ValueError("n_old > C")


@mistake("ex05.2")
def correction_of_the_old_columns(logits, n_old, alpha, beta):
    _checked_correction(logits, n_old)  # corrects the OLD units (k < n_old) instead of the new ones
    return torch.cat([alpha * logits[:, :n_old] + beta, logits[:, n_old:]], dim=1)


@mistake("ex05.2")
def correction_in_place(logits, n_old, alpha, beta):
    _checked_correction(logits, n_old)
    with torch.no_grad():
        logits[:, n_old:] = alpha * logits[:, n_old:] + beta  # the caller's logits change
    return logits.clone()


@mistake("ex05.2")
def correction_alpha_on_every_column(logits, n_old, alpha, beta):
    _checked_correction(logits, n_old)
    q = alpha * logits  # α scales the old units too; only β is kept to the new ones
    return torch.cat([q[:, :n_old], q[:, n_old:] + beta], dim=1)


@mistake("ex05.2")
def correction_with_float_parameters(logits, n_old, alpha, beta):
    _checked_correction(logits, n_old)
    q = logits.clone()
    q[:, n_old:] = float(alpha) * logits[:, n_old:] + float(beta)  # no gradient reaches α and β
    return q


@mistake("ex05.2")
def correction_accepts_a_bool(logits, n_old, alpha, beta):
    if logits.dim() != 2 or not isinstance(n_old, int) or not 0 <= n_old <= logits.shape[1]:
        raise ValueError("bad n_old")  # True passes as 1
    return torch.cat([logits[:, :n_old], alpha * logits[:, n_old:] + beta], dim=1)


# ex05.3 fit_bias_correction
def _checked_fit(logits, labels, n_old, steps):
    if labels.dim() != 1 or len(labels) != len(logits) or len(logits) == 0:
        raise ValueError("bad labels")
    _count(steps, "steps", 0)
    _checked_correction(logits, n_old)


def _descend(logits, labels, n_old, steps, start=(1.0, 0.0), momentum=0.9, loss_of=None):
    """Gradient descent with momentum on (α, β), the loss given by loss_of(q, labels, α, β)."""
    z = logits.detach()
    alpha = torch.tensor(start[0], dtype=z.dtype, requires_grad=True)
    beta = torch.tensor(start[1], dtype=z.dtype, requires_grad=True)
    v = [torch.zeros((), dtype=z.dtype), torch.zeros((), dtype=z.dtype)]
    for _ in range(steps):
        q = torch.cat([z[:, :n_old], alpha * z[:, n_old:] + beta], dim=1)
        grads = torch.autograd.grad(loss_of(q, labels, alpha, beta), (alpha, beta))
        with torch.no_grad():
            for i, (p, g) in enumerate(zip((alpha, beta), grads)):
                v[i] = momentum * v[i] + g
                p -= 0.1 * v[i]
    return alpha.detach(), beta.detach()


def _bic_loss(q, labels, alpha, beta):
    return F.cross_entropy(q, labels) + 0.05 * beta ** 2


@mistake("ex05.3")
def fit_without_momentum(logits, labels, n_old, steps):
    _checked_fit(logits, labels, n_old, steps)
    return _descend(logits, labels, n_old, steps, momentum=0.0, loss_of=_bic_loss)


@mistake("ex05.3")
def fit_penalises_alpha_too(logits, labels, n_old, steps):
    _checked_fit(logits, labels, n_old, steps)  # (λ/2)(α² + β²): pulls α towards 0 (PyCIL's weight decay, but 0.1)
    return _descend(logits, labels, n_old, steps,
                    loss_of=lambda q, y, a, b: F.cross_entropy(q, y) + 0.05 * (a ** 2 + b ** 2))


@mistake("ex05.3")
def fit_double_softmax(logits, labels, n_old, steps):
    _checked_fit(logits, labels, n_old, steps)  # PyCIL's F.cross_entropy(torch.softmax(q), y)
    return _descend(logits, labels, n_old, steps,
                    loss_of=lambda q, y, a, b: F.cross_entropy(torch.softmax(q, dim=1), y) + 0.05 * b ** 2)


@mistake("ex05.3")
def fit_starts_from_zero(logits, labels, n_old, steps):
    _checked_fit(logits, labels, n_old, steps)  # (α, β) = (0, 0): the new units start silenced
    return _descend(logits, labels, n_old, steps, start=(0.0, 0.0), loss_of=_bic_loss)


@mistake("ex05.3")
def fit_sum_instead_of_mean(logits, labels, n_old, steps):
    _checked_fit(logits, labels, n_old, steps)  # the summed CE: steps n times too large
    return _descend(logits, labels, n_old, steps,
                    loss_of=lambda q, y, a, b: F.cross_entropy(q, y, reduction="sum") + 0.05 * b ** 2)


@mistake("ex05.3")
def fit_softmax_written_out(logits, labels, n_old, steps):
    _checked_fit(logits, labels, n_old, steps)  # −log(e^q_y / Σ e^q): inf / inf at large logits

    def loss(q, y, a, b):
        e = q.exp()
        return -(e[torch.arange(len(y)), y] / e.sum(dim=1)).log().mean() + 0.05 * b ** 2
    return _descend(logits, labels, n_old, steps, loss_of=loss)


# ex05.4 weight_align
def _checked_align(weight, n_old):
    if weight.dim() != 2:
        raise ValueError("weight must be 2-D")
    _count(n_old, "n_old", 1)
    if n_old >= weight.shape[0]:
        raise ValueError("no new row")


def _safe_norms(w):
    peak = w.abs().amax(dim=1)
    return peak * torch.linalg.vector_norm(w / peak.clamp_min(torch.finfo(w.dtype).tiny)[:, None], dim=1)


def _aligned(weight, n_old, gamma):
    return torch.cat([weight[:n_old], weight[n_old:] * gamma]), gamma


@mistake("ex05.4")
def align_gamma_inverted(weight, n_old):
    _checked_align(weight, n_old)
    norms = _safe_norms(weight)  # mean new / mean old (as in hugoycj's WA): pushes the new rows further up
    return _aligned(weight, n_old, norms[n_old:].mean() / norms[:n_old].mean())


@mistake("ex05.4")
def align_squared_norms(weight, n_old):
    _checked_align(weight, n_old)
    sq = (weight ** 2).sum(dim=1)  # ‖w‖², not ‖w‖
    return _aligned(weight, n_old, sq[:n_old].mean() / sq[n_old:].mean())


@mistake("ex05.4")
def align_scales_the_old_rows(weight, n_old):
    _checked_align(weight, n_old)
    norms = _safe_norms(weight)
    gamma = norms[:n_old].mean() / norms[n_old:].mean()
    return torch.cat([weight[:n_old] / gamma, weight[n_old:]]), gamma  # meets in the middle: the old rows move


@mistake("ex05.4")
def align_in_place(weight, n_old):
    _checked_align(weight, n_old)
    norms = _safe_norms(weight)
    gamma = norms[:n_old].mean() / norms[n_old:].mean()
    with torch.no_grad():
        weight[n_old:] *= gamma  # the network's layer changes
    return weight.detach().clone(), gamma.detach()


@mistake("ex05.4")
def align_sums_instead_of_means(weight, n_old):
    _checked_align(weight, n_old)
    norms = _safe_norms(weight)  # Σ old / Σ new: wrong whenever the groups differ in size
    return _aligned(weight, n_old, norms[:n_old].sum() / norms[n_old:].sum())


@mistake("ex05.4")
def align_plain_norms(weight, n_old):
    _checked_align(weight, n_old)
    norms = (weight ** 2).sum(dim=1).sqrt()  # overflows at 1e20 in float32, underflows at 1e-25
    if not norms[n_old:].mean() > 0:
        raise ValueError("every new row is zero")
    return _aligned(weight, n_old, norms[:n_old].mean() / norms[n_old:].mean())


# ex05.5 aux_targets
@mistake("ex05.5")
def aux_without_plus_one(y, n_old):
    _count(n_old, "n_old", 0)
    y = y.long()
    return torch.where(y >= n_old, y - n_old, torch.zeros_like(y))  # the first new class collides with "old"


@mistake("ex05.5")
def aux_old_classes_minus_one(y, n_old):
    _count(n_old, "n_old", 0)
    y = y.long()
    return torch.where(y >= n_old, y - n_old, torch.full_like(y, -1))  # −1 is no class of the head


@mistake("ex05.5")
def aux_modifies_y(y, n_old):
    _count(n_old, "n_old", 0)
    old = y < n_old
    y -= n_old - 1  # the caller's labels change
    y[old] = 0
    return y.long()


@mistake("ex05.5")
def aux_accepts_a_bool(y, n_old):
    if not isinstance(n_old, int) or n_old < 0:  # True passes as 1
        raise ValueError("n_old must be an int >= 0")
    y = y.long()
    return torch.where(y >= n_old, y - (n_old - 1), torch.zeros_like(y))  # True − 1 = 0: no error, y^a = y


@mistake("ex05.5")
def aux_first_new_class_counted_old(y, n_old):
    _count(n_old, "n_old", 0)
    y = y.long()
    return torch.where(y > n_old, y - n_old + 1, torch.zeros_like(y))  # y = n_old goes to 0


# ex05.6 annealed_gate
def _checked_batch(batch, n_batches):
    for value in (batch, n_batches):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("ints")
    if not 1 <= batch <= n_batches:
        raise ValueError("need 1 <= batch <= n_batches")


@mistake("ex05.6")
def gate_zero_based_batch(e, batch, n_batches, s_max):
    _checked_batch(batch, n_batches)
    if n_batches == 1:
        return torch.sigmoid(s_max * e)
    s = 1 / s_max + (s_max - 1 / s_max) * batch / (n_batches - 1)  # b − 1 forgotten: the last batch overshoots
    return torch.sigmoid(s * e)


@mistake("ex05.6")
def gate_divides_by_n_batches(e, batch, n_batches, s_max):
    _checked_batch(batch, n_batches)
    s = 1 / s_max + (s_max - 1 / s_max) * (batch - 1) / n_batches  # never reaches s_max
    return torch.sigmoid(s * e)


@mistake("ex05.6")
def gate_without_annealing(e, batch, n_batches, s_max):
    _checked_batch(batch, n_batches)
    return torch.sigmoid(s_max * e)  # s = s_max at every batch


@mistake("ex05.6")
def gate_divides_by_zero_for_one_batch(e, batch, n_batches, s_max):
    _checked_batch(batch, n_batches)
    s = 1 / s_max + (s_max - 1 / s_max) * (batch - 1) / (n_batches - 1)  # ZeroDivisionError at B = 1
    return torch.sigmoid(s * e)


@mistake("ex05.6")
def gate_sigmoid_as_a_ratio_of_exponentials(e, batch, n_batches, s_max):
    _checked_batch(batch, n_batches)
    s = float(s_max) if n_batches == 1 else 1 / s_max + (s_max - 1 / s_max) * (batch - 1) / (n_batches - 1)
    x = (s * e).exp()  # inf for large s·e: inf / inf = NaN
    return x / (1 + x)


@mistake("ex05.6")
def gate_accepts_a_bool(e, batch, n_batches, s_max):
    if not 1 <= batch <= n_batches:  # True passes as 1
        raise ValueError("need 1 <= batch <= n_batches")
    s = float(s_max) if n_batches == 1 else 1 / s_max + (s_max - 1 / s_max) * (batch - 1) / (n_batches - 1)
    return torch.sigmoid(s * e)
