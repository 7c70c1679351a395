"""RawHD / RawSC: log mel features (SCIENCE.md §4), layouts, class order, bad input, cache."""

from __future__ import annotations

import math
import struct
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import soundfile as sf
import soxr

from spikegrad import SpikegradError
from spikegrad.config import Config
from spikegrad.data import audio, dataset_defaults, dataset_timing, load_dataset
from spikegrad.data.audio import AudioSpec

# The class keys as SHD's files publish them (shd_train.h5 / shd_test.h5 `extra/keys`).
PUBLISHED_SHD_KEYS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                      "null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]
GERMAN = ["null", "eins", "zwei", "drei", "vier", "fünf", "sechs", "sieben", "acht", "neun"]


@pytest.fixture(autouse=True)
def _private_data_root(tmp_path, monkeypatch):
    """No test may see a real download (e.g. an SHD file in ~/.cache/spikegrad/shd)."""
    monkeypatch.setenv("SPIKEGRAD_DATA", str(tmp_path / "data-root"))


# -- an independent numpy implementation of SCIENCE.md §4 ---------------------------------

def htk_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0)


def htk_mel_inverse(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def band_edges(rate=16000, n_mels=40):
    top = htk_mel(rate / 2)
    return [htk_mel_inverse(top * i / (n_mels + 1)) for i in range(n_mels + 2)]


def reference_filterbank(rate=16000, n_fft=512, n_mels=40):
    edges = band_edges(rate, n_mels)
    bank = np.zeros((n_mels, n_fft // 2 + 1))
    for i in range(n_mels):
        left, centre, right = edges[i], edges[i + 1], edges[i + 2]
        for b in range(n_fft // 2 + 1):
            f = b * rate / n_fft
            if left <= f <= centre:
                bank[i, b] = (f - left) / (centre - left)
            elif centre < f <= right:
                bank[i, b] = (right - f) / (right - centre)
    return bank


def reference_features(signal, rate, n_frames, pre=0.95, floor=1e-10):
    """Read → 16 kHz → pre-emphasis → 25/10 ms Hamming frames → |FFT512|² → 40 HTK mels → log."""
    x = np.asarray(signal, dtype=np.float64)
    if x.ndim == 2:
        x = x.mean(axis=1)
    if rate != 16000:
        x = soxr.resample(x, rate, 16000, quality="HQ")
    y = np.array([x[0]] + [x[t] - pre * x[t - 1] for t in range(1, len(x))])
    width, hop = 400, 160
    if len(y) < width:
        y = np.concatenate([y, np.zeros(width - len(y))])
    window = np.array([0.54 - 0.46 * math.cos(2 * math.pi * n / (width - 1)) for n in range(width)])
    bank = reference_filterbank()
    rows = []
    for k in range(1 + (len(y) - width) // hop):
        spectrum = np.fft.fft(y[k * hop:k * hop + width] * window, 512)[:257]
        energy = bank @ (spectrum.real ** 2 + spectrum.imag ** 2)
        rows.append(np.log(np.maximum(energy, floor)))
    rows = rows[:n_frames]
    while len(rows) < n_frames:
        rows.append(rows[-1])
    return np.array(rows)


def reference_file(path, n_frames, **kw):
    data, rate = sf.read(str(path), dtype="float64")
    return reference_features(data, rate, n_frames, **kw)


# -- fake layouts ------------------------------------------------------------------------

def tone(freq, seconds, rate, amp=0.3, phase=0.0):
    t = np.arange(int(round(seconds * rate))) / rate
    return amp * np.sin(2 * np.pi * freq * t + phase)


def noise(seconds, rate, seed, amp=0.1):
    return amp * np.random.default_rng(seed).standard_normal(int(round(seconds * rate)))


def sound(k, seconds, rate):
    """A different mixture of tones and noise for each k."""
    return tone(200 + 150 * k, seconds, rate) + tone(3000 - 90 * k, seconds, rate, 0.1) + noise(seconds, rate, k, 0.02)


def hd_name(lang, speaker, trial, digit):
    return f"lang-{lang}_speaker-{speaker:02d}_trial-{trial}_digit-{digit}.flac"


def make_rawhd(root: Path, n_train=8, n_test=4, rate=48000, seconds=(0.55, 1.1)):
    """A tiny Heidelberg layout; returns {name: signal written}."""
    (root / "audio").mkdir(parents=True)
    written, lists = {}, {"train": [], "test": []}
    for k in range(n_train + n_test):
        lang = "english" if k % 2 == 0 else "german"
        name = hd_name(lang, k % 3 + (10 if k >= n_train else 0), k, k % 10)
        dur = seconds[k % len(seconds)]
        signal = sound(k, dur, rate)
        sf.write(str(root / "audio" / name), signal, rate, subtype="PCM_16")
        written[name] = signal
        lists["train" if k < n_train else "test"].append(name)
    (root / "train_filenames.txt").write_text("\n".join(lists["train"]) + "\n")
    (root / "test_filenames.txt").write_text("\n".join(lists["test"]) + "\n")
    return written


def make_rawsc(root: Path, rate=16000, seconds=0.3):
    """All 35 word folders with a train, validation and test file each, plus background noise."""
    root.mkdir(parents=True)
    val, test = [], []
    for w, word in enumerate(audio.SC_WORDS):
        (root / word).mkdir()
        for j, split in enumerate(("train", "val", "test")):
            name = f"{w:04x}{j}abc_nohash_{j}.wav"
            sf.write(str(root / word / name), sound(w + 40 * j, seconds, rate), rate, subtype="PCM_16")
            if split == "val":
                val.append(f"{word}/{name}")
            elif split == "test":
                test.append(f"{word}/{name}")
    (root / "_background_noise_").mkdir()
    sf.write(str(root / "_background_noise_" / "white.wav"), noise(1.0, rate, 99), rate)
    (root / "validation_list.txt").write_text("\n".join(val) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    (root / "LICENSE").write_text("cc-by\n")


def config(name, root, **over):
    values = {"data.name": name, "data.dir": str(root), "train.device": "cpu"}
    values.update(over)
    return Config.from_overrides(values)


def features_of(name, root, **spec):
    layout = audio.rawhd_layout(root) if name == "rawhd" else audio.rawsc_layout(root)
    feats, counts, cached = audio.compute_features(name, layout, AudioSpec(**spec))
    return layout, feats, counts, cached


@pytest.fixture
def rawhd(tmp_path):
    root = tmp_path / "rawhd"
    make_rawhd(root)
    return root


@pytest.fixture(scope="module")
def rawsc_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("sc") / "rawsc"
    make_rawsc(root)
    return root


# -- (1) features equal the numpy reference ----------------------------------------------

def test_rawhd_features_equal_reference(rawhd):
    layout, feats, counts, cached = features_of("rawhd", rawhd, cache=False)
    assert not cached and feats.shape == (12, 80, 40) and feats.dtype == np.float32
    for k, rel in enumerate(layout.files):
        np.testing.assert_allclose(feats[k], reference_file(rawhd / rel, 80), rtol=1e-5, atol=1e-5)
    assert counts["files"] == 12 and counts["resampled"] == 12 and counts["unexpected_rate"] == 0


def test_rawsc_splits_equal_reference(rawsc_root):
    splits = load_dataset(config("rawsc", rawsc_root, **{"data.audio.cache": False}))
    assert (len(splits.train), len(splits.val), len(splits.test)) == (35, 35, 35)
    assert splits.n_inputs == 40 and splits.n_classes == 35
    for j, part in enumerate((splits.train, splits.val, splits.test)):
        assert part.features.shape == (35, 100, 40)
        np.testing.assert_array_equal(part.labels, np.arange(35))
        for w in (0, 17, 34):
            word = audio.SC_WORDS[w]
            path = rawsc_root / word / f"{w:04x}{j}abc_nohash_{j}.wav"
            np.testing.assert_allclose(part.features[w], reference_file(path, 100), rtol=1e-5, atol=1e-5)


def test_filterbank_matches_htk_formula():
    np.testing.assert_allclose(audio.mel_filterbank(16000, 512, 40), reference_filterbank(), atol=1e-12)
    assert audio.hz_to_mel(1000.0) == pytest.approx(1000.0, rel=1e-3)  # HTK: 1 kHz ≈ 1000 mel


# -- (2) a pure tone lands in its band ---------------------------------------------------

@pytest.mark.parametrize("freq", [150.0, 440.0, 1000.0, 2500.0, 5300.0, 7200.0])
def test_pure_tone_peaks_in_band_containing_it(freq):
    feats, short = audio.log_mel(tone(freq, 0.5, 16000), AudioSpec())
    assert not short
    k = int(np.argmax(feats[5:-5].mean(axis=0)))
    edges = band_edges()
    assert edges[k] < freq < edges[k + 2]           # band k spans edges k..k+2
    assert abs(edges[k + 1] - freq) <= (edges[k + 2] - edges[k]) / 2  # nearest centre


# -- (3) resampling from 48 kHz ----------------------------------------------------------

def test_48khz_audio_is_resampled_to_16khz(tmp_path):
    root = tmp_path / "rawhd"
    make_rawhd(root, n_train=2, n_test=1)
    name = hd_name("english", 1, 0, 3)
    sf.write(str(root / "audio" / name), tone(1000.0, 0.6, 48000), 48000, subtype="PCM_24")
    (root / "train_filenames.txt").write_text(name + "\n" + (root / "train_filenames.txt").read_text())
    layout, feats, counts, _ = features_of("rawhd", root, cache=False)
    got = feats[layout.files.index(f"audio/{name}")]
    direct = reference_features(tone(1000.0, 0.6, 16000), 16000, 80)
    # 0.6 s at 16 kHz: 1 + (9600 − 400) // 160 = 58 frames, then the last one repeated
    assert np.all(got[58:] == got[57])
    assert not np.all(got[57] == got[56])
    assert np.abs(got[2:56] - direct[2:56]).max() < 0.05
    band = int(np.argmax(got[10]))
    assert band_edges()[band] < 1000.0 < band_edges()[band + 2]
    assert counts["resampled"] == 4 and counts["unexpected_rate"] == 0


def test_other_sample_rate_is_resampled_and_reported(tmp_path):
    root = tmp_path / "rawsc"
    make_rawsc(root)
    path = root / "yes" / audio_file(root, "yes")
    sf.write(str(path), sound(3, 0.4, 22050), 22050)
    with pytest.warns(UserWarning, match="1 files resampled from a rate other than 16000 Hz"):
        layout, feats, counts, _ = features_of("rawsc", root, cache=False)
    np.testing.assert_allclose(feats[layout.files.index(f"yes/{path.name}")], reference_file(path, 100),
                               rtol=1e-5, atol=1e-5)
    assert counts["resampled"] == 1 and counts["unexpected_rate"] == 1


def audio_file(root, word, index=0):
    return sorted(p.name for p in (root / word).glob("*.wav"))[index]


# -- (4) crop and pad --------------------------------------------------------------------

def test_fit_frames_crops_and_repeats_last_frame():
    x = np.arange(12, dtype=float).reshape(6, 2)
    np.testing.assert_array_equal(audio.fit_frames(x, 4), x[:4])
    np.testing.assert_array_equal(audio.fit_frames(x, 6), x)
    padded = audio.fit_frames(x, 9)
    np.testing.assert_array_equal(padded[:6], x)
    np.testing.assert_array_equal(padded[6:], np.repeat(x[-1:], 3, axis=0))


def test_long_audio_cropped_short_audio_padded(tmp_path):
    root = tmp_path / "rawhd"
    make_rawhd(root, n_train=2, n_test=2, seconds=(0.3, 1.5))
    layout, feats, counts, _ = features_of("rawhd", root, cache=False)
    # 0.3 s → 28 frames (padded), 1.5 s → 148 frames (cropped to the first 80)
    assert counts["padded"] == 2 and counts["cropped"] == 2
    for k, rel in enumerate(layout.files):
        data, rate = sf.read(str(root / rel))
        full = reference_features(data, rate, 1000)
        n = 28 if len(data) / rate < 1 else 148
        assert np.all(full[n:] == full[n - 1])
        np.testing.assert_allclose(feats[k], full[:80], rtol=1e-5, atol=1e-5)
    _, feats50, _, _ = features_of("rawhd", root, cache=False, frames=50)
    assert feats50.shape[1] == 50
    np.testing.assert_array_equal(feats50, feats[:, :50])


def test_n_steps_longer_than_frames_is_an_error(rawhd):
    with pytest.raises(SpikegradError, match="n_steps = 120 but samples have 80 frames"):
        load_dataset(config("rawhd", rawhd, **{"data.n_steps": 120}))


# -- (5) class order shared with SHD -----------------------------------------------------

def write_shd(path: Path, keys):
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("labels", data=np.zeros(1, np.uint16))
        f.create_dataset("extra/keys", data=np.array([k.encode("utf-8") for k in keys]))


def hd_labels(root):
    layout = audio.rawhd_layout(root)
    return {Path(rel).name: int(label) for rel, label in zip(layout.files, layout.labels)}


def expected_labels(root, keys):
    words = {("english", d): w for d, w in enumerate(PUBLISHED_SHD_KEYS[:10])}
    words.update({("german", d): w for d, w in enumerate(GERMAN)})
    out = {}
    for name in (root / "audio").iterdir():
        lang, _, _, digit = audio.parse_hd_name(name.name)
        out[name.name] = list(keys).index(words[(lang, digit)])
    return out


def test_fallback_order_equals_published_shd_keys():
    assert list(audio.SHD_KEYS) == PUBLISHED_SHD_KEYS
    mapping = audio.shd_class_map(audio.SHD_KEYS)
    assert mapping == {**{("english", d): d for d in range(10)}, **{("german", d): 10 + d for d in range(10)}}


def test_labels_follow_shd_keys_in_same_folder(rawhd):
    assert hd_labels(rawhd) == expected_labels(rawhd, PUBLISHED_SHD_KEYS)  # no SHD file: built-in
    shuffled = GERMAN + PUBLISHED_SHD_KEYS[:10]
    shuffled[5], shuffled[6] = "sechs", "fuenf"  # another spelling, another order
    write_shd(rawhd / "shd_train.h5", shuffled)
    labels = hd_labels(rawhd)
    assert labels == expected_labels(rawhd, [k if k != "fuenf" else "fünf" for k in shuffled])
    assert labels[hd_name("english", 0, 0, 0)] == 10


def test_labels_follow_shd_keys_in_shd_folder(rawhd, tmp_path):
    keys = list(reversed(PUBLISHED_SHD_KEYS))
    write_shd(tmp_path / "data-root" / "shd" / "shd_test.h5", keys)
    assert hd_labels(rawhd) == expected_labels(rawhd, keys)


def test_published_shd_file_gives_builtin_labels(rawhd):
    builtin = hd_labels(rawhd)
    write_shd(rawhd / "shd_train.h5", PUBLISHED_SHD_KEYS)
    assert hd_labels(rawhd) == builtin


@pytest.mark.parametrize("keys, match", [
    (PUBLISHED_SHD_KEYS[:19], "19 classes, expected 20"),
    (PUBLISHED_SHD_KEYS[:19] + ["zero"], "English digit 0 twice"),
    (PUBLISHED_SHD_KEYS[:19] + ["ten"], "'ten'"),
])
def test_bad_shd_key_list_is_an_error_naming_the_file(rawhd, keys, match):
    write_shd(rawhd / "shd_train.h5", keys)
    with pytest.raises(SpikegradError, match=match) as err:
        audio.rawhd_layout(rawhd)
    assert "shd_train.h5" in str(err.value)


# -- (6) bad input ------------------------------------------------------------------------

def one_line(err) -> str:
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize("name", ["rawhd", "rawsc"])
def test_missing_data_folder(tmp_path, name):
    with pytest.raises(SpikegradError, match=f"spikegrad data download {name}") as err:
        load_dataset(config(name, tmp_path / "nowhere"))
    assert "--data-dir" in one_line(err)


@pytest.mark.parametrize("victim", ["audio", "train_filenames.txt", "test_filenames.txt"])
def test_rawhd_missing_part(rawhd, victim):
    path = rawhd / victim
    if path.is_dir():
        for p in path.iterdir():
            p.unlink()
        path.rmdir()
    else:
        path.unlink()
    with pytest.raises(SpikegradError, match=f"{victim}.*spikegrad data download rawhd") as err:
        load_dataset(config("rawhd", rawhd))
    one_line(err)


@pytest.mark.parametrize("victim", ["validation_list.txt", "testing_list.txt", "zero"])
def test_rawsc_missing_part(tmp_path, victim):
    root = tmp_path / "rawsc"
    make_rawsc(root)
    path = root / victim
    if path.is_dir():
        for p in path.iterdir():
            p.unlink()
        path.rmdir()
    else:
        path.unlink()
    with pytest.raises(SpikegradError, match=f"{victim}.*spikegrad data download rawsc") as err:
        load_dataset(config("rawsc", root))
    one_line(err)


def test_rawhd_list_naming_missing_audio(rawhd):
    name = hd_name("german", 3, 0, 4)
    with open(rawhd / "test_filenames.txt", "a") as fh:
        fh.write(name + "\n")
    with pytest.raises(SpikegradError, match=f"test_filenames.txt:5: audio file .*{name} is missing") as err:
        audio.rawhd_layout(rawhd)
    one_line(err)


def test_rawsc_list_naming_missing_audio(tmp_path):
    root = tmp_path / "rawsc"
    make_rawsc(root)
    with open(root / "testing_list.txt", "a") as fh:
        fh.write("yes/ffff_nohash_0.wav\n")
    with pytest.raises(SpikegradError, match="testing_list.txt:36: audio file .*ffff_nohash_0.wav is missing"):
        audio.rawsc_layout(root)


@pytest.mark.parametrize("entry", ["foo.flac", "lang-french_speaker-01_trial-0_digit-1.flac",
                                   "lang-english_speaker-01_trial-0_digit-12.flac",
                                   "lang-english_speaker-01_digit-1.flac"])
def test_rawhd_name_not_matching_scheme(rawhd, entry):
    (rawhd / "audio" / entry).write_bytes(b"")
    with open(rawhd / "train_filenames.txt", "a") as fh:
        fh.write(entry + "\n")
    with pytest.raises(SpikegradError, match="train_filenames.txt:9: .* does not match lang-") as err:
        audio.rawhd_layout(rawhd)
    assert entry in one_line(err)


def test_rawhd_names_without_extension_are_accepted(rawhd):
    before = hd_labels(rawhd)
    lines = (rawhd / "train_filenames.txt").read_text().splitlines()
    (rawhd / "train_filenames.txt").write_text("\n".join(n.removesuffix(".flac") for n in lines) + "\n")
    assert hd_labels(rawhd) == before


def test_file_listed_in_train_and_test_is_an_error(rawhd):
    first = (rawhd / "train_filenames.txt").read_text().splitlines()[0]
    with open(rawhd / "test_filenames.txt", "a") as fh:
        fh.write(first + "\n")
    with pytest.raises(SpikegradError, match="listed twice"):
        audio.rawhd_layout(rawhd)


def test_rawsc_file_in_both_lists_is_an_error(tmp_path):
    root = tmp_path / "rawsc"
    make_rawsc(root)
    first = (root / "validation_list.txt").read_text().splitlines()[0]
    with open(root / "testing_list.txt", "a") as fh:
        fh.write(first + "\n")
    with pytest.raises(SpikegradError, match="listed twice"):
        audio.rawsc_layout(root)


def test_rawsc_unknown_word(tmp_path):
    root = tmp_path / "rawsc"
    make_rawsc(root)
    with open(root / "validation_list.txt", "a") as fh:
        fh.write("banana/abc_nohash_0.wav\n")
    with pytest.raises(SpikegradError, match="validation_list.txt:36: 'banana/abc_nohash_0.wav' is not WORD"):
        audio.rawsc_layout(root)
    (root / "validation_list.txt").write_text("\n".join((root / "validation_list.txt").read_text().splitlines()[:-1]))
    (root / "banana").mkdir()
    sf.write(str(root / "banana" / "a.wav"), noise(0.1, 16000, 0), 16000)
    with pytest.raises(SpikegradError, match="banana: folder is not one of the 35"):
        audio.rawsc_layout(root)


def replace_first_hd_file(root: Path, writer) -> Path:
    name = (root / "train_filenames.txt").read_text().splitlines()[0]
    path = root / "audio" / name
    writer(path)
    return path


def test_corrupt_audio_names_the_file(rawhd):
    path = replace_first_hd_file(rawhd, lambda p: p.write_bytes(b"this is not audio" * 20))
    with pytest.raises(SpikegradError, match="cannot read audio") as err:
        load_dataset(config("rawhd", rawhd))
    assert str(path) in one_line(err)


def test_zero_byte_file_names_the_file(rawhd):
    path = replace_first_hd_file(rawhd, lambda p: p.write_bytes(b""))
    with pytest.raises(SpikegradError, match="cannot read audio") as err:
        load_dataset(config("rawhd", rawhd))
    assert str(path) in one_line(err)


def test_empty_audio_is_an_error(rawhd):
    path = replace_first_hd_file(rawhd, lambda p: sf.write(str(p), np.zeros(0), 48000, format="WAV"))
    with pytest.raises(SpikegradError, match="audio is empty") as err:
        load_dataset(config("rawhd", rawhd))
    assert str(path) in one_line(err)


def test_sample_rate_zero_is_an_error(tmp_path):
    root = tmp_path / "rawsc"
    make_rawsc(root)
    path = root / "go" / audio_file(root, "go")
    raw = bytearray(path.read_bytes())
    assert raw[:4] == b"RIFF" and raw[12:16] == b"fmt "
    raw[24:28] = struct.pack("<I", 0)   # sample rate
    raw[28:32] = struct.pack("<I", 0)   # byte rate
    path.write_bytes(bytes(raw))
    with pytest.raises(SpikegradError, match="impossible sample rate 0 Hz") as err:
        load_dataset(config("rawsc", root))
    assert str(path) in one_line(err)


def test_nan_samples_are_an_error(tmp_path):
    root = tmp_path / "rawsc"
    make_rawsc(root)
    path = root / "go" / audio_file(root, "go")
    signal = sound(1, 0.3, 16000)
    signal[100] = np.nan
    sf.write(str(path), signal, 16000, subtype="FLOAT")
    with pytest.raises(SpikegradError, match="NaN or infinite") as err:
        audio.compute_features("rawsc", audio.rawsc_layout(root), AudioSpec(cache=False))
    assert str(path) in one_line(err)


def test_stereo_is_mixed_down_and_counted_or_refused(rawhd):
    stereo = np.stack([sound(1, 0.5, 48000), tone(2000, 0.5, 48000)], axis=1)
    path = replace_first_hd_file(rawhd, lambda p: sf.write(str(p), stereo, 48000, subtype="PCM_24"))
    with pytest.warns(UserWarning, match="1 multi-channel files mixed down to mono"):
        layout, feats, counts, _ = features_of("rawhd", rawhd, cache=False)
    assert counts["mixed_down"] == 1
    np.testing.assert_allclose(feats[layout.files.index(f"audio/{path.name}")], reference_file(path, 80),
                               rtol=1e-5, atol=1e-5)
    with pytest.raises(SpikegradError, match="2 channels, expected mono") as err:
        features_of("rawhd", rawhd, cache=False, channels="error")
    assert str(path) in one_line(err)


def test_shorter_than_one_frame_is_zero_padded_and_counted(rawhd):
    short = sound(2, 200 / 16000, 48000)    # 200 samples at 16 kHz: half a frame
    path = replace_first_hd_file(rawhd, lambda p: sf.write(str(p), short, 48000, subtype="PCM_16"))
    with pytest.warns(UserWarning, match="1 files shorter than one frame zero-padded"):
        layout, feats, counts, _ = features_of("rawhd", rawhd, cache=False)
    got = feats[layout.files.index(f"audio/{path.name}")]
    assert np.all(got == got[0])          # one frame, repeated 80 times
    np.testing.assert_allclose(got, reference_file(path, 80), rtol=1e-5, atol=1e-5)
    assert counts["shorter_than_frame"] == 1 and counts["padded"] >= 1


@pytest.mark.parametrize("field, value, match", [
    ("sample_rate", 0, "sample_rate"), ("pre_emphasis", 1.0, "pre_emphasis"), ("frame_ms", 0.0, "frame_ms"),
    ("frame_ms", 40.0, "more than n_fft"), ("n_mels", 0, "n_mels"), ("frames", -1, "frames"),
    ("val_fraction", 1.0, "val_fraction"), ("log_floor", 0.0, "log_floor"), ("channels", "left", "channels"),
    ("workers", -1, "workers"), ("n_mels", 200, "covers no FFT bin"),
])
def test_impossible_audio_settings(field, value, match):
    with pytest.raises(SpikegradError, match=match):
        AudioSpec(**{field: value})
    with pytest.raises(SpikegradError, match=match):
        Config.from_overrides({"data.name": "rawhd", f"data.audio.{field}": value})


def test_too_many_mel_filters_for_the_fft_is_an_error():
    with pytest.raises(SpikegradError, match="covers no FFT bin"):
        audio.mel_filterbank(16000, 512, 200)


# -- (7) cache -----------------------------------------------------------------------------

def test_cache_hit_and_invalidation(rawhd, monkeypatch):
    layout, first, _, cached = features_of("rawhd", rawhd)
    assert not cached
    files = list((rawhd / audio.CACHE_FOLDER).glob("rawhd-*.npz"))
    assert len(files) == 1

    def no_reading(*args, **kwargs):
        raise AssertionError("audio was read although the cache matches")

    with monkeypatch.context() as m:
        m.setattr(audio.features, "read_audio", no_reading)     # where file_features looks it up
        _, again, _, cached = features_of("rawhd", rawhd)
        assert cached
        np.testing.assert_array_equal(again, first)
        splits = load_dataset(config("rawhd", rawhd))        # the public path hits it too
        assert len(splits.train) + len(splits.val) + len(splits.test) == 12

    _, other, _, cached = features_of("rawhd", rawhd, pre_emphasis=0.9)   # spec change
    assert not cached and not np.allclose(other, first)
    _, longer, _, cached = features_of("rawhd", rawhd, frames=90)
    assert not cached and longer.shape[1] == 90
    _, same, _, cached = features_of("rawhd", rawhd, val_fraction=0.3)    # split only: same features
    assert cached

    path = rawhd / layout.files[0]                                        # audio changed
    sf.write(str(path), tone(700.0, 0.9, 48000), 48000, subtype="PCM_16")
    _, changed, _, cached = features_of("rawhd", rawhd)
    assert not cached
    np.testing.assert_allclose(changed[0], reference_file(path, 80), rtol=1e-5, atol=1e-5)


def test_cache_with_wrong_content_is_recomputed(rawhd):
    spec = AudioSpec()
    layout = audio.rawhd_layout(rawhd)
    key = audio.cache_key("rawhd", spec, layout)
    path = audio.cache_path("rawhd", rawhd, key)
    path.parent.mkdir()
    bogus = np.zeros((len(layout.files), 80, 40), np.float32)
    np.savez(path, key=np.array("0" * 64), files=np.array(layout.files), features=bogus, counts=np.array("{}"))
    feats, _, cached = audio.compute_features("rawhd", layout, spec)
    assert not cached and not np.all(feats == 0)
    path.write_bytes(b"truncated")
    feats2, _, cached = audio.compute_features("rawhd", layout, spec)
    assert not cached
    np.testing.assert_array_equal(feats2, feats)
    assert audio.compute_features("rawhd", layout, spec)[2]               # now written properly


def test_cache_off_writes_nothing(rawhd):
    features_of("rawhd", rawhd, cache=False)
    assert not (rawhd / audio.CACHE_FOLDER).exists()


# -- splits, defaults, training ----------------------------------------------------------

def test_rawhd_validation_split_is_seeded(rawhd):
    def split_of(seed, fraction=0.25):
        splits = load_dataset(config("rawhd", rawhd, **{"data.seed": seed, "data.audio.val_fraction": fraction}))
        return splits

    a, b, c = split_of(1), split_of(1), split_of(2)
    assert (len(a.train), len(a.val), len(a.test)) == (6, 2, 4)
    np.testing.assert_array_equal(a.val.features, b.val.features)
    assert not np.array_equal(a.val.features, c.val.features) or not np.array_equal(a.val.labels, c.val.labels)
    assert a.n_inputs == 40 and a.n_classes == 20
    test_names = (rawhd / "test_filenames.txt").read_text().split()
    expected = [reference_file(rawhd / "audio" / n, 80) for n in test_names]
    np.testing.assert_allclose(a.test.features, np.array(expected), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name, steps", [("rawhd", 80), ("rawsc", 100)])
def test_defaults_one_step_per_frame(name, steps):
    d = dataset_defaults(name)
    assert dataset_timing(name) == (steps, 10.0) and d["model.hidden"]
    cfg = Config.from_overrides({"data.name": name})
    assert cfg.model.dt_ms == 10.0 and cfg.data.n_steps == steps


def test_dt_other_than_stride_warns(rawhd):
    with pytest.warns(UserWarning, match="one feature frame of 10.0 ms"):
        load_dataset(config("rawhd", rawhd, **{"model.dt_ms": 1.0}))


def test_train_one_epoch_on_tiny_rawhd(rawhd, tmp_path):
    import spikegrad

    cfg = config("rawhd", rawhd, **{"model.hidden": [16], "train.epochs": 1, "train.batch_size": 4,
                                    "data.audio.val_fraction": 0.25})
    with warnings.catch_warnings():
        warnings.simplefilter("error")      # the routine 48 kHz → 16 kHz path warns about nothing
        metrics = spikegrad.train(cfg, out_dir=tmp_path / "run")
    for key in ("test_accuracy", "val_accuracy", "train_accuracy", "test_loss"):
        assert math.isfinite(metrics[key]), key
    assert metrics["epochs"] == 1 and not metrics["diverged"]
    assert (tmp_path / "run" / "metrics.json").is_file()


def test_implausibly_low_sample_rate_is_an_error(tmp_path):
    root = tmp_path / "rawsc"
    make_rawsc(root)
    path = root / "go" / audio_file(root, "go")
    sf.write(str(path), noise(1.0, 500, 3), 500)
    with pytest.raises(SpikegradError, match="impossible sample rate 500 Hz") as err:
        audio.compute_features("rawsc", audio.rawsc_layout(root), AudioSpec(cache=False))
    assert str(path) in one_line(err)


def test_worker_processes_give_the_same_features_and_errors(rawsc_root, tmp_path):
    layout = audio.rawsc_layout(rawsc_root)
    serial, counts1, _ = audio.compute_features("rawsc", layout, AudioSpec(cache=False, workers=1))
    parallel, counts2, _ = audio.compute_features("rawsc", layout, AudioSpec(cache=False, workers=2))
    np.testing.assert_array_equal(parallel, serial)
    assert counts1 == counts2

    root = tmp_path / "rawsc"
    make_rawsc(root)
    path = root / "up" / audio_file(root, "up")
    path.write_bytes(b"garbage" * 30)
    with pytest.raises(SpikegradError, match="cannot read audio") as err:
        audio.compute_features("rawsc", audio.rawsc_layout(root), AudioSpec(cache=False, workers=2))
    assert str(path) in one_line(err)


def test_unreadable_shd_file_falls_back_with_a_warning(rawhd):
    builtin = hd_labels(rawhd)
    (rawhd / "shd_train.h5").write_bytes(b"not hdf5")
    with pytest.warns(UserWarning, match="cannot read class keys from .*shd_train.h5"):
        assert hd_labels(rawhd) == builtin
