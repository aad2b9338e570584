"""Plausible wrong answers to lesson 04's exercises (see ``__init__.py``)."""
import math

import torch
import torch.nn.functional as F

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


def _unit(v, dim=-1):  # a correct L2 normalisation, for the mistakes that go wrong elsewhere
    return v / torch.linalg.vector_norm(v, dim=dim, keepdim=True)


def _greedy(phi, mu, m, exclude=True):
    """Alg. 4's greedy rule on the given rows and target (correct when phi is normalised and mu its mean)."""
    picked = torch.zeros(len(phi), dtype=torch.bool)
    total, order = torch.zeros_like(mu), []
    for k in range(1, min(m, len(phi)) + 1):
        dist = torch.linalg.vector_norm(mu - (total + phi) / k, dim=1)
        if exclude:
            dist[picked] = math.inf
        i = int(dist.argmin())
        order.append(i)
        picked[i] = True
        total = total + phi[i]
    return order


# ex04.3 herding_selection
@mistake("ex04.3")
def herding_without_normalising(features, m):
    # raw features: long rows dominate the mean and the picks
    return torch.tensor(_greedy(features, features.mean(0), m), dtype=torch.long)


@mistake("ex04.3")
def herding_allows_repeats(features, m):
    # the Welling-style iteration without ruling out picked rows: the same row can come back
    phi = _unit(features, dim=1)
    return torch.tensor(_greedy(phi, phi.mean(0), m, exclude=False), dtype=torch.long)


@mistake("ex04.3")
def herding_nearest_to_the_mean_each_time(features, m):
    # the m rows closest to μ, not the rows that keep the RUNNING mean closest to μ
    phi = _unit(features, dim=1)
    dist = torch.linalg.vector_norm(phi - phi.mean(0), dim=1)
    return dist.argsort()[:m]


@mistake("ex04.3")
def herding_returns_the_picks_sorted(features, m):
    # a boolean mask of the picked rows, read back with nonzero(): the pick order is lost
    phi = _unit(features, dim=1)
    mask = torch.zeros(len(phi), dtype=torch.bool)
    mask[_greedy(phi, phi.mean(0), m)] = True
    return mask.nonzero().flatten()


@mistake("ex04.3")
def herding_renormalises_the_mean(features, m):
    # μ normalised to length 1: outside the cloud of the picked means' reach, later picks differ
    phi = _unit(features, dim=1)
    return torch.tensor(_greedy(phi, _unit(phi.mean(0)), m), dtype=torch.long)


# ex04.5 nme_predict
def _pairwise(f, mu):
    return torch.linalg.vector_norm(f[:, None, :] - mu[None, :, :], dim=2)


@mistake("ex04.5")
def nme_argmax_of_the_distances(features, class_means, normalize=True):
    f, mu = (_unit(features, 1), _unit(class_means, 1)) if normalize else (features, class_means)
    return _pairwise(f, mu).argmax(dim=1)  # the FARTHEST mean


@mistake("ex04.5")
def nme_normalises_over_the_wrong_axis(features, class_means, normalize=True):
    f, mu = features, class_means
    if normalize:  # each column divided by its norm over the batch: not each feature's length
        f, mu = _unit(f, 0), _unit(mu, 0)
    return _pairwise(f, mu).argmin(dim=1)


@mistake("ex04.5")
def nme_forgets_to_renormalise_the_means(features, class_means, normalize=True):
    f = _unit(features, 1) if normalize else features  # the means are used as they are
    return _pairwise(f, class_means).argmin(dim=1)


@mistake("ex04.5")
def nme_dot_product_whatever_normalize(features, class_means, normalize=True):
    # the largest dot product: the nearest mean for unit vectors only, not for raw ones
    f, mu = (_unit(features, 1), _unit(class_means, 1)) if normalize else (features, class_means)
    return (f @ mu.T).argmax(dim=1)


@mistake("ex04.5")
def nme_always_normalises(features, class_means, normalize=True):
    return _pairwise(_unit(features, 1), _unit(class_means, 1)).argmin(dim=1)  # normalize ignored


# ex04.1 exemplars_per_class
def _checked(budget, n_classes):
    for value in (budget, n_classes):
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise ValueError("budget and n_classes must be positive ints")


