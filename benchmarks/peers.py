"""spikegrad next to its peers: the same SNN trained in each library, measured in one run (issue 5).

Not a test.  Quick look (about a minute on a loaded 2-core machine):

    python benchmarks/peers.py --models spikegrad-fused-events,torch-loop,spyx \
        --arch ff --T 100 --density 0.02 --steps 3 --check-steps 3

Full run (hours on 2 cores: 12 configurations × 12 models, T = 500 dominating; do it on an
otherwise idle machine; ``pip install -c constraints.txt -e ".[bench]"`` for the peers):

    python benchmarks/peers.py --steps 10 --out results/peers.json

Network (issue 5): 700 inputs -> 256 LIF hidden -> 20-unit leaky readout, batch 64,
Bernoulli input spikes of density 1 %, 2 %, 8 %, T = 100 and 500 steps of 1 ms, feed-forward
(FF) or recurrent (RC, hidden -> hidden V).  One training step = forward + backward + Adam
update, softmax cross-entropy on the readout's max over time.  spikegrad's equations
(design/SCIENCE.md §1, eq. 4.1): S[n] = Θ(U[n] − 1);  U[n+1] = (β_mem U[n] + (1 − β_mem) I[n])
(1 − S[n]);  I[n+1] = β_syn I[n] + W S_in[n] + V S[n];  U_out[n+1] = β_out U_out[n] + (1 − β_out)
I_out[n];  I_out[n+1] = β_syn I_out[n] + W_out S[n];  τ_mem 10 ms, τ_syn 5 ms, τ_out 20 ms,
SuperSpike surrogate 1/(10|x| + 1)², detached reset, U_out[0] = −1e-3.

Models (``--models``; groups ``spikegrad``, ``peers``, ``all``):

* ``spikegrad-<backend>-<path>``: every backend of ``spikegrad.neurons.available_backends()``
  ("auto" aside) × input path (:data:`PATHS`): ``dense`` and ``events`` get the same dense
  tensor as the peers (``events`` finds its nonzeros inside the step); ``eventbatch`` gets
  the batch as spikegrad's loaders deliver it, an ``EventBatch`` (the nonzeros only), made
  from that tensor outside the timed region, as the peers' own ``prepare`` steps are.
* ``torch-loop``: the same equations written out as a plain eager PyTorch loop.
* ``torch-compile``: that loop with its one-step cell (hidden and readout step) under
  ``torch.compile``, called T times.  ``torch-compile-full`` (opt-in: name it in ``--models``):
  the whole loss function compiled, the T-step loop unrolled into one graph; its compilation
  took ≈ 4 minutes at T = 100 on a loaded 2-core machine (and it then ran slower than the
  compiled cell), too long for T = 500.  Compile times are reported on their own (first
  step − median step).
* ``snntorch``, ``norse``, ``spikingjelly``, ``spyx`` (JAX, jit): each library's own
  current-based LIF neuron and leaky readout; parameters mapped onto ours
  (:data:`MAPPINGS`), what cannot be mapped is listed in :data:`DIFFERENCES` and printed.

Every model starts from the same weights (spikegrad's initialisation, seed ``--seed``, the
input weights times ``--w-gain``, by default 1.25/√density so that the hidden layer fires
at 1–2.5 % from the start) and keeps them in spikegrad's units: a library whose neuron
has no (1 − β) input factor gets the weights multiplied by it inside the step (a once-per-step
[256 × 700] multiply), so that Adam sees the same parameters everywhere.  Libraries whose
spike and voltage update in the same step as their input get their input 1 or 2 steps
later (time alignment, done on the data outside the timed region), so that their spike
trains line up with eq. 4.1's S[n]; a recurrent layer gets V·S[n − 2] (eq. 4.1's loop of two
steps) added to its input, rather than the libraries' own recurrent cells, which feed
V·S[n − 1] back.

Loss agreement: ``--check-steps`` (20) training steps on the same batches from the same
weights; each model's loss curve is compared with spikegrad-reference's (max |Δloss|).  By
default only on the first T and density of each architecture (the equations do not depend
on the configuration; ``--check-all`` checks every one); the check steps are untimed.

Timing: each (model, configuration) runs in a fresh subprocess pinned to ``--threads`` CPU
cores (``os.sched_setaffinity``) with ``torch.set_num_threads(--threads)``; JAX/XLA sizes its
thread pool from the CPUs the process may use, so the pinning limits it too (with
``--threads 1`` XLA_FLAGS also gets ``--xla_cpu_multi_thread_eigen=false``).  After the check
steps and ``--warmup`` more steps, the median wall time of ``--steps`` steps (loss synchronised:
``.item()`` / ``block_until_ready``).  "first s" is the first step (compilation for
torch.compile and JAX jit); "compile s" is that minus the median step.  Compare timings only
from an otherwise idle machine: with more runnable threads than cores, every OpenMP parallel
region waits for descheduled threads.  Measured here on a loaded 2-core machine (load ≈ 6),
torch.compile's cell ran at 3–7 s per step with 2 threads and 0.23 s with 1 (eager: 0.4 s).

Memory ("peak MiB"): the process's peak resident memory during the timed steps (VmHWM, reset
through /proc/self/clear_refs after the warm-up) minus its resident memory after setup (model,
optimiser and batches built, before the first step).  It counts everything a training step
keeps resident at its peak: activations saved for backward, gradients, Adam state, allocator
caches, compiled code.  It is not comparable across machines, only across models here.
"saved B/n·step": bytes of tensors saved for backward (unique storages, parameters and input
excluded) per hidden neuron and step, measured with torch.autograd.graph.saved_tensors_hooks
on one forward pass (eager torch models); "LIF B/n·step" the same for spikegrad's hidden-layer
LIF kernel alone.

Ratios are ×(spikegrad's fastest configuration in that table); the headline is
(fastest non-spikegrad model) / (fastest spikegrad configuration): above 1, spikegrad is faster.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from typing import Callable

PEERS = ("snntorch", "norse", "spikingjelly", "spyx")
TORCH_MODELS = ("torch-loop", "torch-compile", "torch-compile-full")
OPT_IN = ("torch-compile-full",)  # not in the groups: run only when named
HIDE_ENV = "PEERS_BENCH_HIDE"  # comma list of peers to treat as not installed (tests)

# How each library's parameters are set to give eq. 4.1 (a = β_mem, b = β_syn, g = 1 − β_mem;
# a_o, g_o for the readout).
MAPPINGS = {
    "torch-loop": "eq. 4.1 written out in plain torch (a custom autograd Function for the surrogate)",
    "torch-compile": "torch-loop's one-step cell under torch.compile, called T times",
    "torch-compile-full": "torch-loop's loss function under torch.compile (loop unrolled)",
    "snntorch": ("snntorch.Synaptic(alpha=b, beta=a, threshold=1, reset_mechanism='zero', "
                 "spike_grad=surrogate.fast_sigmoid(slope=10)); weights × g; input 2 steps late; "
                 "readout Synaptic(alpha=b, beta=a_o, reset_mechanism='none'), W_out × g_o, "
                 "its input 2 steps late"),
    "norse": ("norse.torch.LIF / LIFCell with LIFParameters(tau_mem_inv=(1 − a)/dt, "
              "tau_syn_inv=(1 − b)/dt, v_th=1, v_reset=0, method='super', alpha=10): Euler "
              "steps with these rates are exactly a, b and the gain g; input 2 steps late; "
              "readout norse.torch.LI(LIParameters(tau_mem_inv=(1 − a_o)/dt, tau_syn_inv=(1 − b)/dt)), "
              "its input 2 steps late"),
    "spikingjelly": ("activation_based.neuron.CUBALIFNode(c_decay=b, v_decay=a, v_threshold=1, "
                     "v_reset=0, surrogate SoftSign(alpha=10)), detach_reset=True, multi-step "
                     "mode for FF; weights × g; input 2 steps late; readout two NonSpikingLIFNode in "
                     "series (tau 1/(1 − b): the synaptic filter, input × 1/(1 − b); tau 1/(1 − a_o): "
                     "the membrane), its input 2 steps late"),
    "spyx": ("spyx.nn.CuBaLIF(alpha=b, beta=a, threshold=1, activation=spyx.axn.superspike(k=10)) "
             "in jax.lax.scan (spyx.nn.run for FF); weights × g; input 1 step late; readout "
             "spyx.nn.LI(b) then LI(a_o), W_out × g_o, its input 2 steps late; optax.adam; "
             "the whole training step under jax.jit"),
}

# Where a library's neuron is not eq. 4.1.  Empty: the same equations (losses must agree up to
# float rounding).
DIFFERENCES: dict[str, list[str]] = {
    "torch-loop": [],
    "torch-compile": [],
    "torch-compile-full": [],
    "snntorch": [],
    "norse": [
        "reset computed after the update: the spike is taken from the freshly updated voltage "
        "P = a U + g I and the same step's U is reset, so the step's new input survives the "
        "reset (eq. 4.1 resets the whole update, one step after the crossing)",
        "surrogate: norse's 'super' ignores alpha, h = 1/(|x| + 1)² (slope 1, not 10)",
        "reset not detached in the feed-forward LIF (gradient flows through the reset); the "
        "recurrent path (LIFCell with manual V input) uses the same step function",
    ],
    "spikingjelly": [
        "reset computed after the update (as norse): the step's new input survives the reset",
        "spike at v ≥ threshold (heaviside x ≥ 0) instead of v > threshold",
        "surrogate SoftSign(alpha=10) = 5/(10|x| + 1)²: our shape, 5× our scale",
    ],
    "spyx": [
        "subtractive reset (U − 1, applied before the leak: U[n+1] = a (U[n] − S[n]) + g I[n+1]) "
        "instead of a reset to zero; the input arriving at the spike step is kept",
        "reset not detached (the surrogate gradient flows through the reset)",
    ],
}
for _name in ("snntorch", "norse", "spikingjelly"):
    MAPPINGS[_name] += "; recurrent V·S[n − 2] added to the input (manual loop)"
MAPPINGS["spyx"] += "; recurrent V·S[n − 1] added to the (1-step-late) input in the scan"


class Unavailable(Exception):
    """A peer library that cannot be imported or built here."""


# ----------------------------------------------------------------------------- setup


@dataclass
class Spec:
    """One measurement: a model on one configuration."""

    model: str
    arch: str = "ff"            # "ff" or "rc"
    T: int = 100
    density: float = 0.02
    batch: int = 64
    n_in: int = 700
    n_hidden: int = 256
    n_out: int = 20
    steps: int = 10             # timed steps
    warmup: int = 2             # untimed steps after the check steps
    check_steps: int = 20       # loss-curve steps (untimed; the first includes compilation)
    threads: int = 2
    seed: int = 0
    lr: float = 1e-3
    w_gain: float | None = None  # input weights × this; None: W_GAIN_K / √density (see below)
    n_batches: int = 2          # timing batches, cycled


# spikegrad's init U(±1/√700) leaves the hidden layer nearly silent at these input densities
# (initial rate < 0.1 % at 2 %), which would hide every difference in spike and reset
# handling from the loss check.  The input weights are scaled by W_GAIN_K / √density so that
# the input current's variance does not depend on the density: initial hidden rates are then
# ≈ 1.2 %, 1.4 %, 2.4 % at densities 1 %, 2 %, 8 % (T 100, FF and RC alike).
W_GAIN_K = 1.25


def input_gain(spec: "Spec") -> float:
    return spec.w_gain if spec.w_gain is not None else W_GAIN_K / math.sqrt(spec.density)


def spec_from_dict(d: dict) -> Spec:
    return Spec(**{k: v for k, v in d.items() if k in Spec.__dataclass_fields__})


def limit_threads(threads: int) -> Callable[[], None]:
    """Pin this process to ``threads`` CPUs (torch, XLA and every other pool) and set torch's.

    Returns a function that undoes both (for ``--inprocess`` runs inside another program).
    """
    import torch
    old_threads = torch.get_num_threads()
    old_cpus = None
    try:
        old_cpus = os.sched_getaffinity(0)
        os.sched_setaffinity(0, sorted(old_cpus)[:max(1, threads)])
    except (AttributeError, OSError):
        pass
    if threads == 1:
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_cpu_multi_thread_eigen" not in flags:
            os.environ["XLA_FLAGS"] = (flags + " --xla_cpu_multi_thread_eigen=false").strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    torch.set_num_threads(threads)

    def restore() -> None:
        torch.set_num_threads(old_threads)
        if old_cpus is not None:
            os.sched_setaffinity(0, old_cpus)

    return restore


def constants(dt: float = 1e-3) -> dict:
    from spikegrad.neurons import LIFParams, decay
    p = LIFParams()
    a, b = p.decay_mem, p.decay_syn
    a_o = decay(dt, 20e-3)
    return {"a": a, "b": b, "g": 1.0 - a, "a_o": a_o, "g_o": 1.0 - a_o, "u0": -1e-3, "dt": dt,
            "beta": p.beta}


def initial_weights(spec: Spec) -> dict:
    """spikegrad's initialisation (seed, SNN's own init), input weights × :func:`input_gain`."""
    import torch
    from spikegrad.network import SNN
    torch.manual_seed(spec.seed)
    net = SNN(spec.n_in, [spec.n_hidden], spec.n_out, recurrent=spec.arch == "rc")
    with torch.no_grad():
        net.layers[0].weight.mul_(input_gain(spec))
    w = {"W": net.layers[0].weight.detach().clone(), "Wout": net.readout.weight.detach().clone()}
    if spec.arch == "rc":
        w["V"] = net.layers[0].recurrent_weight.detach().clone()
    return w


def make_batch(spec: Spec, key: int):
    """Bernoulli input [batch, T, n_in] of the spec's density and labels, from one seed."""
    import torch
    gen = torch.Generator().manual_seed(spec.seed * 100_003 + key)
    x = (torch.rand(spec.batch, spec.T, spec.n_in, generator=gen) < spec.density).float()
    y = torch.randint(0, spec.n_out, (spec.batch,), generator=gen)
    return x, y


