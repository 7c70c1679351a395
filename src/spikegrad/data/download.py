"""Downloads of the data sets' official files: URL, published checksum, unpacking.

:data:`RESOURCES` lists, per data set, the remote files the way torchvision and tonic do
it: official URL(s) and the checksum their publisher (or a well-known peer library)
publishes, each with a comment naming where that checksum is published.
:func:`download` puts them into :func:`spikegrad.data.dataset_dir` in the layout the
loaders read.

Rules (tested in ``tests/data/test_download.py``):

* every file is checked against its checksum (md5 or sha256) before it is used;
* a download goes to a temporary name *in the target folder*, is verified, and only then
  renamed atomically to its final name; on any failure (HTTP error, unreachable host,
  interrupted transfer, checksum mismatch) the temporary file is deleted, so nothing is
  left behind;
* archives are unpacked into a temporary folder inside the target folder, every member
  checked first — regular files and folders only (no symbolic or hard links, no device
  files or FIFOs), no absolute paths, no ``..``, each final path resolved against the real
  folder, files created with O_NOFOLLOW, on every supported Python — and only moved into
  place once the whole archive unpacked cleanly; on failure the temporary folder *and the
  archive* are removed;
* an already-present file that matches its checksum is not downloaded again;
* errors are one-line :class:`~spikegrad.errors.SpikegradError` messages naming the URL
  or file (and, for a mismatch, the expected and the computed checksum).

``$SPIKEGRAD_MIRROR`` (or ``mirror=``) replaces the base URL of every file: the file
``NAME`` is then fetched from ``MIRROR/NAME`` — for a local mirror, or for tests.  Checksums
never come from a mirror: they are pinned here, or (SSC, RawHD: no public source pins them)
read from the publisher's ``md5sums.txt`` on the canonical host only.

HTTP client: the standard library's :mod:`urllib` with a :mod:`rich` progress bar (rich
is already a dependency).  ``pooch`` was considered; it would add requests, platformdirs
and (for a progress bar) tqdm for what is a short loop here, its errors are multi-line,
and we need exact control over the temporary file's place and removal, over trying the
next mirror, over one-line messages and over the publisher's ``md5sums.txt`` manifest as
a checksum source — so the few lines are kept in-house and tested against a real local
HTTP server.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import Callable, Iterable, Optional

from ..errors import SpikegradError

__all__ = ["MIRROR_ENV", "GENERATED", "RESOURCES", "Resource", "download", "extract_archive",
           "file_checksum", "gunzip", "fetch_file", "parse_manifest"]

MIRROR_ENV = "SPIKEGRAD_MIRROR"
TIMEOUT_S = 60.0
CHUNK = 1 << 20

# Data sets made on the fly from their seed: nothing to download.
GENERATED: dict[str, str] = {
    "randman": "generated on the fly from data.seed (SCIENCE.md §4, Randman)",
    "clicks": "generated on the fly from data.seed (Poisson clicks)",
}


@dataclass(frozen=True)
class Resource:
    """One remote file of a data set.

    ``checksum`` is ``"md5:<hex>"`` or ``"sha256:<hex>"``; ``None`` means: take the md5
    from the publisher's checksum list ``manifest`` (a ``md5sum``-style file next to the
    data file, e.g. ``md5sums.txt``), which is fetched once and kept in the folder.
    ``unpack``: ``"none"`` (keep as is), ``"gunzip"`` (``X.gz`` → ``X``) or ``"extract"``
    (tar/zip archive into the folder; ``outputs`` names entries that must exist after).
    """

    filename: str
    urls: tuple[str, ...]
    checksum: Optional[str] = None
    unpack: str = "none"
    outputs: tuple[str, ...] = ()
    manifest: Optional[str] = None

    def targets(self) -> tuple[str, ...]:
        """Entries of the folder that exist once this resource is in place."""
        if self.unpack == "gunzip":
            return (self.filename[:-3] if self.filename.endswith(".gz") else self.filename + ".out",)
        if self.unpack == "extract":
            return self.outputs
        return (self.filename,)


def _urls(bases: Iterable[str], filename: str) -> tuple[str, ...]:
    return tuple(f"{base.rstrip('/')}/{filename}" for base in bases)


# MNIST: torchvision's mirror list (the original yann.lecun.com page has refused
# unauthenticated downloads at times, so the S3 mirror comes first).
_MNIST = ("https://ossci-datasets.s3.amazonaws.com/mnist", "http://yann.lecun.com/exdb/mnist")
_FASHION = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com",)
_ZENKE = ("https://zenkelab.org/datasets",)  # formerly https://compneuro.net/datasets

RESOURCES: dict[str, tuple[Resource, ...]] = {
    # md5s: torchvision.datasets.MNIST.resources (github.com/pytorch/vision,
    # torchvision/datasets/mnist.py).  Kept gzipped: the loader reads .gz.
    "mnist": (
        Resource("train-images-idx3-ubyte.gz", _urls(_MNIST, "train-images-idx3-ubyte.gz"),
                 "md5:f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        Resource("train-labels-idx1-ubyte.gz", _urls(_MNIST, "train-labels-idx1-ubyte.gz"),
                 "md5:d53e105ee54ea40749a09fcbcd1e9432"),
        Resource("t10k-images-idx3-ubyte.gz", _urls(_MNIST, "t10k-images-idx3-ubyte.gz"),
                 "md5:9fb629c4189551a2d022fa330f9573f3"),
        Resource("t10k-labels-idx1-ubyte.gz", _urls(_MNIST, "t10k-labels-idx1-ubyte.gz"),
                 "md5:ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    # md5s: torchvision.datasets.FashionMNIST.resources (same file as above); the
    # zalandoresearch/fashion-mnist README lists the same values.
    "fashion-mnist": (
        Resource("train-images-idx3-ubyte.gz", _urls(_FASHION, "train-images-idx3-ubyte.gz"),
                 "md5:8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        Resource("train-labels-idx1-ubyte.gz", _urls(_FASHION, "train-labels-idx1-ubyte.gz"),
                 "md5:25c81989df183df01b3e8a0aad5dffbe"),
        Resource("t10k-images-idx3-ubyte.gz", _urls(_FASHION, "t10k-images-idx3-ubyte.gz"),
                 "md5:bef4ecab320f06d8554ea6380940ec79"),
        Resource("t10k-labels-idx1-ubyte.gz", _urls(_FASHION, "t10k-labels-idx1-ubyte.gz"),
                 "md5:bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    # md5s of the .h5.gz files: the publisher's https://zenkelab.org/datasets/md5sums.txt
    # (Cramer et al. 2020); the same values are pinned in norse
    # (github.com/norse/norse, norse/dataset/spiking_heidelberg.py: train_checksum,
    # test_checksum).  (tonic's SHD class pins the .h5.zip variants instead.)
    "shd": (
        Resource("shd_train.h5.gz", _urls(_ZENKE, "shd_train.h5.gz"),
                 "md5:d47c9825dee33347913e8ce0f2be08b0", unpack="gunzip"),
        Resource("shd_test.h5.gz", _urls(_ZENKE, "shd_test.h5.gz"),
                 "md5:3062a80ec0c5719404d5b02e166543b1", unpack="gunzip"),
    ),
    # md5s: the publisher's md5sums.txt next to the files, read at download time — the way
    # the publisher's own example code verifies them (no peer library pins the .h5.gz
    # md5s of SSC; tonic pins only the .h5.zip variants).
    "ssc": (
        Resource("ssc_train.h5.gz", _urls(_ZENKE, "ssc_train.h5.gz"), None, unpack="gunzip",
                 manifest="md5sums.txt"),
        Resource("ssc_valid.h5.gz", _urls(_ZENKE, "ssc_valid.h5.gz"), None, unpack="gunzip",
                 manifest="md5sums.txt"),
        Resource("ssc_test.h5.gz", _urls(_ZENKE, "ssc_test.h5.gz"), None, unpack="gunzip",
                 manifest="md5sums.txt"),
    ),
    # Heidelberg Digits audio (linked from the SHD README): md5 from the publisher's
    # md5sums.txt at download time (no peer library pins it).  The archive holds
    # audio/*.flac, train_filenames.txt, test_filenames.txt at its top level.
    "rawhd": (
        Resource("hd_audio.tar.gz", _urls(_ZENKE, "hd_audio.tar.gz"), None, unpack="extract",
                 outputs=("audio", "train_filenames.txt", "test_filenames.txt"),
                 manifest="md5sums.txt"),
    ),
    # sha256: torchaudio.datasets.speechcommands._CHECKSUMS (github.com/pytorch/audio,
    # src/torchaudio/datasets/speechcommands.py).  One folder per word plus
    # validation_list.txt / testing_list.txt at the top level.
    "rawsc": (
        Resource("speech_commands_v0.02.tar.gz",
                 ("http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
                  "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz"),
                 "sha256:af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
                 unpack="extract", outputs=("validation_list.txt", "testing_list.txt", "yes")),
    ),
}


# -- checksums -----------------------------------------------------------------------------

def _split_checksum(checksum: str) -> tuple[str, str]:
    algo, sep, hexdigest = checksum.partition(":")
    if not sep or algo not in ("md5", "sha256") or not hexdigest:
        raise SpikegradError(f"checksum must be md5:<hex> or sha256:<hex>, got {checksum!r}")
    return algo, hexdigest.lower()


def file_checksum(path: Path, algo: str) -> str:
    """Hex digest of a file (read in 1 MiB chunks)."""
    digest = hashlib.new(algo)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def parse_manifest(text: str) -> dict[str, str]:
    """``md5sum`` output (``<md5>  <file>`` per line) → {file: md5}."""
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 32 and all(c in "0123456789abcdefABCDEF" for c in parts[0]):
            out[parts[-1].lstrip("*").removeprefix("./")] = parts[0].lower()
    return out


# -- HTTP ----------------------------------------------------------------------------------

class _Unreachable(Exception):
    """HTTP error or connection failure: the next mirror may still work."""


def _open(url: str, timeout: float):
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SpikegradError(f"only http(s) URLs can be downloaded, got {url!r}")
    handlers = []
    if parts.hostname in ("127.0.0.1", "localhost", "::1"):
        handlers.append(urllib.request.ProxyHandler({}))  # never send loopback through a proxy
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers={"User-Agent": "spikegrad-data-download"})
    try:
        return opener.open(request, timeout=timeout)
    except urllib.error.HTTPError as err:
        err.close()
        raise _Unreachable(f"{url}: HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise _Unreachable(f"cannot reach {url}: {err.reason}") from None
    except (OSError, HTTPException) as err:  # timeouts, resets, bad status lines
        raise _Unreachable(f"cannot reach {url}: {err}") from None


def _progress(enabled: bool, label: str, total: Optional[int]):
    """A rich progress bar on stderr (a no-op context when disabled)."""
    if not enabled:
        return contextlib.nullcontext(None)
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
                               TransferSpeedColumn)

    progress = Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                        TransferSpeedColumn(), TimeRemainingColumn(), console=Console(stderr=True),
                        transient=False)

    class _Bar:
        def __enter__(self):
            progress.__enter__()
            self.task = progress.add_task(label, total=total)
            return self

        def advance(self, n: int) -> None:
            progress.update(self.task, advance=n)

        def __exit__(self, *exc):
            return progress.__exit__(*exc)

    return _Bar()


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _read_url(url: str, timeout: float = TIMEOUT_S, limit: int = 1 << 20) -> bytes:
    """A small file (e.g. a checksum list) into memory."""
    with _open(url, timeout) as response:
        try:
            data = response.read(limit + 1)
        except (OSError, HTTPException) as err:
            raise _Unreachable(f"download of {url} failed: {err}") from None
    if len(data) > limit:
        raise SpikegradError(f"{url} is larger than {limit} bytes; not a checksum list")
    return data


def fetch_file(url: str, path: Path, checksum: str, *, progress: bool = False,
               timeout: float = TIMEOUT_S) -> None:
    """Download ``url`` to ``path``, verified against ``checksum``, atomically.

    The bytes go to a temporary file next to ``path``; only a verified file is renamed to
    ``path``.  On any failure the temporary file is removed and ``path`` is untouched.
    Raises ``_Unreachable`` for HTTP/connection errors (callers try the next mirror) and
    SpikegradError for a checksum mismatch or a truncated transfer.
    """
    algo, expected = _split_checksum(checksum)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.new(algo)
        received = 0
        with os.fdopen(fd, "wb") as out, _open(url, timeout) as response:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with _progress(progress, path.name, total) as bar:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (OSError, HTTPException) as err:
                        raise _Unreachable(f"download of {url} failed after {received} bytes: {err}") from None
                    if not block:
                        break
                    out.write(block)
                    digest.update(block)
                    received += len(block)
                    if bar is not None:
                        bar.advance(len(block))
            if total is not None and received != total:
                raise _Unreachable(f"download of {url} ended after {received} of {total} bytes")
        got = digest.hexdigest()
        if got != expected:
            raise SpikegradError(f"checksum mismatch for {url}: expected {algo} {expected}, got {got}; "
                                 f"the download was deleted")
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp)
        raise


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        _remove(Path(tmp_name))
        raise


# -- unpacking -----------------------------------------------------------------------------

def gunzip(src: Path, dst: Path) -> None:
    """``src`` (gzip) → ``dst``, via a temporary file next to ``dst``; nothing left on failure."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".part", dir=dst.parent)
    try:
        with os.fdopen(fd, "wb") as out, gzip.open(src, "rb") as source:
            shutil.copyfileobj(source, out, CHUNK)
        os.replace(tmp_name, dst)
    except (OSError, EOFError, zlib.error) as err:
        _remove(Path(tmp_name))
        raise SpikegradError(f"cannot gunzip {src}: {err}") from None
    except BaseException:
        _remove(Path(tmp_name))
        raise


