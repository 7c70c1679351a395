"""Exact forward-mode gradients (``rtrl``): BPTT's gradient computed forward in time, with
memory independent of T — the tutorial's §III-B, eq. 12 (real-time recurrent learning).

For a feed-forward eq. 4.1 layer with input x, weights W, state (U, I) and spikes
S[n] = Θ(U[n] − 1) (surrogate σ′ in the backward pass), the sensitivities of the state to
W_ij obey, with Q the input filtered by the synapse,

    ∂I_i[n]/∂W_ij = Q_j[n],   Q[n+1] = β_syn Q[n] + x[n]                  (the same for every i)
    E_ij = ∂U_i/∂W_ij,   ∂S_i[n]/∂W_ij = σ′_i[n] E_ij[n],
    zero reset:      E[n+1] = (1 − S)(β_mem E + g Q) − [differentiable reset] (β_mem U + g I) ∂S
    subtract reset:  E[n+1] = β_mem E + g Q − [differentiable reset] ∂S

(ALIF: ϑ = 1 + β_a b in place of 1, ∂S = σ′(U − ϑ)(∂U − β_a ∂b), ∂b carried as
∂b' = ρ ∂b + (1 − ρ) ∂S, the subtractive reset by ϑ S adds −ϑ ∂S − β_a S ∂b: :class:`_Step`).
A layer k above layer l carries the sensitivities of its own state to W_l, [batch, N_k,
N_l, N_in]:

    J[n+1] = β_syn J[n] + W_k ∂S_{k−1}[n]/∂W_l,   M = ∂U_k/∂W_l as E with J for Q,
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

Takes LIF and ALIF networks with any number of hidden layers, feed-forward and recurrent
(Prop and Ctl), every reset switch, the max/sum/mean/last readouts and response windows, and any
loss of the logits; refuses with one line what it does not take yet (learnable time
constants, the activity regulariser, spiking output layers) and a sensitivity state above
``max_bytes`` (4 GiB by default; the error names the size).
"""

from __future__ import annotations

import math

import torch

from ..dynamics import ALIFParams, LIFParams, model_of
from ..errors import SpikegradError
from ..events import step_reader
from ..surrogates import get_surrogate
from .base import Objective, StepResult, apply_gradients, register_rule

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
            if type(p) not in (LIFParams, ALIFParams):
                raise SpikegradError(f"rule 'rtrl' takes LIF and ALIF layers, not {type(p).__name__}")
            if p.tensor_fields:
                raise SpikegradError("rule 'rtrl' takes float neuron parameters, not learnable time constants")
        need = 0
        for name, l, kind, shape in self._parameters(model):
            for k in range(l, len(model.layers)):
                n_k = model.layers[k].weight.shape[0]
                per = 1 if self._compact(model, l, kind, k) else 2 * n_k
                if _is_alif(model.layers[k].params):
                    per += 1 if self._compact(model, l, kind, k) else n_k
                need += math.prod(shape) * per
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
        kappa = torch.tensor(readout_kernel(ro, steps), dtype=like.dtype, device=like.device)
        cum = torch.cumsum(kappa, 0)
        states = self._initial(model, like, batch)
        q = [like.new_zeros(batch, layer.weight.shape[1]) for layer in layers]
        params = self._parameters(model)
        owner = {name: (l, kind) for name, l, kind, _ in params}
        sens = {}                       # (layer k, parameter) → {"E"} compact or {"J", "M"}: ∂I_k, ∂U_k
        for name, l, kind, shape in params:
            for k in range(l, L):
                n_k = layers[k].weight.shape[0]
                alif = _is_alif(layers[k].params)
                if self._compact(model, l, kind, k):
                    sens[(k, name)] = {"E": like.new_zeros(batch, *shape)}
                    if alif:
                        sens[(k, name)]["EB"] = like.new_zeros(batch, *shape)
                else:
                    sens[(k, name)] = {"J": like.new_zeros(batch, n_k, *shape), "M": like.new_zeros(batch, n_k, *shape)}
                    if alif:
                        sens[(k, name)]["MB"] = like.new_zeros(batch, n_k, *shape)
        grads = {name: like.new_zeros(shape) for name, _, _, shape in params}
        grads["readout.weight"] = torch.zeros_like(ro.weight)
        count = steps - start
        for n in range(steps):
            ran = self._layers_step(model, states, at(n))
            # every layer's values at step n (the state before the step), and ∂S_k[n]/∂θ
            at_n = [_Step(layer.params, s, st) for (_, s, st), layer in zip(ran, layers)]
            dS = {(k, name): at_n[k].spike_sensitivity(t) for (k, name), t in sens.items()}
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
                l, kind = owner[name]
                if "E" in t:
                    t["E"], eb = at_n[k].advance(t["E"], q[k].unsqueeze(1), t.get("EB"), dS[(k, name)])
                    if eb is not None:
                        t["EB"] = eb
                    continue
                J_new = p.decay_syn * t["J"]
                if k == l:                                   # ∂(W x + V S)/∂θ: θ's own row for neuron i
                    own = ran[k][0] if kind == "W" else ran[k][1]
                    idx = torch.arange(layer.weight.shape[0], device=like.device)
                    J_new[:, idx, idx, :] += own.unsqueeze(1)
                if k > l:                                    # through the spikes of the layer below
                    below = dS[(k - 1, name)]
                    pattern = "mi,bij->bmij" if "E" in sens[(k - 1, name)] else "mp,bp...->bm..."
                    J_new = J_new + torch.einsum(pattern, layer.weight, below)
                if layer.recurrent_weight is not None and p.recurrent_grad == "prop":
                    J_new = J_new + torch.einsum("mp,bp...->bm...", layer.recurrent_weight, dS[(k, name)])
                t["M"], mb = at_n[k].advance(t["M"], t["J"], t.get("MB"), dS[(k, name)])
                if mb is not None:
                    t["MB"] = mb
                t["J"] = J_new
            for k in range(L):
                q[k] = layers[k].params.decay_syn * q[k] + ran[k][0]
        self.carried = sum(t.numel() for t in q) + sum(v.numel() for t in sens.values() for v in t.values()) + sum(
            t.numel() for st in states for t in st)
        return grads

    def step(self, model, batch, optimizer) -> StepResult:
        x, y = batch
        grads, logits, loss = self.gradients(model, x, y)
        return apply_gradients(model, optimizer, grads, loss, logits)


