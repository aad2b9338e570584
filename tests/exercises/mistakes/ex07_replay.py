"""Plausible wrong answers to lesson 07's exercises (see ``__init__.py``)."""
import math

import torch
import torch.nn.functional as F

from . import mistake as _mistake

MISTAKES: dict = {}


def mistake(exercise_id):
    return _mistake(MISTAKES, exercise_id)


# ex07.1 reparameterize
def _same(*tensors):
    if any(t.shape != tensors[0].shape for t in tensors):
        raise ValueError("shapes differ")


@mistake("ex07.1")
def reparam_sigma_is_the_variance(mu, logvar, eps):
    _same(mu, logvar, eps)
    return mu + torch.exp(logvar) * eps  # σ² = exp(log σ²), not σ


@mistake("ex07.1")
def reparam_sigma_is_sqrt_of_logvar(mu, logvar, eps):
    _same(mu, logvar, eps)
    return mu + torch.sqrt(logvar) * eps  # NaN for a negative log σ²


@mistake("ex07.1")
def reparam_eps_without_sigma(mu, logvar, eps):
    _same(mu, logvar, eps)
    return mu + eps  # σ forgotten: log σ² plays no part


@mistake("ex07.1")
def reparam_detaches_mu(mu, logvar, eps):
    _same(mu, logvar, eps)
    return mu.detach() + torch.exp(0.5 * logvar) * eps  # no gradient to the encoder's mean


@mistake("ex07.1")
def reparam_in_place(mu, logvar, eps):
    _same(mu, logvar, eps)
    with torch.no_grad():
        eps.mul_(torch.exp(0.5 * logvar))  # the caller's ε becomes σ·ε
    return mu + eps


@mistake("ex07.1")
def reparam_broadcasts(mu, logvar, eps):
    return mu + torch.exp(0.5 * logvar) * eps  # no check: (3, 2) with (3, 1) broadcasts silently


# ex07.2 vae_loss_per_sample
def _flat(x, recon, mu, logvar):
    if len(recon) != len(x) or recon[0].numel() != x[0].numel() or mu.shape != logvar.shape or len(mu) != len(x):
        raise ValueError("shapes")
    p = x[0].numel()
    return x.reshape(len(x), p), recon.reshape(len(x), p), p


def _bce(x, r):
    return F.binary_cross_entropy(r, x, reduction="none").sum(1)


def _kl(mu, logvar):
    return 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(1)


@mistake("ex07.2")
def vae_bce_mean_kl_not_divided(x, recon, mu, logvar):
    x, r, p = _flat(x, recon, mu, logvar)
    return _bce(x, r) / p + _kl(mu, logvar)  # the KL weighs P times more than in the ELBO


@mistake("ex07.2")
def vae_kl_mean_over_latent_units(x, recon, mu, logvar):
    x, r, p = _flat(x, recon, mu, logvar)
    return (_bce(x, r) + _kl(mu, logvar) / mu.shape[1]) / p


@mistake("ex07.2")
def vae_batch_mean(x, recon, mu, logvar):
    x, r, p = _flat(x, recon, mu, logvar)
    return ((_bce(x, r) + _kl(mu, logvar)) / p).mean()  # one number, not one per sample


@mistake("ex07.2")
def vae_kl_without_minus_one(x, recon, mu, logvar):
    x, r, p = _flat(x, recon, mu, logvar)
    return (_bce(x, r) + 0.5 * (mu ** 2 + logvar.exp() - logvar).sum(1)) / p


@mistake("ex07.2")
def vae_kl_wrong_sign(x, recon, mu, logvar):
    x, r, p = _flat(x, recon, mu, logvar)
    return (_bce(x, r) - _kl(mu, logvar)) / p  # + ELBO's KL, not − ELBO's


@mistake("ex07.2")
def vae_logvar_taken_as_log_sigma(x, recon, mu, logvar):
    x, r, p = _flat(x, recon, mu, logvar)
    kl = 0.5 * (mu ** 2 + (2 * logvar).exp() - 2 * logvar - 1).sum(1)  # σ² = exp(2·logvar)
    return (_bce(x, r) + kl) / p


@mistake("ex07.2")
def vae_log_not_clamped(x, recon, mu, logvar):
    x, r, p = _flat(x, recon, mu, logvar)
    bce = -(x * r.log() + (1 - x) * (1 - r).log()).sum(1)  # −inf at r = 0, NaN for 0·log 0
    return (bce + _kl(mu, logvar)) / p


@mistake("ex07.2")
def vae_sums_over_axis_1(x, recon, mu, logvar):
    if recon.shape != x.shape or len(mu) != len(x) or mu.shape != logvar.shape:
        raise ValueError("shapes")
    bce = F.binary_cross_entropy(recon, x, reduction="none").sum(1)  # the channel axis of (B, 1, 28, 28)
    return (bce + _kl(mu, logvar)) / x.shape[-1]


# ex07.3 replay_loss
def _checked(replay_logits, teacher_logits, k, T):
    if k < 1 or not T > 0 or replay_logits.shape != teacher_logits.shape:
        raise ValueError("bad arguments")