def _check_name(name: str, archive: Path) -> str:
    """A member name that stays inside the target folder, normalised; else SpikegradError."""
    bad = (not name or "\x00" in name or "\\" in name or name.startswith("/")
           or (len(name) > 1 and name[1] == ":"))
    norm = posixpath.normpath(name) if not bad else ""
    if bad or norm == ".." or norm.startswith("../") or ".." in PurePosixPath(name).parts:
        raise SpikegradError(f"unsafe archive {archive}: member {name!r} would land outside the target folder")
    return norm


def _unsafe(archive: Path, what: str) -> SpikegradError:
    return SpikegradError(f"unsafe archive {archive}: {what}")


def _member_path(root: Path, name: str, archive: Path) -> Path:
    """Where member ``name`` lands: inside the real folder ``root`` (resolved, links and all)."""
    path = root / _check_name(name, archive)
    real = Path(os.path.realpath(path))
    if real != root and root not in real.parents:
        raise _unsafe(archive, f"member {name!r} would land outside the target folder")
    return real


def _write_member(root: Path, name: str, source, archive: Path) -> None:
    """A regular file from the stream ``source``: parents made inside ``root``, the file
    created anew with O_NOFOLLOW (a link in its place is never written through)."""
    path = _member_path(root, name, archive)
    path.parent.mkdir(parents=True, exist_ok=True)
    _member_path(root, name, archive)                 # the parents made are real folders inside
    if path.is_symlink() or path.is_dir():
        raise _unsafe(archive, f"member {name!r} would replace a link or a folder")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)                               # a repeated member replaces the earlier one
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    with os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)


