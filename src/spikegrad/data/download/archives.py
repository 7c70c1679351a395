"""Archive safety: gunzip and tar/zip extraction that checks every member (regular files
and folders only, no links, no absolute paths or ``..``, O_NOFOLLOW) and moves the result
into place only when the whole archive unpacked cleanly."""

from __future__ import annotations

import contextlib
import gzip
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ...errors import SpikegradError
from .resources import CHUNK
from .transport import _remove



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
