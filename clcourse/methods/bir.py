"""Brain-inspired replay (BI-R): van de Ven, Siegelmann & Tolias 2020, "Brain-inspired replay for
continual learning with artificial neural networks", Nat. Commun. 11:4069, as their code does it
(GMvandeVen/brain-inspired-replay @ 1a030f7: ``models/vae.py`` ``train_a_batch``, ``loss_function``,
``sample``; ``options.py`` ``set_defaults`` for the defaults). Lesson 07 §4.

Generative replay (``gr.py``) with five changes, each an argument, all on by default as ``--brain-inspired``:

* ``rtf`` replay-through-feedback: no separate generator; the classifier's hidden stack is the VAE's
  encoder and the class is read from its last hidden layer (``--classify beforeZ``): one network.
* ``conditional``: a Gaussian-mixture prior with one learned mode per class; an image of class y is
  encoded toward mode y (KL to N(m_y, s_y²), closed form), and replay picks an old class, then z from
  its mode.
* ``gating`` on internal context: each class owns a fixed random subset of the decoder's hidden
  units, the proportion ``gate_prop`` of them silenced (split MNIST 0.8), in training and in replay.
* ``internal``: conv layers pre-trained on other data (``clcourse pretrain``), frozen; the VAE models
  and replays their output, never pixels (a Gaussian likelihood: hidden features are not probabilities).
* ``distill``: soft targets, the old model's logits at T = 2 (× T², summed over the units).

One loss, one optimiser (``parameters()``: everything that is not frozen), t = tasks so far:

    L = 1/t · [CE(f(x), y) + L_VAE(x | mode y)] + (1 − 1/t) · [KD_T(f(x̃), f_old(x̃)) + L_VAE(x̃ | mode ŷ)]

L_VAE = (reconstruction + KL) / P per sample (``clcourse.vae.vae_loss``), ŷ = the old model's class for
x̃ (the code weighs the modes and gates by the old model's soft scores instead). Each replayed x̃ has one
task: its class's (task-IL: labelled on that head; class-IL: over all old units). Without ``rtf`` the
VAE is a separate network on the same inputs, trained by the same optimiser.
"""
from __future__ import annotations

import torch

from ..data.scenarios import TensorSet, masked_logits
from ..losses import mix_current_replay, replayed_loss
from ..models import MLP, Frozen, make_head
from ..vae import reparameterize
from ..vae_model import VAE, ReplayNet
from .base import Arg, Method
from .si import SI

SRC = "van de Ven et al. 2020 code, options.py set_defaults (--brain-inspired)"


