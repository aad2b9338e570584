"""Device choice and seeding."""
import pytest
import torch

from clcourse import runtime


def test_env_variable_overrides_the_device(monkeypatch):
    monkeypatch.setenv("CLCOURSE_DEVICE", "cpu")
    assert runtime.get_device() == torch.device("cpu")
    assert runtime.get_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_asking_for_cuda_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        runtime.get_device("cuda")


def test_set_seed_repeats_random_draws():
    runtime.set_seed(5)
    a = torch.randn(3)
    runtime.set_seed(5)
    assert torch.equal(a, torch.randn(3))


def test_rng_state_round_trip():
    runtime.set_seed(1)
    state = runtime.rng_state()
    a = torch.rand(2)
    runtime.set_rng_state(state)
    assert torch.equal(a, torch.rand(2))
