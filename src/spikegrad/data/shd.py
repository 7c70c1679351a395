"""Spiking Heidelberg Digits and Spiking Speech Commands (Cramer et al. 2020), HDF5.

Files, in the data folder (``dataset_dir(name, data.dir)``):

* SHD: ``shd_train.h5``, ``shd_test.h5`` (20 classes: German and English digits);
* SSC: ``ssc_train.h5``, ``ssc_valid.h5``, ``ssc_test.h5`` (35 classes).

Each file holds ``spikes/times`` (per sample a variable-length float array, seconds),
``spikes/units`` (per sample a variable-length int array, channel ids in [0, 700)),
``labels`` (int per sample) and ``extra/speaker``, ``extra/keys`` (class names).

Samples stay events (:class:`EventData`; times stored as float32 unless the file has
float64, units as int16), read in chunks; binning happens per batch with
bin = floor(t / Δt), Δt = ``model.dt_ms``.

SHD has no validation file: the validation split is carved from the training file,
seeded by ``data.seed`` — random samples (``val_by="random"``, ``val_fraction`` of them)
or whole held-out speakers (``val_by="speaker"``).  The test file is never used for
selection.  SSC uses its own validation file (``val_by``/``val_fraction`` are ignored).

Bad input (docs/DATA.md, "SHD / SSC"): every problem is a one-line
:class:`SpikegradError` naming the file (and the sample), except spike times that are
NaN/inf or negative, which ``bad_events="drop"`` removes and reports (a warning and
``DataSplits.info["repairs"]``).  A sample without spikes is valid data and is kept.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._optional import need
from ..errors import SpikegradError
from . import files_missing
from .events import DataSplits, EventData

log = logging.getLogger(__name__)

N_UNITS = 700
N_CLASSES = {"shd": 20, "ssc": 35}
FILES = {
    "shd": {"train": "shd_train.h5", "test": "shd_test.h5"},
    "ssc": {"train": "ssc_train.h5", "val": "ssc_valid.h5", "test": "ssc_test.h5"},
}
CHUNK = 2048  # samples read from HDF5 at a time (keeps the peak memory near the data's)

VAL_BY = ("random", "speaker")
BAD_EVENTS = ("drop", "error")


@dataclass(frozen=True)
class ShdSpec:
    val_fraction: float = 0.1    # SHD: carved from training data (SSC has its own file)
    val_by: str = "random"       # "random" or "speaker" (held-out speakers)
    bad_events: str = "drop"     # "drop" (counted and reported) or "error"

    def __post_init__(self) -> None:
        if not (isinstance(self.val_fraction, (int, float)) and 0.0 < self.val_fraction < 1.0):
            raise SpikegradError(f"data.shd.val_fraction must lie in (0, 1), got {self.val_fraction!r}")
        if self.val_by not in VAL_BY:
            raise SpikegradError(f"data.shd.val_by must be one of {', '.join(VAL_BY)}; got {self.val_by!r}")
        if self.bad_events not in BAD_EVENTS:
            raise SpikegradError(f"data.shd.bad_events must be one of {', '.join(BAD_EVENTS)}; got {self.bad_events!r}")


# CPU-sized defaults.  Δt = 10 ms and 100 steps cover the first second of every sample
# (SHD digits last up to ~1.4 s, most well under 1 s; SSC clips are 1 s); the decay
# factors follow model.dt_ms, which is also the bin width, so binning and dynamics agree.
_DEFAULTS = {
    "shd": {"model.hidden": [128], "model.recurrent": True, "train.epochs": 30, "train.batch_size": 128},
    "ssc": {"model.hidden": [128], "model.recurrent": True, "train.epochs": 10, "train.batch_size": 256},
}


def timing(name: str) -> tuple[int, float]:
    """Δt = 10 ms × 100 steps: the first second of every sample."""
    return 100, 10.0


def defaults(name: str) -> dict:
    """Δt = 10 ms × 100 steps (1 s), one recurrent hidden layer of 128, CPU-sized epochs."""
    return {k: (list(v) if isinstance(v, list) else v) for k, v in _DEFAULTS[name].items()}


@dataclass
class _FileContents:
    events: EventData
    speakers: np.ndarray | None
    keys: list[str] | None
    repairs: dict


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _read_file(path: Path, name: str, split: str, n_classes: int, bad_events: str,
               need_speakers: bool) -> _FileContents:
    """Read and check one HDF5 file; SpikegradError naming the file for anything wrong."""
    h5py = need("h5py", f"reading {name}'s HDF5 files")
    try:
        with h5py.File(path, "r") as f:
            return _read_open(h5py, f, path, name, split, n_classes, bad_events, need_speakers)
    except (OSError, RuntimeError) as err:  # h5py: truncated, corrupt or not HDF5 at all
        raise SpikegradError(f"{path}: cannot read HDF5 ({_first_line(err)}); the file is truncated or "
                             f"corrupt, download it again (spikegrad data download {name})") from None


def _dataset(h5py, f, key: str):
    """The dataset at ``key``, or None when there is none (or something else is there)."""
    try:
        node = f.get(key)
    except (KeyError, TypeError, ValueError):
        return None
    return node if isinstance(node, h5py.Dataset) else None


def _read_open(h5py, f, path: Path, name: str, split: str, n_classes: int, bad_events: str,
               need_speakers: bool) -> _FileContents:
    required = ["spikes/times", "spikes/units", "labels"] + (["extra/speaker"] if need_speakers else [])
    missing = [key for key in required if _dataset(h5py, f, key) is None]
    if missing:
        why = " (needed by data.shd.val_by=\"speaker\")" if missing == ["extra/speaker"] else ""
        raise SpikegradError(f"{path}: missing dataset {', '.join(missing)}{why}; "
                             f"not a {name.upper()} file in the official layout")
    times_ds, units_ds = f["spikes/times"], f["spikes/units"]
    base = {}
    for key, ds, kinds, what in (("spikes/times", times_ds, "f", "floating-point seconds"),
                                 ("spikes/units", units_ds, "iu", "integer channel ids")):
        inner = h5py.check_vlen_dtype(ds.dtype)
        if ds.ndim != 1 or inner is None:
            raise SpikegradError(f"{path}: {key} must hold one variable-length array per sample, "
                                 f"got shape {ds.shape} of {ds.dtype}")
        if inner.kind not in kinds:
            raise SpikegradError(f"{path}: {key} must hold {what}, got {inner}")
        base[key] = inner
    n = len(times_ds)
    if len(units_ds) != n:
        raise SpikegradError(f"{path}: spikes/times holds {n} samples but spikes/units {len(units_ds)}")
    labels = np.asarray(f["labels"][()])
    if labels.ndim != 1 or len(labels) != n:
        raise SpikegradError(f"{path}: labels has {labels.size} entries but the file holds {n} samples")
    if labels.dtype.kind not in "iu":
        raise SpikegradError(f"{path}: labels must be integers, got {labels.dtype}")
    labels = labels.astype(np.int64)
    bad = np.flatnonzero((labels < 0) | (labels >= n_classes))
    if bad.size:
        k = int(bad[0])
        raise SpikegradError(f"{path}: sample {k}: label {labels[k]} outside [0, {n_classes}) "
                             f"({bad.size} such samples)")
    speakers = None
    if need_speakers:
        speakers = np.asarray(f["extra/speaker"][()])
        if speakers.ndim != 1 or len(speakers) != n:
            raise SpikegradError(f"{path}: extra/speaker has {speakers.size} entries but the file holds {n} samples")
    keys = None
    if _dataset(h5py, f, "extra/keys") is not None:
        raw = np.asarray(f["extra/keys"][()]).ravel()
        keys = [k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k) for k in raw.tolist()]
        if len(keys) != n_classes:
            raise SpikegradError(f"{path}: extra/keys lists {len(keys)} classes, {name.upper()} has {n_classes}")

    store_t = np.result_type(base["spikes/times"], np.float32)  # float16 → float32 exactly
    t_parts, u_parts = [], []
    lengths = np.zeros(n, np.int64)
    n_nonfinite = n_negative = 0
    fixed_samples: list[int] = []
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        t_chunk, u_chunk = times_ds[lo:hi], units_ds[lo:hi]
        t_len = np.fromiter((len(a) for a in t_chunk), np.int64, hi - lo)
        u_len = np.fromiter((len(a) for a in u_chunk), np.int64, hi - lo)
        diff = np.flatnonzero(t_len != u_len)
        if diff.size:
            k = int(diff[0])
            raise SpikegradError(f"{path}: sample {lo + k}: {t_len[k]} spike times but {u_len[k]} units")
        t = np.concatenate([np.asarray(a, np.float64) for a in t_chunk])
        u = np.concatenate([np.asarray(a).astype(np.int64) for a in u_chunk])
        sample = np.repeat(np.arange(hi - lo), t_len)
        bad_u = np.flatnonzero((u < 0) | (u >= N_UNITS))
        if bad_u.size:
            i = int(bad_u[0])
            raise SpikegradError(f"{path}: sample {lo + sample[i]}: unit id {u[i]} outside [0, {N_UNITS}) "
                                 f"({bad_u.size} such events in samples {lo}–{hi - 1})")
        nonfinite = ~np.isfinite(t)
        negative = np.zeros_like(nonfinite)
        np.less(t, 0.0, out=negative, where=~nonfinite)
        bad_t = nonfinite | negative
        if bad_t.any():
            i = int(np.argmax(bad_t))
            if bad_events == "error":
                raise SpikegradError(f"{path}: sample {lo + sample[i]}: spike time {t[i]} is not a finite "
                                     f"time ≥ 0 (set data.shd.bad_events=\"drop\" to drop such events)")
            per_sample = np.bincount(sample[bad_t], minlength=hi - lo)
            t_len = t_len - per_sample
            fixed_samples.extend((lo + np.flatnonzero(per_sample)).tolist())
            n_nonfinite += int(nonfinite.sum())
            n_negative += int(negative.sum())
            keep = ~bad_t
            t, u, sample = t[keep], u[keep], sample[keep]
        lengths[lo:hi] = t_len
        t_parts.append(t.astype(store_t))
        u_parts.append(u.astype(np.int16))

    times = np.concatenate(t_parts) if t_parts else np.zeros(0, store_t)
    units = np.concatenate(u_parts) if u_parts else np.zeros(0, np.int16)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    events = EventData(times, units, offsets, labels, N_UNITS, n_classes, name=f"{name}/{split}")
    repairs = {}
    if fixed_samples:
        repairs = {"dropped_events": n_nonfinite + n_negative, "nonfinite_times": n_nonfinite,
                   "negative_times": n_negative, "samples": len(fixed_samples),
                   "first_samples": fixed_samples[:10]}
        message = (f"{path}: dropped {repairs['dropped_events']} spike events with NaN/inf ({n_nonfinite}) "
                   f"or negative ({n_negative}) times in {len(fixed_samples)} samples "
                   f"(first: sample {fixed_samples[0]}); data.shd.bad_events=\"drop\"")
        warnings.warn(message, stacklevel=2)
        log.warning(message)
    return _FileContents(events, speakers, keys, repairs)


def _missing_files_error(name: str, folder: Path, missing: list[str]) -> SpikegradError:
    return files_missing(name, f"missing {', '.join(str(folder / m) for m in missing)}",
                         f"FOLDER holding {', '.join(FILES[name].values())}")


def _carve_validation(path: Path, contents: _FileContents, spec: ShdSpec,
                      seed: int) -> tuple[np.ndarray, np.ndarray, dict]:
    """Train/validation sample positions in the training file (each sorted), seeded."""
    n = len(contents.events)
    rng = np.random.default_rng(seed)
    if spec.val_by == "random":
        if n < 2:
            raise SpikegradError(f"{path}: {n} training samples; need at least 2 to carve a validation split")
        n_val = min(max(1, int(round(spec.val_fraction * n))), n - 1)
        perm = rng.permutation(n)
        val, train = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        return train, val, {"val_by": "random", "val_fraction": spec.val_fraction, "seed": seed}
    speakers = contents.speakers
    ids, counts = np.unique(speakers, return_counts=True)
    if len(ids) < 2:
        raise SpikegradError(f"{path}: extra/speaker lists {len(ids)} speaker(s); holding out speakers for "
                             f"validation needs at least 2 (or set data.shd.val_by=\"random\")")
    order = rng.permutation(len(ids))
    target = spec.val_fraction * n
    chosen, total = [], 0
    for j in order[:-1]:  # at least one speaker stays in training
        chosen.append(j)
        total += counts[j]
        if total >= target:
            break
    held = ids[np.sort(np.array(chosen))]
    is_val = np.isin(speakers, held)
    info = {"val_by": "speaker", "val_fraction": spec.val_fraction, "seed": seed,
            "val_speakers": held.tolist()}
    return np.flatnonzero(~is_val), np.flatnonzero(is_val), info


SPEC = "shd"       # the config section (data.shd) that configures SHD and SSC


def load(name: str, spec: ShdSpec, folder: Path, seed: int) -> DataSplits:
    """Train/validation/test splits of SHD or SSC from the files in ``folder`` (validation
    carved from SHD's training file with ``seed``)."""
    if name not in FILES:
        raise SpikegradError(f"{name}: not served by the SHD/SSC loader")
    paths = {split: folder / fname for split, fname in FILES[name].items()}
    missing = [p.name for p in paths.values() if not p.is_file()]
    if missing:
        raise _missing_files_error(name, folder, missing)
    n_classes = N_CLASSES[name]
    carve = "val" not in paths
    contents = {split: _read_file(path, name, split, n_classes, spec.bad_events,
                                  need_speakers=(carve and split == "train" and spec.val_by == "speaker"))
                for split, path in paths.items()}

    # the files must agree on what label k means
    keyed = [(split, c.keys) for split, c in contents.items() if c.keys is not None]
    for split, keys in keyed[1:]:
        if keys != keyed[0][1]:
            raise SpikegradError(f"{paths[split]}: extra/keys differ from those of {paths[keyed[0][0]]}; "
                                 f"the files do not share one label order")

    info: dict = {"folder": str(folder), "files": {s: str(p) for s, p in paths.items()},
                  "classes": keyed[0][1] if keyed else None,
                  "repairs": {paths[s].name: c.repairs for s, c in contents.items() if c.repairs}}
    test = contents["test"].events
    if carve:
        whole = contents["train"]
        train_idx, val_idx, info["split"] = _carve_validation(paths["train"], whole, spec, seed)
        train = whole.events.subset(train_idx, name=f"{name}/train")
        val = whole.events.subset(val_idx, name=f"{name}/val")
        info["train_index"], info["val_index"] = train_idx, val_idx
    else:
        train, val = contents["train"].events, contents["val"].events
        info["split"] = {"val_by": "file"}
    splits = {"train": train, "val": val, "test": test}
    info["empty_samples"] = {s: int(np.sum(np.diff(d.offsets) == 0)) for s, d in splits.items()}
    del contents
    return DataSplits(train, val, test, N_UNITS, n_classes, info=info)


__all__ = ["ShdSpec", "defaults", "load", "N_UNITS", "N_CLASSES", "FILES"]
