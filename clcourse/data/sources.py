"""Raw image data sets: MNIST, USPS, CIFAR-10 and CIFAR-100, as plain uint8 tensors.

This module reads the files with torchvision's own dataset classes (or from npz archives), checks
them, and returns a :class:`RawDataset`; task streams, scenarios, normalisation and augmentation all
start from its tensors. Which folders are searched, downloads and the error types live in
:mod:`clcourse.data.folders`; its public names (``data_root``, ``cache_root``, ``DataMissingError``,
``DataCorruptError``) can be imported from here too.

What each data set needs in the data folder:

============  ======================================================================================
``mnist``     ``MNIST/raw/`` with the four IDX files, decompressed or ``.gz``
``usps``      torchvision's LIBSVM files ``usps.bz2`` + ``usps.t.bz2`` (in ``USPS/`` or directly in
              the data folder), or ``usps_esl.npz``
``cifar10``   ``cifar10.npz``, or torchvision's ``cifar-10-batches-py/``
``cifar100``  ``cifar100.npz``, or torchvision's ``cifar-100-python/``
============  ======================================================================================

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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .folders import (DataCorruptError, DataMissingError, cache_path, cache_root, copy_into_cache,
                      corrupt_error, data_root, download_folder, downloads_allowed_by_env,
                      missing_error, try_download)

__all__ = ["DATASET_NAMES", "NUM_CLASSES", "USPS_SOURCES", "DataCorruptError", "DataMissingError",
           "RawDataset", "cache_root", "clear_cache", "data_report", "data_root", "load_dataset"]

DATASET_NAMES = ("mnist", "usps", "cifar10", "cifar100")
NUM_CLASSES = {"mnist": 10, "usps": 10, "cifar10": 10, "cifar100": 100}
USPS_SOURCES = ("auto", "libsvm", "esl")

# (channels, height, width) of each data set's images: what a file must hold to be accepted.
IMAGE_SHAPES = {"mnist": (1, 28, 28), "usps": (1, 16, 16), "cifar10": (3, 32, 32),
                "cifar100": (3, 32, 32)}
CIFAR100_N_COARSE = 20

# The names torchvision uses on disk.
MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
               "t10k-labels-idx1-ubyte")
USPS_LIBSVM_FILES = ("usps.bz2", "usps.t.bz2")  # (train, test)
USPS_ESL_FILE = "usps_esl.npz"
CIFAR_NPZ_FILES = {"cifar10": "cifar10.npz", "cifar100": "cifar100.npz"}
CIFAR_FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


# --- the result type ------------------------------------------------------------------------------
# eq=False: comparing two data sets element by element is never wanted (and tensors give no single
# True/False for ``==`` anyway).
@dataclass(eq=False)
class RawDataset:
    """One data set as uint8 images (N, C, H, W) and int64 labels from 0, before any preprocessing.

    ``source``: which files were read: "torchvision-idx" (MNIST), "torchvision-libsvm" or
    "esl-npz" (USPS), "npz" or "torchvision-pickle" (CIFAR). ``root``: the data folder asked for;
    ``location``: the file or folder actually read (for MNIST from .gz files, the cache folder).
    ``extra``: more labels where the files have them (CIFAR-100: "y_train_coarse", "y_test_coarse").

    Every caller in a process gets the same object, so treat the tensors as read-only: ``clone()``
    them before changing them in place.
    """
    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: str
    root: Path
    extra: dict = field(default_factory=dict)
    location: Path | None = None

    @property
    def n_classes(self) -> int:
        """10, or 100 for CIFAR-100 (from the labels for a data set this module does not know)."""
        if self.name in NUM_CLASSES:
            return NUM_CLASSES[self.name]
        return int(max(self.y_train.max(), self.y_test.max())) + 1

    def __repr__(self) -> str:
        # shapes only: the dataclass repr would print whole tensors
        def shape(t: torch.Tensor) -> str:
            return "x".join(str(s) for s in t.shape)

        return (f"RawDataset(name={self.name!r}, source={self.source!r}, "
                f"train={shape(self.x_train)}, test={shape(self.x_test)}, "
                f"n_classes={self.n_classes}, location={str(self.location)!r})")


# --- checking what was read -----------------------------------------------------------------------
def _check_split(name: str, split: str, x: torch.Tensor, y: torch.Tensor, files: Sequence[Path],
                 root: Path, hint: str = "") -> None:
    """Raise DataCorruptError unless ``x``/``y`` look like a valid split of data set ``name``: a
    file that parses can still hold the wrong thing, and the student should learn which file."""
    expected = IMAGE_SHAPES[name]
    problem = None
    if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != expected:
        problem = (f"{split} images have shape {tuple(x.shape)} and dtype {x.dtype}, "
                   f"expected (N, {expected}) uint8")
    elif y.dtype != torch.int64 or y.dim() != 1 or len(y) != len(x):
        problem = (f"{split} labels have shape {tuple(y.shape)}, "
                   f"expected ({len(x)},) to match the images")
    elif len(x) == 0:
        problem = f"the {split} split is empty"
    elif int(y.min()) < 0 or int(y.max()) >= NUM_CLASSES[name]:
        problem = (f"{split} labels range from {int(y.min())} to {int(y.max())}, "
                   f"expected 0 to {NUM_CLASSES[name] - 1}")
    if problem is not None:
        raise corrupt_error(name, files, root, problem, hint)


# --- MNIST ----------------------------------------------------------------------------------------
def _find_mnist_file(raw: Path, filename: str) -> Path | None:
    """The decompressed file if present, else the ``.gz`` file, else None."""
    for candidate in (raw / filename, raw / (filename + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _read_mnist(root: Path, folder: Path, source_files: Sequence[Path],
                hint: str = "") -> RawDataset:
    """Read ``folder/MNIST/raw/`` with torchvision's MNIST class (which reads decompressed files
    only). ``source_files``: the files to name in an error, which may be the .gz originals."""
    from torchvision.datasets import MNIST  # not at the top: importing torchvision takes seconds

    try:
        train = MNIST(str(folder), train=True, download=False)
        test = MNIST(str(folder), train=False, download=False)
    except Exception as err:
        raise corrupt_error("mnist", source_files, root,
                            f"torchvision could not parse them: {err!r}", hint) from err

    # torchvision gives (N, 28, 28); the course uses (N, C, H, W) everywhere
    x_train, x_test = train.data.unsqueeze(1), test.data.unsqueeze(1)
    _check_split("mnist", "train", x_train, train.targets, source_files, root, hint)
    _check_split("mnist", "test", x_test, test.targets, source_files, root, hint)
    return RawDataset(name="mnist", x_train=x_train, y_train=train.targets, x_test=x_test,
                      y_test=test.targets, source="torchvision-idx", root=root,
                      location=folder / "MNIST" / "raw")


def _load_mnist(root: Path, download: bool) -> RawDataset:
    """MNIST from the first of: decompressed files in the data folder, .gz files there, an earlier
    download into the cache folder, a fresh download."""
    from torchvision.datasets import MNIST

    raw = root / "MNIST" / "raw"
    found = {f: _find_mnist_file(raw, f) for f in MNIST_FILES}
    if all(path is not None and path.suffix != ".gz" for path in found.values()):
        return _read_mnist(root, root, list(found.values()))

    # Some files only as .gz: torchvision reads decompressed files only and the data folder is never
    # written to, so they are decompressed into the cache folder and read from there.
    if all(path is not None for path in found.values()):
        cache = cache_root()
        for filename, source in found.items():
            try:
                copy_into_cache(source, cache / "MNIST" / "raw" / filename)
            except (gzip.BadGzipFile, EOFError, zlib.error) as err:
                raise corrupt_error("mnist", [source], root,
                                    f"not a valid gzip file: {err!r}") from err
        hint = (f"(The files were decompressed into {cache / 'MNIST' / 'raw'}; "
                "deleting that folder is safe.)")
        return _read_mnist(root, cache, list(found.values()), hint)

    # An earlier download into the cache. Files with a ".source" stamp do not count: they are
    # copies of some data folder's .gz files, perhaps of another data folder than this one.
    cache_raw = cache_path() / "MNIST" / "raw"
    downloaded = [(cache_raw / f).is_file() and not (cache_raw / (f + ".source")).exists()
                  for f in MNIST_FILES]
    if all(downloaded):
        return _read_mnist(root, cache_path(), [cache_raw / f for f in MNIST_FILES])

    download_error, target = None, None
    if download:  # torchvision fetches the .gz files and decompresses them
        target = download_folder(root)
        download_error = try_download(lambda: MNIST(str(target), train=True, download=True))
        target_raw = target / "MNIST" / "raw"
        if all((target_raw / f).is_file() for f in MNIST_FILES):
            return _read_mnist(root, target, [target_raw / f for f in MNIST_FILES])

    missing = [f + ".gz" for f, path in found.items() if path is None]
    error = missing_error("mnist", root, missing, [raw, cache_raw], download, download_error,
                          target)
    raise error from download_error


# --- USPS -----------------------------------------------------------------------------------------
def _find_usps_libsvm_folder(root: Path) -> Path | None:
    """The first folder that holds both LIBSVM files, or None: torchvision's USPS class reads the
    two splits from one folder (``<folder>/usps.bz2``, ``<folder>/usps.t.bz2``)."""
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
            raise corrupt_error("usps", files, root, f"torchvision could not parse the {split} "
                                f"file: {err!r}") from err
        x = torch.from_numpy(ds.data).unsqueeze(1)  # (N, 16, 16) -> (N, 1, 16, 16)
        y = torch.tensor(ds.targets, dtype=torch.int64)
        _check_split("usps", split, x, y, files, root)
        tensors["x_" + split], tensors["y_" + split] = x, y
    return RawDataset(name="usps", source="torchvision-libsvm", root=root, location=folder,
                      **tensors)


def _read_usps_esl(root: Path, path: Path) -> RawDataset:
    """Read ``usps_esl.npz``, the USPS digits in the ESL "ZIP code" preprocessing.

    Its float pixels in [0, 1] become uint8 as round(v * 255), the form of every data set in the
    course. The values are not those of torchvision's LIBSVM USPS: the preprocessing differs.
    """
    try:
        with np.load(path) as archive:
            arrays = {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    except Exception as err:
        raise corrupt_error("usps", [path], root,
                            f"not a readable npz with the expected keys: {err!r}") from err

    tensors = {}
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.ndim != 3 or x.shape[1:] != (16, 16) or not np.issubdtype(x.dtype, np.floating):
            problem = (f"x_{split} has shape {x.shape} and dtype {x.dtype}, "
                       f"expected (N, 16, 16) float")
            raise corrupt_error("usps", [path], root, problem)
        if not np.issubdtype(y.dtype, np.integer):
            raise corrupt_error("usps", [path], root,
                                f"y_{split} has dtype {y.dtype}, expected integers")
        if x.size and not (np.isfinite(x).all() and x.min() >= 0.0 and x.max() <= 1.0):
            raise corrupt_error("usps", [path], root, f"x_{split} has values outside [0, 1]")
        pixels = np.rint(x.astype(np.float64) * 255).astype(np.uint8)
        x_t = torch.from_numpy(pixels).unsqueeze(1)  # (N, 16, 16) -> (N, 1, 16, 16)
        y_t = torch.from_numpy(y.astype(np.int64))
        _check_split("usps", split, x_t, y_t, [path], root)
        tensors["x_" + split], tensors["y_" + split] = x_t, y_t
    return RawDataset(name="usps", source="esl-npz", root=root, location=path, **tensors)


def _load_usps(root: Path, download: bool, usps_source: str) -> RawDataset:
    """USPS from one source only: train and test never come from different preprocessings."""
    from torchvision.datasets import USPS

    libsvm_folder = _find_usps_libsvm_folder(root)
    esl_path = root / USPS_ESL_FILE
    if usps_source in ("auto", "libsvm") and libsvm_folder is not None:
        return _read_usps_libsvm(root, libsvm_folder)
    if usps_source in ("auto", "esl") and esl_path.is_file():
        return _read_usps_esl(root, esl_path)

    looked_in = [root / "USPS", root]
    if usps_source == "esl":  # the ESL version has no download
        raise missing_error("usps", root, [USPS_ESL_FILE], [root], download, can_download=False)

    download_error, target = None, None
    if download:  # only torchvision's LIBSVM files can be downloaded
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


# --- CIFAR-10 and CIFAR-100 -----------------------------------------------------------------------
def _read_cifar_npz(name: str, root: Path, path: Path) -> RawDataset:
    """Read ``cifar10.npz`` / ``cifar100.npz``: images (N, 32, 32, 3) uint8, as in mnist.npz.
    CIFAR-100's coarse labels are optional, but then both splits must have them."""
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
        raise corrupt_error(name, [path], root,
                            f"has {present_coarse[0]} but not both of {coarse_keys}")

    tensors = {}
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            problem = (f"x_{split} has shape {x.shape} and dtype {x.dtype}, "
                       f"expected (N, 32, 32, 3) uint8")
            raise corrupt_error(name, [path], root, problem)
        if not np.issubdtype(y.dtype, np.integer):
            raise corrupt_error(name, [path], root,
                                f"y_{split} has dtype {y.dtype}, expected integers")
        # (N, H, W, C) -> (N, C, H, W), contiguous so that later code gets an ordinary tensor
        x_t = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()
        y_t = torch.from_numpy(y.astype(np.int64))
        _check_split(name, split, x_t, y_t, [path], root)
        tensors["x_" + split], tensors["y_" + split] = x_t, y_t

    extra = {}
    if name == "cifar100" and present_coarse:
        for key, n in (("y_train_coarse", len(tensors["y_train"])),
                       ("y_test_coarse", len(tensors["y_test"]))):
            extra[key] = _check_coarse(arrays[key], n, key, [path], root)

    return RawDataset(name=name, source="npz", root=root, extra=extra, location=path, **tensors)


