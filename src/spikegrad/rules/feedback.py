"""Credit assignment without weight transport: feedback alignment (``fa``) and direct
feedback alignment (``dfa``) — the tutorial's §V-A (Neftci, Mostafa & Zenke 2019; Lillicrap
et al. 2016; Nøkland 2016).

BPTT's backward pass multiplies the error by the transpose of every forward weight.  These
rules keep the forward pass, the surrogate derivative and BPTT in time within each layer,
and replace the weights the error crosses by fixed random matrices:

* ``fa``: the error reaching the spikes S_{l−1} entering layer l (the readout or spiking
  output layer included) is δ_{l} B_l instead of δ_l W_l, and within a recurrent layer
  δ C instead of δ V (otherwise the rule would still transport V):
      ∂/∂S_{l−1}[n] = δ_l[n] B_l,   ∂/∂S[n] (recurrence) = δ[n+1] C.
* ``dfa``: the error at the output layer's input current, e[n] = ∂L/∂h[n] (after the
  backward pass through the readout's own leaky dynamics), goes to every hidden layer's
  spikes by a fixed random H_l: ∂/∂S_l[n] = e[n] H_l; hidden layers pass no error to each
  other (the spikes between them are detached in the backward pass); recurrence as in fa.

The update of every weight is then the usual one given the error that reached its layer
(∂/∂W_l = Σ_n δ_l[n]ᵀ S_{l−1}[n]); the optimiser applies it.  B_l, C_l and H_l have the
shape of the forward weight they stand for (H_l: [classes, N_l], the readout weight's
shape for the last layer, so that with one hidden layer fa and dfa are the same rule), are
drawn once from U(−a/√fan_in, a/√fan_in) — the distribution of the forward weights at
initialisation, so that errors start with BPTT's magnitude and BPTT's learning rate
applies — with a = ``train.feedback_scale`` (default 1) and a generator seeded by
``train.seed``; they are saved in every checkpoint and restored on resume.

Kolen–Pollack (``fa`` with ``train.kolen_pollack`` = λ > 0; Akrout et al. 2019): after every
step each feedback matrix gets the update its forward weight got, and both decay,

    B ← (1 − λ)(B + ΔW),   W ← (1 − λ) W,

so B − W shrinks by (1 − λ) per step and the feedback comes to equal the weights it
stands for without transporting them.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..dynamics.base import Feedback, feedback_matmul
from ..errors import SpikegradError
from .base import FixedMatrices, Objective, StepResult, gradient_alignment, register_rule
from .bptt import BPTT


class _Feedback(FixedMatrices, BPTT):
    """Shared: the matrices (:class:`~spikegrad.rules.base.FixedMatrices`; ``wanted`` per
    rule) and the step — BPTT's step with the rule's :class:`~spikegrad.network.Credit`
    installed."""

    matrix_kind = "feedback matrix"
    seed_tag = 0xFA

    def __init__(self, objective: Objective, scale: float = 1.0, seed: int = 0, kolen_pollack: float = 0.0):
        super().__init__(objective)
        if not (math.isfinite(scale) and scale > 0):
            raise SpikegradError(f"train.feedback_scale must be > 0, got {scale!r}")
        if not (math.isfinite(kolen_pollack) and 0 <= kolen_pollack < 1):
            raise SpikegradError(f"train.kolen_pollack must lie in [0, 1), got {kolen_pollack!r}")
        self.scale, self.seed, self.kp_decay = float(scale), int(seed), float(kolen_pollack)
        self.matrices: dict[str, torch.Tensor] = {}

    def check_model(self, model) -> None:
        from ..network import SNN

        if not isinstance(model, SNN):
            raise SpikegradError(f"rule {self.name!r} sends errors through an eq. 4.1 network's layers; "
                                 f"the model is a {type(model).__name__} (model.arch 'snn')")

    # -- the step ----------------------------------------------------------------------
    def step(self, model, batch, optimizer) -> StepResult:
        self.ensure(model)
        pairs = self.standing_for(model) if self.kp_decay else {}
        before = {name: w.detach().clone() for name, (w, _) in pairs.items()}
        model.credit = self
        try:
            result = super().step(model, batch, optimizer)
        finally:
            model.credit = None
        if pairs and not result.diverged:
            self._kolen_pollack(pairs, before)
        return result

    @torch.no_grad()
    def _kolen_pollack(self, pairs, before) -> None:
        """Kolen–Pollack (Akrout et al. 2019): each feedback matrix gets the update its
        forward weight just got, B ← B + (W_new − W_old); then both decay by (1 − λ)."""
        keep = 1.0 - self.kp_decay
        for name, (w, b) in pairs.items():
            self.matrices[name] = (b + (w.detach() - before[name])) * keep
            w.mul_(keep)

    def recurrent(self, index: int, weight: torch.Tensor):
        return Feedback(weight, self.matrices[f"C{index}"])

    def alignment(self, model, batch) -> dict[str, float]:
        """cos∠(this rule's gradient, BPTT's) per parameter, and ∠(W, B) per feedback matrix
        that stands for a forward weight (B_l, C_l; dfa's H_l for the last layer)."""
        self.ensure(model)
        return gradient_alignment(model, self.objective, batch, self, self.standing_for(model))

    def standing_for(self, model) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """name → (forward weight, its feedback matrix), where a matrix has a forward weight."""
        head = model.head
        top = len(model.layers)
        out = {}
        for name, matrix in self.matrices.items():
            kind, k = name[0], int(name[1:])
            if kind == "C":
                out[name] = (model.layers[k].recurrent_weight, matrix)
            elif kind == "B":
                out[name] = ((head if k == top else model.layers[k]).weight, matrix)
            elif kind == "H" and k == top - 1:
                out[name] = (head.weight, matrix)
        return out


def _wanted_fa(model) -> dict:
    """B1 … B(L−1) for the hidden projections, B{L} for the output layer's, C{l} per recurrent layer."""
    out = {}
    layers = list(model.layers)
    head = model.head
    for k, layer in enumerate(layers):
        if k:
            out[f"B{k}"] = (tuple(layer.weight.shape), layer.weight.shape[1], layer.weight)
        if layer.recurrent_weight is not None:
            v = layer.recurrent_weight
            out[f"C{k}"] = (tuple(v.shape), v.shape[1], v)
    if layers:
        out[f"B{len(layers)}"] = (tuple(head.weight.shape), head.weight.shape[1], head.weight)
    return out


class FeedbackAlignment(_Feedback):
    """``fa``: every projection of hidden spikes sends the error back through a fixed random
    B_l, every recurrence through a fixed random C_l (the module doc)."""

    name = "fa"

    def wanted(self, model):
        return _wanted_fa(model)

    def project(self, index: int, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return feedback_matmul(x, weight, self.matrices[f"B{index}"])

    def output_input(self, h: torch.Tensor, spikes: Sequence[torch.Tensor]) -> torch.Tensor:
        return h


class _DirectTap(torch.autograd.Function):
    """Identity on the output layer's input current h [B, k, C]; backward: e (= ∂L/∂h) to h,
    and e H_l to every hidden layer's spikes S_l [B, T, N_l] (the last k steps: a response
    window reads only those)."""

    @staticmethod
    def forward(h, feedback, *spikes):
        return h.clone()

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.feedback = inputs[1]
        ctx.steps = [s.shape[-2] for s in inputs[2:]]

    @staticmethod
    def backward(ctx, e):
        grads = []
        for H, steps in zip(ctx.feedback, ctx.steps):
            g = e @ H
            if g.shape[-2] < steps:
                g = torch.cat([g.new_zeros(*g.shape[:-2], steps - g.shape[-2], g.shape[-1]), g], dim=-2)
            grads.append(g)
        return (e, None, *grads)


class DirectFeedbackAlignment(_Feedback):
    """``dfa``: the output error goes to every hidden layer by a fixed random H_l; hidden
    layers pass no error to each other (the module doc)."""

    name = "dfa"

    def wanted(self, model):
        """C{k} per recurrent layer, then H{L−1} (the readout weight's shape: with one hidden
        layer this is fa's B1, drawn in the same place), then H0 … H{L−2}; H{k} reaches the
        spikes of hidden layer k."""
        layers = list(model.layers)
        head = model.head
        out = {}
        for k, layer in enumerate(layers):
            if layer.recurrent_weight is not None:
                v = layer.recurrent_weight
                out[f"C{k}"] = (tuple(v.shape), v.shape[1], v)
        if layers:
            out[f"H{len(layers) - 1}"] = (tuple(head.weight.shape), head.weight.shape[1], head.weight)
        for k, layer in enumerate(layers[:-1]):
            n = layer.weight.shape[0]
            out[f"H{k}"] = ((head.weight.shape[0], n), n, head.weight)
        return out

    def project(self, index: int, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # x detached: no error crosses between layers; the product is fa's (the same float
        # arithmetic for W's gradient, so that with one hidden layer the two rules agree bit for bit)
        return feedback_matmul(x.detach(), weight, weight)

    def output_input(self, h: torch.Tensor, spikes: Sequence[torch.Tensor]) -> torch.Tensor:
        feedback = tuple(self.matrices[f"H{k}"] for k in range(len(spikes)))
        return _DirectTap.apply(h, feedback, *spikes)


def _check_arch(cfg, rule: str) -> None:
    if cfg.model.arch != "snn":
        raise SpikegradError(f"train.rule {rule!r} sends errors through an eq. 4.1 network's layers; "
                             f"model.arch {cfg.model.arch!r} is not one (use 'snn')")


@register_rule("fa")
def _fa(cfg, objective: Objective) -> FeedbackAlignment:
    _check_arch(cfg, "fa")
    return FeedbackAlignment(objective, cfg.train.feedback_scale, cfg.train.seed, cfg.train.kolen_pollack)


@register_rule("dfa")
def _dfa(cfg, objective: Objective) -> DirectFeedbackAlignment:
    _check_arch(cfg, "dfa")
    if cfg.train.kolen_pollack:
        raise SpikegradError("train.kolen_pollack updates feedback matrices that stand for forward weights; "
                             "dfa's H_l (but the last) stand for none: use it with train.rule 'fa'")
    return DirectFeedbackAlignment(objective, cfg.train.feedback_scale, cfg.train.seed)
