"""HTTP transport: fetching one URL to a verified file through a temporary name in the
target folder (progress bar, timeouts, one-line errors, nothing left behind)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from http.client import HTTPException
from pathlib import Path
from typing import Optional

from ...errors import SpikegradError
from .resources import CHUNK, _split_checksum

TIMEOUT_S = 60.0

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
