"""Lesson 07 — Generative replay, BI-R and XdG gating: exercises.

Write each function below, then grade your work with the grading tests of this lesson
(`tests/exercises/test_ex07_replay.py`, or `clcourse grade --lesson 07`). Each exercise says which lesson
section explains it. Use plain tensor operations (`exp`, `log`, `clamp`, `sum`, `mean`, `torch.logsumexp`,
`torch.log_softmax`, `F.cross_entropy`, `torch.rand`, `argsort`, indexing, arithmetic): the point is to
see every step. The tests compare your results with `clcourse`'s own implementations (`clcourse.vae`:
`reparameterize`, `vae_loss`, `gmm_kl_sampled`, `gating_masks`; `clcourse.losses`: `distillation`,
`mix_current_replay`, which `clcourse.methods.gr.GR.loss` puts together) and with independent oracles
(the formulas written out in float64, values worked by hand, gradients by autograd and by hand) — write
yours without looking at them first.

Conventions. A batch holds B ≥ 1 samples (some exercises also take B = 0, as they say); latent codes
are (B, D) tensors of float32 or float64, one row per sample, D latent units; images are (B, P) or
(B, 1, 28, 28), P pixels per sample, values in [0, 1]. log σ² ("logvar") is what the encoder outputs:
σ² = exp(logvar), σ = exp(½·logvar).
  * §1 the variational auto-encoder (VAE; Kingma & Welling 2014, "Auto-encoding variational Bayes",
    ICLR): the encoder gives q(z|x) = N(μ, diag σ²); a code z is drawn by the reparameterisation trick
    (§2.4) so that gradients reach μ and log σ²; the loss is the negative ELBO, a Bernoulli
    reconstruction term (binary cross-entropy) plus the KL to the prior N(0, I) in closed form
    (Appendix B), divided by the pixels P as the authors of BI-R compute it (van de Ven, Siegelmann &
    Tolias 2020, "Brain-inspired replay for continual learning with artificial neural networks",
    Nat. Commun. 11:4069; their code GMvandeVen/continual-learning @ e6d795a, `models/vae.py`,
    `loss_function`);
  * §2 generative replay: samples x̃ of the previous VAE, labelled by the previous classifier with its
    logits as soft targets at temperature T, are trained on next to the current batch, each of the k
    tasks seen counting equally (1/k for the current one, 1 − 1/k for the replayed ones; the authors'
    `train.py`, `rnt = 1/task`);
  * §4 brain-inspired replay: a Gaussian-mixture prior, one mode (m_k, s_k²) per class, instead of
    N(0, I), and context gating — each context keeps a fixed random subset of a layer's units and
    silences the rest (XdG: Masse, Grant & Freedman 2018, "Alleviating catastrophic forgetting using
    context-dependent gating and synaptic stabilization", PNAS 115(44)).
Sums over latent units or pixels are per sample; nothing is averaged over the batch unless an exercise
says so. Return new tensors: never modify an input, and leave its requires_grad flag alone. Gradients
must flow through your results to the inputs that carry them (no `.item()`, no detach, except where an
exercise asks for one).
"""
import math

import torch
import torch.nn.functional as F


# ---------------------------------------------------------------- §1 the VAE

def reparameterize(mu, logvar, eps):
    """ex07.1 · Lesson 07 §1 — The reparameterisation trick: z = μ + σ·ε with σ = exp(½·log σ²).

    mu, logvar, eps: float tensors of the SAME shape (usually (B, D); any shape, B = 0 included) and
    dtype (float32 or float64): the encoder's mean μ and log-variance log σ² (they may require gradients:
    they come out of the encoder), and the noise ε ~ N(0, I), drawn by the caller (the lesson draws it
    with `torch.randn(mu.shape, generator=g)`; given here so that the result is a fixed number). Return
        z = μ + exp(½·log σ²) ⊙ ε          (elementwise)
    — σ = exp(½·log σ²), the standard deviation: not exp(log σ²) (the variance), not sqrt(log σ²).
    A NEW tensor of mu's shape and dtype, differentiable in μ and log σ²: ∂z/∂μ = 1 and
    ∂z/∂log σ² = ½·σ·ε, elementwise (so no detach, no torch.no_grad()).
    Raise ValueError when the three shapes differ. Do not modify mu, logvar or eps (`logvar.mul_(0.5)`
    changes the caller's tensor).
    """
    ### BEGIN SOLUTION
    if mu.shape != logvar.shape or mu.shape != eps.shape:
        raise ValueError(f"mu, logvar and eps must have the same shape, got {tuple(mu.shape)}, "
                         f"{tuple(logvar.shape)} and {tuple(eps.shape)}")
    return mu + torch.exp(0.5 * logvar) * eps
    ### END SOLUTION


