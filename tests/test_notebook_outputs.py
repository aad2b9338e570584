"""The rule that keeps nbval portable: every output nbval compares is identical on any CPU and thread count.

A cell without ``# NBVAL_IGNORE_OUTPUT`` may print only what no kernel changes: exact arithmetic on
small inputs, counts, shapes, the data. So in those cells' committed outputs:

* a fixed-point number has at most 6 significant digits (float32 sums done in another order differ in
  the 7th), and at most 4 decimals unless it has at most 4 significant digits (0.000855 is fine);
  a trained accuracy to 2 decimals differs between machines, which is why training cells are
  ignored (rule 3);
* a number in scientific notation has at most 3 significant digits, and one below 1e-8 in size (the
  size of rounding noise) appears only as a bound: "< 1e-12: True", "agrees to 1e-10" — never as the
  measured noise itself ("1.1e-16"), which differs between AVX2 and AVX-512;
* a cell that runs an experiment (``cl.run(``) prints under ``# NBVAL_IGNORE_OUTPUT``, its numbers
  checked by ``claim``.
"""
from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from clcourse.check import lesson_notebooks

NOTEBOOKS = lesson_notebooks(Path(__file__).resolve().parents[1])
NUMBER = re.compile(r"(?<![\w.])(-?\d+(?:\.(\d+))?)(?:e([-+]?\d+))?(?![\w.])")
BOUND = re.compile(r"(<|≤|<=|>|≥|>=|\bto|\bwithin)\s*$")
TRAINS = re.compile(r"\bcl\.run\(")


def problems_in(text: str) -> list[str]:
    """What in one compared output breaks the rule (empty: portable)."""
    found = []
    for m in NUMBER.finditer(text):
        number, decimals, exponent = m.group(1), m.group(2) or "", m.group(3)
        significant = len(number.lstrip("-").replace(".", "").lstrip("0"))
        if exponent is None:
            if significant > 6 or (len(decimals) > 4 and significant > 4):
                found.append(f"{m.group(0)!r}: more digits than any CPU reproduces (≤ 4 decimals, "
                             "≤ 6 significant)")
            continue
        if significant > 3:
            found.append(f"{m.group(0)!r}: scientific notation with more than 3 significant digits")
        if float(m.group(0)) != 0 and abs(float(m.group(0))) < 1e-8 and not BOUND.search(text[:m.start()]):
            found.append(f"{m.group(0)!r}: rounding noise printed as digits (print a bound: "
                         "'< 1e-12: True')")
    return found


def compared_cells(path: Path):
    """(index, source, text of its outputs) of every code cell nbval compares."""
    for i, cell in enumerate(nbformat.read(path, as_version=4).cells):
        if cell.cell_type != "code" or re.search(r"#\s*NBVAL_(IGNORE_OUTPUT|SKIP)", cell.source):
            continue
        texts = []
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                texts.append(out.text)
            elif out.output_type in ("execute_result", "display_data"):
                texts.append(out.get("data", {}).get("text/plain", "") if "image/png" not in out.get("data", {})
                             else "")
        yield i, cell.source, "".join(texts)


@pytest.mark.parametrize("text", ["max |diff| < 1e-12: True", "agrees with torch.optim.SGD to 1e-10: True",
                                  "0.25**10 = 9.5e-07", "[0.6652, 0.2447, 0.0900]", "finite difference 0.000855",
                                  "smallest eigenvalue > -1e-12: True", "loss 2.3026 = log 10",
                                  "logits [10002.0, 10001.0]", "T = 5: 3.03e-02", "60000/10000 images"])
def test_portable_outputs_pass(text):
    assert problems_in(text) == []


@pytest.mark.parametrize("text", ["max |autograd − (q−p)/T|: 1.1e-16", "finetune 77.73124%",
                                  "accuracy 0.9731245", "loss 0.731245", "norm 1234567.0", "ratio 9.3312e-01",
                                  "differences [2.2e-16, 0.0]"])
def test_machine_dependent_outputs_fail(text):
    assert problems_in(text), text


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_compared_outputs_are_portable(path):
    bad = []
    for i, source, text in compared_cells(path):
        bad += [f"cell {i}: {p}" for p in problems_in(text)]
        if text.strip() and TRAINS.search(source):
            bad.append(f"cell {i} trains and prints, but is not marked # NBVAL_IGNORE_OUTPUT")
    assert not bad, f"{path.name}: outputs that another CPU would print differently:\n" + "\n".join(bad)
