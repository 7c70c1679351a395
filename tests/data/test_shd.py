"""SHD / SSC loader (SCIENCE.md §4; docs/DATA.md "SHD / SSC"): files in the official
HDF5 layout, validation splits, binning at model.dt_ms, and every bad-input case."""

from __future__ import annotations

import logging
import math
import re
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikegrad import SpikegradError, train
from spikegrad.config import Config
from spikegrad.data import EventData, dataset_defaults, load_dataset
from spikegrad.data.shd import N_UNITS, ShdSpec
from spikegrad.kernels.events import EventBatch
from spikegrad.training import iterate_batches

# like the published files: English then German digit words (byte strings on disk)
SHD_KEYS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "null", "eins", "zwei", "drei", "vier", "fuenf", "sechs", "sieben", "acht", "neun"]
SSC_KEYS = [f"word-{k}" for k in range(35)]


# -- writing files in the official layout ------------------------------------------------
def make_samples(seed: int, n: int, n_classes: int, n_speakers: int = 5, t_max: float = 1.2):
    """Random samples; sample k's first event is on unit k % 700 (identifies it) at t = 0."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    for k in range(n):
        m = int(rng.integers(1, 40))
        t = np.concatenate([[0.0], rng.uniform(0.0, t_max, size=m - 1)])
        u = np.concatenate([[k % N_UNITS], rng.integers(0, N_UNITS, size=m - 1)])
        times.append(t)
        units.append(u)
    labels = np.arange(n) % n_classes
    speakers = rng.integers(0, n_speakers, size=n)
    return {"times": times, "units": units, "labels": labels, "speakers": speakers}


def write_h5(path: Path, times, units, labels, speakers=None, keys=None, *, t_dtype=np.float16,
             u_dtype=np.uint16, skip=(), label_dtype=np.uint8):
    """A file laid out like Cramer et al.'s (vlen spikes/times, spikes/units; labels; extra/)."""
    with h5py.File(path, "w") as f:
        if "spikes/times" not in skip:
            ds = f.create_dataset("spikes/times", (len(times),), dtype=h5py.vlen_dtype(t_dtype))
            for i, t in enumerate(times):
                ds[i] = np.asarray(t, t_dtype)
        if "spikes/units" not in skip:
            ds = f.create_dataset("spikes/units", (len(units),), dtype=h5py.vlen_dtype(u_dtype))
            for i, u in enumerate(units):
                ds[i] = np.asarray(u, u_dtype)
        if "labels" not in skip:
            f.create_dataset("labels", data=np.asarray(labels, label_dtype))
        if speakers is not None and "extra/speaker" not in skip:
            f.create_dataset("extra/speaker", data=np.asarray(speakers, np.uint16))
        if keys is not None and "extra/keys" not in skip:
            f.create_dataset("extra/keys", data=np.array([k.encode() for k in keys]))


def write_sample_set(path: Path, s: dict, keys, **kw):
    write_h5(path, s["times"], s["units"], s["labels"], s["speakers"], keys, **kw)


@pytest.fixture
def shd_dir(tmp_path):
    """A small SHD folder: 60 training and 20 test samples."""
    folder = tmp_path / "shd"
    folder.mkdir()
    train_s, test_s = make_samples(0, 60, 20), make_samples(1, 20, 20)
    write_sample_set(folder / "shd_train.h5", train_s, SHD_KEYS)
    write_sample_set(folder / "shd_test.h5", test_s, SHD_KEYS)
    return folder, train_s, test_s


@pytest.fixture
def ssc_dir(tmp_path):
    folder = tmp_path / "ssc"
    folder.mkdir()
    parts = {"train": make_samples(2, 70, 35), "valid": make_samples(3, 35, 35), "test": make_samples(4, 35, 35)}
    for split, s in parts.items():
        write_sample_set(folder / f"ssc_{split}.h5", s, SSC_KEYS)
    return folder, parts


def cfg_for(folder: Path, name: str = "shd", **extra) -> Config:
    return Config.from_overrides({"data.name": name, "data.dir": str(folder), **extra})


def load(folder: Path, name: str = "shd", **extra):
    return load_dataset(cfg_for(folder, name, **extra))


def f16(t) -> np.ndarray:
    """What a float16 file holds, as the loader keeps it (float32, exact)."""
    return np.asarray(t, np.float16).astype(np.float32)


