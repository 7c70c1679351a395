"""Forward + backward time of one LIF layer: backend "reference" vs "fused" (issue 5).

Not a test.  Run:  python benchmarks/fused_vs_reference.py [--repeats 7] [--threads 2]

Each case times one LIFLayer (input matmul x Wᵀ + the LIF kernel), and the LIF kernel
alone on precomputed input currents (gradient w.r.t. ff and V), forward and backward
with a spike-only loss (as in the network), feed-forward (FF) and recurrent (RC), float32,
median over repeats after one warm-up, both backends measured in the same run and
interleaved so that load from other processes hits both alike.  Also prints the
kernel-only memory the fused backward keeps (bytes per neuron and step).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from spikegrad import LIFParams
from spikegrad.kernels.fused import saved_bytes_per_neuron_step
from spikegrad.network import LIFLayer
from spikegrad.neurons import lif_layer

CASES = [
    # name, batch, steps, inputs, neurons, input density (None: one spike per input, randman)
    ("randman B250 T70 20->128", 250, 70, 20, 128, None),
    ("SHD-like B64 T100 700->256 2%", 64, 100, 700, 256, 0.02),
    ("SHD-like B64 T500 700->256 2%", 64, 500, 700, 256, 0.02),
]


def make_input(batch, steps, n_in, density, gen):
    if density is None:
        x = torch.zeros(batch, steps, n_in)
        t = torch.randint(0, steps, (batch, n_in), generator=gen)
        x.scatter_(1, t.unsqueeze(1), 1.0)
        return x
    return (torch.rand(batch, steps, n_in, generator=gen) < density).float()


def build(n_in, n_out, recurrent, backend, gain, offset):
    torch.manual_seed(0)
    layer = LIFLayer(n_in, n_out, LIFParams(), recurrent=recurrent, backend=backend)
    with torch.no_grad():  # drive the layer into a few-percent spike rate
        layer.weight.mul_(gain).add_(offset * gain / n_in ** 0.5)
    return layer


def one_pass(layer, x, c):
    layer.zero_grad(set_to_none=True)
    s, _ = layer(x)
    (s * c).sum().backward()
    return s


def kernel_pass(ff, v, backend, c, options=None):
    """The LIF kernel alone on precomputed input currents (no input matmul); its spikes."""
    ff.grad = None
    if v is not None:
        v.grad = None
    s, _ = lif_layer(ff, v, LIFParams(), backend, *([options] if options is not None else []))
    (s * c).sum().backward()
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, float32, "
          f"median of {args.repeats} (forward + backward, one layer)")
    print(f"fused saves {saved_bytes_per_neuron_step(LIFParams())} B per neuron and step "
          f"(float32; 5 with a differentiable zero reset); the reference keeps every step's "
          f"autograd intermediates")
    print(f"{'':46s}{'layer (x Wᵀ + LIF)':^32s} | {'LIF kernel only':^26s}")
    print(f"{'case':34s} {'conn':4s} {'rate':>6s} {'reference ms':>13s} {'fused ms':>9s} {'ratio':>6s} | "
          f"{'ref ms':>9s} {'fused ms':>9s} {'ratio':>6s}")
    for name, batch, steps, n_in, n_out, density in CASES:
        gen = torch.Generator().manual_seed(1)
        x = make_input(batch, steps, n_in, density, gen)
        c = torch.randn(batch, steps, n_out, generator=gen)
        gain, offset = (8.0, 0.3) if density is None else (6.0, 0.05)  # ≈ 3% spike rate
        for recurrent in (False, True):
            layers = {b: build(n_in, n_out, recurrent, b, gain, offset)
                      for b in ("reference", "fused")}
            s_ref = one_pass(layers["reference"], x, c)   # warm-up, and check agreement
            s_fus = one_pass(layers["fused"], x, c)
            assert torch.equal(s_ref, s_fus), "backends disagree on the spike trains"
            with torch.no_grad():
                ff = (x @ layers["fused"].weight.t()).requires_grad_()
            vrec = layers["fused"].recurrent_weight
            times = {k: [] for k in ("reference", "fused", "k-reference", "k-fused")}
            for _ in range(args.repeats):
                for b, layer in layers.items():
                    t0 = time.perf_counter()
                    one_pass(layer, x, c)
                    times[b].append(time.perf_counter() - t0)
                    t0 = time.perf_counter()
                    kernel_pass(ff, vrec, b, c)
                    times["k-" + b].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            best = {k: min(v) * 1e3 for k, v in times.items()}
            print(f"{name:34s} {'RC' if recurrent else 'FF':4s} {s_ref.mean().item():6.3f} "
                  f"{med['reference']:13.1f} {med['fused']:9.1f} "
                  f"{med['reference'] / med['fused']:5.2f}x | "
                  f"{med['k-reference']:9.1f} {med['k-fused']:9.1f} "
                  f"{med['k-reference'] / med['k-fused']:5.2f}x | min-ratios "
                  f"{best['reference'] / best['fused']:.2f}x {best['k-reference'] / best['k-fused']:.2f}x",
                  flush=True)


if __name__ == "__main__":
    main()
