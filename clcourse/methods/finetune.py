"""Fine-tuning: train on each task in turn with nothing to protect the old ones.

The lower bound of every comparison ("None" in van de Ven & Tolias 2019, Tables 4–5): whatever
forgetting a method prevents is measured against this. It is the base :class:`Method` unchanged.
"""
from .base import Method


class Finetune(Method):
    name = "finetune"