def _make_folder(root: Path, name: str, archive: Path) -> None:
    path = _member_path(root, name, archive)
    if path.exists() and not path.is_dir():
        raise _unsafe(archive, f"folder {name!r} would replace a file")
    path.mkdir(parents=True, exist_ok=True)
    _member_path(root, name, archive)


def _check_tar_member(member: tarfile.TarInfo, archive: Path) -> None:
    _check_name(member.name, archive)
    if member.isreg() or member.isdir():
        return
    if member.issym() or member.islnk():
        kind = "symbolic" if member.issym() else "hard"
        raise _unsafe(archive, f"member {member.name!r} is a {kind} link (to {member.linkname!r}); "
                               f"data sets need no links, so none is unpacked")
    kind = ("device" if member.isdev() and not member.isfifo() else "FIFO" if member.isfifo() else "special file")
    raise _unsafe(archive, f"member {member.name!r} is a {kind}")


def _extract_tar(archive: Path, staging: Path) -> None:
    """Regular files and folders only, written by us (not by tarfile's extract, whose "data"
    filter does not exist before Python 3.11.4 and was bypassed by symlink chains longer
    than PATH_MAX on 3.11.7): no member can create a link to be followed later."""
    with tarfile.open(archive, "r:*") as tar:
        for member in tar:  # one pass: each member checked before it is written
            _check_tar_member(member, archive)
            if member.isdir():
                _make_folder(staging, member.name, archive)
                continue
            source = tar.extractfile(member)
            if source is None:  # pragma: no cover - a regular member always has data
                raise _unsafe(archive, f"member {member.name!r} has no data")
            with source:
                _write_member(staging, member.name, source, archive)


