"""The notebooks ask for exercises without giving them away, and in order.

For every lesson notebook:
- every exercise of `solutions/exNN_*.py` has a markdown heading "Your turn — exNN.K `function`" and
  at least one `your_turn("exNN.K", "function", ...)` check, and the notebook meets them in id order;
- the reference a check compares with (your_turn's 4th argument) is a library function, or a lambda or
  one-line def that only calls one; never a computation written out in the notebook;
- no code cell contains a solution's body: each statement of a solution region (16 characters or more,
  whitespace and comments ignored) is looked for in every code cell.
"""
import ast
import json
import re
from pathlib import Path

import pytest

from clcourse.exercises import BEGIN, END, list_exercises

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))
EXERCISES = list_exercises(REPO / "solutions")
HEADING = re.compile(r"^#+\s*Your turn\s*[—–-]+\s*(ex\d{2}\.\d+)\s+`(\w+)`", re.MULTILINE)


def _cells(notebook):
    return json.loads(notebook.read_text(encoding="utf-8"))["cells"]


def _code(cell):
    src = "".join(cell.get("source", ""))
    return "\n".join(line for line in src.splitlines() if not line.lstrip().startswith(("%", "!")))


def delegates(node: ast.AST) -> bool:
    """Only a call of a named function, with names, constants and attributes as arguments?"""
    if isinstance(node, ast.Call):
        return isinstance(node.func, (ast.Name, ast.Attribute)) and all(
            delegates(a) for a in node.args) and all(delegates(k.value) for k in node.keywords)
    if isinstance(node, ast.Tuple):
        return all(delegates(e) for e in node.elts)
    if isinstance(node, ast.Subscript):
        return delegates(node.value) and isinstance(node.slice, (ast.Constant, ast.Name))
    if isinstance(node, ast.Starred):
        return delegates(node.value)
    return isinstance(node, (ast.Name, ast.Attribute, ast.Constant))


def _checks(notebook):
    """(cell index, exercise id, function name, reference node, names the notebook defines)."""
    found, defined = [], {}
    for i, cell in enumerate(_cells(notebook)):
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse(_code(cell))
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Lambda):
                defined.update({t.id: delegates(node.value.body) for t in node.targets
                                if isinstance(t, ast.Name)})
            elif isinstance(node, ast.FunctionDef):
                body = [b for b in node.body
                        if not (isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant))]
                defined[node.name] = (len(body) == 1 and isinstance(body[0], ast.Return)
                                      and delegates(body[0].value))
        for node in ast.walk(tree):
            name = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(name, "id", getattr(name, "attr", "")) == "your_turn":
                args = node.args
                label = args[0].value if args and isinstance(args[0], ast.Constant) else None
                fn = args[1].value if len(args) > 1 and isinstance(args[1], ast.Constant) else None
                ref = args[3] if len(args) > 3 else next(
                    (k.value for k in node.keywords if k.arg == "reference"), None)
                found.append((i, label, fn, ref, dict(defined)))
    return found


def _lesson(notebook):
    return [e for e in EXERCISES if e.exercise_id[2:4] == notebook.name[:2]]


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_every_exercise_has_a_heading_and_a_check_in_order(notebook):
    exercises = _lesson(notebook)
    markdown = "\n".join("".join(c["source"]) for c in _cells(notebook) if c["cell_type"] == "markdown")
    headings = HEADING.findall(markdown)
    checks = [(label, fn) for _, label, fn, _, _ in _checks(notebook)]
    wanted = [(e.exercise_id, e.function_name) for e in exercises]
    assert list(dict.fromkeys(headings)) == wanted, (
        f"headings 'Your turn — exNN.K `name`' in notebook order should be {wanted}, found {headings}")
    assert list(dict.fromkeys(checks)) == wanted, (
        f"your_turn checks in notebook order should be {wanted}, found {checks}")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_no_check_computes_the_answer_itself(notebook):
    for cell, label, _, ref, defined in _checks(notebook):
        assert ref is not None, f"cell {cell}: {label}'s check has no reference"
        where = f"{notebook.name} cell {cell}: {label}"
        if isinstance(ref, ast.Lambda):
            assert delegates(ref.body), f"{where}: the reference lambda computes the answer: {ast.unparse(ref)}"
        elif isinstance(ref, ast.Name):
            assert defined.get(ref.id, True), f"{where}: the reference `{ref.id}` is written out in the notebook"
        else:
            assert delegates(ref), f"{where}: the reference is not a library function: {ast.unparse(ref)}"


def _solution_statements(path):
    """The normalised lines (16+ characters) of every solution region of one solution file."""
    found, inside = {}, None
    for line in path.read_text(encoding="utf-8").splitlines():
        text = line.strip()
        if text == BEGIN:
            inside = []
        elif text == END:
            inside = None
        elif inside is not None:
            code = re.sub(r"\s+", "", text.split("  #")[0].split("# ")[0] if not text.startswith("#") else "")
            if len(code) >= 16:
                found[code] = text
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_no_code_cell_contains_a_solution(notebook):
    solution = next((REPO / "solutions").glob(f"ex{notebook.name[:2]}_*.py"), None)
    if solution is None:
        pytest.skip("no exercises for this lesson")
    statements = _solution_statements(solution)
    assert statements, f"{solution.name}: no solution statement found to look for"
    for i, cell in enumerate(_cells(notebook)):
        if cell["cell_type"] != "code":
            continue
        code = re.sub(r"\s+", "", _code(cell))
        leaked = [shown for normalised, shown in statements.items() if normalised in code]
        assert not leaked, f"{notebook.name} cell {i} contains solution lines of {solution.name}: {leaked}"


def test_the_scan_finds_a_pasted_solution(tmp_path):
    """The scan is not vacuous: a solution body pasted into a cell is found."""
    solution = next((REPO / "solutions").glob("ex00_*.py"))
    statements = _solution_statements(solution)
    pasted = re.sub(r"\s+", "", solution.read_text(encoding="utf-8"))
    assert statements and all(normalised in pasted for normalised in statements)
    assert sum(len(s) >= 24 for s in statements) >= 3
