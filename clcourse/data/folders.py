"""Where the course's data files live, and what goes wrong with them.

This module knows folders and files, not any data set's format (that is
:mod:`clcourse.data.sources`). It holds the two folders (:func:`data_root`, :func:`cache_root`); the
two errors (:class:`DataMissingError`, :class:`DataCorruptError`) and the builders of their
messages, which tell a student how to fix things; and the helpers that download with torchvision
(with a timeout) and copy or decompress files into the cache folder.

The *data folder* is the ``root`` argument if given, else ``$CLCOURSE_DATA``, else a per-user
default (``$XDG_DATA_HOME/clcourse`` or ``~/.local/share/clcourse``); what each data set needs in it
is listed in :mod:`clcourse.data.sources`. The data folder is only ever *read*: files that must be
transformed before torchvision can read them (MNIST's ``.gz`` files) are decompressed into the
*cache folder* (``$CLCOURSE_CACHE``, else ``$XDG_CACHE_HOME/clcourse`` or ``~/.cache/clcourse``).
If something is missing and downloads are allowed (``CLCOURSE_DOWNLOAD`` not set to 0), torchvision
downloads it into the data folder when that folder is writable, otherwise into the cache folder.
"""
from __future__ import annotations

import gzip
import os
import shutil
import socket
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DataCorruptError", "DataMissingError", "cache_root", "data_root"]

DOWNLOAD_TIMEOUT_S = 15  # an offline machine should fail in seconds, not hang for minutes

# How to provide each data set by hand, for the error messages.
_HOW_TO_PROVIDE = {
    "mnist": ("put the four MNIST IDX files (train-images-idx3-ubyte, train-labels-idx1-ubyte, "
              "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte; the original .gz files are fine) "
              "in {root}/MNIST/raw/"),
    "usps": ("put torchvision's LIBSVM files usps.bz2 AND usps.t.bz2 in {root}/USPS/, or the "
             "ESL/ZIP-code version usps_esl.npz (keys x_train (N,16,16) float in [0,1], "
             "y_train (N,) int 0-9, x_test, y_test) in {root}/"),
    "cifar10": ("put cifar10.npz in {root}/ (the layout of the well-known mnist.npz: keys "
                "x_train (N,32,32,3) uint8, y_train (N,) int labels 0-9, x_test, y_test), "
                "or torchvision's extracted folder cifar-10-batches-py/ in {root}/"),
    "cifar100": ("put cifar100.npz in {root}/ (the layout of the well-known mnist.npz: keys "
                 "x_train (N,32,32,3) uint8, y_train (N,) int labels 0-99, x_test, y_test, and "
                 "optionally y_train_coarse, y_test_coarse with labels 0-19), or torchvision's "
                 "extracted folder cifar-100-python/ in {root}/"),
}


# --- folders --------------------------------------------------------------------------------------
def data_root(root: os.PathLike | None = None) -> Path:
    """The data folder: ``root`` if given, else ``$CLCOURSE_DATA``, else ``$XDG_DATA_HOME/clcourse``
    or ``~/.local/share/clcourse``. Not created: it is only read (except by downloads)."""
    if root is not None:
        return Path(root).expanduser()
    from_env = os.environ.get("CLCOURSE_DATA")
    if from_env:
        return Path(from_env).expanduser()
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".local" / "share"
    return base / "clcourse"


