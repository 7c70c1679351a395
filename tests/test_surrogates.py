"""Surrogate derivatives h(x; β) (SCIENCE.md §2) and the hard-step spike function."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from spikegrad import LIFParams, SpikegradError, lif_layer
from spikegrad.surrogates import (
    SURROGATES as _REGISTRY,
    available_surrogates,
    get_surrogate,
    register_surrogate,
    spike,
)

XS = [-2.0, -0.5, -0.1, -0.03, 0.0, 0.03, 0.1, 0.5, 2.0]
BETAS = [0.5, 1.0, 10.0, 37.0]


def _logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


# The formulas written out independently of the package.
FORMULAS = {
    "superspike": lambda x, b: 1.0 / (b * abs(x) + 1.0) ** 2,
    "superspike-asym": lambda x, b: b / (b * abs(x) + 1.0) ** 2,
    "sigmoid": lambda x, b: _logistic(b * x) * (1.0 - _logistic(b * x)),
    "esser": lambda x, b: max(0.0, 1.0 - b * abs(x)),
    "true": lambda x, b: 0.0,
}


def _h(name: str, xs, beta: float) -> np.ndarray:
    x = torch.tensor(xs, dtype=torch.float64)
    return get_surrogate(name)(x, beta).numpy()


@pytest.fixture
def user_surrogate_name():
    """A registry name that is removed again after the test."""
    name = "test-user-surrogate"
    assert name not in _REGISTRY
    try:
        yield name
    finally:
        if name in _REGISTRY:
            _REGISTRY.remove(name)


def test_builtin_surrogates_are_registered():
    assert set(FORMULAS) <= set(available_surrogates())
    assert available_surrogates() == sorted(available_surrogates())


@pytest.mark.parametrize("name", sorted(FORMULAS))
@pytest.mark.parametrize("beta", BETAS)
def test_surrogate_matches_formula(name, beta):
    got = _h(name, XS, beta)
    want = np.array([FORMULAS[name](x, beta) for x in XS])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_superspike_peak_is_one_at_zero_and_symmetric():
    for beta in BETAS:
        h = _h("superspike", [0.0], beta)
        assert h[0] == pytest.approx(1.0)
        xs = np.linspace(0.01, 3.0, 50)
        np.testing.assert_allclose(_h("superspike", xs, beta), _h("superspike", -xs, beta))
        # strictly decreasing away from 0 and below the peak
        vals = _h("superspike", xs, beta)
        assert np.all(np.diff(vals) < 0) and np.all(vals < 1.0)


def test_superspike_asym_peak_is_beta_and_integral_is_two():
    for beta in (1.0, 10.0, 100.0):
        assert _h("superspike-asym", [0.0], beta)[0] == pytest.approx(beta)
        # ∫ β/(β|x|+1)² dx over [−L, L] = 2 (1 − 1/(βL + 1)); integrate numerically
        # on a geometric grid (the function has a sharp peak and a heavy tail).
        L = 1e6
        pos = np.concatenate([[0.0], np.geomspace(1e-8, L, 200_001)])
        vals = _h("superspike-asym", pos, beta)
        integral = 2.0 * np.trapezoid(vals, pos) if hasattr(np, "trapezoid") else 2.0 * np.trapz(vals, pos)
        assert integral == pytest.approx(2.0, abs=1e-3)
        assert integral == pytest.approx(2.0 * (1.0 - 1.0 / (beta * L + 1.0)), rel=1e-4)


def test_sigmoid_peak_is_quarter():
    for beta in BETAS:
        assert _h("sigmoid", [0.0], beta)[0] == pytest.approx(0.25)
        xs = np.linspace(-3, 3, 301)
        assert _h("sigmoid", xs, beta).max() <= 0.25 + 1e-15


def test_esser_zero_outside_support():
    for beta in BETAS:
        edge = 1.0 / beta
        xs = [edge, -edge, 1.5 * edge, -3 * edge, 100.0]
        np.testing.assert_array_equal(_h("esser", xs, beta), 0.0)
        inside = [0.5 * edge, -0.25 * edge]
        np.testing.assert_allclose(_h("esser", inside, beta), [0.5, 0.75])
        assert _h("esser", [0.0], beta)[0] == 1.0


def test_true_gradient_is_zero_everywhere():
    xs = np.linspace(-5, 5, 101)
    for beta in BETAS + [0.0]:
        np.testing.assert_array_equal(_h("true", xs, beta), 0.0)


def test_beta_zero():
    xs = np.linspace(-5, 5, 41)
    np.testing.assert_array_equal(_h("superspike", xs, 0.0), 1.0)
    np.testing.assert_allclose(_h("sigmoid", xs, 0.0), 0.25)
    np.testing.assert_array_equal(_h("superspike-asym", xs, 0.0), 0.0)
    np.testing.assert_array_equal(_h("esser", xs, 0.0), 1.0)


def test_surrogate_preserves_shape_and_dtype():
    x = torch.randn(3, 4, 5, dtype=torch.float32)
    for name in FORMULAS:
        h = get_surrogate(name)(x, 10.0)
        assert h.shape == x.shape and h.dtype == x.dtype


# -- spike(): hard step forward, surrogate backward --------------------------------------

def test_spike_forward_is_strict_hard_step():
    x = torch.tensor([-1.0, -1e-7, 0.0, 1e-7, 0.5, 3.0])
    for name in FORMULAS:
        for beta in (0.0, 10.0):
            s = spike(x, name, beta)
            assert s.dtype == x.dtype
            assert s.tolist() == [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]


def test_spike_default_surrogate_is_superspike_beta_10():
    x = torch.tensor([-0.3, 0.0, 0.2], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(spike(x).sum(), x)
    want = [FORMULAS["superspike"](v, 10.0) for v in (-0.3, 0.0, 0.2)]
    np.testing.assert_allclose(g.numpy(), want, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(FORMULAS))
def test_spike_backward_is_grad_out_times_surrogate(name):
    gen = torch.Generator().manual_seed(3)
    beta = 7.0
    x = (torch.rand(4, 6, generator=gen, dtype=torch.float64) - 0.5).requires_grad_(True)
    grad_out = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    s = spike(x, name, beta)
    (g,) = torch.autograd.grad(s, x, grad_outputs=grad_out)
    want = grad_out.numpy() * np.vectorize(lambda v: FORMULAS[name](v, beta))(x.detach().numpy())
    np.testing.assert_allclose(g.numpy(), want, rtol=1e-12, atol=1e-15)


def test_spike_accepts_surrogate_object():
    x = torch.tensor([0.1, -0.2], dtype=torch.float64, requires_grad=True)
    (g,) = torch.autograd.grad(spike(x, get_surrogate("esser"), 2.0).sum(), x)
    np.testing.assert_allclose(g.numpy(), [0.8, 0.6])


def test_spike_gradient_flows_to_upstream_parameters():
    w = torch.tensor([0.5, 2.0], dtype=torch.float64, requires_grad=True)
    inp = torch.tensor([1.0, 0.25], dtype=torch.float64)
    x = w * inp - 1.0  # [-0.5, -0.5]
    (g,) = torch.autograd.grad(spike(x, "superspike", 10.0).sum(), w)
    h = FORMULAS["superspike"](-0.5, 10.0)
    np.testing.assert_allclose(g.numpy(), [h * 1.0, h * 0.25])


# -- registry ----------------------------------------------------------------------------

def test_register_user_surrogate_usable_by_name(user_surrogate_name):
    name = user_surrogate_name

    @register_surrogate(name, "triangle with slope 1/β")
    def _tri(x, beta):
        return 3.0 * torch.exp(-beta * x.abs())

    assert name in available_surrogates()
    assert get_surrogate(name).doc == "triangle with slope 1/β"
    x = torch.tensor([-0.2, 0.0, 0.4], dtype=torch.float64, requires_grad=True)
    s = spike(x, name, 2.0)
    assert s.tolist() == [0.0, 0.0, 1.0]
    (g,) = torch.autograd.grad(s.sum(), x)
    np.testing.assert_allclose(g.numpy(), [3 * math.exp(-0.4), 3.0, 3 * math.exp(-0.8)])


def test_user_surrogate_in_lif_params_drives_layer_gradient(user_surrogate_name):
    name = user_surrogate_name
    calls = []

    @register_surrogate(name)
    def _const(x, beta):
        calls.append(beta)
        return torch.full_like(x, 0.5)

    p = LIFParams(surrogate=name, beta=4.0)
    assert p.surrogate == name
    assert get_surrogate(p.surrogate).derivative is _const

    # a strong constant input makes the neuron fire; the surrogate is used in backward
    ff = torch.full((1, 20, 2), 3.0, dtype=torch.float64, requires_grad=True)
    spikes, _ = lif_layer(ff, None, p)
    assert spikes.sum() > 0
    spikes.sum().backward()
    assert calls and all(b == 4.0 for b in calls)
    assert ff.grad.abs().sum() > 0

    # the same layer with the "true" surrogate gets no gradient at all
    ff2 = ff.detach().clone().requires_grad_(True)
    s2, _ = lif_layer(ff2, None, LIFParams(surrogate="true", beta=4.0))
    torch.testing.assert_close(s2, spikes.detach())
    s2.sum().backward()
    assert ff2.grad.abs().sum() == 0


def test_register_duplicate_name_raises(user_surrogate_name):
    with pytest.raises(SpikegradError, match="superspike"):
        register_surrogate("superspike")(lambda x, b: x)
    # the built-in entry is untouched
    assert _h("superspike", [0.0], 10.0)[0] == 1.0

    register_surrogate(user_surrogate_name)(lambda x, b: torch.ones_like(x))
    with pytest.raises(SpikegradError, match=user_surrogate_name):
        register_surrogate(user_surrogate_name)(lambda x, b: torch.zeros_like(x))
    assert _h(user_surrogate_name, [5.0], 1.0)[0] == 1.0


def test_get_unknown_surrogate_names_the_available_ones():
    with pytest.raises(SpikegradError) as info:
        get_surrogate("nope")
    msg = str(info.value)
    assert "nope" in msg
    for name in FORMULAS:
        assert name in msg
    with pytest.raises(SpikegradError, match="nope"):
        spike(torch.zeros(2), "nope", 1.0)
    with pytest.raises(SpikegradError, match="nope"):
        LIFParams(surrogate="nope")


def test_user_surrogate_fixture_cleaned_up():
    # runs after the tests above (file order): no leftover registry entries
    assert "test-user-surrogate" not in available_surrogates()
