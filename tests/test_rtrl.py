"""Exact forward-mode gradients (rtrl): BPTT's gradient, computed forward in time, for every
reset switch, LIF and ALIF, feed-forward and recurrent (Prop, Ctl), 1–3 hidden layers, every
readout and response windows (float64); the
hand-written recursion against torch.func.jvp through the reference scan; the state carried
from step to step the same size at T and 4T; one-line refusals."""

import pytest
import torch
import torch.nn.functional as F

from spikegrad import SNN, ALIFParams, Config, EventBatch, LIFParams, SpikegradError, train
from spikegrad.dynamics import scan
from spikegrad.losses import CrossEntropy
from spikegrad.rules import RTRL


def _net(hidden, readout="max", reset="zero", detach_reset=True, window=0, surrogate="superspike",
         recurrent=False, recurrent_grad="prop", alif=None):
    torch.manual_seed(6)
    common = dict(reset=reset, detach_reset=detach_reset, surrogate=surrogate, recurrent_grad=recurrent_grad)
    params = LIFParams(**common) if alif is None else ALIFParams(**common, tau_adapt=0.05, beta_adapt=0.5, **alif)
    net = SNN(9, list(hidden), 3, params, recurrent=recurrent, readout=readout, readout_steps=window,
              backend="reference").double()
    with torch.no_grad():
        for k, layer in enumerate(net.layers):
            layer.weight.mul_(6.0 if k == 0 else 12.0)          # every layer spikes
    return net


def _batch(steps=25):
    gen = torch.Generator().manual_seed(2)
    return (torch.rand(4, steps, 9, generator=gen, dtype=torch.float64) < 0.25).double(), torch.tensor([0, 2, 1, 1])


def _bptt(net, x, y):
    net.zero_grad()
    F.cross_entropy(net(x), y).backward()
    return {n: p.grad.clone() for n, p in net.named_parameters()}


CASES = [dict(hidden=[7]), dict(hidden=[7], readout="sum"), dict(hidden=[7], readout="mean"),
         dict(hidden=[7], readout="last"), dict(hidden=[7], detach_reset=False),
         dict(hidden=[7], reset="subtract"), dict(hidden=[7], reset="subtract", detach_reset=False),
         dict(hidden=[7, 5]), dict(hidden=[7, 5], readout="sum", detach_reset=False),
         dict(hidden=[7, 5], reset="subtract", detach_reset=False, readout="last"),
         dict(hidden=[7, 5, 4]), dict(hidden=[7], window=6), dict(hidden=[7, 5], readout="mean", window=6),
         dict(hidden=[7], surrogate="sigmoid"), dict(hidden=[7], recurrent=True),
         dict(hidden=[7], recurrent=True, recurrent_grad="ctl"),
         dict(hidden=[7], recurrent=True, reset="subtract", detach_reset=False, readout="sum"),
         dict(hidden=[7, 5], recurrent=True), dict(hidden=[7, 5], recurrent=True, detach_reset=False, readout="last"),
         dict(hidden=[7, 5], recurrent=True, recurrent_grad="ctl", window=6),
         dict(hidden=[7], alif={}), dict(hidden=[7], alif={}, reset="subtract", detach_reset=False),
         dict(hidden=[7], alif={"detach_adaptation": True}, recurrent=True, detach_reset=False),
         dict(hidden=[7, 5], alif={}, recurrent=True, reset="subtract", readout="sum")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_rtrl_equals_bptt(case):
    net = _net(**case)
    x, y = _batch()
    want = _bptt(net, x, y)
    got, logits, _ = RTRL(loss=CrossEntropy()).gradients(net, x, y)
    torch.testing.assert_close(logits, net(x).detach(), rtol=1e-12, atol=1e-12)
    for name in want:
        assert want[name].abs().max() > 0, name                      # a case where every gradient is alive
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-13, msg=name)


