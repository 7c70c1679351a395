"""The numba-compiled LIF kernel (backend "compiled", issue 5 item 3) against the reference.

Forward: identical spike trains, voltages equal to rounding (float64: 1e-12; the recurrent
input sums the spiking columns of V in its own order) — bitwise in the float32 cases
tested.  Gradients w.r.t. ff and V, and through a whole SNN to every parameter, equal to
the reference's to 1e-9 (relative, float64) for every combination of the switches.  The
reference is the oracle (no gradcheck: the surrogate gradient is not the derivative of the
forward pass).  Sizes are small so that the file runs in well under a minute once numba's
on-disk cache is warm.
"""

import functools
import itertools
import sys

import pytest
import torch
import torch.nn.functional as F

from spikegrad import SNN, Config, LIFParams, SpikegradError, lif_layer, register_surrogate
from spikegrad.kernels import compiled, lif_loops
from spikegrad.kernels.compiled import CompiledLIF, lif_compiled, saved_bytes_per_neuron_step
from spikegrad.kernels.dispatch import run_layer, select_kernel
from spikegrad.kernels.options import KernelOptions
from spikegrad.neurons import available_backends, lif_reference, resolve_backend
from kernel_helpers import CONNECTIVITY, SURROGATES, make_inputs, outputs_and_grads
from kernel_helpers import assert_rel_close as _assert_rel_close

SWITCHES = list(itertools.product(SURROGATES, ["zero", "subtract"], [True, False], [True, False],
                                  CONNECTIVITY))


@pytest.fixture(autouse=True)
def _needs_numba(request):
    """numba is a dependency; should it be missing, only the missing-numba test runs."""
    if "missing_numba" not in request.node.name and not compiled.numba_available():
        pytest.skip("numba is not installed")


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tiny tensors: torch's second thread only adds synchronisation (slow on a loaded machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@register_surrogate("test-compiled-cubic", "user-registered: (1 − β|x|)³ on |x| < 1/β")
def _cubic(x, beta):
    return torch.clamp(1.0 - beta * x.abs(), min=0.0) ** 3


def assert_rel_close(got, want, rel=1e-9):
    """The shared check, at this kernel's default tolerance."""
    _assert_rel_close(got, want, rel)


def compare(p, ff, v, volt_tol=1e-12, **kw):
    s_r, u_r, g_r = outputs_and_grads(lif_reference, ff, v, p, **kw)
    s_c, u_c, g_c = outputs_and_grads(lif_compiled, ff, v, p, **kw)
    assert torch.equal(s_c, s_r)
    assert (u_c - u_r).abs().max().item() <= volt_tol if u_r.numel() else True
    assert s_c.dtype == s_r.dtype and u_c.dtype == u_r.dtype
    assert len(g_c) == len(g_r)
    for gc, gr in zip(g_c, g_r):
        assert_rel_close(gc, gr)
    return s_r, g_r


@pytest.mark.parametrize("surrogate,reset,detach_reset,input_gain,conn", SWITCHES)
def test_compiled_equals_reference_float64(surrogate, reset, detach_reset, input_gain, conn):
    recurrent = conn[0] == "rc"
    p = LIFParams(reset=reset, detach_reset=detach_reset, input_gain=input_gain,
                  recurrent_grad=conn[1], surrogate=surrogate, beta=5.0)
    seed = 100 * input_gain + 10 * (reset == "zero") + CONNECTIVITY.index(conn)
    ff, v = make_inputs(seed=seed, recurrent=recurrent, input_gain=input_gain)
    spikes, grads = compare(p, ff, v)
    rate = spikes.mean().item()
    assert 0.02 < rate < 0.9, f"test case must spike (rate {rate:.3f})"
    if surrogate != "true":
        assert grads[0].abs().sum() > 0
    if recurrent:
        assert grads[1].abs().sum() > 0  # V learns under "prop" and "ctl"


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("conn", CONNECTIVITY)
def test_compiled_spike_trains_identical_float32(reset, conn):
    recurrent = conn[0] == "rc"
    p = LIFParams(reset=reset, recurrent_grad=conn[1], detach_reset=(reset == "zero"))
    gen = torch.Generator().manual_seed(7)
    ff = (torch.rand(8, 80, 48, generator=gen) - 0.4) * 10.0
    v = (torch.rand(48, 48, generator=gen) * 2 - 1) * 0.5 if recurrent else None
    with torch.no_grad():
        s_r, u_r = lif_reference(ff, v, p)
        s_c, u_c = lif_compiled(ff, v, p)
    assert s_r.sum() > 0.02 * s_r.numel()
    assert s_c.dtype == torch.float32 and u_c.dtype == torch.float32
    assert torch.equal(s_c, s_r)
    if recurrent:  # the recurrent sums may round differently from the BLAS matmul
        assert (u_c - u_r).abs().max().item() <= 1e-5
    else:
        assert torch.equal(u_c, u_r)


