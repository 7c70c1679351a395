"""Event-driven input projection ff = x Wᵀ for sparse spike input.

A layer's input x [batch, time, N_in] is, for every spiking data set and for every
hidden-to-hidden connection, mostly zeros: 0/1 spikes (or small integer counts when
several events fall into one time bin).  The dense projection costs batch·T·N_in·N_out
multiply-adds in the forward pass and as many again for dW = Σ_{b,t} δff[b,t]ᵀ x[b,t];
with E events (nonzeros of x) the same sums cost E·N_out each:

    ff[m, :]  = Σ_{events e in row m}  x_e · W[:, i_e]          (m = (b, t) flattened)
    dW[:, i]  = Σ_{events e in column i}  x_e · δff[m_e, :]
    dx        = δff W                                             (dense: x's gradient is
                                                                   nonzero where x = 0 too)

The events are held as a CSR matrix over the rows m: an :class:`EventBatch` (row
pointers [M + 1], input indices [E] increasing within a row, values [E]).  Spiking data
sets deliver their batches in this form (:meth:`spikegrad.data.EventData.batch`), so the
projection never writes or scans a dense raster; a dense x (e.g. a hidden layer's spikes)
is converted first (:meth:`EventBatch.from_dense`, two passes over x).  Any values work
(not only 0/1: a count of 2 adds 2·W[:, i]): the event path is a different summation
order of the same products, so it equals the dense path up to rounding (float64: ~1e-16
relative).  Empty rows (silent samples or time steps) give exact zeros.

Two implementations, same contract, same values up to rounding:

* numba (CPU, float32/float64, numba importable; the default there).  Forward: row by
  row, x_e · Wᵀ[i_e, :] is added to the row's output (rows of a contiguous copy Wᵀ
  [N_in, N_out], made once per call: each event is one vectorised row update of length
  N_out); the rows are split between threads.  Backward: dWᵀ[i_e, :] += x_e · δff[m_e, :]
  in row order, the input indices split between threads (each thread owns a block of dWᵀ's
  rows), so no partial sums are added afterwards: ff and dW are bitwise the same for any
  thread count and on a repeat.  Threads: torch's (``torch.get_num_threads()``), one below
  :data:`_MIN_WORK_PER_THREAD` multiply-adds per thread.  Compiled lazily on first use and
  cached on disk (``cache=True``), as in :mod:`spikegrad.kernels.compiled` (its timings:
  docs/PERFORMANCE.md, "Numbers behind the defaults in the source").
* torch (the fallback: numba missing, tensors not on the CPU, other dtypes, or
  ``impl="torch"``): ``torch.nonzero`` for a dense x, then two CSR-matrix × dense
  products by ``torch.nn.functional.embedding_bag`` (mode "sum" with per-sample weights;
  the bags are the rows for ff, the columns for dW — the events are stably re-sorted by
  column for the latter).

dx = δff W is a dense torch matmul in both, computed only when a dense x requires grad (an
event batch is data: it has no gradient).  :class:`EventBatch` and the dense → events
conversion live in :mod:`spikegrad.events` (a core type).  The choice between this path and
the dense matmul is made in one place, :func:`spikegrad.neurons.project_input`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from .._autograd import apply
from .._numba import DTYPES, in_transform, numba_available, numba_takes, require_numba, thread_count  # noqa: F401  (numba_available: re-exported)
from ..errors import SpikegradError
from ..events import EventBatch, _numba_applies, density  # noqa: F401  (density: re-exported)

# Implementations of the projection: "auto" takes numba where it applies (CPU,
# float32/float64, numba importable), else torch; "torch" forces the torch one (tests
# compare the two); "numba" raises where numba cannot serve.
from .options import PROJECTION_IMPLS as IMPLS

# Multiply-adds (events × N_out) below which a call runs on one thread: a parallel region
# costs tens of microseconds to start.
_MIN_WORK_PER_THREAD = 200_000


def _use_numba(impl: str, *tensors: torch.Tensor) -> bool:
    """Whether a projection with implementation ``impl`` runs the numba kernels."""
    if impl not in IMPLS:
        raise SpikegradError(f"unknown event projection implementation {impl!r}; choose one of: {', '.join(IMPLS)}")
    if impl == "torch":
        return False
    if impl == "numba":
        require_numba("the numba event projection")
        if not numba_takes(*tensors):
            raise SpikegradError("the numba event projection runs on CPU float32/float64 tensors only; "
                                 "use impl 'torch' or 'auto'")
        return True
    return _numba_applies(*tensors)


# ---------------------------------------------------------------------------------------
# numba kernels, as plain Python functions; jit-compiled on first use by _kernels().
# ``prange`` is bound to numba.prange there (as in kernels/lif_loops.py).

prange = range


def _forward_py(ptr, idx, val, wt, out, nchunks, zero):
    """out[r] = Σ_e val_e Wᵀ[idx_e] over row r's events; rows split into ``nchunks``."""
    m, n_out = out.shape
    for c in prange(nchunks):
        for r in range(m * c // nchunks, m * (c + 1) // nchunks):
            for i in range(n_out):
                out[r, i] = zero
            for k in range(ptr[r], ptr[r + 1]):
                j = idx[k]
                v = val[k]
                for i in range(n_out):                      # a vectorised row update
                    out[r, i] += v * wt[j, i]


def _grad_w_py(g, ptr, idx, val, gwt, nchunks):
    """gwt[idx_e] += val_e · g[m_e] over the events in row order (gwt starts at zero).

    Chunk c owns the input indices [n_in·c/nchunks, n_in·(c+1)/nchunks): every entry of gwt
    gets its terms in the same order whatever the number of chunks.
    """
    m, n_out = g.shape
    n_in = gwt.shape[0]
    for c in prange(nchunks):
        j0 = n_in * c // nchunks
        j1 = n_in * (c + 1) // nchunks
        for r in range(m):
            for e in range(ptr[r], ptr[r + 1]):
                j = idx[e]
                if j >= j0 and j < j1:
                    v = val[e]
                    for i in range(n_out):
                        gwt[j, i] += v * g[r, i]


_JIT: dict[str, object] = {}


def _kernels():
    """The jit-compiled (forward, grad_w) kernels, compiled lazily and cached on disk; both
    run their chunks in parallel."""
    if "k" not in _JIT:
        numba = require_numba("the numba event projection")
        global prange
        prange = numba.prange
        opts = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")
        _JIT["k"] = tuple(numba.njit(parallel=True, **opts)(f) for f in (_forward_py, _grad_w_py))
    return _JIT["k"]


def _chunks(work: int) -> int:
    """Threads (= chunks) for a kernel call of ``work`` multiply-adds; sets numba's count."""
    numba = require_numba()
    n = thread_count(numba, 0, work, _MIN_WORK_PER_THREAD)
    numba.set_num_threads(n)
    return n


# ---------------------------------------------------------------------------------------
# projection and dW: torch implementation (fallback)

def _forward_torch(ev: EventBatch, w: torch.Tensor, m: int) -> torch.Tensor:
    if m == 0:
        return w.new_zeros(0, w.shape[0])
    return F.embedding_bag(ev.idx.long(), w.t().contiguous(), ev.ptr, mode="sum",
                           per_sample_weights=ev.val, include_last_offset=True)


def _grad_w_torch(g: torch.Tensor, w: torch.Tensor, ev: EventBatch, n_in: int) -> torch.Tensor:
    if ev.nnz == 0 or g.shape[0] == 0:
        return torch.zeros_like(w)
    order = torch.argsort(ev.idx, stable=True)                 # bags: columns of x
    cols = ev.idx.long()[order]
    counts = torch.bincount(cols, minlength=n_in)
    g_w = F.embedding_bag(ev.rows()[order], g, counts.cumsum(0) - counts,
                          mode="sum", per_sample_weights=ev.val[order])
    return g_w.t().contiguous()


# ---------------------------------------------------------------------------------------
# projection and dW: numba implementation

def _forward_numba(ev: EventBatch, w: torch.Tensor, m: int) -> torch.Tensor:
    n_out = w.shape[0]
    wt = w.detach().t().contiguous()                          # Wᵀ [N_in, N_out]
    ff = ev.val.new_empty(m, n_out)
    if m:
        _kernels()[0](ev.ptr.numpy(), ev.idx.numpy(), ev.val.numpy(), wt.numpy(), ff.numpy(),
                      _chunks(ev.nnz * n_out), DTYPES[ff.dtype](0))
    return ff


def _grad_w_numba(g: torch.Tensor, w: torch.Tensor, ev: EventBatch, n_in: int) -> torch.Tensor:
    n_out = w.shape[0]
    gwt = g.new_zeros(n_in, n_out)
    if ev.nnz:
        _kernels()[1](g.numpy(), ev.ptr.numpy(), ev.idx.numpy(), ev.val.numpy(), gwt.numpy(),
                      min(_chunks(ev.nnz * n_out), max(1, n_in)))
    return gwt.t().contiguous()


class EventProjection(torch.autograd.Function):
    """ff = x Wᵀ over the events of x, with a hand-written backward (dW by events; dx dense,
    for a dense x that requires grad).  ``setup_context`` style; under ``torch.func.vmap``
    :func:`sparse_projection` refuses (the dense path serves vmap)."""

    @staticmethod
    def forward(w: torch.Tensor, x: torch.Tensor | None, ptr, idx, val, shape, use_numba: bool):
        # x: the dense input when there is one (only to route its gradient), else None
        ev = EventBatch._unchecked(ptr, idx, val, shape)   # pieces of a checked EventBatch
        ff = (_forward_numba if use_numba else _forward_torch)(ev, w, math.prod(ev.shape[:-1]))
        return ff.reshape(*ev.shape[:-1], w.shape[0])

    @staticmethod
    def setup_context(ctx, inputs, output):
        w, x, ptr, idx, val, shape, use_numba = inputs
        ctx.save_for_backward(ptr, idx, val, w)
        ctx.shape = torch.Size(shape)
        ctx.use_numba = use_numba
        ctx.set_materialize_grads(False)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_ff: torch.Tensor | None):
        need_w, need_x = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if g_ff is None or not (need_x or need_w):
            return None, None, None, None, None, None, None
        ptr, idx, val, w = ctx.saved_tensors
        shape = ctx.shape
        n_out, n_in = w.shape
        g = g_ff.reshape(math.prod(shape[:-1]), n_out).to(w.dtype).contiguous()
        g_x = (g @ w).reshape(shape) if need_x else None
        g_w = None
        if need_w:
            ev = EventBatch._unchecked(ptr, idx, val, shape)
            g_w = (_grad_w_numba if ctx.use_numba else _grad_w_torch)(g, w, ev, n_in)
        return g_w, g_x, None, None, None, None, None


