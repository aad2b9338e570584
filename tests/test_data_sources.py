"""Tests for clcourse.data.sources.

Every test writes TINY files in the real on-disk formats (gzip'ed IDX for MNIST,
bzip2'ed LIBSVM text for USPS, npz archives) into a temporary folder, so that
the real loading code - torchvision's parsers included - runs on them.  One last
test reads the real staged data (set CLCOURSE_DATA to use it).
"""

import bz2
import gzip
import os
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch

from clcourse.data import sources
from clcourse.data import (
    DATASET_NAMES,
    DataCorruptError,
    DataMissingError,
    RawDataset,
    cache_root,
    clear_cache,
    data_report,
    data_root,
    load_dataset,
)

# Read before the fixture below hides it from the tiny-file tests.
REAL_DATA = os.environ.get("CLCOURSE_DATA")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Each test gets its own cache folder, no CLCOURSE_DATA, no downloads, an empty memory cache."""
    monkeypatch.setenv("CLCOURSE_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("CLCOURSE_DATA", raising=False)
    monkeypatch.setenv("CLCOURSE_DOWNLOAD", "0")
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def data_dir(tmp_path):
    """An empty data folder; made writable again at the end so pytest can delete it."""
    folder = tmp_path / "data"
    folder.mkdir()
    yield folder
    for path in [folder, *folder.rglob("*")]:
        if path.is_dir():
            path.chmod(0o755)


# --------------------------------------------------------------------------
# Writers for tiny files in the real formats
# --------------------------------------------------------------------------


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as a gzip'ed IDX file (magic 2051 for images, 2049 for labels)."""
    assert array.dtype == np.uint8
    # Magic number: two zero bytes, type 0x08 (unsigned byte), number of dimensions.
    header = struct.pack(">I", 0x0800 + array.ndim)
    header += b"".join(struct.pack(">I", n) for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def make_mnist(root: Path, n_train=5, n_test=3, seed=0, gz=True):
    """Write the four MNIST files into root/MNIST/raw/; return the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    raw = root / "MNIST" / "raw"
    for name, array in arrays.items():
        gz_path = raw / (name + ".gz")
        write_idx_gz(gz_path, array)
        if not gz:
            (raw / name).write_bytes(gzip.decompress(gz_path.read_bytes()))
            gz_path.unlink()
    return arrays


def write_usps_libsvm(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write USPS in LIBSVM format: 'label idx:value ...', labels 1..10, values in [-1, 1]."""
    lines = []
    for image, label in zip(images, labels):
        pixels = " ".join(f"{i + 1}:{v:.6f}" for i, v in enumerate(image.reshape(-1)))
        lines.append(f"{label + 1} {pixels}\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    with bz2.open(path, "wt") as f:
        f.writelines(lines)


def usps_libsvm_split(n, seed):
    """Random USPS-like images with values in [-1, 1] and labels 0..9."""
    rng = np.random.default_rng(seed)
    images = rng.choice(np.array([-1.0, -0.5, 0.0, 0.25, 1.0], dtype=np.float32), size=(n, 16, 16))
    return images, rng.integers(0, 10, n)


def torchvision_usps_pixels(images):
    """What torchvision's USPS class makes of [-1, 1] values: (v + 1) / 2 * 255, truncated to uint8."""
    return ((images.astype(np.float32) + 1) / 2 * 255).astype(np.uint8)


def make_usps_libsvm(folder: Path, n_train=6, n_test=4, which=("train", "test")):
    written = {}
    for split, n, filename, seed in (("train", n_train, "usps.bz2", 1), ("test", n_test, "usps.t.bz2", 2)):
        if split in which:
            images, labels = usps_libsvm_split(n, seed)
            write_usps_libsvm(folder / filename, images, labels)
            written[split] = (images, labels)
    return written


def make_usps_esl(root: Path, n_train=7, n_test=5, seed=3):
    """Write usps_esl.npz: floats k/255 in [0, 1] (so round(v * 255) == k exactly)."""
    rng = np.random.default_rng(seed)
    ints = {s: rng.integers(0, 256, (n, 16, 16)) for s, n in (("train", n_train), ("test", n_test))}
    arrays = {
        "x_train": (ints["train"] / 255).astype(np.float32),
        "y_train": rng.integers(0, 10, n_train).astype(np.int64),
        "x_test": (ints["test"] / 255).astype(np.float32),
        "y_test": rng.integers(0, 10, n_test).astype(np.int64),
    }
    np.savez(root / "usps_esl.npz", **arrays)
    return arrays, ints


def make_cifar_npz(root: Path, name="cifar10", n_train=6, n_test=4, seed=4, coarse=True, **overrides):
    rng = np.random.default_rng(seed)
    n_classes = 100 if name == "cifar100" else 10
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 32, 32, 3), dtype=np.uint8),
        "y_train": rng.integers(0, n_classes, n_train),
        "x_test": rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        "y_test": rng.integers(0, n_classes, n_test),
    }
    if name == "cifar100" and coarse:
        arrays["y_train_coarse"] = rng.integers(0, 20, n_train)
        arrays["y_test_coarse"] = rng.integers(0, 20, n_test)
    arrays.update(overrides)
    arrays = {k: v for k, v in arrays.items() if v is not None}
    np.savez(root / f"{name}.npz", **arrays)
    return arrays


