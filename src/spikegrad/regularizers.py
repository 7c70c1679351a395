"""Activity regularisers on hidden spike counts (Zenke & Vogels 2021, §4.2.5).

With c_i = Σ_n S_i[n] the spike count of neuron i in one trial (M neurons):

    lower, per neuron:    λ_low / M · Σ_i relu(ν_low − c_i)^p
    upper, population:    λ_up · relu(mean_i c_i − ν_up)^p

ν are spike counts per trial, not rates; p ∈ {1, 2}; averaged over the batch and
summed over hidden layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch

from .errors import SpikegradError


@dataclass(frozen=True)
class ActivityRegularizer:
    lower_strength: float = 0.0
    lower_threshold: float = 0.0
    upper_strength: float = 0.0
    upper_threshold: float = 0.0
    power: int = 2

    def __post_init__(self) -> None:
        if self.power not in (1, 2):
            raise SpikegradError(f"regularizer power must be 1 or 2, got {self.power!r}")
        for name in ("lower_strength", "lower_threshold", "upper_strength", "upper_threshold"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SpikegradError(f"regularizer {name} must be ≥ 0, got {value!r}")

    @property
    def active(self) -> bool:
        return self.lower_strength > 0 or self.upper_strength > 0

    def layer_penalty(self, counts: torch.Tensor) -> torch.Tensor:
        """Penalty for one layer from spike counts [batch, neurons], averaged over the batch."""
        p = self.power
        lower = torch.relu(self.lower_threshold - counts).pow(p).mean(dim=1)
        upper = torch.relu(counts.mean(dim=1) - self.upper_threshold).pow(p)
        return (self.lower_strength * lower + self.upper_strength * upper).mean()

    def __call__(self, spikes: Sequence[torch.Tensor]) -> torch.Tensor:
        """Total penalty for hidden spike trains, each [batch, time, neurons]."""
        if not spikes:
            return torch.zeros(())
        return sum(self.layer_penalty(s.sum(dim=1)) for s in spikes)
