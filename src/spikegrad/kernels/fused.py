"""Fused multi-step LIF layer: one autograd node for all time steps, hand-written adjoint.

Forward (no autograd graph inside; same floating-point operations in the same order as
:func:`spikegrad.neurons.lif_reference`, so spikes and voltages are bitwise identical),
for n = 0..T−1 with U[0] = I[0] = 0, a = β_mem, b = β_syn, g the input gain:

    S[n]   = Θ(U[n] − 1)
    P[n]   = a U[n] + g I[n]                      (membrane update before the reset)
    U[n+1] = P[n] (1 − S[n])   or   P[n] − S[n]   (reset "zero" / "subtract")
    I[n+1] = b I[n] + ff[n] + S[n] Vᵀ

Backward: the adjoint recurrence in reverse time.  With λU[n] = dL/dU[n], λI[n] = dL/dI[n],
λU[T] = λI[T] = 0, incoming output gradients G_S[n] (spikes) and G_U[n] (voltages), and
h[n] = h(U[n] − 1; β) the surrogate in place of Θ′:

    ΔS[n]  = G_S[n] + λI[n+1] V                       (recurrent_grad "prop" only)
                    − λU[n+1] P[n]   /  − λU[n+1]     (detach_reset False: zero / subtract)
    λU[n]  = G_U[n] + h[n] ΔS[n] + a λU[n+1] (1 − S[n])     (subtract: without (1 − S[n]))
    λI[n]  = b λI[n+1] + g λU[n+1] (1 − S[n])               (subtract: without (1 − S[n]))
    dL/dff[n] = λI[n+1],        dL/dV = Σ_n λI[n+1]ᵀ S[n]   (for "prop" and "ctl" alike)

Saved for the backward pass:

* default (any reset with ``detach_reset=True``, or reset "subtract"): only the voltage
  output U [batch, time, neurons] in the compute dtype.  The spikes are recomputed as
  S[n] = (U[n] > 1), exactly what the forward pass did.  4 bytes per neuron and step in
  float32 (8 in float64); nothing else of size T.
* reset "zero" with ``detach_reset=False``: the gradient through the reset needs P[n]
  where the neuron spiked, which U[n+1] = 0 has lost; so the pre-reset trace
  P̃[n] = P[n−1] (P̃[0] = 0) is saved instead of U, plus the spikes as bool: 5 bytes per
  neuron and step in float32.  U is rebuilt in the backward pass as P̃[n] (1 − S[n−1]).

The surrogate is looked up with ``get_surrogate(p.surrogate)`` and evaluated in the
backward pass on blocks of a few time steps (surrogates are elementwise), so
user-registered surrogates work unchanged.  Double backward is not supported.

The autograd Function is in the ``setup_context`` style with a vmap rule: under
``torch.func.vmap`` the member axis of ff folds into the batch (feed-forward layers, or a
recurrent layer whose V is shared); stacked recurrent weights raise, naming the reference
backend, which serves them.  Float parameter records only (tensor-valued time constants run
on the reference scan).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.autograd.function import once_differentiable

from .._autograd import apply
from .._numba import differentiating_transform, is_vmapped
from ..dynamics.base import Feedback
from ..errors import SpikegradError
from ..surrogates import get_surrogate

# Feedback alignment's recurrent weights: the hand-written adjoints multiply by V itself.
FEEDBACK_REASON = "its adjoint multiplies by V, and the recurrent weights carry a feedback matrix (the reference scan takes it)"

if TYPE_CHECKING:  # pragma: no cover
    from ..neurons import LIFParams


def saved_bytes_per_neuron_step(p: "LIFParams", dtype: torch.dtype = torch.float32) -> int:
    """Bytes the fused kernel keeps for the backward pass per neuron and time step."""
    size = torch.empty((), dtype=dtype).element_size()
    return size + 1 if (p.reset == "zero" and not p.detach_reset) else size


_BLOCK_ELEMENTS = 1 << 16  # surrogate evaluated on blocks of about this many elements


def fold_member_axis(fn, info, in_dims, ff, v, *rest):
    """The vmap rule of the LIF kernels: ff's vmapped axis folds into the batch ([K, B, T, N]
    → [K·B, T, N]) and the outputs unfold; stacked recurrent weights cannot fold."""
    if v is not None and in_dims[1] is not None:
        raise SpikegradError(f"{fn.__name__}: vmap over stacked recurrent weights does not fold into the "
                             "batch; use backend 'reference'")
    x = ff.movedim(in_dims[0], 0)
    k, b = x.shape[0], x.shape[1]
    outs = fn.apply(x.reshape(k * b, *x.shape[2:]), v, *rest)
    unfolded = tuple(o.reshape(k, b, *o.shape[1:]) if o.dim() == 3 and o.shape[0] == k * b else o for o in outs)
    dims = tuple(0 if o.dim() == 4 and o.shape[:2] == (k, b) else None for o in unfolded)
    return unfolded, dims


class FusedLIF(torch.autograd.Function):
    """All T steps of one LIF layer as a single autograd node.

    Outputs (spikes, voltages, pre, spk): the last two are what the backward pass needs for
    a differentiable zero reset (the pre-reset trace and the spikes as bool; empty
    otherwise), returned so that ``setup_context`` can save them; not differentiable.
    """

    @staticmethod
    def forward(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams"):
        a, b, g = p.decay_mem, p.decay_syn, p.gain
        zero_reset = p.reset == "zero"
        keep_pre = zero_reset and not p.detach_reset
        batch, steps, n = ff.shape
        dtype = ff.dtype

        volts = ff.new_zeros(batch, steps, n)            # U[n], the output; U[0] = 0
        spikes = ff.new_zeros(batch, steps, n)           # S[n], the output
        pre = ff.new_zeros(batch, steps, n) if keep_pre else None
        cur = ff.new_zeros(batch, n)                     # I[n]
        tmp = ff.new_empty(batch, n)
        keep = ff.new_empty(batch, n)                    # 1 − S[n]
        one = ff.new_ones(())
        vt = v.t() if v is not None else None

        # Per step only float elementwise ops into preallocated views (comparisons and
        # boolean masks are several times slower per element on CPU); each op is the
        # reference's op on the same operands, so the results are bitwise identical.
        u_steps = volts.unbind(1)
        s_steps = spikes.unbind(1)
        p_steps = pre.unbind(1) if keep_pre else None
        ff_steps = ff.unbind(1)
        for t in range(steps - 1):                       # U[T], I[T] are not outputs
            u, s = u_steps[t], s_steps[t]
            torch.gt(u, 1.0, out=s)                      # u − 1 > 0  ⇔  u > 1 (exact)
            un = p_steps[t + 1] if keep_pre else u_steps[t + 1]
            torch.mul(u, a, out=un)
            torch.mul(cur, g, out=tmp)
            un.add_(tmp)                                 # P[n]
            if zero_reset:
                torch.sub(one, s, out=keep)
                if keep_pre:
                    torch.mul(un, keep, out=u_steps[t + 1])
                else:
                    un.mul_(keep)
            else:
                un.sub_(s)
            cur.mul_(b).add_(ff_steps[t])
            if v is not None:
                torch.mm(s, vt, out=tmp)
                cur.add_(tmp)
        if steps:
            torch.gt(u_steps[-1], 1.0, out=s_steps[-1])

        if keep_pre:
            return spikes, volts, pre, spikes.bool()
        return spikes, volts, ff.new_empty(0, 0, 0), torch.empty(0, 0, 0, dtype=torch.bool, device=ff.device)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ff, v, p = inputs
        spikes, volts, pre, spk = output
        keep_pre = p.reset == "zero" and not p.detach_reset
        ctx.p = p
        ctx.keep_pre = keep_pre
        ctx.has_v = v is not None
        if keep_pre:
            ctx.save_for_backward(pre, spk, v)
        else:
            ctx.save_for_backward(volts, v)
        ctx.mark_non_differentiable(pre, spk)
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(info, in_dims, ff, v, p):
        return fold_member_axis(FusedLIF, info, in_dims, ff, v, p)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_spk: torch.Tensor | None, g_volt: torch.Tensor | None, _g_pre=None, _g_spk=None):
        need_ff, need_v = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        if not (need_ff or need_v) or (g_spk is None and g_volt is None):
            return None, None, None
        p = ctx.p
        a, b, g = p.decay_mem, p.decay_syn, p.gain
        zero_reset = p.reset == "zero"
        prop = ctx.has_v and p.recurrent_grad == "prop"
        if ctx.keep_pre:
            pre, spk, v = ctx.saved_tensors
            volts = pre.clone()
            volts[:, 1:].masked_fill_(spk[:, :-1], 0.0)
        else:
            volts, v = ctx.saved_tensors
            pre = None
        batch, steps, n = volts.shape
        dtype = volts.dtype

        # h[n] = h(U[n] − 1; β) is evaluated on blocks of a few steps (elementwise, so any
        # registered surrogate works), small enough to stay in cache for the step loop.
        surrogate = get_surrogate(p.surrogate)
        block = max(1, _BLOCK_ELEMENTS // max(1, batch * n))
        g_ff = volts.new_empty(batch, steps, n)          # dL/dff[n] = λI[n+1]
        h_block, h_start = None, steps

        def surrogate_block(t0: int, t1: int) -> torch.Tensor:
            x = volts[:, t0:t1] - 1.0
            h = surrogate(x, p.beta)
            if not isinstance(h, torch.Tensor):
                raise SpikegradError(f"surrogate {p.surrogate!r} must return a tensor")
            return h.to(dtype).expand(x.shape)

        lu = volts.new_zeros(batch, n)                   # λU[n+1]
        li = volts.new_zeros(batch, n)                   # λI[n+1]
        ds = volts.new_empty(batch, n)
        q = volts.new_empty(batch, n)
        gff_steps = g_ff.unbind(1)
        u_steps = volts.unbind(1)
        gs_steps = g_spk.unbind(1) if g_spk is not None else None
        gu_steps = g_volt.unbind(1) if g_volt is not None else None
        p_steps = pre.unbind(1) if pre is not None else None
        not_detached = not p.detach_reset
        last = steps - 1
        for t in range(last, -1, -1):
            if t < h_start:
                h_start = max(0, t + 1 - block)
                h_block = surrogate_block(h_start, t + 1)
            h = h_block[:, t - h_start]
            # ΔS[n]: everything that reaches S[n]
            if gs_steps is not None:
                if prop and t < last:
                    torch.addmm(gs_steps[t], li, v, out=ds)
                else:
                    ds.copy_(gs_steps[t])
            elif prop and t < last:
                torch.mm(li, v, out=ds)
            else:
                ds.zero_()
            if t < last:
                if not_detached:
                    if zero_reset:
                        ds.addcmul_(lu, p_steps[t + 1], value=-1.0)
                    else:
                        ds.sub_(lu)
                if zero_reset:
                    torch.le(u_steps[t], 1.0, out=q)     # 1 − S[n]
                    q.mul_(lu)                           # λU[n+1] (1 − S[n])
                    qq = q
                else:
                    qq = lu
            ds.mul_(h)
            gff_steps[t].copy_(li)                       # dL/dff[n] = λI[n+1]
            if t < last:
                li.mul_(b).add_(qq, alpha=g)             # λI[n]
                torch.add(ds, qq, alpha=a, out=lu)       # λU[n] (without G_U)
            else:
                lu.copy_(ds)
            if gu_steps is not None:
                lu.add_(gu_steps[t])

        g_v = None
        if need_v:
            s_all = spk.to(dtype) if ctx.keep_pre else torch.gt(volts, 1.0).to(dtype)
            g_v = g_ff.reshape(-1, n).t() @ s_all.reshape(-1, n)
        return (g_ff if need_ff else None), g_v, None


def lif_fused(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams") -> tuple[torch.Tensor, torch.Tensor]:
    """Fused LIF layer with the same contract as :func:`spikegrad.neurons.lif_reference`.

    ``ff``: input currents [batch, time, neurons]; ``v``: recurrent weights
    [neurons, neurons] or None.  Returns (spikes, voltages), both differentiable.
    """
    check_layer_inputs(ff, v, p, "fused")
    return apply(FusedLIF, ff, v, p)[:2]


def supports(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams") -> str | None:
    """None if the fused kernel runs this call, else why not (the compiled kernel shares these)."""
    if isinstance(v, Feedback):
        return FEEDBACK_REASON
    if p.tensor_fields:
        return f"it takes float parameters, and {', '.join(p.tensor_fields)} are tensors"
    if not ff.is_floating_point():
        return f"it takes floating-point input, not {ff.dtype}"
    if v is not None and is_vmapped(v):
        return "vmap over stacked recurrent weights does not fold into the batch"
    transform = differentiating_transform()
    if transform is not None:
        return f"its adjoint is hand-written and does not run under torch.func.{transform} (vmap folds)"
    return None


def check_layer_inputs(ff: torch.Tensor, v: torch.Tensor | None, p: "LIFParams", kernel: str) -> None:
    """The shapes, dtypes and parameter kind every LIF kernel needs (one error each)."""
    if p.tensor_fields:
        raise SpikegradError(f"backend {kernel!r} takes float parameters; tensor-valued "
                             f"{', '.join(p.tensor_fields)} run on backend 'reference'")
    if ff.dim() != 3:
        raise SpikegradError(f"ff must be [batch, time, neurons], got shape {list(ff.shape)}")
    if v is not None:
        n = ff.shape[-1]
        if v.shape != (n, n):
            raise SpikegradError(f"recurrent weights must be [{n}, {n}], got {list(v.shape)}")
        if v.dtype != ff.dtype or v.device != ff.device:
            raise SpikegradError("recurrent weights must have the dtype and device of ff")
