"""Fused multi-step layer of the peer-compatible model ``cuba`` (backend ``"fused"``): one
autograd node for all time steps, hand-written adjoint.

Forward (no autograd graph inside; the operations of :func:`spikegrad.dynamics.cuba.step` in
its order, so spikes and voltages are bitwise the reference scan's), for n = 0..T−1 with
α, β the decays, c the input factor, g the membrane factor, θ the threshold:

    I[n] = α I[n−1] + c (ff[n] + S[n−1] Vᵀ)
    P[n] = β U[n−1] + g I[n]                       (the membrane before the reset)
    S[n] = Θ(P[n] − θ)
    U[n] = P[n] (1 − S[n])   or   P[n] − θ S[n]    (reset "zero" / "subtract")

with U[−1] = I[−1] = S[−1] = 0; the voltage output at n is U[n−1] (the state entering the
step, as the scan records it).

Backward: in reverse time, with λP, λI the adjoints of P[n], I[n] (zero beyond T − 1),
incoming gradients G_S[n] (spikes) and G_U[n] (voltage output, i.e. of U[n−1]) and
h[n] = h(P[n] − θ; β) in place of Θ′:

    λU[n] = G_U[n+1] + β λP[n+1]
    ΔS[n] = G_S[n] + c λI[n+1] V                           (recurrent_grad "prop" only)
                   − λU[n] P[n]   /   − θ λU[n]            (detach_reset False: zero / subtract)
    λP[n] = λU[n] (1 − S[n])   (subtract: λU[n])   + h[n] ΔS[n]
    λI[n] = α λI[n+1] + g λP[n]
    dL/dff[n] = c λI[n],   dL/dV = Σ_n (c λI[n])ᵀ S[n−1]

Saved: P [batch, time, neurons] in the compute dtype (S is recomputed as P − θ > 0, what
the forward did) and V.  Float parameter records only; a vmap folds the member axis into
the batch like the LIF kernels.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch.autograd.function import once_differentiable

from .._autograd import apply
from ..surrogates import get_surrogate
from .fused import check_layer_inputs, fold_member_axis, supports as lif_fused_supports

if TYPE_CHECKING:  # pragma: no cover
    from ..dynamics.cuba import CubaLIFParams


def _scaled(c, x: torch.Tensor) -> torch.Tensor:
    """c·x, or x itself for c = 1 (as the step function skips the product)."""
    return x if isinstance(c, float) and c == 1.0 else c * x


class FusedCuba(torch.autograd.Function):
    """All T steps of one cuba layer as a single autograd node; outputs (spikes, voltages,
    pre), the last (P) saved for the backward pass and not differentiable."""

    @staticmethod
    def forward(ff: torch.Tensor, v: torch.Tensor | None, p: "CubaLIFParams"):
        a, b, c, g, theta = p.decay_syn, p.decay_mem, p.syn_gain, p.gain, p.threshold
        batch, steps, n = ff.shape
        spikes = ff.new_zeros(batch, steps, n)
        volts = ff.new_zeros(batch, steps, n)          # U[n−1]; U[−1] = 0
        pre = ff.new_zeros(batch, steps, n)            # P[n]
        i = ff.new_zeros(batch, n)
        u = ff.new_zeros(batch, n)
        s = ff.new_zeros(batch, n)
        vt = v.t() if v is not None else None
        for t, ff_t in enumerate(ff.unbind(1)):
            volts[:, t] = u
            drive = ff_t + s @ vt if v is not None else ff_t
            i = a * i + _scaled(c, drive)
            u = b * u + g * i
            pre[:, t] = u
            s = (u - theta > 0).to(u.dtype)
            u = u * (1.0 - s) if p.reset == "zero" else u - theta * s
            spikes[:, t] = s
        return spikes, volts, pre

    @staticmethod
    def setup_context(ctx, inputs, output):
        ff, v, p = inputs
        ctx.p = p
        ctx.has_v = v is not None
        ctx.save_for_backward(output[2], v)
        ctx.mark_non_differentiable(output[2])
        ctx.set_materialize_grads(False)

    @staticmethod
    def vmap(info, in_dims, ff, v, p):
        return fold_member_axis(FusedCuba, info, in_dims, ff, v, p)

    @staticmethod
    @once_differentiable
    def backward(ctx, g_spk: torch.Tensor | None, g_volt: torch.Tensor | None, _g_pre=None):
        need_ff, need_v = ctx.needs_input_grad[0], ctx.needs_input_grad[1] and ctx.has_v
        if not (need_ff or need_v) or (g_spk is None and g_volt is None):
            return None, None, None
        pre, v = ctx.saved_tensors
        p = ctx.p
        a, b, c, g, theta = p.decay_syn, p.decay_mem, p.syn_gain, p.gain, p.threshold
        batch, steps, n = pre.shape
        x = pre - theta
        spikes = (x > 0).to(pre.dtype)
        h = get_surrogate(p.surrogate)(x, p.beta)
        prop = ctx.has_v and p.recurrent_grad == "prop"
        zero_reset = p.reset == "zero"
        g_ff = pre.new_zeros(batch, steps, n)
        g_v = pre.new_zeros(n, n) if need_v else None
        lam_p = pre.new_zeros(batch, n)                 # λP[n+1]
        lam_i = pre.new_zeros(batch, n)                 # λI[n+1]
        for t in range(steps - 1, -1, -1):
            lam_u = b * lam_p
            if g_volt is not None and t + 1 < steps:
                lam_u = lam_u + g_volt[:, t + 1]
            d_s = g_spk[:, t] if g_spk is not None else pre.new_zeros(batch, n)
            if prop and t + 1 < steps:
                d_s = d_s + _scaled(c, lam_i) @ v
            if not p.detach_reset:
                d_s = d_s - (lam_u * pre[:, t] if zero_reset else theta * lam_u)
            lam_p = (lam_u * (1.0 - spikes[:, t]) if zero_reset else lam_u) + h[:, t] * d_s
            lam_i = a * lam_i + g * lam_p
            g_in = _scaled(c, lam_i)
            g_ff[:, t] = g_in
            if need_v and t > 0:
                g_v += g_in.t() @ spikes[:, t - 1]
        return (g_ff if need_ff else None), g_v, None


def supports(ff: torch.Tensor, v: torch.Tensor | None, p: "CubaLIFParams") -> str | None:
    """None if the fused cuba kernel runs this call (float parameters, no feedback matrix,
    no torch.func gradient transform), else why not."""
    return lif_fused_supports(ff, v, p)


def cuba_fused(ff: torch.Tensor, v: torch.Tensor | None, p: "CubaLIFParams") -> tuple[torch.Tensor, torch.Tensor]:
    """(spikes, voltages) of a cuba layer for a call :func:`supports` accepts."""
    check_layer_inputs(ff, v, p, "fused")
    spikes, volts, _ = apply(FusedCuba, ff, v, p)
    return spikes, volts
