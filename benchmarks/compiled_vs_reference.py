"""Forward + backward time of one LIF layer: backends "reference", "fused" and "compiled" (issue 5).

Not a test.  Run:  python benchmarks/compiled_vs_reference.py [--repeats 5] [--threads 1]
                   [--compiled-threads 1] [--quick]

Times the LIF kernel alone on precomputed input currents ff = x Wᵀ (gradient w.r.t. ff
and V), forward and backward with a spike-only loss (as in the network), feed-forward (FF)
and recurrent (RC), float32, median over repeats after one warm-up (which also compiles
or loads the numba kernels), the three backends measured in the same run and interleaved
so that load from other processes hits them alike.  Prints the ratios reference/compiled
and fused/compiled of that run.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from fused_vs_reference import kernel_pass  # benchmarks/ is on sys.path when run as a script
from spikegrad.kernels.options import KernelOptions

BACKENDS = ("reference", "fused", "compiled")
CASES = [
    # name, batch, steps, neurons, drive offset (≈ a few percent spike rate)
    ("randman-like B250 T70 N128", 250, 70, 128, 0.30),
    ("SHD-like B64 T100 N256", 64, 100, 256, 0.30),
    ("SHD-like B64 T500 N256", 64, 500, 256, 0.30),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (reference, fused)")
    ap.add_argument("--compiled-threads", type=int, default=1,
                    help="threads of the compiled kernel (0: follow torch)")
    ap.add_argument("--quick", action="store_true", help="only the two smaller cases, 2 repeats")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    options = KernelOptions(threads=args.compiled_threads)
    cases = CASES[:2] if args.quick else CASES
    repeats = 2 if args.quick else args.repeats
    print(f"torch {torch.__version__}, torch threads {torch.get_num_threads()}, compiled threads "
          f"{args.compiled_threads}, float32, median of {repeats} (LIF kernel forward + backward)")
    print(f"{'case':28s} {'conn':4s} {'rate':>6s} {'reference ms':>13s} {'fused ms':>9s} "
          f"{'compiled ms':>12s} {'ref/comp':>9s} {'fused/comp':>11s}")
    for name, batch, steps, n, offset in cases:
        gen = torch.Generator().manual_seed(1)
        c = torch.randn(batch, steps, n, generator=gen)
        for recurrent in (False, True):
            ff = ((torch.rand(batch, steps, n, generator=gen) - 0.5) * 1.2 + offset).requires_grad_()
            v = ((torch.rand(n, n, generator=gen) * 2 - 1) * 0.3 / n ** 0.5).requires_grad_() \
                if recurrent else None
            spikes = {b: kernel_pass(ff, v, b, c, options) for b in BACKENDS}  # warm-up, compile
            assert torch.equal(spikes["reference"], spikes["compiled"]), "spike trains differ"
            times = {b: [] for b in BACKENDS}
            for _ in range(repeats):
                for b in BACKENDS:
                    t0 = time.perf_counter()
                    kernel_pass(ff, v, b, c, options)
                    times[b].append(time.perf_counter() - t0)
            med = {b: statistics.median(t) * 1e3 for b, t in times.items()}
            print(f"{name:28s} {'RC' if recurrent else 'FF':4s} {spikes['reference'].mean().item():6.3f} "
                  f"{med['reference']:13.1f} {med['fused']:9.1f} {med['compiled']:12.1f} "
                  f"{med['reference'] / med['compiled']:8.1f}x {med['fused'] / med['compiled']:10.1f}x",
                  flush=True)


if __name__ == "__main__":
    main()
