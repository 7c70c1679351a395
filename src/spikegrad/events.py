"""Spike events: sparse [batch, time, inputs] data held as their nonzeros (a core type).

An :class:`EventBatch` is a CSR matrix over the rows m of x flattened to [M, inputs]
(M = batch·time).  Spiking data sets deliver their batches in this form, the compiled LIF
kernel returns its spikes' events in it, and the event-driven input projection
(:mod:`spikegrad.kernels.events`) reads it at a cost ∝ number of events.  Converting a
dense tensor (:meth:`EventBatch.from_dense`) takes two compiled passes over it where numba
imports (CPU, float32/float64), else ``torch.nonzero``; both give the same batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._numba import DTYPES, numba_available, numba_takes, require_numba
from .errors import SpikegradError


def _numba_applies(*tensors: torch.Tensor) -> bool:
    return numba_takes(*tensors) and numba_available()


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


# ---------------------------------------------------------------------------------------
# dense → CSR and counting, numba kernels as plain Python functions (jit-compiled on first
# use by _kernels(), cached on disk)

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


def _count_py(x):
    """Number of nonzeros of a 1-D array."""
    c = 0
    for i in range(x.shape[0]):
        c += 1 if x[i] != 0 else 0
    return c


_JIT: dict[str, object] = {}


def _kernels():
    """The jit-compiled (row_counts, fill, count) kernels."""
    if "k" not in _JIT:
        numba = require_numba("converting spikes to events")
        opts = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")
        _JIT["k"] = tuple(numba.njit(**opts)(f) for f in (_row_counts_py, _fill_py, _count_py))
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
        count = _kernels()[2](x.detach().reshape(-1).numpy())
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
        fill(xn, ptr.numpy(), idx.numpy(), val.numpy(), DTYPES[xf.dtype](0))  # pass 2
    return ptr, idx, val


def _csr_torch(xf: torch.Tensor):
    m, n_in = xf.shape
    flat = torch.nonzero(xf.reshape(-1), as_tuple=True)[0]   # row-major: sorted by row
    rows = torch.div(flat, max(n_in, 1), rounding_mode="floor")
    counts = torch.bincount(rows, minlength=m)
    ptr = torch.zeros(m + 1, dtype=torch.int64, device=xf.device)
    ptr[1:] = counts.cumsum(0)
    return ptr, (flat - rows * n_in).to(torch.int32), xf.reshape(-1)[flat]


def step_reader(x):
    """``at(n)``: the input at step n, [batch, inputs], of a dense [batch, time, inputs] tensor
    or an :class:`EventBatch` — which stays events: step n's rows are read through the CSR
    row pointer, so nothing of size batch · T is made (for rules that run step by step)."""
    if not isinstance(x, EventBatch):
        return lambda n: x[:, n]
    batch, steps, n_in = x.shape
    ptr, idx, val = x.ptr, x.idx.long(), x.val
    first_rows = torch.arange(batch, device=ptr.device) * steps

    def at(n):
        lo, hi = ptr[first_rows + n], ptr[first_rows + n + 1]
        counts = hi - lo
        b = torch.repeat_interleave(torch.arange(batch, device=ptr.device), counts)
        within = torch.arange(int(counts.sum()), device=ptr.device) - torch.repeat_interleave(
            torch.cumsum(counts, 0) - counts, counts)
        pos = torch.repeat_interleave(lo, counts) + within
        out = val.new_zeros(batch, n_in)
        out[b, idx[pos]] = val[pos]
        return out

    return at
