"""NIR (the Neuromorphic Intermediate Representation) export and import.

A spikegrad network becomes the graph

    Input → Linear → CubaLIF [⇄ Linear] → … → Linear → CubaLI → Output      (leaky readout)
    Input → Linear → CubaLIF [⇄ Linear] → … → Linear → CubaLIF → Output     (spiking output)

with recurrence as a cycle (the layer's CubaLIF → its recurrent Linear → back).  NIR nodes
are continuous in time and carry no step; a file written here is exact for an Euler
simulation at the step ``dt`` stated in the graph's metadata, in the same-step ordering of
the ``cuba`` neuron model (:mod:`spikegrad.dynamics.cuba`):

    I[n] = (1 − Δt/τ_syn) I[n−1] + (Δt/τ_syn) w_in x[n]
    U[n] = (1 − Δt/τ_mem) U[n−1] + (Δt/τ_mem) r I[n],   S[n] = Θ(U[n] − v_threshold)

so the τ's written are the Euler time constants of the trained decays, τ = Δt/(1 − decay)
(exact decays exp(−Δt/τ) therefore write a slightly longer τ), w_in = c/(1 − α) and
r = g/(1 − β) carry the layer's input factors c (``syn_gain``) and g (``mem_gain``).

Targets (what a peer's importer needs for the same discrete-time dynamics):

* ``generic`` (and ``norse``, which is the same file): Δt = the model's; Norse runs it with
  ``norse.torch.from_nir(graph, dt=Δt)``.
* ``snntorch``: snnTorch's importer fixes Δt = 1e-4 s, Euler decays, requires r = τ_mem/Δt
  and reads w_in only as a threshold scale, and takes one threshold per layer: the time
  constants are rescaled to Δt = 1e-4 s (same decays), r = τ_mem/Δt and w_in = τ_syn/Δt
  (factors of 1), and c·g/θ is folded into each neuron's incoming weights (threshold 1).

Neither peer imports CubaLI/LI, so the peers' targets end at the last spiking layer unless
asked otherwise; the readout's reduction over time (max, sum, …) is no NIR primitive and
is stated in the metadata.  Eq. 4.1 networks (``lif``) export with the same parameters;
their step ordering differs (:func:`ordering_mismatch` measures what that changes).
ALIF has no NIR node and is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .._optional import need
from ..dynamics import ALIFParams, CubaLIFParams, LIFParams
from ..errors import SpikegradError
from ..network import SNN

TARGETS = ("generic", "snntorch", "norse")
SNNTORCH_DT = 1e-4           # the step snnTorch's NIR import assumes
PREFIX = "spikegrad."        # graph metadata keys written here
# NIR files hold float32: values this close count as equal when a graph is turned into a config
FLOAT32_TOL = 1e-6
SUPPORTED = "Input, Output, Linear, Affine (zero bias), CubaLIF and CubaLI"


def _nir():
    return need("nir", "NIR export and import")


# -- export ---------------------------------------------------------------------------------

def _f64(value, n: int) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        arr = value.detach().cpu().to(torch.float64).numpy().reshape(-1)
        return np.full(n, arr[0]) if arr.size == 1 else arr
    return np.full(n, float(value), dtype=np.float64)


@dataclass
class _Node:
    """One layer's neuron parameters in NIR's terms (float64, per neuron)."""

    tau_syn: np.ndarray
    tau_mem: np.ndarray
    w_in: np.ndarray
    r: np.ndarray
    threshold: np.ndarray
    fold: np.ndarray          # factor folded into the incoming weights (snntorch target)


def _neuron_terms(dt: float, decays: str, tau_syn, tau_mem, syn_gain, mem_gain, threshold, n: int,
                  target: str) -> tuple[_Node, float]:
    """(NIR parameters, the file's Δt) for decays α, β from τ's under ``decays``."""
    ts, tm = _f64(tau_syn, n), _f64(tau_mem, n)
    if decays == "euler":
        one_minus_a, one_minus_b = dt / ts, dt / tm
        eff_syn, eff_mem = ts, tm
    else:
        one_minus_a, one_minus_b = -np.expm1(-dt / ts), -np.expm1(-dt / tm)
        eff_syn, eff_mem = dt / one_minus_a, dt / one_minus_b
    c, g, theta = _f64(syn_gain, n), _f64(mem_gain, n), _f64(threshold, n)
    if target == "snntorch":
        scale = SNNTORCH_DT / dt
        eff_syn, eff_mem = eff_syn * scale, eff_mem * scale
        return _Node(eff_syn, eff_mem, eff_syn / SNNTORCH_DT, eff_mem / SNNTORCH_DT, np.ones(n),
                     c * g / theta), SNNTORCH_DT
    return _Node(eff_syn, eff_mem, c / one_minus_a, g / one_minus_b, theta, np.ones(n)), dt


def _layer_terms(p, n: int, target: str) -> tuple[_Node, float]:
    if type(p) is ALIFParams:
        raise SpikegradError("model.neuron 'alif': the adaptive threshold (tau_adapt, beta_adapt) has no NIR node; "
                             "export LIF or cuba networks")
    if type(p) is CubaLIFParams:
        return _neuron_terms(p.dt, p.decays, p.tau_syn, p.tau_mem, p.syn_gain, p.gain, p.threshold, n, target)
    if type(p) is LIFParams:
        return _neuron_terms(p.dt, "exact", p.tau_syn, p.tau_mem, 1.0, p.gain, 1.0, n, target)
    raise SpikegradError(f"no NIR export for neuron parameters of type {type(p).__name__}")


def _weight(w: torch.Tensor, fold: np.ndarray) -> np.ndarray:
    arr = w.detach().cpu().numpy()
    if np.all(fold == 1.0):
        return arr.astype(np.float32, copy=True)
    return (arr.astype(np.float64) * fold[:, None]).astype(np.float32)


def to_nir(model: SNN, target: str = "generic", readout: bool | None = None) -> Any:
    """The network as a ``nir.NIRGraph`` for ``target`` (module doc).  ``readout``: write the
    leaky readout as Linear → CubaLI (default: for ``generic`` only; the peers import no
    CubaLI).  Networks ending in a spiking output layer write it as a CubaLIF."""
    nir = _nir()
    if target not in TARGETS:
        raise SpikegradError(f"unknown NIR target {target!r}; choose one of: {', '.join(TARGETS)}")
    if not isinstance(model, SNN):
        raise SpikegradError(f"NIR export takes spikegrad SNN networks, not {type(model).__name__}")
    if readout is None:
        readout = target == "generic"
    nodes: dict[str, Any] = {"input": nir.Input(input_type={"input": np.array([model.n_inputs])})}
    edges: list[tuple[str, str]] = []
    prev = "input"
    spiking = list(model.layers) + ([model.output_layer] if model.output_layer is not None else [])
    dts, resets = set(), set()
    for k, layer in enumerate(spiking):
        n = layer.weight.shape[0]
        terms, dt = _layer_terms(layer.params, n, target)
        dts.add(dt)
        resets.add(layer.params.reset)
        name = f"lif{k}" if layer is not model.output_layer else "lif_out"
        fc = f"fc{k}" if layer is not model.output_layer else "fc_out"
        nodes[fc] = nir.Linear(weight=_weight(layer.weight, terms.fold))
        cuba = nir.CubaLIF(
            tau_syn=terms.tau_syn.astype(np.float32), tau_mem=terms.tau_mem.astype(np.float32),
            r=terms.r.astype(np.float32), v_leak=np.zeros(n, np.float32),
            v_threshold=terms.threshold.astype(np.float32), v_reset=np.zeros(n, np.float32),
            w_in=terms.w_in.astype(np.float32))
        edges += [(prev, fc), (fc, name)]
        if layer.recurrent_weight is None:
            nodes[name] = cuba
        elif target == "snntorch":
            # snnTorch reads a recurrent layer as a subgraph (as its export writes RSynaptic);
            # its importer turns a flat cycle into one that sends the input through W_rec
            nodes[name] = nir.NIRGraph(
                nodes={"input": nir.Input(input_type={"input": np.array([n])}), "lif": cuba,
                       "w_rec": nir.Linear(weight=_weight(layer.recurrent_weight, terms.fold)),
                       "output": nir.Output(output_type={"output": np.array([n])})},
                edges=[("input", "lif"), ("lif", "w_rec"), ("w_rec", "lif"), ("lif", "output")])
        else:
            nodes[name] = cuba
            nodes[f"rec{k}"] = nir.Linear(weight=_weight(layer.recurrent_weight, terms.fold))
            edges += [(name, f"rec{k}"), (f"rec{k}", name)]
        prev = name
    p = model.params
    meta: dict[str, Any] = {
        PREFIX + "target": target,
        PREFIX + "neuron_model": {LIFParams: "lif", CubaLIFParams: "cuba"}.get(type(p), type(p).__name__),
        PREFIX + "ordering": "same_step" if type(p) is CubaLIFParams else "eq4.1",
        PREFIX + "reset": "/".join(sorted(resets)) or p.reset,
        PREFIX + "trained_dt": float(p.dt),
        PREFIX + "decays": "euler",
    }
    if model.readout is not None and readout:
        ro = model.readout
        n_out = ro.weight.shape[0]
        decays = p.decays if type(p) is CubaLIFParams else "exact"
        # w_in = c/(1 − α) and r = g/(1 − β) are per step: a time rescaling keeps them
        terms, dt = _neuron_terms(p.dt, decays, ro.tau_syn, ro.tau_mem, ro.syn_gain, ro.gain, 1.0, n_out, "generic")
        if target == "snntorch":
            scale = SNNTORCH_DT / p.dt
            terms.tau_syn, terms.tau_mem, dt = terms.tau_syn * scale, terms.tau_mem * scale, SNNTORCH_DT
        dts.add(dt)
        nodes["fc_out"] = nir.Linear(weight=_weight(ro.weight, np.ones(n_out)))
        nodes["readout"] = nir.CubaLI(tau_syn=terms.tau_syn.astype(np.float32),
                                      tau_mem=terms.tau_mem.astype(np.float32), r=terms.r.astype(np.float32),
                                      v_leak=np.zeros(n_out, np.float32), w_in=terms.w_in.astype(np.float32))
        edges += [(prev, "fc_out"), ("fc_out", "readout")]
        prev = "readout"
        meta.update({PREFIX + "readout_reduction": ro.reduction, PREFIX + "readout_init": ro.initial_state,
                     PREFIX + "readout_window": ro.window})
    if prev == "input":
        raise SpikegradError("a network without hidden layers and without its readout has nothing to export")
    n_last = (model.readout.weight if prev == "readout" else spiking[-1].weight).shape[0]
    nodes["output"] = nir.Output(output_type={"output": np.array([n_last])})
    edges.append((prev, "output"))
    if len(dts) != 1:
        raise SpikegradError(f"the layers have different steps {sorted(dts)}; NIR export needs one dt")
    meta[PREFIX + "dt"] = float(dts.pop())
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(graph, path: str | Path) -> Path:
    """Write ``graph`` to ``path`` (HDF5, via ``nir.write``), whole or not at all."""
    nir = _nir()
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        nir.write(str(tmp), graph)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# -- import ---------------------------------------------------------------------------------

def _meta(graph, key: str, default=None):
    value = (graph.metadata or {}).get(PREFIX + key, default)
    if isinstance(value, bytes):
        value = value.decode()
    if isinstance(value, np.generic):
        value = value.item()
    return value


def _flatten(graph, nir) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Nodes and edges with nested graphs (snnTorch writes a recurrent layer as one: Input,
    CubaLIF, Linear, Output) inlined; their Input/Output become pass-through names."""
    nodes, edges, alias = {}, [], {}
    for key, node in graph.nodes.items():
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = _flatten(node, nir)
            ins = [k for k, v in inner_nodes.items() if isinstance(v, nir.Input)]
            outs = [k for k, v in inner_nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise SpikegradError(f"NIR subgraph {key!r} needs one Input and one Output node")
            for k, v in inner_nodes.items():
                if k not in ins and k not in outs:
                    nodes[f"{key}/{k}"] = v
            after_in = [b for a, b in inner_edges if a == ins[0]]
            before_out = [a for a, b in inner_edges if b == outs[0]]
            if len(after_in) != 1 or len(before_out) != 1:
                raise SpikegradError(f"NIR subgraph {key!r}: its Input and Output must each connect to one node")
            alias[key] = (f"{key}/{after_in[0]}", f"{key}/{before_out[0]}")
            edges += [(f"{key}/{a}", f"{key}/{b}") for a, b in inner_edges if ins[0] not in (a, b)
                      and outs[0] not in (a, b)]
        else:
            nodes[key] = node
    for a, b in graph.edges:
        edges.append((alias[a][1] if a in alias else a, alias[b][0] if b in alias else b))
    return nodes, sorted(set(edges), key=edges.index)


def _uniform(values: np.ndarray):
    """A float when every neuron has the same value, else a per-neuron float32 tensor."""
    values = np.asarray(values, dtype=np.float64).reshape(-1)
    if values.size and np.all(values == values[0]):
        return float(values[0])
    return torch.tensor(values, dtype=torch.float32)


def _cuba_params(node, key: str, dt: float, reset: str, scale: float = 1.0):
    """CubaLIFParams of a CubaLIF node integrated by Euler at dt, its time stretched by
    ``scale`` (τ's and the step alike: the same decays per step)."""
    n = np.asarray(node.v_threshold).size
    full = lambda v: np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)) if np.asarray(v).size in (1, n) else None
    fields = {name: full(getattr(node, name)) for name in ("tau_syn", "tau_mem", "r", "w_in", "v_leak", "v_threshold")}
    for name, value in fields.items():
        if value is None:
            raise SpikegradError(f"NIR node {key!r}: {name} has {np.asarray(getattr(node, name)).size} values for "
                                 f"{n} neurons")
    if not np.allclose(fields["v_leak"], 0.0):
        raise SpikegradError(f"NIR node {key!r} has a nonzero v_leak; spikegrad's neurons rest at 0")
    v_reset = getattr(node, "v_reset", None)
    if v_reset is not None and not np.allclose(np.asarray(v_reset, dtype=np.float64), 0.0):
        raise SpikegradError(f"NIR node {key!r} has a nonzero v_reset; spikegrad resets to 0 (or by subtraction)")
    ts, tm = fields["tau_syn"], fields["tau_mem"]
    if np.any(ts < dt) or np.any(tm < dt):
        raise SpikegradError(f"NIR node {key!r} has time constants shorter than the step dt = {dt:g} s; "
                             f"Euler decays 1 − dt/τ would be negative (pass the dt the graph was written for)")
    return CubaLIFParams(dt=dt * scale, decays="euler", reset=reset,
                         tau_syn=_uniform(ts * scale), tau_mem=_uniform(tm * scale),
                         threshold=_uniform(fields["v_threshold"]),
                         syn_gain=_uniform(fields["w_in"] * dt / ts),
                         mem_gain=_uniform(fields["r"] * dt / tm))