def _check_coarse(labels, n: int, key: str, files: Sequence[Path], root: Path) -> torch.Tensor:
    """CIFAR-100's coarse (super-class) labels as int64, after checking their shape and range."""
    labels = np.asarray(labels)
    if not np.issubdtype(labels.dtype, np.integer) or labels.shape != (n,):
        problem = (f"{key} has shape {labels.shape} and dtype {labels.dtype}, "
                   f"expected ({n},) integers")
        raise corrupt_error("cifar100", files, root, problem)
    if n and (labels.min() < 0 or labels.max() >= CIFAR100_N_COARSE):
        problem = (f"{key} ranges from {labels.min()} to {labels.max()}, "
                   f"expected 0 to {CIFAR100_N_COARSE - 1}")
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
            problem = (f"torchvision could not read the {split} split (missing or damaged files?): "
                       f"{err!r}")
            raise corrupt_error(name, files, root, problem) from err
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW
        y = torch.tensor(ds.targets, dtype=torch.int64)
        _check_split(name, split, x, y, files, root)
        tensors["x_" + split], tensors["y_" + split] = x, y

    extra = {}
    if name == "cifar100":
        # torchvision keeps only the fine labels; the pickles also hold the 20 super-classes
        for split, filename in (("train", "train"), ("test", "test")):
            path = folder / CIFAR_FOLDERS[name] / filename
            try:
                with open(path, "rb") as f:
                    coarse = pickle.load(f, encoding="latin1")["coarse_labels"]
            except Exception as err:
                raise corrupt_error(name, [path], root,
                                    f"cannot read coarse_labels: {err!r}") from err
            key = f"y_{split}_coarse"
            extra[key] = _check_coarse(coarse, len(tensors["y_" + split]), key, [path], root)

    return RawDataset(name=name, source="torchvision-pickle", root=root, extra=extra,
                      location=files[0], **tensors)


