"""Activity regularisation on hidden spike counts (SCIENCE.md §3)."""

from __future__ import annotations

import math

import pytest
import torch

from spikegrad import ActivityRegularizer, SpikegradError


def spikes_with_counts(counts, n_steps: int = 8) -> torch.Tensor:
    """A [batch, time, neurons] 0/1 spike tensor whose per-trial counts are ``counts``."""
    counts = torch.as_tensor(counts, dtype=torch.int64)
    batch, neurons = counts.shape
    assert int(counts.max()) <= n_steps
    s = torch.zeros(batch, n_steps, neurons, dtype=torch.float64)
    for b in range(batch):
        for i in range(neurons):
            c = int(counts[b, i])
            # spread spikes over time (positions don't matter, only counts)
            steps = torch.randperm(n_steps, generator=torch.Generator().manual_seed(b * 31 + i))[:c]
            s[b, steps, i] = 1.0
    assert torch.equal(s.sum(1).to(torch.int64), counts)
    return s


def reference_penalty(layers_counts, lam_low, nu_low, lam_up, nu_up, p) -> float:
    """λ_low/M Σ_i relu(ν_low − c_i)^p + λ_up relu(mean c − ν_up)^p, batch mean, layer sum."""
    total = 0.0
    for counts in layers_counts:
        per_trial = []
        for row in counts:
            m = len(row)
            low = lam_low / m * sum(max(0.0, nu_low - c) ** p for c in row)
            up = lam_up * max(0.0, sum(row) / m - nu_up) ** p
            per_trial.append(low + up)
        total += sum(per_trial) / len(per_trial)
    return total


COUNTS_A = [[0, 1, 5, 2], [3, 0, 0, 7]]          # batch 2, 4 neurons
COUNTS_B = [[1, 1, 1], [0, 6, 2], [4, 4, 8]]     # batch 3, 3 neurons


@pytest.mark.parametrize("p", [1, 2])
def test_lower_term_only(p):
    reg = ActivityRegularizer(lower_strength=0.7, lower_threshold=2.0, power=p)
    got = float(reg([spikes_with_counts(COUNTS_A)]))
    # by hand: trial 0 deficits (2,1,0,0); trial 1 deficits (0,2,2,0)
    per = [(2 ** p + 1 ** p) / 4 * 0.7, (2 ** p + 2 ** p) / 4 * 0.7]
    assert got == pytest.approx(sum(per) / 2, rel=1e-12)
    assert got == pytest.approx(reference_penalty([COUNTS_A], 0.7, 2.0, 0, 0, p), rel=1e-12)


@pytest.mark.parametrize("p", [1, 2])
def test_upper_term_only(p):
    reg = ActivityRegularizer(upper_strength=1.5, upper_threshold=2.0, power=p)
    got = float(reg([spikes_with_counts(COUNTS_A)]))
    # means: 2.0 (excess 0) and 2.5 (excess 0.5)
    assert got == pytest.approx(1.5 * (0.0 + 0.5 ** p) / 2, rel=1e-12)
    assert got == pytest.approx(reference_penalty([COUNTS_A], 0, 0, 1.5, 2.0, p), rel=1e-12)


@pytest.mark.parametrize("p", [1, 2])
def test_both_terms_summed_over_layers(p):
    reg = ActivityRegularizer(lower_strength=0.3, lower_threshold=1.5, upper_strength=2.0,
                              upper_threshold=1.0, power=p)
    layers = [spikes_with_counts(COUNTS_A), spikes_with_counts(COUNTS_B)]
    got = float(reg(layers))
    want = reference_penalty([COUNTS_A, COUNTS_B], 0.3, 1.5, 2.0, 1.0, p)
    assert want > 0
    assert got == pytest.approx(want, rel=1e-12)
    # sum over layers
    each = [float(reg([s])) for s in layers]
    assert got == pytest.approx(sum(each), rel=1e-12)


