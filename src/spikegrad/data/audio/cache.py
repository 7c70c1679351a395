"""The feature cache (one .npz per data set and spec, keyed by the files and settings) and
the extraction, in a process pool for many files."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import warnings
from collections import Counter
from pathlib import Path

import numpy as np

from .features import file_features
from .mel import mel_filterbank
from .layouts import Layout
from .spec import NATIVE_RATE, AudioSpec

log = logging.getLogger(__name__)
CACHE_VERSION = 1
PARALLEL_FROM = 2000                               # files; fewer are computed in this process
CACHE_FOLDER = ".spikegrad-cache"


# -- features with cache ---------------------------------------------------------------------

FEATURE_FIELDS = ("sample_rate", "pre_emphasis", "frame_ms", "stride_ms", "n_fft", "n_mels",
                  "log_floor", "channels")


def cache_key(name: str, spec: AudioSpec, layout: Layout) -> str:
    """Hash of everything the features depend on: settings and each file's path/size/mtime."""
    h = hashlib.sha256()
    settings = {k: getattr(spec, k) for k in FEATURE_FIELDS}
    h.update(json.dumps({"version": CACHE_VERSION, "name": name, "frames": spec.n_frames(name),
                         "native_rate": NATIVE_RATE[name], **settings}, sort_keys=True).encode())
    for rel in layout.files:
        st = (layout.root / rel).stat()
        h.update(f"\n{rel}\t{st.st_size}\t{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cache_path(name: str, root: Path, key: str) -> Path:
    return root / CACHE_FOLDER / f"{name}-{key[:20]}.npz"


def _load_cache(path: Path, key: str, files: list[str]):
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or list(z["files"]) != files:
                return None
            return z["features"], Counter(json.loads(str(z["counts"])))
    except Exception:  # a truncated or foreign file is recomputed, never trusted
        log.info("audio: ignoring unreadable cache %s", path)
        return None


def _save_cache(path: Path, key: str, files: list[str], features: np.ndarray, counts: Counter) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, key=np.array(key), files=np.array(files), features=features,
                     counts=np.array(json.dumps(dict(counts))))
        os.replace(tmp, path)
    except OSError as err:
        warnings.warn(f"audio: cannot write feature cache {path} ({err.strerror or err}); "
                      "features will be recomputed next time", stacklevel=3)


def _extract_chunk(name: str, root: str, files: list[str], spec: AudioSpec, n_frames: int):
    bank = mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels)
    counts: Counter = Counter()
    out = np.empty((len(files), n_frames, spec.n_mels), dtype=np.float32)
    for k, rel in enumerate(files):
        out[k] = file_features(Path(root) / rel, spec, n_frames, counts, NATIVE_RATE[name], bank)
    return out, counts


def _extract(name: str, layout: Layout, spec: AudioSpec, n_frames: int) -> tuple[np.ndarray, Counter]:
    """Features of every file, in worker processes when there are many files."""
    n = len(layout.files)
    workers = spec.workers or (min(8, os.cpu_count() or 1) if n >= PARALLEL_FROM else 1)
    workers = max(1, min(workers, n))
    if workers == 1:
        return _extract_chunk(name, str(layout.root), layout.files, spec, n_frames)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    log.info("%s: computing features of %d files in %d processes", name, n, workers)
    bounds = np.linspace(0, n, 4 * workers + 1).astype(int)
    chunks = [layout.files[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    out = np.empty((n, n_frames, spec.n_mels), dtype=np.float32)
    counts: Counter = Counter()
    # spawn, not fork: the parent may hold torch/OpenMP threads
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        start = 0
        for part, part_counts in pool.map(_extract_chunk, [name] * len(chunks), [str(layout.root)] * len(chunks),
                                          chunks, [spec] * len(chunks), [n_frames] * len(chunks)):
            out[start:start + len(part)] = part
            start += len(part)
            counts.update(part_counts)
    return out, counts


def compute_features(name: str, layout: Layout, spec: AudioSpec) -> tuple[np.ndarray, Counter, bool]:
    """Features [n_files, frames, n_mels] of a layout; returns (features, counts, from_cache)."""
    n_frames = spec.n_frames(name)
    key = path = None
    if spec.cache:
        key = cache_key(name, spec, layout)
        path = cache_path(name, layout.root, key)
        hit = _load_cache(path, key, layout.files)
        if hit is not None:
            report(name, hit[1], n_frames)
            return hit[0], hit[1], True
    out, counts = _extract(name, layout, spec, n_frames)
    counts["files"] = len(layout.files)
    if spec.cache:
        _save_cache(path, key, layout.files, out, counts)
    report(name, counts, n_frames)
    return out, counts, False


def report(name: str, counts: Counter, n_frames: int) -> None:
    """One info line with all counts; one warning line for repairs outside the routine path."""
    log.info("%s: %d files; %d resampled, %d padded to %d frames (last frame repeated), %d cropped",
             name, counts["files"], counts["resampled"], counts["padded"], n_frames, counts["cropped"])
    parts = []
    if counts["unexpected_rate"]:
        parts.append(f"{counts['unexpected_rate']} files resampled from a rate other than "
                     f"{NATIVE_RATE[name]} Hz")
    if counts["mixed_down"]:
        parts.append(f"{counts['mixed_down']} multi-channel files mixed down to mono")
    if counts["shorter_than_frame"]:
        parts.append(f"{counts['shorter_than_frame']} files shorter than one frame zero-padded")
    if parts:
        warnings.warn(f"{name}: repaired audio: {'; '.join(parts)} (see docs/DATA.md)", stacklevel=4)
