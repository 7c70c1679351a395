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

Layouts (in ``dataset_dir(name, cfg.data.dir)``):

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
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .._optional import need
from ..errors import SpikegradError
from . import files_missing
from .events import DataSplits, DenseData

if TYPE_CHECKING:
    from ..config import Config

log = logging.getLogger(__name__)

NAMES = ("rawhd", "rawsc")
NATIVE_RATE = {"rawhd": 48000, "rawsc": 16000}    # what the official files are recorded at
DEFAULT_FRAMES = {"rawhd": 80, "rawsc": 100}
CACHE_VERSION = 1
MIN_RATE = 1000                                    # Hz; lower rates are refused as impossible
PARALLEL_FROM = 2000                               # files; fewer are computed in this process
CACHE_FOLDER = ".spikegrad-cache"

# SHD's ``extra/keys`` (shd_train.h5 / shd_test.h5): label k is the word SHD_KEYS[k].
SHD_KEYS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun")
_WORD_DIGIT = {**{w: ("english", d) for d, w in enumerate(SHD_KEYS[:10])},
               **{w: ("german", d) for d, w in enumerate(SHD_KEYS[10:])},
               "fuenf": ("german", 5), "funf": ("german", 5)}

# Speech Commands v0.02: the 35 words, sorted; label k is SC_WORDS[k].
SC_WORDS = ("backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow",
            "forward", "four", "go", "happy", "house", "learn", "left", "marvin", "nine", "no",
            "off", "on", "one", "right", "seven", "sheila", "six", "stop", "three", "tree",
            "two", "up", "visual", "wow", "yes", "zero")
SC_IGNORED = ("_background_noise_",)

HD_NAME = re.compile(r"^lang-(english|german)_speaker-(\d+)_trial-(\d+)_digit-(\d)\.flac$")


