"""Randman spike-timing data (SCIENCE.md §4, Randman; Zenke & Vogels 2021 §4.1.1)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from spikegrad import SpikegradError
from spikegrad.config import Config, DataConfig
from spikegrad.data import DataSplits, load_dataset
from spikegrad.data.randman import RandmanSpec, make_randman
from spikegrad.data.randman import class_spike_times, manifold_values

SMALL = RandmanSpec(classes=3, train_per_class=20, val_per_class=5, test_per_class=5, terms=50)


@pytest.fixture(scope="module")
def small() -> DataSplits:
    return make_randman(SMALL, seed=1)


def spike_matrix(data):
    """[samples, inputs] spike times, checking exactly one spike per input neuron."""
    n = len(data)
    counts = np.diff(data.offsets)
    assert np.all(counts == data.n_units)
    out = np.full((n, data.n_units), np.nan)
    for k in range(n):
        lo, hi = data.offsets[k], data.offsets[k + 1]
        units = data.units[lo:hi]
        np.testing.assert_array_equal(np.sort(units), np.arange(data.n_units))
        out[k, units] = data.times[lo:hi]
    return out


def all_splits(splits: DataSplits):
    times = np.concatenate([spike_matrix(s) for s in (splits.train, splits.val, splits.test)])
    labels = np.concatenate([s.labels for s in (splits.train, splits.val, splits.test)])
    return times, labels


def sorted_rows(a: np.ndarray) -> np.ndarray:
    return a[np.lexsort(a.T[::-1])]


def test_split_sizes_and_meta(small):
    assert small.n_inputs == SMALL.inputs == 20
    assert small.n_classes == 3
    for data, per in ((small.train, 20), (small.val, 5), (small.test, 5)):
        assert len(data) == per * 3
        assert data.n_units == 20 and data.n_classes == 3
        np.testing.assert_array_equal(np.bincount(data.labels, minlength=3), [per] * 3)
    assert small.train.name == "randman/train" and small.test.name == "randman/test"


def test_one_spike_per_input_neuron_and_times_in_range(small):
    dur = SMALL.duration_ms * 1e-3
    for data in (small.train, small.val, small.test):
        t = spike_matrix(data)
        assert not np.isnan(t).any()
        assert t.min() >= 0.0 and t.max() < dur


def test_each_neuron_spans_full_range_per_class(small):
    dur = SMALL.duration_ms * 1e-3
    times, labels = all_splits(small)
    for c in range(SMALL.classes):
        tc = times[labels == c]
        assert tc.shape == (SMALL.samples_per_class, SMALL.inputs)
        np.testing.assert_array_equal(tc.min(axis=0), 0.0)
        mx = tc.max(axis=0)
        assert np.all(mx < dur)
        np.testing.assert_allclose(mx, dur, rtol=1e-8)


def test_class_spike_times_min_max_standardised():
    spec = RandmanSpec(classes=2, inputs=6, dim=2, terms=30, train_per_class=15, val_per_class=3,
                       test_per_class=2, duration_ms=30.0)
    t = class_spike_times(spec, seed=5, label=1)
    assert t.shape == (20, 6)
    np.testing.assert_array_equal(t.min(axis=0), 0.0)
    assert np.all(t.max(axis=0) < 0.03)
    np.testing.assert_allclose(t.max(axis=0), 0.03, rtol=1e-8)


def test_paper_default_class_times():
    """One class of the paper's default spec (K = 1000, 1000 samples, 20 inputs)."""
    spec = RandmanSpec()
    t = class_spike_times(spec, seed=1, label=0)
    assert t.shape == (1000, 20)
    np.testing.assert_array_equal(t.min(axis=0), 0.0)
    assert np.all(t.max(axis=0) < 0.05)
    np.testing.assert_allclose(t.max(axis=0), 0.05, rtol=1e-8)
    # a smooth 1-D manifold: times vary (not degenerate) for every neuron
    assert np.all(t.std(axis=0) > 1e-3)


