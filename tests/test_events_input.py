"""Event-driven input projection (issue 5, part 2) against the dense matmul x Wᵀ.

Values and gradients (w.r.t. W, and w.r.t. x when x requires grad) must equal the dense
path to 1e-12 in float64 (relative to the largest entry); a whole SNN must give the same
loss and parameter gradients with the event path forced on vs forced off (1e-10).  The
event path has two implementations, numba (CPU default) and torch (fallback); the tests
marked with the ``impl`` fixture run on both, and check which one ran.
"""

import pytest
import torch
import torch.nn.functional as F

from spikegrad import SNN, LIFParams, SpikegradError
import spikegrad.events
import spikegrad.kernels.events as events
from spikegrad.kernels.compiled import numba_available
from spikegrad.kernels.events import EventBatch, EventProjection, density
from spikegrad.kernels.events import sparse_projection as _sparse_projection
from spikegrad.kernels.options import KernelOptions
from spikegrad.network import LIFLayer
from spikegrad.neurons import (EVENT_BATCH_DENSITY_MAX, EVENT_DENSITY_MAX, choose_input_path,
                               project_input as _project_input)

DENSITIES = [0.0, 0.001, 0.02, 0.08, 0.5]
IMPLS = ["numba", "torch"]
needs_numba = pytest.mark.skipif(not numba_available(), reason="numba not installed")


# The implementation the projections of a test run with: the ``impl`` fixture sets it, and
# the two wrappers below pass it explicitly (the library has no global switch).
_IMPL = {0: "auto"}


def sparse_projection(x, w, events=None):
    return _sparse_projection(x, w, events, _IMPL[0])


def project_input(x, w, path="auto", events=None):
    return _project_input(x, w, path, events, KernelOptions(projection_impl=_IMPL[0]))


@pytest.fixture(params=IMPLS)
def impl(request, monkeypatch):
    """The event implementation under test: "numba" (skipped without numba) or "torch"."""
    if request.param == "numba" and not numba_available():
        pytest.skip("numba not installed")
    monkeypatch.setitem(_IMPL, 0, request.param)
    return request.param


def ran_numba(x, w):
    """Whether sparse_projection(x, w) ran the numba kernels (recorded on the autograd node)."""
    ff = sparse_projection(x, w.detach().requires_grad_())
    return ff.grad_fn.use_numba


def assert_rel_close(got, want, rel=1e-12):
    scale = want.abs().max().item() if want.numel() else 0.0
    err = (got - want).abs().max().item() if want.numel() else 0.0
    assert err <= rel * max(scale, 1e-300), f"max error {err:.3e} vs scale {scale:.3e}"