def test_compiled_float32_gradients_close():
    p = LIFParams(surrogate="sigmoid", detach_reset=False)
    ff, v = make_inputs(3, batch=6, steps=50, n=24, dtype=torch.float32)
    s_r, u_r, g_r = outputs_and_grads(lif_reference, ff, v, p)
    s_c, u_c, g_c = outputs_and_grads(lif_compiled, ff, v, p)
    assert torch.equal(s_c, s_r)
    assert all(g.dtype == torch.float32 for g in g_c)
    for gc, gr in zip(g_c, g_r):
        assert_rel_close(gc, gr, rel=1e-4)


@pytest.mark.parametrize("surrogate", SURROGATES)
@pytest.mark.parametrize("conn", CONNECTIVITY)
def test_beta_zero(surrogate, conn):
    p = LIFParams(surrogate=surrogate, beta=0.0, recurrent_grad=conn[1], detach_reset=False)
    ff, v = make_inputs(11, recurrent=conn[0] == "rc")
    compare(p, ff, v)


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
    for wrt in ("v", "ff"):
        ff1 = ff.clone().requires_grad_(wrt == "ff")
        v1 = v.clone().requires_grad_(wrt == "v")
        s, u = lif_compiled(ff1, v1, p)
        gen = torch.Generator().manual_seed(1000)
        loss = (s * torch.randn(s.shape, generator=gen, dtype=s.dtype)).sum() + \
            (u * torch.randn(u.shape, generator=gen, dtype=u.dtype)).sum()
        loss.backward()
        if wrt == "v":
            assert_rel_close(v1.grad, g_v_ref)
        else:
            assert_rel_close(ff1.grad, g_ff_ref)


def test_expanded_gradient_and_noncontiguous_inputs():
    """A loss like s.sum() sends an expanded (stride-0) gradient; inputs may be views."""
    p = LIFParams(surrogate="sigmoid")
    ff, v = make_inputs(8, steps=20)
    ff_t = ff.transpose(0, 1).contiguous().transpose(0, 1)  # same values, other strides
    grads = {}
    for name, kernel, x in (("ref", lif_reference, ff), ("cmp", lif_compiled, ff_t)):
        x = x.detach().clone().requires_grad_()
        vv = v.t().detach().clone().requires_grad_()
        s, u = kernel(x, vv.t(), p)
        (s.sum() + u.sum()).backward()
        grads[name] = (x.grad, vv.grad)
    for gc, gr in zip(grads["cmp"], grads["ref"]):
        assert_rel_close(gc, gr)


def test_very_short_sequences_and_silence():
    p = LIFParams(detach_reset=False)
    for steps in (3, 4):
        ff, v = make_inputs(6, steps=steps)
        compare(p, ff, v)
    ff, v = make_inputs(6, steps=1)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(lif_compiled(ff, v, p), lif_reference(ff, v, p)))
    compare(p, torch.zeros(2, 7, 3, dtype=torch.float64), None)  # silent layer
    ff, v = make_inputs(6, steps=2)  # T ≤ 2: no output depends on the input
    _, _, grads = outputs_and_grads(lif_compiled, ff, v, p)
    assert all(torch.count_nonzero(g) == 0 for g in grads)
    for shape in ((2, 0, 3), (0, 5, 3), (2, 5, 0)):
        s, u = lif_compiled(torch.zeros(shape, requires_grad=True), None, p)
        assert s.shape == u.shape == shape