def delay_np(x, d: int):
    """Time-major array delayed by d steps (zeros first), same length: data alignment."""
    import numpy as np
    if d == 0:
        return x
    out = np.zeros_like(x)
    out[d:] = x[:x.shape[0] - d]
    return out


# ----------------------------------------------------------------------------- torch models


@dataclass
class TorchModel:
    params: list
    loss: Callable            # (prepared batch) -> scalar loss tensor
    prepare: Callable         # (x [B, T, N], y) -> prepared batch (outside the timed region)
    eager: bool = True        # saved-tensor hooks meaningful
    lif_only: Callable | None = None  # spikegrad: (B, T) -> LIF kernel saved bytes


def _superspike_fn():
    import torch

    class SuperSpike(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return (x > 0).to(x.dtype)

        @staticmethod
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return grad / (10.0 * x.abs() + 1.0) ** 2

    return SuperSpike.apply


def _time_delay(x, d: int):
    """Torch time-major tensor delayed by d steps (zeros first): cat, inside the graph."""
    import torch
    if d == 0:
        return x
    return torch.cat([x.new_zeros((d,) + tuple(x.shape[1:])), x[:x.shape[0] - d]])


def _readout_logits(uo_tm, c):
    """Logits from a zero-initialised readout trace [T, B, C] = U_out[n] − a_o^n u0."""
    import torch
    T = uo_tm.shape[0]
    init = c["u0"] * c["a_o"] ** torch.arange(T, dtype=uo_tm.dtype)
    return (uo_tm + init[:, None, None]).amax(0)


def build_spikegrad(spec: Spec, w: dict, backend: str, path: str) -> TorchModel:
    import torch
    import torch.nn.functional as F
    from spikegrad.network import SNN
    from spikegrad.neurons import LIFParams, lif_layer
    from spikegrad.kernels.events import EventBatch
    if path not in PATHS:
        raise ValueError(f"unknown spikegrad input path {path!r}; choose one of {PATHS}")
    net = SNN(spec.n_in, [spec.n_hidden], spec.n_out, recurrent=spec.arch == "rc",
              backend=backend, input_path="auto" if path == "eventbatch" else path)
    with torch.no_grad():
        net.layers[0].weight.copy_(w["W"])
        net.readout.weight.copy_(w["Wout"])
        if spec.arch == "rc":
            net.layers[0].recurrent_weight.copy_(w["V"])

    def lif_only(B, T):
        ff = torch.randn(B, T, spec.n_hidden, requires_grad=True)
        v = w["V"].clone().requires_grad_() if spec.arch == "rc" else None
        with SavedBytes(exclude=[ff] + ([v] if v is not None else [])) as sb:
            lif_layer(ff, v, LIFParams(), backend)
        return sb.total

    def prepare(x, y):  # "eventbatch": the events, as spikegrad's loaders deliver a batch
        return (EventBatch.from_dense(x) if path == "eventbatch" else x), y

    return TorchModel(list(net.parameters()), lambda b: F.cross_entropy(net(b[0]), b[1]),
                      prepare, lif_only=lif_only)


def _plain_step(c, spike):
    a, b, g = c["a"], c["b"], c["g"]
    a_o, g_o = c["a_o"], c["g_o"]

    def step(u, i, uo, io, ff_t, v, wout):
        s = spike(u - 1.0)
        u_n = (a * u + g * i) * (1.0 - s.detach())
        i_n = b * i + ff_t
        if v is not None:
            i_n = i_n + s @ v.t()
        uo_n = a_o * uo + g_o * io
        io_n = b * io + s @ wout.t()
        return u_n, i_n, uo_n, io_n

    return step


def build_torch_loop(spec: Spec, w: dict, mode: str) -> TorchModel:
    """Eq. 4.1 in plain torch: ``eager``, ``compile-full`` (whole loss) or ``compile`` (cell)."""
    import torch
    import torch.nn.functional as F
    c = constants()
    spike = _superspike_fn()
    params = [w[k].clone().requires_grad_() for k in ("W", "V", "Wout") if k in w]
    W, Wout = params[0], params[-1]
    V = params[1] if spec.arch == "rc" else None
    a, b, g, a_o, g_o = c["a"], c["b"], c["g"], c["a_o"], c["g_o"]

    def loss_full(x, y, W, V, Wout):
        ff = x @ W.t()
        B, T, N = ff.shape
        u = ff.new_zeros(B, N)
        i = ff.new_zeros(B, N)
        spikes = []
        for ff_t in ff.unbind(1):
            s = spike(u - 1.0)
            u = (a * u + g * i) * (1.0 - s.detach())
            i = b * i + ff_t
            if V is not None:
                i = i + s @ V.t()
            spikes.append(s)
        h = torch.stack(spikes, 1) @ Wout.t()
        uo = h.new_full((B, h.shape[2]), c["u0"])
        io = h.new_zeros(B, h.shape[2])
        outs = []
        for h_t in h.unbind(1):
            outs.append(uo)
            uo = a_o * uo + g_o * io
            io = b * io + h_t
        return F.cross_entropy(torch.stack(outs, 1).amax(1), y)

    if mode == "eager":
        return TorchModel(params, lambda bt: loss_full(bt[0], bt[1], W, V, Wout),
                          lambda x, y: (x, y))
    if mode == "compile-full":
        compiled = torch.compile(loss_full, dynamic=False)
        return TorchModel(params, lambda bt: compiled(bt[0], bt[1], W, V, Wout),
                          lambda x, y: (x, y), eager=False)
    step = torch.compile(_plain_step(c, spike), dynamic=False)

    def loss_step(bt):
        x, y = bt
        ff = x @ W.t()
        B, T, N = ff.shape
        u = ff.new_zeros(B, N)
        i = ff.new_zeros(B, N)
        uo = ff.new_full((B, Wout.shape[0]), c["u0"])
        io = ff.new_zeros(B, Wout.shape[0])
        outs = []
        for ff_t in ff.unbind(1):
            outs.append(uo)
            u, i, uo, io = step(u, i, uo, io, ff_t, V, Wout)
        return F.cross_entropy(torch.stack(outs, 1).amax(1), y)

    return TorchModel(params, loss_step, lambda x, y: (x, y), eager=False)


def _hidden(c):
    return c["a"], c["b"], c["g"]


def build_snntorch(spec: Spec, w: dict) -> TorchModel:
    try:
        import snntorch
        from snntorch import surrogate
    except Exception as e:  # noqa: BLE001 - any import failure means unavailable
        raise Unavailable(f"import snntorch: {type(e).__name__}: {e}") from None
    import torch
    import torch.nn.functional as F
    c = constants()
    a, b, g = _hidden(c)
    lif = snntorch.Synaptic(alpha=b, beta=a, threshold=1.0, reset_mechanism="zero",
                            spike_grad=surrogate.fast_sigmoid(slope=10))
    out = snntorch.Synaptic(alpha=b, beta=c["a_o"], threshold=1.0, reset_mechanism="none")
    params = [w[k].clone().requires_grad_() for k in ("W", "V", "Wout") if k in w]
    W, Wout = params[0], params[-1]
    V = params[1] if spec.arch == "rc" else None

    def prepare(x, y):  # time-major, 2 steps late
        return torch.from_numpy(delay_np(x.transpose(0, 1).contiguous().numpy(), 2)), y

    def loss(bt):
        x, y = bt
        ff = x @ (g * W).t()                      # [T, B, N]
        T, B, N = ff.shape
        syn = ff.new_zeros(B, N)
        mem = ff.new_zeros(B, N)
        spikes = []
        vg = g * V if V is not None else None
        zero = ff.new_zeros(B, N)
        for t in range(T):
            cur = ff[t]
            if vg is not None:
                cur = cur + (spikes[t - 2] if t >= 2 else zero) @ vg.t()
            s, syn, mem = lif(cur, syn, mem)
            spikes.append(s)
        h = _time_delay(torch.stack(spikes) @ (c["g_o"] * Wout).t(), 2)
        syn_o = h.new_zeros(B, h.shape[2])
        mem_o = h.new_zeros(B, h.shape[2])
        trace = []
        for t in range(T):
            _, syn_o, mem_o = out(h[t], syn_o, mem_o)
            trace.append(mem_o)
        return F.cross_entropy(_readout_logits(torch.stack(trace), c), y)

    return TorchModel(params, loss, prepare)


def build_norse(spec: Spec, w: dict) -> TorchModel:
    try:
        import norse.torch as nt
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"import norse: {type(e).__name__}: {e}") from None
    import torch
    import torch.nn.functional as F
    c = constants()
    a, b, _ = _hidden(c)
    dt = c["dt"]
    p = nt.LIFParameters(tau_syn_inv=torch.as_tensor((1 - b) / dt),
                         tau_mem_inv=torch.as_tensor((1 - a) / dt),
                         v_leak=torch.as_tensor(0.0), v_th=torch.as_tensor(1.0),
                         v_reset=torch.as_tensor(0.0), method="super", alpha=torch.as_tensor(10.0))
    lif_seq = nt.LIF(p=p, dt=dt)
    lif_cell = nt.LIFCell(p=p, dt=dt)
    li = nt.LI(p=nt.LIParameters(tau_syn_inv=torch.as_tensor((1 - b) / dt),
                                 tau_mem_inv=torch.as_tensor((1 - c["a_o"]) / dt)), dt=dt)
    params = [w[k].clone().requires_grad_() for k in ("W", "V", "Wout") if k in w]
    W, Wout = params[0], params[-1]
    V = params[1] if spec.arch == "rc" else None

    def prepare(x, y):
        return torch.from_numpy(delay_np(x.transpose(0, 1).contiguous().numpy(), 2)), y

    def loss(bt):
        x, y = bt
        ff = x @ W.t()                             # norse's Euler step has the gain built in
        if V is None:
            spikes, _ = lif_seq(ff)
        else:
            T = ff.shape[0]
            state = None
            hist = []
            zero = ff.new_zeros(ff.shape[1:])
            for t in range(T):
                cur = ff[t] + (hist[t - 2] if t >= 2 else zero) @ V.t()
                s, state = lif_cell(cur, state)
                hist.append(s)
            spikes = torch.stack(hist)
        h = _time_delay(spikes @ Wout.t(), 2)
        trace, _ = li(h)
        return F.cross_entropy(_readout_logits(trace, c), y)

    return TorchModel(params, loss, prepare)