def test_same_seed_identical_different_seed_different(small):
    again = make_randman(SMALL, seed=1)
    other = make_randman(SMALL, seed=2)
    for a, b, c in zip((small.train, small.val, small.test), (again.train, again.val, again.test),
                       (other.train, other.val, other.test)):
        np.testing.assert_array_equal(a.times, b.times)
        np.testing.assert_array_equal(a.units, b.units)
        np.testing.assert_array_equal(a.offsets, b.offsets)
        np.testing.assert_array_equal(a.labels, b.labels)
        assert a.times.shape == c.times.shape
        assert not np.array_equal(a.times, c.times)
    t1 = class_spike_times(SMALL, 1, 0)
    t2 = class_spike_times(SMALL, 2, 0)
    assert np.abs(t1 - t2).mean() > 1e-3


def test_splits_are_shuffled_and_disjoint(small):
    # labels are mixed, not in class blocks
    assert not np.all(np.diff(small.train.labels) >= 0)
    rows = [spike_matrix(s) for s in (small.train, small.val, small.test)]
    allrows = np.concatenate(rows)
    assert len(np.unique(allrows, axis=0)) == len(allrows)


def test_classes_differ(small):
    times, labels = all_splits(small)
    means = np.stack([times[labels == c].mean(axis=0) for c in range(SMALL.classes)])
    for a in range(SMALL.classes):
        for b in range(a + 1, SMALL.classes):
            assert np.abs(means[a] - means[b]).mean() > 1e-3  # 1 ms of a 50 ms window
    # also each class draws its own functions
    t0, t1 = class_spike_times(SMALL, 1, 0), class_spike_times(SMALL, 1, 1)
    assert not np.allclose(t0, t1)


def test_class_functions_do_not_depend_on_number_of_classes():
    common = dict(train_per_class=20, val_per_class=5, test_per_class=5, terms=50)
    two = make_randman(RandmanSpec(classes=2, **common), seed=3)
    three = make_randman(RandmanSpec(classes=3, **common), seed=3)
    for label in (0, 1):
        for s2, s3 in ((two.train, three.train), (two.val, three.val), (two.test, three.test)):
            a = spike_matrix(s2)[s2.labels == label]
            b = spike_matrix(s3)[s3.labels == label]
            np.testing.assert_array_equal(sorted_rows(a), sorted_rows(b))
    np.testing.assert_array_equal(class_spike_times(RandmanSpec(classes=2, **common), 3, 0),
                                  class_spike_times(RandmanSpec(classes=3, **common), 3, 0))


def test_manifold_values_matches_formula():
    rng = np.random.default_rng(42)
    m, d, k_terms, alpha = 3, 2, 7, 1.5
    theta = rng.uniform(0, 1, size=(3, m, d, k_terms))
    x = rng.uniform(0, 1, size=(5, d))
    got = manifold_values(theta, x, alpha)
    assert got.shape == (5, m)
    a, b, c = theta
    want = np.empty((5, m))
    for n in range(5):
        for i in range(m):
            prod = 1.0
            for j in range(d):
                total = 0.0
                for k in range(1, k_terms + 1):
                    total += (a[i, j, k - 1] / k ** alpha
                              * math.sin(2 * math.pi * (k * x[n, j] * b[i, j, k - 1] + c[i, j, k - 1])))
                prod *= total
            want[n, i] = prod
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_manifold_values_alpha_zero_and_one_term():
    theta = np.zeros((3, 1, 1, 1))
    theta[0, 0, 0, 0] = 0.5   # A
    theta[1, 0, 0, 0] = 0.25  # B
    theta[2, 0, 0, 0] = 0.1   # C
    x = np.array([[0.0], [0.4], [1.0]])
    want = 0.5 * np.sin(2 * np.pi * (x[:, 0] * 0.25 + 0.1))
    np.testing.assert_allclose(manifold_values(theta, x, 0.0)[:, 0], want)
    np.testing.assert_allclose(manifold_values(theta, x, 3.0)[:, 0], want)  # k = 1: 1^α = 1


def test_dim_two_data_generates():
    spec = RandmanSpec(classes=2, inputs=5, dim=2, terms=20, train_per_class=10, val_per_class=2,
                       test_per_class=2)
    splits = make_randman(spec, seed=0)
    times, labels = all_splits(splits)
    assert times.shape == (28, 5)
    np.testing.assert_array_equal(np.bincount(labels), [14, 14])


