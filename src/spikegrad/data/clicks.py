"""Poisson clicks with a delay (Brunton et al. 2013): evidence must be held in memory."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpikegradError


@dataclass(frozen=True)
class ClicksSpec:
    total_rate_hz: float = 40.0   # r_L + r_R
    stimulus_ms: float = 500.0
    delay_ms: float = 500.0
    response_ms: float = 50.0     # readout window after the delay
    train_samples: int = 2000
    val_samples: int = 500
    test_samples: int = 500


def defaults(name: str) -> dict:
    return {}


def load(name: str, cfg):
    raise SpikegradError(f"{name}: loader not implemented yet")
