"""Exact forward-mode gradients (``rtrl``): BPTT's gradient computed forward in time, with
memory independent of T — the tutorial's §III-B, eq. 12 (real-time recurrent learning).

For a feed-forward eq. 4.1 layer with input x, weights W, state (U, I) and spikes
S[n] = Θ(U[n] − 1) (surrogate σ′ in the backward pass), the sensitivities of the state to
W_ij obey, with Q the input filtered by the synapse,

    ∂I_i[n]/∂W_ij = Q_j[n],   Q[n+1] = β_syn Q[n] + x[n]                  (the same for every i)
    E_ij[n+1] = a_i[n] (β_mem E_ij[n] + g Q_j[n]) + c_i[n] E_ij[n],       E_ij = ∂U_i/∂W_ij
    ∂S_i[n]/∂W_ij = σ′_i[n] E_ij[n]

with (a, c) by reset: zero, detached (1 − S, 0); zero, differentiable (1 − S,
−(β_mem U + g I) σ′); subtract, detached (1, 0); subtract, differentiable (1, −σ′).  A layer
k above layer l carries the sensitivities of its own state to W_l, [batch, N_k, N_l, N_in]:

    J[n+1] = β_syn J[n] + W_k ∂S_{k−1}[n]/∂W_l,   M[n+1] = a (β_mem M + g J[n]) + c M,
    ∂S_k[n]/∂W_l = σ′_k[n] M[n].

A recurrent layer (I[n+1] = β_syn I + W x + V S[n]) needs per-neuron sensitivities to its
own W and V, [batch, N, N, N_in] and [batch, N, N, N] (O(N³) per sample): with Prop, V
∂S[n]/∂θ adds to ∂I[n+1]/∂θ (Ctl: S is detached inside V·S, no such term), and θ's own
row adds x[n] (for W) or S[n] (for V) to neuron i's current.

The leaky readout is linear and time-invariant, so its filter is applied once, to the
error: a spike S_L,i[n] reaches U_out,c[m] with weight W_out,ci κ(m − n), κ the readout's
impulse response (κ(d) = g_out Σ_{k=0}^{d−2} β_out^{d−2−k} β_syn,out^k, d ≥ 2).  The
reduction over time reads the steps m with weights w_bc[m] (max: the argmax, ties to the
first step as ``torch.max``; sum: all; mean: all / k; last: the last; within the response
window), so with z the logits and A_bc[n] = Σ_m w_bc[m] κ(m − n),

    ∂L/∂θ = Σ_n Σ_{b,i} λ_bi[n] ∂S_L,bi[n]/∂θ,   λ_bi[n] = Σ_c ∂L/∂z_bc A_bc[n] W_out,ci
    ∂L/∂W_out,ci = Σ_n Σ_b ∂L/∂z_bc A_bc[n] S_L,bi[n].

The argmax and ∂L/∂z are known only at the end, so the rule runs the forward twice (both
passes step by step: the first for the logits and the argmax, the second carrying the
sensitivities); memory stays independent of T (:attr:`RTRL.carried` counts the numbers
carried from step to step).  The hand-written recursion is tested against BPTT (float64)
and against ``torch.func.jvp`` through the reference scan on tiny cases.

Takes LIF networks with any number of hidden layers, feed-forward and recurrent (Prop and
Ctl), every reset switch, the max/sum/mean/last readouts and response windows, and any
loss of the logits; refuses with one line what it does not take yet (ALIF, learnable time
constants, the activity regulariser, spiking output layers) and a sensitivity state above
``max_bytes`` (4 GiB by default; the error names the size).
"""

from __future__ import annotations

import math

import torch

from ..dynamics import LIFParams, model_of
from ..errors import SpikegradError
from ..events import step_reader
from ..surrogates import get_surrogate
from .base import Objective, StepResult, register_rule

MAX_STATE_BYTES = 4 * 2**30     # the sensitivity state a step may carry


