"""Raw image data sets for the course: MNIST, USPS, CIFAR-10 and CIFAR-100.

This module has one job: read the data files with torchvision's own dataset
classes (or from npz archives), check them, and hand back plain uint8 tensors
in a :class:`RawDataset`.  Everything else in the course (task streams,
scenarios, normalisation, augmentation) starts from these tensors.  Which
folders are searched, downloads, and the error types live in
:mod:`clcourse.data.folders`; the public names from there (``data_root``,
``cache_root``, ``DataMissingError``, ``DataCorruptError``) are importable
from here too.

What each data set needs in the data folder
-------------------------------------------
==========  ==============================================================
``mnist``   ``MNIST/raw/`` with the four IDX files, decompressed or ``.gz``
``usps``    torchvision's LIBSVM files ``usps.bz2`` + ``usps.t.bz2`` (in
            ``USPS/`` or directly in the data folder), or ``usps_esl.npz``
``cifar10`` ``cifar10.npz``, or torchvision's ``cifar-10-batches-py/``
``cifar100`` ``cifar100.npz``, or torchvision's ``cifar-100-python/``
==========  ==============================================================

Typical use::

    from clcourse.data import load_dataset
    mnist = load_dataset("mnist")
    mnist.x_train.shape   # torch.Size([60000, 1, 28, 28]), dtype torch.uint8
"""

from __future__ import annotations

import gzip
import os
import pickle
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from .folders import (
    DataCorruptError,
    DataMissingError,
    cache_path,
    copy_into_cache,
    corrupt_error,
    download_folder,
    downloads_allowed_by_env,
    missing_error,
    try_download,
    cache_root,
    data_root,
)

__all__ = [
    "DATASET_NAMES",
    "NUM_CLASSES",
    "USPS_SOURCES",
    "DataCorruptError",
    "DataMissingError",
    "RawDataset",
    "cache_root",
    "clear_cache",
    "data_report",
    "data_root",
    "load_dataset",
]

DATASET_NAMES = ("mnist", "usps", "cifar10", "cifar100")
NUM_CLASSES = {"mnist": 10, "usps": 10, "cifar10": 10, "cifar100": 100}
USPS_SOURCES = ("auto", "libsvm", "esl")

