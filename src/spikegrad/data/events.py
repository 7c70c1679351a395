"""Input formats: :class:`EventData` for spiking data sets (per-sample lists of (time,
unit)) and :class:`DenseData` for analog input currents (e.g. mel features).  Both give
a batch as ``inputs(index, n_steps, dt) -> [batch, n_steps, n_inputs]`` float tensor;
:meth:`EventData.batch` gives the same batch as an :class:`EventBatch` (its nonzeros only:
what training feeds the network, see ``spikegrad.training.iterate_batches``).

Samples are stored CSR-style (flat ``times``/``units`` with ``offsets``), never as a
dense data-set-wide tensor; :meth:`EventData.batch` bins a batch on demand with
bin = floor(t / Δt); events at t ≥ n_steps·Δt are dropped and counted; several events
in one bin add up.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ..errors import SpikegradError
from ..events import EventBatch


@dataclass
class EventData:
    times: np.ndarray    # float64 seconds, all samples concatenated
    units: np.ndarray    # int64 channel ids
    offsets: np.ndarray  # int64 [n_samples + 1]; sample k is offsets[k]:offsets[k+1]
    labels: np.ndarray   # int64 [n_samples]
    n_units: int
    n_classes: int
    name: str = "events"

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.offsets) != n + 1 or self.offsets[0] != 0 or self.offsets[-1] != len(self.times):
            raise SpikegradError(f"{self.name}: offsets do not match {n} samples / {len(self.times)} events")
        if len(self.units) != len(self.times):
            raise SpikegradError(f"{self.name}: {len(self.times)} times but {len(self.units)} units")
        if len(self.units) and (self.units.min() < 0 or self.units.max() >= self.n_units):
            raise SpikegradError(f"{self.name}: unit ids must lie in [0, {self.n_units})")
        if n and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
            raise SpikegradError(f"{self.name}: labels must lie in [0, {self.n_classes})")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_inputs(self) -> int:
        return self.n_units

    def inputs(self, index, n_steps: int, dt: float) -> torch.Tensor:
        """Binned spike counts [batch, n_steps, n_units] (events past the window dropped)."""
        return self.raster(index, n_steps, dt)[0]

    @classmethod
    def from_samples(cls, samples: list[tuple[np.ndarray, np.ndarray]], labels, n_units: int,
                     n_classes: int, name: str = "events") -> "EventData":
        """Build from a list of (times, units) per sample."""
        lengths = np.array([len(t) for t, _ in samples], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        times = np.concatenate([np.asarray(t, np.float64) for t, _ in samples]) if samples else np.zeros(0)
        units = np.concatenate([np.asarray(u, np.int64) for _, u in samples]) if samples else np.zeros(0, np.int64)
        return cls(times, units, offsets, np.asarray(labels, np.int64), n_units, n_classes, name)

    def _gather(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Flat event positions of samples ``index`` (in order) and each sample's event count."""
        starts, ends = self.offsets[index], self.offsets[index + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        # position of each event = its sample's start + its rank inside the sample
        flat = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(total)
        return flat.astype(np.int64), lengths

    def subset(self, index: np.ndarray, name: str | None = None) -> "EventData":
        """A new EventData holding the samples ``index`` in that order."""
        index = np.asarray(index, dtype=np.int64)
        flat, lengths = self._gather(index)
        offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        return EventData(self.times[flat], self.units[flat], offsets, self.labels[index],
                         self.n_units, self.n_classes, name or self.name)

    def past_window(self, n_steps: int, dt: float) -> int:
        """Events that fall at or after the window n_steps·Δt — exactly those :meth:`batch`
        drops (the same float64 binning)."""
        bins = np.floor(self.times.astype(np.float64, copy=False) / dt)
        return int(np.count_nonzero(bins >= n_steps))

    def batch(self, index, n_steps: int, dt: float, dtype=torch.float32) -> tuple[EventBatch, int]:
        """Bin samples ``index`` into an :class:`EventBatch` [batch, n_steps, n_units] of spike
        counts (what the network reads, no dense raster made); returns (batch, dropped)."""
        index = np.asarray(index, dtype=np.int64)
        flat, lengths = self._gather(index)
        rows = np.repeat(np.arange(len(index)), lengths)
        # float64 whatever the storage dtype (e.g. float32 for SHD), so bins match t / Δt exactly
        bins = np.floor(self.times[flat].astype(np.float64, copy=False) / dt).astype(np.int64)
        keep = (bins >= 0) & (bins < n_steps)
        # one cell per (sample, step, unit); several events in one cell add up to a count
        cell = (rows[keep] * n_steps + bins[keep]) * self.n_units + self.units[flat][keep]
        cells, counts = np.unique(cell, return_counts=True)   # sorted: rows, then units
        m = len(index) * n_steps
        ptr = np.zeros(m + 1, dtype=np.int64)
        np.cumsum(np.bincount(cells // self.n_units, minlength=m), out=ptr[1:])
        events = EventBatch(torch.from_numpy(ptr),
                            torch.from_numpy((cells % self.n_units).astype(np.int32)),
                            torch.from_numpy(counts).to(dtype), (len(index), n_steps, self.n_units))
        return events, int((~keep).sum())

    def raster(self, index, n_steps: int, dt: float, dtype=torch.float32) -> tuple[torch.Tensor, int]:
        """Bin samples ``index`` to a dense [batch, n_steps, n_units] count raster; returns
        (raster, dropped)."""
        events, dropped = self.batch(index, n_steps, dt, dtype)
        return events.to_dense(), dropped


@dataclass
class DenseData:
    """Analog input per time step, [n_samples, n_frames, n_inputs] float32, one frame per step.

    ``labels``: a class per sample ([n_samples] integers in [0, n_classes)), or a target per
    sample of any shape (e.g. spike trains [n_samples, n_steps, n_classes] for a spike-train
    loss) — the loss decides what it compares."""

    features: np.ndarray
    labels: np.ndarray
    n_classes: int
    name: str = "dense"

    def __post_init__(self) -> None:
        if self.features.ndim != 3 or len(self.features) != len(self.labels):
            raise SpikegradError(f"{self.name}: features must be [samples, frames, inputs] with one label each")
        if self.labels.ndim == 1 and len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= self.n_classes):
            raise SpikegradError(f"{self.name}: labels must lie in [0, {self.n_classes})")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def n_inputs(self) -> int:
        return self.features.shape[2]

    def subset(self, index: np.ndarray, name: str | None = None) -> "DenseData":
        index = np.asarray(index, dtype=np.int64)
        return DenseData(self.features[index], self.labels[index], self.n_classes, name or self.name)

    def inputs(self, index, n_steps: int, dt: float) -> torch.Tensor:
        """The first ``n_steps`` frames of samples ``index`` (``dt`` is the frame stride)."""
        if n_steps > self.features.shape[1]:
            raise SpikegradError(f"{self.name}: {n_steps} steps asked for, samples have {self.features.shape[1]} frames")
        return torch.from_numpy(np.ascontiguousarray(self.features[np.asarray(index), :n_steps], dtype=np.float32))


@dataclass
class DataSplits:
    """Train/validation/test splits of one data set plus its input/output sizes."""

    train: EventData | DenseData
    val: EventData | DenseData
    test: EventData | DenseData
    n_inputs: int
    n_classes: int
    info: dict = field(default_factory=dict)  # loader metadata, e.g. {"repairs": {...}}