def build_spikingjelly(spec: Spec, w: dict) -> TorchModel:
    try:
        from spikingjelly.activation_based import functional as sjf
        from spikingjelly.activation_based import neuron, surrogate
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"import spikingjelly: {type(e).__name__}: {e}") from None
    import torch
    import torch.nn.functional as F
    c = constants()
    a, b, g = _hidden(c)
    node = neuron.CUBALIFNode(c_decay=b, v_decay=a, v_threshold=1.0, v_reset=0.0,
                              surrogate_function=surrogate.SoftSign(alpha=10.0))
    node.detach_reset = True
    node.step_mode = "m" if spec.arch == "ff" else "s"
    syn_filter = neuron.NonSpikingLIFNode(tau=1.0 / (1.0 - b))
    membrane = neuron.NonSpikingLIFNode(tau=1.0 / (1.0 - c["a_o"]))
    params = [w[k].clone().requires_grad_() for k in ("W", "V", "Wout") if k in w]
    W, Wout = params[0], params[-1]
    V = params[1] if spec.arch == "rc" else None

    def prepare(x, y):
        return torch.from_numpy(delay_np(x.transpose(0, 1).contiguous().numpy(), 2)), y

    def loss(bt):
        x, y = bt
        sjf.reset_net(node)
        ff = x @ (g * W).t()
        if V is None:
            spikes = node(ff)
        else:
            vg = g * V
            hist = []
            zero = ff.new_zeros(ff.shape[1:])
            for t in range(ff.shape[0]):
                hist.append(node(ff[t] + (hist[t - 2] if t >= 2 else zero) @ vg.t()))
            spikes = torch.stack(hist)
        h = _time_delay(spikes @ (Wout / (1.0 - b)).t(), 2)
        trace = torch.stack(membrane(torch.stack(syn_filter(h))))
        return F.cross_entropy(_readout_logits(trace, c), y)

    return TorchModel(params, loss, prepare)


