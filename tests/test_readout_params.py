"""The readout's synaptic time constant and input gain are its own, defaulting to the hidden
layers': every existing config keeps its numbers, and other values follow the readout's
equations (float64 reference loop)."""

import math

import pytest
import torch

from spikegrad import SNN, Config, LIFParams, SpikegradError
from spikegrad.models import build_model
from spikegrad.network import Readout


def _reference(h, dt, tau_out, tau_syn, gain_on, u0):
    """U_out[n+1] = β_out U_out[n] + g I_out[n], I_out[n+1] = β_syn I_out[n] + h[n], float64."""
    b_out, b_syn = math.exp(-dt / tau_out), math.exp(-dt / tau_syn)
    g = 1 - b_out if gain_on else 1.0
    u = torch.full(h.shape[::2], u0, dtype=torch.float64)
    i = torch.zeros_like(u)
    out = []
    for n in range(h.shape[1]):
        out.append(u)
        u, i = b_out * u + g * i, b_syn * i + h[:, n]
    return torch.stack(out, 1)


@pytest.mark.parametrize("method", ["loop", "fast"])
@pytest.mark.parametrize("tau_syn, gain", [(None, None), (2e-3, None), (None, False), (12e-3, True), (8e-3, False)])
def test_the_readout_trace_follows_its_own_time_constant_and_gain(tau_syn, gain, method):
    params = LIFParams(dt=1e-3, tau_syn=5e-3, input_gain=True)
    torch.manual_seed(0)
    ro = Readout(6, 3, params, 20e-3, initial_state=-1e-3, method=method, tau_syn=tau_syn, input_gain=gain).double()
    x = (torch.rand(2, 30, 6, dtype=torch.float64) < 0.3).double()
    want = _reference(x @ ro.weight.t(), 1e-3, 20e-3, tau_syn or 5e-3, True if gain is None else gain, -1e-3)
    torch.testing.assert_close(ro.trace(x), want, rtol=1e-12, atol=1e-14)


def test_defaults_keep_every_configs_numbers():
    cfg = Config().with_overrides({"model.hidden": [8]})
    torch.manual_seed(0)
    net = build_model(cfg, 5, 3)
    assert net.readout.decay_syn == cfg.neuron_params().decay_syn and net.readout.gain == 1 - net.readout.decay_out
    explicit = cfg.with_overrides({"model.readout_tau_syn_ms": cfg.model.tau_syn_ms, "model.readout_input_gain": "on"})
    torch.manual_seed(0)
    same = build_model(explicit, 5, 3)
    assert (same.readout.decay_syn, same.readout.gain) == (net.readout.decay_syn, net.readout.gain)
    off = build_model(cfg.with_overrides({"model.readout_input_gain": "off", "model.readout_tau_syn_ms": 2.0}), 5, 3)
    assert off.readout.gain == 1.0 and off.readout.decay_syn == math.exp(-1 / 2)
    assert off.layers[0].params.decay_syn == net.layers[0].params.decay_syn     # the hidden layers keep theirs


@pytest.mark.parametrize("override, message", [
    ({"model.readout_tau_syn_ms": -1.0}, "model.readout_tau_syn_ms must be > 0 ms, or 0"),
    ({"model.readout_input_gain": "yes"}, "model.readout_input_gain must be one of same, on, off"),
])
def test_impossible_readout_settings_are_one_clear_error(override, message):
    with pytest.raises(SpikegradError, match=message):
        Config().with_overrides(override)
    with pytest.raises(SpikegradError, match="readout tau_syn must be a positive"):
        SNN(3, [2], 2, readout_tau_syn=0.0)