def make_read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)


def snapshot(folder: Path) -> dict:
    """Every path under folder with its size and modification time.

    chmod alone proves nothing when the tests run as root (root ignores it),
    so the tests also compare snapshots taken before and after loading.
    """
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in [folder, *folder.rglob("*")]}


# --------------------------------------------------------------------------
# Folders
# --------------------------------------------------------------------------


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "clcourse"
    monkeypatch.setenv("CLCOURSE_DATA", str(tmp_path / "env"))
    assert data_root() == tmp_path / "env"
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("CLCOURSE_DATA")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert data_root() == Path.home() / ".local" / "share" / "clcourse"


def test_cache_root_from_env_and_created(tmp_path, monkeypatch):
    monkeypatch.setenv("CLCOURSE_CACHE", str(tmp_path / "c" / "d"))
    assert cache_root() == tmp_path / "c" / "d"
    assert (tmp_path / "c" / "d").is_dir()
    monkeypatch.delenv("CLCOURSE_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdgc"))
    assert cache_root() == tmp_path / "xdgc" / "clcourse"


# --------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------


def test_mnist_from_gz_roundtrip_read_only_folder(data_dir, tmp_path):
    arrays = make_mnist(data_dir)
    make_read_only(data_dir)
    before = snapshot(data_dir)

    ds = load_dataset("mnist", root=data_dir)

    assert isinstance(ds, RawDataset)
    assert ds.source == "torchvision-idx" and ds.n_classes == 10
    assert ds.x_train.dtype == torch.uint8 and ds.x_train.shape == (5, 1, 28, 28)
    assert ds.y_train.dtype == torch.int64 and ds.y_train.shape == (5,)
    assert ds.x_test.shape == (3, 1, 28, 28) and ds.y_test.shape == (3,)
    assert np.array_equal(ds.x_train[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(ds.y_train.numpy(), arrays["train-labels-idx1-ubyte"])
    assert np.array_equal(ds.x_test[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert np.array_equal(ds.y_test.numpy(), arrays["t10k-labels-idx1-ubyte"])
    # Decompressed into CLCOURSE_CACHE, never next to the .gz files.
    cache_raw = tmp_path / "cache" / "MNIST" / "raw"
    assert all((cache_raw / f).is_file() for f in sources.MNIST_FILES)
    assert ds.location == cache_raw and ds.root == data_dir.resolve()
    assert snapshot(data_dir) == before


def test_mnist_decompressed_files_are_read_in_place(data_dir, tmp_path):
    arrays = make_mnist(data_dir, gz=False)
    ds = load_dataset("mnist", root=data_dir)
    assert np.array_equal(ds.x_test[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert ds.location == (data_dir / "MNIST" / "raw").resolve()
    assert not (tmp_path / "cache" / "MNIST").exists()


def test_mnist_decompression_reused_when_fresh_redone_when_stale(data_dir, tmp_path):
    make_mnist(data_dir, seed=0)
    load_dataset("mnist", root=data_dir)
    out = tmp_path / "cache" / "MNIST" / "raw" / "train-images-idx3-ubyte"
    first_mtime = out.stat().st_mtime_ns

    clear_cache()
    load_dataset("mnist", root=data_dir)
    assert out.stat().st_mtime_ns == first_mtime  # fresh: not decompressed again
    assert not list(out.parent.glob("*.tmp"))  # no leftovers of the atomic writes

    # Replace the data with different images (and a different modification time).
    clear_cache()
    new = make_mnist(data_dir, seed=1)
    gz = data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    os.utime(gz, ns=(first_mtime + 10**9, first_mtime + 10**9))
    ds = load_dataset("mnist", root=data_dir)
    assert np.array_equal(ds.x_train[:, 0].numpy(), new["train-images-idx3-ubyte"])


def test_mnist_downloaded_into_cache_earlier_is_used(data_dir, tmp_path):
    # What a download into the cache folder leaves: decompressed files, no ".source" stamps.
    arrays = make_mnist(tmp_path / "cache", gz=False)
    ds = load_dataset("mnist", root=data_dir)
    assert ds.location == tmp_path / "cache" / "MNIST" / "raw"
    assert np.array_equal(ds.y_train.numpy(), arrays["train-labels-idx1-ubyte"])


def test_in_process_cache_returns_same_object(data_dir):
    make_mnist(data_dir)
    first = load_dataset("mnist", root=data_dir)
    assert load_dataset("mnist", root=str(data_dir)) is first
    clear_cache()
    assert load_dataset("mnist", root=data_dir) is not first


@pytest.mark.parametrize("remove", [sources.MNIST_FILES, sources.MNIST_FILES[2:]])
def test_mnist_missing_files_message(data_dir, remove):
    make_mnist(data_dir)
    for f in remove:
        (data_dir / "MNIST" / "raw" / (f + ".gz")).unlink()
    with pytest.raises(DataMissingError) as info:
        load_dataset("mnist", root=data_dir)
    message = str(info.value)
    assert isinstance(info.value, FileNotFoundError)
    assert str(data_dir.resolve()) in message
    for f in remove:
        assert f + ".gz" in message
    for f in set(sources.MNIST_FILES) - set(remove):
        assert f"missing:   {f}" not in message and f", {f}.gz" not in message
    assert "CLCOURSE_DATA" in message and "download" in message


def test_mnist_truncated_gz_is_corrupt(data_dir):
    make_mnist(data_dir)
    gz = data_dir / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    gz.write_bytes(gz.read_bytes()[: gz.stat().st_size // 2])
    with pytest.raises(DataCorruptError, match="train-images-idx3-ubyte.gz"):
        load_dataset("mnist", root=data_dir)


def test_mnist_truncated_idx_is_corrupt(data_dir):
    make_mnist(data_dir)
    gz = data_dir / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz"
    content = gzip.decompress(gz.read_bytes())
    gz.write_bytes(gzip.compress(content[:-100]))  # a valid gzip of a too-short IDX file
    with pytest.raises(DataCorruptError, match="t10k-images-idx3-ubyte"):
        load_dataset("mnist", root=data_dir)


def test_mnist_label_out_of_range_is_corrupt(data_dir):
    make_mnist(data_dir)
    write_idx_gz(data_dir / "MNIST" / "raw" / "train-labels-idx1-ubyte.gz", np.array([0, 1, 12, 3, 4], np.uint8))
    with pytest.raises(DataCorruptError, match="labels range from 0 to 12"):
        load_dataset("mnist", root=data_dir)


def test_mnist_download_failure_becomes_missing_error(data_dir, monkeypatch):
    import torchvision.datasets

    calls = []

    def failing_download(self):
        calls.append(self.root)
        raise URLError("no network in this test")

    monkeypatch.setattr(torchvision.datasets.MNIST, "download", failing_download)
    # Downloads are off (CLCOURSE_DOWNLOAD=0 from the fixture): nothing is tried.
    with pytest.raises(DataMissingError, match="Downloads are off"):
        load_dataset("mnist", root=data_dir)
    assert calls == []
    # Allowed: the download is tried, in the writable data folder, and fails cleanly.
    with pytest.raises(DataMissingError, match="no network in this test") as info:
        load_dataset("mnist", root=data_dir, download=True)
    assert calls == [str(data_dir.resolve())]
    assert isinstance(info.value.__cause__, URLError)
    # A read-only data folder is never a download target: the cache folder is used instead.
    make_read_only(data_dir)
    with pytest.raises(DataMissingError):
        load_dataset("mnist", root=data_dir, download=True)
    assert calls[-1] == str(cache_root())


# --------------------------------------------------------------------------
# USPS
# --------------------------------------------------------------------------


def test_usps_libsvm_roundtrip(data_dir):
    written = make_usps_libsvm(data_dir / "USPS")
    make_read_only(data_dir)
    before = snapshot(data_dir)
    ds = load_dataset("usps", root=data_dir)
    assert ds.source == "torchvision-libsvm"
    assert ds.x_train.shape == (6, 1, 16, 16) and ds.x_train.dtype == torch.uint8
    assert ds.x_test.shape == (4, 1, 16, 16) and ds.y_test.dtype == torch.int64
    for split in ("train", "test"):
        images, labels = written[split]
        x, y = getattr(ds, "x_" + split), getattr(ds, "y_" + split)
        assert np.array_equal(x[:, 0].numpy(), torchvision_usps_pixels(images))
        assert np.array_equal(y.numpy(), labels)
    assert snapshot(data_dir) == before


def test_usps_libsvm_files_directly_in_data_folder(data_dir):
    make_usps_libsvm(data_dir)
    assert load_dataset("usps", root=data_dir).source == "torchvision-libsvm"


def test_usps_esl_roundtrip(data_dir):
    arrays, ints = make_usps_esl(data_dir)
    ds = load_dataset("usps", root=data_dir)
    assert ds.source == "esl-npz"
    assert ds.x_train.shape == (7, 1, 16, 16) and ds.x_train.dtype == torch.uint8
    assert np.array_equal(ds.x_train[:, 0].numpy(), ints["train"])
    assert np.array_equal(ds.x_test[:, 0].numpy(), ints["test"])
    assert np.array_equal(ds.y_train.numpy(), arrays["y_train"])
    assert ds.y_test.dtype == torch.int64


def test_usps_never_mixes_sources(data_dir):
    # Only the LIBSVM *test* file plus the ESL archive (like the staged data):
    # both splits must come from the ESL archive.
    make_usps_libsvm(data_dir / "USPS", which=("test",))
    _, ints = make_usps_esl(data_dir, n_test=5)
    ds = load_dataset("usps", root=data_dir)
    assert ds.source == "esl-npz"
    assert np.array_equal(ds.x_test[:, 0].numpy(), ints["test"])
    # Forcing LIBSVM does not borrow the ESL training split.
    with pytest.raises(DataMissingError) as info:
        load_dataset("usps", root=data_dir, usps_source="libsvm")
    assert "usps.bz2" in str(info.value) and str(data_dir.resolve()) in str(info.value)


def test_usps_source_choice(data_dir):
    make_usps_libsvm(data_dir / "USPS")
    _, ints = make_usps_esl(data_dir)
    assert load_dataset("usps", root=data_dir).source == "torchvision-libsvm"  # auto prefers LIBSVM
    esl = load_dataset("usps", root=data_dir, usps_source="esl")
    assert esl.source == "esl-npz"
    assert np.array_equal(esl.x_train[:, 0].numpy(), ints["train"])
    assert load_dataset("usps", root=data_dir, usps_source="libsvm").source == "torchvision-libsvm"
    with pytest.raises(ValueError, match="auto, libsvm, esl"):
        load_dataset("usps", root=data_dir, usps_source="both")


def test_usps_missing_esl_message(data_dir):
    with pytest.raises(DataMissingError) as info:
        load_dataset("usps", root=data_dir, usps_source="esl")
    assert "usps_esl.npz" in str(info.value) and str(data_dir.resolve()) in str(info.value)
    with pytest.raises(DataMissingError) as info:
        load_dataset("usps", root=data_dir)
    for name in ("usps.bz2", "usps.t.bz2", "usps_esl.npz"):
        assert name in str(info.value)


def test_usps_corrupt_files(data_dir):
    make_usps_libsvm(data_dir / "USPS")
    path = data_dir / "USPS" / "usps.bz2"
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(DataCorruptError, match="usps.bz2"):
        load_dataset("usps", root=data_dir)
    np.savez(data_dir / "usps_esl.npz", images=np.zeros((2, 16, 16), np.float32))
    with pytest.raises(DataCorruptError, match="usps_esl.npz"):
        load_dataset("usps", root=data_dir, usps_source="esl")


# --------------------------------------------------------------------------
# CIFAR
# --------------------------------------------------------------------------


def test_cifar10_npz_roundtrip(data_dir):
    arrays = make_cifar_npz(data_dir, "cifar10")
    make_read_only(data_dir)
    before = snapshot(data_dir)
    ds = load_dataset("cifar10", root=data_dir)
    assert ds.source == "npz" and ds.n_classes == 10 and ds.extra == {}
    assert ds.x_train.shape == (6, 3, 32, 32) and ds.x_train.dtype == torch.uint8
    assert ds.x_train.is_contiguous()
    assert np.array_equal(ds.x_train.permute(0, 2, 3, 1).numpy(), arrays["x_train"])
    assert np.array_equal(ds.x_test.permute(0, 2, 3, 1).numpy(), arrays["x_test"])
    assert ds.y_train.dtype == torch.int64 and np.array_equal(ds.y_train.numpy(), arrays["y_train"])
    assert snapshot(data_dir) == before


def test_cifar100_npz_with_coarse_labels(data_dir):
    arrays = make_cifar_npz(data_dir, "cifar100")
    ds = load_dataset("cifar100", root=data_dir)
    assert ds.n_classes == 100 and ds.x_test.shape == (4, 3, 32, 32)
    assert np.array_equal(ds.y_test.numpy(), arrays["y_test"])
    assert np.array_equal(ds.extra["y_train_coarse"].numpy(), arrays["y_train_coarse"])
    assert ds.extra["y_test_coarse"].dtype == torch.int64


def test_cifar100_npz_without_coarse_labels(data_dir):
    make_cifar_npz(data_dir, "cifar100", coarse=False)
    assert load_dataset("cifar100", root=data_dir).extra == {}


@pytest.mark.parametrize(
    "name, overrides, expected",
    [
        ("cifar10", {"x_test": None}, "x_test"),  # key missing
        ("cifar10", {"x_train": np.zeros((6, 3, 32, 32), np.uint8)}, "expected \\(N, 32, 32, 3\\) uint8"),
        ("cifar10", {"x_train": np.zeros((6, 32, 32, 3), np.float32)}, "uint8"),
        ("cifar10", {"y_train": np.array([0, 1, 2, 3, 4, 10])}, "labels range from 0 to 10"),
        ("cifar10", {"y_test": np.array([0, 1, 2])}, "labels have shape"),
        ("cifar100", {"y_test_coarse": np.array([0, 1, 2, 25])}, "y_test_coarse ranges"),
        ("cifar100", {"y_test_coarse": None}, "not both"),
    ],
)
def test_cifar_npz_bad_content_is_corrupt(data_dir, name, overrides, expected):
    make_cifar_npz(data_dir, name, **overrides)
    with pytest.raises(DataCorruptError, match=expected) as info:
        load_dataset(name, root=data_dir)
    assert f"{name}.npz" in str(info.value)


def test_cifar_npz_not_a_zip_is_corrupt(data_dir):
    (data_dir / "cifar10.npz").write_bytes(b"this is not a zip archive")
    with pytest.raises(DataCorruptError, match="cifar10.npz"):
        load_dataset("cifar10", root=data_dir)


def test_cifar_bad_torchvision_folder_is_corrupt(data_dir):
    # The folder is there but its files do not pass torchvision's checksum check.
    (data_dir / "cifar-10-batches-py").mkdir()
    (data_dir / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"garbage")
    with pytest.raises(DataCorruptError, match="cifar-10-batches-py"):
        load_dataset("cifar10", root=data_dir)


def test_cifar_missing_message(data_dir):
    with pytest.raises(DataMissingError) as info:
        load_dataset("cifar100", root=data_dir)
    message = str(info.value)
    assert str(data_dir.resolve()) in message
    assert "cifar100.npz" in message and "cifar-100-python" in message
    assert "x_train (N,32,32,3) uint8" in message  # says what the npz must hold


# --------------------------------------------------------------------------
# Names and the report
# --------------------------------------------------------------------------


def test_unknown_name_lists_valid_names(data_dir):
    with pytest.raises(ValueError) as info:
        load_dataset("svhn", root=data_dir)
    for name in DATASET_NAMES:
        assert name in str(info.value)


def test_data_report_never_raises(data_dir, tmp_path):
    make_mnist(data_dir)
    (data_dir / "usps_esl.npz").write_bytes(b"broken")
    make_cifar_npz(data_dir, "cifar10")
    rows = {row["name"]: row for row in data_report(data_dir)}

    assert list(rows) == list(DATASET_NAMES)
    keys = {"name", "present", "loadable", "source", "where", "n_train", "n_test", "message"}
    assert all(set(row) == keys for row in rows.values())
    assert rows["mnist"]["loadable"] and rows["mnist"]["n_train"] == 5 and rows["mnist"]["n_test"] == 3
    assert rows["mnist"]["source"] == "torchvision-idx"
    assert rows["usps"]["present"] and not rows["usps"]["loadable"]
    assert "DataCorruptError" in rows["usps"]["message"]
    assert rows["cifar10"]["loadable"] and rows["cifar10"]["where"].endswith("cifar10.npz")
    assert not rows["cifar100"]["present"] and not rows["cifar100"]["loadable"]
    assert rows["cifar100"]["n_train"] is None and "DataMissingError" in rows["cifar100"]["message"]

    # Odd roots: a folder that does not exist, and a file instead of a folder.
    (tmp_path / "a_file").write_text("x")
    # (MNIST's decompressed copies in the cache belong to data_dir: they do not count here.)
    for odd in (tmp_path / "nowhere", tmp_path / "a_file"):
        rows = data_report(odd)
        assert len(rows) == len(DATASET_NAMES)
        assert not any(row["loadable"] or row["present"] for row in rows)


# --------------------------------------------------------------------------
# The real staged data
# --------------------------------------------------------------------------

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
USPS_TRAIN_COUNTS = [1194, 1005, 731, 658, 652, 556, 664, 645, 542, 644]
USPS_TEST_COUNTS = [359, 264, 198, 166, 200, 160, 170, 147, 166, 177]


def test_real_staged_data(monkeypatch):
    """Real MNIST and USPS (ESL) from CLCOURSE_DATA.

    Skipped when CLCOURSE_DATA is unset, except on CI (CI=true): there, missing
    data must fail loudly with DataMissingError instead of being skipped.
    """
    on_ci = os.environ.get("CI", "").lower() == "true"
    if not REAL_DATA and not on_ci:
        pytest.skip("set CLCOURSE_DATA to the data folder to test the real data")
    if REAL_DATA:
        monkeypatch.setenv("CLCOURSE_DATA", REAL_DATA)

    mnist = load_dataset("mnist", download=False)
    assert mnist.x_train.shape == (60000, 1, 28, 28) and mnist.x_test.shape == (10000, 1, 28, 28)
    assert mnist.x_train.dtype == torch.uint8 and int(mnist.x_train.max()) == 255
    assert torch.bincount(mnist.y_train).tolist() == MNIST_TRAIN_COUNTS
    assert torch.bincount(mnist.y_test).tolist() == MNIST_TEST_COUNTS

    usps = load_dataset("usps", usps_source="esl", download=False)
    assert usps.source == "esl-npz"
    assert usps.x_train.shape == (7291, 1, 16, 16) and usps.x_test.shape == (2007, 1, 16, 16)
    assert torch.bincount(usps.y_train).tolist() == USPS_TRAIN_COUNTS
    assert torch.bincount(usps.y_test).tolist() == USPS_TEST_COUNTS
