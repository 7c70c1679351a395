"""Poisson clicks with a delay (Brunton et al. 2013): evidence must be held in memory.

Two input channels (0 = left, 1 = right) carry Poisson click trains during the stimulus
(default 0.5 s) with r_L ~ U(0, R), r_R = R − r_L (R = 40 Hz).  A silent delay follows
(default 0.5 s); the decision is read out only in a short response window after it
(the data set's defaults set ``model.readout_steps``).  Label = the side with more
clicks (1 = right); trials with equal counts are drawn again.  Without memory across the
delay (feed-forward, τ_mem = 10 ms) the task cannot be solved; a recurrent network has
to hold the evidence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import SpikegradError
from .events import DataSplits, EventData


@dataclass(frozen=True)
class ClicksSpec:
    total_rate_hz: float = 40.0   # r_L + r_R
    stimulus_ms: float = 500.0
    delay_ms: float = 500.0
    response_ms: float = 50.0     # readout window after the delay
    train_samples: int = 2000
    val_samples: int = 500
    test_samples: int = 500

    def __post_init__(self) -> None:
        for name in ("total_rate_hz", "stimulus_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SpikegradError(f"clicks {name} must be > 0, got {value!r}")
        for name in ("delay_ms", "response_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SpikegradError(f"clicks {name} must be ≥ 0, got {value!r}")
        for name in ("train_samples", "val_samples", "test_samples"):
            if getattr(self, name) < 1:
                raise SpikegradError(f"clicks {name} must be ≥ 1, got {getattr(self, name)!r}")

    @property
    def duration_ms(self) -> float:
        return self.stimulus_ms + self.delay_ms + self.response_ms


DT_MS = 5.0


def timing(name: str) -> tuple[int, float]:
    """Δt = 5 ms keeps the 1.05 s trial at 210 steps."""
    return int(round(ClicksSpec().duration_ms / DT_MS)), DT_MS


def defaults(name: str) -> dict:
    """Readout = mean over the response window (of Δt = 5 ms steps)."""
    spec = ClicksSpec()
    return {
        "model.hidden": [64],
        "model.recurrent": True,
        "model.readout": "mean",
        "model.readout_steps": int(round(spec.response_ms / DT_MS)),
        "train.epochs": 40,
        "train.batch_size": 50,
        "train.lr": 5e-3,
    }


def make_trials(spec: ClicksSpec, n: int, rng: np.random.Generator, name: str = "clicks") -> EventData:
    """``n`` trials: click times (s) on channels 0/1 and labels (1 = more right clicks)."""
    samples, labels = [], []
    stim = spec.stimulus_ms * 1e-3
    while len(samples) < n:
        rate_left = rng.uniform(0.0, spec.total_rate_hz)
        counts = rng.poisson([rate_left * stim, (spec.total_rate_hz - rate_left) * stim])
        if counts[0] == counts[1]:
            continue  # ties carry no answer: draw again
        times = rng.uniform(0.0, stim, size=counts.sum())
        units = np.repeat([0, 1], counts)
        order = np.argsort(times, kind="stable")
        samples.append((times[order], units[order]))
        labels.append(int(counts[1] > counts[0]))
    return EventData.from_samples(samples, labels, n_units=2, n_classes=2, name=name)


SPEC = "clicks"    # the config section (data.clicks) that configures it


def phases(spec: ClicksSpec) -> list[tuple[float, float, str]]:
    """Stimulus, delay and response intervals of a trial, in ms."""
    end_delay = spec.stimulus_ms + spec.delay_ms
    return [(0.0, spec.stimulus_ms, "stimulus"), (spec.stimulus_ms, end_delay, "delay"),
            (end_delay, end_delay + spec.response_ms, "response")]


def load(name: str, spec: ClicksSpec, root, seed: int) -> DataSplits:
    """Generated trials (``root`` unused: nothing is read or cached)."""
    seed = np.random.SeedSequence(int(seed))
    streams = [np.random.default_rng(s) for s in seed.spawn(3)]
    sizes = (spec.train_samples, spec.val_samples, spec.test_samples)
    train, val, test = (make_trials(spec, n, rng, f"{name}/{split}")
                        for n, rng, split in zip(sizes, streams, ("train", "val", "test")))
    return DataSplits(train, val, test, 2, 2)