def test_one_autograd_node_for_all_steps_and_dispatch():
    assert "compiled" in available_backends()
    ff = torch.randn(2, 30, 3, requires_grad=True)
    s, u = lif_layer(ff, torch.randn(3, 3, requires_grad=True), LIFParams(), backend="compiled")
    assert type(s.grad_fn).__name__ == "CompiledLIFBackward"
    assert s.grad_fn is u.grad_fn
    assert {type(n).__name__ for n, _ in s.grad_fn.next_functions if n is not None} == {"AccumulateGrad"}
    with pytest.raises(SpikegradError, match="recurrent weights"):
        lif_compiled(ff, torch.zeros(4, 4), LIFParams())
    with pytest.raises(SpikegradError, match="dtype"):
        lif_compiled(ff, torch.zeros(3, 3, dtype=torch.float64), LIFParams())
    with pytest.raises(SpikegradError, match="batch, time, neurons"):
        lif_compiled(ff[0], None, LIFParams())
    assert CompiledLIF.__name__ == "CompiledLIF"


@pytest.mark.parametrize("dtype,reset,detach_reset,expect", [
    (torch.float32, "zero", True, 4), (torch.float32, "subtract", True, 4),
    (torch.float32, "subtract", False, 4), (torch.float32, "zero", False, 5),
    (torch.float64, "zero", True, 8), (torch.float64, "zero", False, 9)])
def test_saved_for_backward_bytes(dtype, reset, detach_reset, expect):
    """U in the compute dtype, plus uint8 spikes for a differentiable zero reset (≤ 6 B in float32)."""
    batch, steps, n = 4, 50, 8
    p = LIFParams(reset=reset, detach_reset=detach_reset)
    ff = torch.randn(batch, steps, n, dtype=dtype, requires_grad=True)
    v = torch.randn(n, n, dtype=dtype, requires_grad=True)
    saved = []

    def pack(t):
        saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        lif_compiled(ff, v, p)
    big = [t for t in saved if t.dim() == 3]
    total = sum(t.numel() * t.element_size() for t in big)
    assert total == expect * batch * steps * n
    assert saved_bytes_per_neuron_step(p, dtype) == expect
    if dtype == torch.float32:
        assert expect <= 6
    assert sum(t.numel() for t in saved if t.dim() != 3) == n * n  # and V itself


@pytest.mark.parametrize("conn", CONNECTIVITY)
def test_surrogate_without_kernel_form_runs_fused_under_auto_and_raises_when_compiled_is_named(conn):
    p = LIFParams(surrogate="test-compiled-cubic", beta=2.0, detach_reset=False,
                  recurrent_grad=conn[1])
    ff, v = make_inputs(5, recurrent=conn[0] == "rc")
    assert "has no kernel form" in compiled.supports(ff, v, p)
    with pytest.raises(SpikegradError, match="backend 'compiled' cannot run this lif layer: surrogate "
                                             "'test-compiled-cubic' has no kernel form"):
        lif_layer(ff.clone().requires_grad_(), v, p, backend="compiled")
    result = run_layer(ff.clone().requires_grad_(), v, p, backend="auto")
    assert result.kernel == "fused" and type(result.spikes.grad_fn).__name__ == "FusedLIFBackward"
    s_r, u_r, g_r = outputs_and_grads(lif_reference, ff, v, p)
    s_a, u_a, g_a = outputs_and_grads(lif_layer, ff, v, p)      # backend "auto"
    assert torch.equal(s_a, s_r) and torch.equal(u_a, u_r)
    assert g_r[0].abs().sum() > 0
    for a, b in zip(g_a, g_r):
        assert_rel_close(a, b)


def test_unsupported_devices_and_dtypes_raise_when_named_and_pass_on_under_auto():
    p = LIFParams()
    ff = torch.rand(2, 6, 3)
    assert compiled.supports(ff, None, p) is None
    assert "runs on the CPU, and the tensors are on meta" in compiled.supports(ff.to("meta"), None, p)
    assert "float32 or float64" in compiled.supports(ff.to(torch.bfloat16), None, p)
    ffh = (torch.rand(2, 12, 3) * 5).to(torch.bfloat16)
    with pytest.raises(SpikegradError, match="backend 'compiled' cannot run this lif layer: it takes float32"):
        lif_compiled(ffh, None, p)
    with pytest.raises(SpikegradError, match="backend 'compiled' cannot run this lif layer: it runs on the CPU"):
        lif_layer(ff.to("meta"), None, p, backend="compiled")
    assert select_kernel(ff.to("meta"), None, p, "auto").name == "fused"  # what CUDA tensors get
    result = run_layer(ffh, None, p, "auto")
    s_r, u_r = lif_reference(ffh, None, p)
    assert result.kernel == "fused"
    assert torch.equal(result.spikes, s_r) and torch.equal(result.voltages, u_r)