def vae_loss_per_sample(x, recon, mu, logvar):
    """ex07.2 · Lesson 07 §1 — The VAE's loss per sample, as BI-R's authors compute it: (BCE + KL) / P.

    x: the images, (B, P) or (B, 1, 28, 28) (any shape (B, ...)), values in [0, 1] (grey levels are
    fine: soft targets); recon: the decoder's output probabilities, a tensor with the same number B of
    samples and P of pixels per sample (its shape may differ from x's: (B, P) against (B, 1, 28, 28)),
    values in [0, 1], 0 and 1 included; mu, logvar: (B, D), the encoder's μ and log σ². B ≥ 1; float32 or
    float64, all of one dtype. For each sample b, with the sums over ITS OWN pixels p and latent units d:
        BCE_b = −Σ_p [x_p·log r_p + (1 − x_p)·log(1 − r_p)]      each log clamped at −100
        KL_b  = ½·Σ_d (μ_d² + σ_d² − log σ_d² − 1),  σ_d² = exp(log σ_d²)     (KL to N(0, I))
        loss_b = (BCE_b + KL_b) / P
    Return the (B,) tensor of the loss_b (of x's dtype): one number per sample, not the batch mean (the
    training loop averages it). Both terms are divided by P: averaging the BCE over pixels and adding the
    KL as it is would weigh the KL P times more than the ELBO does. The clamp is that of
    `F.binary_cross_entropy` (which you may use, with reduction="none"): a recon of exactly 0 where
    x = 1 costs 100 for that pixel, not inf, and 0·log 0 counts as 0, not NaN. Differentiable in recon,
    mu and logvar. Raise ValueError when x and recon differ in the number of samples or of pixels, or
    mu, logvar do not have one row per sample. Do not modify the inputs.
    """
    ### BEGIN SOLUTION
    if x.dim() < 2 or recon.dim() < 2 or len(recon) != len(x) or \
            math.prod(recon.shape[1:]) != math.prod(x.shape[1:]):
        raise ValueError(f"recon {tuple(recon.shape)} and x {tuple(x.shape)} must hold the same samples "
                         "and pixels")
    if mu.shape != logvar.shape or mu.dim() != 2 or len(mu) != len(x):
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} need one row per sample")
    pixels = math.prod(x.shape[1:])
    r, t = recon.reshape(len(x), pixels), x.reshape(len(x), pixels)
    # −Σ_p [x·log r + (1 − x)·log(1 − r)], logs clamped at −100 (a finite gradient at r = 0 or 1 too)
    bce = F.binary_cross_entropy(r, t, reduction="none").sum(1)
    kl = 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(1)
    return (bce + kl) / pixels
    ### END SOLUTION


# ---------------------------------------------------------------- §2 generative replay

