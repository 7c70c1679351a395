"""Compiled layer of the peer-compatible model ``cuba`` (backend ``"compiled"``): the time
loop in numba, one autograd node, hand-written adjoint.

Forward (the operations of :func:`spikegrad.dynamics.cuba.step` in its order and dtype, so
feed-forward spikes and voltages are bitwise the reference scan's; the recurrent input adds
the columns of V of the neurons that spiked, equal to the scan's product up to rounding),
for n = 0..T−1 with α, β the decays, c the input factor, g the membrane factor, θ the
threshold and U[−1] = I[−1] = S[−1] = 0:

    I[n] = α I[n−1] + c (ff[n] + S[n−1] Vᵀ)
    P[n] = β U[n−1] + g I[n]                       (the membrane before the reset)
    S[n] = Θ(P[n] − θ)
    U[n] = P[n] (1 − S[n])   or   P[n] − θ S[n]    (reset "zero" / "subtract")

The voltage output at n is U[n−1] (the state entering the step, as the scan records it).

Backward, in reverse time, with λP, λI the adjoints of P[n], I[n] (zero beyond T − 1),
incoming gradients G_S[n] (spikes) and G_U[n] (voltage output, i.e. of U[n−1]) and
h[n] = h(P[n] − θ; β) (any registered surrogate: evaluated by torch before the loop):

    λU[n] = G_U[n+1] + β λP[n+1]
    ΔS[n] = G_S[n] + c λI[n+1] V                           (recurrent_grad "prop" only)
                   − λU[n] P[n]  /  − θ λU[n]      (detach_reset False: zero / subtract)
    λP[n] = λU[n] (1 − S[n])   (subtract: λU[n])   + h[n] ΔS[n]
    λI[n] = α λI[n+1] + g λP[n]
    dL/dff[n] = c λI[n],   dL/dV = Σ_n (c λI[n])ᵀ S[n−1]   (one matmul after the loop)

Without the dense term c λI[n+1] V (feed-forward, "ctl") the whole adjoint is one compiled
loop; with it ("prop") the loop runs step by step, the term one torch matmul per step and
the rest one compiled call (as LIF's compiled kernel does).  Saved: P [batch, time,
neurons] in the compute dtype (S is recomputed as P − θ > 0), and V.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.autograd.function import once_differentiable

from .._autograd import apply
from .._numba import DTYPES, numba_available, require_numba
from ..dynamics.cuba import scaled_input, unit_gain
from ..surrogates import get_surrogate
from .fused import check_layer_inputs, fold_member_axis, supports as fused_supports

if TYPE_CHECKING:  # pragma: no cover
    from ..dynamics.cuba import CubaLIFParams


def _forward_py(ff, vt, has_v, a, b, c, c_one, g, theta, one, zero, zero_reset, spikes, volts, pre):
    batch, steps, n = ff.shape
    i = np.empty(n, ff.dtype)
    u = np.empty(n, ff.dtype)
    s = np.empty(n, ff.dtype)
    rec = np.empty(n, ff.dtype)
    for r in range(batch):
        i[:] = zero
        u[:] = zero
        s[:] = zero
        for t in range(steps):
            for k in range(n):
                volts[r, t, k] = u[k]
            if has_v:
                rec[:] = zero
                for j in range(n):                        # S[n−1] Vᵀ: columns of the neurons that spiked
                    if s[j] != zero:
                        for k in range(n):
                            rec[k] += vt[j, k]
            for k in range(n):
                drive = ff[r, t, k] + rec[k] if has_v else ff[r, t, k]
                i[k] = a * i[k] + (drive if c_one else c * drive)
                p = b * u[k] + g * i[k]
                pre[r, t, k] = p
                sk = one if p - theta > zero else zero
                s[k] = sk
                spikes[r, t, k] = sk
                u[k] = p * (one - sk) if zero_reset else p - theta * sk


def _backward_py(pre, h, gs, has_gs, gu, has_gu, a, b, c, c_one, g, theta, one, zero, zero_reset, detach,
                 gff):
    batch, steps, n = pre.shape
    lam_p = np.empty(n, pre.dtype)
    lam_i = np.empty(n, pre.dtype)
    for r in range(batch):
        lam_p[:] = zero
        lam_i[:] = zero
        for t in range(steps - 1, -1, -1):
            for k in range(n):
                lam_u = b * lam_p[k]
                if has_gu and t + 1 < steps:
                    lam_u = lam_u + gu[r, t + 1, k]
                d_s = gs[r, t, k] if has_gs else zero
                p = pre[r, t, k]
                if not detach:
                    d_s = d_s - (lam_u * p if zero_reset else theta * lam_u)
                sk = one if p - theta > zero else zero
                lp = (lam_u * (one - sk) if zero_reset else lam_u) + h[r, t, k] * d_s
                lam_p[k] = lp
                li = a * lam_i[k] + g * lp
                lam_i[k] = li
                gff[r, t, k] = li if c_one else c * li


def _backward_step_py(t, pre, h, gs, has_gs, gu, has_gu, acc, a, b, c, c_one, g, theta, one, zero, zero_reset,
                      detach, lam_p, lam_i, gff):
    """One reverse-time step of :func:`_backward_py` for every batch row, with the dense
    recurrent term c λI[n+1] V given in ``acc`` (recurrent_grad "prop")."""
    batch, steps, n = pre.shape
    for r in range(batch):
        for k in range(n):
            lam_u = b * lam_p[r, k]
            if has_gu and t + 1 < steps:
                lam_u = lam_u + gu[r, t + 1, k]
            d_s = gs[r, t, k] if has_gs else zero
            d_s = d_s + acc[r, k]
            p = pre[r, t, k]
            if not detach:
                d_s = d_s - (lam_u * p if zero_reset else theta * lam_u)
            sk = one if p - theta > zero else zero
            lp = (lam_u * (one - sk) if zero_reset else lam_u) + h[r, t, k] * d_s
            lam_p[r, k] = lp
            li = a * lam_i[r, k] + g * lp
            lam_i[r, k] = li
            gff[r, t, k] = li if c_one else c * li


_JIT: dict[str, object] = {}


def _kernels():
    if "k" not in _JIT:
        numba = require_numba("backend 'compiled'")
        opts = dict(cache=True, fastmath=False, nogil=True, error_model="numpy")
        _JIT["k"] = (numba.njit(**opts)(_forward_py), numba.njit(**opts)(_backward_py),
                     numba.njit(**opts)(_backward_step_py))
    return _JIT["k"]


def _constants(p, dtype):
    f = DTYPES[dtype]
    c_one = unit_gain(p.syn_gain)
    return (f(p.decay_syn), f(p.decay_mem), f(p.syn_gain), c_one, f(p.gain), f(p.threshold), f(1.0), f(0.0),
            p.reset == "zero")


class CompiledCuba(torch.autograd.Function):
    """All T steps of one cuba layer as a single autograd node computed by numba; outputs
    (spikes, voltages, pre), the last (P) saved for the backward pass, not differentiable."""

    @staticmethod
    def forward(ff: torch.Tensor, v: torch.Tensor | None, p: "CubaLIFParams"):
        ffc = ff.detach().contiguous()
        spikes, volts, pre = torch.empty_like(ffc), torch.empty_like(ffc), torch.empty_like(ffc)
        vt = v.detach().t().contiguous() if v is not None else ffc.new_empty(0, 0)
        if ffc.numel():
            _kernels()[0](ffc.numpy(), vt.numpy(), v is not None, *_constants(p, ffc.dtype),
                          spikes.numpy(), volts.numpy(), pre.numpy())
        return spikes, volts, pre

    @staticmethod
    def setup_context(ctx, inputs, output):
        ff, v, p = inputs
        ctx.p = p
        ctx.has_v = v is not None
        ctx.prop = v is not None and p.recurrent_grad == "prop"
        ctx.save_for_backward(output[0], output[2], v)
        ctx.mark_non_differentiable(output[2])
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(info, in_dims, ff, v, p):
        return fold_member_axis(CompiledCuba, info, in_dims, ff, v, p)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_spk: torch.Tensor | None, g_volt: torch.Tensor | None, _g_pre=None):
        need_ff, need_v = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and ctx.has_v
        if not (need_ff or need_v) or (g_spk is None and g_volt is None):
            return None, None, None
        spikes, pre, v = ctx.saved_tensors
        p = ctx.p
        h = get_surrogate(p.surrogate)(pre - p.threshold, p.beta).to(pre.dtype).contiguous()
        empty = pre.new_empty(0, 0, 0)
        gs = g_spk.to(pre.dtype).contiguous() if g_spk is not None else empty
        gu = g_volt.to(pre.dtype).contiguous() if g_volt is not None else empty
        g_ff = torch.empty_like(pre)
        consts = _constants(p, pre.dtype)
        if pre.numel() and ctx.prop:
            _stepwise_recurrent(pre, h, gs, g_spk is not None, gu, g_volt is not None, v, p, consts, g_ff)
        elif pre.numel():
            _kernels()[1](pre.numpy(), h.numpy(), gs.numpy(), g_spk is not None, gu.numpy(), g_volt is not None,
                          *consts, bool(p.detach_reset), g_ff.numpy())
        g_v = None
        if need_v:
            n = pre.shape[-1]
            g_v = g_ff[:, 1:].reshape(-1, n).t() @ spikes[:, :-1].reshape(-1, n)
        return (g_ff if need_ff else None), g_v, None


def _stepwise_recurrent(pre, h, gs, has_gs, gu, has_gu, v, p, consts, g_ff) -> None:
    """The adjoint with the dense recurrent term: a reverse-time loop whose c λI[n+1] V is
    one torch matmul per step and whose elementwise part is one compiled call."""
    step = _kernels()[2]
    batch, steps, n = pre.shape
    lam_p, lam_i, acc = pre.new_zeros(batch, n), pre.new_zeros(batch, n), pre.new_zeros(batch, n)
    vd = v.detach()
    arrays = [x.numpy() for x in (pre, h, gs, gu, acc, lam_p, lam_i, g_ff)]
    pn, hn, gsn, gun, accn, lpn, lin, gffn = arrays
    for t in range(steps - 1, -1, -1):
        if t + 1 < steps:
            torch.mm(scaled_input(p.syn_gain, lam_i), vd, out=acc)
        step(t, pn, hn, gsn, has_gs, gun, has_gu, accn, *consts, bool(p.detach_reset), lpn, lin, gffn)


def supports(ff: torch.Tensor, v: torch.Tensor | None, p: "CubaLIFParams") -> str | None:
    """None if the compiled cuba kernel runs this call, else why not."""
    reason = fused_supports(ff, v, p)       # feedback matrices, tensor parameters, transforms
    if reason is not None:
        return reason
    if not numba_available():
        return "numba is not installed"
    if ff.device.type != "cpu" or (v is not None and v.device.type != "cpu"):
        return "it runs on the CPU"
    if ff.dtype not in DTYPES:
        return f"it takes float32 or float64, not {ff.dtype}"
    return None


def cuba_compiled(ff: torch.Tensor, v: torch.Tensor | None, p: "CubaLIFParams") -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes, voltages) of a cuba layer for a call :func:`supports` accepts."""
    check_layer_inputs(ff, v, p, "compiled")
    spikes, volts, _ = apply(CompiledCuba, ff, v, p)
    return spikes, volts
