"""The notebooks' helpers (clcourse.lesson): stable printing, comparison with a reference, Your turn."""
import math

import torch

from clcourse import lesson


def test_fmt_prints_fixed_decimals_and_never_minus_zero():
    assert lesson.fmt(torch.tensor([0.12345, -1.5, -0.00001])) == "[0.1235, -1.5000, 0.0000]"
    assert lesson.fmt(2.0, decimals=1) == "[2.0]"
    assert lesson.fmt([1, 2]) == "[1.0000, 2.0000]"


def test_same_checks_shape_dtype_values_and_nan():
    a = torch.tensor([1.0, 2.0])
    assert lesson.same(a, a.clone())
    assert lesson.same(a + 1e-7, a)                                  # float32 rounding
    assert not lesson.same(a + 1e-3, a)
    assert not lesson.same(a.double(), a)                            # dtype matters
    assert not lesson.same(a[None], a)                               # shape matters
    assert not lesson.same(torch.tensor([1.0, math.nan]), a)          # NaN where finite
    assert lesson.same(torch.tensor([math.nan]), torch.tensor([math.nan]))
    assert lesson.same(torch.tensor([1, 2]), torch.tensor([1, 2]))
    assert not lesson.same(torch.tensor([1, 3]), torch.tensor([1, 2]))
    assert lesson.same(math.nan, math.nan) and lesson.same(0.75, 0.75 + 1e-12)
    assert not lesson.same(True, 1) and not lesson.same("0.75", 0.75)
    assert lesson.same({"dW": a, "db": [a, 1.0]}, {"dW": a, "db": [a, 1.0]})
    assert not lesson.same({"dW": a}, {"dW": a, "db": a})


def test_your_turn_reports_not_attempted_a_match_a_mismatch_and_an_error(tmp_path, monkeypatch,
                                                                           capsys):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "exercises").mkdir()
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "exercises" / "ex09_demo.py"
    ref = lambda x: x * 2  # noqa: E731
    x = torch.ones(3)

    def run(source):
        path.write_text(source)
        result = lesson.your_turn_in("ex09_demo")("ex09.1", "double", (x,), ref)
        return result, capsys.readouterr().out.strip()

    assert run("def double(x):\n    raise NotImplementedError('ex09.1')\n") == (
        None, "ex09.1 double: not attempted yet — write it in exercises/ex09_demo.py, then rerun "
              "this cell")
    assert run("def double(x):\n    return x + x\n") == (True, "ex09.1 double: match with the reference")
    result, out = run("def double(x):\n    return x * 3\n")
    assert result is False and "MISMATCH" in out and "clcourse grade --lesson 09" in out
    result, out = run("def double(x):\n    return x.nope\n")
    assert result is False and "your code raised AttributeError" in out
    result, out = run("def double(x):\n    x.mul_(2)\n    return x\n")  # edits its input
    assert result is True and torch.equal(x, torch.ones(3))               # the lesson's x is safe
