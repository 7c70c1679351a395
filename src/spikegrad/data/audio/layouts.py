"""The two data-set layouts: Heidelberg Digits (RawHD, SHD's keys and class map) and
Speech Commands (RawSC); which file is which sample, label and split."""

from __future__ import annotations

import logging
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..._optional import need
from ...errors import SpikegradError

log = logging.getLogger(__name__)
from .. import files_missing

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
    h5py = need("h5py", "reading the SHD key list (HDF5)")

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
    from .. import dataset_dir

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