def cache_path() -> Path:
    """The cache folder's path, without creating it (for code that only looks)."""
    from_env = os.environ.get("CLCOURSE_CACHE")
    if from_env:
        return Path(from_env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "clcourse"


def cache_root() -> Path:
    """The cache folder, created if needed: ``$CLCOURSE_CACHE``, else ``$XDG_CACHE_HOME/clcourse``
    or ``~/.cache/clcourse``.

    Decompressed MNIST files (and downloads, when the data folder is read-only) go here. Deleting it
    is always safe: it is rebuilt on demand.
    """
    path = cache_path()
    path.mkdir(parents=True, exist_ok=True)
    return path


# --- errors ---------------------------------------------------------------------------------------
class DataMissingError(FileNotFoundError):
    """A data set's files are not where clcourse looks for them (and could not be downloaded)."""


class DataCorruptError(ValueError):
    """A data file is present but cannot be read, or its content is not what it should be."""


def missing_error(name: str, root: Path, missing: Sequence[str], looked_in: Sequence[Path],
                  download: bool, download_error: BaseException | None = None,
                  download_target: Path | None = None,
                  can_download: bool = True) -> DataMissingError:
    """The one message a student needs when a data set cannot be found: where clcourse looked,
    what is missing, and every way to fix it."""
    lines = [
        f"Cannot load {name!r}: files missing from the data folder {root}",
        f"  looked in: {', '.join(str(p) for p in looked_in)}",
        f"  missing:   {', '.join(missing)}",
        "To fix this, do one of:",
        "  - " + _HOW_TO_PROVIDE[name].format(root=root) + ";",
        "  - if the files are in another folder, set the environment variable "
        "CLCOURSE_DATA=/that/folder or pass root='/that/folder';",
    ]
    if can_download:
        lines.append("  - go online and allow downloads (download=True, and CLCOURSE_DOWNLOAD not "
                     "set to 0) so that torchvision downloads the data.")
    if download_error is not None:
        lines.append(f"A download into {download_target} was tried and failed: {download_error!r}")
    elif not can_download:
        lines.append("(This version of the data cannot be downloaded automatically.)")
    elif not download:
        lines.append("(Downloads are off here: download=False or CLCOURSE_DOWNLOAD=0.)")
    return DataMissingError("\n".join(lines))


def corrupt_error(name: str, files: Sequence[Path], root: Path, problem: str,
                  hint: str = "") -> DataCorruptError:
    """The message for a file that is present but unreadable or wrong: which file, what is wrong
    with it, and what an intact one looks like."""
    lines = [
        f"Cannot load {name!r} from the data folder {root}: cannot use "
        f"{', '.join(str(f) for f in files)}",
        f"  problem: {problem}",
        "To fix this, replace the file(s) with an intact copy (or delete them and load with "
        "download=True while online). Expected: " + _HOW_TO_PROVIDE[name].format(root=root) + ".",
    ]
    if hint:
        lines.append(hint)
    return DataCorruptError("\n".join(lines))


# --- downloads and copies into the cache folder ---------------------------------------------------
def downloads_allowed_by_env() -> bool:
    """Downloads are on unless ``CLCOURSE_DOWNLOAD`` is 0 (or false/no/off)."""
    value = os.environ.get("CLCOURSE_DOWNLOAD", "").strip().lower()
    return value not in ("0", "false", "no", "off")


def _is_writable_folder(folder: Path) -> bool:
    """May we write into ``folder`` (created if it does not exist yet)?

    ``os.access`` alone is not enough: the superuser (common in containers) may write anywhere. A
    folder whose permission bits say read-only is treated as read-only even then, because that is
    what its owner meant.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        mode = folder.stat().st_mode
    except OSError:
        return False
    has_write_bit = bool(stat.S_IMODE(mode) & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    return has_write_bit and os.access(folder, os.W_OK)


def download_folder(root: Path) -> Path:
    """Where downloads go: the data folder if writable, else the cache folder."""
    return root if _is_writable_folder(root) else cache_root()


@contextmanager
def _socket_timeout(seconds: float) -> Iterator[None]:
    """Give network reads a timeout for a while: torchvision's downloads have none."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)


def try_download(fetch: Callable[[], object]) -> BaseException | None:
    """Run a torchvision download and return its exception instead of raising it: the caller then
    looks at the disk again, since what counts is whether the files are there now, not which of
    torchvision's many exceptions was raised."""
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            fetch()
    except Exception as err:  # network, disk, checksum...: all mean "no data"
        return err
    return None


def _write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def copy_into_cache(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target``, decompressing it if it is a ``.gz`` file.

    Skipped if ``target`` was already made from this very file: a ``.source`` stamp next to it
    records the source's path, size and modification time. The copy goes to a temporary file that
    is then renamed, so an interrupted run never leaves a half-written file that looks complete.
    """
    info = source.stat()
    fingerprint = f"{source.resolve()}\n{info.st_size}\n{info.st_mtime_ns}\n"
    stamp = target.with_name(target.name + ".source")
    if target.is_file() and stamp.is_file() and stamp.read_text() == fingerprint:
        return  # up to date

    target.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if source.suffix == ".gz" else open
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=target.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out, opener(source, "rb") as src:
            shutil.copyfileobj(src, out, 1 << 20)
        os.replace(tmp_name, target)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
    _write_text_atomic(stamp, fingerprint)