def _extract_zip(archive: Path, staging: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            _check_name(info.filename, archive)
            mode = info.external_attr >> 16
            kind = stat.S_IFMT(mode)
            if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
                what = "a symlink" if stat.S_ISLNK(mode) else "a special file"
                raise _unsafe(archive, f"member {info.filename!r} is {what}")
            if info.is_dir():
                _make_folder(staging, info.filename, archive)
                continue
            with zf.open(info) as source:
                _write_member(staging, info.filename, source, archive)


def _is_tar(archive: Path) -> bool:
    name = archive.name.lower()
    if name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")):
        return True
    return not name.endswith(".zip") and tarfile.is_tarfile(archive)


def _merge(src: Path, dst: Path) -> None:
    """Move the tree ``src`` into ``dst`` (folders merged, files replaced)."""
    for entry in sorted(src.iterdir()):
        target = dst / entry.name
        if entry.is_dir() and not entry.is_symlink():
            if target.is_dir() and not target.is_symlink():
                _merge(entry, target)
                continue
            if target.exists() or target.is_symlink():
                raise SpikegradError(f"cannot unpack: {target} exists and is not a folder")
        elif target.is_dir() and not target.is_symlink():
            raise SpikegradError(f"cannot unpack: {target} is a folder, the archive has a file there")
        os.replace(entry, target)


def extract_archive(archive: Path, dest: Path) -> None:
    """Unpack a tar(.gz/.bz2/.xz) or zip archive into ``dest``, safely.

    Members are written to a temporary folder inside ``dest``, each checked first: regular
    files and folders only (no symbolic or hard links at all, no devices/FIFOs), no absolute
    paths, no ``..``, and every member's final path resolved against the real temporary
    folder; files are created with O_NOFOLLOW.  The same on every supported Python (tarfile's
    extraction filters are not relied on).  Only a completely unpacked archive is moved into
    ``dest`` (never through a link there).  On failure the temporary folder is removed and
    SpikegradError raised.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    staging = Path(os.path.realpath(tempfile.mkdtemp(prefix=".extract-", dir=dest)))
    try:
        try:
            if _is_tar(archive):
                _extract_tar(archive, staging)
            else:
                _extract_zip(archive, staging)
        except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error) as err:
            raise SpikegradError(f"cannot unpack {archive}: {err}") from None
        _merge(staging, dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# -- the command ---------------------------------------------------------------------------

def _say_default(message: str) -> None:
    print(message)


def download(name: str, data_dir: str | os.PathLike = "", *, mirror: Optional[str] = None,
             progress: bool = True, say: Callable[[str], None] = _say_default) -> Path:
    """Download, verify and unpack data set ``name`` into ``dataset_dir(name, data_dir)``.

    ``mirror`` (default ``$SPIKEGRAD_MIRROR``) replaces every file's base URL.  Returns
    the folder.  Files already present and matching their checksum are not fetched again.
    """
    from . import available_datasets, dataset_dir

    if name in GENERATED:
        say(f"{name}: nothing to download, the data set is {GENERATED[name]}")
        return dataset_dir(name, str(data_dir) if data_dir else "")
    if name not in RESOURCES:
        known = sorted(set(available_datasets()) | set(RESOURCES))
        raise SpikegradError(f"unknown dataset {name!r}; available: {', '.join(known)}")
    if mirror is None:
        mirror = os.environ.get(MIRROR_ENV) or None
    folder = dataset_dir(name, str(data_dir) if data_dir else "")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise SpikegradError(f"cannot create data folder {folder}: {err.strerror or err}") from None
    manifests: dict[str, dict[str, str]] = {}
    for resource in RESOURCES[name]:
        _fetch_resource(name, resource, folder, mirror, progress, say, manifests)
    say(f"{name}: ready in {folder}")
    return folder


def _resource_urls(resource: Resource, mirror: Optional[str]) -> tuple[str, ...]:
    return _urls([mirror], resource.filename) if mirror else resource.urls


def _fetch_manifest(resource: Resource, local: Path) -> str:
    """The checksum list from the resource's canonical host (never from a mirror: a hostile
    mirror would then control both the file and its checksum), kept in the folder."""
    name = resource.manifest
    errors = []
    for url in _urls([posixpath.dirname(u) for u in resource.urls], name):
        try:
            data = _read_url(url)
            break
        except _Unreachable as err:
            errors.append(str(err))
    else:
        raise SpikegradError(f"cannot fetch the checksum list {name} from the publisher: {'; '.join(errors)}")
    text = data.decode("utf-8", errors="replace")
    if resource.filename not in parse_manifest(text):
        raise SpikegradError(f"checksum list {url} has no entry for {resource.filename} (not kept)")
    _write_atomic(local, data)
    return text


def _expected_checksum(resource: Resource, folder: Path, mirror: Optional[str],
                       manifests: dict[str, dict[str, str]]) -> str:
    """The pinned checksum, else the publisher's checksum list's entry: the list kept in the
    folder if it has the entry (a truncated or foreign list is fetched again), else fetched
    from the canonical host."""
    if resource.checksum is not None:
        return resource.checksum
    if resource.manifest is None:
        raise SpikegradError(f"{resource.filename}: no checksum and no checksum list to take it from")
    name = resource.manifest
    local = folder / name
    if resource.filename not in manifests.get(name, {}):
        text = local.read_text(encoding="utf-8", errors="replace") if local.is_file() else ""
        if resource.filename not in parse_manifest(text):
            text = _fetch_manifest(resource, local)
        manifests[name] = parse_manifest(text)
    return f"md5:{manifests[name][resource.filename]}"


def _fetch_resource(dataset: str, resource: Resource, folder: Path, mirror: Optional[str], progress: bool,
                    say: Callable[[str], None], manifests: dict[str, dict[str, str]]) -> None:
    path = folder / resource.filename
    unpacked = resource.unpack != "none" and all((folder / t).exists() for t in resource.targets())
    if path.is_file():
        checksum = _expected_checksum(resource, folder, mirror, manifests)
        algo, expected = _split_checksum(checksum)
        if file_checksum(path, algo) == expected:
            if resource.unpack == "none" or unpacked:
                say(f"{dataset}: {resource.filename} already present ({algo} verified)")
                return
            say(f"{dataset}: {resource.filename} present ({algo} verified); unpacking")
            _unpack(resource, path, folder)
            return
        say(f"{dataset}: {path} does not match its {algo} checksum; downloading it again")
    elif unpacked:
        say(f"{dataset}: {', '.join(resource.targets())} already unpacked "
            f"({resource.filename} not kept, not re-verified)")
        return
    checksum = _expected_checksum(resource, folder, mirror, manifests)
    errors = []
    for url in _resource_urls(resource, mirror):
        say(f"{dataset}: downloading {url}")
        try:
            fetch_file(url, path, checksum, progress=progress)
            break
        except _Unreachable as err:
            errors.append(str(err))
        except SpikegradError as err:
            if resource.checksum is None and resource.manifest:  # say where the expected value came from
                raise SpikegradError(f"{err} (expected value from {folder / resource.manifest}; delete that "
                                     f"file to fetch the checksum list again)") from None
            raise
    else:
        raise SpikegradError(f"could not download {resource.filename}: {'; '.join(errors)}")
    say(f"{dataset}: {resource.filename} {checksum.partition(':')[0]} verified")
    _unpack(resource, path, folder)


def _unpack(resource: Resource, path: Path, folder: Path) -> None:
    if resource.unpack == "none":
        return
    try:
        if resource.unpack == "gunzip":
            gunzip(path, folder / resource.targets()[0])
        elif resource.unpack == "extract":
            extract_archive(path, folder)
            missing = [t for t in resource.outputs if not (folder / t).exists()]
            if missing:
                raise SpikegradError(f"{path} did not contain {', '.join(missing)}")
        else:
            raise SpikegradError(f"{resource.filename}: unknown unpack mode {resource.unpack!r}")
    except SpikegradError as err:
        _remove(path)  # an archive that cannot be unpacked is of no use; leave nothing behind
        raise SpikegradError(f"{err} (removed {path.name})") from None