def _weight_of(node, key: str, nir) -> torch.Tensor:
    if isinstance(node, nir.Affine):
        if node.bias is not None and np.any(np.asarray(node.bias) != 0):
            raise SpikegradError(f"NIR node {key!r} is an Affine with a nonzero bias; spikegrad's layers have none")
    w = np.asarray(node.weight)
    if w.ndim != 2:
        raise SpikegradError(f"NIR node {key!r}: weight must be a matrix, got shape {list(w.shape)}")
    return torch.tensor(w, dtype=torch.float32)


def from_nir(graph, dt: float | None = None, reduction: str | None = None, step: float | None = None) -> SNN:
    """A spikegrad network (``cuba`` neurons, Euler decays) that runs ``graph`` — a
    ``nir.NIRGraph`` or the path of a NIR file — written for step ``dt`` (s; default the
    graph's ``spikegrad.dt`` metadata).  ``step``: run at this step instead, every τ
    stretched by step/dt so that the decays per step are the graph's (snnTorch writes its
    per-step networks for 1e-4 s; a data set binned at 1 ms takes step=1e-3).  The graph is a
    chain Input → Linear → CubaLIF (⇄ Linear) → … ending in a CubaLIF (a spiking output
    layer) or Linear → CubaLI (the leaky readout, reduced over time by ``reduction``:
    default the metadata's, else ``max``; a spiking output's spike trains, ``sum``).  Any
    other node or shape gives one error naming it."""
    nir = _nir()
    if isinstance(graph, (str, Path)):
        path = Path(graph)
        if not path.is_file():
            raise SpikegradError(f"cannot import {path}: no such file")
        try:
            graph = nir.read(str(path))
        except Exception as err:                      # h5py and nir raise several types
            raise SpikegradError(f"cannot read NIR file {path}: {str(err).splitlines()[0] if str(err) else type(err).__name__}") from None
    if not isinstance(graph, nir.NIRGraph):
        raise SpikegradError(f"from_nir takes a nir.NIRGraph or a file, not {type(graph).__name__}")
    if dt is None:
        dt = _meta(graph, "dt")
    if dt is None:
        raise SpikegradError("the NIR graph states no step dt (NIR nodes carry none): pass dt — snnTorch's "
                             "graphs are written for 1e-4 s, Norse's for the dt given to its to_nir")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise SpikegradError(f"dt must be a positive number of seconds, got {dt!r}")
    dt = float(dt)
    if step is not None and not (isinstance(step, (int, float)) and math.isfinite(step) and step > 0):
        raise SpikegradError(f"step must be a positive number of seconds, got {step!r}")
    scale = 1.0 if step is None else float(step) / dt
    reset = _meta(graph, "reset", "zero")
    if reset not in ("zero", "subtract"):
        raise SpikegradError(f"NIR graph metadata: unknown reset {reset!r}")
    nodes, edges = _flatten(graph, nir)
    known = (nir.Input, nir.Output, nir.Linear, nir.Affine, nir.CubaLIF, nir.CubaLI)
    for key, node in nodes.items():
        if not isinstance(node, known):
            raise SpikegradError(f"NIR node {key!r} is a {type(node).__name__}; spikegrad imports {SUPPORTED}")
    succ: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        if a not in nodes or b not in nodes:
            raise SpikegradError(f"NIR edge ({a!r}, {b!r}) names a node the graph does not have")
        succ[a].append(b)
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    if len(inputs) != 1:
        raise SpikegradError(f"a NIR graph for spikegrad has one Input node, this one has {len(inputs)}")

    def only(key: str, kinds, what: str) -> str:
        nxt = [b for b in succ[key] if isinstance(nodes[b], kinds)]
        if len(nxt) != 1:
            raise SpikegradError(f"NIR node {key!r} must lead to one {what}, it leads to {succ[key] or 'nothing'}")
        return nxt[0]

    layers, key = [], inputs[0]
    while True:
        fc = only(key, (nir.Linear, nir.Affine, nir.Output), "Linear/Affine (or the Output)")
        if isinstance(nodes[fc], nir.Output):
            break
        neuron = only(fc, (nir.CubaLIF, nir.CubaLI), "CubaLIF or CubaLI")
        rec = None
        if isinstance(nodes[neuron], nir.CubaLIF):
            loops = [b for b in succ[neuron] if isinstance(nodes[b], (nir.Linear, nir.Affine)) and neuron in succ[b]]
            if len(loops) > 1:
                raise SpikegradError(f"NIR node {neuron!r} has {len(loops)} recurrent connections; spikegrad takes one")
            rec = loops[0] if loops else None
            if rec is not None and len(succ[rec]) != 1:
                raise SpikegradError(f"NIR recurrent node {rec!r} must lead back to {neuron!r} only")
            succ[neuron] = [b for b in succ[neuron] if b != rec]
        layers.append((fc, neuron, rec))
        key = neuron
        if isinstance(nodes[neuron], nir.CubaLI):
            only(neuron, (nir.Output,), "Output")
            break
    if not layers:
        raise SpikegradError("the NIR graph has no CubaLIF or CubaLI node between its Input and Output")
    spiking = [entry for entry in layers if isinstance(nodes[entry[1]], nir.CubaLIF)]
    head = layers[-1] if isinstance(nodes[layers[-1][1]], nir.CubaLI) else None
    if head is None and len(spiking) < 1:
        raise SpikegradError("the NIR graph has no spiking layer")
    hidden_entries = spiking if head is not None else spiking[:-1]
    if head is None and spiking[-1][2] is not None:
        raise SpikegradError(f"NIR node {spiking[-1][1]!r}: spikegrad's spiking output layer is feed-forward "
                             f"(no recurrent connection)")
    weights = [_weight_of(nodes[fc], fc, nir) for fc, _, _ in layers]
    n_in = weights[0].shape[1]
    for (fc, neuron, rec), w, prev in zip(layers, weights, [n_in] + [w.shape[0] for w in weights]):
        if w.shape[1] != prev:
            raise SpikegradError(f"NIR node {fc!r}: weight takes {w.shape[1]} inputs, the layer before has {prev}")
        size = np.asarray(nodes[neuron].tau_mem).size
        if size not in (1, w.shape[0]):
            raise SpikegradError(f"NIR node {neuron!r} has {size} neurons, its input {fc!r} gives {w.shape[0]}")
    params = [_cuba_params(nodes[neuron], neuron, dt, reset, scale) for _, neuron, _ in spiking]
    ro = _readout_values(nodes[head[1]], head[1], dt) if head is not None else None
    net = SNN(n_in, [w.shape[0] for w in weights[:len(hidden_entries)]], weights[-1].shape[0],
              params=params[0], recurrent=any(rec is not None for _, _, rec in hidden_entries),
              output="readout" if head is not None else "spikes",
              readout=reduction or _meta(graph, "readout_reduction", "max" if head is not None else "sum"),
              readout_init=float(_meta(graph, "readout_init", 0.0)),
              readout_steps=int(_meta(graph, "readout_window", 0)),
              **({"tau_out": ro["tau_mem"] * scale, "readout_tau_syn": ro["tau_syn"] * scale} if ro else {}))
    targets = list(net.layers) + ([net.output_layer] if net.output_layer is not None else [])
    with torch.no_grad():
        for layer, (fc, neuron, rec), p, w in zip(targets, spiking, params, weights):
            layer.params = p
            layer.weight.copy_(w)
            if rec is not None:
                v = _weight_of(nodes[rec], rec, nir)
                if list(v.shape) != [w.shape[0]] * 2:
                    raise SpikegradError(f"NIR recurrent node {rec!r} must be {w.shape[0]}×{w.shape[0]}, "
                                         f"got {list(v.shape)}")
                layer.recurrent_weight.copy_(v)
            elif layer.recurrent_weight is not None:
                layer.recurrent_weight = None
        if ro is not None:
            net.readout.weight.copy_(weights[-1])
            net.readout.gain = ro["r"] * dt / ro["tau_mem"]
            net.readout.syn_gain = ro["w_in"] * dt / ro["tau_syn"]
    return net