def sample_events(data: EventData, k: int):
    lo, hi = data.offsets[k], data.offsets[k + 1]
    return data.times[lo:hi], data.units[lo:hi]


def assert_matches_file(data: EventData, s: dict, index):
    """Sample j of ``data`` is sample index[j] of the written set (events in file order)."""
    assert len(data) == len(index)
    np.testing.assert_array_equal(data.labels, np.asarray(s["labels"])[index])
    for j, k in enumerate(index):
        t, u = sample_events(data, j)
        np.testing.assert_array_equal(t, f16(s["times"][k]))
        np.testing.assert_array_equal(u, s["units"][k])


def expect_error(pattern: str, folder: Path, name: str = "shd", **extra) -> str:
    with pytest.raises(SpikegradError) as info:
        load(folder, name, **extra)
    message = str(info.value)
    assert "\n" not in message
    assert re.search(pattern, message), message
    return message


# -- defaults ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["shd", "ssc"])
def test_defaults_are_picked_up_and_binning_matches_dt(name):
    cfg = Config.from_overrides({"data.name": name})
    assert cfg.data.n_steps == 100 and cfg.model.dt_ms == 10.0
    assert cfg.data.n_steps * cfg.model.dt_ms == pytest.approx(1000.0)  # 1 s window
    assert cfg.model.hidden == [128] and cfg.model.recurrent is True
    assert cfg.train.epochs == dataset_defaults(name)["train.epochs"]
    assert cfg.train.batch_size == dataset_defaults(name)["train.batch_size"]
    # the user's values win over the data set's
    mine = Config.from_overrides({"data.name": name, "model.dt_ms": 4.0, "data.n_steps": 250})
    assert mine.model.dt_ms == 4.0 and mine.data.n_steps == 250
    # defaults() returns fresh objects
    dataset_defaults(name)["model.hidden"].append(1)
    assert dataset_defaults(name)["model.hidden"] == [128]


def test_batches_are_binned_at_model_dt(tmp_path):
    folder = tmp_path / "shd"
    folder.mkdir()
    # t = 25 ms on unit 3, t = 995 ms on unit 5, t = 1.2 s on unit 7 (past the 1 s window)
    times = [np.array([0.025, 0.995, 1.2])] * 2
    units = [np.array([3, 5, 7])] * 2
    write_h5(folder / "shd_train.h5", times, units, [0, 1], [0, 1], t_dtype=np.float64)
    write_h5(folder / "shd_test.h5", times[:1], units[:1], [0], [0], t_dtype=np.float64)
    cfg = cfg_for(folder)
    splits = load_dataset(cfg)
    ev, y = next(iterate_batches(splits.test, cfg, 10))
    assert isinstance(ev, EventBatch) and ev.shape == (1, 100, N_UNITS) and ev.nnz == 2
    x = ev.to_dense()
    assert x[0, 2, 3] == 1 and x[0, 99, 5] == 1 and x.sum() == 2  # bins floor(t / 10 ms)
    assert splits.info["events_past_window"] == {"train": 1, "val": 1, "test": 1}
    # with Δt = 5 ms the 25 ms event lands in bin 5 and the window is 0.5 s
    cfg5 = cfg_for(folder, **{"model.dt_ms": 5.0})
    x5 = next(iterate_batches(load_dataset(cfg5).test, cfg5, 10))[0].to_dense()
    assert x5[0, 5, 3] == 1 and x5.sum() == 1


# -- clean files ---------------------------------------------------------------------------
def test_shd_events_labels_and_random_split(shd_dir):
    folder, train_s, test_s = shd_dir
    splits = load(folder)
    assert splits.n_inputs == N_UNITS == 700 and splits.n_classes == 20
    assert (len(splits.train), len(splits.val), len(splits.test)) == (54, 6, 20)
    assert splits.train.name == "shd/train" and splits.val.name == "shd/val" and splits.test.name == "shd/test"
    assert splits.train.n_units == 700 and splits.test.n_classes == 20
    info = splits.info
    tr, va = info["train_index"], info["val_index"]
    assert set(tr).isdisjoint(va) and sorted(set(tr) | set(va)) == list(range(60))
    assert_matches_file(splits.train, train_s, tr)
    assert_matches_file(splits.val, train_s, va)
    assert_matches_file(splits.test, test_s, range(20))  # test: the whole file, in order
    assert info["split"] == {"val_by": "random", "val_fraction": 0.1, "seed": 1}
    assert info["classes"] == SHD_KEYS
    assert info["repairs"] == {}
    assert info["empty_samples"] == {"train": 0, "val": 0, "test": 0}
    assert info["files"]["test"].endswith("shd_test.h5")
    assert splits.train.times.dtype == np.float32  # float16 on disk, exact in float32


