"""Weight initialisation: the paper's uniform fan-in rule and a fluctuation-driven rule.

The paper (§4.2.3) draws every weight from U(−1/√n_in, 1/√n_in).  With the (1 − β) input
gain of eq. 4.1 and sparse input (Randman: 20 channels, one spike each) that network is
*silent*: the membrane potential stays below ~0.4, no hidden neuron fires, and only
surrogates with support far below threshold (SuperSpike) can get learning started
(docs/RESULTS.md, fig3).

``fluctuation_init_`` follows the idea of Rossbroich, Gygax & Zenke (2022,
"Fluctuation-driven initialization for spiking neural network training", stork's default
initialiser): draw centred normal weights whose standard deviation puts the free membrane
potential's fluctuations at a chosen σ_U (in units of the threshold distance; σ_U is each
neuron's std over time and trials, averaged over neurons — the neurons' means spread
around 0 as well, since every neuron has its own fixed weights).  For input
spikes with probability p per step on n channels (uncorrelated in time) Campbell's theorem
gives Var U = n · p · σ_W² · Σ_k ε[k]², with ε the membrane response to one input spike of
weight 1 — computed here from the discrete dynamics themselves, so the rule is exact for the
step equations and needs no continuous-time approximation.  Rates are measured on a batch
of real inputs, layer by layer (each hidden layer's rate after the layers below it are
initialised), which also covers analog input currents (p → mean squared input per step).
A recurrent layer gives a share ``ff_share`` of the variance to W and the rest to V.
"""

from __future__ import annotations

import math

import torch

from .errors import SpikegradError
from .dynamics import LIFParams

INITS = ("uniform", "fluctuation")


def psp_energy(params: LIFParams, tol: float = 1e-12, max_steps: int = 1_000_000) -> float:
    """Σ_k ε[k]²: squared membrane response to one unit input spike (no spike, no reset).

    Spike at step 0 → I[1] = 1 → U rises through the (optional) input gain and decays.
    """
    bm, bs, gain = params.decay_mem, params.decay_syn, params.gain
    u, i, total = 0.0, 1.0, 0.0
    for _ in range(max_steps):
        u = bm * u + gain * i
        i = bs * i
        total += u * u
        if abs(u) < tol and abs(i) < tol:
            break
    return total


def fluctuation_std(n_in: int, rate: float, energy: float, sigma_u: float) -> float:
    """σ_W with n_in · rate · σ_W² · energy = σ_U² (rate: mean squared input per step)."""
    if rate <= 0:
        raise SpikegradError(
            "fluctuation-driven init needs input activity: the initialisation batch has no "
            f"input to a layer with {n_in} inputs (all zeros)")
    return sigma_u / math.sqrt(n_in * rate * energy)


@torch.no_grad()
def fluctuation_init_(model, x: torch.Tensor, sigma_u: float = 1.0, ff_share: float = 0.9,
                      generator: torch.Generator | None = None) -> list[dict]:
    """Redraw every hidden layer's W (and V) of ``model`` (an SNN) in place.

    x: a batch of real inputs [batch, time, inputs] (measures the input rates).
    Returns per layer: measured input rate, σ_W (and σ_V for recurrent layers).
    The readout keeps its uniform fan-in weights (it does not spike).
    """
    if not (math.isfinite(sigma_u) and sigma_u > 0):
        raise SpikegradError(f"model.init_sigma_u must be > 0, got {sigma_u!r}")
    if not 0 < ff_share <= 1:
        raise SpikegradError(f"feed-forward variance share must be in (0, 1], got {ff_share!r}")
    energy = psp_energy(model.params)
    info = []
    h = x
    for layer in model.layers:
        n_out, n_in = layer.weight.shape
        rate = float(h.double().pow(2).mean())
        share = ff_share if layer.recurrent_weight is not None else 1.0
        sw = fluctuation_std(n_in, rate, energy, sigma_u * math.sqrt(share))
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=generator) * sw)
        entry = {"input_rate": rate, "sigma_w": sw}
        if layer.recurrent_weight is not None:
            # Rate of this layer with V = 0 (its feed-forward drive only) sizes V.
            layer.recurrent_weight.zero_()
            s, _ = layer(h)
            own = float(s.double().mean())
            if own > 0 and share < 1:
                sv = fluctuation_std(n_out, own, energy, sigma_u * math.sqrt(1 - share))
                layer.recurrent_weight.copy_(torch.randn(layer.recurrent_weight.shape,
                                                         generator=generator) * sv)
            else:  # silent with V = 0: keep the paper's uniform V
                bound = 1.0 / math.sqrt(n_out)
                layer.recurrent_weight.uniform_(-bound, bound, generator=generator)
                sv = bound / math.sqrt(3)
            entry.update(own_rate=own, sigma_v=sv)
        h, _ = layer(h)
        info.append(entry)
    return info
