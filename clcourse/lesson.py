"""Helpers every lesson notebook uses: printing numbers stably, comparing a student's result with the
reference, and running a student's exercise from a "Your turn" cell without ever stopping the lesson.

    from clcourse.lesson import fmt, same, your_turn
    your_turn("ex01.2", "average_accuracy", (R,), metrics.average_accuracy, module="ex01_forgetting")
"""
from __future__ import annotations

import copy
import importlib.util
import math
from pathlib import Path

import torch

from .exercises import find_repo_root

# Tolerances of `same` by dtype: float32 arithmetic done in another order differs by ~1e-7 relative.
TOLERANCE = {torch.float64: 1e-9, torch.float32: 1e-5, torch.float16: 1e-3, torch.bfloat16: 1e-2}


def fmt(values, decimals: int = 4) -> str:
    """A number, list or tensor of numbers as '[0.1234, -1.5000]', never printing '-0.0000'."""
    values = values.tolist() if torch.is_tensor(values) else values
    values = values if isinstance(values, list) else [values]
    out = []
    for v in values:
        s = f"{v:.{decimals}f}"
        out.append(s[1:] if s.startswith("-") and float(s) == 0 else s)
    return "[" + ", ".join(out) + "]"


def same(a, b, tol: float | None = None) -> bool:
    """Does ``a`` equal the reference ``b``? Tensors: same shape and dtype, values close (``tol``, or
    by dtype: ``TOLERANCE``), integers exactly; numbers (NaN equals NaN); lists, tuples, dicts of them.
    A NaN in ``a`` where ``b`` is finite is never the same."""
    if isinstance(b, dict):
        return isinstance(a, dict) and a.keys() == b.keys() and all(same(a[k], b[k], tol) for k in b)
    if isinstance(b, (list, tuple)):
        return (isinstance(a, (list, tuple)) and len(a) == len(b)
                and all(same(x, y, tol) for x, y in zip(a, b)))
    if torch.is_tensor(b):
        if not (torch.is_tensor(a) and a.shape == b.shape and a.dtype == b.dtype):
            return False
        if not b.is_floating_point():
            return torch.equal(a.cpu(), b.cpu())
        t = TOLERANCE.get(b.dtype, 1e-5) if tol is None else tol
        return torch.allclose(a.detach().double().cpu(), b.detach().double().cpu(), rtol=t, atol=t,
                              equal_nan=True)
    if torch.is_tensor(a) or not isinstance(a, (int, float)) or isinstance(a, bool) != isinstance(b, bool):
        return False
    if math.isnan(b) or math.isnan(a):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= (1e-9 if tol is None else tol) * max(1.0, abs(b))


def exercise_path(module: str) -> Path:
    """``exercises/<module>.py`` of the course repository (found from the working folder, else next
    to the installed package), where the student writes their code."""
    return find_repo_root() / "exercises" / f"{module}.py"


def load_exercise(module: str):
    """The student's exercise module, compiled fresh from disk (the latest edits count)."""
    path = exercise_path(module)
    spec = importlib.util.spec_from_file_location(f"{module}_yours", path)
    yours = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(yours)
    return yours


def your_turn(label: str, name: str, args: tuple, reference, module: str,
              tol: float | None = None) -> bool | None:
    """Run the student's ``name(*args)`` from ``exercises/<module>.py`` and compare it with
    ``reference(*args)``; print one line saying how it went. Never raises: returns True (match),
    False (mismatch or an error in the student's code) or None (not attempted yet)."""
    lesson = module[2:4]
    try:
        yours = load_exercise(module)
        # A copy: the student's function may change its inputs without spoiling the reference's.
        ok = same(getattr(yours, name)(*copy.deepcopy(args)), reference(*args), tol)
    except NotImplementedError:
        print(f"{label} {name}: not attempted yet — write it in exercises/{module}.py, "
              "then rerun this cell")
        return None
    except Exception as err:  # a typo, a wrong shape, a missing file: say so, don't stop the lesson
        print(f"{label} {name}: your code raised {type(err).__name__}: {err}")
        return False
    print(f"{label} {name}: " + ("match with the reference" if ok else
          "MISMATCH with the reference — check shapes, dtypes and values; "
          f"`clcourse grade --lesson {lesson}` says more"))
    return ok


def your_turn_in(module: str):
    """``your_turn`` bound to one lesson's exercise file: ``your_turn = your_turn_in("ex00_...")``."""
    def bound(label, name, args, reference, tol=None):
        return your_turn(label, name, args, reference, module=module, tol=tol)
    bound.__doc__ = f"your_turn for exercises/{module}.py: " + (your_turn.__doc__ or "")
    return bound
