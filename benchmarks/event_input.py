"""Input projection x Wᵀ of one layer: dense matmul vs event-driven (issue 5, part 2).

Not a test.  Run:  python benchmarks/event_input.py [--repeats 5] [--threads 2] [--no-crossover]
                                                  [--impls-only]

1. Crossover: the projection alone (forward + backward: dW, and dx when the input carries
   a gradient), 700→256, batch 64, T 100, float32, over input densities, from the dense x
   ("events") and from its EventBatch ("batch", what spiking data sets deliver); the density where
   the dense matmul starts to win is what ``spikegrad.neurons.EVENT_DENSITY_MAX`` is set
   from (dx = δff W is dense on both paths, so it adds the same time to both).
2. The SHD-like layer 700→256, batch 64, T 100 and T 500, input densities 1 %, 2 %, 8 %:
   the projection alone and the whole LIFLayer (projection + fused LIF kernel, FF),
   forward + backward, dense vs events; plus the event path's time per million events.
   The event path's time grows with the event count (a per-event gather-and-add for ff and
   dW) on top of one pass over x to find the events (``nonzero``, ∝ batch·T·N_in but with no
   multiply): at low density that pass dominates, so ms per event falls as density rises.

0. Implementations (printed first): the projection alone, 700→256, B64, T100, 2 %, float32,
   fwd + bwd (dW; and with dx): dense matmul vs the event path's torch implementation
   (nonzero + embedding_bag, the fallback) vs its numba implementation (the CPU default),
   plus counting the nonzeros (torch.count_nonzero vs spikegrad.kernels.events.density).

Median of repeats after one warm-up, both paths interleaved in the same run so that load
from other processes hits both alike; ratios are dense / events from this one run.

Notes (numba event kernels, 2026-11-22; shared 2-core AMD EPYC, load average ≈ 4 from
other jobs, 1 thread, 7 repeats, so ±20 %): 700→256, B64 T100, 2 % (89.6 k events),
fwd + bwd without dx: dense ≈ 74 ms, events/torch ≈ 30 ms, events/numba ≈ 17 ms, i.e.
numba ≈ 4.3× faster than dense and ≈ 1.7× faster than the torch event path (forward
alone: 36 / 17 / 10 ms).  Inside the numba forward: counting events per row ≈ 1.3 ms
(branch-free, vectorised), the pass that records the events ≈ 3 ms (one branch per
element of x), the row updates ≈ 2.7 ms; dW ≈ 4 ms.  Counting nonzeros for the "auto"
choice: torch.count_nonzero ≈ 4 ms, events.density ≈ 1.5–2 ms.  The crossover density of
section 1 was measured with the torch implementation and 2 threads; a quick 1-thread look
with numba (3 repeats, fwd + bwd, no dx): dense / events = 2.3× at 6 %, 1.7× at 12 %,
0.9× at 20 %, 0.65× at 30 %, so the crossover moved from ≈ 8 % to ≈ 18 % (1 thread for
both; dense gains more from a second thread; re-measure before moving EVENT_DENSITY_MAX).
Session 4 (two-thread event kernels, EventBatch input): section 1 is in the comment above
EVENT_DENSITY_MAX in spikegrad/neurons.py, which now sits at 12 % (20 % for an EventBatch).
With dx (dense δff W on both paths, ≈ 50 ms here) the 2 % ratio drops to ≈ 1.9×.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import spikegrad.kernels.events as events
from spikegrad import LIFParams
from spikegrad.network import LIFLayer
from spikegrad.kernels.options import KernelOptions
from spikegrad.neurons import EVENT_BATCH_DENSITY_MAX, EVENT_DENSITY_MAX, project_input

CROSSOVER_DENSITIES = [0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.12, 0.16, 0.24]
LAYER_DENSITIES = [0.01, 0.02, 0.08]


def spikes(batch, steps, n_in, density, gen):
    return (torch.rand(batch, steps, n_in, generator=gen) < density).float()


def time_paths(fns: dict, repeats: int) -> dict:
    """Median ms of each zero-argument callable, interleaved, after one warm-up each."""
    for f in fns.values():
        f()
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t0 = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) * 1e3 for k, v in times.items()}


def projection_pass(x, w, c, path):
    w.grad = None
    if isinstance(x, torch.Tensor) and x.requires_grad:
        x.grad = None
    (project_input(x, w, path) * c).sum().backward()


def layer_pass(layer, x, c):
    layer.zero_grad(set_to_none=True)
    s, _ = layer(x)
    (s * c).sum().backward()


def events_impl_pass(x, w, c, use_numba):
    w.grad = None
    if isinstance(x, torch.Tensor) and x.requires_grad:
        x.grad = None
    ff = project_input(x, w, "events", options=KernelOptions(projection_impl="numba" if use_numba else "torch"))
    (ff * c).sum().backward()


def implementations(repeats: int) -> None:
    batch, steps, n_in, n_out, d = 64, 100, 700, 256, 0.02
    print(f"\n0. implementations: projection only, {n_in}->{n_out}, B{batch} T{steps}, "
          f"density {d}, fwd + bwd (ms, median of {repeats}); numba available: "
          f"{events.numba_available()}")
    gen = torch.Generator().manual_seed(3)
    w = (torch.randn(n_out, n_in, generator=gen) / n_in ** 0.5).requires_grad_()
    c = torch.randn(batch, steps, n_out, generator=gen)
    x = spikes(batch, steps, n_in, d, gen)
    xg = x.clone().requires_grad_()
    fns = {}
    for label, xx in (("", x), ("+dx", xg)):
        fns["dense" + label] = lambda xx=xx: projection_pass(xx, w, c, "dense")
        fns["ev-torch" + label] = lambda xx=xx: events_impl_pass(xx, w, c, False)
        if events.numba_available():
            fns["ev-numba" + label] = lambda xx=xx: events_impl_pass(xx, w, c, True)
    fns["count_nonzero"] = lambda: int(torch.count_nonzero(x))
    fns["density"] = lambda: events.density(x)
    med = time_paths(fns, repeats)
    print(f"events {int(x.count_nonzero())}")
    for k, v in med.items():
        extra = ""
        if k.startswith("ev-"):
            extra = f"  dense / this {med['dense' + k[8:]] / v:5.2f}x"
        print(f"{k:16s} {v:8.1f}{extra}", flush=True)


def crossover(repeats: int) -> None:
    batch, steps, n_in, n_out = 64, 100, 700, 256
    print(f"\n1. crossover: projection only, {n_in}->{n_out}, B{batch} T{steps}, fwd + bwd "
          f"(ms, median of {repeats})")
    print(f"{'density':>8s} {'events':>8s} | {'dense':>7s} {'events':>7s} {'ratio':>6s} | "
          f"{'batch':>7s} {'ratio':>6s} | {'dense+dx':>8s} {'ev+dx':>7s} {'ratio':>6s}")
    gen = torch.Generator().manual_seed(2)
    w = (torch.randn(n_out, n_in, generator=gen) / n_in ** 0.5).requires_grad_()
    c = torch.randn(batch, steps, n_out, generator=gen)
    for d in CROSSOVER_DENSITIES:
        x = spikes(batch, steps, n_in, d, gen)
        xg = x.clone().requires_grad_()
        ev = events.EventBatch.from_dense(x)
        med = time_paths({
            "dense": lambda: projection_pass(x, w, c, "dense"),
            "events": lambda: projection_pass(x, w, c, "events"),
            "batch": lambda: projection_pass(ev, w, c, "events"),
            "dense-g": lambda: projection_pass(xg, w, c, "dense"),
            "events-g": lambda: projection_pass(xg, w, c, "events"),
        }, repeats)
        print(f"{d:8.3f} {int(x.count_nonzero()):8d} | {med['dense']:7.1f} {med['events']:7.1f} "
              f"{med['dense'] / med['events']:5.2f}x | {med['batch']:7.1f} "
              f"{med['dense'] / med['batch']:5.2f}x | {med['dense-g']:8.1f} {med['events-g']:7.1f} "
              f"{med['dense-g'] / med['events-g']:5.2f}x", flush=True)
    print(f"auto takes the event path below density {EVENT_DENSITY_MAX} (with or without dx; "
          f"{EVENT_BATCH_DENSITY_MAX} from an EventBatch)")


def layers(repeats: int) -> None:
    n_in, n_out, batch = 700, 256, 64
    print(f"\n2. SHD-like layer {n_in}->{n_out}, B{batch}, FF, backend fused, fwd + bwd "
          f"(ms, median of {repeats}; ratio = dense / events)")
    print(f"{'T':>4s} {'density':>7s} {'events':>8s} | {'proj dense':>10s} {'proj ev':>8s} "
          f"{'ratio':>6s} {'ev ms/Mevent':>12s} | {'layer dense':>11s} {'layer ev':>9s} {'ratio':>6s}")
    for steps in (100, 500):
        gen = torch.Generator().manual_seed(1)
        c = torch.randn(batch, steps, n_out, generator=gen)
        torch.manual_seed(0)
        lay = {p: LIFLayer(n_in, n_out, LIFParams(), backend="fused", input_path=p)
               for p in ("dense", "events")}
        with torch.no_grad():  # same weights, a few-percent spike rate
            lay["dense"].weight.mul_(6.0).add_(0.3 / n_in ** 0.5)
            lay["events"].weight.copy_(lay["dense"].weight)
        w = lay["dense"].weight
        for d in LAYER_DENSITIES:
            x = spikes(batch, steps, n_in, d, gen)
            events = int(x.count_nonzero())
            s_d, _ = lay["dense"](x)
            s_e, _ = lay["events"](x)
            agree = torch.equal(s_d, s_e)
            med = time_paths({
                "p-dense": lambda: projection_pass(x, w, c, "dense"),
                "p-events": lambda: projection_pass(x, w, c, "events"),
                "l-dense": lambda: layer_pass(lay["dense"], x, c),
                "l-events": lambda: layer_pass(lay["events"], x, c),
            }, repeats)
            print(f"{steps:4d} {d:7.2f} {events:8d} | {med['p-dense']:10.1f} {med['p-events']:8.1f} "
                  f"{med['p-dense'] / med['p-events']:5.2f}x {med['p-events'] / events * 1e6:12.1f} | "
                  f"{med['l-dense']:11.1f} {med['l-events']:9.1f} "
                  f"{med['l-dense'] / med['l-events']:5.2f}x"
                  f"{'' if agree else '  (spike trains differ by rounding)'}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-crossover", action="store_true")
    ap.add_argument("--crossover-only", action="store_true", help="only section 1")
    ap.add_argument("--impls-only", action="store_true",
                    help="only section 0 (torch vs numba event implementations vs dense)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32, CPU")
    if args.crossover_only:
        crossover(args.repeats)
        return
    implementations(args.repeats)
    if args.impls_only:
        return
    if not args.no_crossover:
        crossover(args.repeats)
    layers(args.repeats)


if __name__ == "__main__":
    main()
