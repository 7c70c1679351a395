"""Local errors (dcll): every layer's update equals the DECOLLE formula computed here with
plain tensors (Toeplitz-filtered traces, float64); the readout's equals BPTT's; no gradient
reaches a layer from the layers above; the state carried between steps does not grow with
T; the local readouts are saved and restored bit-exactly; what it cannot train is said."""

import math

import pytest
import torch
import torch.nn.functional as F

from spikegrad import SNN, ALIFParams, Config, LIFParams, SpikegradError, train
from spikegrad.dynamics import scan
from spikegrad.rules import DCLL
from spikegrad.surrogates import get_surrogate

TINY = {"data.randman.classes": 3, "data.randman.train_per_class": 40, "data.randman.val_per_class": 10,
        "data.randman.test_per_class": 10, "data.randman.terms": 50, "model.hidden": [16],
        "train.epochs": 4, "train.batch_size": 30, "train.lr": 1e-2, "model.init": "fluctuation"}


def _net(params, recurrent=False, readout="max", readout_steps=0, hidden=(10, 8)):
    torch.manual_seed(4)
    net = SNN(12, list(hidden), 3, params, recurrent=recurrent, readout=readout, readout_steps=readout_steps,
              backend="reference").double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(6.0)
    return net


def _batch(steps=30):
    gen = torch.Generator().manual_seed(9)
    return (torch.rand(4, steps, 12, generator=gen, dtype=torch.float64) < 0.2).double(), torch.tensor([0, 1, 2, 1])


def _filtered(x, p):
    """P[n] = g Σ_{m<n} β_mem^{n−1−m} Q[m], Q[m] = Σ_{k<m} β_syn^{m−1−k} x[k], as Toeplitz products."""
    steps = x.shape[1]
    n = torch.arange(steps, dtype=torch.float64)
    lag = n[:, None] - 1 - n[None, :]
    syn = torch.where(lag >= 0, p.decay_syn ** lag.clamp(min=0), torch.zeros(()))
    mem = torch.where(lag >= 0, p.decay_mem ** lag.clamp(min=0), torch.zeros(()))
    q = torch.einsum("nk,bki->bni", syn, x)
    return p.gain * torch.einsum("nm,bmi->bni", mem, q)


def _formula(net, rule, x, y):
    p = net.params
    grads, inp = {}, x
    n0, steps = rule.burn_in, x.shape[1]
    onehot = F.one_hot(y, 3).double()
    for k, layer in enumerate(net.layers):
        ff = inp @ layer.weight.t()
        s, traces = scan(ff.detach(), layer.recurrent_weight.detach() if layer.recurrent_weight is not None else None, p)
        theta = 1.0 + p.beta_adapt * traces.b if hasattr(traces, "b") else 1.0
        G = rule.matrices[f"G{k}"]
        d_s = (torch.softmax(s @ G.t(), -1) - onehot[:, None]) @ G / (x.shape[0] * (steps - n0))
        d_s[:, :n0] = 0
        d_u = d_s * get_surrogate(p.surrogate)(traces.u - theta, p.beta)
        grads[f"layers.{k}.weight"] = torch.einsum("bnj,bni->ji", d_u, _filtered(inp, p))
        if layer.recurrent_weight is not None:
            grads[f"layers.{k}.recurrent_weight"] = torch.einsum("bnj,bni->ji", d_u, _filtered(s, p))
        inp = s
    w = net.readout.weight.detach().clone().requires_grad_()
    ro = net.readout
    h = inp[:, -ro.window:] @ w.t() if ro.window else inp @ w.t()
    from spikegrad.neurons import leaky_readout
    logits = ro.reduce(leaky_readout(h, ro.decay_out, ro.decay_syn, ro.gain, ro.initial_state))
    (grads["readout.weight"],) = torch.autograd.grad(F.cross_entropy(logits, y), w)
    return grads, logits.detach()


