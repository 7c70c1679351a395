"""RawHD / RawSC: audio → log mel filterbank features fed as input current (§4.1.3)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpikegradError


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


def defaults(name: str) -> dict:
    return {}


def load(name: str, cfg):
    raise SpikegradError(f"{name}: loader not implemented yet")