def _kd(student, teacher, T):
    p = torch.softmax(teacher.detach() / T, 1)
    log_q = torch.log_softmax(student / T, 1)
    return -(p * log_q.masked_fill(p == 0, 0.0)).sum(1).mean()


@mistake("ex07.3")
def replay_without_t_squared(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    ce = F.cross_entropy(current_logits, current_y)
    return ce / k, _kd(replay_logits, teacher_logits, T) * (1 - 1 / k)


@mistake("ex07.3")
def replay_weights_swapped(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    ce = F.cross_entropy(current_logits, current_y)
    return ce * (1 - 1 / k), _kd(replay_logits, teacher_logits, T) * T ** 2 / k


@mistake("ex07.3")
def replay_current_not_divided_by_k(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    ce = F.cross_entropy(current_logits, current_y)
    return ce, _kd(replay_logits, teacher_logits, T) * T ** 2 * (1 - 1 / k)


@mistake("ex07.3")
def replay_teacher_not_detached(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    ce = F.cross_entropy(current_logits, current_y)
    p = torch.softmax(teacher_logits / T, 1)  # gradients flow into the teacher
    log_q = torch.log_softmax(replay_logits / T, 1)
    kd = -(p * log_q.masked_fill(p == 0, 0.0)).sum(1).mean()
    return ce / k, kd * T ** 2 * (1 - 1 / k)


@mistake("ex07.3")
def replay_nan_on_zero_targets(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    ce = F.cross_entropy(current_logits, current_y)
    p = torch.softmax(teacher_logits.detach() / T, 1)
    kd = -(p * torch.log_softmax(replay_logits / T, 1)).sum(1).mean()  # 0·−inf = NaN on masked units
    return ce / k, kd * T ** 2 * (1 - 1 / k)


@mistake("ex07.3")
def replay_student_without_temperature(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    ce = F.cross_entropy(current_logits, current_y)
    p = torch.softmax(teacher_logits.detach() / T, 1)
    log_q = torch.log_softmax(replay_logits, 1)  # the student's logits not divided by T
    kd = -(p * log_q.masked_fill(p == 0, 0.0)).sum(1).mean()
    return ce / k, kd * T ** 2 * (1 - 1 / k)


@mistake("ex07.3")
def replay_kd_mean_over_units(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    ce = F.cross_entropy(current_logits, current_y)
    p = torch.softmax(teacher_logits.detach() / T, 1)
    log_q = torch.log_softmax(replay_logits / T, 1)
    kd = -(p * log_q.masked_fill(p == 0, 0.0)).mean()  # averaged over the units too
    return ce / k, kd * T ** 2 * (1 - 1 / k)


@mistake("ex07.3")
def replay_hard_targets(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    ce = F.cross_entropy(current_logits, current_y)
    hard = F.cross_entropy(replay_logits, teacher_logits.argmax(1))  # the teacher's argmax, not its distribution
    return ce / k, hard * (1 - 1 / k)


@mistake("ex07.3")
def replay_ce_by_one_hot(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    _checked(replay_logits, teacher_logits, k, T)
    one_hot = F.one_hot(current_y, current_logits.shape[1]).to(current_logits.dtype)
    ce = -(one_hot * torch.log_softmax(current_logits, 1)).sum(1).mean()  # 0·−inf on masked units
    return ce / k, _kd(replay_logits, teacher_logits, T) * T ** 2 * (1 - 1 / k)


# ex07.4 gmm_kl
def _gmm_checked(z, mu, logvar, means, logvars, y):
    if z.shape != mu.shape or mu.shape != logvar.shape or means.shape != logvars.shape \
            or means.shape[1] != z.shape[1]:
        raise ValueError("shapes")
    if y is not None and len(y) and not (0 <= int(y.min()) and int(y.max()) < len(means)):
        raise ValueError("modes")


def _log_normal(v, mean, lv, const=math.log(2 * math.pi)):
    return -0.5 * (const + lv + (v - mean) ** 2 / lv.exp()).sum(-1)


def _closed(mu, logvar, means, logvars, y):
    m, s = means[y], logvars[y]
    return 0.5 * (s - logvar + (logvar.exp() + (mu - m) ** 2) / s.exp() - 1).sum(1)


def _components(z, means, logvars, const=math.log(2 * math.pi)):
    return _log_normal(z[:, None], means[None], logvars[None], const)  # (B, K)


@mistake("ex07.4")
def gmm_without_minus_log_k(z, mu, logvar, means, logvars, y=None):
    _gmm_checked(z, mu, logvar, means, logvars, y)
    if y is not None:
        return _closed(mu, logvar, means, logvars, y)
    return _log_normal(z, mu, logvar) - torch.logsumexp(_components(z, means, logvars), 1)  # Σ_k, not 1/K·Σ_k


@mistake("ex07.4")
def gmm_mean_of_log_densities(z, mu, logvar, means, logvars, y=None):
    _gmm_checked(z, mu, logvar, means, logvars, y)
    if y is not None:
        return _closed(mu, logvar, means, logvars, y)
    return _log_normal(z, mu, logvar) - _components(z, means, logvars).mean(1)  # log of a mean ≠ mean of logs


@mistake("ex07.4")
def gmm_naive_log_sum_exp(z, mu, logvar, means, logvars, y=None):
    _gmm_checked(z, mu, logvar, means, logvars, y)
    if y is not None:
        return _closed(mu, logvar, means, logvars, y)
    log_p = _components(z, means, logvars).exp().sum(1).log() - math.log(len(means))  # exp underflows to 0
    return _log_normal(z, mu, logvar) - log_p


@mistake("ex07.4")
def gmm_log_2pi_in_one_term(z, mu, logvar, means, logvars, y=None):
    _gmm_checked(z, mu, logvar, means, logvars, y)
    if y is not None:
        return _closed(mu, logvar, means, logvars, y)
    log_p = torch.logsumexp(_components(z, means, logvars, const=0.0), 1) - math.log(len(means))  # dropped here only
    return _log_normal(z, mu, logvar) - log_p


@mistake("ex07.4")
def gmm_closed_form_swapped(z, mu, logvar, means, logvars, y=None):
    _gmm_checked(z, mu, logvar, means, logvars, y)
    if y is not None:
        m, s = means[y], logvars[y]
        return 0.5 * (logvar - s + (s.exp() + (mu - m) ** 2) / logvar.exp() - 1).sum(1)  # KL(p ‖ q)
    log_p = torch.logsumexp(_components(z, means, logvars), 1) - math.log(len(means))
    return _log_normal(z, mu, logvar) - log_p


@mistake("ex07.4")
def gmm_ignores_y(z, mu, logvar, means, logvars, y=None):
    _gmm_checked(z, mu, logvar, means, logvars, y)
    log_p = torch.logsumexp(_components(z, means, logvars), 1) - math.log(len(means))  # the mixture, always
    return _log_normal(z, mu, logvar) - log_p


@mistake("ex07.4")
def gmm_negative_modes_not_checked(z, mu, logvar, means, logvars, y=None):
    if z.shape != mu.shape or mu.shape != logvar.shape or means.shape != logvars.shape \
            or means.shape[1] != z.shape[1]:
        raise ValueError("shapes")
    if y is not None:
        if len(y) and int(y.max()) >= len(means):
            raise ValueError("modes")  # y = −1 picks the last mode silently
        return _closed(mu, logvar, means, logvars, y)
    log_p = torch.logsumexp(_components(z, means, logvars), 1) - math.log(len(means))
    return _log_normal(z, mu, logvar) - log_p


# ex07.5 gating_mask
def _gate_checked(n_units, keep):
    if isinstance(n_units, bool) or not isinstance(n_units, int) or n_units < 1:
        raise ValueError("n_units")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ValueError("keep")
    if round(keep * n_units) == 0:
        raise ValueError("none kept")


def _mask(n, idx):
    mask = torch.zeros(n, dtype=torch.bool)
    mask[idx] = True
    return mask


@mistake("ex07.5")
def gate_float_mask(n_units, keep, generator):
    _gate_checked(n_units, keep)
    mask = torch.zeros(n_units)  # float 0/1
    mask[torch.rand(n_units, generator=generator).argsort()[:round(keep * n_units)]] = 1.0
    return mask


@mistake("ex07.5")
def gate_bernoulli_per_unit(n_units, keep, generator):
    _gate_checked(n_units, keep)
    return torch.rand(n_units, generator=generator) < keep  # BI-R's decoder gates: the count varies


@mistake("ex07.5")
def gate_randperm(n_units, keep, generator):
    _gate_checked(n_units, keep)
    return _mask(n_units, torch.randperm(n_units, generator=generator)[:round(keep * n_units)])  # another draw


@mistake("ex07.5")
def gate_largest_scores(n_units, keep, generator):
    _gate_checked(n_units, keep)
    return _mask(n_units, torch.rand(n_units, generator=generator).argsort(descending=True)[:round(keep * n_units)])


@mistake("ex07.5")
def gate_int_truncates(n_units, keep, generator):
    _gate_checked(n_units, keep)
    return _mask(n_units, torch.rand(n_units, generator=generator).argsort()[:int(keep * n_units)])  # XdG's int()


@mistake("ex07.5")
def gate_rounds_half_up(n_units, keep, generator):
    _gate_checked(n_units, keep)
    return _mask(n_units, torch.rand(n_units, generator=generator).argsort()[:math.floor(keep * n_units + 0.5)])


@mistake("ex07.5")
def gate_global_rng(n_units, keep, generator):
    _gate_checked(n_units, keep)
    return _mask(n_units, torch.rand(n_units).argsort()[:round(keep * n_units)])  # the generator is ignored


@mistake("ex07.5")
def gate_no_checks(n_units, keep, generator):
    k = max(1, min(n_units, round(keep * n_units)))  # clamps instead of raising
    return _mask(int(n_units), torch.rand(int(n_units), generator=generator).argsort()[:k])
