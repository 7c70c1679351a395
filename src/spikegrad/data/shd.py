"""Spiking Heidelberg Digits and Spiking Speech Commands (Cramer et al. 2020), HDF5."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpikegradError


@dataclass(frozen=True)
class ShdSpec:
    val_fraction: float = 0.1    # SHD: carved from training data (SSC has its own file)
    val_by: str = "random"       # "random" or "speaker" (held-out speakers)
    bad_events: str = "drop"     # "drop" (counted and reported) or "error"


def defaults(name: str) -> dict:
    return {}


def load(name: str, cfg):
    raise SpikegradError(f"{name}: loader not implemented yet")