def test_split_is_seeded_and_fraction_respected(shd_dir):
    folder, _, _ = shd_dir
    a, b = load(folder), load(folder)
    np.testing.assert_array_equal(a.info["val_index"], b.info["val_index"])
    np.testing.assert_array_equal(a.train.times, b.train.times)
    c = load(folder, **{"data.seed": 2})
    assert not np.array_equal(a.info["val_index"], c.info["val_index"])
    np.testing.assert_array_equal(a.test.times, c.test.times)  # the test split never changes
    d = load(folder, **{"data.shd.val_fraction": 0.25})
    assert len(d.val) == 15 and len(d.train) == 45


def test_speaker_split_holds_out_whole_speakers(shd_dir):
    folder, train_s, _ = shd_dir
    spk = train_s["speakers"]
    for seed in (1, 2, 3):
        splits = load(folder, **{"data.shd.val_by": "speaker", "data.seed": seed, "data.shd.val_fraction": 0.3})
        info = splits.info
        held = set(info["split"]["val_speakers"])
        train_speakers = set(spk[info["train_index"]].tolist())
        val_speakers = set(spk[info["val_index"]].tolist())
        assert val_speakers == held and held and train_speakers
        assert train_speakers.isdisjoint(val_speakers)
        assert len(splits.val) >= 0.3 * 60 and len(splits.train) + len(splits.val) == 60
        assert_matches_file(splits.val, train_s, info["val_index"])
    again = load(folder, **{"data.shd.val_by": "speaker", "data.seed": 3, "data.shd.val_fraction": 0.3})
    assert again.info["split"]["val_speakers"] == info["split"]["val_speakers"]


def test_ssc_uses_its_validation_file(ssc_dir):
    folder, parts = ssc_dir
    splits = load(folder, "ssc")
    assert splits.n_classes == 35 and splits.n_inputs == 700
    assert_matches_file(splits.train, parts["train"], range(70))  # nothing carved off
    assert_matches_file(splits.val, parts["valid"], range(35))
    assert_matches_file(splits.test, parts["test"], range(35))
    assert splits.info["split"] == {"val_by": "file"}
    assert splits.info["classes"] == SSC_KEYS
    assert splits.val.name == "ssc/val"