@mistake("ex04.1")
def per_class_true_division(budget, n_classes):
    _checked(budget, n_classes)
    if budget < n_classes:
        raise ValueError("fewer exemplars than classes")
    return budget / n_classes  # a float, and 2000 / 3 = 666.67


@mistake("ex04.1")
def per_class_rounded_up(budget, n_classes):
    _checked(budget, n_classes)
    return math.ceil(budget / n_classes)  # the Theano code's rounding: may keep more than the budget


@mistake("ex04.1")
def per_class_rounded_to_nearest(budget, n_classes):
    _checked(budget, n_classes)
    m = round(budget / n_classes)
    if m == 0:
        raise ValueError("fewer exemplars than classes")
    return m


@mistake("ex04.1")
def per_class_zero_allowed(budget, n_classes):
    _checked(budget, n_classes)
    return budget // n_classes  # 5 // 10 = 0: a memory that keeps nothing, silently


@mistake("ex04.1")
def per_class_without_type_checks(budget, n_classes):
    if budget < n_classes:  # the zero case only: 2000.0 // 10 = 200.0, −2000 // −10 = 200 pass
        raise ValueError("fewer exemplars than classes")
    return budget // n_classes


# ex04.2 reduce_exemplars
def _check_m(m):
    if isinstance(m, bool) or not isinstance(m, int) or m < 0:
        raise ValueError("m must be an int >= 0")


@mistake("ex04.2")
def reduce_keeps_the_last_m(exemplar_indices, m):
    _check_m(m)
    return {c: v[len(v) - min(m, len(v)):].clone() for c, v in exemplar_indices.items()}


@mistake("ex04.2")
def reduce_modifies_the_input_dict(exemplar_indices, m):
    _check_m(m)
    for c in exemplar_indices:
        exemplar_indices[c] = exemplar_indices[c][:m].clone()  # the caller's dict is shrunk too
    return exemplar_indices


@mistake("ex04.2")
def reduce_keeps_the_smallest_indices(exemplar_indices, m):
    _check_m(m)
    return {c: v.sort().values[:m].clone() for c, v in exemplar_indices.items()}  # herding order lost


@mistake("ex04.2")
def reduce_returns_views(exemplar_indices, m):
    _check_m(m)
    return {c: v[:m] for c, v in exemplar_indices.items()}  # slices share the input's memory


@mistake("ex04.2")
def reduce_without_checking_m(exemplar_indices, m):
    return {c: v[:m].clone() for c, v in exemplar_indices.items()}  # m = −1 drops the LAST one


# ex04.6 icarl_targets
def _one_hot(labels, n_units, old_logits):
    dtype = old_logits.dtype if old_logits is not None else torch.float32
    return F.one_hot(labels, n_units).to(dtype)


@mistake("ex04.6")
def targets_one_hot_for_the_old_units_too(labels, n_units, old_logits, T=1.0):
    return _one_hot(labels, n_units, old_logits)  # no distillation: the old network is ignored


@mistake("ex04.6")
def targets_sigmoid_without_T(labels, n_units, old_logits, T=1.0):
    targets = _one_hot(labels, n_units, old_logits)
    if old_logits is not None:
        targets[:, :old_logits.shape[1]] = torch.sigmoid(old_logits)
    return targets


@mistake("ex04.6")
def targets_softmax_instead_of_sigmoid(labels, n_units, old_logits, T=1.0):
    targets = _one_hot(labels, n_units, old_logits)
    if old_logits is not None:
        targets[:, :old_logits.shape[1]] = torch.softmax(old_logits / T, dim=1)
    return targets


@mistake("ex04.6")
def targets_old_label_keeps_its_one(labels, n_units, old_logits, T=1.0):
    targets = _one_hot(labels, n_units, old_logits)
    if old_logits is not None:
        K = old_logits.shape[1]  # an exemplar's own unit stays 1 instead of the old network's output
        targets[:, :K] = torch.maximum(targets[:, :K], torch.sigmoid(old_logits / T))
    return targets


@mistake("ex04.6")
def targets_divide_old_logits_in_place(labels, n_units, old_logits, T=1.0):
    targets = _one_hot(labels, n_units, old_logits)
    if old_logits is not None:
        old_logits /= T  # the caller's (the teacher's) logits change
        targets[:, :old_logits.shape[1]] = torch.sigmoid(old_logits)
    return targets