def replay_loss(current_logits, current_y, replay_logits, teacher_logits, k, T=2.0):
    """ex07.3 · Lesson 07 §2 — The classifier's loss in generative replay with soft targets: its two terms.

    current_logits: (B, C) the classifier's logits on the current batch, current_y: (B,) their labels
    (int64); replay_logits: (N, C') the classifier's logits on the replayed samples x̃, teacher_logits:
    (N, C') the PREVIOUS classifier's logits on the same x̃ (the soft targets); B, N ≥ 1; float32 or
    float64. Inactive units carry −inf: in class-IL the teacher never had the new classes, so its logits
    are −inf there, and the student's replay logits may be masked to −inf there too (every row keeps at
    least one finite entry; a label's own logit is finite). k ≥ 1: the number of tasks seen so far,
    the current one included; T > 0: the temperature. As `GR.loss` does it (van de Ven et al. 2020):
        CE  = the mean over the B rows of −log softmax(current_logits)[y]        (F.cross_entropy)
        p   = softmax(teacher_logits / T),  log q = log_softmax(replay_logits / T)   (rows)
        KD  = T² · the mean over the N rows of −Σ_i p_i·log q_i     (a SUM over the units, × T²)
        return (CE / k, (1 − 1/k)·KD)
    — each of the k tasks counts equally: the current one through CE (1/k), the k − 1 old ones through
    the replayed term. (The sum over the units is `GR`'s default, kd_reduction="sum"; its paper profile
    averages over them as the 2019 code did: lesson 03.) Return the pair (current term, replay term), two
    0-d tensors of the logits' dtype; the loss is their sum (k = 1: CE alone, the replay term 0). The T²
    keeps the soft targets' gradients on the scale of the hard ones (Hinton et al. 2015). A teacher's −inf
    is a zero target: its term p_i·log q_i is 0 even where log q_i = −inf (0·−inf is NaN: leave those
    units out of the sum). The teacher is a fixed target: no gradient may reach teacher_logits (detach
    it); gradients reach current_logits and replay_logits. Raise ValueError when k < 1, T ≤ 0, or the
    replay and teacher logits differ in shape. Do not modify the inputs.
    """
    ### BEGIN SOLUTION
    if k < 1:
        raise ValueError(f"k counts the tasks seen so far (1 or more), got {k}")
    if not T > 0:
        raise ValueError(f"the temperature must be positive, got T = {T!r}")
    if replay_logits.shape != teacher_logits.shape:
        raise ValueError(f"replay logits {tuple(replay_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} must have the same shape")
    ce = F.cross_entropy(current_logits, current_y)
    p = torch.softmax(teacher_logits.detach() / T, dim=1)
    log_q = torch.log_softmax(replay_logits / T, dim=1)
    kd = -(p * log_q.masked_fill(p == 0, 0.0)).sum(1).mean() * T ** 2   # 0·log q = 0 where p = 0
    return ce / k, kd * (1 - 1 / k)
    ### END SOLUTION


# ---------------------------------------------------------------- §4 BI-R: the mixture prior and gating