def test_empty_samples_are_valid_data(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    s = make_samples(5, 10, 20)
    s["times"][3], s["units"][3] = np.zeros(0), np.zeros(0, np.int64)
    write_sample_set(folder / "shd_train.h5", s, SHD_KEYS)
    write_sample_set(folder / "shd_test.h5", s, SHD_KEYS)
    splits = load(folder)
    assert len(splits.test) == 10 and splits.info["empty_samples"]["test"] == 1
    assert splits.test.offsets[3] == splits.test.offsets[4]
    raster, dropped = splits.test.raster([3], 100, 0.01)
    assert raster.sum() == 0 and dropped == 0
    assert_matches_file(splits.test, s, range(10))


def test_events_past_the_window_are_counted_and_logged(shd_dir, caplog):
    folder, train_s, test_s = shd_dir
    with caplog.at_level(logging.INFO, logger="spikegrad.data.shd"):
        splits = load(folder, **{"data.n_steps": 50})  # 0.5 s window; samples reach 1.2 s
    late = sum(int(np.sum(np.floor(f16(t).astype(np.float64) / 0.01) >= 50)) for t in test_s["times"])
    assert late > 0 and splits.info["events_past_window"]["test"] == late
    _, dropped = splits.test.raster(np.arange(20), 50, 0.01)
    assert dropped == late
    assert any("shd/test" in r.getMessage() and "dropped at binning" in r.getMessage() for r in caplog.records)


def test_float64_files_keep_float64_times(tmp_path):
    folder = tmp_path / "d"
    folder.mkdir()
    s = make_samples(6, 8, 20)
    write_sample_set(folder / "shd_train.h5", s, None, t_dtype=np.float64, u_dtype=np.int32)
    write_sample_set(folder / "shd_test.h5", s, None, t_dtype=np.float64, u_dtype=np.int32)
    splits = load(folder)
    assert splits.test.times.dtype == np.float64
    np.testing.assert_array_equal(splits.test.times[: len(s["times"][0])], s["times"][0])
    assert splits.info["classes"] is None  # extra/keys is optional


# -- bad input: one test per row of docs/DATA.md's table ---------------------------------------
@pytest.mark.parametrize("name,present", [("shd", ["shd_train.h5"]), ("ssc", ["ssc_train.h5", "ssc_test.h5"])])
def test_missing_file(tmp_path, name, present):
    for fname in present:
        (tmp_path / fname).write_bytes(b"")
    message = expect_error("download", tmp_path, name)
    missing = {"shd": "shd_test.h5", "ssc": "ssc_valid.h5"}[name]
    assert str(tmp_path / missing) in message
    assert f"spikegrad data download {name}" in message and "--data-dir" in message
    for fname in present:
        assert str(tmp_path / fname) not in message


def test_missing_folder_names_it(tmp_path):
    message = expect_error("download", tmp_path / "nowhere")
    assert str(tmp_path / "nowhere" / "shd_train.h5") in message


@pytest.mark.parametrize("how", ["truncated", "garbage"])
def test_corrupt_hdf5(shd_dir, how):
    folder, _, _ = shd_dir
    path = folder / "shd_test.h5"
    if how == "truncated":
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    else:
        path.write_bytes(b"this is not an HDF5 file\n" * 100)
    message = expect_error("cannot read HDF5", folder)
    assert str(path) in message


@pytest.mark.parametrize("key", ["spikes/times", "spikes/units", "labels"])
def test_missing_dataset(shd_dir, key):
    folder, train_s, _ = shd_dir
    path = folder / "shd_train.h5"
    write_sample_set(path, train_s, SHD_KEYS, skip=(key,))
    message = expect_error(f"missing dataset {key}", folder)
    assert str(path) in message


def test_missing_speakers_only_matter_for_a_speaker_split(shd_dir):
    folder, train_s, _ = shd_dir
    path = folder / "shd_train.h5"
    write_sample_set(path, train_s, SHD_KEYS, skip=("extra/speaker",))
    assert len(load(folder).val) == 6
    message = expect_error("missing dataset extra/speaker", folder, **{"data.shd.val_by": "speaker"})
    assert str(path) in message


def test_single_speaker_cannot_be_split(shd_dir):
    folder, train_s, _ = shd_dir
    path = folder / "shd_train.h5"
    write_sample_set(path, {**train_s, "speakers": np.zeros(60, int)}, SHD_KEYS)
    message = expect_error("1 speaker", folder, **{"data.shd.val_by": "speaker"})
    assert str(path) in message


def test_speaker_count_differs_from_samples(shd_dir):
    folder, train_s, _ = shd_dir
    path = folder / "shd_train.h5"
    write_sample_set(path, {**train_s, "speakers": train_s["speakers"][:-1]}, SHD_KEYS)
    message = expect_error("extra/speaker has 59 entries but the file holds 60", folder,
                           **{"data.shd.val_by": "speaker"})
    assert str(path) in message


def test_times_and_units_hold_different_sample_counts(shd_dir):
    folder, train_s, _ = shd_dir
    path = folder / "shd_test.h5"
    write_h5(path, train_s["times"][:5], train_s["units"][:4], train_s["labels"][:5])
    message = expect_error("spikes/times holds 5 samples but spikes/units 4", folder)
    assert str(path) in message


def test_times_and_units_differ_in_one_sample(shd_dir):
    folder, _, test_s = shd_dir
    path = folder / "shd_test.h5"
    units = list(test_s["units"])
    units[7] = units[7][:-1]
    write_h5(path, test_s["times"], units, test_s["labels"])
    message = expect_error(r"sample 7: \d+ spike times but \d+ units", folder)
    assert str(path) in message


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, -0.25])
def test_bad_times_are_dropped_and_counted(shd_dir, bad):
    folder, _, test_s = shd_dir
    path = folder / "shd_test.h5"
    times = [np.array(t, dtype=np.float64) for t in test_s["times"]]
    times[4] = times[4].copy()
    times[4][1] = bad
    times[11] = times[11].copy()
    times[11][[0, 2]] = bad
    write_h5(path, times, test_s["units"], test_s["labels"])
    with pytest.warns(UserWarning, match=r"dropped 3 spike events") as record:
        splits = load(folder)
    message = str(record[0].message)
    assert str(path) in message and "sample 4" in message
    rep = splits.info["repairs"]["shd_test.h5"]
    assert rep["dropped_events"] == 3 and rep["samples"] == 2 and rep["first_samples"] == [4, 11]
    kind = "negative_times" if bad == -0.25 else "nonfinite_times"
    assert rep[kind] == 3
    assert "shd_train.h5" not in splits.info["repairs"]
    assert len(splits.test) == 20
    for k in range(20):
        t, u = sample_events(splits.test, k)
        want_t = f16(times[k])
        keep = np.isfinite(want_t) & (want_t >= 0)
        np.testing.assert_array_equal(t, want_t[keep])
        np.testing.assert_array_equal(u, np.asarray(test_s["units"][k])[keep])
    assert np.all(np.isfinite(splits.test.times)) and np.all(splits.test.times >= 0)


