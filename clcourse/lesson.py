"""Helpers every lesson notebook uses: printing numbers stably, comparing a student's result with the
reference, and running a student's exercise from a "Your turn" cell without ever stopping the lesson.

    from clcourse.lesson import claim, fmt, lesson_profile, lesson_settings, same, your_turn
    PROFILE = lesson_profile()  # $CLCOURSE_PROFILE: smoke, class (the default) or paper
    your_turn("ex01.2", "average_accuracy", (R,), metrics.average_accuracy, module="ex01_forgetting")

A lesson's claims about trained numbers are checked with ``claim`` instead of a bare ``assert``: with the
lesson's own settings (as nbval runs it) a false claim raises ``ClaimFailed``, in words; once a student has
changed a setting (registered with ``lesson_settings`` in the setup cell, or passed to ``claim``), the
same claim prints what it found and lets the notebook go on. A claim about trained numbers holds in the
profiles it names (``profiles=``, by default class and paper); in any other profile (smoke trains for
seconds) it is not checked, and says so.
"""
from __future__ import annotations

import copy
import importlib.util
import math
import re
from pathlib import Path

import torch

from .config import PROFILE_NAMES
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


def lesson_profile(default: str = "class") -> str:
    """The profile a lesson runs in: ``$CLCOURSE_PROFILE`` (``smoke`` to check a classroom machine in
    minutes, ``class``, ``paper`` on a GPU), else ``default``. An unknown name is an error that lists
    the known ones."""
    import os

    name = os.environ.get("CLCOURSE_PROFILE", "").strip() or default
    if name not in PROFILE_NAMES:
        raise ValueError(f"CLCOURSE_PROFILE={name!r} is not a profile; use one of "
                         f"{', '.join(PROFILE_NAMES)} (or unset it for {default!r})")
    return name


TRAINED = ("class", "paper")  # the profiles a claim about trained numbers holds in, by default
EVERY_PROFILE = PROFILE_NAMES  # for claims that do not depend on training (exact arithmetic, data)


class ClaimFailed(AssertionError):
    """A lesson's claim did not hold with the lesson's own settings: the lesson (or the machine) is at
    fault, not the student. nbval fails on it."""


_SETTINGS: dict = {}  # name → (the lesson's value, the value in use), from lesson_settings()


def lesson_settings(**settings) -> None:
    """Register the settings a lesson's claims were written for, each as ``NAME=(lesson's value, value
    in use)``, e.g. ``lesson_settings(PROFILE=("class", PROFILE), SEED=(0, SEED))`` in the setup cell.
    Registering again replaces the earlier registration."""
    for name, pair in settings.items():
        if not (isinstance(pair, tuple) and len(pair) == 2):
            raise TypeError(f"lesson_settings({name}=...) takes a pair (lesson's value, value in use), "
                            f"got {pair!r}")
    _SETTINGS.clear()
    _SETTINGS.update(settings)


def _changed(settings: dict) -> dict:
    return {name: pair for name, pair in settings.items() if pair[0] != pair[1]}


def claim(holds, text: str, detail: str = "", profiles=TRAINED, **settings) -> bool | None:
    """Check one of the lesson's claims, e.g. ``claim(ewc > ft, "EWC keeps more of task 1", f"{ewc:.2f}
    vs {ft:.2f}")``. ``settings`` adds ``NAME=(lesson's value, value in use)`` pairs to those registered
    by ``lesson_settings``. ``profiles``: the profiles the claim holds in (``TRAINED`` = class and paper
    by default, ``EVERY_PROFILE`` for exact arithmetic); in another profile (the registered ``PROFILE``
    setting) it prints that it was not checked and returns None. Returns True when the claim holds.
    When it does not: with every setting at the lesson's value, raises ``ClaimFailed`` saying so in
    words; with a setting changed, prints "this claim holds in the class profile; with your settings
    (...) it does not: ..." and returns False, so a student exploring is told, not stopped."""
    merged = {**_SETTINGS, **settings}
    profile = merged.get("PROFILE", (None, None))[1]
    if profile is not None and profile not in profiles:
        print(f"not checked in the {profile} profile (it holds in {' and '.join(profiles)}): {text}")
        return None
    holds = bool(holds)
    if holds:
        return True
    found = f" ({detail})" if detail else ""
    changed = _changed(merged)
    if changed:
        yours = ", ".join(f"{name}={now!r} instead of {was!r}" for name, (was, now) in changed.items())
        print(f"this claim holds in the class profile; with your settings ({yours}) it does not: "
              f"{text}{found}")
        return False
    ours = ", ".join(f"{name}={was!r}" for name, (was, _) in merged.items()) or "its defaults"
    raise ClaimFailed(f"the lesson claims: {text} — with the lesson's own settings ({ours}) it does "
                      f"not hold here{found}. Tell your instructor: the text beside this cell is wrong "
                      "on this machine.")


def _short(value, limit: int = 160) -> str:
    """A value as one short line for a check cell's mismatch message."""
    if torch.is_tensor(value):
        v = value.detach().cpu()
        text = (f"tensor{tuple(v.shape)} {v.dtype}: " +
                (fmt(v.flatten()[:8].double()) if v.is_floating_point() else str(v.flatten()[:8].tolist())))
        if v.numel() > 8:
            text = text.rstrip("]") + ", …]"
    elif isinstance(value, dict):
        text = "{" + ", ".join(f"{k!r}: {_short(v, 60)}" for k, v in value.items()) + "}"
    elif isinstance(value, (list, tuple)):
        text = "(" + ", ".join(_short(v, 60) for v in value) + ")"
    else:
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
        got = getattr(yours, name)(*copy.deepcopy(args))
    except NotImplementedError as err:
        # The stub says which exercise it belongs to ("ex02.3: ..."): a stub of an *earlier* exercise
        # that this one calls is not this exercise's fault.
        stub = re.match(r"(ex\d{2}\.\d+):", str(err))
        own = re.match(r"ex\d{2}\.\d+", label)  # a label may carry words after the id
        if stub and stub.group(1) != (own.group(0) if own else label):
            print(f"{label} {name}: needs {stub.group(1)} first — your {name} calls it, and it is still "
                  f"a stub in exercises/{module}.py")
            return None
        print(f"{label} {name}: not attempted yet — write it in exercises/{module}.py, "
              "then rerun this cell")
        return None
    except Exception as err:  # a typo, a wrong shape, a missing file: say so, don't stop the lesson
        print(f"{label} {name}: your code raised {type(err).__name__}: {err}")
        return False
    expected = reference(*args)
    ok = same(got, expected, tol)
    if ok:
        print(f"{label} {name}: match with the reference")
    else:
        print(f"{label} {name}: MISMATCH with the reference — `clcourse grade --lesson {lesson}` says more\n"
              f"  yours:     {_short(got)}\n  reference: {_short(expected)}")
    return ok


def your_turn_in(module: str):
    """``your_turn`` bound to one lesson's exercise file: ``your_turn = your_turn_in("ex00_...")``."""
    def bound(label, name, args, reference, tol=None):
        return your_turn(label, name, args, reference, module=module, tol=tol)
    bound.__doc__ = f"your_turn for exercises/{module}.py: " + (your_turn.__doc__ or "")
    return bound