def _readout_values(node, key: str, dt: float) -> dict:
    """A CubaLI readout's τ_mem, τ_syn, r, w_in (one each for all its units), checked."""
    values = {}
    for name in ("tau_mem", "tau_syn", "r", "w_in", "v_leak"):
        arr = np.asarray(getattr(node, name), dtype=np.float64).reshape(-1)
        if arr.size and not np.all(arr == arr[0]):
            raise SpikegradError(f"NIR node {key!r}: spikegrad's readout takes one {name} for all its units")
        values[name] = float(arr[0])
    if values["v_leak"] != 0.0:
        raise SpikegradError(f"NIR node {key!r} has a nonzero v_leak; spikegrad's readout rests at 0")
    if values["tau_mem"] < dt or values["tau_syn"] < dt:
        raise SpikegradError(f"NIR node {key!r} has time constants shorter than the step dt = {dt:g} s")
    return values


# -- run folders ------------------------------------------------------------------------------

def _spiking_layers(model: SNN) -> list:
    return list(model.layers) + ([model.output_layer] if model.output_layer is not None else [])


@torch.no_grad()
def compare_on_data(model: SNN, graph, batches) -> dict:
    """Run ``model`` and the graph (imported, i.e. the dynamics a peer runs) on the same
    input batches: differing spikes per spiking layer (also as a fraction of both runs'
    spikes: 0 identical, 1 no spike in common), and each one's predictions.
    ``batches``: (x, y) pairs.  Returns counts and, where labels are class indices,
    accuracies."""
    other = from_nir(graph, dt=_meta(graph, "dt")).to(next(model.parameters()).device)
    differ, total, correct, agree, n = None, None, [0, 0], 0, 0
    for x, y in batches:
        out_a, rec_a = model.run(x)
        out_b, rec_b = other.run(x)
        sa = rec_a.spikes + ([out_a] if model.output_layer is not None else [])
        sb = rec_b.spikes + ([out_b] if other.output_layer is not None else [])
        if len(sa) != len(sb):
            raise SpikegradError("the graph has another number of spiking layers than the model")
        counts = [int((a != b).sum()) for a, b in zip(sa, sb)]
        sizes = [int(a.sum() + b.sum()) for a, b in zip(sa, sb)]
        differ = counts if differ is None else [d + c for d, c in zip(differ, counts)]
        total = sizes if total is None else [t + s for t, s in zip(total, sizes)]
        if model.output_layer is None and other.output_layer is None:
            pa, pb = out_a.argmax(-1), out_b.argmax(-1)
        else:
            pa, pb = out_a.sum(1).argmax(-1), out_b.sum(1).argmax(-1)
        agree += int((pa == pb).sum())
        if y.dim() == 1:
            correct[0] += int((pa == y).sum())
            correct[1] += int((pb == y).sum())
        n += len(pa)
    # differing / (spikes of both): 0 when the trains are identical, 1 when no spike coincides
    report = {"samples": n, "differing_spikes": differ or [], "spikes_both": total or [],
              "differing_fraction": [d / t if t else 0.0 for d, t in zip(differ or [], total or [])],
              "same_prediction": agree / n if n else float("nan")}
    if n:
        report["accuracy_model"], report["accuracy_graph"] = correct[0] / n, correct[1] / n
    return report


