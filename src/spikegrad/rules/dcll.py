"""Local errors (``dcll``): deep continuous local learning — the tutorial's §V-D, eq. 19
(Kaiser, Mostafa & Neftci 2020, DECOLLE).

Every hidden layer l has its own fixed random readout G_l [classes, N_l] (never trained)
and its own loss against the label at every step after a burn-in of n₀ steps,

    L_l = 1/(B (T − n₀)) Σ_{n ≥ n₀} Σ_b CE(G_l S_l[n], y_b),

and no error crosses layers (the spikes passed upward carry no gradient).  Within a layer
the error reaches the weights only through the instantaneous path U[n] = W P[n] + …, with
P the presynaptic trace filtered by the layer's own synaptic and membrane kernels and the
reset (and, for ALIF, the threshold adaptation) ignored:

    Q[n+1] = β_syn Q[n] + x[n],   P[n+1] = β_mem P[n] + g Q[n],   Q[0] = P[0] = 0
    ∂L_l/∂W = Σ_n (∂L_l/∂S[n] ⊙ σ′(U[n] − ϑ[n]))ᵀ P[n]

(x: the layer's input spikes; for recurrent weights V the same with x = the layer's own
spikes; σ′ the surrogate derivative, U and ϑ the actual voltage and threshold).  The top
readout learns from the task loss (cross-entropy of its reduced voltages) with its
gradient carried forward in time too: U_out[n] = u₀ β_out^n + W_out e[n] with the
eligibility e[n+1] = β_out e[n] + g_out i[n], i[n+1] = β_syn,out i[n] + S_L[n], kept at the
step the reduction reads (all steps for sum and mean, the last, or the running argmax for
max: strict >, ties to the first step as ``torch.max``).

Everything runs step by step under ``torch.no_grad``: the state carried from step to step is
O(N_in + N) per sample and layer (plus, for the readout, O(classes · N_L) for max), so
memory does not grow with T (:attr:`DCLL.carried` counts it).  G_l ~ U(±a/√N_l) with
a = ``train.feedback_scale``, seeded by ``train.seed``, saved in checkpoints; n₀ =
``train.dcll_burn_in_ms`` / Δt.  Takes LIF and ALIF layers, feed-forward and recurrent,
the leaky readout with any of max, sum, mean, last (and a response window); the loss must
be cross-entropy without the activity regulariser.
"""

from __future__ import annotations


import torch
import torch.nn.functional as F

from ..dynamics import ALIFParams, LIFParams, model_of
from ..errors import SpikegradError
from ..events import step_reader
from ..surrogates import get_surrogate
from .base import FixedMatrices, Objective, StepResult, apply_gradients, register_rule


