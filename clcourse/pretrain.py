"""Pre-trained conv layers for brain-inspired replay's *internal replay* (lesson 07).

BI-R (van de Ven, Siegelmann & Tolias 2020, "Brain-inspired replay for continual learning with
artificial neural networks", Nat. Commun. 11:4069; code GMvandeVen/brain-inspired-replay @ 1a030f7)
does not replay images on CIFAR-100: its conv layers ("C3-5x16-bn", ``models/conv/nets.py``) are
pre-trained on *other* data, CIFAR-10 (``main_pretrain.py``; ``create_figures.sh``:
``./main_pretrain.py --experiment=CIFAR10 --epochs=100 --augment``), then frozen, and the generator
replays what they output. Here the stand-in is smaller: pre-train on some CIFAR-10 classes (0-3
by default), then learn the others (4-9) class-incrementally on top of the frozen layers.

    >>> from clcourse.pretrain import pretrain_convs, load_convs
    >>> pretrain_convs(classes=(0, 1, 2, 3), profile="class")   # once; reused afterwards
    >>> convs = load_convs(classes=(0, 1, 2, 3), profile="class")  # ConvLayers, out_dim 1024

or ``clcourse pretrain --classes 0 1 2 3 --profile class``. The conv layers are trained with a
linear head through the course's own engine (``experiment.run("cifar10", "finetune",
model="conv5", classes=...)``). Their state dict (with the batch-norm buffers) and what made it go
to ``<cache folder>/pretrained/conv5_cifar10_c0123_<profile>_seed<seed>.pt``.

The settings of each profile are overrides of the ``cifar10`` benchmark's profile rows (which
other code uses with a ResNet, so they are left alone), kept in :data:`PRETRAIN_SETTINGS`.
"""
from __future__ import annotations

import datetime
import json
import os
import time
from pathlib import Path

import torch

from .config import make_settings
from .data.folders import cache_root
from .experiment import run
from .models import ConvLayers

DEFAULT_CLASSES = (0, 1, 2, 3)
SOURCE = "GMvandeVen/brain-inspired-replay @ 1a030f7"

# Overrides of the cifar10 benchmark's row in each profile (the rest, e.g. smoke's per-class
# subset, comes from that row). model conv5 = models.ConvLayers, a linear head on its 1024 features.
PRETRAIN_SETTINGS = {
    # seconds, for the tests
    "smoke": dict(model="conv5", epochs=1, batch_size=16, optimizer="adam", lr=1e-3,
                  weight_decay=0.0, momentum=0.0, milestones=(), augment=False),
    # The staged subset's 1,566 images of classes 0-3, on the 2-core course machine (2 threads,
    # other jobs running): 35-59 s, test accuracy 72.2 % on the 395 test images (chance 25 %).
    # (10 epochs: 74 %, ~1.6x the time.) Adam at 1e-3, not BI-R's 1e-4: only a few epochs here.
    "class": dict(model="conv5", epochs=6, batch_size=64, optimizer="adam", lr=1e-3,
                  weight_decay=0.0, momentum=0.0, milestones=(), augment=True),
    # main_pretrain.py with create_figures.sh's --epochs=100 --augment, and options.py's single-task
    # defaults: Adam (betas 0.9, 0.999) lr 1e-4, batch 256, no weight decay; images normalised.
    # (BI-R's pre-training head is 2 fc layers of 2000 units + the classifier; here one linear.)
    "paper": dict(model="conv5", epochs=100, batch_size=256, optimizer="adam", lr=1e-4,
                  weight_decay=0.0, momentum=0.0, milestones=(), augment=True),
}


def _profile_overrides(profile: str) -> dict:
    if profile not in PRETRAIN_SETTINGS:
        raise ValueError(f"unknown profile {profile!r}; valid profiles: "
                         f"{', '.join(PRETRAIN_SETTINGS)}")
    return PRETRAIN_SETTINGS[profile]


def pretrain_settings(classes=DEFAULT_CLASSES, profile: str = "class", seed: int = 0):
    """The :class:`~clcourse.config.Settings` of a pre-training run (checked: bad classes raise)."""
    return make_settings("cifar10", profile, seed=seed, classes=tuple(classes),
                         **_profile_overrides(profile))