@dataclass(frozen=True)
class AudioSpec:
    sample_rate: int = 16000     # resample to this before framing
    pre_emphasis: float = 0.95
    frame_ms: float = 25.0
    stride_ms: float = 10.0
    n_fft: int = 512
    n_mels: int = 40
    frames: int = 0              # crop/pad to this many frames; 0: 80 (RawHD) or 100 (RawSC)
    val_fraction: float = 0.1    # RawHD: carved from training data (RawSC has a list)
    cache: bool = True           # keep computed features next to the data
    log_floor: float = 1e-10     # features are log(max(mel energy, log_floor))
    channels: str = "mix"        # several channels: "mix" (average, counted) or "error"
    workers: int = 0             # feature processes; 0: one per CPU (≤ 8) from 2000 files on, 1: serial

    def __post_init__(self) -> None:
        if self.sample_rate < MIN_RATE:
            raise SpikegradError(f"audio sample_rate must be ≥ {MIN_RATE} Hz, got {self.sample_rate!r}")
        if not (math.isfinite(self.pre_emphasis) and 0.0 <= self.pre_emphasis < 1.0):
            raise SpikegradError(f"audio pre_emphasis must lie in [0, 1), got {self.pre_emphasis!r}")
        for name in ("frame_ms", "stride_ms"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise SpikegradError(f"audio {name} must be > 0, got {value!r}")
        if self.n_fft < 2:
            raise SpikegradError(f"audio n_fft must be ≥ 2, got {self.n_fft!r}")
        if self.frame_samples < 1 or self.stride_samples < 1:
            raise SpikegradError(f"audio frame_ms/stride_ms are shorter than one sample at {self.sample_rate} Hz")
        if self.frame_samples > self.n_fft:
            raise SpikegradError(f"audio frames of {self.frame_ms} ms are {self.frame_samples} samples, "
                                 f"more than n_fft = {self.n_fft}")
        if self.n_mels < 1:
            raise SpikegradError(f"audio n_mels must be ≥ 1, got {self.n_mels!r}")
        if self.frames < 0:
            raise SpikegradError(f"audio frames must be ≥ 0 (0: the data set's default), got {self.frames!r}")
        if not (math.isfinite(self.val_fraction) and 0.0 <= self.val_fraction < 1.0):
            raise SpikegradError(f"audio val_fraction must lie in [0, 1), got {self.val_fraction!r}")
        if not (math.isfinite(self.log_floor) and self.log_floor > 0):
            raise SpikegradError(f"audio log_floor must be > 0, got {self.log_floor!r}")
        if self.workers < 0:
            raise SpikegradError(f"audio workers must be ≥ 0 (0: automatic), got {self.workers!r}")
        if self.channels not in ("mix", "error"):
            raise SpikegradError(f"audio channels must be 'mix' or 'error', got {self.channels!r}")
        mel_filterbank(self.sample_rate, self.n_fft, self.n_mels)  # every filter must cover a bin

    @property
    def frame_samples(self) -> int:
        return int(round(self.sample_rate * self.frame_ms / 1000.0))

    @property
    def stride_samples(self) -> int:
        return int(round(self.sample_rate * self.stride_ms / 1000.0))

    def n_frames(self, name: str) -> int:
        return self.frames or DEFAULT_FRAMES[name]


# -- feature pipeline --------------------------------------------------------------------

def hz_to_mel(f):
    """HTK mel scale: 2595·log10(1 + f/700)."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int) -> np.ndarray:
    """Triangular HTK-mel filters [n_mels, n_fft // 2 + 1] from 0 Hz to Nyquist, peak 1."""
    edges = mel_to_hz(np.linspace(0.0, hz_to_mel(sample_rate / 2.0), n_mels + 2))
    freqs = np.arange(n_fft // 2 + 1) * (sample_rate / n_fft)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lo) / (mid - lo)
    falling = (hi - freqs[None, :]) / (hi - mid)
    bank = np.maximum(0.0, np.minimum(rising, falling))
    empty = np.flatnonzero(bank.max(axis=1) <= 0)
    if len(empty):
        raise SpikegradError(f"audio: mel filter {int(empty[0])} of {n_mels} covers no FFT bin "
                             f"(n_fft = {n_fft} at {sample_rate} Hz); use fewer n_mels or a larger n_fft")
    return bank


def log_mel(signal: np.ndarray, spec: AudioSpec, bank: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
    """Log mel energies [n_frames, n_mels] of a mono signal at ``spec.sample_rate``.

    Returns (features, short): ``short`` is True when the signal was shorter than one
    frame and was zero-padded to one.
    """
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim != 1 or len(x) == 0:
        raise SpikegradError("audio: log_mel needs a non-empty 1-D signal")
    if bank is None:
        bank = mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels)
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - spec.pre_emphasis * x[:-1]
    width, hop = spec.frame_samples, spec.stride_samples
    short = len(y) < width
    if short:
        y = np.concatenate([y, np.zeros(width - len(y))])
    n = 1 + (len(y) - width) // hop
    frames = np.lib.stride_tricks.sliding_window_view(y, width)[::hop][:n]
    power = np.abs(np.fft.rfft(frames * np.hamming(width), n=spec.n_fft, axis=1)) ** 2
    # einsum, not BLAS: a small matmul per file wakes OpenBLAS's thread pool, ~10× slower
    energy = np.einsum("fk,mk->fm", power, bank)
    return np.log(np.maximum(energy, spec.log_floor)), short


def fit_frames(features: np.ndarray, n: int) -> np.ndarray:
    """Keep the first ``n`` frames, or pad by repeating the last frame up to ``n``."""
    if len(features) >= n:
        return features[:n]
    return np.concatenate([features, np.repeat(features[-1:], n - len(features), axis=0)])


def _wav_header_rate(path: Path) -> int | None:
    """Sample rate written in a RIFF/WAVE header (for a precise message), else None."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError:
        return None
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], int.from_bytes(head[pos + 4:pos + 8], "little")
        if chunk == b"fmt " and pos + 16 <= len(head):
            return int.from_bytes(head[pos + 12:pos + 16], "little")
        pos += 8 + size + (size & 1)
    return None


def read_audio(path: Path, spec: AudioSpec, counts: Counter, native_rate: int) -> np.ndarray:
    """Mono float64 signal of ``path`` at ``spec.sample_rate`` (repairs counted in ``counts``)."""
    sf = need("soundfile", "reading WAV files")

    try:
        data, rate = sf.read(str(path), dtype="float64", always_2d=True)
    except (RuntimeError, OSError, ValueError, TypeError) as err:
        header_rate = _wav_header_rate(path)
        if header_rate is not None and header_rate < MIN_RATE:
            raise SpikegradError(f"{path}: impossible sample rate {header_rate} Hz in the WAV header") from None
        msg = str(err).replace(str(path), "").replace("Error opening ''", "").strip(" :")
        msg = " ".join(msg.split()) or type(err).__name__
        raise SpikegradError(f"{path}: cannot read audio ({msg})") from None
    if rate < MIN_RATE:
        raise SpikegradError(f"{path}: impossible sample rate {rate} Hz (speech needs ≥ {MIN_RATE} Hz)")
    if data.shape[0] == 0:
        raise SpikegradError(f"{path}: audio is empty (0 samples)")
    if not np.all(np.isfinite(data)):
        raise SpikegradError(f"{path}: audio holds NaN or infinite samples")
    if data.shape[1] > 1:
        if spec.channels == "error":
            raise SpikegradError(f"{path}: {data.shape[1]} channels, expected mono "
                                 "(set data.audio.channels = \"mix\" to average them)")
        counts["mixed_down"] += 1
    x = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    if rate != spec.sample_rate:
        soxr = need("soxr", "resampling audio")

        counts["resampled"] += 1
        if rate != native_rate:
            counts["unexpected_rate"] += 1
        x = soxr.resample(x, rate, spec.sample_rate, quality="HQ")
        if len(x) == 0:
            raise SpikegradError(f"{path}: audio is empty after resampling {rate} Hz → {spec.sample_rate} Hz")
    return x


def file_features(path: Path, spec: AudioSpec, n_frames: int, counts: Counter, native_rate: int,
                  bank: np.ndarray | None = None) -> np.ndarray:
    """The [n_frames, n_mels] float32 features of one audio file."""
    feats, short = log_mel(read_audio(path, spec, counts, native_rate), spec, bank)
    counts["shorter_than_frame"] += int(short)
    counts["padded"] += int(len(feats) < n_frames)
    counts["cropped"] += int(len(feats) > n_frames)
    return fit_frames(feats, n_frames).astype(np.float32)


# -- layouts -------------------------------------------------------------------------------

def _missing(name: str, root: Path, what: str) -> SpikegradError:
    return files_missing(name, f"{what} not found in {root}", "with the folder in its official layout")


def _read_list(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise SpikegradError(f"cannot read {path}: {getattr(err, 'strerror', None) or err}") from None
    return [(k, line.strip()) for k, line in enumerate(text.splitlines(), 1) if line.strip()]


def read_shd_keys(path: Path) -> list[str] | None:
    """``extra/keys`` of an SHD HDF5 file as strings; None if the file has none or cannot be read."""
    h5py = need("h5py", "caching audio features")

    try:
        with h5py.File(path, "r") as f:
            if "extra/keys" not in f:
                return None
            raw = f["extra/keys"][()]
    except (OSError, KeyError, ValueError) as err:
        warnings.warn(f"rawhd: cannot read class keys from {path} ({err}); using SHD's published order",
                      stacklevel=2)
        return None
    return [k.decode("utf-8") if isinstance(k, bytes) else str(k) for k in np.atleast_1d(raw)]


def shd_class_map(keys) -> dict[tuple[str, int], int]:
    """(language, digit) → label, following an SHD key list such as :data:`SHD_KEYS`."""
    out: dict[tuple[str, int], int] = {}
    for label, key in enumerate(keys):
        word = str(key).strip().lower().replace("ü", "ue")
        if word not in _WORD_DIGIT:
            raise SpikegradError(f"SHD key {key!r} (label {label}) is not an English or German digit word")
        pair = _WORD_DIGIT[word]
        if pair in out:
            raise SpikegradError(f"SHD key list names {pair[0].capitalize()} digit {pair[1]} twice")
        out[pair] = label
    if len(out) != 20:
        raise SpikegradError(f"SHD key list has {len(out)} classes, expected 20 "
                             "(English and German digits 0–9)")
    return out


def shd_keys(root: Path) -> tuple[list[str], str]:
    """SHD's class keys from an SHD file next to the RawHD data or in the SHD folder.

    Returns (keys, source); source is the file read, or "built-in" for :data:`SHD_KEYS`.
    """
    from . import dataset_dir

    for folder in (root, dataset_dir("shd", "")):
        for fname in ("shd_train.h5", "shd_test.h5"):
            path = Path(folder) / fname
            if path.is_file():
                keys = read_shd_keys(path)
                if keys is not None:
                    return keys, str(path)
    return list(SHD_KEYS), "built-in"


@dataclass
class Layout:
    """Audio files of one data set: relative paths, labels and split (0 train, 1 val, 2 test)."""

    root: Path
    files: list[str]
    labels: np.ndarray
    split: np.ndarray
    n_classes: int


def parse_hd_name(name: str) -> tuple[str, int, int, int] | None:
    """(language, speaker, trial, digit) of a Heidelberg file name; None if it does not match."""
    m = HD_NAME.match(name)
    if m is None:
        return None
    return m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))


def rawhd_layout(root: Path) -> Layout:
    name = "rawhd"
    if not root.is_dir():
        raise _missing(name, root, "the data folder")
    audio = root / "audio"
    if not audio.is_dir():
        raise _missing(name, root, "the audio/ folder")
    keys, source = shd_keys(root)
    try:
        classes = shd_class_map(keys)
    except SpikegradError as err:
        raise SpikegradError(f"rawhd: class keys from {source}: {err}") from None
    log.info("rawhd: class order from %s", source)
    files, labels, split, seen = [], [], [], {}
    for code, list_name in ((0, "train_filenames.txt"), (2, "test_filenames.txt")):
        path = root / list_name
        if not path.is_file():
            raise _missing(name, root, list_name)
        for line_no, entry in _read_list(path):
            base = Path(entry).name
            if not Path(base).suffix:
                base += ".flac"
            parsed = parse_hd_name(base)
            if parsed is None:
                raise SpikegradError(f"{path}:{line_no}: {entry!r} does not match "
                                     "lang-{english|german}_speaker-NN_trial-N_digit-D.flac")
            if base in seen:
                raise SpikegradError(f"{path}:{line_no}: {base} is listed twice (also {seen[base]})")
            seen[base] = f"{list_name}:{line_no}"
            if not (audio / base).is_file():
                raise SpikegradError(f"{path}:{line_no}: audio file {audio / base} is missing")
            lang, _, _, digit = parsed
            files.append(f"audio/{base}")
            labels.append(classes[(lang, digit)])
            split.append(code)
    return Layout(root, files, np.asarray(labels, np.int64), np.asarray(split, np.int64), 20)


def rawsc_layout(root: Path) -> Layout:
    name = "rawsc"
    if not root.is_dir():
        raise _missing(name, root, "the data folder")
    present = {p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    for folder in sorted(present - set(SC_WORDS) - set(SC_IGNORED)):
        if any((root / folder).glob("*.wav")):
            raise SpikegradError(f"{root / folder}: folder is not one of the 35 Speech Commands words "
                                 f"({', '.join(SC_WORDS)})")
    missing = [w for w in SC_WORDS if w not in present]
    if missing:
        raise _missing(name, root, f"word folder {missing[0]!r} ({len(missing)} of 35 missing)")
    lists = {}
    for code, list_name in ((1, "validation_list.txt"), (2, "testing_list.txt")):
        path = root / list_name
        if not path.is_file():
            raise _missing(name, root, list_name)
        for line_no, entry in _read_list(path):
            rel = entry.replace("\\", "/").removeprefix("./")
            word = rel.split("/", 1)[0]
            if "/" not in rel or word not in SC_WORDS:
                raise SpikegradError(f"{path}:{line_no}: {entry!r} is not WORD/FILE.wav with one of the 35 words")
            if not (root / rel).is_file():
                raise SpikegradError(f"{path}:{line_no}: audio file {root / rel} is missing")
            if rel in lists:
                raise SpikegradError(f"{path}:{line_no}: {rel} is listed twice (also {lists[rel][1]})")
            lists[rel] = (code, f"{list_name}:{line_no}")
    files, labels, split = [], [], []
    for label, word in enumerate(SC_WORDS):
        for path in sorted((root / word).glob("*.wav")):
            rel = f"{word}/{path.name}"
            files.append(rel)
            labels.append(label)
            split.append(lists.get(rel, (0, ""))[0])
    return Layout(root, files, np.asarray(labels, np.int64), np.asarray(split, np.int64), len(SC_WORDS))


# -- features with cache ---------------------------------------------------------------------

FEATURE_FIELDS = ("sample_rate", "pre_emphasis", "frame_ms", "stride_ms", "n_fft", "n_mels",
                  "log_floor", "channels")


def cache_key(name: str, spec: AudioSpec, layout: Layout) -> str:
    """Hash of everything the features depend on: settings and each file's path/size/mtime."""
    h = hashlib.sha256()
    settings = {k: getattr(spec, k) for k in FEATURE_FIELDS}
    h.update(json.dumps({"version": CACHE_VERSION, "name": name, "frames": spec.n_frames(name),
                         "native_rate": NATIVE_RATE[name], **settings}, sort_keys=True).encode())
    for rel in layout.files:
        st = (layout.root / rel).stat()
        h.update(f"\n{rel}\t{st.st_size}\t{st.st_mtime_ns}".encode())
    return h.hexdigest()


def cache_path(name: str, root: Path, key: str) -> Path:
    return root / CACHE_FOLDER / f"{name}-{key[:20]}.npz"


def _load_cache(path: Path, key: str, files: list[str]):
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            if str(z["key"]) != key or list(z["files"]) != files:
                return None
            return z["features"], Counter(json.loads(str(z["counts"])))
    except Exception:  # a truncated or foreign file is recomputed, never trusted
        log.info("audio: ignoring unreadable cache %s", path)
        return None


def _save_cache(path: Path, key: str, files: list[str], features: np.ndarray, counts: Counter) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.savez(fh, key=np.array(key), files=np.array(files), features=features,
                     counts=np.array(json.dumps(dict(counts))))
        os.replace(tmp, path)
    except OSError as err:
        warnings.warn(f"audio: cannot write feature cache {path} ({err.strerror or err}); "
                      "features will be recomputed next time", stacklevel=3)


def _extract_chunk(name: str, root: str, files: list[str], spec: AudioSpec, n_frames: int):
    bank = mel_filterbank(spec.sample_rate, spec.n_fft, spec.n_mels)
    counts: Counter = Counter()
    out = np.empty((len(files), n_frames, spec.n_mels), dtype=np.float32)
    for k, rel in enumerate(files):
        out[k] = file_features(Path(root) / rel, spec, n_frames, counts, NATIVE_RATE[name], bank)
    return out, counts


def _extract(name: str, layout: Layout, spec: AudioSpec, n_frames: int) -> tuple[np.ndarray, Counter]:
    """Features of every file, in worker processes when there are many files."""
    n = len(layout.files)
    workers = spec.workers or (min(8, os.cpu_count() or 1) if n >= PARALLEL_FROM else 1)
    workers = max(1, min(workers, n))
    if workers == 1:
        return _extract_chunk(name, str(layout.root), layout.files, spec, n_frames)
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    log.info("%s: computing features of %d files in %d processes", name, n, workers)
    bounds = np.linspace(0, n, 4 * workers + 1).astype(int)
    chunks = [layout.files[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]
    out = np.empty((n, n_frames, spec.n_mels), dtype=np.float32)
    counts: Counter = Counter()
    # spawn, not fork: the parent may hold torch/OpenMP threads
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        start = 0
        for part, part_counts in pool.map(_extract_chunk, [name] * len(chunks), [str(layout.root)] * len(chunks),
                                          chunks, [spec] * len(chunks), [n_frames] * len(chunks)):
            out[start:start + len(part)] = part
            start += len(part)
            counts.update(part_counts)
    return out, counts


def compute_features(name: str, layout: Layout, spec: AudioSpec) -> tuple[np.ndarray, Counter, bool]:
    """Features [n_files, frames, n_mels] of a layout; returns (features, counts, from_cache)."""
    n_frames = spec.n_frames(name)
    key = path = None
    if spec.cache:
        key = cache_key(name, spec, layout)
        path = cache_path(name, layout.root, key)
        hit = _load_cache(path, key, layout.files)
        if hit is not None:
            report(name, hit[1], n_frames)
            return hit[0], hit[1], True
    out, counts = _extract(name, layout, spec, n_frames)
    counts["files"] = len(layout.files)
    if spec.cache:
        _save_cache(path, key, layout.files, out, counts)
    report(name, counts, n_frames)
    return out, counts, False


def report(name: str, counts: Counter, n_frames: int) -> None:
    """One info line with all counts; one warning line for repairs outside the routine path."""
    log.info("%s: %d files; %d resampled, %d padded to %d frames (last frame repeated), %d cropped",
             name, counts["files"], counts["resampled"], counts["padded"], n_frames, counts["cropped"])
    parts = []
    if counts["unexpected_rate"]:
        parts.append(f"{counts['unexpected_rate']} files resampled from a rate other than "
                     f"{NATIVE_RATE[name]} Hz")
    if counts["mixed_down"]:
        parts.append(f"{counts['mixed_down']} multi-channel files mixed down to mono")
    if counts["shorter_than_frame"]:
        parts.append(f"{counts['shorter_than_frame']} files shorter than one frame zero-padded")
    if parts:
        warnings.warn(f"{name}: repaired audio: {'; '.join(parts)} (see docs/DATA.md)", stacklevel=4)


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


def load(name: str, cfg: "Config") -> DataSplits:
    from . import dataset_dir

    if name not in NAMES:
        raise SpikegradError(f"audio: unknown data set {name!r}")
    spec: AudioSpec = cfg.data.audio
    n_frames = spec.n_frames(name)
    if cfg.data.n_steps > n_frames:
        raise SpikegradError(f"{name}: data.n_steps = {cfg.data.n_steps} but samples have {n_frames} frames "
                             "(data.audio.frames)")
    if not math.isclose(cfg.model.dt_ms, spec.stride_ms):
        warnings.warn(f"{name}: model.dt_ms = {cfg.model.dt_ms} but each step is one feature frame of "
                      f"{spec.stride_ms} ms; time constants are counted in steps of dt_ms", stacklevel=2)
    root = dataset_dir(name, cfg.data.dir)
    layout = rawhd_layout(root) if name == "rawhd" else rawsc_layout(root)
    features, _, _ = compute_features(name, layout, spec)

    split = layout.split.copy()
    if name == "rawhd":
        train = np.flatnonzero(split == 0)
        n_val = int(round(spec.val_fraction * len(train)))
        if spec.val_fraction > 0 and n_val == 0 and len(train) > 1:
            n_val = 1
        rng = np.random.default_rng(cfg.data.seed)
        split[np.sort(rng.permutation(train)[:n_val])] = 1

    def part(code: int, label: str) -> DenseData:
        idx = np.flatnonzero(split == code)
        return DenseData(features[idx], layout.labels[idx], layout.n_classes, f"{name}/{label}")

    return DataSplits(part(0, "train"), part(1, "val"), part(2, "test"), spec.n_mels, layout.n_classes)


__all__ = ["AudioSpec", "SHD_KEYS", "SC_WORDS", "defaults", "load", "mel_filterbank", "log_mel",
           "fit_frames", "hz_to_mel", "mel_to_hz", "shd_class_map", "shd_keys", "read_shd_keys",
           "rawhd_layout", "rawsc_layout", "compute_features", "cache_key", "cache_path"]
