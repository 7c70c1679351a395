"""Weight initialisation: uniform fan-in (paper) and fluctuation-driven (σ_U-targeted)."""

import math

import pytest
import torch

from spikegrad import Config, SpikegradError, train
from spikegrad.init import fluctuation_init_, psp_energy
from spikegrad.network import SNN
from spikegrad.neurons import LIFParams, lif_reference


@pytest.mark.parametrize("gain", [True, False])
@pytest.mark.parametrize("tau", [(10e-3, 5e-3), (20e-3, 2e-3)])
def test_psp_energy_is_the_squared_response_of_the_step_equations(gain, tau):
    params = LIFParams(tau_mem=tau[0], tau_syn=tau[1], input_gain=gain)
    w = 1e-4  # far below threshold: no spike, the response is linear in w
    x = torch.zeros(1, 3000, 1, dtype=torch.float64)
    x[0, 0, 0] = w
    _, u = lif_reference(x, None, params)
    expected = float((u / w).pow(2).sum())
    assert psp_energy(params) == pytest.approx(expected, rel=1e-9)


def test_free_membrane_fluctuations_hit_the_target():
    torch.manual_seed(0)
    n_in, p, sigma_u = 400, 0.05, 0.2  # threshold at 5 σ: (almost) free membrane
    x = (torch.rand(64, 300, n_in) < p).float()
    model = SNN(n_in, [256], 3)
    info = fluctuation_init_(model, x, sigma_u, generator=torch.Generator().manual_seed(1))
    assert info[0]["input_rate"] == pytest.approx(p, rel=0.02)
    _, rec = model.run(x)
    u = rec.voltages[0][:, 50:]  # past the start transient
    # σ_U is each neuron's fluctuation over time and trials (its own mean removed);
    # Bernoulli inputs have variance p(1 − p), Campbell's rule counts p.
    temporal = u.var(dim=(0, 1)).mean().sqrt().item()
    assert temporal == pytest.approx(sigma_u * math.sqrt(1 - p), rel=0.05)
    assert abs(u.mean().item()) < 0.3 * sigma_u  # centred weights: neuron means spread around 0
    assert rec.spikes[0].mean().item() < 1e-4


def test_second_layer_uses_the_measured_rate_of_the_first():
    torch.manual_seed(0)
    x = (torch.rand(32, 200, 50) < 0.1).float()
    model = SNN(50, [64, 32], 3)
    readout_before = model.readout.weight.clone()
    info = fluctuation_init_(model, x, 1.0, generator=torch.Generator().manual_seed(0))
    s1, _ = model.layers[0](x)
    assert info[1]["input_rate"] == pytest.approx(float(s1.detach().mean()), rel=1e-6)
    energy = psp_energy(model.params)
    assert info[1]["sigma_w"] == pytest.approx(1.0 / math.sqrt(64 * float(s1.detach().mean()) * energy))
    assert torch.equal(model.readout.weight, readout_before)


def test_recurrent_layer_splits_the_variance():
    torch.manual_seed(0)
    x = (torch.rand(32, 200, 50) < 0.1).float()
    model = SNN(50, [40], 3, recurrent=True)
    info = fluctuation_init_(model, x, 1.0, ff_share=0.9, generator=torch.Generator().manual_seed(0))[0]
    energy = psp_energy(model.params)
    assert info["sigma_w"] == pytest.approx(math.sqrt(0.9) / math.sqrt(50 * info["input_rate"] * energy))
    assert info["sigma_v"] == pytest.approx(math.sqrt(0.1) / math.sqrt(40 * info["own_rate"] * energy))
    assert model.layers[0].recurrent_weight.std().item() == pytest.approx(info["sigma_v"], rel=0.1)


def test_same_generator_seed_same_weights_and_silent_input_is_an_error():
    x = (torch.rand(8, 50, 20) < 0.1).float()
    a, b = SNN(20, [16], 3), SNN(20, [16], 3)
    fluctuation_init_(a, x, generator=torch.Generator().manual_seed(3))
    fluctuation_init_(b, x, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.layers[0].weight, b.layers[0].weight)
    with pytest.raises(SpikegradError, match="no input"):
        fluctuation_init_(a, torch.zeros(8, 50, 20))


@pytest.mark.parametrize("field,value,msg", [("model.init", "xavier", "unknown model.init"),
                                             ("model.init_sigma_u", 0.0, "init_sigma_u")])
def test_config_rejects_bad_init(field, value, msg):
    with pytest.raises(SpikegradError, match=msg):
        Config().with_overrides({field: value}).validate()


TINY = {
    "data.randman.classes": 3, "data.randman.train_per_class": 40, "data.randman.val_per_class": 10,
    "data.randman.test_per_class": 10, "data.randman.terms": 50, "model.hidden": [16],
    "train.epochs": 1, "train.batch_size": 30, "train.lr": 1e-9,
}


def test_uniform_init_starts_silent_and_fluctuation_init_does_not(tmp_path):
    """Randman (one spike per input channel): the paper's init leaves the hidden layer silent."""
    uniform = train(Config().with_overrides(TINY), tmp_path / "u")
    fluct = train(Config().with_overrides({**TINY, "model.init": "fluctuation"}), tmp_path / "f")
    assert uniform["hidden_spikes_per_sample"] == 0
    assert fluct["hidden_spikes_per_sample"] > 1
    again = train(Config().with_overrides({**TINY, "model.init": "fluctuation"}), tmp_path / "g")
    assert {k: v for k, v in again.items() if k != "wall_seconds"} == \
        {k: v for k, v in fluct.items() if k != "wall_seconds"}