@pytest.mark.parametrize("params, recurrent, readout, window", [
    (LIFParams(), False, "max", 0), (LIFParams(), True, "sum", 0), (LIFParams(reset="subtract"), False, "last", 0),
    (ALIFParams(tau_adapt=0.05, beta_adapt=0.5), True, "max", 0), (LIFParams(), False, "mean", 8),
], ids=["lif-ff-max", "lif-rc-sum", "lif-subtract-last", "alif-rc-max", "lif-window-mean"])
def test_every_update_equals_the_decolle_formula(params, recurrent, readout, window):
    net = _net(params, recurrent, readout, window)
    rule = DCLL(burn_in=5)
    x, y = _batch()
    got, logits, _ = rule.gradients(net, x, y)
    want, want_logits = _formula(net, rule, x, y)
    torch.testing.assert_close(logits, want_logits, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(logits, net(x).detach(), rtol=1e-12, atol=1e-12)       # the network's own logits
    for name in want:
        assert got[name].abs().max() > 0, name
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-13, msg=name)


def test_no_gradient_reaches_a_layer_from_the_layers_above():
    net = _net(LIFParams())
    rule = DCLL(burn_in=5)
    x, y = _batch()
    before, _, _ = rule.gradients(net, x, y)
    with torch.no_grad():
        net.layers[1].weight.mul_(-2.0)
        net.readout.weight.normal_()
    rule.matrices["G1"] = torch.randn_like(rule.matrices["G1"])
    after, _, _ = rule.gradients(net, x, y)
    assert torch.equal(after["layers.0.weight"], before["layers.0.weight"])
    assert not torch.equal(after["layers.1.weight"], before["layers.1.weight"])


def test_the_state_carried_between_steps_does_not_grow_with_t():
    net = _net(LIFParams(), recurrent=True)
    rule = DCLL(burn_in=5)
    sizes = []
    for steps in (30, 120):
        x, y = _batch(steps)
        rule.gradients(net, x, y)
        sizes.append(rule.carried)
    batch, n_in, n1, n2, classes = 4, 12, 10, 8, 3
    per_layer = lambda n_inp, n: 2 * n_inp + 2 * n + 2 * n    # noqa: E731  q, P; q_rec, P_rec; U, I
    assert sizes[0] == sizes[1] == batch * (per_layer(n_in, n1) + per_layer(n1, n2) + 2 * n2 + classes
                                             + classes * n2)


def test_local_readouts_are_saved_and_restored_bit_exactly(tmp_path, resumes_bit_exactly):
    resumes_bit_exactly(Config().with_overrides({**TINY, "train.rule": "dcll", "model.hidden": [16, 8]}), tmp_path)
    ckpt = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    assert set(ckpt["rule"]) == {"G0", "G1"} and ckpt["rule"]["G0"].shape == (3, 16)


@pytest.mark.parametrize("override, message", [
    ({"model.output": "spikes", "model.readout": "sum"}, "with the leaky readout"),
    ({"model.hidden": [0]}, "model.hidden has none"),
    ({"regularizer.upper_strength": 0.1}, "does not take the activity regulariser"),
])
def test_what_dcll_cannot_train_is_one_clear_error(override, message):
    with pytest.raises(SpikegradError, match=message):
        train(Config().with_overrides({**TINY, "train.rule": "dcll", **override}))


def test_dcll_trains_by_name():
    small = {**TINY, "data.randman.train_per_class": 60, "data.randman.val_per_class": 20,
             "data.randman.test_per_class": 20, "model.hidden": [32], "train.epochs": 8}
    metrics = train(Config().with_overrides({**small, "train.rule": "dcll"}))
    assert metrics["val_accuracy"] > 0.5                                   # 3 classes: chance is 1/3
    assert math.isfinite(metrics["test_loss"])


def test_events_and_dense_input_give_the_same_update():
    from spikegrad import EventBatch

    net = _net(LIFParams(), recurrent=True)
    rule = DCLL(burn_in=5)
    x, y = _batch()
    dense, _, _ = rule.gradients(net, x, y)
    events, _, _ = rule.gradients(net, EventBatch.from_dense(x), y)
    for name in dense:
        assert torch.equal(dense[name], events[name]), name
