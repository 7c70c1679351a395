"""The log-mel pipeline: WAV/FLAC reading (checked, mixed down, resampled), the mel
filterbank, log-mel frames, fitting to a frame count."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from ..._optional import need
from ...errors import SpikegradError
from .mel import mel_filterbank
from .spec import MIN_RATE, AudioSpec


# -- feature pipeline --------------------------------------------------------------------

def log_mel(signal: np.ndarray, spec: AudioSpec, bank: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Log mel energies [n_frames, n_mels] of a mono signal at ``spec.sample_rate``.

    Returns (features, short): ``short`` is True when the signal was shorter than one
    frame and was zero-padded to one.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise SpikegradError("audio: log_mel needs a non-empty 1-D signal")
    if bank is None:
        bank = mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels)
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - spec.pre_emphasis * x[:-1]
    width, hop = spec.frame_samples, spec.stride_samples
    short = len(y) < width
    if short:
        y = np.concatenate([y, np.zeros(width - len(y))])
    n = 1 + (len(y) - width) // hop
    frames = np.lib.stride_tricks.sliding_window_view(y, width)[::hop][:n]
    power = np.abs(np.fft.rfft(frames * np.hamming(width), n=spec.n_fft, axis=1)) ** 2
    # einsum, not BLAS: a small matmul per file wakes OpenBLAS's thread pool, ~10× slower
    energy = np.einsum("fk,mk->fm", power, bank)
    return np.log(np.maximum(energy, spec.log_floor)), short


def fit_frames(features: np.ndarray, n: int) -> np.ndarray:
    """Keep the first ``n`` frames, or pad by repeating the last frame up to ``n``."""
    if len(features) >= n:
        return features[:n]
    return np.concatenate([features, np.repeat(features[-1:], n - len(features), axis=0)])


def _wav_header_rate(path: Path) -> int | None:
    """Sample rate written in a RIFF/WAVE header (for a precise message), else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"fmt " and pos + 16 <= len(head):
            return int.from_bytes(head[pos + 12:pos + 16], "little")
        pos += 8 + size + (size & 1)
    return None


def read_audio(path: Path, spec: AudioSpec, counts: Counter, native_rate: int) -> np.ndarray:
    """Mono float64 signal of ``path`` at ``spec.sample_rate`` (repairs counted in ``counts``)."""
    sf = need("soundfile", "reading WAV files")

    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as err:
        header_rate = _wav_header_rate(path)
        if header_rate is not None and header_rate < MIN_RATE:
            raise SpikegradError(f"{path}: impossible sample rate {header_rate} Hz in the WAV header") from None
        msg = str(err).replace(str(path), "").replace("Error opening ''", "").strip(" :")
        msg = " ".join(msg.split()) or type(err).__name__
        raise SpikegradError(f"{path}: cannot read audio ({msg})") from None
    if rate < MIN_RATE:
        raise SpikegradError(f"{path}: impossible sample rate {rate} Hz (speech needs ≥ {MIN_RATE} Hz)")
    if data.shape[0] == 0:
        raise SpikegradError(f"{path}: audio is empty (0 samples)")
    if not np.all(np.isfinite(data)):
        raise SpikegradError(f"{path}: audio holds NaN or infinite samples")
    if data.shape[1] > 1:
        if spec.channels == "error":
            raise SpikegradError(f"{path}: {data.shape[1]} channels, expected mono "
                                 "(set data.audio.channels = \"mix\" to average them)")
        counts["mixed_down"] += 1
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != spec.sample_rate:
        soxr = need("soxr", "resampling audio")

        counts["resampled"] += 1
        if rate != native_rate:
            counts["unexpected_rate"] += 1
        x = soxr.resample(x, rate, spec.sample_rate, quality="HQ")
        if len(x) == 0:
            raise SpikegradError(f"{path}: audio is empty after resampling {rate} Hz → {spec.sample_rate} Hz")
    return x


def file_features(path: Path, spec: AudioSpec, n_frames: int, counts: Counter, native_rate: int,
                  bank: np.ndarray | None = None) -> np.ndarray:
    """The [n_frames, n_mels] float32 features of one audio file."""
    feats, short = log_mel(read_audio(path, spec, counts, native_rate), spec, bank)
    counts["shorter_than_frame"] += int(short)
    counts["padded"] += int(len(feats) < n_frames)
    counts["cropped"] += int(len(feats) > n_frames)
    return fit_frames(feats, n_frames).astype(np.float32)