def test_bad_times_error_mode_names_file_and_sample(shd_dir):
    folder, train_s, _ = shd_dir
    path = folder / "shd_train.h5"
    times = [np.array(t) for t in train_s["times"]]
    times[9][0] = np.nan
    write_h5(path, times, train_s["units"], train_s["labels"], train_s["speakers"])
    message = expect_error(r"sample 9: spike time nan is not a finite time", folder,
                           **{"data.shd.bad_events": "error"})
    assert str(path) in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expect_error("sample 9", folder, **{"data.shd.bad_events": "error"})


@pytest.mark.parametrize("unit", [700, 1000, -1])
def test_unit_out_of_range(shd_dir, unit):
    folder, _, test_s = shd_dir
    path = folder / "shd_test.h5"
    units = [np.array(u, np.int64) for u in test_s["units"]]
    units[13][-1] = unit
    write_h5(path, test_s["times"], units, test_s["labels"], u_dtype=np.int16)
    message = expect_error(rf"sample 13: unit id {unit} outside \[0, 700\)", folder)
    assert str(path) in message


def test_units_must_be_integers(shd_dir):
    folder, _, test_s = shd_dir
    path = folder / "shd_test.h5"
    write_h5(path, test_s["times"], test_s["units"], test_s["labels"], u_dtype=np.float32)
    message = expect_error("spikes/units must hold integer channel ids", folder)
    assert str(path) in message


def test_spikes_must_be_variable_length(shd_dir):
    folder, _, _ = shd_dir
    path = folder / "shd_test.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("spikes/times", data=np.zeros((3, 4)))
        f.create_dataset("spikes/units", data=np.zeros((3, 4), np.uint16))
        f.create_dataset("labels", data=np.zeros(3, np.uint8))
    message = expect_error("spikes/times must hold one variable-length array per sample", folder)
    assert str(path) in message


@pytest.mark.parametrize("label,dtype", [(20, np.uint8), (255, np.uint8), (-1, np.int16)])
def test_label_out_of_range(shd_dir, label, dtype):
    folder, train_s, _ = shd_dir
    path = folder / "shd_train.h5"
    labels = np.array(train_s["labels"], np.int64)
    labels[17] = label
    write_h5(path, train_s["times"], train_s["units"], labels, train_s["speakers"], label_dtype=dtype)
    message = expect_error(rf"sample 17: label {label} outside \[0, 20\)", folder)
    assert str(path) in message


def test_ssc_label_range_is_35(ssc_dir):
    folder, parts = ssc_dir
    path = folder / "ssc_valid.h5"
    labels = np.array(parts["valid"]["labels"])
    labels[2] = 35
    write_h5(path, parts["valid"]["times"], parts["valid"]["units"], labels)
    message = expect_error(r"sample 2: label 35 outside \[0, 35\)", folder, "ssc")
    assert str(path) in message


def test_labels_must_be_integers(shd_dir):
    folder, _, test_s = shd_dir
    path = folder / "shd_test.h5"
    write_h5(path, test_s["times"], test_s["units"], test_s["labels"], label_dtype=np.float32)
    message = expect_error("labels must be integers", folder)
    assert str(path) in message