def export_run(run_dir: str | Path, path: str | Path, target: str = "generic", readout: bool | None = None,
               check_samples: int = 1000, progress: bool = False) -> dict:
    """Write the best weights of a run folder as a NIR file, and measure on (up to
    ``check_samples`` of) its test split what the file's dynamics — the peers' — change:
    differing spikes per layer and accuracy, model vs file.  For ``cuba`` runs that is
    rounding; for eq. 4.1 runs (``lif``) the step ordering (module doc).  ``progress``: a
    progress bar over the compared batches."""
    from ..training import iterate_batches, load_run

    cfg, model, splits = load_run(run_dir)
    graph = to_nir(model, target, readout)
    test = splits.test
    idx = np.arange(min(len(test), check_samples))
    subset = test.subset(idx)
    batches = iterate_batches(subset, cfg, 250)
    if progress:
        from rich.progress import track

        batches = track(batches, total=math.ceil(len(subset) / 250), transient=True,
                        description="running the file's dynamics on the test data")
    # the comparison needs the readout for predictions; the written file may leave it out
    compared = graph if model.readout is None or "readout" in graph.nodes else to_nir(model, target, True)
    report = compare_on_data(model, compared, batches)
    report.update({"file": str(path), "target": target, "neuron_model": cfg.model.neuron,
                   "dt": float(_meta(graph, "dt"))})
    write_nir(graph, path)
    return report


