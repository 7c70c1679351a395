"""Event-driven input projection ff = x Wᵀ for sparse spike input (issue 5, part 2).

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
  cached on disk (``cache=True``), as in :mod:`spikegrad.kernels.compiled`.  Measured on
  the 2-core development machine (64·100 rows, 700 → 256, 2 %): forward 5.5 ms from a dense
  x (the two passes over it: 3.4 ms), 2.1 ms from the events on one thread, 1.1 ms on two;
  dW 2.2 ms on one thread, 1.1 ms on two.
* torch (the fallback: numba missing, tensors not on the CPU, other dtypes, or
  :data:`USE_NUMBA` False): ``torch.nonzero`` for a dense x, then two CSR-matrix × dense
  products by ``torch.nn.functional.embedding_bag`` (mode "sum" with per-sample weights;
  the bags are the rows for ff, the columns for dW — the events are stably re-sorted by
  column for the latter).

dx = δff W is a dense torch matmul in both, computed only when a dense x requires grad (an
event batch is data: it has no gradient).  :func:`density` counts the nonzeros of a dense x
in one compiled pass (for the dense-vs-events choice).  The choice between this path and
the dense matmul is made in one place, :func:`spikegrad.neurons.project_input`.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..errors import SpikegradError
from .compiled import _DTYPES, _require_numba, numba_available

# Use the numba kernels where they apply (CPU, float32/float64, numba importable).  Set to
# False to force the torch implementation (tests compare the two).
USE_NUMBA = True

# Multiply-adds (events × N_out) below which a call runs on one thread: a parallel region
# costs tens of microseconds to start.
_MIN_WORK_PER_THREAD = 200_000


def _numba_applies(*tensors: torch.Tensor) -> bool:
    return (USE_NUMBA and all(t.device.type == "cpu" and t.dtype in _DTYPES for t in tensors)
            and numba_available())


class EventBatch:
    """Sparse input of shape ``shape`` (typically [batch, time, inputs]) held as its nonzeros.

    A CSR matrix over the rows m of x flattened to [M, inputs] (M = batch·time): ``ptr``
    int64 [M + 1] (row m's events are ``ptr[m]:ptr[m+1]``), ``idx`` int32 [E] (the input
    index of each event, increasing within a row, no repeats), ``val`` [E] (its value: a
    spike count, or any number).  What spiking data sets give the network: the input
    projection reads the events directly (:func:`sparse_projection`), at a cost ∝ E instead
    of M × inputs.  Data, not a parameter: it carries no gradient.

    ``SNN``/``LIFLayer`` take it wherever they take a dense input tensor; :meth:`to_dense`
    gives the dense tensor (same values), :meth:`from_dense` the reverse.
    """

    __slots__ = ("ptr", "idx", "val", "shape")

    def __init__(self, ptr: torch.Tensor, idx: torch.Tensor, val: torch.Tensor, shape):
        shape = torch.Size(int(s) for s in shape)
        if len(shape) < 1 or any(s < 0 for s in shape):
            raise SpikegradError(f"event batch: invalid shape {list(shape)}")
        rows = math.prod(shape[:-1])
        if ptr.dim() != 1 or ptr.numel() != rows + 1 or ptr.dtype != torch.int64:
            raise SpikegradError(f"event batch of shape {list(shape)}: ptr must be int64 "
                                 f"[{rows + 1}], got {ptr.dtype} {list(ptr.shape)}")
        if idx.dim() != 1 or idx.dtype != torch.int32 or val.shape != idx.shape:
            raise SpikegradError(f"event batch: idx must be int32 [E] and val [E], got "
                                 f"{idx.dtype} {list(idx.shape)} and {list(val.shape)}")
        if not val.is_floating_point() or len({ptr.device, idx.device, val.device}) != 1:
            raise SpikegradError("event batch: val must be floating, all parts on one device")
        # the kernels index with these unchecked: a bad pointer or index must stop here
        if int(ptr[0]) != 0 or int(ptr[-1]) != idx.numel() or bool((ptr[1:] < ptr[:-1]).any()):
            raise SpikegradError(f"event batch: ptr must rise from 0 to the {idx.numel()} events")
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= shape[-1]):
            raise SpikegradError(f"event batch: input indices must lie in [0, {shape[-1]})")
        self.ptr, self.idx, self.val, self.shape = ptr, idx, val, shape

    @classmethod
    def from_dense(cls, x: torch.Tensor) -> "EventBatch":
        """The nonzeros of a dense x (any values; −0.0 is zero, NaN is an event)."""
        if x.dim() < 1:
            raise SpikegradError(f"event batch: input must have at least one dimension, got {list(x.shape)}")
        xf = x.detach().reshape(-1, x.shape[-1]) if x.shape[-1] else x.detach().reshape(-1, 0)
        if not xf.is_floating_point():
            xf = xf.to(torch.get_default_dtype())
        ptr, idx, val = (_csr_numba if _numba_applies(xf) else _csr_torch)(xf)
        return cls._unchecked(ptr, idx, val, x.shape)

    @property
    def dtype(self) -> torch.dtype:
        return self.val.dtype

    @property
    def device(self) -> torch.device:
        return self.val.device

    @property
    def nnz(self) -> int:
        return self.idx.numel()

    def dim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def numel(self) -> int:
        return math.prod(self.shape)

    def density(self) -> float:
        """Fraction of nonzero entries (0.0 when empty)."""
        n = self.numel()
        return self.nnz / n if n else 0.0

    def to(self, device=None, dtype: torch.dtype | None = None) -> "EventBatch":
        """The same events on ``device`` and/or with values of ``dtype``."""
        val = self.val.to(device=device, dtype=dtype)
        if val is self.val:
            return self
        return EventBatch._unchecked(self.ptr.to(val.device), self.idx.to(val.device), val, self.shape)

    def rows(self) -> torch.Tensor:
        """Row (flattened leading index) of every event, int64 [E]."""
        counts = self.ptr[1:] - self.ptr[:-1]
        return torch.repeat_interleave(torch.arange(counts.numel(), device=self.device), counts)

    def to_dense(self) -> torch.Tensor:
        """The dense tensor of shape ``shape``."""
        n_in = self.shape[-1]
        out = self.val.new_zeros(math.prod(self.shape[:-1]) * n_in)
        out[self.rows() * n_in + self.idx.long()] = self.val
        return out.reshape(self.shape)

    def __repr__(self) -> str:
        return (f"EventBatch(shape={list(self.shape)}, events={self.nnz}, "
                f"dtype={self.dtype}, device={self.device})")

    @classmethod
    def _unchecked(cls, ptr, idx, val, shape) -> "EventBatch":
        """For code that builds a valid CSR itself (kernels) or takes the parts of a checked
        EventBatch: no validation pass."""
        ev = cls.__new__(cls)
        ev.ptr, ev.idx, ev.val, ev.shape = ptr, idx, val, torch.Size(shape)
        return ev


_EVENTS_ATTR = "_spikegrad_events"


def attach_events(x: torch.Tensor, ev: EventBatch) -> None:
    """Record on the dense tensor x that ``ev`` holds its nonzeros (a kernel that makes x,
    e.g. the compiled LIF layer's spikes, knows them for free); :func:`known_events` hands
    them out while x is unchanged, so projections of x skip the pass that finds them."""
    setattr(x, _EVENTS_ATTR, (ev, x._version))


def known_events(x) -> EventBatch | None:
    """The events recorded for x by :func:`attach_events`, or None (none recorded, or x was
    modified in place since)."""
    rec = getattr(x, _EVENTS_ATTR, None)
    if rec is None or rec[1] != x._version:
        return None
    return rec[0]


# ---------------------------------------------------------------------------------------
# numba kernels, as plain Python functions; jit-compiled on first use by _kernels().
# ``prange`` is bound to numba.prange there (as in kernels/compiled.py).

prange = range


def _row_counts_py(x, ptr):
    """ptr[0] = 0, ptr[r + 1] = number of nonzeros in rows 0..r (the CSR row pointers)."""
    m, n_in = x.shape
    ptr[0] = 0
    total = 0
    for r in range(m):
        c = 0
        for j in range(n_in):                               # branch-free: vectorised
            c += 1 if x[r, j] != 0 else 0
        total += c
        ptr[r + 1] = total


def _fill_py(x, ptr, idx, val, zero):
    """The CSR column indices and values of x's nonzeros (rows in order, j increasing)."""
    m, n_in = x.shape
    for r in range(m):
        e = ptr[r]
        for j in range(n_in):
            v = x[r, j]
            if v != zero:
                idx[e] = j
                val[e] = v
                e += 1


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


def _count_py(x):
    """Number of nonzeros of a 1-D array."""
    c = 0
    for i in range(x.shape[0]):
        c += 1 if x[i] != 0 else 0
    return c


_JIT: dict[str, object] = {}


def _kernels():
    """The jit-compiled (row_counts, fill, forward, grad_w, count) kernels, compiled lazily
    and cached on disk; forward and grad_w run their chunks in parallel."""
    if "k" not in _JIT:
        numba = _require_numba()
        global prange
        prange = numba.prange
        opts = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")
        serial = [numba.njit(**opts)(f) for f in (_row_counts_py, _fill_py)]
        parallel = [numba.njit(parallel=True, **opts)(f) for f in (_forward_py, _grad_w_py)]
        _JIT["k"] = (*serial, *parallel, numba.njit(**opts)(_count_py))
    return _JIT["k"]


def _chunks(work: int) -> int:
    """Threads (= chunks) for a kernel call of ``work`` multiply-adds; sets numba's count."""
    numba = _require_numba()
    n = min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS,
            max(1, work // _MIN_WORK_PER_THREAD))
    n = max(1, n)
    numba.set_num_threads(n)
    return n


def density(x: torch.Tensor) -> float:
    """Fraction of nonzero entries of x (0.0 for an empty x).

    One compiled pass over x (CPU, float32/float64, contiguous, numba available);
    ``torch.count_nonzero`` otherwise.  Same count either way (NaN counts, ±0 does not).
    """
    n = x.numel()
    if n == 0:
        return 0.0
    if x.is_contiguous() and _numba_applies(x):
        count = _kernels()[4](x.detach().reshape(-1).numpy())
    else:
        count = int(torch.count_nonzero(x))
    return int(count) / n


# ---------------------------------------------------------------------------------------
# dense x → CSR

def _csr_numba(xf: torch.Tensor):
    row_counts, fill = _kernels()[:2]
    xn = xf.contiguous().numpy()
    m = xf.shape[0]
    ptr = torch.empty(m + 1, dtype=torch.int64)
    row_counts(xn, ptr.numpy())                               # pass 1: events per row
    nnz = int(ptr[-1])
    idx = torch.empty(nnz, dtype=torch.int32)
    val = xf.new_empty(nnz)
    if nnz:
        fill(xn, ptr.numpy(), idx.numpy(), val.numpy(), _DTYPES[xf.dtype](0))  # pass 2
    return ptr, idx, val


def _csr_torch(xf: torch.Tensor):
    m, n_in = xf.shape
    flat = torch.nonzero(xf.reshape(-1), as_tuple=True)[0]   # row-major: sorted by row
    rows = torch.div(flat, max(n_in, 1), rounding_mode="floor")
    counts = torch.bincount(rows, minlength=m)
    ptr = torch.zeros(m + 1, dtype=torch.int64, device=xf.device)
    ptr[1:] = counts.cumsum(0)
    return ptr, (flat - rows * n_in).to(torch.int32), xf.reshape(-1)[flat]


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
        _kernels()[2](ev.ptr.numpy(), ev.idx.numpy(), ev.val.numpy(), wt.numpy(), ff.numpy(),
                      _chunks(ev.nnz * n_out), _DTYPES[ff.dtype](0))
    return ff


def _grad_w_numba(g: torch.Tensor, w: torch.Tensor, ev: EventBatch, n_in: int) -> torch.Tensor:
    n_out = w.shape[0]
    gwt = g.new_zeros(n_in, n_out)
    if ev.nnz:
        _kernels()[3](g.numpy(), ev.ptr.numpy(), ev.idx.numpy(), ev.val.numpy(), gwt.numpy(),
                      min(_chunks(ev.nnz * n_out), max(1, n_in)))
    return gwt.t().contiguous()


class EventProjection(torch.autograd.Function):
    """ff = x Wᵀ over the events of x, with a hand-written backward (dW by events; dx dense,
    for a dense x that requires grad)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, x: torch.Tensor | None, ptr, idx, val, shape):
        # x: the dense input when there is one (only to route its gradient), else None
        ev = EventBatch._unchecked(ptr, idx, val, shape)   # pieces of a checked EventBatch
        use_numba = _numba_applies(val, w)
        ff = (_forward_numba if use_numba else _forward_torch)(ev, w, math.prod(ev.shape[:-1]))
        ctx.save_for_backward(ptr, idx, val, w)
        ctx.shape = ev.shape
        ctx.use_numba = use_numba
        ctx.set_materialize_grads(False)
        return ff.reshape(*ev.shape[:-1], w.shape[0])

    @staticmethod
    @once_differentiable
    def backward(ctx, g_ff: torch.Tensor | None):
        need_w, need_x = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if g_ff is None or not (need_x or need_w):
            return None, None, None, None, None, None
        ptr, idx, val, w = ctx.saved_tensors
        shape = ctx.shape
        n_out, n_in = w.shape
        g = g_ff.reshape(math.prod(shape[:-1]), n_out).to(w.dtype).contiguous()
        g_x = (g @ w).reshape(shape) if need_x else None
        g_w = None
        if need_w:
            ev = EventBatch._unchecked(ptr, idx, val, shape)
            g_w = (_grad_w_numba if ctx.use_numba else _grad_w_torch)(g, w, ev, n_in)
        return g_w, g_x, None, None, None, None


def sparse_projection(x: torch.Tensor | EventBatch, w: torch.Tensor) -> torch.Tensor:
    """ff = x Wᵀ at a cost proportional to the number of nonzeros of x (events).

    ``x``: an :class:`EventBatch`, or a dense [..., N_in] tensor (typically [batch, time,
    N_in] spikes or counts; its events are found first); ``w``: [N_out, N_in] of the same
    floating dtype and device.  Returns [..., N_out], differentiable w.r.t. w, and w.r.t. a
    dense x (dense, δff W; skipped when x does not require grad).
    """
    if w.dim() != 2 or x.dim() < 1 or x.shape[-1] != w.shape[1]:
        raise SpikegradError(
            f"cannot project input of shape {list(x.shape)} with weights {list(w.shape)}")
    if isinstance(x, EventBatch):
        dense, ev = None, x
    else:
        dense = x
        if not x.is_floating_point():
            raise SpikegradError(f"input must be floating point, got {x.dtype}")
        ev = None
    if x.dtype != w.dtype or x.device != w.device:
        raise SpikegradError(
            f"input ({x.dtype}, {x.device}) must have the weights' dtype and device "
            f"({w.dtype}, {w.device})")
    if ev is None:
        ev = known_events(dense) or EventBatch.from_dense(dense)
    return EventProjection.apply(w, dense, ev.ptr, ev.idx, ev.val, ev.shape)