def readout_kernel(ro, steps: int) -> list[float]:
    """κ(d), d = 0 … steps: U_out at step n + d per unit readout input at step n."""
    out, i, u = [], 0.0, 0.0
    # a unit input enters I_out at the next step; U_out sees it one step later
    for d in range(steps + 1):
        out.append(u)
        u, i = ro.decay_out * u + ro.gain * i, ro.decay_syn * i + (1.0 if d == 0 else 0.0)
    return out


class RTRL:
    """``rtrl``: exact gradients forward in time (module doc)."""

    name = "rtrl"

    def __init__(self, objective: Objective | None = None, loss=None, max_bytes: int = MAX_STATE_BYTES):
        self.objective, self.loss, self.max_bytes = objective, loss, int(max_bytes)
        self.carried = 0

    # -- checks --------------------------------------------------------------------------
    def check(self, model, batch: int) -> None:
        from ..network import SNN

        if not isinstance(model, SNN) or model.readout is None or not model.layers:
            raise SpikegradError("rule 'rtrl' trains eq. 4.1 networks with at least one hidden layer and the leaky "
                                 "readout (model.arch 'snn', model.output 'readout')")
        for layer in model.layers:
            p = layer.params
            if type(p) is not LIFParams:
                raise SpikegradError(f"rule 'rtrl' takes LIF layers so far, not {type(p).__name__}")
            if p.tensor_fields:
                raise SpikegradError("rule 'rtrl' takes float neuron parameters, not learnable time constants")
        need = 0
        for name, l, kind, shape in self._parameters(model):
            for k in range(l, len(model.layers)):
                n_k = model.layers[k].weight.shape[0]
                need += math.prod(shape) * (1 if self._compact(model, l, kind, k) else 2 * n_k)
        need *= batch * model.readout.weight.element_size()
        if need > self.max_bytes:
            sizes = [model.layers[0].weight.shape[1], *[layer.weight.shape[0] for layer in model.layers]]
            raise SpikegradError(f"rule 'rtrl' would carry {need / 2**30:.1f} GiB of sensitivities per step "
                                 f"(batch {batch}, layers {sizes}"
                                 f"{', recurrent' if any(x.recurrent_weight is not None for x in model.layers) else ''}), "
                                 f"more than {self.max_bytes / 2**30:.1f} GiB; use a smaller batch or fewer/smaller layers")

    # -- the two passes --------------------------------------------------------------------
    def _layers_step(self, model, states, inp):
        """One step of every hidden layer: per layer (input, S[n], state at n); updates ``states``."""
        out = []
        for k, layer in enumerate(model.layers):
            p = layer.params
            s, new = model_of(p).step(inp @ layer.weight.t(), states[k], layer.recurrent_weight, p)
            out.append((inp, s, states[k]))
            states[k] = new
            inp = s
        return out

    def _initial(self, model, like, batch):
        return [model_of(layer.params).initial_state(like.new_zeros(batch, 1, layer.weight.shape[0]), layer.params)
                for layer in model.layers]

    def logits(self, model, x):
        """Pass 1: the logits and, per sample and class, the step the reduction reads (max)."""
        ro, at = model.readout, step_reader(x)
        batch, steps, _ = x.shape
        like = ro.weight
        states = self._initial(model, like, batch)
        start = steps - ro.window if ro.window else 0
        i_out = like.new_zeros(batch, ro.weight.shape[0])
        u = like.new_full((batch, ro.weight.shape[0]), ro.initial_state)
        best, arg, total, z = None, None, torch.zeros_like(u), u
        for n in range(steps):
            s = self._layers_step(model, states, at(n))[-1][1]
            if n < start:
                continue
            z = u                                               # U_out at this step (readout time n − start)
            if best is None:
                best, arg = z.clone(), torch.full_like(z, n, dtype=torch.long)
            else:
                better = z > best
                best, arg = torch.where(better, z, best), torch.where(better, torch.full_like(arg, n), arg)
            total = total + z
            u = ro.decay_out * u + ro.gain * i_out
            i_out = ro.decay_syn * i_out + s @ ro.weight.t()
        k = steps - start
        logits = {"max": best, "sum": total, "mean": total / k, "last": z}[ro.reduction]
        return logits, arg

    def gradients(self, model, x, y) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """(gradient per parameter name, logits, loss) of one batch."""
        ro = model.readout
        if ro.reduction not in ("max", "sum", "mean", "last"):
            raise SpikegradError(f"rule 'rtrl' takes the max, sum, mean and last readouts, not {ro.reduction!r}")
        batch, steps, _ = x.shape
        self.check(model, batch)
        with torch.no_grad():
            logits, arg = self.logits(model, x)
        z = logits.detach().requires_grad_()
        loss_value = self.loss(z, y)
        (dz,) = torch.autograd.grad(loss_value, z)
        with torch.no_grad():
            grads = self._pass2(model, x, dz, arg)
        return grads, logits, loss_value.detach()

    @staticmethod
    def _parameters(model):
        """(name, layer, kind, shape) of every weight the hidden layers hold, bottom up."""
        out = []
        for l, layer in enumerate(model.layers):
            out.append((f"layers.{l}.weight", l, "W", tuple(layer.weight.shape)))
            if layer.recurrent_weight is not None:
                out.append((f"layers.{l}.recurrent_weight", l, "V", tuple(layer.recurrent_weight.shape)))
        return out

    @staticmethod
    def _compact(model, l: int, kind: str, k: int) -> bool:
        """A feed-forward layer's sensitivity to its own W is kept compact, [B, N, N_in]."""
        return kind == "W" and k == l and model.layers[l].recurrent_weight is None

    def _pass2(self, model, x, dz, arg):
        ro, at = model.readout, step_reader(x)
        batch, steps, _ = x.shape
        like = ro.weight
        layers = list(model.layers)
        L = len(layers)
        start = steps - ro.window if ro.window else 0
        kappa = torch.tensor(readout_kernel(ro, steps), dtype=like.dtype)
        cum = torch.cumsum(kappa, 0)
        states = self._initial(model, like, batch)
        q = [like.new_zeros(batch, layer.weight.shape[1]) for layer in layers]
        params = self._parameters(model)
        sens = {}                       # (layer k, parameter) → {"E"} compact or {"J", "M"}: ∂I_k, ∂U_k
        for name, l, kind, shape in params:
            for k in range(l, L):
                n_k = layers[k].weight.shape[0]
                if self._compact(model, l, kind, k):
                    sens[(k, name)] = {"E": like.new_zeros(batch, *shape)}
                else:
                    sens[(k, name)] = {"J": like.new_zeros(batch, n_k, *shape), "M": like.new_zeros(batch, n_k, *shape)}
        grads = {name: like.new_zeros(shape) for name, _, _, shape in params}
        grads["readout.weight"] = torch.zeros_like(ro.weight)
        count = steps - start
        for n in range(steps):
            ran = self._layers_step(model, states, at(n))
            # σ′ and the reset's (a, c) of every layer at step n, from the state before the step
            sig, a, c = [], [], []
            for (inp, s, st), layer in zip(ran, layers):
                p = layer.params
                d = get_surrogate(p.surrogate)(st.u - 1.0, p.beta)
                sig.append(d)
                if p.reset == "zero":
                    a.append(1.0 - s)
                    c.append(None if p.detach_reset else -(p.decay_mem * st.u + p.gain * st.i) * d)
                else:
                    a.append(None)
                    c.append(None if p.detach_reset else -d)
            # ∂S_k[n]/∂θ for every layer and parameter below it
            dS = {}
            for (k, name), t in sens.items():
                dS[(k, name)] = (sig[k].unsqueeze(2) * t["E"] if "E" in t
                                 else sig[k].reshape(*sig[k].shape, *([1] * (t["M"].dim() - 2))) * t["M"])
            # the error λ[n] at the last layer's spikes, and the gradients it gives at step n
            if n >= start:
                if ro.reduction == "max":
                    A = kappa[(arg - n).clamp(min=0)] * (arg >= n)
                elif ro.reduction in ("sum", "mean"):
                    A = cum[steps - 1 - n].expand_as(dz) * (1.0 / count if ro.reduction == "mean" else 1.0)
                else:
                    A = kappa[steps - 1 - n].expand_as(dz)
                err = dz * A                                                   # [B, C]
                lam = err @ ro.weight                                          # [B, N_L]
                grads["readout.weight"] += err.t() @ ran[L - 1][1]
                for name, l, kind, _ in params:
                    t = dS[(L - 1, name)]
                    grads[name] += (torch.einsum("bi,bij->ij", lam, t) if "E" in sens[(L - 1, name)]
                                    else torch.einsum("bk,bk...->...", lam, t))
            # carry every sensitivity to step n + 1
            for (k, name), t in sens.items():
                layer, p = layers[k], layers[k].params
                _, l, kind, _ = next(entry for entry in params if entry[0] == name)
                if "E" in t:
                    t["E"] = _carry(t["E"], q[k].unsqueeze(1), a[k], c[k], p, extra=1)
                    continue
                J_new = p.decay_syn * t["J"]
                if k == l:                                   # ∂(W x + V S)/∂θ: θ's own row for neuron i
                    own = ran[k][0] if kind == "W" else ran[k][1]
                    idx = torch.arange(layer.weight.shape[0])
                    J_new[:, idx, idx, :] += own.unsqueeze(1)
                if k > l:                                    # through the spikes of the layer below
                    below = dS[(k - 1, name)]
                    pattern = "mi,bij->bmij" if "E" in sens[(k - 1, name)] else "mp,bp...->bm..."
                    J_new = J_new + torch.einsum(pattern, layer.weight, below)
                if layer.recurrent_weight is not None and p.recurrent_grad == "prop":
                    J_new = J_new + torch.einsum("mp,bp...->bm...", layer.recurrent_weight, dS[(k, name)])
                t["M"] = _carry(t["M"], t["J"], a[k], c[k], p, extra=t["M"].dim() - 2)
                t["J"] = J_new
            for k in range(L):
                q[k] = layers[k].params.decay_syn * q[k] + ran[k][0]
        self.carried = sum(t.numel() for t in q) + sum(v.numel() for t in sens.values() for v in t.values()) + sum(
            t.numel() for st in states for t in st)
        return grads

    def step(self, model, batch, optimizer) -> StepResult:
        x, y = batch
        grads, logits, loss = self.gradients(model, x, y)
        if not torch.isfinite(loss):
            return StepResult(float(loss), logits, diverged=True)
        optimizer.zero_grad(set_to_none=True)
        for name, p in model.named_parameters():
            p.grad = grads.get(name)
        optimizer.step()
        return StepResult(float(loss), logits)


def _carry(E, drive, a, c, p, extra: int):
    """E[n+1] = a (β_mem E + g drive) + c E, with a and c per neuron broadcast over the
    ``extra`` trailing sensitivity axes (a None: 1; c None: 0)."""
    new = p.decay_mem * E + p.gain * drive
    if a is not None:
        new = a.reshape(*a.shape, *([1] * extra)) * new
    if c is not None:
        new = new + c.reshape(*c.shape, *([1] * extra)) * E
    return new


@register_rule("rtrl")
def _rtrl(cfg, objective: Objective) -> RTRL:
    from ..losses import make_loss

    if cfg.model.arch != "snn" or cfg.model.output != "readout":
        raise SpikegradError("train.rule 'rtrl' trains eq. 4.1 networks with the leaky readout "
                             "(model.arch 'snn', model.output 'readout')")
    if cfg.regularizer_obj().active:
        raise SpikegradError("train.rule 'rtrl' does not take the activity regulariser yet")
    return RTRL(objective, make_loss(cfg))