def _same(values: list[float], what: str) -> float:
    if any(not math.isclose(v, values[0], rel_tol=FLOAT32_TOL, abs_tol=0.0) for v in values):
        raise SpikegradError(f"the graph's layers have different {what} ({sorted(set(values))}); a run folder's "
                             f"config holds one for all layers — from_nir() in Python runs it as it is")
    return values[0]


def _scalar(value, what: str) -> float:
    if isinstance(value, torch.Tensor):
        raise SpikegradError(f"the graph has per-neuron {what}; a run folder's config holds one value per "
                             f"network — from_nir() in Python runs it as it is")
    return float(value)


def config_of(net: SNN, data: str):
    """The config (``cuba`` neurons, Euler decays) that builds ``net``'s architecture and
    dynamics for data set ``data`` — or one error naming what a config cannot hold."""
    from ..config import Config, normalise_timing

    layers = _spiking_layers(net)
    ps = [layer.params for layer in layers]
    dt = ps[0].dt
    scalars = [{name: _scalar(getattr(p, name), nir_name) for name, nir_name in
                (("tau_mem", "tau_mem"), ("tau_syn", "tau_syn"), ("threshold", "v_threshold"),
                 ("syn_gain", "w_in"), ("gain", "r"))} for p in ps]
    tau_mem = _same([v["tau_mem"] for v in scalars], "tau_mem")
    tau_syn = _same([v["tau_syn"] for v in scalars], "tau_syn")
    threshold = _same([v["threshold"] for v in scalars], "v_threshold")
    for p in ps:
        if not math.isclose(_scalar(p.syn_gain, "w_in"), 1.0, rel_tol=FLOAT32_TOL):
            raise SpikegradError(f"the graph's w_in gives an input factor w_in·dt/τ_syn = {float(p.syn_gain):.6g}, "
                                 f"not 1; a run folder's config holds 1 — from_nir() in Python runs it as it is")
    gains = [_scalar(p.gain, "r") for p in ps]
    euler_gain = dt / tau_mem

    def gain_mode(g: float, one_minus_b: float, what: str) -> bool:
        if math.isclose(g, one_minus_b, rel_tol=FLOAT32_TOL):
            return True
        if math.isclose(g, 1.0, rel_tol=FLOAT32_TOL):
            return False
        raise SpikegradError(f"the graph's {what} gives a membrane input factor r·dt/τ_mem = {g:.6g}, neither "
                             f"dt/τ_mem (r = 1, eq. 4.1's input gain) nor 1 (r = τ_mem/dt); from_nir() in "
                             f"Python runs it as it is")

    input_gain = {gain_mode(g, euler_gain, "r") for g in gains}
    if len(input_gain) != 1:
        raise SpikegradError("the graph's layers mix r = 1 and r = τ_mem/dt; a run folder's config holds one")
    recurrent = {layer.recurrent_weight is not None for layer in net.layers}
    if len(recurrent) > 1:
        raise SpikegradError("some hidden layers of the graph are recurrent and some not; a run folder's config "
                             "makes all or none recurrent")
    model = {"neuron": "cuba", "decays": "euler", "dt_ms": dt * 1e3, "tau_mem_ms": tau_mem * 1e3,
             "tau_syn_ms": tau_syn * 1e3, "threshold": threshold, "input_gain": input_gain.pop(),
             "reset": ps[0].reset, "recurrent": bool(recurrent.pop()) if recurrent else False,
             "hidden": [layer.weight.shape[0] for layer in net.layers] or [0]}
    if net.readout is not None:
        ro = net.readout
        if not math.isclose(ro.syn_gain, 1.0, rel_tol=FLOAT32_TOL):
            raise SpikegradError(f"the readout's w_in gives an input factor {ro.syn_gain:.6g}, not 1; a run "
                                 f"folder's config holds 1 — from_nir() in Python runs it as it is")
        model.update(output="readout", readout=ro.reduction, readout_init=ro.initial_state,
                     readout_steps=ro.window, tau_out_ms=ro.tau_mem * 1e3, readout_tau_syn_ms=ro.tau_syn * 1e3,
                     readout_input_gain="on" if gain_mode(ro.gain, dt / ro.tau_mem, "readout's r") else "off")
    else:
        model.update(output="spikes", readout=net.reduction)
    return Config.from_dict(normalise_timing({"data": {"name": data}, "model": model}), "NIR graph")