def _load_cifar(name: str, root: Path, download: bool) -> RawDataset:
    """CIFAR from the first of: the npz archive in the data folder, torchvision's folder there or
    in the cache folder (an earlier download), a fresh download (about 170 MB)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    npz_path = root / CIFAR_NPZ_FILES[name]
    folder_name = CIFAR_FOLDERS[name]
    if npz_path.is_file():
        return _read_cifar_npz(name, root, npz_path)
    for folder in (root, cache_path()):
        if (folder / folder_name).is_dir():
            return _read_cifar_torchvision(name, root, folder)

    download_error, target = None, None
    if download:
        target = download_folder(root)
        cls = CIFAR10 if name == "cifar10" else CIFAR100
        download_error = try_download(lambda: cls(str(target), train=True, download=True))
        if (target / folder_name).is_dir():
            return _read_cifar_torchvision(name, root, target)

    missing = [CIFAR_NPZ_FILES[name], folder_name + "/"]
    error = missing_error(name, root, missing, [root, cache_path()], download, download_error,
                          target)
    raise error from download_error


# --- loading, once per process --------------------------------------------------------------------
# Key: (name, resolved data folder, usps_source, or "" for the other data sets).
_LOADED: dict[tuple[str, str, str], RawDataset] = {}


def clear_cache() -> None:
    """Forget the data sets loaded in this process, so that the next load reads the disk again.
    Only this in-memory cache: the cache *folder* on disk is left alone."""
    _LOADED.clear()


def load_dataset(name: str, root: os.PathLike | None = None, download: bool | None = None,
                 usps_source: str = "auto") -> RawDataset:
    """Data set ``name`` ("mnist", "usps", "cifar10" or "cifar100") as uint8 tensors, read from
    disk once per process: later calls return the same object.

    ``root``: the data folder (default: see :func:`data_root`). ``download``: let torchvision fetch
    missing data; None: allowed unless ``$CLCOURSE_DOWNLOAD`` is 0. ``usps_source`` (USPS only):
    "auto" takes torchvision's LIBSVM files when both splits are there, else ``usps_esl.npz``;
    "libsvm" or "esl" force one. Train and test always come from the same source.

    Raises ValueError for an unknown ``name`` or ``usps_source``; DataMissingError when the files
    are not there and could not be downloaded; DataCorruptError when a file is there but cannot be
    read or holds the wrong content.
    """
    if name not in DATASET_NAMES:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASET_NAMES)}")
    if usps_source not in USPS_SOURCES:
        raise ValueError(f"unknown usps_source {usps_source!r}; "
                         f"valid values: {', '.join(USPS_SOURCES)}")
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


# --- reports --------------------------------------------------------------------------------------
def _files_present(name: str, root: Path) -> list[Path]:
    """The files of data set ``name`` that exist, in the data folder or the cache folder."""
    cache = cache_path()
    if name == "mnist":
        raw, cache_raw = root / "MNIST" / "raw", cache / "MNIST" / "raw"
        candidates = [raw / f for f in MNIST_FILES] + [raw / (f + ".gz") for f in MNIST_FILES]
        # cache files count only if downloaded there (no ".source" stamp; see _load_mnist)
        candidates += [cache_raw / f for f in MNIST_FILES
                       if not (cache_raw / (f + ".source")).exists()]
    elif name == "usps":
        candidates = [d / f for d in (root / "USPS", root, cache / "USPS")
                      for f in USPS_LIBSVM_FILES]
        candidates.append(root / USPS_ESL_FILE)
    else:
        candidates = [root / CIFAR_NPZ_FILES[name], root / CIFAR_FOLDERS[name],
                      cache / CIFAR_FOLDERS[name]]
    return [p for p in candidates if p.exists()]


def _describe(dataset: RawDataset) -> str:
    """A one-line note on what was loaded, for :func:`data_report`."""
    notes = {"torchvision-idx": "original MNIST IDX files",
             "torchvision-libsvm": "torchvision's USPS (LIBSVM files)",
             "esl-npz": ("USPS in the ESL/ZIP-code preprocessing "
                         "(not pixel-equal to torchvision's USPS)"),
             "npz": "npz archive",
             "torchvision-pickle": "torchvision's CIFAR files"}
    text = f"ok: {notes.get(dataset.source, dataset.source)}"
    full_sizes = {"cifar10": (50000, 10000), "cifar100": (50000, 10000)}
    if (dataset.name in full_sizes
            and (len(dataset.y_train), len(dataset.y_test)) != full_sizes[dataset.name]):
        text += (f" (a subset: the full data set has {full_sizes[dataset.name][0]}/"
                 f"{full_sizes[dataset.name][1]} images)")
    return text


def data_report(root: os.PathLike | None = None) -> list[dict]:
    """For every data set: are its files there, and do they load? Downloads nothing, never raises.

    One dict per name in DATASET_NAMES, with ``name``, ``present`` (some of its files exist),
    ``loadable``, ``source``, ``where`` (what was read, or the folder looked in), ``n_train`` and
    ``n_test`` (None if not loadable), and ``message``, which holds any problem found.
    """
    rows = []
    for name in DATASET_NAMES:
        row = {"name": name, "present": False, "loadable": False, "source": None, "where": "",
               "n_train": None, "n_test": None, "message": ""}
        try:
            folder = data_root(root).resolve()
            row["where"] = str(folder)
            row["present"] = bool(_files_present(name, folder))
            dataset = load_dataset(name, root=folder, download=False)
            row.update(loadable=True, source=dataset.source, where=str(dataset.location),
                       n_train=len(dataset.y_train), n_test=len(dataset.y_test),
                       message=_describe(dataset))
        except Exception as err:  # a report must always come back, whatever is on disk
            row["message"] = f"{type(err).__name__}: {err}"
        rows.append(row)
    return rows
