"""Losses as objects: the paper's cross-entropy equals the loss the loop used to weld in; the
van Rossum distance equals a float64 reference; a spiking-output network trained on spike-
train targets selects its best epoch by that distance (lower is better); a model that is no
time-stepped scan (a spike-time model defined in this file) trains through train()."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from spikegrad import SNN, Config, LIFParams, SpikegradError, train
from spikegrad.data import DataSplits, DenseData
from spikegrad.losses import LOSSES, CrossEntropy, Selection, VanRossum, make_loss, register_loss
from spikegrad.models import MODELS, register_model
from spikegrad.network import Recording
from spikegrad.readouts import get_readout
from spikegrad.training import evaluate


@pytest.mark.parametrize("reduction", [None, "max", "sum", "mean", "last"])
def test_cross_entropy_equals_torch_on_the_reduced_output(reduction):
    gen = torch.Generator().manual_seed(0)
    out = torch.randn(5, 7, 3, generator=gen) if reduction else torch.randn(5, 3, generator=gen)
    y = torch.tensor([0, 2, 1, 1, 0])
    loss = CrossEntropy(reduction)
    logits = get_readout(reduction)(out) if reduction else out
    assert torch.equal(loss(out, y), F.cross_entropy(logits, y))
    assert torch.equal(loss.predict(out), logits.argmax(1))
    assert loss.batch_metrics(out, y) == {"accuracy": int((logits.argmax(1) == y).sum())}
    assert loss.selection == Selection("accuracy", True)


def _van_rossum_reference(a: np.ndarray, b: np.ndarray, tau: float) -> np.ndarray:
    """Per sample: (1/τ) Σ_n Σ_i (f_a − f_b)², f[n] = e^{−1/τ} f[n−1] + S[n], float64 loops."""
    decay = math.exp(-1.0 / tau)
    out = np.zeros(a.shape[0])
    for s in range(a.shape[0]):
        fa = np.zeros(a.shape[2])
        fb = np.zeros(a.shape[2])
        for n in range(a.shape[1]):
            fa = decay * fa + a[s, n]
            fb = decay * fb + b[s, n]
            out[s] += ((fa - fb) ** 2).sum() / tau
    return out


def test_van_rossum_distance_equals_the_float64_reference_and_is_zero_for_equal_trains():
    rng = np.random.default_rng(1)
    a = (rng.random((4, 40, 3)) < 0.1).astype(np.float64)
    b = (rng.random((4, 40, 3)) < 0.1).astype(np.float64)
    loss = VanRossum(tau_steps=6.0)
    got = loss.distances(torch.from_numpy(a), torch.from_numpy(b)).numpy()
    np.testing.assert_allclose(got, _van_rossum_reference(a, b, 6.0), rtol=1e-12)
    assert loss.distances(torch.from_numpy(a), torch.from_numpy(a)).abs().max() == 0
    one = np.zeros((1, 40, 1))
    one[0, 5, 0] = 1
    # one unmatched spike: (1/τ) Σ_k e^{−2k/τ} over the 35 steps from the spike on
    expected = sum(math.exp(-2 * k / 6.0) for k in range(35)) / 6.0
    assert loss.distances(torch.from_numpy(one), torch.zeros(1, 40, 1, dtype=torch.float64)).item() == \
        pytest.approx(expected, rel=1e-12)
    assert loss.batch_metrics(torch.from_numpy(a), torch.from_numpy(b)) == {"distance": pytest.approx(got.sum())}
    assert loss.selection == Selection("distance", False)
    with pytest.raises(SpikegradError, match="differ in shape"):
        loss(torch.zeros(1, 40, 2), torch.zeros(1, 40, 3))


def test_the_van_rossum_gradient_points_each_output_spike_towards_the_target():
    out = torch.zeros(2, 20, 3, requires_grad=True)
    target = torch.zeros(2, 20, 3)
    target[:, 4, 1] = 1
    VanRossum(5.0)(out, target).backward()
    g = out.grad[:, :, 1]
    assert g.lt(0).all()                                   # a spike anywhere on neuron 1 lowers the distance...
    assert (g.argmin(dim=1) == 4).all()                    # ...most at the target's step
    assert out.grad[:, :, [0, 2]].abs().max() == 0         # equal trains (both silent): no gradient


def test_the_config_names_the_loss_and_refuses_impossible_ones():
    assert isinstance(make_loss(Config()), CrossEntropy) and make_loss(Config()).reduction is None
    spiking = Config().with_overrides({"model.output": "spikes", "model.readout": "sum"})
    assert make_loss(spiking).reduction == "sum"
    vr = make_loss(spiking.with_overrides({"train.loss": "van_rossum", "train.van_rossum_tau_ms": 5.0}))
    assert isinstance(vr, VanRossum) and vr.tau_steps == 5.0       # randman: Δt = 1 ms
    with pytest.raises(SpikegradError, match="needs model.output = 'spikes'"):
        Config().with_overrides({"train.loss": "van_rossum"})
    with pytest.raises(SpikegradError, match=r"unknown train.loss 'cross_entropie' \(did you mean 'cross_entropy'\?\)"):
        Config().with_overrides({"train.loss": "cross_entropie"})
    with pytest.raises(SpikegradError, match="readout_steps must be 0"):
        Config().with_overrides({"model.output": "spikes", "model.readout_steps": 5})


# -- a spiking-output network on spike-train targets ------------------------------------------

STEPS, N_IN, N_OUT = 30, 12, 3


def _teacher_splits() -> DataSplits:
    """Poisson inputs; targets: the output spike trains of a fixed random teacher network of
    the student's shape (so that the student can reach distance 0)."""
    rng = np.random.default_rng(3)
    torch.manual_seed(11)
    teacher = SNN(N_IN, [16], N_OUT, output="spikes")
    with torch.no_grad():
        for p in teacher.parameters():
            p.mul_(10.0)                                # a teacher that spikes (~5 output spikes a sample)
    parts = []
    for n in (60, 20, 20):
        x = (rng.random((n, STEPS, N_IN)) < 0.15).astype(np.float32)
        with torch.no_grad():
            target = teacher(torch.from_numpy(x)).numpy()
        parts.append(DenseData(x, target, N_OUT, "teacher"))
    assert parts[0].labels.sum() > 20                   # the targets hold spikes
    return DataSplits(*parts, n_inputs=N_IN, n_classes=N_OUT)