def test_events_and_dense_input_give_the_same_gradient():
    net = _net([7, 5])
    x, y = _batch()
    rule = RTRL(loss=CrossEntropy())
    a, _, _ = rule.gradients(net, x, y)
    b, _, _ = rule.gradients(net, EventBatch.from_dense(x), y)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_sensitivity_recursion_equals_forward_mode_autodiff_through_the_scan():
    """∂S[n]/∂W_ij by torch.func.jvp through the reference scan, one tangent per weight,
    against σ′ E of the recursion, on one tiny layer."""
    torch.manual_seed(1)
    p = LIFParams(detach_reset=False)
    w = torch.randn(3, 4, dtype=torch.float64) * 2
    x = (torch.rand(2, 15, 4, dtype=torch.float64) < 0.4).double()

    def spikes(weight):
        return scan(x @ weight.t(), None, p)[0]

    from spikegrad.surrogates import get_surrogate
    q = torch.zeros(2, 4, dtype=torch.float64)
    E = torch.zeros(2, 3, 4, dtype=torch.float64)
    u, i = torch.zeros(2, 3, dtype=torch.float64), torch.zeros(2, 3, dtype=torch.float64)
    recursion = []
    for n in range(15):
        d = get_surrogate(p.surrogate)(u - 1.0, p.beta)
        s = (u > 1.0).double()
        recursion.append(d.unsqueeze(2) * E)
        a, c = 1.0 - s, -(p.decay_mem * u + p.gain * i) * d
        E = a.unsqueeze(2) * (p.decay_mem * E + p.gain * q.unsqueeze(1)) + c.unsqueeze(2) * E
        u, i = (p.decay_mem * u + p.gain * i) * (1 - s), p.decay_syn * i + x[:, n] @ w.t()
        q = p.decay_syn * q + x[:, n]
    for r in range(3):
        for j in range(4):
            tangent = torch.zeros_like(w)
            tangent[r, j] = 1.0
            _, dS = torch.func.jvp(spikes, (w,), (tangent,))
            got = torch.stack([rec[:, r, j] for rec in recursion], 1)
            torch.testing.assert_close(dS[:, :, r], got, rtol=1e-12, atol=1e-14)
            assert dS[:, :, [k for k in range(3) if k != r]].abs().max() == 0   # row r moves neuron r only


def test_the_state_carried_between_steps_does_not_grow_with_t():
    net = _net([7, 5])
    rule = RTRL(loss=CrossEntropy())
    sizes = []
    for steps in (25, 100):
        x, y = _batch(steps)
        rule.gradients(net, x, y)
        sizes.append(rule.carried)
    b, n_in, n1, n2 = 4, 9, 7, 5
    # q (inputs filtered), E (own sensitivities), J and M (layer 2 to W1), U and I of both layers
    assert sizes[0] == sizes[1] == b * (n_in + n1 + n1 * n_in + n2 * n1 + 2 * n2 * n1 * n_in + 2 * n1 + 2 * n2)


@pytest.mark.parametrize("override, message", [
    ({"regularizer.upper_strength": 0.1}, "activity regulariser"),
    ({"model.output": "spikes", "model.readout": "sum"}, "with the leaky readout"),
])
def test_what_rtrl_does_not_take_is_one_clear_error(override, message):
    cfg = Config().with_overrides({"data.randman.classes": 2, "data.randman.train_per_class": 10,
                                   "data.randman.val_per_class": 4, "data.randman.test_per_class": 4,
                                   "model.hidden": [8], "train.epochs": 1, "train.rule": "rtrl", **override})
    with pytest.raises(SpikegradError, match=message):
        train(cfg)


def test_a_state_that_would_not_fit_is_refused():
    net = _net([7, 5], recurrent=True)
    x, y = _batch()
    with pytest.raises(SpikegradError, match=r"would carry .* GiB of sensitivities per step \(batch 4, layers "
                                             r"\[9, 7, 5\], recurrent\)"):
        RTRL(loss=CrossEntropy(), max_bytes=1000).gradients(net, x, y)
    cfg = Config().with_overrides({"model.recurrent": True, "model.hidden": [256], "train.rule": "rtrl",
                                   "train.epochs": 1})
    with pytest.raises(SpikegradError, match="GiB of sensitivities"):     # 250 × 256³ × 2 × 4 B ≈ 31 GiB
        train(cfg)


PRODUCT = [dict(hidden=h, reset=r, detach_reset=d, recurrent=m != "ff", recurrent_grad="ctl" if m == "ctl" else "prop",
                readout=ro, alif={} if n == "alif" else None)
           for h in ([7], [7, 5]) for r in ("zero", "subtract") for d in (True, False) for m in ("ff", "prop", "ctl")
           for ro in ("max", "sum", "last") for n in ("lif", "alif")]


@pytest.mark.parametrize("case", PRODUCT, ids=lambda c: "-".join(
    [f"h{len(c['hidden'])}", c["reset"], "detached" if c["detach_reset"] else "diff",
     "ff" if not c["recurrent"] else c["recurrent_grad"], c["readout"], "alif" if c["alif"] is not None else "lif"]))
def test_rtrl_equals_bptt_for_every_combination_of_switches(case):
    net = _net(**case)
    x, y = _batch(25)
    want = _bptt(net, x, y)
    got, _, _ = RTRL(loss=CrossEntropy()).gradients(net, x, y)
    for name in want:
        assert want[name].abs().max() > 0, name                      # every gradient alive in every case
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-13, msg=name)
