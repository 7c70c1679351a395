"""The fused LIF kernel (backend "fused", issue 5) against the plain autograd reference.

The forward pass must be bitwise identical (same operations in the same order); the
hand-written adjoint must give the reference's gradients w.r.t. ff and v to 1e-10
(relative, float64) for the whole neuron family.  No gradcheck: the forward pass is a step
function, the surrogate gradient is not its derivative — the reference is the oracle.
"""

import itertools

import pytest
import torch
import torch.nn.functional as F

from spikegrad import SNN, LIFParams, SpikegradError, lif_layer, register_surrogate
from spikegrad.kernels.fused import FusedLIF, lif_fused, saved_bytes_per_neuron_step
from spikegrad.neurons import lif_reference
from kernel_helpers import CONNECTIVITY, SURROGATES, assert_rel_close, make_inputs, outputs_and_grads



@register_surrogate("test-fused-cubic", "user-registered: (1 − β|x|)³ on |x| < 1/β")
def _cubic(x, beta):
    return torch.clamp(1.0 - beta * x.abs(), min=0.0) ** 3


def compare(p, ff, v, **kw):
    s_r, u_r, g_r = outputs_and_grads(lif_reference, ff, v, p, **kw)
    s_f, u_f, g_f = outputs_and_grads(lif_fused, ff, v, p, **kw)
    assert torch.equal(s_f, s_r)
    assert torch.equal(u_f, u_r)
    assert s_f.dtype == s_r.dtype and u_f.dtype == u_r.dtype
    assert len(g_f) == len(g_r)
    for gf, gr in zip(g_f, g_r):
        assert_rel_close(gf, gr)
    return s_r, g_r


@pytest.mark.parametrize("surrogate,reset,detach_reset,input_gain,conn", list(itertools.product(
    SURROGATES, ["zero", "subtract"], [True, False], [True, False], CONNECTIVITY)))
def test_fused_equals_reference_float64(surrogate, reset, detach_reset, input_gain, conn):
    recurrent = conn[0] == "rc"
    p = LIFParams(reset=reset, detach_reset=detach_reset, input_gain=input_gain,
                  recurrent_grad=conn[1], surrogate=surrogate, beta=5.0)
    seed = 100 * input_gain + 10 * (reset == "zero") + CONNECTIVITY.index(conn)
    ff, v = make_inputs(seed=seed, recurrent=recurrent,
                        input_gain=input_gain)
    spikes, grads = compare(p, ff, v)
    rate = spikes.mean().item()
    assert 0.02 < rate < 0.9, f"test case must spike (rate {rate:.3f})"
    if surrogate != "true":
        assert grads[0].abs().sum() > 0
    if recurrent:
        assert grads[1].abs().sum() > 0  # V learns under "prop" and "ctl"


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("conn", CONNECTIVITY)
def test_fused_spike_trains_identical_float32_large(reset, conn):
    recurrent = conn[0] == "rc"
    p = LIFParams(reset=reset, recurrent_grad=conn[1], detach_reset=(reset == "zero"))
    gen = torch.Generator().manual_seed(7)
    ff = (torch.rand(16, 100, 64, generator=gen) - 0.4) * 10.0
    v = (torch.rand(64, 64, generator=gen) * 2 - 1) * 0.5 if recurrent else None
    with torch.no_grad():
        s_r, u_r = lif_reference(ff, v, p)
        s_f, u_f = lif_fused(ff, v, p)
    assert s_r.sum() > 0.02 * s_r.numel()
    assert torch.equal(s_f, s_r)
    assert torch.equal(u_f, u_r)


def test_fused_float32_gradients_close():
    p = LIFParams(surrogate="sigmoid", detach_reset=False)
    ff, v = make_inputs(3, batch=8, steps=60, n=32, dtype=torch.float32)
    s_r, u_r, g_r = outputs_and_grads(lif_reference, ff, v, p)
    s_f, u_f, g_f = outputs_and_grads(lif_fused, ff, v, p)
    assert torch.equal(s_f, s_r)
    for gf, gr in zip(g_f, g_r):
        assert_rel_close(gf, gr, rel=1e-4)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("conn", CONNECTIVITY)
def test_beta_zero(surrogate, conn):
    p = LIFParams(surrogate=surrogate, beta=0.0, recurrent_grad=conn[1], detach_reset=False)
    ff, v = make_inputs(11, recurrent=conn[0] == "rc")
    compare(p, ff, v)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("conn", CONNECTIVITY)
def test_user_registered_surrogate(reset, conn):
    p = LIFParams(surrogate="test-fused-cubic", beta=2.0, reset=reset, detach_reset=False,
                  recurrent_grad=conn[1])
    ff, v = make_inputs(5, recurrent=conn[0] == "rc")
    _, grads = compare(p, ff, v)
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize("which", ["spikes", "voltages"])
@pytest.mark.parametrize("detach_reset", [True, False])
def test_gradient_from_one_output_only(which, detach_reset):
    """Only one output in the loss: the other's gradient arrives as None and is skipped."""
    p = LIFParams(detach_reset=detach_reset, surrogate="sigmoid")
    ff, v = make_inputs(2)
    compare(p, ff, v, spike_grad=which == "spikes", volt_grad=which == "voltages")