def gmm_kl(z, mu, logvar, means, logvars, y=None):
    """ex07.4 · Lesson 07 §4 — The KL of q(z|x) to BI-R's Gaussian-mixture prior, per sample.

    z, mu, logvar: (B, D), a code z drawn from q(z|x) = N(μ, diag σ²) (ex07.1) and q's μ and log σ²;
    means, logvars: (K, D), the prior's K modes, row k the mean m_k and log-variance log s_k² of mode k
    (one mode per class in BI-R); y: None, or a (B,) integer tensor of modes in [0, K). B ≥ 0 (an empty
    batch gives an empty result); float32 or float64. With log N the diagonal Gaussian log-density
        log N(z; m, s²) = −½·Σ_d (log 2π + log s_d² + (z_d − m_d)²/s_d²)
    return the (B,) tensor:
      * y None — the prior is the mixture p(z) = 1/K·Σ_k N(z; m_k, s_k²), whose KL has no closed form: the
        one-sample estimate at the given z,
            KL_b ≈ log N(z_b; μ_b, σ_b²) − log p(z_b),
            log p(z) = logsumexp_k log N(z; m_k, s_k²) − log K
        (the −log K is the mixture's weights 1/K; the log 2π cancels between the two terms, so drop it in
        both or in neither). Compute log p with a logsumexp (`torch.logsumexp`, which subtracts the
        largest term first): a z far from every mode has log-densities of −10⁵, whose exp is 0, and the
        log of a sum of exps is then −inf;
      * y given — the prior of sample b is its class's mode, N(m_y, s_y²), and the KL between two
        diagonal Gaussians is exact (z is not used):
            KL_b = ½·Σ_d (log s_d² − log σ_d² + (σ_d² + (μ_d − m_d)²)/s_d² − 1)
        with (m, s²) the mode y_b: KL(q ‖ p), not KL(p ‖ q).
    Differentiable in z, mu, logvar, means and logvars (the modes are learned). Raise ValueError when z,
    mu, logvar differ in shape, means and logvars differ in shape, the latent sizes D differ, or y has a
    mode outside [0, K) (a −1 would pick the last mode silently). Do not modify the inputs.
    """
    ### BEGIN SOLUTION
    if z.shape != mu.shape or mu.shape != logvar.shape or z.dim() != 2:
        raise ValueError(f"z {tuple(z.shape)}, mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} "
                         "must be (B, D) alike")
    if means.shape != logvars.shape or means.dim() != 2 or means.shape[1] != z.shape[1]:
        raise ValueError(f"means {tuple(means.shape)} and logvars {tuple(logvars.shape)} must be (K, "
                         f"{z.shape[1]})")
    if y is not None:
        if len(y) and not (0 <= int(y.min()) and int(y.max()) < len(means)):
            raise ValueError(f"y must hold modes in [0, {len(means)})")
        m, s = means[y], logvars[y]
        return 0.5 * (s - logvar + (logvar.exp() + (mu - m).pow(2)) / s.exp() - 1).sum(1)

    def log_normal(v, mean, lv):
        return -0.5 * (math.log(2 * math.pi) + lv + (v - mean).pow(2) / lv.exp()).sum(-1)

    log_p = torch.logsumexp(log_normal(z[:, None, :], means[None], logvars[None]), dim=1) - math.log(len(means))
    return log_normal(z, mu, logvar) - log_p
    ### END SOLUTION


def gating_mask(n_units, keep, generator):
    """ex07.5 · Lesson 07 §4 — One context's gate: a random subset of round(keep·n) units, a bool mask.

    n_units: n, the layer's width, a Python int ≥ 1; keep: the fraction of units the context keeps, a
    Python float in (0, 1]; generator: a torch.Generator (on the CPU), seeded by the caller — one seed per
    context, so that the same context gets the same gate every time. Draw EXACTLY as clcourse does, so
    that your mask equals `clcourse.vae.gating_masks(1, n_units, keep, generator)[0]` from the same seed:
        k      = round(keep·n)                            Python's round (round(2.5) = 2)
        scores = torch.rand(n, generator=generator)       one draw of n numbers, nothing else drawn
        kept   = the indices of the k SMALLEST scores     scores.argsort()[:k]
    Return a NEW (n,) tensor of dtype torch.bool, True at the k kept units: exactly k of them (not a
    Bernoulli(keep) per unit, whose count varies; not a float 0/1 mask — a bool mask is what
    `tensor[mask]` and `masked_fill` expect). The generator's state moves on by those n numbers only, so
    C calls in a row with one generator give the C rows of `gating_masks(C, n, keep, generator)`.
    Raise ValueError when n_units is not an int ≥ 1 (a bool or a float 10.0 is not), when keep is not a
    number in (0, 1] (a bool is not), or when round(keep·n) is 0 (a gate that keeps no unit).
    """
    ### BEGIN SOLUTION
    if isinstance(n_units, bool) or not isinstance(n_units, int) or n_units < 1:
        raise ValueError(f"n_units must be an int >= 1, got {n_units!r}")
    if isinstance(keep, bool) or not isinstance(keep, (int, float)) or not 0 < keep <= 1:
        raise ValueError(f"keep must be a fraction in (0, 1], got {keep!r}")
    k = round(keep * n_units)
    if k == 0:
        raise ValueError(f"keep={keep} of {n_units} units keeps none")
    order = torch.rand(n_units, generator=generator).argsort()
    mask = torch.zeros(n_units, dtype=torch.bool)
    mask[order[:k]] = True
    return mask
    ### END SOLUTION
