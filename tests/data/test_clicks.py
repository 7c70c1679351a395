"""Poisson clicks task: rates, labels, timing, seeding, defaults."""

import numpy as np
import pytest

from spikegrad import Config, SpikegradError
from spikegrad.data import load_dataset
from spikegrad.data.clicks import ClicksSpec, make_trials


def test_trials_follow_the_definition():
    spec = ClicksSpec()
    data = make_trials(spec, 3000, np.random.default_rng(0))
    counts = np.diff(data.offsets)
    # total clicks ~ Poisson(40 Hz · 0.5 s = 20) (ties removed shift it little)
    assert abs(counts.mean() - 20) < 0.5
    assert data.times.min() >= 0 and data.times.max() < 0.5   # clicks only during the stimulus
    assert set(np.unique(data.units)) == {0, 1}
    for k in range(200):
        units = data.units[data.offsets[k]:data.offsets[k + 1]]
        left, right = (units == 0).sum(), (units == 1).sum()
        assert left != right                                      # ties were redrawn
        assert data.labels[k] == int(right > left)
    assert 0.45 < data.labels.mean() < 0.55                      # symmetric task


def test_click_rates_are_uniform_split_of_the_total():
    # r_L ~ U(0, 40): the fraction of left clicks is spread over [0, 1], mean 1/2
    data = make_trials(ClicksSpec(stimulus_ms=5000.0), 2000, np.random.default_rng(1))
    frac = np.array([(data.units[a:b] == 0).mean() for a, b in zip(data.offsets[:-1], data.offsets[1:])])
    assert abs(frac.mean() - 0.5) < 0.03
    hist, _ = np.histogram(frac, bins=5, range=(0, 1))
    assert hist.min() > 0.15 * len(frac)  # roughly flat


def test_splits_seeded_and_distinct():
    a = load_dataset(Config.from_overrides({"data.name": "clicks"}))
    b = load_dataset(Config.from_overrides({"data.name": "clicks"}))
    c = load_dataset(Config.from_overrides({"data.name": "clicks", "data.seed": 9}))
    assert (len(a.train), len(a.val), len(a.test)) == (2000, 500, 500)
    np.testing.assert_array_equal(a.test.times, b.test.times)
    assert not np.array_equal(a.test.times[:50], c.test.times[:50])
    assert not np.array_equal(a.train.times[:50], a.test.times[:50])


def test_defaults_read_out_after_the_delay_only():
    cfg = Config.from_overrides({"data.name": "clicks"})
    assert cfg.model.recurrent and cfg.model.dt_ms == 5.0
    assert cfg.data.n_steps * cfg.model.dt_ms == 1050      # stimulus + delay + response
    assert cfg.model.readout_steps * cfg.model.dt_ms == 50  # the response window
    x = load_dataset(cfg).train.inputs(range(10), cfg.data.n_steps, cfg.model.dt_ms * 1e-3)
    assert x[:, 100:].sum() == 0                              # silent delay and response


@pytest.mark.parametrize("key, value", [("total_rate_hz", 0.0), ("delay_ms", -1.0), ("train_samples", 0)])
def test_bad_spec(key, value):
    with pytest.raises(SpikegradError, match=key):
        ClicksSpec(**{key: value})
