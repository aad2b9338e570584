"""Where and how reproducibly things run: the device, the seeds, the deterministic flags, threads.

One place for all of it, so a notebook's setup cell and the engine agree.
"""
from __future__ import annotations

import os
import random

import torch

DEVICE_ENV = "CLCOURSE_DEVICE"


def get_device(name: str | torch.device | None = None) -> torch.device:
    """CUDA if available, else Apple MPS, else CPU; ``name`` or ``$CLCOURSE_DEVICE`` overrides."""
    if isinstance(name, torch.device):
        return name
    name = name or os.environ.get(DEVICE_ENV)
    if name:
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available here")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy (if present) and torch on every device, and ask for deterministic kernels.

    Same seed, same machine, same settings -> the same accuracy matrix. (Across different
    hardware or thread counts floating-point sums may round differently.)
    """
    random.seed(seed)
    try:
        import numpy as np
        np.random.seed(seed % 2**32)
    except ImportError:  # numpy is optional for the package
        pass
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    # cuBLAS needs this to be deterministic; harmless elsewhere.
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")


def set_threads(n: int | None = None) -> int:
    """Use ``n`` CPU threads for torch (default: ``$CLCOURSE_THREADS`` or all cores).

    Measured on the 2-core course machine (benchmarks/engine_throughput.py): intra-op threads
    equal to the core count is fastest; more threads than cores only adds contention.
    """
    n = n or int(os.environ.get("CLCOURSE_THREADS", 0)) or os.cpu_count() or 1
    torch.set_num_threads(n)
    return n


def flush_denormals() -> None:
    """Treat subnormal floats (< 1.2e-38) as zero on the CPU.

    Why: as training goes on, Adam's second-moment estimates and some activations underflow into
    subnormal numbers, which x86 CPUs handle in slow microcode. Measured on the course machine: an
    MLP 784-400-400-400 step went from 6.2 ms to 8.5 ms after one task without this, and stays at
    6.2 ms with it. Numbers this small never change a prediction. (No effect on GPUs.)
    """
    torch.set_flush_denormal(True)


def rng_state() -> dict:
    """Every random-number state a resumed run needs to continue exactly."""
    state = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