def test_label_count_differs_from_sample_count(shd_dir):
    folder, _, test_s = shd_dir
    path = folder / "shd_test.h5"
    write_h5(path, test_s["times"], test_s["units"], test_s["labels"][:-2])
    message = expect_error("labels has 18 entries but the file holds 20 samples", folder)
    assert str(path) in message


def test_class_keys_must_agree_between_files(shd_dir):
    folder, _, test_s = shd_dir
    path = folder / "shd_test.h5"
    write_sample_set(path, test_s, SHD_KEYS[::-1])
    message = expect_error("extra/keys differ", folder)
    assert str(path) in message and str(folder / "shd_train.h5") in message


def test_class_keys_must_match_class_count(shd_dir):
    folder, _, test_s = shd_dir
    path = folder / "shd_test.h5"
    write_sample_set(path, test_s, SHD_KEYS[:10])
    message = expect_error("extra/keys lists 10 classes, SHD has 20", folder)
    assert str(path) in message


@pytest.mark.parametrize("key,value,pattern", [
    ("data.shd.val_by", "speakers", "val_by"),
    ("data.shd.bad_events", "ignore", "bad_events"),
    ("data.shd.val_fraction", 0.0, "val_fraction"),
    ("data.shd.val_fraction", 1.0, "val_fraction"),
])
def test_spec_values_are_checked(key, value, pattern):
    with pytest.raises(SpikegradError, match=pattern):
        Config.from_overrides({"data.name": "shd", key: value})
    assert ShdSpec().val_by == "random"


# -- binning property ------------------------------------------------------------------------
# near bin edges: float32 roundings of multiples of 1 ms, besides arbitrary float32 times
_TIMES = st.one_of(st.floats(0.0, 0.25, width=32),
                   st.integers(0, 250).map(lambda k: float(np.float32(k * 1e-3))))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.tuples(_TIMES, st.integers(0, 4)), max_size=12),
                min_size=1, max_size=6),
       st.sampled_from([1e-3, 2e-3, 1e-2, 3e-3]), st.integers(1, 60))
def test_raster_of_float32_times_matches_naive_binning(samples, dt, n_steps):
    """Times stored as float32 (as for SHD) bin exactly as floor(t / Δt) in float64."""
    data = EventData(np.array([t for s in samples for t, _ in s], np.float32),
                     np.array([u for s in samples for _, u in s], np.int16),
                     np.concatenate([[0], np.cumsum([len(s) for s in samples])]).astype(np.int64),
                     np.zeros(len(samples), np.int64), 5, 1)
    raster, dropped = data.raster(np.arange(len(samples)), n_steps, dt)
    want = np.zeros((len(samples), n_steps, 5), np.float32)
    want_dropped = 0
    for row, s in enumerate(samples):
        for t, u in s:
            b = math.floor(float(t) / dt)
            if 0 <= b < n_steps:
                want[row, b, u] += 1
            else:
                want_dropped += 1
    np.testing.assert_array_equal(raster.numpy(), want)
    assert dropped == want_dropped


# -- end to end --------------------------------------------------------------------------------
def test_trains_end_to_end_on_a_tiny_shd_file(tmp_path):
    folder = tmp_path / "shd"
    folder.mkdir()
    rng = np.random.default_rng(0)

    def digits(n):  # class c fires units 10c..10c+9 early: learnable
        labels = rng.integers(0, 20, size=n)
        times = [rng.uniform(0, 0.15, size=30) for _ in range(n)]
        units = [10 * c + rng.integers(0, 10, size=30) for c in labels]
        return times, units, labels, rng.integers(0, 4, size=n)

    write_h5(folder / "shd_train.h5", *digits(80), keys=SHD_KEYS)
    write_h5(folder / "shd_test.h5", *digits(20), keys=SHD_KEYS)
    cfg = cfg_for(folder, **{"data.n_steps": 20, "model.hidden": [16], "train.epochs": 2,
                             "train.batch_size": 32, "train.device": "cpu"})
    metrics = train(cfg, tmp_path / "run")
    assert metrics["epochs"] == 2 and not metrics["diverged"]
    for key in ("test_accuracy", "val_accuracy", "train_accuracy"):
        assert 0.0 <= metrics[key] <= 1.0
    assert math.isfinite(metrics["test_loss"]) and math.isfinite(metrics["hidden_spikes_per_sample"])
    assert (tmp_path / "run" / "model.safetensors").is_file()
