"""Latency-coded MNIST / Fashion-MNIST (Zenke & Vogels 2021, §4.1.2)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpikegradError


@dataclass(frozen=True)
class LatencySpec:
    threshold: float = 0.2       # ϑ: pixels x ≤ ϑ never spike
    tau_eff_ms: float = 50.0     # τ_eff of T(x) = τ_eff log(x / (x − ϑ))
    val_fraction: float = 0.1    # carved from the training files, seeded by data.seed


def defaults(name: str) -> dict:
    return {}


def load(name: str, cfg):
    raise SpikegradError(f"{name}: loader not implemented yet")
