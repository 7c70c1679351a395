"""RawHD / RawSC: audio → log mel filterbank features fed as input current (§4.1.3).

Pipeline (SCIENCE.md §4, the paper's §4.1.3), per file:

1. read the audio with soundfile (WAV/FLAC) as float64 in [-1, 1]; several channels
   are averaged to one (``channels = "mix"``, counted) or refused (``"error"``);
2. resample to ``sample_rate`` (16 kHz) with soxr (quality "HQ") when the file has
   another rate (the Heidelberg recordings are 48 kHz);
3. pre-emphasis y[t] = x[t] − 0.95·x[t−1] (y[0] = x[0]);
4. frames of ``frame_ms`` = 25 ms (400 samples) every ``stride_ms`` = 10 ms (160
   samples); frame k covers samples [160k, 160k + 400); a trailing partial frame is
   dropped, and audio shorter than one frame is zero-padded to one frame (counted);
5. symmetric Hamming window 0.54 − 0.46·cos(2πn/(N−1)), N = 400;
6. power spectrum |FFT_512(frame)|² (no 1/N scaling), bins k·16000/512 Hz, k = 0..256;
7. 40 triangular filters on the HTK mel scale m(f) = 2595·log10(1 + f/700): 42 points
   equally spaced in mel from 0 Hz to Nyquist (8 kHz), filter i rises from point i to
   point i+1 and falls to point i+2, peak 1, no area normalisation, evaluated at the
   FFT bin frequencies (the same matrix as ``librosa.filters.mel(sr=16000, n_fft=512,
   n_mels=40, htk=True, norm=None)``; librosa is not a dependency);
8. natural log of the filter energies, floored: log(max(E, ``log_floor`` = 1e-10)) so
   digital silence gives log(1e-10) ≈ −23.0 instead of −inf;
9. crop to the first ``frames`` frames or pad by repeating the last frame, to 80
   (RawHD) or 100 (RawSC) frames; one frame is one simulation step (Δt = stride).

Features are cached in ``<data folder>/.spikegrad-cache/<name>-<key>.npz``; the key
is a hash of the feature settings and of every audio file's relative path, size and
modification time, and is stored inside the file too: a cache that does not match is
recomputed, never reused.  Labels are not cached (they are derived from the names).

Layouts (in the data folder, ``dataset_dir(name, data.dir)``):

* RawHD — the Heidelberg Digits archive: ``audio/lang-{english,german}_speaker-NN_
  trial-K_digit-D.flac`` plus ``train_filenames.txt`` and ``test_filenames.txt`` (one
  file name per line).  Classes follow SHD's ``extra/keys`` (read from an
  ``shd_train.h5``/``shd_test.h5`` in the same folder or in ``dataset_dir("shd")``),
  else :data:`SHD_KEYS`: English zero..nine = 0..9, German null..neun = 10..19.  The
  validation split is a random ``val_fraction`` of the training files (``data.seed``).
* RawSC — Speech Commands v0.02: one folder per word (the 35 of :data:`SC_WORDS`,
  classes in that sorted order) of ``.wav`` files, ``validation_list.txt`` and
  ``testing_list.txt`` (paths relative to the root); every other file is training
  data; ``_background_noise_`` is ignored.

The package: :mod:`.spec` (names, rates, the config section), :mod:`.features` (the
log-mel pipeline), :mod:`.layouts` (RawHD and RawSC layouts), :mod:`.cache` (the feature
cache and extraction); here: ``timing``, ``defaults``, ``load``.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np

from ...errors import SpikegradError
from ..events import DataSplits, DenseData
from .cache import CACHE_FOLDER, cache_key, cache_path, compute_features, report  # noqa: F401
from .features import fit_frames, log_mel, read_audio  # noqa: F401
from .mel import hz_to_mel, mel_filterbank, mel_to_hz  # noqa: F401
from .layouts import (SC_WORDS, SHD_KEYS, parse_hd_name, rawhd_layout, rawsc_layout, read_shd_keys,  # noqa: F401
                      shd_class_map, shd_keys)
from .spec import DEFAULT_FRAMES, NAMES, NATIVE_RATE, AudioSpec

__all__ = ["AudioSpec", "SHD_KEYS", "SC_WORDS", "defaults", "load", "mel_filterbank", "log_mel",
           "fit_frames", "hz_to_mel", "mel_to_hz", "shd_class_map", "shd_keys", "read_shd_keys",
           "rawhd_layout", "rawsc_layout", "compute_features", "cache_key", "cache_path"]



# -- registry interface --------------------------------------------------------------------

def timing(name: str) -> tuple[int, float]:
    """(steps, Δt in ms): one simulation step per 10 ms feature frame, the paper's frame counts."""
    if name not in NAMES:
        raise SpikegradError(f"audio: unknown data set {name!r}")
    return DEFAULT_FRAMES[name], AudioSpec.stride_ms


def defaults(name: str) -> dict:
    """The paper's time constants; hidden sizes by data set."""
    if name not in NAMES:
        raise SpikegradError(f"audio: unknown data set {name!r}")
    return {"model.hidden": [128] if name == "rawhd" else [256]}


SPEC = "audio"     # the config section (data.audio) that configures RawHD and RawSC


def check_timing(name: str, spec: AudioSpec, n_steps: int, dt_ms: float) -> None:
    """A step is one feature frame: more steps than frames is an error, a Δt other than
    the frame stride a warning (time constants then count steps of Δt)."""
    n_frames = spec.n_frames(name)
    if n_steps > n_frames:
        raise SpikegradError(f"{name}: data.n_steps = {n_steps} but samples have {n_frames} frames "
                             "(data.audio.frames)")
    if not math.isclose(dt_ms, spec.stride_ms):
        warnings.warn(f"{name}: model.dt_ms = {dt_ms} but each step is one feature frame of "
                      f"{spec.stride_ms} ms; time constants are counted in steps of dt_ms", stacklevel=3)


def load(name: str, spec: AudioSpec, root: Path, seed: int) -> DataSplits:
    """Log-mel features of the files in ``root`` (validation carved from RawHD's training
    files with ``seed``)."""
    if name not in NAMES:
        raise SpikegradError(f"audio: unknown data set {name!r}")
    layout = rawhd_layout(root) if name == "rawhd" else rawsc_layout(root)
    features, _, _ = compute_features(name, layout, spec)

    split = layout.split.copy()
    if name == "rawhd":
        train = np.flatnonzero(split == 0)
        n_val = int(round(spec.val_fraction * len(train)))
        if spec.val_fraction > 0 and n_val == 0 and len(train) > 1:
            n_val = 1
        rng = np.random.default_rng(seed)
        split[np.sort(rng.permutation(train)[:n_val])] = 1

    def part(code: int, label: str) -> DenseData:
        idx = np.flatnonzero(split == code)
        return DenseData(features[idx], layout.labels[idx], layout.n_classes, f"{name}/{label}")

    return DataSplits(part(0, "train"), part(1, "val"), part(2, "test"), spec.n_mels, layout.n_classes)