def _is_alif(p) -> bool:
    return hasattr(p, "beta_adapt")


class _Step:
    """One layer's values at step n and the derivatives of its step (LIF and ALIF):

        ϑ = 1 + β_a b (LIF: 1),   ∂S = σ′(U − ϑ) (∂U − β_a ∂b)
        zero reset:      ∂U' = (1 − S)(β_mem ∂U + g ∂I) − [differentiable reset] (β_mem U + g I) ∂S
        subtract reset:  ∂U' = β_mem ∂U + g ∂I − [differentiable reset] ϑ ∂S − β_a S ∂b
        adaptation:      ∂b' = ρ ∂b + (1 − ρ) ∂S   (ρ ∂b with ``detach_adaptation``)

    with per-neuron values broadcast over a sensitivity's trailing parameter axes."""

    def __init__(self, p, s, state):
        self.p, self.s, self.u, self.i = p, s, state.u, state.i
        self.alif = _is_alif(p)
        self.theta = 1.0 + p.beta_adapt * state.b if self.alif else 1.0
        self.sig = get_surrogate(p.surrogate)(state.u - self.theta, p.beta)

    @staticmethod
    def _x(v, like):
        return v.reshape(*v.shape, *([1] * (like.dim() - v.dim()))) if isinstance(v, torch.Tensor) else v

    def spike_sensitivity(self, t: dict) -> torch.Tensor:
        du = t["E"] if "E" in t else t["M"]
        if self.alif:
            du = du - self.p.beta_adapt * (t["EB"] if "E" in t else t["MB"])
        return self._x(self.sig, du) * du

    def advance(self, du, di, db, ds):
        p, x = self.p, lambda v: self._x(v, du)
        base = p.decay_mem * du + p.gain * di
        if p.reset == "zero":
            new_u = x(1.0 - self.s) * base
            if not p.detach_reset:
                new_u = new_u - x(p.decay_mem * self.u + p.gain * self.i) * ds
        else:
            new_u = base
            if not p.detach_reset:
                new_u = new_u - x(self.theta) * ds
            if self.alif:
                new_u = new_u - p.beta_adapt * x(self.s) * db
        new_b = None
        if self.alif:
            rho = p.decay_adapt
            new_b = rho * db if p.detach_adaptation else rho * db + (1.0 - rho) * ds
        return new_u, new_b


@register_rule("rtrl")
def _rtrl(cfg, objective: Objective) -> RTRL:
    from ..losses import make_loss

    if cfg.model.arch != "snn" or cfg.model.output != "readout":
        raise SpikegradError("train.rule 'rtrl' trains eq. 4.1 networks with the leaky readout "
                             "(model.arch 'snn', model.output 'readout')")
    if cfg.regularizer_obj().active:
        raise SpikegradError("train.rule 'rtrl' does not take the activity regulariser yet")
    return RTRL(objective, make_loss(cfg))