def test_missing_numba_raises_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # "import numba" now raises ImportError
    assert not compiled.numba_available()
    assert "compiled" not in available_backends()
    assert "fused" in available_backends()
    ff = torch.rand(2, 5, 3)
    with pytest.raises(SpikegradError, match=r"cannot run this lif layer: numba is not installed "
                                             r"\(pip install 'numba>=0\.60'\)"):
        lif_layer(ff, None, LIFParams(), backend="compiled")
    assert resolve_backend("auto") == "fused"  # "auto" falls back to the fused kernel
    s_a, _ = lif_layer(ff.requires_grad_(), None, LIFParams(), backend="auto")
    assert type(s_a.grad_fn).__name__ == "FusedLIFBackward"
    with pytest.raises(SpikegradError, match=r"needs the package numba.*pip install 'numba>=0\.60'"):
        Config().with_overrides({"model.backend": "compiled"}).validate()


def test_auto_is_compiled_where_numba_imports():
    assert resolve_backend("auto") == "compiled"
    assert resolve_backend("reference") == "reference"
    ff = torch.rand(2, 5, 3, requires_grad=True)
    s_a, _ = lif_layer(ff, None, LIFParams(), backend="auto")
    s_c, _ = lif_layer(ff, None, LIFParams(), backend="compiled")
    assert type(s_a.grad_fn) is type(s_c.grad_fn)
    assert SNN(3, [4], 2).readout.method == "fast"
    assert SNN(3, [4], 2, backend="reference").readout.method == "loop"


def test_deterministic():
    p = LIFParams(surrogate="sigmoid", detach_reset=False)
    ff, v = make_inputs(9, batch=4, steps=30, n=8)
    first = outputs_and_grads(lif_compiled, ff, v, p)
    second = outputs_and_grads(lif_compiled, ff, v, p)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert all(torch.equal(a, b) for a, b in zip(first[2], second[2]))


@pytest.mark.parametrize("detach_reset", [True, False])
def test_threads_split_the_batch(monkeypatch, detach_reset):
    """Two chunks (parallel kernel): the same results, dL/dV to rounding, reproducible."""
    p = LIFParams(surrogate="superspike", detach_reset=detach_reset)
    ff, v = make_inputs(12, batch=5, steps=30, n=7)
    serial = outputs_and_grads(lif_compiled, ff, v, p)
    monkeypatch.setattr(compiled, "_threads", lambda numba, threads, rows, work: 2)  # even on 1 core
    par1 = outputs_and_grads(lif_compiled, ff, v, p)
    par2 = outputs_and_grads(lif_compiled, ff, v, p)
    assert torch.equal(par1[0], serial[0]) and torch.equal(par1[1], serial[1])
    assert torch.equal(par1[2][0], serial[2][0])
    assert_rel_close(par1[2][1], serial[2][1], rel=1e-12)
    assert all(torch.equal(a, b) for a, b in zip(par1[2], par2[2]))
    with pytest.raises(SpikegradError, match="threads must be an integer"):
        KernelOptions(threads=-1)


@pytest.mark.parametrize("rows", [1, 3])
def test_backward_blocks_of_rows(monkeypatch, rows):
    """The recurrent backward takes blocks of batch rows through time together; any block size."""
    monkeypatch.setattr(compiled, "_BACKWARD_BLOCK_ROWS", rows)
    p = LIFParams(surrogate="sigmoid", detach_reset=False, recurrent_grad="prop")
    ff, v = make_inputs(13, batch=7, steps=20, n=6)
    compare(p, ff, v)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("surrogate,reset,conn", list(itertools.product(SURROGATES, ["zero", "subtract"],
                                                                         CONNECTIVITY)))