def test_a_spiking_output_network_selects_its_best_epoch_by_the_distance(tmp_path):
    splits = _teacher_splits()
    cfg = Config().with_overrides({"data.n_steps": STEPS, "model.hidden": [16], "model.output": "spikes",
                                   "train.loss": "van_rossum", "train.van_rossum_tau_ms": 5.0,
                                   "train.epochs": 8, "train.batch_size": 20, "train.lr": 2e-2})
    metrics = train(cfg, tmp_path / "run", splits=splits)
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    distances = [row["val_distance"] for row in history]
    assert "val_accuracy" not in history[0] and "train_distance" in history[0]
    assert metrics["selection"] == {"metric": "val_distance", "higher_is_better": False}
    assert metrics["best_epoch"] == 1 + int(np.argmin(distances))        # the lowest distance, first of ties
    assert metrics["val_distance"] == pytest.approx(min(distances), rel=1e-6)
    assert min(distances) < 0.8 * distances[0]                           # it learnt
    assert metrics["kernels"][-1]["output"] == "spikes"
    assert len(metrics["hidden_spikes_per_layer"]) == 1                  # the output layer is no hidden layer


def test_a_spiking_output_network_returns_its_spike_trains_and_records_its_voltages():
    torch.manual_seed(0)
    net = SNN(N_IN, [8], N_OUT, LIFParams(), output="spikes")
    assert net.readout is None
    x = (torch.rand(2, STEPS, N_IN) < 0.2).float()
    out, rec = net.run(x)
    assert out.shape == (2, STEPS, N_OUT) and set(out.unique().tolist()) <= {0.0, 1.0}
    assert rec.readout.shape == (2, STEPS, N_OUT) and len(rec.spikes) == 1
    assert torch.equal(net(x), out)
    with pytest.raises(SpikegradError, match="unknown output 'spike'"):
        SNN(N_IN, [8], N_OUT, output="spike")


# -- a model that is no time-stepped scan ------------------------------------------------------