def test_random_counts_match_reference():
    gen = torch.Generator().manual_seed(0)
    for p in (1, 2):
        layers_counts = [torch.randint(0, 7, (5, 6), generator=gen).tolist(),
                         torch.randint(0, 7, (5, 3), generator=gen).tolist()]
        reg = ActivityRegularizer(lower_strength=0.9, lower_threshold=3.0, upper_strength=0.4,
                                  upper_threshold=2.5, power=p)
        got = float(reg([spikes_with_counts(c) for c in layers_counts]))
        assert got == pytest.approx(reference_penalty(layers_counts, 0.9, 3.0, 0.4, 2.5, p), rel=1e-12)


def test_zero_when_counts_inside_bounds():
    counts = [[2, 3, 4], [3, 3, 3]]
    for p in (1, 2):
        reg = ActivityRegularizer(lower_strength=5.0, lower_threshold=2.0, upper_strength=5.0,
                                  upper_threshold=3.0, power=p)
        out = reg([spikes_with_counts(counts)])
        assert float(out) == 0.0
    # exactly at the thresholds is still inside
    reg = ActivityRegularizer(lower_strength=1.0, lower_threshold=2.0, upper_strength=1.0,
                              upper_threshold=3.0, power=1)
    assert float(reg([spikes_with_counts([[2, 4, 3]])])) == 0.0


def test_zero_strength_ignores_violations():
    reg = ActivityRegularizer(lower_strength=0.0, lower_threshold=100.0, upper_strength=0.0,
                              upper_threshold=0.0)
    assert float(reg([spikes_with_counts(COUNTS_A)])) == 0.0


def test_no_layers_gives_zero():
    reg = ActivityRegularizer(lower_strength=1.0, lower_threshold=1.0)
    out = reg([])
    assert isinstance(out, torch.Tensor) and float(out) == 0.0


def test_active_flag():
    assert not ActivityRegularizer().active
    assert not ActivityRegularizer(lower_threshold=3.0, upper_threshold=1.0).active
    assert ActivityRegularizer(lower_strength=1e-3).active
    assert ActivityRegularizer(upper_strength=2.0).active


def test_defaults():
    reg = ActivityRegularizer()
    assert (reg.lower_strength, reg.lower_threshold, reg.upper_strength, reg.upper_threshold,
            reg.power) == (0.0, 0.0, 0.0, 0.0, 2)


@pytest.mark.parametrize("kwargs", [
    {"power": 3}, {"power": 0}, {"power": -1},
    {"lower_strength": -0.1}, {"upper_strength": -1.0},
    {"lower_threshold": -2.0}, {"upper_threshold": -0.5},
    {"lower_strength": math.nan}, {"upper_strength": math.inf},
])
def test_invalid_arguments_raise(kwargs):
    with pytest.raises(SpikegradError) as info:
        ActivityRegularizer(**kwargs)
    (key,) = kwargs
    assert key in str(info.value)


@pytest.mark.parametrize("p", [1, 2])
def test_gradient_matches_hand_derivative(p):
    counts = [[0, 3, 1], [4, 4, 2]]
    lam_low, nu_low, lam_up, nu_up = 0.6, 2.0, 1.3, 2.0
    reg = ActivityRegularizer(lower_strength=lam_low, lower_threshold=nu_low,
                              upper_strength=lam_up, upper_threshold=nu_up, power=p)
    s = spikes_with_counts(counts, n_steps=5).requires_grad_(True)
    (g,) = torch.autograd.grad(reg([s]), s)
    batch, m = len(counts), len(counts[0])
    want = torch.zeros_like(s)
    for b, row in enumerate(counts):
        mean = sum(row) / m
        up_excess = max(0.0, mean - nu_up)
        d_up = lam_up * (p * up_excess ** (p - 1) if up_excess > 0 else 0.0) / m
        for i, c in enumerate(row):
            deficit = max(0.0, nu_low - c)
            d_low = -lam_low / m * (p * deficit ** (p - 1) if deficit > 0 else 0.0)
            # dc_i/dS_i[n] = 1 at every time step
            want[b, :, i] = (d_low + d_up) / batch
    torch.testing.assert_close(g, want, rtol=1e-12, atol=1e-14)
    # something non-trivial was checked: both terms are active in this case
    assert (g < 0).any() and (g > 0).any()
