"""Randman: smooth random manifold spike-timing data (Zenke & Vogels 2021, §4.1.1).

For class c and input neuron i a smooth random function of x ∈ [0, 1)^D,

    f_i(x) = Π_{j=1..D} Σ_{k=1..K} (θ^A_ijk / k^α) sin(2π(k x_j θ^B_ijk + θ^C_ijk)),

θ^{A,B,C} ~ U(0, 1) i.i.d., K = 1000.  Points x ~ U(0, 1)^D; each neuron's values are
min–max standardised over the class's samples to [0, 1) and scaled to [0, τ): the
spike time of that neuron, exactly one spike per input neuron.  Each class draws its
own functions and points from a generator seeded by (data seed, class).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpikegradError
from .events import DataSplits, EventData


@dataclass(frozen=True)
class RandmanSpec:
    """The paper's default task: 10 classes, D = α = 1, M = 20, τ = 50 ms, 800/100/100 per class."""

    classes: int = 10
    inputs: int = 20
    dim: int = 1
    alpha: float = 1.0
    duration_ms: float = 50.0
    terms: int = 1000
    train_per_class: int = 800
    val_per_class: int = 100
    test_per_class: int = 100

    def __post_init__(self) -> None:
        for name in ("classes", "inputs", "dim", "terms", "train_per_class"):
            if getattr(self, name) < 1:
                raise SpikegradError(f"randman {name} must be ≥ 1, got {getattr(self, name)!r}")
        for name in ("val_per_class", "test_per_class"):
            if getattr(self, name) < 0:
                raise SpikegradError(f"randman {name} must be ≥ 0, got {getattr(self, name)!r}")
        if not self.duration_ms > 0:
            raise SpikegradError(f"randman duration_ms must be > 0, got {self.duration_ms!r}")
        if self.alpha < 0:
            raise SpikegradError(f"randman alpha must be ≥ 0, got {self.alpha!r}")

    @property
    def samples_per_class(self) -> int:
        return self.train_per_class + self.val_per_class + self.test_per_class


def manifold_values(theta: np.ndarray, x: np.ndarray, alpha: float) -> np.ndarray:
    """f_i(x) for all neurons: theta [3, M, D, K] (A, B, C), x [n, D] → [n, M]."""
    a, b, c = theta
    _, dim, terms = a.shape
    k = np.arange(1, terms + 1, dtype=np.float64)
    out = np.ones((x.shape[0], a.shape[0]))
    for i in range(a.shape[0]):
        for j in range(dim):
            phase = x[:, j:j + 1] * (k * b[i, j])[None, :] + c[i, j][None, :]
            out[:, i] *= np.sin(2.0 * np.pi * phase) @ (a[i, j] / k ** alpha)
    return out


def class_spike_times(spec: RandmanSpec, seed: int, label: int) -> np.ndarray:
    """Spike times (seconds) of one class's samples, [samples_per_class, inputs]."""
    rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(int(label),)))
    theta = rng.uniform(0.0, 1.0, size=(3, spec.inputs, spec.dim, spec.terms))
    x = rng.uniform(0.0, 1.0, size=(spec.samples_per_class, spec.dim))
    f = manifold_values(theta, x, spec.alpha)
    lo, span = f.min(axis=0), np.ptp(f, axis=0)
    if np.any(span <= 0):
        raise SpikegradError("randman: a neuron's values do not vary over the class; use more samples")
    unit = (f - lo) / span * (1.0 - 1e-9)  # [0, 1): the maximum lands just below τ
    return unit * spec.duration_ms * 1e-3


def make_randman(spec: RandmanSpec, seed: int) -> DataSplits:
    """Generate the data set and split every class train/val/test in that order."""
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    bounds = np.cumsum([0, spec.train_per_class, spec.val_per_class, spec.test_per_class])
    for label in range(spec.classes):
        times = class_spike_times(spec, seed, label)
        for split, lo, hi in zip(parts, bounds[:-1], bounds[1:]):
            parts[split].extend((times[s], label) for s in range(lo, hi))
    units = np.arange(spec.inputs)
    # shuffling draws from its own stream, disjoint from every class's (spawn key −1 ↦ 2**32−1)
    order_rng = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(2**32 - 1,)))
    splits = {}
    for split, items in parts.items():
        order = order_rng.permutation(len(items))
        samples = [(items[k][0], units) for k in order]
        labels = [items[k][1] for k in order]
        splits[split] = EventData.from_samples(samples, labels, spec.inputs, spec.classes,
                                               name=f"randman/{split}")
    return DataSplits(splits["train"], splits["val"], splits["test"], spec.inputs, spec.classes)


def timing(name: str) -> tuple[int, float]:
    """70 steps of 1 ms hold the 50 ms task and the readout's response to its last spikes."""
    return 70, 1.0


def defaults(name: str) -> dict:
    """The core's defaults are the paper's Randman setup already."""
    return {}


CACHE_VERSION = "randman-v1"  # bump when the generator's output changes


def cache_path(spec: RandmanSpec, seed: int, root: Path | None = None) -> Path:
    """Cache file of one (spec, seed): ROOT/<hash>.npz, ROOT the data set's folder
    (default data_root()/randman)."""
    from . import dataset_dir

    key = json.dumps({"version": CACHE_VERSION, "seed": int(seed), **dataclasses.asdict(spec)}, sort_keys=True)
    return (root or dataset_dir("randman")) / f"{hashlib.sha256(key.encode()).hexdigest()[:20]}.npz"


SPEC = "randman"   # the config section (data.randman) that configures it


def load(name: str, spec: RandmanSpec, root: Path, seed: int) -> DataSplits:
    """The data set of (spec, seed), from the cache in ``root`` when present (generating it
    costs seconds: sweeps reuse it)."""
    path = cache_path(spec, seed, root)
    if path.is_file():
        try:
            with np.load(path) as z:
                parts = [EventData(z[f"{s}_times"], z[f"{s}_units"], z[f"{s}_offsets"], z[f"{s}_labels"],
                                   spec.inputs, spec.classes, f"randman/{s}") for s in ("train", "val", "test")]
            return DataSplits(*parts, spec.inputs, spec.classes)
        except (OSError, ValueError, KeyError, SpikegradError, zipfile.BadZipFile):
            pass  # unreadable or foreign cache: generate again and overwrite it
    splits = make_randman(spec, seed)
    arrays = {f"{s}_{field}": getattr(getattr(splits, s), field)
              for s in ("train", "val", "test") for field in ("times", "units", "offsets", "labels")}
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except OSError:
        # a read-only or full cache folder only costs the time to generate again; no
        # half-written file stays behind
        with contextlib.suppress(OSError):
            tmp.unlink()
    return splits