class DCLL(FixedMatrices):
    """``dcll``: local losses per hidden layer through fixed random readouts (module doc)."""

    name = "dcll"
    matrix_kind = "local readout"
    seed_tag = 0xDC

    def __init__(self, objective: Objective | None = None, burn_in: int = 0, scale: float = 1.0, seed: int = 0):
        if burn_in < 0:
            raise SpikegradError(f"train.dcll_burn_in_ms must be ≥ 0, got {burn_in} steps")
        self.objective, self.burn_in, self.scale, self.seed = objective, int(burn_in), float(scale), int(seed)
        self.matrices: dict[str, torch.Tensor] = {}
        self.carried = 0           # numbers carried from one step to the next in the last step() (per batch)
        self.local_losses: list[float] = []

    def check_model(self, model) -> None:
        from ..network import SNN

        if not isinstance(model, SNN) or model.readout is None or not model.layers:
            raise SpikegradError("rule 'dcll' trains eq. 4.1 networks with at least one hidden layer and the "
                                 "leaky readout (model.arch 'snn', model.output 'readout')")
        for layer in model.layers:
            if type(layer.params) not in (LIFParams, ALIFParams):
                raise SpikegradError(f"rule 'dcll' takes LIF and ALIF layers (eq. 4.1 ordering), not "
                                     f"{type(layer.params).__name__}")

    def wanted(self, model) -> dict:
        """G{k} [classes, N_k] for every hidden layer k."""
        n_out, like = model.readout.weight.shape[0], model.readout.weight
        return {f"G{k}": ((n_out, layer.weight.shape[0]), layer.weight.shape[0], like)
                for k, layer in enumerate(model.layers)}

    # -- the step ----------------------------------------------------------------------
    def gradients(self, model, x, y) -> tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        """(gradient per parameter name, logits, task loss) for one batch, step by step."""
        self.ensure(model)
        at = step_reader(x)
        batch, steps, _ = x.shape
        like = model.readout.weight
        layers, ro = list(model.layers), model.readout
        n0 = min(self.burn_in, steps)
        local_steps = max(steps - n0, 1)
        onehot = F.one_hot(y, ro.weight.shape[0]).to(like.dtype)
        grads = {name: torch.zeros_like(p) for name, p in model.named_parameters()}
        carried = []
        with torch.no_grad():
            runs = []
            for k, layer in enumerate(layers):
                p = layer.params
                model_k = model_of(p)
                n_in, n = layer.weight.shape[1], layer.weight.shape[0]
                state = model_k.initial_state(like.new_zeros(batch, 1, n), p)
                run = {"p": p, "model": model_k, "state": state, "q": like.new_zeros(batch, n_in),
                       "P": like.new_zeros(batch, n_in), "surrogate": get_surrogate(p.surrogate), "k": k}
                if layer.recurrent_weight is not None:
                    run["q_rec"], run["P_rec"] = like.new_zeros(batch, n), like.new_zeros(batch, n)
                runs.append(run)
            start = steps - ro.window if ro.window else 0
            n_last = layers[-1].weight.shape[0]
            i_out, e = like.new_zeros(batch, n_last), like.new_zeros(batch, n_last)
            acc = _Reduction(ro.reduction)
            local = [0.0] * len(layers)
            for n in range(steps):
                inp = at(n)
                for run, layer in zip(runs, layers):
                    p, state = run["p"], run["state"]
                    v = layer.recurrent_weight
                    s, new_state = run["model"].step(inp @ layer.weight.t(), state, v, p)
                    if n >= n0:
                        G = self.matrices[f"G{run['k']}"]
                        logits_l = s @ G.t()
                        local[run["k"]] += float(F.cross_entropy(logits_l, y, reduction="sum"))
                        d_s = (torch.softmax(logits_l, 1) - onehot) @ G / (batch * local_steps)
                        theta = 1.0 + p.beta_adapt * state.b if hasattr(state, "b") else 1.0
                        d_u = d_s * run["surrogate"](state.u - theta, p.beta)
                        grads[f"layers.{run['k']}.weight"] += d_u.t() @ run["P"]
                        if v is not None:
                            grads[f"layers.{run['k']}.recurrent_weight"] += d_u.t() @ run["P_rec"]
                    run["P"], run["q"] = p.decay_mem * run["P"] + p.gain * run["q"], p.decay_syn * run["q"] + inp
                    if v is not None:
                        run["P_rec"], run["q_rec"] = (p.decay_mem * run["P_rec"] + p.gain * run["q_rec"],
                                                      p.decay_syn * run["q_rec"] + s)
                    run["state"] = new_state
                    inp = s
                if n >= start:                                        # the readout, from its own start
                    m = n - start
                    u = ro.initial_state * ro.decay_out ** m + e @ ro.weight.t()
                    acc.add(u, e)
                    e, i_out = ro.decay_out * e + ro.gain * i_out, ro.decay_syn * i_out + inp
            logits, elig = acc.result()
            loss = F.cross_entropy(logits, y)
            dz = (torch.softmax(logits, 1) - onehot) / batch
            grads["readout.weight"] = torch.einsum("bk,bkj->kj", dz, elig)
            carried = [t for run in runs for t in (*run.values(), *run["state"]) if isinstance(t, torch.Tensor)]
            carried += [i_out, e, *acc.tensors()]
        self.carried = sum(t.numel() for t in carried)
        self.local_losses = [v / (batch * local_steps) for v in local]
        return grads, logits, loss

    def step(self, model, batch, optimizer) -> StepResult:
        x, y = batch
        grads, logits, loss = self.gradients(model, x, y)
        return apply_gradients(model, optimizer, grads, loss, logits)


class _Reduction:
    """The readout's reduction over time, kept online with the eligibility it reads."""

    def __init__(self, kind: str):
        if kind not in ("max", "sum", "mean", "last"):
            raise SpikegradError(f"rule 'dcll' carries the readout's gradient forward for the max, sum, mean and "
                                 f"last readouts, not {kind!r}")
        self.kind, self.count = kind, 0
        self.z = self.e = None

    def add(self, u: torch.Tensor, e: torch.Tensor) -> None:
        ek = e.unsqueeze(1).expand(-1, u.shape[1], -1)
        self.count += 1
        if self.z is None:
            self.z, self.e = u.clone(), ek.clone()
        elif self.kind == "max":
            better = u > self.z
            self.z = torch.where(better, u, self.z)
            self.e = torch.where(better.unsqueeze(2), ek, self.e)
        elif self.kind in ("sum", "mean"):
            self.z, self.e = self.z + u, self.e + ek
        else:
            self.z, self.e = u.clone(), ek.clone()

    def result(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self.kind == "mean":
            return self.z / self.count, self.e / self.count
        return self.z, self.e

    def tensors(self) -> list[torch.Tensor]:
        return [t for t in (self.z, self.e) if t is not None]


@register_rule("dcll")
def _dcll(cfg, objective: Objective) -> DCLL:
    if cfg.model.arch != "snn" or cfg.model.output != "readout":
        raise SpikegradError("train.rule 'dcll' trains eq. 4.1 networks with the leaky readout "
                             "(model.arch 'snn', model.output 'readout')")
    if not cfg.hidden_sizes:
        raise SpikegradError("train.rule 'dcll' gives every hidden layer a local loss; model.hidden has none")
    if cfg.train.loss != "cross_entropy":
        raise SpikegradError(f"train.rule 'dcll' uses cross-entropy for the local and the task loss; "
                             f"train.loss is {cfg.train.loss!r}")
    if cfg.regularizer_obj().active:
        raise SpikegradError("train.rule 'dcll' does not take the activity regulariser (its losses are local)")
    return DCLL(objective, int(round(cfg.train.dcll_burn_in_ms / cfg.model.dt_ms)), cfg.train.feedback_scale,
                cfg.train.seed)