def import_graph(path: str | Path, out_dir: str | Path, data: str, dt: float | None = None,
                 step: float | None = None) -> Path:
    """A NIR file as a folder that spikegrad evaluates, trains from and exports again:
    ``config.toml`` (``cuba`` neurons with the graph's parameters, data set ``data``,
    ``train.init_from`` = this folder) and ``model.safetensors`` (the graph's weights).
    The data set's inputs and classes must fit the graph; ``dt`` and ``step`` as in
    :func:`from_nir`.  Writes nothing on error."""
    from ..data import load_dataset
    from ..training import save_weights

    net = from_nir(path, dt, step=step)
    cfg = config_of(net, data)
    out = Path(out_dir)
    cfg.train.init_from = str(out.resolve())
    splits = load_dataset(cfg)
    n_out = (net.readout.weight if net.readout is not None else net.output_layer.weight).shape[0]
    if (splits.n_inputs, splits.n_classes) != (net.n_inputs, n_out):
        raise SpikegradError(f"the graph takes {net.n_inputs} inputs and gives {n_out} outputs; data set "
                             f"{data!r} has {splits.n_inputs} inputs and {splits.n_classes} classes")
    cfg.validate()
    if out.exists() and any(out.iterdir()):
        raise SpikegradError(f"{out} exists and is not empty; name a new folder")
    out.mkdir(parents=True, exist_ok=True)
    save_weights(net, out / "model.safetensors")
    (out / "config.toml").write_text(cfg.to_toml(), encoding="utf-8")
    return out