# Image shape (channels, height, width) of each data set, used to validate files.
IMAGE_SHAPES = {"mnist": (1, 28, 28), "usps": (1, 16, 16), "cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}
CIFAR100_N_COARSE = 20

# The names torchvision uses on disk.
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
USPS_LIBSVM_FILES = ("usps.bz2", "usps.t.bz2")  # (train, test)
USPS_ESL_FILE = "usps_esl.npz"
CIFAR_NPZ_FILES = {"cifar10": "cifar10.npz", "cifar100": "cifar100.npz"}
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


# --------------------------------------------------------------------------
# The result type
# --------------------------------------------------------------------------


# eq=False: comparing two data sets element by element is never what we want,
# and tensors do not support `==` as a single True/False anyway.
@dataclass(eq=False)
class RawDataset:
    """A data set as uint8 image tensors and int64 labels, before any preprocessing.

    Attributes:
        name: "mnist", "usps", "cifar10" or "cifar100".
        x_train, x_test: uint8 tensors of shape (N, C, H, W); C is 1 for digits, 3 for CIFAR.
        y_train, y_test: int64 tensors of shape (N,), class indices starting at 0.
        source: which files were read, e.g. "torchvision-idx" (MNIST),
            "torchvision-libsvm" or "esl-npz" (USPS), "npz" or "torchvision-pickle" (CIFAR).
        root: the data folder that was asked for.
        extra: more labels when the files have them (CIFAR-100: "y_train_coarse", "y_test_coarse").
        location: the file or folder the arrays were actually read from
            (for MNIST from .gz files, this is the cache folder).

    The same object is returned to every caller in a process, so treat the tensors
    as read-only: copy them (``x.clone()``) before changing them in place.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    root: Path
    extra: dict = field(default_factory=dict)
    location: Optional[Path] = None

    @property
    def n_classes(self) -> int:
        """Number of classes of the data set (10, or 100 for CIFAR-100)."""
        if self.name in NUM_CLASSES:
            return NUM_CLASSES[self.name]
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def __repr__(self) -> str:
        # The default dataclass repr would print whole tensors.
        def shape(t: torch.Tensor) -> str:
            return "x".join(str(s) for s in t.shape)

        return (
            f"RawDataset(name={self.name!r}, source={self.source!r}, "
            f"train={shape(self.x_train)}, test={shape(self.x_test)}, "
            f"n_classes={self.n_classes}, location={str(self.location)!r})"
        )


# --------------------------------------------------------------------------
# Checking what was read
# --------------------------------------------------------------------------


def _check_split(
    name: str,
    split: str,
    x: torch.Tensor,
    y: torch.Tensor,
    files: Sequence[Path],
    root: Path,
    hint: str = "",
) -> None:
    """Raise DataCorruptError unless ``x``/``y`` look like a valid split of data set ``name``."""
    expected = IMAGE_SHAPES[name]
    problem = None
    if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != expected:
        problem = f"{split} images have shape {tuple(x.shape)} and dtype {x.dtype}, expected (N, {expected}) uint8"
    elif y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
        problem = f"{split} labels have shape {tuple(y.shape)}, expected ({len(x)},) to match the images"
    elif len(x) == 0:
        problem = f"the {split} split is empty"
    elif int(y.min()) < 0 or int(y.max()) >= NUM_CLASSES[name]:
        problem = (
            f"{split} labels range from {int(y.min())} to {int(y.max())}, "
            f"expected 0 to {NUM_CLASSES[name] - 1}"
        )
    if problem is not None:
        raise corrupt_error(name, files, root, problem, hint)


# --------------------------------------------------------------------------
# MNIST
# --------------------------------------------------------------------------


def _find_mnist_file(raw: Path, filename: str) -> Optional[Path]:
    """The decompressed file if present, else the ``.gz`` file, else None."""
    for candidate in (raw / filename, raw / (filename + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _read_mnist(root: Path, folder: Path, source_files: Sequence[Path], hint: str = "") -> RawDataset:
    """Read ``folder/MNIST/raw/`` with torchvision's MNIST class (it only reads decompressed files)."""
    from torchvision.datasets import MNIST  # imported here: importing torchvision takes seconds

    try:
        train = MNIST(str(folder), train=True, download=False)
        test = MNIST(str(folder), train=False, download=False)
    except Exception as err:
        raise corrupt_error("mnist", source_files, root, f"torchvision could not parse them: {err!r}", hint) from err

    # torchvision gives (N, 28, 28); the course uses (N, C, H, W) everywhere.
    x_train, x_test = train.data.unsqueeze(1), test.data.unsqueeze(1)
    _check_split("mnist", "train", x_train, train.targets, source_files, root, hint)
    _check_split("mnist", "test", x_test, test.targets, source_files, root, hint)
    return RawDataset(
        name="mnist",
        x_train=x_train,
        y_train=train.targets,
        x_test=x_test,
        y_test=test.targets,
        source="torchvision-idx",
        root=root,
        location=folder / "MNIST" / "raw",
    )


def _load_mnist(root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    found = {f: _find_mnist_file(raw, f) for f in MNIST_FILES}

    # 1. The decompressed files are in the data folder: torchvision reads them there.
    if all(path is not None and path.suffix != ".gz" for path in found.values()):
        return _read_mnist(root, root, list(found.values()))

    # 2. All files are there, some only as .gz: torchvision's MNIST(download=False)
    #    reads only decompressed files, and the data folder must stay untouched,
    #    so decompress them into the cache folder and read them from there.
    if all(path is not None for path in found.values()):
        cache = cache_root()
        for filename, source in found.items():
            try:
                copy_into_cache(source, cache / "MNIST" / "raw" / filename)
            except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                raise corrupt_error("mnist", [source], root, f"not a valid gzip file: {err!r}") from err
        hint = f"(The files were decompressed into {cache / 'MNIST' / 'raw'}; deleting that folder is safe.)"
        return _read_mnist(root, cache, list(found.values()), hint)

    # 3. Files downloaded into the cache folder earlier.  Files with a ".source"
    #    stamp do not count: they are copies of some data folder's .gz files,
    #    possibly of another data folder than the one asked for now.
    cache_raw = cache_path() / "MNIST" / "raw"
    downloaded = [(cache_raw / f).is_file() and not (cache_raw / (f + ".source")).exists() for f in MNIST_FILES]
    if all(downloaded):
        return _read_mnist(root, cache_path(), [cache_raw / f for f in MNIST_FILES])

    # 4. Download with torchvision (it fetches the .gz files and decompresses them).
    download_error, target = None, None
    if download:
        target = download_folder(root)
        download_error = try_download(lambda: MNIST(str(target), train=True, download=True))
        target_raw = target / "MNIST" / "raw"
        if all((target_raw / f).is_file() for f in MNIST_FILES):
            return _read_mnist(root, target, [target_raw / f for f in MNIST_FILES])

    missing = [f + ".gz" for f, path in found.items() if path is None]
    error = missing_error("mnist", root, missing, [raw, cache_raw], download, download_error, target)
    raise error from download_error


# --------------------------------------------------------------------------
# USPS
# --------------------------------------------------------------------------


def _find_usps_libsvm_folder(root: Path) -> Optional[Path]:
    """The first folder that holds BOTH LIBSVM files, or None.

    Both splits must come from the same folder: torchvision's USPS class reads
    ``<folder>/usps.bz2`` and ``<folder>/usps.t.bz2``.
    """
    for folder in (root / "USPS", root, cache_path() / "USPS"):
        if all((folder / f).is_file() for f in USPS_LIBSVM_FILES):
            return folder
    return None


def _read_usps_libsvm(root: Path, folder: Path) -> RawDataset:
    """Read torchvision's LIBSVM USPS files (values in [-1, 1], mapped by torchvision to 0..255)."""
    from torchvision.datasets import USPS

    files = [folder / f for f in USPS_LIBSVM_FILES]
    tensors = {}
    for split, train in (("train", True), ("test", False)):
        try:
            ds = USPS(str(folder), train=train, download=False)
        except Exception as err:
            raise corrupt_error("usps", files, root, f"torchvision could not parse the {split} file: {err!r}") from err
        x = torch.from_numpy(ds.data).unsqueeze(1)  # (N, 16, 16) -> (N, 1, 16, 16)
        y = torch.tensor(ds.targets, dtype=torch.int64)
        _check_split("usps", split, x, y, files, root)
        tensors["x_" + split], tensors["y_" + split] = x, y
    return RawDataset(name="usps", source="torchvision-libsvm", root=root, location=folder, **tensors)


def _read_usps_esl(root: Path, path: Path) -> RawDataset:
    """Read ``usps_esl.npz``: the same USPS digits in the ESL "ZIP code" preprocessing.

    Its pixels are floats in [0, 1]; they become uint8 as round(v * 255) so that
    every data set in the course has the same uint8 form.  These pixel values are
    NOT equal to torchvision's LIBSVM USPS (a different preprocessing).
    """
    try:
        with np.load(path) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as err:
        raise corrupt_error("usps", [path], root, f"not a readable npz with the expected keys: {err!r}") from err

    tensors = {}
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.ndim != 3 or x.shape[1:] != (16, 16) or not np.issubdtype(x.dtype, np.floating):
            problem = f"x_{split} has shape {x.shape} and dtype {x.dtype}, expected (N, 16, 16) float"
            raise corrupt_error("usps", [path], root, problem)
        if not np.issubdtype(y.dtype, np.integer):
            raise corrupt_error("usps", [path], root, f"y_{split} has dtype {y.dtype}, expected integers")
        if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
            raise corrupt_error("usps", [path], root, f"x_{split} has values outside [0, 1]")
        pixels = np.rint(x.astype(np.float64) * 255).astype(np.uint8)
        x_t = torch.from_numpy(pixels).unsqueeze(1)  # (N, 16, 16) -> (N, 1, 16, 16)
        y_t = torch.from_numpy(y.astype(np.int64))
        _check_split("usps", split, x_t, y_t, [path], root)
        tensors["x_" + split], tensors["y_" + split] = x_t, y_t
    return RawDataset(name="usps", source="esl-npz", root=root, location=path, **tensors)


def _load_usps(root: Path, download: bool, usps_source: str) -> RawDataset:
    """Load USPS from ONE source; train and test never come from different preprocessings."""
    from torchvision.datasets import USPS

    libsvm_folder = _find_usps_libsvm_folder(root)
    esl_path = root / USPS_ESL_FILE

    if usps_source in ("auto", "libsvm") and libsvm_folder is not None:
        return _read_usps_libsvm(root, libsvm_folder)
    if usps_source in ("auto", "esl") and esl_path.is_file():
        return _read_usps_esl(root, esl_path)

    looked_in = [root / "USPS", root]
    if usps_source == "esl":
        # There is no download for the ESL version.
        raise missing_error("usps", root, [USPS_ESL_FILE], [root], download, can_download=False)

    # Only torchvision's LIBSVM files can be downloaded.
    download_error, target = None, None
    if download:
        target = download_folder(root) / "USPS"

        def fetch_both() -> None:
            USPS(str(target), train=True, download=True)
            USPS(str(target), train=False, download=True)

        download_error = try_download(fetch_both)
        if all((target / f).is_file() for f in USPS_LIBSVM_FILES):
            return _read_usps_libsvm(root, target)

    missing = [f for f in USPS_LIBSVM_FILES if not any((d / f).is_file() for d in looked_in)]
    if usps_source == "auto":
        missing.append(USPS_ESL_FILE)
    error = missing_error("usps", root, missing, looked_in, download, download_error, target)
    raise error from download_error


# --------------------------------------------------------------------------
# CIFAR-10 / CIFAR-100
# --------------------------------------------------------------------------


def _read_cifar_npz(name: str, root: Path, path: Path) -> RawDataset:
    """Read ``cifar10.npz`` / ``cifar100.npz`` (images N x 32 x 32 x 3 uint8, as in mnist.npz)."""
    keys = ["x_train", "y_train", "x_test", "y_test"]
    coarse_keys = ["y_train_coarse", "y_test_coarse"]
    try:
        with np.load(path) as archive:
            arrays = {key: archive[key] for key in keys}
            present_coarse = [key for key in coarse_keys if key in archive.files]
            if name == "cifar100" and len(present_coarse) == 2:
                arrays.update({key: archive[key] for key in coarse_keys})
    except Exception as err:
        problem = f"not a readable npz with keys {keys}: {err!r}"
        raise corrupt_error(name, [path], root, problem) from err
    if name == "cifar100" and len(present_coarse) == 1:
        raise corrupt_error(name, [path], root, f"has {present_coarse[0]} but not both of {coarse_keys}")

    tensors = {}
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            problem = f"x_{split} has shape {x.shape} and dtype {x.dtype}, expected (N, 32, 32, 3) uint8"
            raise corrupt_error(name, [path], root, problem)
        if not np.issubdtype(y.dtype, np.integer):
            raise corrupt_error(name, [path], root, f"y_{split} has dtype {y.dtype}, expected integers")
        # (N, H, W, C) -> (N, C, H, W); contiguous so later code gets a normal tensor.
        x_t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        y_t = torch.from_numpy(y.astype(np.int64))
        _check_split(name, split, x_t, y_t, [path], root)
        tensors["x_" + split], tensors["y_" + split] = x_t, y_t

    extra = {}
    if name == "cifar100" and present_coarse:
        for key, n in (("y_train_coarse", len(tensors["y_train"])), ("y_test_coarse", len(tensors["y_test"]))):
            extra[key] = _check_coarse(arrays[key], n, key, [path], root)

    return RawDataset(name=name, source="npz", root=root, extra=extra, location=path, **tensors)


def _check_coarse(labels, n: int, key: str, files: Sequence[Path], root: Path) -> torch.Tensor:
    """Validate CIFAR-100 coarse (super-class) labels and return them as int64."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (n,):
        problem = f"{key} has shape {labels.shape} and dtype {labels.dtype}, expected ({n},) integers"
        raise corrupt_error("cifar100", files, root, problem)
    if n and (labels.min() < 0 or labels.max() >= CIFAR100_N_COARSE):
        problem = f"{key} ranges from {labels.min()} to {labels.max()}, expected 0 to {CIFAR100_N_COARSE - 1}"
        raise corrupt_error("cifar100", files, root, problem)
    return torch.from_numpy(labels.astype(np.int64))


def _read_cifar_torchvision(name: str, root: Path, folder: Path) -> RawDataset:
    """Read torchvision's extracted CIFAR folder (python pickles) with CIFAR10 / CIFAR100."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if name == "cifar10" else CIFAR100
    files = [folder / CIFAR_FOLDERS[name]]
    tensors = {}
    for split, train in (("train", True), ("test", False)):
        try:
            ds = cls(str(folder), train=train, download=False)
        except Exception as err:
            problem = f"torchvision could not read the {split} split (missing or damaged files?): {err!r}"
            raise corrupt_error(name, files, root, problem) from err
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        y = torch.tensor(ds.targets, dtype=torch.int64)
        _check_split(name, split, x, y, files, root)
        tensors["x_" + split], tensors["y_" + split] = x, y

    extra = {}
    if name == "cifar100":
        # torchvision keeps only the fine labels; the pickles also hold the 20 super-classes.
        for split, filename in (("train", "train"), ("test", "test")):
            path = folder / CIFAR_FOLDERS[name] / filename
            try:
                with open(path, "rb") as f:
                    coarse = pickle.load(f, encoding="latin1")["coarse_labels"]
            except Exception as err:
                raise corrupt_error(name, [path], root, f"cannot read coarse_labels: {err!r}") from err
            key = f"y_{split}_coarse"
            extra[key] = _check_coarse(coarse, len(tensors["y_" + split]), key, [path], root)

    return RawDataset(
        name=name, source="torchvision-pickle", root=root, extra=extra, location=files[0], **tensors
    )


def _load_cifar(name: str, root: Path, download: bool) -> RawDataset:
    from torchvision.datasets import CIFAR10, CIFAR100

    npz_path = root / CIFAR_NPZ_FILES[name]
    folder_name = CIFAR_FOLDERS[name]

    # 1. The npz archive in the data folder.
    if npz_path.is_file():
        return _read_cifar_npz(name, root, npz_path)

    # 2. torchvision's folder, in the data folder or downloaded into the cache earlier.
    for folder in (root, cache_path()):
        if (folder / folder_name).is_dir():
            return _read_cifar_torchvision(name, root, folder)

    # 3. Download with torchvision (about 170 MB).
    download_error, target = None, None
    if download:
        target = download_folder(root)
        cls = CIFAR10 if name == "cifar10" else CIFAR100
        download_error = try_download(lambda: cls(str(target), train=True, download=True))
        if (target / folder_name).is_dir():
            return _read_cifar_torchvision(name, root, target)

    missing = [CIFAR_NPZ_FILES[name], folder_name + "/"]
    error = missing_error(name, root, missing, [root, cache_path()], download, download_error, target)
    raise error from download_error


# --------------------------------------------------------------------------
# Public entry points
# --------------------------------------------------------------------------

# Loaded data sets, so that each is read from disk once per process.
# Key: (name, resolved data folder, usps_source or "" for the other data sets).
_LOADED: Dict[Tuple[str, str, str], RawDataset] = {}


def clear_cache() -> None:
    """Forget the data sets loaded in this process (the next load reads the disk again).

    This is the in-memory cache only; the cache *folder* on disk is left alone.
    """
    _LOADED.clear()


def load_dataset(
    name: str,
    root: Optional[os.PathLike] = None,
    download: Optional[bool] = None,
    usps_source: str = "auto",
) -> RawDataset:
    """Load a data set as uint8 tensors, reading the disk only once per process.

    Args:
        name: "mnist", "usps", "cifar10" or "cifar100".
        root: the data folder; default: see :func:`data_root`.
        download: allow torchvision to download missing data. None (default):
            allowed unless the environment variable CLCOURSE_DOWNLOAD is "0".
        usps_source: USPS only. "auto" uses torchvision's LIBSVM files when both
            splits are there, else ``usps_esl.npz``; "libsvm" or "esl" force one.
            Train and test always come from the same source.

    Raises:
        ValueError: unknown ``name`` or ``usps_source``.
        DataMissingError: the files are not there and could not be downloaded.
        DataCorruptError: a file is there but cannot be read or has wrong content.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    if usps_source not in USPS_SOURCES:
        raise ValueError(f"unknown usps_source {usps_source!r}; valid values: {', '.join(USPS_SOURCES)}")
    if download is None:
        download = downloads_allowed_by_env()

    root_path = data_root(root).resolve()
    key = (name, str(root_path), usps_source if name == "usps" else "")
    if key in _LOADED:
        return _LOADED[key]

    if name == "mnist":
        dataset = _load_mnist(root_path, download)
    elif name == "usps":
        dataset = _load_usps(root_path, download, usps_source)
    else:
        dataset = _load_cifar(name, root_path, download)

    _LOADED[key] = dataset
    return dataset


def _files_present(name: str, root: Path) -> List[Path]:
    """The files of data set ``name`` that exist (in the data folder or the cache), for reports."""
    cache = cache_path()
    if name == "mnist":
        raw, cache_raw = root / "MNIST" / "raw", cache / "MNIST" / "raw"
        candidates = [raw / f for f in MNIST_FILES] + [raw / (f + ".gz") for f in MNIST_FILES]
        # Cache files count only if downloaded there (no ".source" stamp; see _load_mnist).
        candidates += [cache_raw / f for f in MNIST_FILES if not (cache_raw / (f + ".source")).exists()]
    elif name == "usps":
        candidates = [d / f for d in (root / "USPS", root, cache / "USPS") for f in USPS_LIBSVM_FILES]
        candidates.append(root / USPS_ESL_FILE)
    else:
        candidates = [root / CIFAR_NPZ_FILES[name], root / CIFAR_FOLDERS[name], cache / CIFAR_FOLDERS[name]]
    return [p for p in candidates if p.exists()]


def _describe(dataset: RawDataset) -> str:
    """A one-line note on what was loaded, for :func:`data_report`."""
    notes = {
        "torchvision-idx": "original MNIST IDX files",
        "torchvision-libsvm": "torchvision's USPS (LIBSVM files)",
        "esl-npz": "USPS in the ESL/ZIP-code preprocessing (not pixel-equal to torchvision's USPS)",
        "npz": "npz archive",
        "torchvision-pickle": "torchvision's CIFAR files",
    }
    text = f"ok: {notes.get(dataset.source, dataset.source)}"
    full_sizes = {"cifar10": (50000, 10000), "cifar100": (50000, 10000)}
    if dataset.name in full_sizes and (len(dataset.y_train), len(dataset.y_test)) != full_sizes[dataset.name]:
        text += f" (a subset: the full data set has {full_sizes[dataset.name][0]}/{full_sizes[dataset.name][1]} images)"
    return text


def data_report(root: Optional[os.PathLike] = None) -> List[dict]:
    """Say, for every data set, whether its files are there and whether they load.

    Returns one dict per name in DATASET_NAMES with the keys ``name``, ``present``
    (some of its files exist), ``loadable``, ``source``, ``where`` (what was read,
    or the folder looked in), ``n_train``, ``n_test`` (None if not loadable) and
    ``message``.  Nothing is downloaded, and this function never raises: every
    problem becomes the ``message`` of its row.
    """
    rows = []
    for name in DATASET_NAMES:
        row = {
            "name": name,
            "present": False,
            "loadable": False,
            "source": None,
            "where": "",
            "n_train": None,
            "n_test": None,
            "message": "",
        }
        try:
            folder = data_root(root).resolve()
            row["where"] = str(folder)
            row["present"] = bool(_files_present(name, folder))
            dataset = load_dataset(name, root=folder, download=False)
            row.update(
                loadable=True,
                source=dataset.source,
                where=str(dataset.location),
                n_train=len(dataset.y_train),
                n_test=len(dataset.y_test),
                message=_describe(dataset),
            )
        except Exception as err:  # a report must always come back, whatever is on disk
            row["message"] = f"{type(err).__name__}: {err}"
        rows.append(row)
    return rows
