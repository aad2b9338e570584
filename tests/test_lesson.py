"""The notebooks' helpers (clcourse.lesson): stable printing, comparison with a reference, Your turn."""
import math

import pytest
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


def test_your_turn_names_an_earlier_stub_and_shows_both_values(tmp_path, monkeypatch, capsys):
    (tmp_path / "solutions").mkdir()
    (tmp_path / "pyproject.toml").write_text("")
    (tmp_path / "exercises").mkdir()
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "exercises" / "ex09_demo.py"
    path.write_text("def square(x):\n    raise NotImplementedError('ex09.1: square is not implemented yet')\n"
                    "def fourth(x):\n    return square(square(x))\n")
    x = torch.tensor([1.0, 2.0])
    check = lesson.your_turn_in("ex09_demo")
    assert check("ex09.2", "fourth", (x,), lambda x: x ** 4) is None
    out = capsys.readouterr().out
    assert "ex09.2 fourth: needs ex09.1 first" in out and "not attempted" not in out
    # The exercise's own stub is still "not attempted".
    assert check("ex09.1", "square", (x,), lambda x: x ** 2) is None
    assert "ex09.1 square: not attempted yet" in capsys.readouterr().out
    assert check("ex09.1 (squares)", "square", (x,), lambda x: x ** 2) is None  # words after the id
    assert "not attempted yet" in capsys.readouterr().out
    # A mismatch shows the student's value and the reference's.
    path.write_text("def square(x):\n    return x * 3\n")
    assert check("ex09.1", "square", (x,), lambda x: x ** 2) is False
    out = capsys.readouterr().out
    assert "yours:     tensor(2,) torch.float32: [3.0000, 6.0000]" in out
    assert "reference: tensor(2,) torch.float32: [1.0000, 4.0000]" in out


def test_claim_raises_in_words_with_the_lessons_settings_and_explains_with_changed_ones(capsys):
    import pytest
    lesson.lesson_settings(PROFILE=("class", "class"), SEED=(0, 0))
    assert lesson.claim(True, "anything") is True
    with pytest.raises(lesson.ClaimFailed, match=r"the lesson claims: EWC beats fine-tuning — with the "
                                                 r"lesson's own settings \(PROFILE='class', SEED=0\)"):
        lesson.claim(0.4 > 0.5, "EWC beats fine-tuning", "40.00% vs 50.00%")
    # A student who changed the seed (registered) or λ (passed with the claim) is told, not stopped.
    lesson.lesson_settings(PROFILE=("class", "class"), SEED=(0, 3))
    assert lesson.claim(False, "EWC beats fine-tuning", "40.00% vs 50.00%") is False
    assert capsys.readouterr().out.strip() == (
        "this claim holds in the class profile; with your settings (SEED=3 instead of 0) it does not: "
        "EWC beats fine-tuning (40.00% vs 50.00%)")
    lesson.lesson_settings(PROFILE=("class", "class"))
    assert lesson.claim(False, "λ works", LAMBDA=(100, 1e9)) is False
    assert "LAMBDA=1000000000.0 instead of 100" in capsys.readouterr().out
    with pytest.raises(lesson.ClaimFailed):  # the same λ as the lesson: the lesson is wrong
        lesson.claim(False, "λ works", LAMBDA=(100, 100))
    with pytest.raises(TypeError, match="takes a pair"):
        lesson.lesson_settings(SEED=3)
    lesson.lesson_settings()


def test_lesson_profile_reads_the_environment_and_rejects_unknown_names(monkeypatch):
    monkeypatch.delenv("CLCOURSE_PROFILE", raising=False)
    assert lesson.lesson_profile() == "class"
    monkeypatch.setenv("CLCOURSE_PROFILE", "smoke")
    assert lesson.lesson_profile() == "smoke"
    monkeypatch.setenv("CLCOURSE_PROFILE", "Smoke")
    with pytest.raises(ValueError, match=r"CLCOURSE_PROFILE='Smoke' is not a profile; use one of smoke, "
                                         r"class, paper"):
        lesson.lesson_profile()


def test_claims_outside_their_profiles_say_they_were_not_checked(capsys):
    lesson.lesson_settings(PROFILE=("class", "smoke"), SEED=(0, 0))
    # A trained claim in smoke: not evaluated, not raised, said.
    assert lesson.claim(False, "EWC beats fine-tuning", "40% vs 50%") is None
    assert capsys.readouterr().out == ("not checked in the smoke profile (it holds in class and paper): "
                                       "EWC beats fine-tuning\n")
    # A claim that holds in every profile is checked in smoke too; false, it is reported, not raised
    # (the profile differs from the lesson's).
    assert lesson.claim(True, "the permutation is a bijection", profiles=lesson.EVERY_PROFILE) is True
    assert lesson.claim(False, "x", profiles=lesson.EVERY_PROFILE) is False
    assert "with your settings (PROFILE='smoke' instead of 'class')" in capsys.readouterr().out
    # In the class profile a trained claim is checked and raises.
    lesson.lesson_settings(PROFILE=("class", "class"), SEED=(0, 0))
    assert lesson.claim(True, "holds") is True and capsys.readouterr().out == ""
    with pytest.raises(lesson.ClaimFailed):
        lesson.claim(False, "EWC beats fine-tuning")
    lesson.lesson_settings()
