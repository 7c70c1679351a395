"""The audio data sets' names, native rates, default frame counts and their config
section (:class:`AudioSpec`)."""

from __future__ import annotations

import math
from dataclasses import dataclass


from ...errors import SpikegradError
from .mel import mel_filterbank

NAMES = ("rawhd", "rawsc")
NATIVE_RATE = {"rawhd": 48000, "rawsc": 16000}    # what the official files are recorded at
DEFAULT_FRAMES = {"rawhd": 80, "rawsc": 100}
MIN_RATE = 1000                                    # Hz; lower rates are refused as impossible


@dataclass(frozen=True)
class AudioSpec:
    sample_rate: int = 16000     # resample to this before framing
    pre_emphasis: float = 0.95
    frame_ms: float = 25.0
    stride_ms: float = 10.0
    n_fft: int = 512
    n_mels: int = 40
    frames: int = 0              # crop/pad to this many frames; 0: 80 (RawHD) or 100 (RawSC)
    val_fraction: float = 0.1    # RawHD: carved from training data (RawSC has a list)
    cache: bool = True           # keep computed features next to the data
    log_floor: float = 1e-10     # features are log(max(mel energy, log_floor))
    channels: str = "mix"        # several channels: "mix" (average, counted) or "error"
    workers: int = 0             # feature processes; 0: one per CPU (≤ 8) from 2000 files on, 1: serial

    def __post_init__(self) -> None:
        if self.sample_rate < MIN_RATE:
            raise SpikegradError(f"audio sample_rate must be ≥ {MIN_RATE} Hz, got {self.sample_rate!r}")
        if not (math.isfinite(self.pre_emphasis) and 0.0 <= self.pre_emphasis < 1.0):
            raise SpikegradError(f"audio pre_emphasis must lie in [0, 1), got {self.pre_emphasis!r}")
        for name in ("frame_ms", "stride_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SpikegradError(f"audio {name} must be > 0, got {value!r}")
        if self.n_fft < 2:
            raise SpikegradError(f"audio n_fft must be ≥ 2, got {self.n_fft!r}")
        if self.frame_samples < 1 or self.stride_samples < 1:
            raise SpikegradError(f"audio frame_ms/stride_ms are shorter than one sample at {self.sample_rate} Hz")
        if self.frame_samples > self.n_fft:
            raise SpikegradError(f"audio frames of {self.frame_ms} ms are {self.frame_samples} samples, "
                                 f"more than n_fft = {self.n_fft}")
        if self.n_mels < 1:
            raise SpikegradError(f"audio n_mels must be ≥ 1, got {self.n_mels!r}")
        if self.frames < 0:
            raise SpikegradError(f"audio frames must be ≥ 0 (0: the data set's default), got {self.frames!r}")
        if not (math.isfinite(self.val_fraction) and 0.0 <= self.val_fraction < 1.0):
            raise SpikegradError(f"audio val_fraction must lie in [0, 1), got {self.val_fraction!r}")
        if not (math.isfinite(self.log_floor) and self.log_floor > 0):
            raise SpikegradError(f"audio log_floor must be > 0, got {self.log_floor!r}")
        if self.workers < 0:
            raise SpikegradError(f"audio workers must be ≥ 0 (0: automatic), got {self.workers!r}")
        if self.channels not in ("mix", "error"):
            raise SpikegradError(f"audio channels must be 'mix' or 'error', got {self.channels!r}")
        mel_filterbank(self.sample_rate, self.n_fft, self.n_mels)  # every filter must cover a bin

    @property
    def frame_samples(self) -> int:
        return int(round(self.sample_rate * self.frame_ms / 1000.0))

    @property
    def stride_samples(self) -> int:
        return int(round(self.sample_rate * self.stride_ms / 1000.0))

    def n_frames(self, name: str) -> int:
        return self.frames or DEFAULT_FRAMES[name]