# ----------------------------------------------------------------------------- JAX (spyx)


@dataclass
class JaxModel:
    step: Callable            # (prepared batch) -> float loss (synchronised)
    prepare: Callable


def build_spyx(spec: Spec, w: dict) -> JaxModel:
    try:
        import jax
        import jax.numpy as jnp
        import optax
        import spyx
        import spyx.nn as snn
        from flax import nnx
    except Exception as e:  # noqa: BLE001
        raise Unavailable(f"import spyx/jax: {type(e).__name__}: {e}") from None
    c = constants()
    a, b, g = _hidden(c)
    rngs = nnx.Rngs(0)
    cell = snn.CuBaLIF((spec.n_hidden,), alpha=b, beta=a, threshold=1.0,
                       activation=spyx.axn.superspike(k=10.0), rngs=rngs)
    li_syn = snn.LI((spec.n_out,), beta=b, rngs=rngs)
    li_mem = snn.LI((spec.n_out,), beta=c["a_o"], rngs=rngs)
    params = {k: jnp.asarray(v.numpy()) for k, v in w.items()}
    rc = spec.arch == "rc"

    def loss_fn(p, x, y):
        ff = x @ (g * p["W"]).T                                     # [T, B, N]
        T, B, N = ff.shape
        if not rc:
            spikes, _ = snn.run(cell, ff)
        else:
            vg = g * p["V"]

            def body(carry, ff_t):
                state, s_prev = carry
                s, state = cell(ff_t + s_prev @ vg.T, state)
                return (state, s), s

            _, spikes = jax.lax.scan(body, (cell.initial_state(B), jnp.zeros((B, N), ff.dtype)), ff)
        h = spikes @ (c["g_o"] * p["Wout"]).T
        h = jnp.concatenate([jnp.zeros((2,) + h.shape[1:], h.dtype), h[:T - 2]])
        j, _ = snn.run(li_syn, h)
        uo, _ = snn.run(li_mem, j)
        init = c["u0"] * c["a_o"] ** jnp.arange(T, dtype=uo.dtype)
        logits = (uo + init[:, None, None]).max(0)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    opt = optax.adam(spec.lr)
    state = {"p": params, "o": opt.init(params)}

    @jax.jit
    def train_step(p, o, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(p, x, y)
        updates, o = opt.update(grads, o, p)
        return optax.apply_updates(p, updates), o, loss

    def step(bt):
        state["p"], state["o"], loss = train_step(state["p"], state["o"], *bt)
        return float(loss.block_until_ready())

    def prepare(x, y):
        return (jnp.asarray(delay_np(x.transpose(0, 1).contiguous().numpy(), 1)),
                jnp.asarray(y.numpy()))

    return JaxModel(step, prepare)


# ----------------------------------------------------------------------------- measuring


class SavedBytes:
    """Bytes of the unique storages saved for backward inside the block (excluding some tensors)."""

    def __init__(self, exclude=()):
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.seen: dict[int, int] = {}

    def __enter__(self):
        import torch

        def pack(t):
            st = t.untyped_storage()
            ptr = st.data_ptr()
            if ptr not in self.exclude and ptr != 0:
                self.seen[ptr] = max(self.seen.get(ptr, 0), st.nbytes())
            return t

        self._ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)

    @property
    def total(self) -> int:
        return sum(self.seen.values())


