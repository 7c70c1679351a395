"""The mel scale and the triangular mel filterbank (HTK formula)."""

from __future__ import annotations

import numpy as np

from ...errors import SpikegradError


def hz_to_mel(f):
    """HTK mel scale: 2595·log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK-mel filters [n_mels, n_fft // 2 + 1] from 0 Hz to Nyquist, peak 1."""
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2.0), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    bank = np.maximum(0.0, np.minimum(rising, falling))
    empty = np.flatnonzero(bank.max(axis=1) <= 0)
    if len(empty):
        raise SpikegradError(f"audio: mel filter {int(empty[0])} of {n_mels} covers no FFT bin "
                             f"(n_fft = {n_fft} at {sample_rate} Hz); use fewer n_mels or a larger n_fft")
    return bank
