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

The events (row m, column i, value x_e) are gathered once in the forward pass with one
``nonzero`` over x (a pass over batch·T·N_in elements with no multiply, the only part that
does not scale with E) and kept for the backward pass.  Both sums are CSR-matrix × dense
products, computed with ``torch.nn.functional.embedding_bag`` (mode "sum" with
per-sample weights; the bags are the rows for ff, the columns for dW — the events are
stably re-sorted by column for the latter), which on CPU is a tight gather-and-add loop.
Empty rows (silent samples or time steps) give exact zeros.  Any values work (not only
0/1): the event path is a different summation order of the same products, so it equals the
dense path up to rounding (float64: ~1e-16 relative).

The choice between this path and the dense matmul is made in one place,
:func:`spikegrad.neurons.project_input`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from ..errors import SpikegradError


def _bag_offsets(keys: torch.Tensor, n_bags: int) -> torch.Tensor:
    """Start offsets of each bag for sorted ``keys`` (empty bags allowed)."""
    counts = torch.bincount(keys, minlength=n_bags)
    return counts.cumsum(0) - counts


class EventProjection(torch.autograd.Function):
    """ff = x Wᵀ over the nonzeros of x, with a hand-written backward (dx dense, dW by events)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor):
        n_out, n_in = w.shape
        lead = x.shape[:-1]
        xf = x.reshape(-1, n_in)
        m = xf.shape[0]
        flat = torch.nonzero(xf.reshape(-1), as_tuple=True)[0]   # row-major: sorted by row
        rows = torch.div(flat, n_in, rounding_mode="floor")
        cols = flat - rows * n_in
        vals = xf.reshape(-1)[flat]                               # a copy, safe from later edits
        if m == 0:
            ff = w.new_zeros(0, n_out)
        else:
            ff = F.embedding_bag(cols, w.t().contiguous(), _bag_offsets(rows, m), mode="sum",
                                 per_sample_weights=vals)
        ctx.save_for_backward(rows, cols, vals, w)
        ctx.shape = (m, n_in, n_out, lead)
        ctx.set_materialize_grads(False)
        return ff.reshape(*lead, n_out)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_ff: torch.Tensor | None):
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if g_ff is None or not (need_x or need_w):
            return None, None
        rows, cols, vals, w = ctx.saved_tensors
        m, n_in, n_out, lead = ctx.shape
        g = g_ff.reshape(m, n_out).contiguous()
        g_x = (g @ w).reshape(*lead, n_in) if need_x else None
        g_w = None
        if need_w:
            if rows.numel() == 0 or m == 0:
                g_w = torch.zeros_like(w)
            else:
                key = cols.to(torch.int32) if n_in < 2 ** 31 else cols   # faster sort
                order = torch.argsort(key, stable=True)           # bags: columns of x
                g_w = F.embedding_bag(rows[order], g, _bag_offsets(cols[order], n_in),
                                      mode="sum", per_sample_weights=vals[order])
                g_w = g_w.t().contiguous()
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