def test_gradient_w_r_t_one_input_only():
    p = LIFParams(detach_reset=False)
    ff, v = make_inputs(4)
    _, _, (g_ff_ref, g_v_ref) = outputs_and_grads(lif_reference, ff, v, p)
    # V only (ff a constant), then ff only (V a constant)
    v1 = v.clone().requires_grad_()
    s, u = lif_fused(ff, v1, p)
    gen = torch.Generator().manual_seed(1000)
    loss = (s * torch.randn(s.shape, generator=gen, dtype=s.dtype)).sum() + \
        (u * torch.randn(u.shape, generator=gen, dtype=u.dtype)).sum()
    loss.backward()
    assert_rel_close(v1.grad, g_v_ref)
    ff1 = ff.clone().requires_grad_()
    s, u = lif_fused(ff1, v, p)
    gen = torch.Generator().manual_seed(1000)
    loss = (s * torch.randn(s.shape, generator=gen, dtype=s.dtype)).sum() + \
        (u * torch.randn(u.shape, generator=gen, dtype=u.dtype)).sum()
    loss.backward()
    assert_rel_close(ff1.grad, g_ff_ref)


def test_very_short_sequences_and_silence():
    p = LIFParams(detach_reset=False)
    for steps in (3, 4):
        ff, v = make_inputs(6, steps=steps)
        compare(p, ff, v)
    compare(p, torch.zeros(2, 7, 3, dtype=torch.float64), None)  # silent layer
    # T ≤ 2: no output depends on the input (the reference's outputs are then constants)
    ff, v = make_inputs(6, steps=2)
    _, _, grads = outputs_and_grads(lif_fused, ff, v, p)
    assert all(torch.count_nonzero(g) == 0 for g in grads)
    assert lif_fused(ff.new_zeros(2, 0, 3), None, p)[0].shape == (2, 0, 3)


def test_one_autograd_node_for_all_steps():
    ff = torch.randn(2, 30, 3, requires_grad=True)
    s, u = lif_layer(ff, torch.randn(3, 3, requires_grad=True), LIFParams(), backend="fused")
    assert type(s.grad_fn).__name__ == "FusedLIFBackward"
    assert s.grad_fn is u.grad_fn
    assert {type(n).__name__ for n, _ in s.grad_fn.next_functions if n is not None} == {"AccumulateGrad"}


@pytest.mark.parametrize("reset,detach_reset,expect", [
    ("zero", True, 4), ("subtract", True, 4), ("subtract", False, 4), ("zero", False, 5)])
def test_saved_for_backward_bytes(reset, detach_reset, expect):
    """Only U (float32: 4 B per neuron and step), plus bool spikes for a differentiable zero reset."""
    batch, steps, n = 4, 50, 8
    p = LIFParams(reset=reset, detach_reset=detach_reset)
    ff = torch.randn(batch, steps, n, requires_grad=True)
    v = torch.randn(n, n, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lif_fused(ff, v, p)
    big = [t for t in saved if t.dim() == 3]
    total = sum(t.numel() * t.element_size() for t in big)
    assert total == expect * batch * steps * n
    assert saved_bytes_per_neuron_step(p) == expect
    assert sum(t.numel() for t in saved if t.dim() != 3) == n * n  # and V itself


def test_dispatch():
    ff = torch.rand(2, 10, 4, dtype=torch.float64) * 5
    s_r, u_r = lif_layer(ff, None, LIFParams(), backend="reference")
    s_f, u_f = lif_layer(ff, None, LIFParams(), backend="fused")
    assert torch.equal(s_r, s_f) and torch.equal(u_r, u_f)
    with pytest.raises(SpikegradError, match="recurrent weights"):
        lif_fused(ff, torch.zeros(3, 3, dtype=torch.float64), LIFParams())
    with pytest.raises(SpikegradError, match="dtype"):
        lif_fused(ff, torch.zeros(4, 4), LIFParams())
    assert FusedLIF.__name__ == "FusedLIF"


def _snn_loss_and_grads(backend, opt):
    torch.manual_seed(0)
    p = LIFParams(**opt)
    net = SNN(10, [12, 8], 4, p, recurrent=True, backend=backend).double()
    with torch.no_grad():  # stronger weights so that both hidden layers spike
        for layer in net.layers:
            layer.weight.mul_(6.0).add_(0.15)
            layer.recurrent_weight.mul_(2.0)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(6, 40, 10, generator=gen) < 0.3).double()
    y = torch.arange(6) % 4
    logits, rec = net.run(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), [prm.grad for prm in net.parameters()], rec


@pytest.mark.parametrize("opt", [
    dict(),
    dict(surrogate="sigmoid", detach_reset=False, recurrent_grad="prop"),
    dict(surrogate="superspike-asym", reset="subtract", input_gain=False, recurrent_grad="ctl"),
    dict(surrogate="esser", beta=2.0, detach_reset=False, recurrent_grad="ctl"),
])
def test_full_snn_fused_equals_reference(opt):
    loss_r, grads_r, rec_r = _snn_loss_and_grads("reference", opt)
    loss_f, grads_f, rec_f = _snn_loss_and_grads("fused", opt)
    for s_r, s_f in zip(rec_r.spikes, rec_f.spikes):
        assert s_r.sum() > 0, "every hidden layer must spike"
        assert torch.equal(s_r, s_f)
    assert_rel_close(loss_f, loss_r)
    assert len(grads_f) == len(grads_r) == 5
    for g_f, g_r in zip(grads_f, grads_r):
        assert g_r.abs().sum() > 0
        assert_rel_close(g_f, g_r)
