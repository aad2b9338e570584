"""Assertions the grading tests share: what differs comes first in the message, because the
scoreboard (`clcourse grade`) shows only the first line of a failure, cut short."""
import pytest
import torch


def _is_tensor(actual, expected, what):
    assert isinstance(actual, torch.Tensor), f"expected a torch.Tensor, got {type(actual).__name__} — {what}"
    assert actual.shape == expected.shape, (
        f"expected shape {tuple(expected.shape)}, got {tuple(actual.shape)} — {what}")
    assert actual.dtype == expected.dtype, f"expected dtype {expected.dtype}, got {actual.dtype} — {what}"


def check_tensor(actual, expected, what, atol=None, rtol=None):
    """Assert that `actual` is a tensor like `expected` (type, shape, dtype, finite values, close).

    Without tolerances, torch.testing's defaults for the dtype; with one of them, the other is 0."""
    _is_tensor(actual, expected, what)
    actual, expected = actual.detach(), expected.detach()
    if (atol is None) != (rtol is None):
        atol, rtol = atol or 0.0, rtol or 0.0
    if torch.isfinite(expected).all():
        assert torch.isfinite(actual).all(), f"expected finite values, got NaN or inf — {what}:\n{actual}"
    if expected.dim() == 0:
        head = f"expected {expected.item():.8g}, got {actual.item():.8g} — {what}"
    else:
        err = (actual - expected).abs().max().item() if expected.numel() else 0.0
        head = f"values differ by up to {err:.3g} — {what}"
    torch.testing.assert_close(
        actual, expected, atol=atol, rtol=rtol,
        msg=lambda m: f"{head}\nexpected:\n{expected}\ngot:\n{actual}\n{m}")


def check_equal(actual, expected, what):
    """Assert that `actual` is a tensor exactly equal to `expected` (indices, masks, labels)."""
    _is_tensor(actual, expected, what)
    if expected.dtype == torch.bool and expected.dim() == 1:  # a mask: show it as 0/1 digits
        bits = lambda m: "".join("1" if b else "0" for b in m.tolist())  # noqa: E731
        assert torch.equal(actual, expected), f"expected {bits(expected)}, got {bits(actual)} — {what}"
    assert torch.equal(actual, expected), f"values differ — {what}\nexpected:\n{expected}\ngot:\n{actual}"


def _snapshot(value):
    """Every tensor inside `value` (dicts, lists, tuples) as (path, detached copy, requires_grad)."""
    if isinstance(value, torch.Tensor):
        return [("", value.detach().clone(), value.requires_grad)]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    return [(f"[{k!r}]{p}", t, g) for k, v in items for p, t, g in _snapshot(v)]


def call_unchanged(fn, *args, what="", **kwargs):
    """Call fn(*args, **kwargs) and assert that it left every tensor argument as it was: the same values
    (NaN where NaN) and the same requires_grad flag. Returns fn's result."""
    before = [_snapshot(a) for a in args] + [_snapshot(v) for v in kwargs.values()]
    result = fn(*args, **kwargs)
    after = [_snapshot(a) for a in args] + [_snapshot(v) for v in kwargs.values()]
    names = [f"argument {i + 1}" for i in range(len(args))] + [f"argument {k}=" for k in kwargs]
    for name, old, new in zip(names, before, after):
        for (path, t0, g0), (_, t1, g1) in zip(old, new):
            assert g0 == g1, (f"your function changed requires_grad of {name}{path} from {g0} to {g1} — "
                              f"leave the inputs as they are{' — ' + what if what else ''}")
            assert t0.shape == t1.shape and torch.equal(t0.isnan(), t1.isnan()) and torch.equal(
                t0.nan_to_num(), t1.nan_to_num()), (
                f"your function changed the values of {name}{path} in place — work on a copy"
                f"{' — ' + what if what else ''}")
    return result


def raises_value_error(fn, *args, what):
    """``fn(*args)`` must raise ValueError (``what`` names the case in the failure)."""
    with pytest.raises(ValueError):
        fn(*args)
        pytest.fail(f"{what} must raise ValueError")