def pretrained_path(classes=DEFAULT_CLASSES, profile: str = "class", seed: int = 0) -> Path:
    """``<cache>/pretrained/conv5_cifar10_c<classes>_<profile>_seed<seed>.pt`` (not created)."""
    tag = "".join(str(int(c)) for c in classes)
    return cache_root() / "pretrained" / f"conv5_cifar10_c{tag}_{profile}_seed{seed}.pt"


def _commands(classes, profile: str, seed: int) -> str:
    cli = (f"clcourse pretrain --classes {' '.join(str(int(c)) for c in classes)} "
           f"--profile {profile} --seed {seed}")
    py = (f"from clcourse.pretrain import pretrain_convs; "
          f"pretrain_convs(classes={tuple(int(c) for c in classes)}, profile={profile!r}, "
          f"seed={seed})")
    return f"`{cli}` (command line), or in Python/a notebook: {py}"


def _save_atomic(obj, path: Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename: never a half file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _metadata(exp, classes, profile: str, seed: int, seconds: float) -> dict:
    """What made the weights, as plain JSON data (``torch.load(weights_only=True)`` reads it)."""
    meta = {"classes": list(classes), "profile": profile, "seed": seed,
            "test_accuracy": exp.result.accuracy_matrix[0][0], "settings": exp.settings.to_dict(),
            "n_train": exp.stream.info["n_train"], "data_source": exp.stream.info.get("source"),
            "train_seconds": seconds,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "torch": str(torch.__version__), "architecture": "C3-5x16-bn (models.ConvLayers)",
            "reference": f"van de Ven, Siegelmann & Tolias 2020; {SOURCE}"}
    return json.loads(json.dumps(meta, default=str))


def pretrain_convs(classes=DEFAULT_CLASSES, profile: str = "class", seed: int = 0, root=None,
                   device=None, force: bool = False, progress: bool | None = None) -> Path:
    """Pre-train BI-R's conv layers (+ a linear head) on CIFAR-10's ``classes``; return the path.

    If the file exists already it is reused (no training) unless ``force``, whatever data it was
    made from (``meta["n_train"]``, ``meta["data_source"]`` say which). ``root``: the data
    folder (default ``$CLCOURSE_DATA``). Prints one line: where the weights are, and the test
    accuracy of the pre-training network on those classes' test images.
    """
    settings = pretrain_settings(classes, profile, seed)  # bad classes/profile: fail before data
    path = pretrained_path(settings.classes, profile, seed)
    if path.exists() and not force:
        acc = load_checkpoint(path)["meta"]["test_accuracy"]
        print(f"pre-trained conv layers: reusing {path} (test accuracy {acc:.1%}); "
              f"force=True (--force) to retrain")
        return path
    tic = time.perf_counter()
    exp = run("cifar10", "finetune", profile=profile, seed=seed, root=root, device=device,
              save=False, progress=progress, classes=settings.classes,
              **_profile_overrides(profile))
    state = {k: v.detach().cpu().clone() for k, v in exp.model.backbone.state_dict().items()}
    meta = _metadata(exp, settings.classes, profile, seed, time.perf_counter() - tic)
    _save_atomic({"state_dict": state, "meta": meta}, path)
    print(f"pre-trained conv layers on CIFAR-10 classes {meta['classes']} ({profile}, seed {seed}, "
          f"{meta['train_seconds']:.0f} s): test accuracy {meta['test_accuracy']:.1%} -> {path}")
    return path


def load_checkpoint(path) -> dict:
    """``{"state_dict": ..., "meta": ...}`` of a pre-trained file (tensors and plain data only)."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_convs(classes=DEFAULT_CLASSES, profile: str = "class", seed: int = 0,
               device=None) -> ConvLayers:
    """The pre-trained :class:`~clcourse.models.ConvLayers` (weights and batch-norm buffers), in
    eval mode, on ``device`` (default CPU); ``.meta`` holds what made them (accuracy, settings...).

    Raises ``FileNotFoundError`` naming the command that makes the file when it is missing.
    Wrap the result in ``models.Frozen`` to keep it fixed while a continual learner trains on top.
    """
    path = pretrained_path(classes, profile, seed)
    if not path.exists():
        raise FileNotFoundError(f"no pre-trained conv layers at {path}; make them with "
                                + _commands(classes, profile, seed))
    checkpoint = load_checkpoint(path)
    convs = ConvLayers()
    convs.load_state_dict(checkpoint["state_dict"])
    convs.meta = checkpoint["meta"]
    return convs.to(device or "cpu").eval()
