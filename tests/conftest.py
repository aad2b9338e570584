"""Shared test fixtures: tiny datasets written in the real file formats, so the real loaders run.

The images are small class-dependent patterns plus noise: learnable in a few steps, so a test can
check that training learns, yet nothing like real digits — they never leave the tests.
"""
from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

# Test tensors are tiny: one thread is faster than two (no OpenMP hand-offs) and does not fight
# other processes for the cores. Subprocesses get the same through CLCOURSE_THREADS.
torch.set_num_threads(1)
os.environ["CLCOURSE_THREADS"] = "1"


def class_images(labels: np.ndarray, side: int, seed: int) -> np.ndarray:
    """uint8 images (N, side, side): a bright horizontal band whose row encodes the class, + noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 60, size=(len(labels), side, side)).astype(np.uint8)
    rows = (labels * (side - 2)) // 10
    for i, r in enumerate(rows):
        x[i, r:r + 2, :] = 255
    return x


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file as in the MNIST distribution: magic (0x0800 | ndim), big-endian sizes, bytes."""
    magic = 0x0800 | array.ndim  # 0x08 = unsigned byte
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_mnist(root: Path, per_class_train: int = 20, per_class_test: int = 10) -> Path:
    """Tiny MNIST in torchvision's layout: ``root/MNIST/raw/*-ubyte.gz``."""
    raw = Path(root) / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n, seed in (("train", per_class_train, 1), ("t10k", per_class_test, 2)):
        y = np.tile(np.arange(10), n).astype(np.uint8)
        write_idx(raw / f"{split}-images-idx3-ubyte.gz", class_images(y, 28, seed))
        write_idx(raw / f"{split}-labels-idx1-ubyte.gz", y)
    return Path(root)


def write_usps_esl(root: Path, per_class_train: int = 20, per_class_test: int = 10) -> Path:
    """Tiny ``usps_esl.npz`` (16×16 float32 in [0, 1]), the ESL/ZIP-code archive's format."""
    arrays = {}
    for split, n, seed in (("train", per_class_train, 3), ("test", per_class_test, 4)):
        y = np.tile(np.arange(10), n).astype(np.int64)
        arrays[f"x_{split}"] = class_images(y, 16, seed).astype(np.float32) / 255
        arrays[f"y_{split}"] = y
    np.savez(Path(root) / "usps_esl.npz", **arrays)
    return Path(root)


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path_factory, monkeypatch):
    """Every test: its own cache folder, no progress bars, no downloads."""
    monkeypatch.setenv("CLCOURSE_CACHE", str(tmp_path_factory.mktemp("cache")))
    monkeypatch.setenv("CLCOURSE_PROGRESS", "0")
    monkeypatch.setenv("CLCOURSE_DOWNLOAD", "0")
    yield
    from clcourse.data import sources
    sources.clear_cache()


@pytest.fixture
def tiny_root(tmp_path):
    """A data folder with tiny MNIST and USPS (ESL) files."""
    root = tmp_path / "data"
    root.mkdir()
    write_mnist(root)
    write_usps_esl(root)
    return root


@pytest.fixture
def real_root():
    """The staged real data (``$CLCOURSE_DATA``). Skipped where absent, except in CI (CI=true),
    where a missing folder must fail loudly with the data error instead of skipping."""
    root = os.environ.get("CLCOURSE_DATA")
    if not root and os.environ.get("CI") != "true":
        pytest.skip("CLCOURSE_DATA is not set")
    return Path(root) if root else None


@pytest.fixture
def cifar10_root(tmp_path):
    """``cifar10.npz`` (keys of mnist.npz): 8 train / 4 test images per class, a bright row per class."""
    rng, arrays = np.random.default_rng(0), {}
    for split, n in (("train", 8), ("test", 4)):
        y = np.tile(np.arange(10), n)
        x = rng.integers(0, 256, size=(len(y), 32, 32, 3), dtype=np.uint8)
        x[np.arange(len(y)), 3 * y, :, :] = 255
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    np.savez(tmp_path / "cifar10.npz", **arrays)
    return tmp_path