def sparse_input(seed, shape, density, counts=False, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    x = (torch.rand(shape, generator=gen, dtype=dtype) < density).to(dtype)
    if counts:  # several events in one bin: small integer counts
        x = x * torch.randint(1, 5, shape, generator=gen).to(dtype)
    return x


def project_and_grads(path, x, w, c, x_grad):
    x = x.detach().clone().requires_grad_(x_grad)
    w = w.detach().clone().requires_grad_()
    ff = project_input(x, w, path)
    (ff * c).sum().backward()
    return ff.detach(), w.grad, x.grad


def compare(x, seed=0, n_out=9, x_grad=True):
    gen = torch.Generator().manual_seed(100 + seed)
    w = torch.randn(n_out, x.shape[-1], generator=gen, dtype=x.dtype)
    assert ran_numba(x, w) == (_IMPL[0] != "torch" and events.numba_available())
    c = torch.randn(*x.shape[:-1], n_out, generator=gen, dtype=x.dtype)
    ff_d, gw_d, gx_d = project_and_grads("dense", x, w, c, x_grad)
    ff_e, gw_e, gx_e = project_and_grads("events", x, w, c, x_grad)
    assert ff_e.shape == ff_d.shape and ff_e.dtype == ff_d.dtype
    assert_rel_close(ff_e, ff_d)
    assert_rel_close(gw_e, gw_d)
    assert gw_e.shape == gw_d.shape
    if x_grad:
        assert_rel_close(gx_e, gx_d)
    else:
        assert gx_e is None and gx_d is None
    return ff_d, gw_d


@pytest.mark.parametrize("dens", DENSITIES)
@pytest.mark.parametrize("counts", [False, True])
@pytest.mark.parametrize("x_grad", [False, True])
def test_events_equal_dense_float64(dens, counts, x_grad, impl):
    x = sparse_input(int(dens * 1000) + 7 * counts, (5, 40, 60), dens, counts)
    ff, gw = compare(x, x_grad=x_grad)
    if dens == 0.0:
        assert not ff.any() and not gw.any()
    if counts and dens >= 0.02:
        assert x.max() > 1


def test_empty_rows_and_columns(impl):
    x = sparse_input(3, (4, 30, 25), 0.1)
    x[1] = 0.0            # a silent sample
    x[:, 5:12] = 0.0      # silent time steps
    x[..., 3] = 0.0       # a silent input channel: its dW column must be exactly zero
    x[-1] = 0.0           # the last rows empty
    ff, gw = compare(x)
    assert not ff[1].any() and not ff[:, 5:12].any() and not ff[-1].any()
    assert not gw[:, 3].any()


def test_arbitrary_values_and_shapes(impl):
    """Not only counts: any values (negative, fractional); 2-D and 4-D inputs; one event."""
    gen = torch.Generator().manual_seed(5)
    x = sparse_input(6, (7, 11), 0.2) * torch.randn(7, 11, generator=gen, dtype=torch.float64)
    compare(x)
    compare(sparse_input(8, (2, 3, 4, 13), 0.3))
    one = torch.zeros(3, 5, 6, dtype=torch.float64)
    one[2, 4, 5] = 2.0
    compare(one)
    compare(torch.zeros(0, 5, 6, dtype=torch.float64))  # empty batch
    compare(sparse_input(9, (6, 5, 40), 0.2).transpose(0, 1))  # non-contiguous x


def test_float32_close(impl):
    x = sparse_input(9, (8, 50, 70), 0.02, counts=True, dtype=torch.float32)
    x[3] = 0.0
    gen = torch.Generator().manual_seed(1)
    w = torch.randn(16, 70, generator=gen, requires_grad=True)
    c = torch.randn(8, 50, 16, generator=gen)
    assert ran_numba(x, w) == (impl == "numba")
    ff = sparse_projection(x, w)
    assert ff.dtype == torch.float32
    torch.testing.assert_close(ff, x @ w.t(), rtol=1e-5, atol=1e-5)
    (ff * c).sum().backward()
    gw = w.grad.clone()
    w.grad = None
    ((x @ w.t()) * c).sum().backward()
    assert gw.dtype == torch.float32
    torch.testing.assert_close(gw, w.grad, rtol=1e-5, atol=1e-4)
    assert not ff[3].any()


def test_no_grad_needed_and_only_x_grad(impl):
    x = sparse_input(10, (3, 20, 15), 0.1)
    w = torch.randn(4, 15, dtype=torch.float64)
    with torch.no_grad():
        assert torch.allclose(sparse_projection(x, w), x @ w.t(), rtol=0, atol=1e-12)
    xg = x.clone().requires_grad_()
    (sparse_projection(xg, w) ** 2).sum().backward()
    xd = x.clone().requires_grad_()
    ((xd @ w.t()) ** 2).sum().backward()
    assert_rel_close(xg.grad, xd.grad)


def test_one_autograd_node(impl):
    x = sparse_input(11, (2, 10, 8), 0.2)
    w = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    ff = sparse_projection(x, w)
    assert type(ff.grad_fn).__name__ == "EventProjectionBackward"
    assert EventProjection.__name__ == "EventProjection"


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_numba_equals_torch_fallback_and_is_deterministic(monkeypatch, dtype):
    """Both implementations on the same input: same values (float64 1e-12), and the numba
    path gives bitwise the same ff and dW on a repeat."""
    x = sparse_input(21, (7, 60, 90), 0.03, counts=True, dtype=dtype)
    x[2] = 0.0                                   # a silent sample
    x[:, 10:20] = 0.0                            # silent steps
    x[0, 0, :] = 2.0                             # a full row of double spikes
    gen = torch.Generator().manual_seed(22)
    w = torch.randn(33, 90, generator=gen, dtype=dtype)
    c = torch.randn(7, 60, 33, generator=gen, dtype=dtype)
    got = {}
    for name in ["numba", "torch", "numba"]:
        monkeypatch.setitem(_IMPL, 0, name)
        xg = x.clone().requires_grad_()
        wg = w.clone().requires_grad_()
        ff = sparse_projection(xg, wg)
        assert ff.grad_fn.use_numba == (name == "numba")
        (ff * c).sum().backward()
        res = (ff.detach(), wg.grad, xg.grad)
        if name in got:                          # the repeat: bitwise equal
            assert all(torch.equal(a, b) for a, b in zip(res, got[name]))
        got[name] = res
    rel = 1e-12 if dtype == torch.float64 else 1e-5
    for a, b in zip(got["numba"], got["torch"]):
        assert_rel_close(a, b, rel=rel)
    assert not got["numba"][0][2].any() and not got["numba"][0][:, 10:20].any()


@needs_numba
def test_numba_values_exact_for_counts():
    """Integer weights and counts: every partial sum is an exact float, so the event path must
    equal the dense product exactly (x = 2 adds the column twice, not once)."""
    x = torch.zeros(2, 3, 5, dtype=torch.float64)
    x[0, 1, 2] = 2.0
    x[0, 1, 4] = 1.0
    x[1, 2, :] = torch.tensor([3.0, 0.0, -1.0, 0.5, 2.0])
    w = torch.arange(20, dtype=torch.float64).reshape(4, 5) - 7.0
    ff = sparse_projection(x, w.clone().requires_grad_())
    assert ff.grad_fn.use_numba
    assert torch.equal(ff, x @ w.t())
    assert torch.equal(ff[0, 1], 2.0 * w[:, 2] + w[:, 4])


def test_fallback_when_numba_missing_or_not_applicable(monkeypatch):
    x = sparse_input(23, (3, 10, 12), 0.2)
    w = torch.randn(4, 12, dtype=torch.float64)
    for module in (spikegrad.events, events):                # numba missing, for both modules
        monkeypatch.setattr(module, "numba_available", lambda: False)
    assert not ran_numba(x, w)
    compare(x)                                   # the torch path, still equal to dense
    monkeypatch.undo()
    # not on the CPU, or a dtype the kernels do not take: the torch implementation
    assert not events._use_numba("auto", torch.empty(2, 3, device="meta"), w)
    assert not events._use_numba("auto", x.to(torch.bfloat16), w.to(torch.bfloat16))
    assert events._use_numba("auto", x, w) == numba_available()
    with pytest.raises(SpikegradError, match="numba event projection runs on CPU float32/float64"):
        _sparse_projection(x.to(torch.bfloat16), w.to(torch.bfloat16), impl="numba")
    xb, wb = x.to(torch.bfloat16), w.to(torch.bfloat16)
    torch.testing.assert_close(sparse_projection(xb, wb).float(), (xb @ wb.t()).float(),
                               rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("use_numba", [True, False])
def test_density(monkeypatch, use_numba):
    monkeypatch.setattr(spikegrad.events, "_numba_applies", lambda *t: use_numba and numba_available())
    for dtype in (torch.float32, torch.float64):
        x = sparse_input(24, (4, 30, 50), 0.05, counts=True, dtype=dtype)
        want = int(torch.count_nonzero(x)) / x.numel()
        assert density(x) == want
        assert density(x.transpose(0, 1)) == want            # non-contiguous
        y = x.clone()
        y[0, 0, :3] = torch.tensor([float("nan"), -0.0, float("inf")], dtype=dtype)
        assert density(y) == int(torch.count_nonzero(y)) / y.numel()
        assert density(x.clone().requires_grad_()) == want
    assert density(torch.zeros(3, 4)) == 0.0
    assert density(torch.ones(3, 4, dtype=torch.float64)) == 1.0
    assert density(torch.zeros(0, 4)) == 0.0
    assert density(torch.tensor([0, 2, 0, 1])) == 0.5                # integer input


def test_errors():
    w = torch.zeros(3, 8, dtype=torch.float64)
    with pytest.raises(SpikegradError, match="shape"):
        sparse_projection(torch.zeros(2, 4, 7, dtype=torch.float64), w)
    with pytest.raises(SpikegradError, match="dtype"):
        sparse_projection(torch.zeros(2, 4, 8), w)
    with pytest.raises(SpikegradError, match="input path"):
        project_input(torch.zeros(2, 4, 8, dtype=torch.float64), w, "sparse")
    with pytest.raises(SpikegradError, match="input path"):
        LIFLayer(8, 3, LIFParams(), input_path="sparse")
    with pytest.raises(SpikegradError, match="input path"):
        SNN(8, [3], 2).set_input_path("nope")


def test_auto_choice():
    w = torch.zeros(5, 100)
    sparse = sparse_input(12, (4, 50, 100), EVENT_DENSITY_MAX / 4, dtype=torch.float32)
    dense = sparse_input(13, (4, 50, 100), min(1.0, EVENT_DENSITY_MAX * 3), dtype=torch.float32)
    analog = torch.rand(4, 50, 100)  # mel-like dense analog input
    assert choose_input_path(sparse, w) == "events"
    assert choose_input_path(sparse.clone().requires_grad_(), w) == "events"
    assert choose_input_path(dense, w) == "dense"
    assert choose_input_path(analog, w) == "dense"
    assert choose_input_path(torch.zeros(4, 50, 100), w) == "events"  # silence
    assert choose_input_path(sparse.double(), w) == "dense"  # dtype mismatch: let matmul decide
    assert choose_input_path(torch.zeros(0, 50, 100), w) == "dense"
    # an EventBatch knows its density; it stays on the event path up to a higher density
    mid = sparse_input(17, (4, 50, 100), (EVENT_DENSITY_MAX + EVENT_BATCH_DENSITY_MAX) / 2,
                       dtype=torch.float32)
    assert EVENT_DENSITY_MAX < density(mid) < EVENT_BATCH_DENSITY_MAX
    assert choose_input_path(mid, w) == "dense"
    assert choose_input_path(EventBatch.from_dense(mid), w) == "events"
    assert choose_input_path(EventBatch.from_dense(sparse), w) == "events"
    assert choose_input_path(EventBatch.from_dense(analog), w) == "dense"
    assert choose_input_path(EventBatch.from_dense(sparse).to(dtype=torch.float64), w) == "events"


def test_layer_uses_the_chosen_path(monkeypatch):
    import spikegrad.neurons as neurons
    calls = []
    real = neurons.sparse_projection
    monkeypatch.setattr(neurons, "sparse_projection", lambda x, w, *a: calls.append(1) or real(x, w, *a))
    assert LIFLayer(100, 6, LIFParams()).input_path == "auto"  # the default
    layer = LIFLayer(100, 6, LIFParams(), input_path="auto")
    layer(sparse_input(14, (2, 10, 100), 0.01, dtype=torch.float32))
    assert len(calls) == 1
    layer(torch.rand(2, 10, 100))  # analog: dense
    assert len(calls) == 1
    layer.input_path = "dense"
    layer(sparse_input(14, (2, 10, 100), 0.01, dtype=torch.float32))
    assert len(calls) == 1
    layer.input_path = "events"
    layer(torch.rand(2, 10, 100))  # forced: events even for dense input
    assert len(calls) == 2


def _snn_loss_and_grads(backend, recurrent, path, opt):
    torch.manual_seed(0)
    net = SNN(30, [20, 12], 5, LIFParams(**opt), recurrent=recurrent, backend=backend,
              input_path=path).double()
    with torch.no_grad():  # stronger weights so that both hidden layers spike
        for layer in net.layers:
            layer.weight.mul_(6.0).add_(0.15)
            if layer.recurrent_weight is not None:
                layer.recurrent_weight.mul_(2.0)
    x = sparse_input(15, (6, 50, 30), 0.1, counts=True)
    x[2] = 0.0  # an empty sample
    y = torch.arange(6) % 5
    logits, rec = net.run(x)
    loss = F.cross_entropy(logits, y)
    loss.backward()
    return loss.detach(), [prm.grad for prm in net.parameters()], rec


@pytest.mark.parametrize("backend", ["reference", "fused"])
@pytest.mark.parametrize("recurrent", [False, True])
@pytest.mark.parametrize("opt", [dict(), dict(surrogate="sigmoid", detach_reset=False, reset="subtract")])
def test_full_snn_events_equal_dense(backend, recurrent, opt):
    loss_d, grads_d, rec_d = _snn_loss_and_grads(backend, recurrent, "dense", opt)
    loss_e, grads_e, rec_e = _snn_loss_and_grads(backend, recurrent, "events", opt)
    for s_d, s_e in zip(rec_d.spikes, rec_e.spikes):
        assert s_d.sum() > 0, "every hidden layer must spike"
        assert torch.equal(s_d, s_e)
    assert_rel_close(loss_e, loss_d, rel=1e-10)
    assert len(grads_e) == len(grads_d) == (5 if recurrent else 3)
    for g_e, g_d in zip(grads_e, grads_d):
        assert g_d.abs().sum() > 0
        assert_rel_close(g_e, g_d, rel=1e-10)


def test_snn_set_input_path_and_auto():
    net = SNN(30, [20, 12], 5, input_path="events")
    assert all(layer.input_path == "events" for layer in net.layers)
    net.set_input_path("dense")
    assert all(layer.input_path == "dense" for layer in net.layers)
    net.set_input_path("auto")
    x = sparse_input(16, (3, 20, 30), 0.02, dtype=torch.float32)
    a = net(x)
    net.set_input_path("dense")
    torch.testing.assert_close(net(x), a, rtol=1e-5, atol=1e-6)


# -- EventBatch: events handed over directly ----------------------------------------------

def test_event_batch_from_dense_roundtrip(impl):
    x = sparse_input(30, (5, 40, 60), 0.05, counts=True)
    x[1] = 0.0
    x[0, 0, :] = torch.linspace(-2, 3, 60, dtype=torch.float64)  # any values; one zero crossing
    ev = EventBatch.from_dense(x)
    assert ev.shape == x.shape and ev.dtype == x.dtype and ev.nnz == int(torch.count_nonzero(x))
    assert ev.ptr.dtype == torch.int64 and ev.idx.dtype == torch.int32
    assert ev.ptr[0] == 0 and ev.ptr[-1] == ev.nnz and bool((ev.ptr.diff() >= 0).all())
    rows = ev.rows()
    assert bool(((rows.diff() > 0) | (ev.idx.diff() > 0)).all())  # rows, then index, increasing
    assert torch.equal(ev.to_dense(), x)
    assert ev.density() == density(x) and len(ev) == 5 and ev.dim() == 3
    assert torch.equal(EventBatch.from_dense(x.transpose(0, 1)).to_dense(), x.transpose(0, 1))
    e32 = ev.to(dtype=torch.float32)
    assert e32.dtype == torch.float32 and torch.equal(e32.to_dense(), x.float())
    assert "events=" in repr(ev)


def test_event_batch_projection_equals_dense(impl):
    """The same values and dW from the events as from the dense x (float64, 1e-12), and
    an event batch has no gradient of its own."""
    x = sparse_input(31, (6, 50, 40), 0.03, counts=True)
    x[2] = 0.0
    gen = torch.Generator().manual_seed(32)
    w = torch.randn(11, 40, generator=gen, dtype=torch.float64)
    c = torch.randn(6, 50, 11, generator=gen, dtype=torch.float64)
    ff_d, gw_d, _ = project_and_grads("dense", x, w, c, False)
    for path in ("events", "auto", "dense"):
        wg = w.clone().requires_grad_()
        ff = project_input(EventBatch.from_dense(x), wg, path)
        (ff * c).sum().backward()
        assert_rel_close(ff.detach(), ff_d)
        assert_rel_close(wg.grad, gw_d)
    assert ran_numba(EventBatch.from_dense(x), w) == (impl == "numba")


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_event_kernels_bitwise_same_for_any_thread_count(dtype):
    """Rows split between threads (forward) and input indices split between threads (dW):
    every sum keeps its order, so 1, 2 and 3 threads give bitwise the same ff and dW."""
    x = sparse_input(33, (16, 100, 300), 0.03, counts=True, dtype=dtype)
    ev = EventBatch.from_dense(x)
    gen = torch.Generator().manual_seed(34)
    w = torch.randn(128, 300, generator=gen, dtype=dtype)
    c = torch.randn(16, 100, 128, generator=gen, dtype=dtype)
    assert ev.nnz * 128 >= 3 * events._MIN_WORK_PER_THREAD   # large enough to split
    old = torch.get_num_threads()
    got = []
    try:
        for threads in (1, 2, 3):
            torch.set_num_threads(threads)
            wg = w.clone().requires_grad_()
            ff = sparse_projection(ev, wg)
            assert ff.grad_fn.use_numba
            (ff * c).sum().backward()
            got.append((ff.detach(), wg.grad))
    finally:
        torch.set_num_threads(old)
    for ff, gw in got[1:]:
        assert torch.equal(ff, got[0][0]) and torch.equal(gw, got[0][1])
    rel = 1e-12 if dtype == torch.float64 else 1e-5
    assert_rel_close(got[0][0], x @ w.t(), rel=rel)


@pytest.mark.parametrize("backend", ["reference", "fused", "compiled"])
@pytest.mark.parametrize("path", ["auto", "events", "dense"])
def test_snn_takes_event_batch(backend, path):
    """A whole SNN fed the EventBatch gives the dense input's spikes, loss and gradients, on
    every input path; a float32 batch is cast to a float64 model's dtype."""
    if backend == "compiled" and not numba_available():
        pytest.skip("numba not installed")
    torch.manual_seed(0)
    net = SNN(30, [20], 5, recurrent=True, backend=backend, input_path=path).double()
    with torch.no_grad():
        net.layers[0].weight.mul_(6.0).add_(0.15)
    x = sparse_input(35, (6, 50, 30), 0.04, counts=True)
    y = torch.arange(6) % 5
    out = []
    for inp in (x, EventBatch.from_dense(x.float())):
        net.zero_grad()
        logits, rec = net.run(inp)
        loss = F.cross_entropy(logits, y)
        loss.backward()
        out.append((loss.detach(), rec.spikes[0], [p.grad.clone() for p in net.parameters()]))
    (l_d, s_d, g_d), (l_e, s_e, g_e) = out
    assert s_d.sum() > 0 and torch.equal(s_d, s_e)
    assert_rel_close(l_e, l_d, rel=1e-10)
    for a, b in zip(g_e, g_d):
        assert b.abs().sum() > 0
        assert_rel_close(a, b, rel=1e-10)


@pytest.mark.parametrize("window", [0, 7])
@pytest.mark.parametrize("backend", ["reference", "compiled"])
def test_snn_without_hidden_layer_takes_event_batch(window, backend):
    """No hidden layer: the readout itself takes the EventBatch (also with a response
    window) and gives the dense input's logits and readout gradient."""
    if backend == "compiled" and not numba_available():
        pytest.skip("numba not installed")
    torch.manual_seed(1)
    net = SNN(30, [], 5, backend=backend, readout_steps=window).double()
    x = sparse_input(36, (6, 40, 30), 0.05, counts=True)
    y = torch.arange(6) % 5
    out = []
    for inp in (x, EventBatch.from_dense(x)):
        net.zero_grad()
        logits = net(inp)
        F.cross_entropy(logits, y).backward()
        out.append((logits.detach(), net.readout.weight.grad.clone()))
    assert_rel_close(out[1][0], out[0][0])
    assert out[0][1].abs().sum() > 0
    assert_rel_close(out[1][1], out[0][1])


def test_event_batch_errors():
    ptr = torch.tensor([0, 1, 1], dtype=torch.int64)
    idx = torch.tensor([2], dtype=torch.int32)
    val = torch.ones(1)
    assert EventBatch(ptr, idx, val, (1, 2, 4)).to_dense()[0, 0, 2] == 1.0
    with pytest.raises(SpikegradError, match="ptr"):
        EventBatch(ptr, idx, val, (1, 3, 4))            # 3 rows, 3 pointers
    with pytest.raises(SpikegradError, match="ptr"):
        EventBatch(ptr.int(), idx, val, (1, 2, 4))
    with pytest.raises(SpikegradError, match="idx"):
        EventBatch(ptr, idx.long(), val, (1, 2, 4))
    with pytest.raises(SpikegradError, match="idx"):
        EventBatch(ptr, idx, torch.ones(2), (1, 2, 4))
    with pytest.raises(SpikegradError, match="ptr must rise"):
        EventBatch(torch.tensor([0, 2, 1]), idx, val, (1, 2, 4))
    with pytest.raises(SpikegradError, match="ptr must rise"):
        EventBatch(torch.tensor([0, 1, 2]), idx, val, (1, 2, 4))
    with pytest.raises(SpikegradError, match=r"indices must lie in \[0, 4\)"):
        EventBatch(ptr, torch.tensor([4], dtype=torch.int32), val, (1, 2, 4))
    with pytest.raises(SpikegradError, match="floating"):
        EventBatch(ptr, idx, torch.ones(1, dtype=torch.int64), (1, 2, 4))
    with pytest.raises(SpikegradError, match=r"shape \[1, 2, 4\]"):
        sparse_projection(EventBatch(ptr, idx, val, (1, 2, 4)), torch.zeros(3, 5))
    with pytest.raises(SpikegradError, match=r"input must have shape \[batch, time, 5\]"):
        SNN(5, [3], 2)(EventBatch(ptr, idx, val, (1, 2, 4)))