def _proc_kib(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"^{field_name}:\s+(\d+) kB", f.read(), re.M)
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


# spikegrad's input paths here: the dense tensor through the dense matmul ("dense") or the
# event kernel, which finds the events in it inside the step ("events"); or the batch as
# spikegrad's data loaders hand it to the network, an EventBatch made outside the timed
# region like every model's `prepare` ("eventbatch").
PATHS = ("dense", "events", "eventbatch")


def spikegrad_models() -> list[str]:
    from spikegrad.neurons import available_backends
    return [f"spikegrad-{be}-{path}" for be in available_backends() if be != "auto"
            for path in PATHS]


def build(spec: Spec, w: dict):
    hidden = {p.strip() for p in os.environ.get(HIDE_ENV, "").split(",") if p.strip()}
    if spec.model in hidden:
        raise Unavailable(f"hidden by {HIDE_ENV}")
    if spec.model.startswith("spikegrad-"):
        rest = spec.model[len("spikegrad-"):]
        backend, _, path = rest.rpartition("-")
        from spikegrad.neurons import available_backends
        if backend not in available_backends():
            raise Unavailable(f"spikegrad backend {backend!r} not in {available_backends()}")
        return build_spikegrad(spec, w, backend, path)
    builders = {
        "torch-loop": lambda: build_torch_loop(spec, w, "eager"),
        "torch-compile": lambda: build_torch_loop(spec, w, "compile"),
        "torch-compile-full": lambda: build_torch_loop(spec, w, "compile-full"),
        "snntorch": lambda: build_snntorch(spec, w),
        "norse": lambda: build_norse(spec, w),
        "spikingjelly": lambda: build_spikingjelly(spec, w),
        "spyx": lambda: build_spyx(spec, w),
    }
    if spec.model not in builders:
        raise ValueError(f"unknown model {spec.model!r}")
    return builders[spec.model]()


