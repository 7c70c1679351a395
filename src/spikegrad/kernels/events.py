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

The events (row m, column i, value x_e) are gathered once in the forward pass and kept for
the backward pass as a CSR matrix (row pointers [M + 1], column indices and values [E]).
Any values work (not only 0/1: a count of 2 adds 2·W[:, i]): the event path is a
different summation order of the same products, so it equals the dense path up to
rounding (float64: ~1e-16 relative).  Empty rows (silent samples or time steps) give
exact zeros.

Two implementations, same contract, same values up to rounding:

* numba (CPU, float32/float64, numba importable; the default there): the forward pass is
  two compiled passes over the dense x: a branch-free (vectorised) count of the events
  per row gives the CSR row pointers (and the exact sizes to allocate), then, row by row,
  the row's events are recorded in the CSR arrays and x_e · Wᵀ[i_e, :] is added to the
  row's output (rows of a contiguous copy Wᵀ [N_in, N_out], made once per call: each
  event is one vectorised row update of length N_out).  The backward pass accumulates
  dWᵀ[i_e, :] += x_e · δff[m_e, :] over the CSR in row order into a Wᵀ-shaped buffer,
  then transposes it.  Serial (one thread), events in a fixed order (rows, then
  increasing input index within a row), so the same input gives bitwise the same output.
  Compiled lazily on first use and cached on disk (``cache=True``), as in
  :mod:`spikegrad.kernels.compiled`.  Finding the events costs reads of x with a compare
  per element (≈ 4 ms for 64·100·700 float32 on a loaded machine), next to which
  ``torch.nonzero`` plus index, sort and ``embedding_bag`` (the torch implementation)
  was the bottleneck of the whole projection at 1–2 % density.
* torch (the fallback: numba missing, tensors not on the CPU, other dtypes, or
  :data:`USE_NUMBA` False): one ``nonzero`` over x, then two CSR-matrix × dense products
  by ``torch.nn.functional.embedding_bag`` (mode "sum" with per-sample weights; the bags
  are the rows for ff, the columns for dW — the events are stably re-sorted by column for
  the latter).

dx = δff W is a dense torch matmul in both, computed only when x requires grad.
:func:`density` counts the nonzeros of x in one compiled pass (for the dense-vs-events
choice).  The choice between this path and the dense matmul is made in one place,
:func:`spikegrad.neurons.project_input`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..errors import SpikegradError
from .compiled import _DTYPES, _require_numba, numba_available

# Use the numba kernels where they apply (CPU, float32/float64, numba importable).  Set to
# False to force the torch implementation (tests compare the two).
USE_NUMBA = True


def _numba_applies(*tensors: torch.Tensor) -> bool:
    return (USE_NUMBA and all(t.device.type == "cpu" and t.dtype in _DTYPES for t in tensors)
            and numba_available())


# ---------------------------------------------------------------------------------------
# numba kernels, as plain Python functions; jit-compiled on first use by _kernels().

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


def _forward_py(x, wt, out, ptr, idx, val, zero):
    """out[r] = Σ_j x[r, j] Wᵀ[j] over the nonzeros of row r; fills the CSR (idx, val).

    ``ptr`` holds the row pointers (from ``_row_counts_py``); ``zero``: 0 in x's dtype.
    Row by row: find the row's events (increasing j), then add them in that order.
    """
    m, n_in = x.shape
    n_out = wt.shape[1]
    for r in range(m):
        e0 = ptr[r]
        e = e0
        for j in range(n_in):
            v = x[r, j]
            if v != zero:
                idx[e] = j
                val[e] = v
                e += 1
        for i in range(n_out):
            out[r, i] = zero
        for k in range(e0, e):
            j = idx[k]
            v = val[k]
            for i in range(n_out):                          # a vectorised row update
                out[r, i] += v * wt[j, i]


def _grad_w_py(g, ptr, idx, val, gwt):
    """gwt[idx_e] += val_e · g[m_e] over the events, in row order (gwt starts at zero)."""
    m, n_out = g.shape
    for r in range(m):
        for e in range(ptr[r], ptr[r + 1]):
            v = val[e]
            j = idx[e]
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
    """The jit-compiled (row_counts, forward, grad_w, count) kernels, compiled lazily and
    cached on disk."""
    if "k" not in _JIT:
        numba = _require_numba()
        opts = dict(cache=True, fastmath=False, nogil=True)
        _JIT["k"] = tuple(numba.njit(**opts)(f)
                          for f in (_row_counts_py, _forward_py, _grad_w_py, _count_py))
    return _JIT["k"]


def density(x: torch.Tensor) -> float:
    """Fraction of nonzero entries of x (0.0 for an empty x).

    One compiled pass over x (CPU, float32/float64, contiguous, numba available);
    ``torch.count_nonzero`` otherwise.  Same count either way (NaN counts, ±0 does not).
    """
    n = x.numel()
    if n == 0:
        return 0.0
    if x.is_contiguous() and _numba_applies(x):
        count = _kernels()[3](x.detach().reshape(-1).numpy())
    else:
        count = int(torch.count_nonzero(x))
    return int(count) / n