def test_simple_backward_equals_general_and_reference(monkeypatch, surrogate, reset, conn, dtype):
    """Only the spikes carry a gradient and the reset is detached (the defaults): the fused
    one-pass backward gives bitwise the general kernel's gradients — serial, in blocks of
    rows and over two threads — and the reference's to 1e-9 (float64).  With the recurrent
    adjoint (rc, prop) the default runs step by step with torch's matmul for λI·V: equal to
    the general kernel up to the order of those sums."""
    recurrent = conn[0] == "rc"
    stepwise = conn == ("rc", "prop") and surrogate != "true"
    p = LIFParams(reset=reset, recurrent_grad=conn[1], surrogate=surrogate, beta=5.0)
    ff, v = make_inputs(7 + CONNECTIVITY.index(conn), batch=5, steps=30, n=7, recurrent=recurrent,
                        dtype=dtype)
    if dtype == torch.float64:
        compare(p, ff, v, volt_grad=False)
    rel = 1e-12 if dtype == torch.float64 else 1e-5

    calls = []
    real_stepwise = compiled._stepwise_recurrent
    monkeypatch.setattr(compiled, "_stepwise_recurrent", lambda *a: (calls.append(1), real_stepwise(*a)))

    def grads(simple):
        kernel = functools.partial(lif_compiled, options=KernelOptions(simple_backward=simple))
        return outputs_and_grads(kernel, ff, v, p, volt_grad=False)

    for rows, threads in [(1, 1), (3, 1), (8, 2)]:
        monkeypatch.setattr(compiled, "_BACKWARD_BLOCK_ROWS", rows)
        monkeypatch.setattr(compiled, "_threads", lambda numba, t, r, w, k=threads: k)
        fast, general = grads(True), grads(False)
        assert torch.equal(fast[0], general[0])
        if surrogate != "true":
            assert fast[2][0].abs().sum() > 0
        if stepwise:
            assert_rel_close(fast[2][0], general[2][0], rel=rel)
        else:
            assert torch.equal(fast[2][0], general[2][0])
        if recurrent:  # dL/dV: per-thread partial sums in the same order in both loops
            if stepwise:
                assert_rel_close(fast[2][1], general[2][1], rel=rel)
            elif threads == 1:
                assert torch.equal(fast[2][1], general[2][1])
            else:
                assert_rel_close(fast[2][1], general[2][1], rel=rel)
    assert len(calls) == (3 if stepwise else 0)  # the step-by-step path ran where it applies


def _snn_loss_and_grads(backend, opt, recurrent):
    torch.manual_seed(0)
    p = LIFParams(**opt)
    net = SNN(10, [9, 7], 4, p, recurrent=recurrent, backend=backend).double()
    gain = 6.0 if p.input_gain else 0.6
    with torch.no_grad():  # stronger weights so that both hidden layers spike
        for layer in net.layers:
            layer.weight.mul_(gain).add_(0.15 * gain / 6.0)
            if recurrent:
                layer.recurrent_weight.mul_(2.0 * gain / 6.0)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(3, 20, 10, generator=gen) < 0.3).double()
    y = torch.arange(3) % 4
    logits, rec = net.run(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), [prm.grad for prm in net.parameters()], rec


@pytest.mark.parametrize("surrogate,reset,detach_reset,input_gain,conn", SWITCHES)
def test_full_snn_compiled_equals_reference(surrogate, reset, detach_reset, input_gain, conn):
    recurrent = conn[0] == "rc"
    opt = dict(surrogate=surrogate, reset=reset, detach_reset=detach_reset,
               input_gain=input_gain, recurrent_grad=conn[1], beta=5.0)
    loss_r, grads_r, rec_r = _snn_loss_and_grads("reference", opt, recurrent)
    loss_c, grads_c, rec_c = _snn_loss_and_grads("compiled", opt, recurrent)
    for s_r, s_c in zip(rec_r.spikes, rec_c.spikes):
        assert s_r.sum() > 0, "every hidden layer must spike"
        assert torch.equal(s_r, s_c)
    assert_rel_close(loss_c, loss_r)
    assert len(grads_c) == len(grads_r) == (5 if recurrent else 3)
    for g_c, g_r in zip(grads_c, grads_r):
        if surrogate != "true":
            assert g_r.abs().sum() > 0
        assert_rel_close(g_c, g_r)