def run_one(spec: Spec) -> dict:
    """Build, check the loss curve, time, measure memory: one model on one configuration."""
    import torch
    res: dict = {"model": spec.model, "arch": spec.arch, "T": spec.T, "density": spec.density}
    w = initial_weights(spec)
    try:
        model = build(spec, w)
    except Unavailable as e:
        res.update(status="unavailable", reason=str(e))
        return res
    timing = [model.prepare(*make_batch(spec, 2000 + k)) for k in range(max(1, spec.n_batches))]

    if isinstance(model, TorchModel):
        opt = torch.optim.Adam(model.params, lr=spec.lr)

        def train(bt):
            opt.zero_grad(set_to_none=True)
            loss = model.loss(bt)
            loss.backward()
            opt.step()
            return loss.item()
    else:
        train = model.step

    base_kib = _proc_kib("VmRSS")
    losses, first_s = [], None
    for k in range(spec.check_steps):  # batches made one at a time: none is resident later
        bt = model.prepare(*make_batch(spec, 1000 + k))
        t0 = time.perf_counter()
        losses.append(train(bt))
        if first_s is None:
            first_s = time.perf_counter() - t0
        del bt
    for k in range(spec.warmup if spec.check_steps else max(1, spec.warmup)):
        t0 = time.perf_counter()
        train(timing[k % len(timing)])
        if first_s is None:
            first_s = time.perf_counter() - t0
    peak_ok = _reset_peak()
    times = []
    for k in range(spec.steps):
        t0 = time.perf_counter()
        train(timing[k % len(timing)])
        times.append(time.perf_counter() - t0)
    hwm_kib = _proc_kib("VmHWM")
    med = statistics.median(times) if times else None
    res.update(status="ok", losses=losses, step_ms=med * 1e3 if med is not None else None,
               step_ms_min=min(times) * 1e3 if times else None, first_step_s=first_s,
               compile_s=(first_s - med) if (med is not None and first_s is not None) else None,
               threads=spec.threads)
    if peak_ok and base_kib is not None and hwm_kib is not None and times:
        res["peak_mib"] = (hwm_kib - base_kib) / 1024
    if isinstance(model, TorchModel) and model.eager:
        x, y = model.prepare(*make_batch(spec, 3000))
        exclude = list(model.params) + [t for t in (x, y) if isinstance(t, torch.Tensor)]
        with SavedBytes(exclude=exclude) as sb:
            model.loss((x, y))
        per = spec.batch * spec.T * spec.n_hidden
        res["saved_bytes_per_neuron_step"] = sb.total / per
        if model.lif_only is not None:
            res["lif_saved_bytes_per_neuron_step"] = model.lif_only(spec.batch, spec.T) / per
    with torch.no_grad():  # hidden spike rate of the initial weights, first check batch
        if spec.model == "spikegrad-reference-dense":
            from spikegrad.network import SNN
            net = SNN(spec.n_in, [spec.n_hidden], spec.n_out, recurrent=spec.arch == "rc")
            net.layers[0].weight.copy_(w["W"])
            if spec.arch == "rc":
                net.layers[0].recurrent_weight.copy_(w["V"])
            net.readout.weight.copy_(w["Wout"])
            _, rec = net.run(make_batch(spec, 1000)[0])
            res["hidden_rate"] = float(rec.spikes[0].mean())
    return res


