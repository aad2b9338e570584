"""Assertions the grading tests share: what differs comes first in the message, because the
scoreboard (`clcourse grade`) shows only the first line of a failure, cut short."""
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