# ex04.4 worked_example_distances
@mistake("ex04.4")
def distances_squared(test_vector, class_means, normalize):
    v, mu = (_unit(test_vector), _unit(class_means, 1)) if normalize else (test_vector, class_means)
    return ((mu - v) ** 2).sum(dim=1)  # ‖v − μ‖², not ‖v − μ‖


@mistake("ex04.4")
def distances_test_vector_not_normalised(test_vector, class_means, normalize):
    mu = _unit(class_means, 1) if normalize else class_means
    return torch.linalg.vector_norm(mu - test_vector, dim=1)


@mistake("ex04.4")
def distances_means_normalised_over_the_wrong_axis(test_vector, class_means, normalize):
    v, mu = (_unit(test_vector), _unit(class_means, 0)) if normalize else (test_vector, class_means)
    return torch.linalg.vector_norm(mu - v, dim=1)


@mistake("ex04.4")
def distances_means_not_normalised(test_vector, class_means, normalize):
    v = _unit(test_vector) if normalize else test_vector
    return torch.linalg.vector_norm(class_means - v, dim=1)


@mistake("ex04.4")
def distances_always_normalised(test_vector, class_means, normalize):
    return torch.linalg.vector_norm(_unit(class_means, 1) - _unit(test_vector), dim=1)  # normalize ignored


# ---- the §2 kinds: bools as counts, class order, extremes, zero and parallel vectors
@mistake("ex04.1")
def per_class_accepts_a_bool(budget, n_classes):
    for value in (budget, n_classes):
        if not isinstance(value, int) or value <= 0:  # isinstance(True, int) holds: True passes as 1
            raise ValueError("budget and n_classes must be positive ints")
    if budget < n_classes:
        raise ValueError("fewer exemplars than classes")
    return budget // n_classes


@mistake("ex04.2")
def reduce_accepts_a_bool(exemplar_indices, m):
    if not isinstance(m, int) or m < 0:  # m = True keeps one exemplar, m = False none, silently
        raise ValueError("m must be an int >= 0")
    return {c: v[:m].clone() for c, v in exemplar_indices.items()}


@mistake("ex04.2")
def reduce_sorts_the_classes(exemplar_indices, m):
    _check_m(m)
    return {c: exemplar_indices[c][:m].clone() for c in sorted(exemplar_indices)}  # class order changed


def _plain_unit(v, dim=-1):
    # v / sqrt(Σ v²): the square overflows (float32 1e20) or underflows (1e-25), and 0 / 0 is NaN
    return v / (v ** 2).sum(dim=dim, keepdim=True).sqrt()


@mistake("ex04.3")
def herding_plain_normalisation(features, m):
    phi = _plain_unit(features, 1)
    return torch.tensor(_greedy(phi, phi.mean(0), m), dtype=torch.long)


@mistake("ex04.3")
def herding_f_normalize_without_rescaling(features, m):
    phi = F.normalize(features, dim=1)  # right for zero rows, but ‖1e20 · v‖ is inf in float32: the row becomes 0
    return torch.tensor(_greedy(phi, phi.mean(0), m), dtype=torch.long)


@mistake("ex04.4")
def distances_by_the_cosine_identity(test_vector, class_means, normalize):
    if not normalize:
        return torch.linalg.vector_norm(class_means - test_vector, dim=1)
    v, mu = F.normalize(test_vector, dim=0), F.normalize(class_means, dim=1)
    return (2 - 2 * mu @ v).sqrt()  # true on paper; rounding near cos = 1 gives ~1e-4 or NaN in float32


@mistake("ex04.4")
def distances_plain_normalisation(test_vector, class_means, normalize):
    v, mu = (_plain_unit(test_vector), _plain_unit(class_means, 1)) if normalize else (test_vector, class_means)
    return torch.linalg.vector_norm(mu - v, dim=1)


@mistake("ex04.5")
def nme_plain_normalisation(features, class_means, normalize=True):
    f, mu = (_plain_unit(features, 1), _plain_unit(class_means, 1)) if normalize else (features, class_means)
    return _pairwise(f, mu).argmin(dim=1)


@mistake("ex04.6")
def targets_sigmoid_as_a_ratio_of_exponentials(labels, n_units, old_logits, T=1.0):
    targets = _one_hot(labels, n_units, old_logits)
    if old_logits is not None:
        e = torch.exp(old_logits / T)  # inf for large logits: inf / inf = NaN
        targets[:, :old_logits.shape[1]] = e / (1 + e)
    return targets