def child_main(spec_json: str) -> None:
    spec = spec_from_dict(json.loads(spec_json))
    limit_threads(spec.threads)
    from spikegrad.allocator import tune_allocator
    tune_allocator()  # every model alike, as `spikegrad train` runs (spikegrad.allocator)
    try:
        res = run_one(spec)
    except Exception as e:  # noqa: BLE001 - reported, the parent goes on
        res = {"model": spec.model, "status": "failed",
               "reason": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc()[-2000:]}
    print("@@RESULT " + json.dumps(res), flush=True)


def run_in_subprocess(spec: Spec, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec.__dict__)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"model": spec.model, "status": "failed", "reason": f"timeout after {timeout:.0f} s"}
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("@@RESULT "):
            return json.loads(line[len("@@RESULT "):])
    return {"model": spec.model, "status": "failed",
            "reason": f"exit {proc.returncode}: {(proc.stderr or proc.stdout)[-1500:]}"}


# ----------------------------------------------------------------------------- report


def expand_models(arg: str) -> list[str]:
    sg = spikegrad_models()
    torch_default = [m for m in TORCH_MODELS if m not in OPT_IN]
    groups = {"spikegrad": sg, "peers": torch_default + list(PEERS),
              "all": sg + torch_default + list(PEERS)}
    out: list[str] = []
    for name in (s.strip() for s in arg.split(",") if s.strip()):
        for m in groups.get(name, [name]):
            if m not in out:
                out.append(m)
    return out


def equal_equations(model: str) -> bool:
    return model.startswith("spikegrad-") or not DIFFERENCES.get(model, ["?"])


def compare_losses(results: list[dict]) -> None:
    """Add loss_dmax (max |Δloss| against spikegrad-reference-dense over the check steps)."""
    ref = next((r for r in results if r["model"] == "spikegrad-reference-dense"
                and r.get("status") == "ok"), None)
    for r in results:
        if ref is None or r.get("status") != "ok" or not r.get("losses"):
            continue
        n = min(len(r["losses"]), len(ref["losses"]))
        if n:
            r["loss_dmax"] = max(abs(a - b) for a, b in zip(r["losses"][:n], ref["losses"][:n]))
            r["loss_steps"] = n


def fmt(v, spec="8.1f", none="—"):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return f"{none:>{int(spec.split('.')[0]) if spec[0].isdigit() else 0}}"
    return format(v, spec)


def report_table(cfg: tuple, results: list[dict], timed: set[str]) -> dict:
    arch, T, density = cfg
    ok = [r for r in results if r.get("status") == "ok" and r["model"] in timed]
    sg = [r for r in ok if r["model"].startswith("spikegrad-") and r.get("step_ms")]
    best_sg = min(sg, key=lambda r: r["step_ms"]) if sg else None
    rate = next((r["hidden_rate"] for r in results if "hidden_rate" in r), None)
    print(f"\n== {arch.upper()}  T={T}  density {density:.0%}"
          + (f"  (hidden spike rate at the start: {rate:.3f} per neuron and step)" if rate is not None else ""))
    print(f"{'model':28s} {'ms/step':>9s} {'×sg':>6s} {'peak MiB':>9s} {'×sg':>6s} "
          f"{'first s':>8s} {'compile s':>9s} {'Δloss max':>10s} {'eqs':>5s} "
          f"{'saved B/n·step':>14s} {'LIF B/n·step':>12s}")
    for r in results:
        if r["model"] not in timed:
            continue
        if r.get("status") != "ok":
            print(f"{r['model']:28s} {r.get('status', '?')}: {r.get('reason', '')[:150]}")
            continue
        t_ratio = r["step_ms"] / best_sg["step_ms"] if best_sg and r.get("step_ms") else None
        m_ratio = (r["peak_mib"] / best_sg["peak_mib"]
                   if best_sg and r.get("peak_mib") and best_sg.get("peak_mib") else None)
        compile_s = r.get("compile_s") if r["model"] in ("torch-compile", "torch-compile-full", "spyx") else None
        print(f"{r['model']:28s} {fmt(r.get('step_ms'), '9.1f')} {fmt(t_ratio, '6.2f')} "
              f"{fmt(r.get('peak_mib'), '9.1f')} {fmt(m_ratio, '6.2f')} "
              f"{fmt(r.get('first_step_s'), '8.2f')} {fmt(compile_s, '9.2f')} "
              f"{fmt(r.get('loss_dmax'), '10.2e')} {'same' if equal_equations(r['model']) else 'DIFF':>5s} "
              f"{fmt(r.get('saved_bytes_per_neuron_step'), '14.1f')} "
              f"{fmt(r.get('lif_saved_bytes_per_neuron_step'), '12.1f')}")
    others = [r for r in ok if not r["model"].startswith("spikegrad-") and r.get("step_ms")]
    headline = None
    if best_sg and others:
        fastest = min(others, key=lambda r: r["step_ms"])
        headline = fastest["step_ms"] / best_sg["step_ms"]
        print(f"headline: fastest non-spikegrad ({fastest['model']}, {fastest['step_ms']:.1f} ms) / "
              f"spikegrad best ({best_sg['model']}, {best_sg['step_ms']:.1f} ms) = {headline:.2f}×"
              f"  (above 1: spikegrad faster)")
    return {"arch": arch, "T": T, "density": density,
            "spikegrad_best": best_sg["model"] if best_sg else None, "headline_ratio": headline}


def print_differences(models: list[str]) -> None:
    print("\nEquation differences against spikegrad (eq. 4.1); 'same' = losses must agree up to rounding:")
    for m in models:
        if m.startswith("spikegrad-"):
            continue
        diffs = DIFFERENCES.get(m)
        print(f"  {m}: {'same equations' if not diffs else ''}")
        for d in diffs or []:
            print(f"    - {d}")
        if m in MAPPINGS:
            print(f"    mapping: {MAPPINGS[m]}")