def test_spec_defaults_are_paper_defaults():
    s = RandmanSpec()
    assert (s.classes, s.inputs, s.dim, s.alpha, s.duration_ms, s.terms) == (10, 20, 1, 1.0, 50.0, 1000)
    assert (s.train_per_class, s.val_per_class, s.test_per_class) == (800, 100, 100)
    assert s.samples_per_class == 1000


def test_empty_val_and_test_allowed():
    spec = RandmanSpec(classes=2, inputs=4, terms=10, train_per_class=6, val_per_class=0, test_per_class=0)
    splits = make_randman(spec, seed=0)
    assert len(splits.train) == 12 and len(splits.val) == 0 and len(splits.test) == 0


@pytest.mark.parametrize("kwargs,key", [
    ({"classes": 0}, "classes"), ({"inputs": 0}, "inputs"), ({"dim": 0}, "dim"),
    ({"terms": 0}, "terms"), ({"train_per_class": 0}, "train_per_class"),
    ({"val_per_class": -1}, "val_per_class"), ({"test_per_class": -2}, "test_per_class"),
    ({"duration_ms": 0.0}, "duration_ms"), ({"duration_ms": -5.0}, "duration_ms"),
    ({"alpha": -0.5}, "alpha"),
])
def test_spec_errors(kwargs, key):
    with pytest.raises(SpikegradError, match=key):
        RandmanSpec(**kwargs)


def test_single_sample_class_cannot_be_standardised():
    spec = RandmanSpec(classes=1, inputs=3, terms=10, train_per_class=1, val_per_class=0, test_per_class=0)
    with pytest.raises(SpikegradError, match="randman"):
        make_randman(spec, seed=0)


def test_load_dataset_by_name():
    cfg = Config(data=DataConfig(seed=4, randman=SMALL))
    splits = load_dataset(cfg)
    direct = make_randman(SMALL, 4)
    np.testing.assert_array_equal(splits.train.times, direct.train.times)
    with pytest.raises(SpikegradError, match="nope"):
        load_dataset(Config(data=DataConfig(name="nope")))


def test_raster_of_randman_has_one_spike_per_neuron(small):
    # 50 ms window, dt = 1 ms, 70 steps: nothing dropped, exactly one spike per neuron
    raster, dropped = small.train.raster(np.arange(len(small.train)), 70, 1e-3)
    assert dropped == 0
    np.testing.assert_array_equal(raster.sum(dim=1).numpy(), 1.0)
    assert raster[:, 50:].sum() == 0


def test_generated_data_is_cached_and_a_bad_cache_is_regenerated(monkeypatch):
    import spikegrad.data.randman as rm

    cfg = Config(data=DataConfig(seed=3, randman=SMALL))
    first = load_dataset(cfg)
    path = rm.cache_path(SMALL, 3)
    assert path.is_file()

    def no_generation(*args, **kwargs):
        raise AssertionError("generated again despite the cache")

    monkeypatch.setattr(rm, "make_randman", no_generation)
    cached = load_dataset(cfg)
    for split in ("train", "val", "test"):
        a, b = getattr(first, split), getattr(cached, split)
        for field in ("times", "units", "offsets", "labels"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    monkeypatch.undo()
    path.write_bytes(b"not an npz file")
    again = load_dataset(cfg)
    np.testing.assert_array_equal(again.test.times, first.test.times)
    assert rm.cache_path(SMALL, 4) != path and rm.cache_path(RandmanSpec(classes=3), 3) != path


def test_a_failed_cache_write_leaves_no_temporary_file(monkeypatch):
    """Disk full half-way through the cache write: the data still come back, and neither the
    temporary file nor a cache file is left."""
    import spikegrad.data.randman as rm

    cfg = Config(data=DataConfig(seed=5, randman=SMALL))
    path = rm.cache_path(SMALL, 5)
    real = np.savez

    def full_disk(file, **arrays):
        real(file, **arrays)                      # the bytes land, then the write fails
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(rm.np, "savez", full_disk)
    splits = load_dataset(cfg)
    assert len(splits.train) > 0
    assert not path.exists()
    assert not list(path.parent.glob("*.tmp.npz"))