# ---------------------------------------------------------------------------------------
# torch implementation (fallback)

def _bag_offsets(keys: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Start offsets of each bag for sorted ``keys`` (empty bags allowed)."""
    counts = torch.bincount(keys, minlength=n_bags)
    return counts.cumsum(0) - counts


def _forward_torch(xf: torch.Tensor, w: torch.Tensor):
    m, n_in = xf.shape
    n_out = w.shape[0]
    flat = torch.nonzero(xf.reshape(-1), as_tuple=True)[0]   # row-major: sorted by row
    rows = torch.div(flat, n_in, rounding_mode="floor")
    cols = flat - rows * n_in
    vals = xf.reshape(-1)[flat]                               # a copy, safe from later edits
    if m == 0:
        ff = w.new_zeros(0, n_out)
    else:
        ff = F.embedding_bag(cols, w.t().contiguous(), _bag_offsets(rows, m), mode="sum",
                             per_sample_weights=vals)
    return ff, (rows, cols, vals)


def _grad_w_torch(g: torch.Tensor, w: torch.Tensor, saved, n_in: int) -> torch.Tensor:
    rows, cols, vals = saved
    if rows.numel() == 0 or g.shape[0] == 0:
        return torch.zeros_like(w)
    key = cols.to(torch.int32) if n_in < 2 ** 31 else cols    # faster sort
    order = torch.argsort(key, stable=True)                   # bags: columns of x
    g_w = F.embedding_bag(rows[order], g, _bag_offsets(cols[order], n_in),
                          mode="sum", per_sample_weights=vals[order])
    return g_w.t().contiguous()


# ---------------------------------------------------------------------------------------
# numba implementation

def _forward_numba(xf: torch.Tensor, w: torch.Tensor):
    m, n_in = xf.shape
    n_out = w.shape[0]
    row_counts, forward, _, _ = _kernels()
    xc = xf.detach().contiguous()
    xn = xc.numpy()
    ptr = torch.empty(m + 1, dtype=torch.int64)
    row_counts(xn, ptr.numpy())                               # pass 1: events per row
    nnz = int(ptr[-1])
    idx = torch.empty(nnz, dtype=torch.int32)
    val = xc.new_empty(nnz)
    wt = w.detach().t().contiguous()                          # Wᵀ [N_in, N_out]
    ff = xc.new_empty(m, n_out)
    forward(xn, wt.numpy(), ff.numpy(), ptr.numpy(), idx.numpy(), val.numpy(),
            _DTYPES[xc.dtype](0))                          # pass 2: CSR + ff
    return ff, (ptr, idx, val)


def _grad_w_numba(g: torch.Tensor, w: torch.Tensor, saved, n_in: int) -> torch.Tensor:
    ptr, idx, val = saved
    n_out = w.shape[0]
    gwt = g.new_zeros(n_in, n_out)
    if idx.numel():
        _kernels()[2](g.numpy(), ptr.numpy(), idx.numpy(), val.numpy(), gwt.numpy())
    return gwt.t().contiguous()


class EventProjection(torch.autograd.Function):
    """ff = x Wᵀ over the nonzeros of x, with a hand-written backward (dx dense, dW by events)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor):
        n_out, n_in = w.shape
        lead = x.shape[:-1]
        xf = x.reshape(-1, n_in)
        m = xf.shape[0]
        use_numba = _numba_applies(x, w)
        ff, saved = (_forward_numba if use_numba else _forward_torch)(xf, w)
        ctx.save_for_backward(*saved, w)
        ctx.shape = (m, n_in, n_out, lead)
        ctx.use_numba = use_numba
        ctx.set_materialize_grads(False)
        return ff.reshape(*lead, n_out)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_ff: torch.Tensor | None):
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if g_ff is None or not (need_x or need_w):
            return None, None
        *saved, w = ctx.saved_tensors
        m, n_in, n_out, lead = ctx.shape
        g = g_ff.reshape(m, n_out).to(w.dtype).contiguous()
        g_x = (g @ w).reshape(*lead, n_in) if need_x else None
        g_w = None
        if need_w:
            g_w = (_grad_w_numba if ctx.use_numba else _grad_w_torch)(g, w, saved, n_in)
        return g_x, g_w


def sparse_projection(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """ff = x Wᵀ at a cost proportional to the number of nonzeros of x (events).

    ``x``: [..., N_in] (typically [batch, time, N_in] spikes or counts); ``w``: [N_out, N_in]
    of the same floating dtype and device.  Returns [..., N_out], differentiable w.r.t. both
    (the gradient w.r.t. x is dense, δff W; it is skipped when x does not require grad).
    """
    if w.dim() != 2 or x.dim() < 1 or x.shape[-1] != w.shape[1]:
        raise SpikegradError(
            f"cannot project input of shape {list(x.shape)} with weights {list(w.shape)}")
    if not x.is_floating_point() or x.dtype != w.dtype or x.device != w.device:
        raise SpikegradError(
            f"input ({x.dtype}, {x.device}) must have the weights' dtype and device "
            f"({w.dtype}, {w.device})")
    return EventProjection.apply(x, w)
