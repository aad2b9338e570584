"""Continual-learning methods: one file each, all on the hooks of ``base.Method``.

To add a method: write ``methods/<name>.py`` with a ``Method`` subclass and add it to ``METHODS``.
"""
from .base import Method, make_optimizer
from .finetune import Finetune
from .joint import Joint

METHODS = {cls.name: cls for cls in (Finetune, Joint)}


def make_method(name: str, model, scenario, settings, stream=None) -> Method:
    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[name](model, scenario, settings, stream)


__all__ = ["Method", "METHODS", "make_method", "make_optimizer"]
