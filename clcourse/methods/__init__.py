"""Continual-learning methods: one file each, all on the hooks of ``base.Method``.

To add a method: write ``methods/<name>.py`` with a ``Method`` subclass (its ``name``, its
``arguments`` with sources) and add the class to ``_BUILT_IN`` below. A notebook can also pass its
own ``Method`` subclass straight to ``cl.run(benchmark, MyMethod)``.
"""
from __future__ import annotations

from .base import Arg, Method, make_optimizer
from .bic import BiC
from .bir import BIR, BIRplusSI
from .coil import COIL
from .der import DER
from .er import ER
from .ewc import EWC, OnlineEWC
from .finetune import Finetune
from .gr import GR
from .icarl import ICaRL
from .joint import Joint
from .l2 import L2
from .lfd import LFD
from .lwf import LwF
from .si import SI
from .wa import WA

_BUILT_IN = (Finetune, Joint, L2, EWC, OnlineEWC, SI, LwF, ICaRL, BiC, WA, DER, COIL, ER, LFD, GR, BIR, BIRplusSI)
METHODS: dict[str, type] = {cls.name: cls for cls in _BUILT_IN}


def method_class(method) -> type:
    """The Method subclass for a name (or the class itself); a clear error for an unknown name."""
    if isinstance(method, type) and issubclass(method, Method):
        return method
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
    return METHODS[method]


def make_method(method, model, scenario, settings, stream=None) -> Method:
    return method_class(method)(model, scenario, settings, stream)


__all__ = ["Arg", "Method", "L2", "EWC", "OnlineEWC", "SI", "LwF", "ICaRL", "BiC", "WA", "DER", "COIL", "ER", "LFD", "GR", "BIR", "BIRplusSI", "Finetune", "Joint", "METHODS", "method_class", "make_method", "make_optimizer"]