class FirstSpikeIF(nn.Module):
    """Test-only spike-time model: non-leaky integrate-and-fire output neurons with step
    synaptic currents, mapping input spike times t_i (steps) to output spike times

        V_k(t) = Σ_{i: t_i < t} w_ki (t − t_i),   t_k = (θ + Σ_{i∈C} w_ki t_i) / Σ_{i∈C} w_ki

    with C the inputs before t_k (Mostafa 2017, without the exponential change of
    variables); no crossing → t_max.  Exact spike-time gradients by autograd of the
    closed form."""

    def __init__(self, n_in, n_out, theta=4.0, t_max=100.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_out, n_in).uniform_(0.0, 0.3))
        self.theta, self.t_max = theta, t_max

    @staticmethod
    def input_times(x):
        x = x.to_dense() if hasattr(x, "to_dense") else x
        fired = x > 0
        first = fired.float().argmax(dim=1).float()
        return torch.where(fired.any(dim=1), first, torch.full_like(first, math.inf))   # [B, N]

    def spike_times(self, t_in):
        ts, order = t_in.sort(dim=1)                                        # [B, N]
        w = self.weight[:, order].permute(1, 0, 2)                          # [B, K, N]
        finite = torch.isfinite(ts)
        t0 = torch.where(finite, ts, torch.zeros_like(ts)).unsqueeze(1)
        sw = torch.cumsum(w * finite.unsqueeze(1), dim=2)
        swt = torch.cumsum(w * t0, dim=2)
        cand = (self.theta + swt) / sw.clamp_min(1e-9)
        nxt = torch.cat([ts[:, 1:], torch.full_like(ts[:, :1], math.inf)], dim=1).unsqueeze(1)
        valid = (sw > 0) & (cand >= ts.unsqueeze(1)) & (cand < nxt) & finite.unsqueeze(1)
        first = valid.float().argmax(dim=2, keepdim=True)
        t = cand.gather(2, first).squeeze(2)
        return torch.where(valid.any(dim=2), t, torch.full_like(t, self.t_max))

    def run(self, x):
        return self.spike_times(self.input_times(x)), Recording()

    def forward(self, x):
        return self.run(x)[0]


class FirstToSpike:
    """Test-only loss: softmax cross-entropy of −t_k/τ (the first output neuron to spike wins)."""

    name = "test-first-to-spike"
    metrics = ("accuracy",)
    selection = Selection("accuracy", True)

    def __call__(self, times, y):
        return F.cross_entropy(-times / 5.0, y)

    def predict(self, times):
        return times.argmin(1)

    def batch_metrics(self, times, y):
        return {"accuracy": int((self.predict(times) == y).sum())}


@pytest.fixture
def spike_time_parts():
    register_model("test-first-spike")(lambda cfg, n_in, n_out: FirstSpikeIF(n_in, n_out, theta=8.0))
    register_loss("test-first-to-spike")(lambda cfg: FirstToSpike())
    yield
    MODELS.remove("test-first-spike")
    LOSSES.remove("test-first-to-spike")


def test_the_spike_time_model_equals_a_fine_time_stepped_simulation():
    torch.manual_seed(2)
    model = FirstSpikeIF(6, 2, theta=1.0)
    t_in = torch.tensor([[0.0, 3.0, 1.0, math.inf, 7.0, 2.0]])
    got = model.spike_times(t_in)[0]
    dt = 1e-3
    for k in range(2):
        v, t, found = 0.0, 0.0, None
        w = model.weight[k].detach().double()
        while t < 100 and found is None:
            current = float(sum(w[i] for i in range(6) if t_in[0, i] <= t))
            v += current * dt
            t += dt
            if v >= 1.0:
                found = t
        assert got[k].item() == pytest.approx(found if found is not None else 100.0, abs=2e-3)


def test_a_spike_time_model_and_loss_from_a_test_file_train_through_the_config(tmp_path, spike_time_parts):
    cfg = Config().with_overrides({
        "data.randman.classes": 3, "data.randman.train_per_class": 40, "data.randman.val_per_class": 10,
        "data.randman.test_per_class": 10, "data.randman.terms": 50, "model.arch": "test-first-spike",
        "train.loss": "test-first-to-spike", "train.epochs": 6, "train.batch_size": 30, "train.lr": 3e-2})
    metrics = train(cfg, tmp_path / "run")
    history = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert metrics["val_accuracy"] > 0.5                  # 3 classes: chance is 1/3
    assert metrics["hidden_spikes_per_layer"] == [] and metrics["kernels"] == []
    with pytest.raises(SpikegradError, match="fluctuation"):
        train(cfg.with_overrides({"model.init": "fluctuation"}))