def sparse_projection(x: torch.Tensor | EventBatch, w: torch.Tensor, events: EventBatch | None = None,
                      impl: str = "auto") -> torch.Tensor:
    """ff = x Wᵀ at a cost proportional to the number of nonzeros of x (events).

    ``x``: an :class:`EventBatch`, or a dense [..., N_in] tensor (typically [batch, time,
    N_in] spikes or counts); ``events``: x's events when the caller knows them (e.g. the
    compiled LIF layer returns its spikes' events), else they are found here; ``w``:
    [N_out, N_in] of the same floating dtype and device; ``impl``: see :data:`IMPLS`.
    Returns [..., N_out], differentiable w.r.t. w, and w.r.t. a dense x (dense, δff W;
    skipped when x does not require grad).
    """
    if w.dim() != 2 or x.dim() < 1 or x.shape[-1] != w.shape[1]:
        raise SpikegradError(
            f"cannot project input of shape {list(x.shape)} with weights {list(w.shape)}")
    if isinstance(x, EventBatch):
        dense, ev = None, x
    else:
        dense, ev = x, events
        if not x.is_floating_point():
            raise SpikegradError(f"input must be floating point, got {x.dtype}")
    if x.dtype != w.dtype or x.device != w.device:
        raise SpikegradError(
            f"input ({x.dtype}, {x.device}) must have the weights' dtype and device "
            f"({w.dtype}, {w.device})")
    if in_transform():
        raise SpikegradError("input path 'events' does not run under torch.func transforms (grad, vmap, "
                             "jvp); use input_path 'dense' (or 'auto', which picks it there)")
    if ev is None:
        ev = EventBatch.from_dense(dense)
    elif ev.shape != x.shape:
        raise SpikegradError(f"events of shape {list(ev.shape)} given for input of shape {list(x.shape)}")
    use_numba = _use_numba(impl, ev.val, w)
    return apply(EventProjection, w, dense, ev.ptr, ev.idx, ev.val, tuple(ev.shape), use_numba)
