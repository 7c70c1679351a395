"""Latency-coded MNIST / Fashion-MNIST (Zenke & Vogels 2021, §4.1.2).

Pixels scaled to x ∈ [0, 1) (value / 256) spike once at T(x) = τ_eff log(x / (x − ϑ))
if x > ϑ, never otherwise (ϑ = 0.2, τ_eff = 50 ms): bright pixels first.  Files are the
standard IDX files (gzipped or not) in the data folder:

    train-images-idx3-ubyte[.gz]  train-labels-idx1-ubyte[.gz]
    t10k-images-idx3-ubyte[.gz]   t10k-labels-idx1-ubyte[.gz]

The validation split is carved from the training files (``val_fraction``, seeded by the
data seed); the test files are only ever used for testing.
"""

from __future__ import annotations

import gzip
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import SpikegradError
from . import files_missing
from .events import DataSplits, EventData

IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049
CLASSES = 10


@dataclass(frozen=True)
class LatencySpec:
    threshold: float = 0.2       # ϑ: pixels x ≤ ϑ never spike
    tau_eff_ms: float = 50.0     # τ_eff of T(x) = τ_eff log(x / (x − ϑ))
    val_fraction: float = 0.1    # carved from the training files, seeded by data.seed

    def __post_init__(self) -> None:
        if not 0 <= self.threshold < 1:
            raise SpikegradError(f"mnist threshold must lie in [0, 1), got {self.threshold!r}")
        if not (math.isfinite(self.tau_eff_ms) and self.tau_eff_ms > 0):
            raise SpikegradError(f"mnist tau_eff_ms must be > 0, got {self.tau_eff_ms!r}")
        if not 0 < self.val_fraction < 1:
            raise SpikegradError(f"mnist val_fraction must lie in (0, 1), got {self.val_fraction!r}")


# The latency code puts dim pixels late: T(x) → ∞ as x → ϑ.  In the real MNIST test set 2.0 %
# of the spikes fall after 100 ms (pixels with x < 0.23), 0.18 % after 200 ms, none after
# 300 ms.  The paper's 100 ms window cuts them by design, so these data sets accept up to
# 3 % (the run-stopping check of spikegrad.training.check_event_window).  For Fashion-MNIST
# the share is not known: a run that loses more stops and says how to proceed.
MAX_DROPPED = 0.03


def timing(name: str) -> tuple[int, float]:
    """100 steps of 1 ms hold every spike of a pixel above x ≈ 0.23 (T ≤ 100 ms)."""
    return 100, 1.0


def defaults(name: str) -> dict:
    return {"model.hidden": [256], "train.epochs": 30, "train.batch_size": 128, "train.lr": 2e-3}


def _find(folder: Path, stem: str, name: str) -> Path:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.is_file():
            return candidate
    raise files_missing(name, f"no {stem}[.gz] in {folder}", "with the four IDX files")


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (optionally gzipped) as a uint8 array; SpikegradError naming the file."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as fh:
            raw = fh.read()
    except (OSError, EOFError, zlib.error) as err:
        raise SpikegradError(f"{path}: cannot read IDX file ({err or type(err).__name__})") from None
    if len(raw) < 8:
        raise SpikegradError(f"{path}: too short for an IDX header ({len(raw)} bytes)")
    magic = int.from_bytes(raw[:4], "big")
    if magic >> 8 != 0x08 or magic & 0xFF not in (1, 3):
        raise SpikegradError(f"{path}: not a uint8 IDX file (magic number {magic:#010x})")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise SpikegradError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    expected = header + math.prod(shape)
    if len(raw) != expected:
        raise SpikegradError(f"{path}: {len(raw)} bytes, but the header's shape {shape} needs {expected} "
                             f"(truncated or corrupt)")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped if the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = (0x0800 | array.ndim).to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + array.tobytes())


def read_pair(folder: Path, prefix: str, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Images [n, 28·28] and labels [n] of ``prefix`` (train or t10k), checked against each other."""
    img_path = _find(folder, f"{prefix}-images-idx3-ubyte", name)
    lbl_path = _find(folder, f"{prefix}-labels-idx1-ubyte", name)
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3:
        raise SpikegradError(f"{img_path}: expected images [n, rows, cols], got shape {images.shape}")
    if labels.ndim != 1:
        raise SpikegradError(f"{lbl_path}: expected labels [n], got shape {labels.shape}")
    if len(images) != len(labels):
        raise SpikegradError(f"{img_path} has {len(images)} images but {lbl_path} has {len(labels)} labels")
    if len(images) == 0 or images.shape[1] * images.shape[2] == 0:
        raise SpikegradError(f"{img_path}: holds no images (shape {list(images.shape)})")
    bad = np.flatnonzero(labels >= CLASSES)
    if len(bad):
        raise SpikegradError(f"{lbl_path}: sample {bad[0]} has label {labels[bad[0]]}, outside 0–{CLASSES - 1}")
    return images.reshape(len(images), -1), labels.astype(np.int64)


def latency_events(images: np.ndarray, labels: np.ndarray, spec: LatencySpec, name: str) -> EventData:
    """One spike per pixel above threshold at T(x) = τ_eff log(x / (x − ϑ)), in seconds."""
    x = images.astype(np.float64) / 256.0
    mask = x > spec.threshold
    rows, units = np.nonzero(mask)
    xs = x[rows, units]
    times = spec.tau_eff_ms * 1e-3 * np.log(xs / (xs - spec.threshold))
    counts = mask.sum(axis=1)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return EventData(times, units.astype(np.int64), offsets, labels, images.shape[1], CLASSES, name)


def train_val_split(n: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, validation) indices into the training files, seeded by the data seed."""
    order = np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(1,))).permutation(n)
    n_val = max(1, int(round(val_fraction * n)))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


SPEC = "mnist"     # the config section (data.mnist) that configures MNIST and Fashion-MNIST


def load(name: str, spec: LatencySpec, folder: Path, seed: int) -> DataSplits:
    """The IDX files in ``folder`` as latency-coded splits (validation carved with ``seed``)."""
    train_img, train_lbl = read_pair(folder, "train", name)
    test_img, test_lbl = read_pair(folder, "t10k", name)
    if train_img.shape[1] != test_img.shape[1]:
        raise SpikegradError(f"{name}: training images have {train_img.shape[1]} pixels, test images {test_img.shape[1]}")
    train_idx, val_idx = train_val_split(len(train_lbl), spec.val_fraction, seed)
    train = latency_events(train_img[train_idx], train_lbl[train_idx], spec, f"{name}/train")
    val = latency_events(train_img[val_idx], train_lbl[val_idx], spec, f"{name}/val")
    test = latency_events(test_img, test_lbl, spec, f"{name}/test")
    return DataSplits(train, val, test, train.n_units, CLASSES)