def write_outputs(path: str, meta: dict, results: list[dict], tables: list[dict]) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)) or ".", exist_ok=True)
    base, ext = os.path.splitext(path)
    json_path = path if ext == ".json" else base + ".json"
    with open(json_path, "w") as f:
        json.dump({"meta": meta, "tables": tables, "results": results,
                   "differences": DIFFERENCES, "mappings": MAPPINGS}, f, indent=1)
    cols = ["arch", "T", "density", "model", "status", "step_ms", "step_ms_min", "peak_mib",
            "first_step_s", "compile_s", "loss_dmax", "loss_steps", "equal_equations",
            "saved_bytes_per_neuron_step", "lif_saved_bytes_per_neuron_step", "hidden_rate", "reason"]
    with open(base + ".csv", "w", newline="") as f:
        wr = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        wr.writeheader()
        for r in results:
            wr.writerow({**r, "equal_equations": equal_equations(r["model"])})
    print(f"\nwrote {json_path} and {base}.csv")


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="all",
                    help="comma list of models or groups (spikegrad, peers, all); default all")
    ap.add_argument("--arch", default="ff,rc")
    ap.add_argument("--T", default="100,500")
    ap.add_argument("--density", default="0.01,0.02,0.08")
    ap.add_argument("--steps", type=int, default=10, help="timed steps (median)")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--check-steps", type=int, default=20,
                    help="loss-curve steps (0: none), on the first T and density of each arch")
    ap.add_argument("--check-all", action="store_true",
                    help="run the loss check on every configuration, not only the first per arch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--w-gain", type=float, default=None,
                    help=f"input weights × this (default: {W_GAIN_K} / √density)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per model and configuration")
    ap.add_argument("--inprocess", action="store_true",
                    help="run every model in this process (no memory numbers; for tests)")
    ap.add_argument("--out", default=None, help="write JSON (and CSV beside it)")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child is not None:
        child_main(args.child)
        return {}
    models = expand_models(args.models)
    known = set(spikegrad_models()) | set(TORCH_MODELS) | set(PEERS)
    unknown = [m for m in models if m not in known and not m.startswith("spikegrad-")]
    if unknown:
        raise SystemExit(f"unknown models {unknown}; known: {sorted(known)}")
    timed = set(models)
    run_models = models if "spikegrad-reference-dense" in models else ["spikegrad-reference-dense"] + models
    archs = [a.strip() for a in args.arch.split(",") if a.strip()]
    Ts = [int(t) for t in args.T.split(",") if t.strip()]
    dens = [float(d) for d in args.density.split(",") if d.strip()]
    restore = limit_threads(args.threads) if args.inprocess else (lambda: None)
    try:
        return _run_all(args, models, timed, run_models, archs, Ts, dens)
    finally:
        restore()


def _run_all(args, models, timed, run_models, archs, Ts, dens) -> dict:
    import torch
    meta = {"torch": torch.__version__, "threads": args.threads, "batch": args.batch,
            "steps": args.steps, "warmup": args.warmup, "check_steps": args.check_steps,
            "lr": args.lr, "w_gain": args.w_gain if args.w_gain is not None else f"{W_GAIN_K}/sqrt(density)",
            "seed": args.seed, "cpus": os.cpu_count(),
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
            "models": models, "inprocess": args.inprocess}
    print(f"peers benchmark: torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
          f"700->256->20, median of {args.steps} steps after {args.check_steps} check + "
          f"{args.warmup} warm-up steps; load average {meta['loadavg']}", flush=True)
    results: list[dict] = []
    tables: list[dict] = []
    unavailable: dict[str, str] = {}
    for arch in archs:
        for T in Ts:
            for d in dens:
                check = args.check_steps if (args.check_all or (T, d) == (Ts[0], dens[0])) else 0
                cfg_results = []
                for m in run_models:
                    if m not in timed and not check:
                        continue  # the reference only ran for the loss check
                    if m in unavailable:
                        cfg_results.append({"model": m, "arch": arch, "T": T, "density": d,
                                            "status": "unavailable", "reason": unavailable[m]})
                        continue
                    spec = Spec(model=m, arch=arch, T=T, density=d, batch=args.batch,
                                steps=args.steps if m in timed else 0, warmup=args.warmup,
                                check_steps=check, threads=args.threads,
                                seed=args.seed, lr=args.lr, w_gain=args.w_gain)
                    t0 = time.perf_counter()
                    if args.inprocess:
                        try:
                            r = run_one(spec)
                        except Exception as e:  # noqa: BLE001
                            r = {"model": m, "status": "failed", "reason": f"{type(e).__name__}: {e}"}
                    else:
                        r = run_in_subprocess(spec, args.timeout)
                    r.update(arch=arch, T=T, density=d)
                    r["wall_s"] = time.perf_counter() - t0
                    if r.get("status") == "unavailable":
                        unavailable[m] = r.get("reason", "")
                    print(f"  [{arch} T{T} {d:.0%}] {m}: {r.get('status')} "
                          f"{fmt(r.get('step_ms'), '.1f')} ms/step ({r['wall_s']:.0f} s)", flush=True)
                    cfg_results.append(r)
                compare_losses(cfg_results)
                tables.append(report_table((arch, T, d), cfg_results, timed))
                results.extend(cfg_results)
    if unavailable:
        print("\nunavailable:")
        for m, why in unavailable.items():
            print(f"  {m}: {why}")
    print_differences(models)
    print("\npeak MiB: peak resident memory during the timed steps minus resident memory after "
          "setup (fresh process per row); saved B/n·step: bytes saved for backward per hidden "
          "neuron and step (eager torch only)")
    if args.out:
        write_outputs(args.out, meta, results, tables)
    return {"meta": meta, "results": results, "tables": tables, "unavailable": unavailable}


if __name__ == "__main__":
    main()
