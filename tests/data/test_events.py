"""EventData: CSR event storage, subsets and binning (SCIENCE.md §4, "Binning")."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikegrad import SpikegradError
from spikegrad.data import EventData


def random_events(seed: int, n_samples: int, n_units: int, n_classes: int, t_max: float):
    """Random per-sample event lists, including empty samples and exact duplicates."""
    rng = np.random.default_rng(seed)
    samples, labels = [], []
    for k in range(n_samples):
        n = int(rng.integers(0, 25)) if k % 5 else 0  # every 5th sample empty
        times = rng.uniform(0.0, t_max, size=n)
        units = rng.integers(0, n_units, size=n)
        if n >= 2:  # duplicate some events exactly and add a second event in the same bin
            times = np.concatenate([times, times[:2], times[:1] + 1e-7])
            units = np.concatenate([units, units[:2], units[:1]])
        perm = rng.permutation(len(times))  # unsorted within the sample
        samples.append((times[perm], units[perm]))
        labels.append(int(rng.integers(0, n_classes)))
    return samples, labels


def naive_raster(samples, index, n_steps, dt, n_units):
    """Pure-Python reference: bin = floor(t / dt); t outside [0, n_steps·dt) dropped."""
    out = [[[0.0] * n_units for _ in range(n_steps)] for _ in index]
    dropped = 0
    for row, k in enumerate(index):
        times, units = samples[k]
        for t, u in zip(times.tolist(), units.tolist()):
            b = math.floor(t / dt)
            if 0 <= b < n_steps:
                out[row][b][u] += 1.0
            else:
                dropped += 1
    return np.array(out, dtype=np.float32).reshape(len(index), n_steps, n_units), dropped


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_raster_matches_naive_reference(seed):
    n_units, n_steps, dt = 7, 12, 1e-3
    # times up to 1.5× the window: a good share must be dropped
    samples, labels = random_events(seed, 30, n_units, 4, t_max=1.5 * n_steps * dt)
    data = EventData.from_samples(samples, labels, n_units, 4)
    rng = np.random.default_rng(100 + seed)
    index = rng.choice(len(samples), size=17, replace=False)  # random order, random subset
    raster, dropped = data.raster(index, n_steps, dt)
    want, want_dropped = naive_raster(samples, index, n_steps, dt, n_units)
    assert raster.shape == (len(index), n_steps, n_units)
    assert raster.dtype == torch.float32
    np.testing.assert_array_equal(raster.numpy(), want)
    assert dropped == want_dropped
    assert dropped > 0
    # kept + dropped accounts for every event of the chosen samples
    n_events = sum(len(samples[k][0]) for k in index)
    assert int(raster.sum()) + dropped == n_events
    # some bin holds more than one event (duplicates add up)
    assert raster.max() >= 2


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_is_the_rasters_events(seed):
    """EventData.batch: the CSR of the naive raster's nonzeros (rows = (sample, step) in
    order, units increasing within a row, values = counts), same dropped count."""
    n_units, n_steps, dt = 7, 12, 1e-3
    samples, labels = random_events(seed, 30, n_units, 4, t_max=1.5 * n_steps * dt)
    data = EventData.from_samples(samples, labels, n_units, 4)
    index = np.random.default_rng(200 + seed).choice(len(samples), size=17, replace=False)
    ev, dropped = data.batch(index, n_steps, dt)
    want, want_dropped = naive_raster(samples, index, n_steps, dt, n_units)
    assert dropped == want_dropped > 0
    assert ev.shape == (17, n_steps, n_units) and ev.dtype == torch.float32
    flat = want.reshape(-1, n_units)
    rows, cols = np.nonzero(flat)
    assert ev.nnz == len(rows)
    np.testing.assert_array_equal(ev.ptr.numpy(), np.concatenate([[0], np.cumsum((flat != 0).sum(1))]))
    np.testing.assert_array_equal(ev.idx.numpy(), cols)
    np.testing.assert_array_equal(ev.val.numpy(), flat[rows, cols])
    assert ev.val.max() >= 2                      # duplicates add up to counts
    np.testing.assert_array_equal(ev.to_dense().numpy(), want)
    assert data.batch(index, n_steps, dt, dtype=torch.float64)[0].dtype == torch.float64
    empty, _ = data.batch(np.array([], dtype=np.int64), n_steps, dt)
    assert empty.shape == (0, n_steps, n_units) and empty.nnz == 0 and empty.ptr.tolist() == [0]


def test_raster_duplicates_add_and_boundary_dropped():
    dt, n_steps = 1e-3, 5
    times = np.array([0.0, 0.0004, 0.0004, 0.0019, 0.0049999, 0.005, 0.0051, 0.2])
    units = np.array([0, 0, 0, 2, 1, 1, 0, 2])
    data = EventData.from_samples([(times, units)], [0], n_units=3, n_classes=1)
    raster, dropped = data.raster([0], n_steps, dt)
    want = np.zeros((1, n_steps, 3), np.float32)
    want[0, 0, 0] = 3.0   # t = 0, 0.4 ms, 0.4 ms
    want[0, 1, 2] = 1.0   # 1.9 ms
    want[0, 4, 1] = 1.0   # just below 5 ms
    np.testing.assert_array_equal(raster.numpy(), want)
    assert dropped == 3   # 5 ms (= n_steps·dt), 5.1 ms and 200 ms


def test_raster_dtype_and_repeated_index():
    samples, labels = random_events(7, 6, 4, 2, t_max=0.01)
    data = EventData.from_samples(samples, labels, 4, 2)
    r64, _ = data.raster([1, 1, 3], 10, 1e-3, dtype=torch.float64)
    assert r64.dtype == torch.float64
    torch.testing.assert_close(r64[0], r64[1])
    r1, _ = data.raster([3], 10, 1e-3, dtype=torch.float64)
    torch.testing.assert_close(r64[2], r1[0])


def test_raster_empty_index():
    samples, labels = random_events(0, 4, 3, 2, t_max=0.01)
    data = EventData.from_samples(samples, labels, 3, 2)
    raster, dropped = data.raster(np.array([], dtype=np.int64), 10, 1e-3)
    assert raster.shape == (0, 10, 3) and dropped == 0


def test_subset_keeps_order_and_contents():
    samples, labels = random_events(11, 20, 5, 3, t_max=0.02)
    data = EventData.from_samples(samples, labels, 5, 3, name="orig")
    index = np.array([13, 2, 19, 0, 7, 2])
    sub = data.subset(index)
    assert len(sub) == len(index)
    assert sub.name == "orig" and data.subset(index, name="sub").name == "sub"
    assert sub.n_units == 5 and sub.n_classes == 3
    np.testing.assert_array_equal(sub.labels, np.array(labels)[index])
    assert sub.offsets[0] == 0 and sub.offsets[-1] == len(sub.times)
    for row, k in enumerate(index):
        lo, hi = sub.offsets[row], sub.offsets[row + 1]
        np.testing.assert_array_equal(sub.times[lo:hi], samples[k][0])
        np.testing.assert_array_equal(sub.units[lo:hi], samples[k][1])
    # rasters agree with the original's
    r_sub, d_sub = sub.raster(np.arange(len(index)), 15, 1e-3)
    r_orig, d_orig = data.raster(index, 15, 1e-3)
    torch.testing.assert_close(r_sub, r_orig)
    assert d_sub == d_orig
    # the original is unchanged
    assert len(data) == 20


def test_from_samples_layout():
    samples = [(np.array([0.1, 0.2]), np.array([1, 0])), (np.array([]), np.array([], dtype=np.int64)),
               (np.array([0.3]), np.array([2]))]
    data = EventData.from_samples(samples, [1, 0, 1], n_units=3, n_classes=2)
    np.testing.assert_array_equal(data.offsets, [0, 2, 2, 3])
    np.testing.assert_array_equal(data.times, [0.1, 0.2, 0.3])
    np.testing.assert_array_equal(data.units, [1, 0, 2])
    assert data.times.dtype == np.float64 and data.units.dtype == np.int64
    assert len(data) == 3


def _one(times, units, labels, offsets, n_units=3, n_classes=2):
    return EventData(np.asarray(times, np.float64), np.asarray(units, np.int64),
                     np.asarray(offsets, np.int64), np.asarray(labels, np.int64), n_units, n_classes,
                     name="bad")


def test_constructor_accepts_valid():
    d = _one([0.1, 0.2], [0, 2], [1], [0, 2])
    assert len(d) == 1


@pytest.mark.parametrize("times,units,labels,offsets,pattern", [
    ([0.1, 0.2], [0, 3], [1], [0, 2], "unit"),          # unit id == n_units
    ([0.1, 0.2], [0, 99], [1], [0, 2], "unit"),
    ([0.1], [-1], [0], [0, 1], "unit"),
    ([0.1, 0.2], [0, 1], [2], [0, 2], "label"),          # label == n_classes
    ([0.1, 0.2], [0, 1], [-1], [0, 2], "label"),
    ([0.1, 0.2], [0, 1], [1], [0, 1], "offsets"),        # offsets end ≠ number of events
    ([0.1, 0.2], [0, 1], [1, 0], [0, 2], "offsets"),     # offsets length ≠ samples + 1
    ([0.1, 0.2], [0, 1], [1], [1, 2], "offsets"),        # offsets[0] ≠ 0
    ([0.1, 0.2], [0], [1], [0, 2], "units"),             # times/units length mismatch
])
def test_constructor_errors(times, units, labels, offsets, pattern):
    with pytest.raises(SpikegradError, match=pattern) as info:
        _one(times, units, labels, offsets)
    assert "bad" in str(info.value)  # names the data set


def test_from_samples_errors():
    with pytest.raises(SpikegradError, match="unit"):
        EventData.from_samples([(np.array([0.1]), np.array([5]))], [0], n_units=5, n_classes=1)
    with pytest.raises(SpikegradError, match="label"):
        EventData.from_samples([(np.array([0.1]), np.array([0]))], [3], n_units=5, n_classes=3)
