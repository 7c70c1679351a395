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

The package: :mod:`.resources` (the table, checksums), :mod:`.transport` (HTTP),
:mod:`.archives` (safe unpacking); this module: :func:`download`.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path
from typing import Callable, Optional

from ...errors import SpikegradError
from .archives import extract_archive, gunzip
from .resources import CHUNK, GENERATED, RESOURCES, Resource, _split_checksum, _urls, file_checksum, parse_manifest  # noqa: F401
from .transport import TIMEOUT_S, _read_url, _remove, _Unreachable, _write_atomic, fetch_file  # noqa: F401

# CHUNK and TIMEOUT_S stay importable from here (download.CHUNK, download.TIMEOUT_S): the noqa above
__all__ = ["MIRROR_ENV", "GENERATED", "RESOURCES", "Resource", "download", "extract_archive",
           "file_checksum", "gunzip", "fetch_file", "parse_manifest"]


MIRROR_ENV = "SPIKEGRAD_MIRROR"

def _say_default(message: str) -> None:
    print(message)


def download(name: str, data_dir: str | os.PathLike = "", *, mirror: Optional[str] = None,
             progress: bool = True, say: Callable[[str], None] = _say_default) -> Path:
    """Download, verify and unpack data set ``name`` into ``dataset_dir(name, data_dir)``.

    ``mirror`` (default ``$SPIKEGRAD_MIRROR``) replaces every file's base URL.  Returns
    the folder.  Files already present and matching their checksum are not fetched again.
    """
    from .. import available_datasets, dataset_dir

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
