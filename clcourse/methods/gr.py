"""Generative replay (GR): Shin, Lee, Kim & Kim 2017, "Continual learning with deep generative replay"
(NeurIPS), with a VAE as the generator, as van de Ven, Siegelmann & Tolias 2020 ("Brain-inspired replay
for continual learning with artificial neural networks", Nat. Commun. 11:4069) and their code
(GMvandeVen/continual-learning @ e6d795a, ``train/train_task_based.py``, ``models/vae.py``) do it.

Two networks: the classifier (``self.model``) and a separate VAE (``clcourse.vae_model.VAE``, split-MNIST
sizes: 2 hidden layers of 400, z = 100). Before every task t > 1 both are copied and frozen. Each step
draws n inputs x̃ from the old VAE (one batch, on the device) and labels them with the old classifier
over its active units: a hard label argmax (``distill=False``) or its logits as soft targets. Then

    L_classifier = 1/t · CE(f(x), y) + (1 − 1/t) · L_replay(f(x̃)),   t = tasks so far (``rnt = 1./task``)
    L_replay     = CE(f(x̃), argmax f_old(x̃))   or   T² · KD_T(f(x̃), f_old(x̃)),  T = 2
    L_VAE        = 1/t · ELBO-loss(x) + (1 − 1/t) · ELBO-loss(x̃)          (``VAE.loss``, per pixel)

KD is ``losses.distillation`` (× T²; summed over the units, or averaged over them in the paper profile
on split and permuted MNIST, as the code that made "Three scenarios" Table 4 did: see ``lwf.py``). In class-IL the old model's logits cover the
old units only (−inf elsewhere): the targets are zero-padded on the new classes. In task-IL every x̃ is
replayed once per old task, on that task's head, so L_replay is the mean over the old tasks, as the code.

How the VAE trains in the same steps, with its own Adam (betas 0.9, 0.999, kept across tasks as in the
code's ``main.py``): ``loss`` returns its term "vae" next to "ce" and "replay". The loop's one
``backward`` of the sum fills both networks' gradients (the graphs do not share a parameter, so each gets
exactly the gradient of its own loss); the loop's optimiser steps the classifier only
(``parameters()`` is the classifier's), and ``after_step`` steps the VAE's optimiser and clears its
gradients. So the history logs the VAE's loss too ("total" is then the sum of both objectives).
Resume: checkpoints are written between tasks, so ``state_dict`` keeps the VAE and its optimiser; the
frozen copies are re-made by ``before_task`` from the restored weights, identical to the lost ones.
Inputs must lie in [0, 1] (the VAE's Bernoulli likelihood): the MNIST benchmarks.
"""
from __future__ import annotations

import torch

from ..data.scenarios import TensorSet, masked_logits
from ..losses import mix_current_replay, replayed_loss
from ..models import Frozen
from ..vae_model import VAE
from .base import Arg, Method
from .lwf import paper_kd_reduction

SRC = "van de Ven et al. 2020 code, split MNIST"