def test_prefetch_intrinsic_is_built_and_harmless():
    """The backward kernels' cache-line prefetch is the real llvm.prefetch intrinsic (not the
    no-op fallback) and changes nothing: a compiled loop that prefetches every element of a
    [B, T, N] array, edges included, returns the plain sum."""
    import numba
    import numpy as np
    lif_loops._kernels(False)
    assert lif_loops._prefetch is not lif_loops._prefetch_py
    pf = lif_loops._prefetch

    @numba.njit
    def total(x):
        s = 0.0
        for b in range(x.shape[0]):
            for t in range(x.shape[1]):
                for i in range(x.shape[2]):
                    pf(x, b, t, i)
                    s += x[b, t, i]
        return s

    for dtype in (np.float32, np.float64):
        x = np.arange(2 * 3 * 5, dtype=dtype).reshape(2, 3, 5)
        assert total(x) == x.sum()


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("detach_reset", [True, False])
@pytest.mark.parametrize("threads", [1, 2])
def test_forward_records_the_spikes_events(monkeypatch, dtype, recurrent, detach_reset, threads):
    """The forward kernel hands out its spikes' events: the CSR EventBatch.from_dense would
    find (rows, then increasing neuron; values 1), serial and split over threads (n = 13:
    one full 8-neuron word and a tail), returned beside them; spikes and voltages are those
    of the run without recording."""
    from spikegrad.events import EventBatch
    monkeypatch.setattr(compiled, "_threads", lambda numba, t, r, w, k=threads: k)
    p = LIFParams(reset="zero", detach_reset=detach_reset)
    ff, v = make_inputs(41, batch=5, steps=20, n=13, recurrent=recurrent, dtype=dtype)
    s, u, ev = compiled.lif_compiled_events(ff, v, p)
    want = EventBatch.from_dense(s)
    assert ev is not None and ev.shape == s.shape and ev.nnz == want.nnz > 0
    assert torch.equal(ev.ptr, want.ptr) and torch.equal(ev.idx, want.idx)
    assert ev.val.dtype == dtype and bool((ev.val == 1).all())
    s0, u0, ev0 = compiled.lif_compiled_events(ff, v, p, KernelOptions(record_events=False))
    assert ev0 is None
    assert torch.equal(s, s0) and torch.equal(u, u0)


@pytest.mark.parametrize("recurrent", [False, True])
def test_readout_and_next_layer_use_the_recorded_events(monkeypatch, recurrent):
    """A two-layer network on the compiled backend: the readout and the second layer project
    the recorded spike events (no search through the dense spikes), and the loss and every
    gradient equal those without recording (1e-12, float64), hidden spikes identical."""
    import spikegrad.kernels.events as events
    torch.manual_seed(0)
    net = SNN(30, [20, 16], 5, recurrent=recurrent, backend="compiled", input_path="events").double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(6.0).add_(0.15)
    gen = torch.Generator().manual_seed(3)
    x = (torch.rand(4, 40, 30, generator=gen, dtype=torch.float64) < 0.05).double()
    y = torch.arange(4) % 5
    searched = []
    real = events.EventBatch.from_dense
    monkeypatch.setattr(events.EventBatch, "from_dense",
                        classmethod(lambda cls, t: (searched.append(tuple(t.shape)), real(t))[1]))

    def run():
        net.zero_grad()
        logits, rec = net.run(x)
        F.cross_entropy(logits, y).backward()
        return logits.detach(), rec.spikes, [q.grad.clone() for q in net.parameters()]

    with_events = run()
    assert searched == [(4, 40, 30)]               # only the input, never the hidden spikes
    for layer in net.layers:
        layer.options = KernelOptions(record_events=False)
    searched.clear()
    without = run()
    assert (4, 40, 20) in searched                 # layer 2 had to search layer 1's spikes
    for a, b in zip(with_events[1], without[1]):
        assert a.sum() > 0 and torch.equal(a, b)
    _assert_rel_close(with_events[0], without[0], rel=1e-12)
    for a, b in zip(with_events[2], without[2]):
        assert b.abs().sum() > 0
        _assert_rel_close(a, b, rel=1e-12)
