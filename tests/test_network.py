"""The network's loss and every parameter gradient against an independent float64 reference.

The reference below is written from SCIENCE.md §1–2 without calling library code: a plain
step loop, and the surrogate implemented as a straight-through trick
S = Θ(x) + g(x) − stopgrad(g(x)) with g′ = h (antiderivatives written out per shape),
a different mechanism from the library's custom autograd function.
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from spikegrad import SNN, LIFParams, SpikegradError

DT, TAU_MEM, TAU_SYN, TAU_OUT = 1e-3, 10e-3, 5e-3, 20e-3


def antiderivative(name: str, x: torch.Tensor, beta: float) -> torch.Tensor:
    """g with g′(x) = h(x) for each surrogate shape of SCIENCE.md §2."""
    if name == "superspike":
        return x / (beta * x.abs() + 1)
    if name == "superspike-asym":
        return beta * x / (beta * x.abs() + 1)
    if name == "sigmoid":
        return torch.sigmoid(beta * x) / beta if beta > 0 else x / 4
    if name == "esser":
        if beta == 0:
            return x
        c = x.clamp(-1 / beta, 1 / beta)
        return c - beta * c * c.abs() / 2
    if name == "true":
        return 0.0 * x  # stays in the graph, derivative exactly zero
    raise AssertionError(name)


def ref_spike(x, name, beta):
    g = antiderivative(name, x, beta)
    return (x > 0).double() + (g - g.detach())


def ref_forward(x, weights, rec_weights, w_out, opt):
    """Plain step loop of eq. 4.1; returns (logits, hidden spike trains)."""
    b_mem, b_syn, b_out = (math.exp(-DT / t) for t in (TAU_MEM, TAU_SYN, TAU_OUT))
    gain = (1 - b_mem) if opt["input_gain"] else 1.0
    gain_out = (1 - b_out) if opt["input_gain"] else 1.0
    batch, steps, _ = x.shape
    inp = [x[:, n, :] for n in range(steps)]
    all_spikes = []
    for w, v in zip(weights, rec_weights):
        n_out = w.shape[0]
        u = torch.zeros(batch, n_out, dtype=torch.float64)
        i = torch.zeros(batch, n_out, dtype=torch.float64)
        out = []
        for n in range(steps):
            s = ref_spike(u - 1, opt["surrogate"], opt["beta"])
            r = s.detach() if opt["detach_reset"] else s
            if opt["reset"] == "zero":
                u_new = (b_mem * u + gain * i) * (1 - r)
            else:
                u_new = b_mem * u + gain * i - r
            i_new = b_syn * i + inp[n] @ w.t()
            if v is not None:
                s_in = s.detach() if opt["recurrent_grad"] == "ctl" else s
                i_new = i_new + s_in @ v.t()
            out.append(s)
            u, i = u_new, i_new
        inp = out
        all_spikes.append(torch.stack(out, 1))
    u = torch.full((batch, w_out.shape[0]), opt["readout_init"], dtype=torch.float64)
    i = torch.zeros(batch, w_out.shape[0], dtype=torch.float64)
    trace = []
    for n in range(steps):
        trace.append(u)
        u, i = b_out * u + gain_out * i, b_syn * i + inp[n] @ w_out.t()
    trace = torch.stack(trace, 1)
    logits = {"max": trace.max(1).values, "sum": trace.sum(1), "mean": trace.mean(1),
              "last": trace[:, -1]}[opt["readout"]]
    return logits, all_spikes


def make_case(hidden, recurrent, seed=0, n_in=5, steps=16, classes=3, batch=4):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, steps, n_in, generator=gen) < 0.3).double()
    y = torch.randint(0, classes, (batch,), generator=gen)
    sizes = [n_in, *hidden]
    # weights biased positive and strong enough that every layer spikes
    weights = [(torch.rand(b, a, generator=gen, dtype=torch.float64) * 3.0 - 0.6) for a, b in zip(sizes, sizes[1:])]
    recs = [(torch.rand(b, b, generator=gen, dtype=torch.float64) * 2.0 - 1.0) if recurrent else None for b in hidden]
    w_out = torch.rand(classes, sizes[-1], generator=gen, dtype=torch.float64) * 2 - 1
    return x, y, weights, recs, w_out


def library_loss_and_grads(x, y, weights, recs, w_out, opt, hidden, recurrent):
    p = LIFParams(dt=DT, tau_mem=TAU_MEM, tau_syn=TAU_SYN, reset=opt["reset"],
                  input_gain=opt["input_gain"], detach_reset=opt["detach_reset"],
                  recurrent_grad=opt["recurrent_grad"], surrogate=opt["surrogate"], beta=opt["beta"])
    net = SNN(x.shape[-1], hidden, w_out.shape[0], p, recurrent=recurrent, tau_out=TAU_OUT,
              readout=opt["readout"], readout_init=opt["readout_init"]).double()
    with torch.no_grad():
        for layer, w, v in zip(net.layers, weights, recs):
            layer.weight.copy_(w)
            if v is not None:
                layer.recurrent_weight.copy_(v)
        net.readout.weight.copy_(w_out)
    logits, rec = net.run(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    grads = []
    for layer in net.layers:
        grads.append(layer.weight.grad)
        if layer.recurrent_weight is not None:
            grads.append(layer.recurrent_weight.grad)
    grads.append(net.readout.weight.grad)
    return loss.detach(), grads, rec


def reference_loss_and_grads(x, y, weights, recs, w_out, opt):
    params = []
    for w, v in zip(weights, recs):
        params.append(w.clone().requires_grad_())
        if v is not None:
            params.append(v.clone().requires_grad_())
    ws, vs, k = [], [], 0
    for v in recs:
        ws.append(params[k]); k += 1
        if v is not None:
            vs.append(params[k]); k += 1
        else:
            vs.append(None)
    wo = w_out.clone().requires_grad_()
    logits, spikes = ref_forward(x, ws, vs, wo, opt)
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, params + [wo])
    return loss.detach(), list(grads), spikes


SURROGATES = ["superspike", "superspike-asym", "sigmoid", "esser", "true"]
COMBOS = list(itertools.product(
    SURROGATES, ["zero", "subtract"], [True, False], [True, False],
    [("ff", "prop"), ("rc", "prop"), ("rc", "ctl")], [[6], [6, 5]]))


@pytest.mark.parametrize("surrogate,reset,detach_reset,input_gain,conn,hidden", COMBOS)
def test_loss_and_gradients_equal_reference(surrogate, reset, detach_reset, input_gain, conn, hidden):
    recurrent = conn[0] == "rc"
    x, y, weights, recs, w_out = make_case(hidden, recurrent, seed=len(hidden) + 7 * recurrent)
    for readout in ["max", "sum", "mean", "last"]:
        opt = dict(surrogate=surrogate, beta=5.0, reset=reset, detach_reset=detach_reset,
                   input_gain=input_gain, recurrent_grad=conn[1], readout=readout, readout_init=-1e-3)
        loss, grads, rec = library_loss_and_grads(x, y, weights, recs, w_out, opt, hidden, recurrent)
        ref_loss, ref_grads, ref_spikes = reference_loss_and_grads(x, y, weights, recs, w_out, opt)
        for s, rs in zip(rec.spikes, ref_spikes):
            assert s.sum() > 0, "test case must make every layer spike"
            assert torch.equal(s.detach(), rs.detach())
        torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
        assert len(grads) == len(ref_grads)
        for g, rg in zip(grads, ref_grads):
            torch.testing.assert_close(g, rg, rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("readout", ["max", "sum", "mean", "last"])
@pytest.mark.parametrize("beta", [0.0, 10.0])
def test_no_hidden_layer_and_slopes_equal_reference(readout, beta):
    x, y, weights, recs, w_out = make_case([], False, seed=3)
    opt = dict(surrogate="superspike", beta=beta, reset="zero", detach_reset=True, input_gain=True,
               recurrent_grad="prop", readout=readout, readout_init=-1e-3)
    loss, grads, _ = library_loss_and_grads(x, y, weights, recs, w_out, opt, [], False)
    ref_loss, ref_grads, _ = reference_loss_and_grads(x, y, weights, recs, w_out, opt)
    torch.testing.assert_close(loss, ref_loss, rtol=1e-6, atol=0)
    torch.testing.assert_close(grads[0], ref_grads[0], rtol=1e-6, atol=1e-12)
    # and β = 0 with one hidden layer (SuperSpike's constant surrogate)
    x, y, weights, recs, w_out = make_case([6], True, seed=4)
    loss, grads, _ = library_loss_and_grads(x, y, weights, recs, w_out, opt, [6], True)
    ref_loss, ref_grads, _ = reference_loss_and_grads(x, y, weights, recs, w_out, opt)
    for g, rg in zip(grads, ref_grads):
        torch.testing.assert_close(g, rg, rtol=1e-6, atol=1e-12)


BASE = dict(beta=5.0, reset="zero", detach_reset=True, input_gain=True, recurrent_grad="prop",
            readout="max", readout_init=-1e-3)


def test_true_gradient_gives_hidden_layers_nothing():
    x, y, weights, recs, w_out = make_case([6, 5], True, seed=1)
    _, grads, _ = library_loss_and_grads(x, y, weights, recs, w_out, dict(BASE, surrogate="true"), [6, 5], True)
    for g in grads[:-1]:
        assert torch.count_nonzero(g) == 0
    assert torch.count_nonzero(grads[-1]) > 0  # the readout still learns


def test_differentiable_reset_changes_gradients():
    x, y, weights, recs, w_out = make_case([6], False, seed=2)
    _, detached, _ = library_loss_and_grads(x, y, weights, recs, w_out, dict(BASE, surrogate="superspike"), [6], False)
    _, diff, _ = library_loss_and_grads(x, y, weights, recs, w_out,
                                        dict(BASE, surrogate="superspike", detach_reset=False), [6], False)
    assert not torch.allclose(detached[0], diff[0])
    torch.testing.assert_close(detached[1], diff[1])  # readout gradient: same forward, same spikes


def test_ctl_detaches_spikes_inside_recurrence_only():
    x, y, weights, recs, w_out = make_case([6], True, seed=5)
    _, prop, _ = library_loss_and_grads(x, y, weights, recs, w_out, dict(BASE, surrogate="sigmoid"), [6], True)
    _, ctl, _ = library_loss_and_grads(x, y, weights, recs, w_out,
                                       dict(BASE, surrogate="sigmoid", recurrent_grad="ctl"), [6], True)
    assert not torch.allclose(prop[0], ctl[0])
    assert torch.count_nonzero(ctl[1]) > 0  # V still learns under Ctl


@pytest.mark.parametrize("surrogate,expect_grad", [
    ("superspike", True), ("superspike-asym", True), ("sigmoid", True), ("esser", False), ("true", False)])
def test_silent_network_still_gets_a_gradient(surrogate, expect_grad):
    """SCIENCE.md §7: with U_out[0] = −1e-3 the max is not at a constant step."""
    torch.manual_seed(0)
    net = SNN(20, [16], 4, LIFParams(surrogate=surrogate, beta=10.0))
    x = torch.zeros(8, 40, 20)
    x[:, 5] = 1.0
    logits, rec = net.run(x)
    assert rec.spikes[0].sum() == 0, "network must be silent for this test"
    assert rec.voltages[0].max() < 0.9  # below esser's support (|U − 1| < 1/β)
    F.cross_entropy(logits, torch.arange(8) % 4).backward()
    assert (net.layers[0].weight.grad.abs().sum() > 0) == expect_grad


def test_silent_network_with_zero_readout_state_gets_no_gradient():
    torch.manual_seed(0)
    net = SNN(20, [16], 4, LIFParams(), readout_init=0.0)
    x = torch.zeros(8, 40, 20)
    x[:, 5] = 1.0
    logits, rec = net.run(x)
    assert rec.spikes[0].sum() == 0
    F.cross_entropy(logits, torch.arange(8) % 4).backward()
    assert net.layers[0].weight.grad.abs().sum() == 0  # the pitfall the default avoids


def test_shapes_record_and_init_bounds():
    torch.manual_seed(0)
    net = SNN(7, [32, 9], 4, recurrent=True)
    logits, rec = net.run(torch.zeros(3, 11, 7))
    assert logits.shape == (3, 4)
    assert [s.shape for s in rec.spikes] == [(3, 11, 32), (3, 11, 9)]
    assert [u.shape for u in rec.voltages] == [(3, 11, 32), (3, 11, 9)]
    assert rec.readout.shape == (3, 11, 4)
    torch.testing.assert_close(rec.readout[:, 0], torch.full((3, 4), -1e-3))
    assert sorted(net.state_dict()) == ["layers.0.recurrent_weight", "layers.0.weight",
                                        "layers.1.recurrent_weight", "layers.1.weight", "readout.weight"]
    for name, fan_in in [("layers.0.weight", 7), ("layers.0.recurrent_weight", 32),
                         ("layers.1.weight", 32), ("readout.weight", 9)]:
        w = net.state_dict()[name]
        bound = 1 / math.sqrt(fan_in)
        assert w.abs().max() <= bound and w.abs().max() > 0.8 * bound


@pytest.mark.parametrize("shape", [(3, 11), (3, 11, 6), (2, 3, 11, 7)])
def test_wrong_input_shape_raises(shape):
    net = SNN(7, [5], 2)
    with pytest.raises(SpikegradError, match=r"\[batch, time, 7\]"):
        net(torch.zeros(shape))


def test_bad_sizes_raise():
    with pytest.raises(SpikegradError, match="positive"):
        SNN(7, [0, 3], 2)
    with pytest.raises(SpikegradError, match="readout"):
        SNN(7, [3], 2, readout="median")


@pytest.mark.parametrize("readout", ["max", "sum", "mean", "last"])
def test_readout_window_listens_only_to_the_last_steps(readout):
    """The readout starts fresh at T − k: activity before the window cannot reach the logits."""
    from spikegrad.neurons import leaky_readout

    torch.manual_seed(0)
    net = SNN(4, [6], 3, readout=readout, readout_steps=5)
    with torch.no_grad():
        net.layers[0].weight.mul_(20)
    x = (torch.rand(2, 20, 4) < 0.3).float()
    logits, rec = net.run(x)
    assert rec.readout.shape == (2, 5, 3)
    ro = net.readout
    trace = leaky_readout(rec.spikes[0][:, -5:] @ ro.weight.t(), ro.decay_out, ro.decay_syn, ro.gain, -1e-3)
    torch.testing.assert_close(rec.readout, trace)
    expect = {"max": trace.max(1).values, "sum": trace.sum(1), "mean": trace.mean(1), "last": trace[:, -1]}[readout]
    torch.testing.assert_close(logits, expect)
    with pytest.raises(SpikegradError, match="window"):
        SNN(4, [6], 3, readout_steps=-1)