class GR(Method):
    """Generative replay: a VAE's samples, labelled by the previous classifier, replayed every step."""

    name = "gr"
    arguments = {
        "distill": Arg(False, "soft targets (distillation at T) instead of hard argmax labels",
                       "van de Ven et al. 2020 code `--distill` (replay_targets='soft')"),
        "T": Arg(2.0, "temperature of the soft targets", "van de Ven et al. 2020 code (KD_temp = 2)",
                 low=1e-3, high=1e3),
        "kd_reduction": Arg(paper_kd_reduction, "'sum' or 'mean' of the soft cross-entropy over the units "
                            "(as LwF's; 'mean' in the paper profile on split and permuted MNIST)",
                            "van de Ven & Tolias 2019 code: mean at 86802a8 (Tables 4-5), sum from "
                            "26f00db", choices=("sum", "mean")),
        "hidden": Arg((400, 400), "the VAE's hidden widths (encoder; the decoder reversed)",
                      f"{SRC}: fc_lay = 3, fc_units = 400"),
        "z_dim": Arg(100, "the VAE's latent units", f"{SRC}: --g-z-dim 100", low=1),
        "n_replay": Arg(0, "replayed samples per mini-batch (0: as many as current ones)",
                        "van de Ven et al. 2020 Fig. 4a (1 to 128 per batch)", low=0),
        "reinit": Arg(False, "re-initialise the classifier before every task (relearn from replay)",
                      "van de Ven et al. 2020 Fig. 4c"),
        "lr_gen": Arg(lambda s: s.lr, "the VAE's Adam learning rate (default: the classifier's)",
                      "van de Ven et al. 2020 code `--lr-gen` (def: as classifier)", low=0.0),
    }

    def __init__(self, model, scenario, settings, stream=None):
        super().__init__(model, scenario, settings, stream)
        self.vae = VAE(stream.input_shape, self.args["hidden"], self.args["z_dim"]).to(self.device)
        self.vae_optimizer = torch.optim.Adam(self.vae.parameters(), lr=self.args["lr_gen"],
                                              betas=(0.9, 0.999))
        self.old_model = self.old_vae = None

    def before_task(self, task):
        super().before_task(task)
        self.vae.train()
        self.vae_optimizer.zero_grad(set_to_none=True)
        self.vae_rng = self.rng(task, "vae")  # the VAE's reparameterisation noise in this task
        self.old_model = self.old_vae = None
        if task.id == 0:
            return
        self.old_model = Frozen.copy_of(self.model)
        self.old_vae = Frozen.copy_of(self.vae)
        if self.args["reinit"]:
            for layer in self.model.modules():   # every Linear layer and head, as newly built
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()
        self.old_masks = self.scenario.mask_table(task.id - 1, self.device)  # the old model's units
        self.replayed_tasks = (list(range(task.id)) if self.scenario.kind == "task"
                               else [task.id - 1])

    def replay(self, n, generator):
        replayed = super().replay(n, generator)
        if replayed is not None or self.old_vae is None:
            return replayed
        n = self.args["n_replay"] or n
        x = self.old_vae.module.sample(n, generator)           # one batch, on the device
        k = len(self.replayed_tasks)                           # task-IL: once per old task's head
        x = x.repeat(k, *[1] * (x.dim() - 1))
        t = torch.tensor(self.replayed_tasks, device=x.device).repeat_interleave(n)
        with torch.no_grad():
            old = masked_logits(self.forward(x, t, self.old_model), self.old_masks[t])
        return TensorSet(x, old.argmax(1), t, old if self.args["distill"] else None)

    def loss(self, batch, replay=None):
        if replay is None or len(replay) == 0:
            return {**super().loss(batch, replay), "vae": self.vae_loss(batch.x)}
        n = len(batch)
        z = self.forward(torch.cat([batch.x, replay.x]), torch.cat([batch.t, replay.t]))
        batch.logits = z[:n]                                   # the CE term reuses these logits
        terms = super().loss(batch, replay)
        # soft: old logits, -inf off the old model's units, so zero targets there (class-IL's new)
        replayed = replayed_loss(masked_logits(z[n:], replay.mask), replay, self.args["T"],
                                 self.args["kd_reduction"])
        k = self.task.id + 1
        ce, replayed = mix_current_replay(terms["ce"], replayed, k)
        x_old = replay.x[:len(replay) // len(self.replayed_tasks)]  # each sample once for the VAE
        vae_cur, vae_old = mix_current_replay(self.vae_loss(batch.x), self.vae_loss(x_old), k)
        return {**terms, "ce": ce, "replay": replayed, "vae": vae_cur + vae_old}

    def vae_loss(self, x):
        """The VAE's loss in float32 (the BCE is not allowed under CUDA autocast)."""
        with torch.autocast(self.device.type, enabled=False):
            return self.vae.loss(x.float(), generator=self.vae_rng)

    def after_step(self):
        super().after_step()
        self.vae_optimizer.step()          # the gradients of "vae", from the loop's backward
        self.vae_optimizer.zero_grad(set_to_none=True)

    def state_dict(self):
        return {**super().state_dict(), "vae": self.vae.state_dict(),
                "vae_optimizer": self.vae_optimizer.state_dict()}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.vae.load_state_dict(state["vae"])
        self.vae_optimizer.load_state_dict(state["vae_optimizer"])