class BIR(Method):
    """Brain-inspired replay: generative replay inside the classifier, conditional and gated."""

    name = "bir"
    arguments = {
        "rtf": Arg(True, "replay-through-feedback: the VAE's encoder is the classifier", SRC),
        "conditional": Arg(True, "one prior mode per class; replay a chosen old class", SRC),
        "gating": Arg(True, "fixed random decoder gates per class (per task in domain-IL)", SRC),
        "gate_prop": Arg(0.8, "proportion of decoder hidden units each context silences",
                         f"{SRC}: dg_prop 0.8 (split and permuted MNIST)", low=0.0, high=0.99),
        "internal": Arg(lambda s: s.model == "conv5", "replay the output of frozen pre-trained "
                        "conv layers (model 'conv5': `clcourse pretrain` makes them)", SRC),
        "distill": Arg(True, "soft targets (the old logits at T) instead of hard labels", SRC),
        "T": Arg(2.0, "temperature of the soft targets", f"{SRC}: --temp 2", low=1e-3, high=1e3),
        "z_dim": Arg(100, "latent units", f"{SRC}: --z-dim 100", low=1),
        "pretrained": Arg((0, 1, 2, 3), "the CIFAR-10 classes the conv layers were pre-trained on",
                          "this course (a stand-in for the paper's CIFAR-10 pre-training)"),
    }

    @classmethod
    def make_model(cls, settings, input_shape, scenario):
        a, convs = settings.method_args, None
        if a["internal"]:
            from ..pretrain import load_convs
            convs = load_convs(tuple(a["pretrained"]), settings.profile, device="cpu")
            input_shape = (convs.out_dim,)
        contexts = (scenario.n_tasks if scenario.kind == "domain" else scenario.n_outputs)
        vae = VAE(input_shape, settings.hidden, a["z_dim"],
                  n_modes=scenario.n_outputs if a["conditional"] else 0,
                  gates=contexts if a["gating"] else 0, gate_prop=a["gate_prop"],
                  gate_seed=settings.seed, likelihood="gaussian" if convs else "bernoulli")
        encoder = None if a["rtf"] else MLP(vae.n_pixels, settings.hidden)
        return ReplayNet(vae, make_head(settings, vae.encoder.out_dim, scenario), encoder, convs)

    def before_task(self, task):
        super().before_task(task)
        self.vae_rng = self.rng(task, "vae")  # the reparameterisation noise of this task
        self.old = Frozen.copy_of(self.model) if task.id > 0 else None
        s, old = self.scenario, range(task.id)
        self.old_units = torch.tensor([u for j in old for u in s.block(j)], device=self.device)
        self.task_of = torch.tensor([j for j in range(s.n_tasks) for _ in s.block(j)],
                                    device=self.device)
        self.old_masks = s.mask_table(max(task.id - 1, 0), self.device)

    def context(self, y, t):
        """The decoder gates' context: the class (unit), or the task in domain-IL."""
        return t if self.scenario.kind == "domain" else y

    def replay(self, n, generator):
        replayed = super().replay(n, generator)
        if replayed is not None or self.old is None:
            return replayed
        net, kind = self.old.module, self.scenario.kind
        if kind == "domain":
            t = torch.randint(self.task.id, (n,), generator=generator, device=self.device)
            y = torch.randint(self.scenario.n_outputs, (n,), generator=generator, device=self.device)
        else:
            y = self.old_units[torch.randint(len(self.old_units), (n,), generator=generator,
                                             device=self.device)]
            t = self.task_of[y] if kind == "task" else torch.full_like(y, self.task.id - 1)
        with torch.no_grad():
            x = net.vae.sample(n, generator, y=y if net.vae.n_modes else None,
                               context=self.context(y, t) if net.vae.gates else None)
            old = masked_logits(net.head(net.encoder(x)), self.old_masks[t])
        return TensorSet(x, old.argmax(1), t, old if self.args["distill"] else None)

    def loss(self, batch, replay=None):
        net, n = self.model, len(batch)
        x, y, t = net.internal(batch.x), batch.y, batch.t
        if replay is not None:
            x, y, t = (torch.cat([x, replay.x]), torch.cat([y, replay.y]), torch.cat([t, replay.t]))
        h = net.encoder(x)
        batch.logits = net.head(h[:n])
        terms = super().loss(batch, replay)
        mu, logvar = net.vae.latent(h if net.rtf else net.vae.encoder(x))
        z = reparameterize(mu, logvar, self.vae_rng)
        recon = net.vae.decode(z, self.context(y, t) if net.vae.gates else None)
        vae = net.vae.per_sample_loss(x, recon, mu, logvar, z, y if net.vae.n_modes else None)
        if replay is None:
            return {**terms, "vae": vae.mean()}
        student = masked_logits(net.head(h[n:]), replay.mask)
        k = self.task.id + 1
        ce, replayed = mix_current_replay(terms["ce"], replayed_loss(student, replay, self.args["T"]), k)
        vae_cur, vae_old = mix_current_replay(vae[:n].mean(), vae[n:].mean(), k)
        return {**terms, "ce": ce, "replay": replayed, "vae": vae_cur + vae_old}


class BIRplusSI(SI, BIR):
    """BI-R + SI (van de Ven et al. 2020, Figs. 5-6): BI-R's losses plus SI's penalty on every
    trained parameter (the cooperative hooks of ``base.Method``)."""

    name = "bir-si"
