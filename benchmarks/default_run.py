"""The default `spikegrad train` Randman run: default kernels vs the core's reference path.

Not a test.  Run:  python benchmarks/default_run.py [--epochs 3] [--threads 2] [--rounds 2]
                  python benchmarks/default_run.py --full [--threads 2]

Trains the default config (Randman, 20 → 128 LIF → 10, batch 250, Adam) for a few epochs
twice per round — once with the defaults (model.backend = "auto", model.input_path =
"auto": the numba kernel, event-driven input, compiled readout) and once with the core's
reference path (backend "reference", input_path "dense": the plain autograd loop, loop
readout) — alternating, so load from other processes hits both alike.  Reports the median
seconds per training epoch (forward + backward + Adam over 8000 samples; validation
excluded) and the ratio, all from this one run, plus the final losses of both to show they
train alike.  The numba kernels are compiled (or loaded from the cache) in a warm-up epoch
first.  Both paths run in this process with the allocator settings `spikegrad train` uses
(:mod:`spikegrad.allocator`).

``--full``: the whole ``spikegrad train`` run (80 epochs, validation every epoch,
checkpoints, test) of each path, one after the other in this process (run folders in a
temporary directory): wall seconds, test accuracy and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from spikegrad import Config
from spikegrad.allocator import tune_allocator
from spikegrad.data import load_dataset
from spikegrad.neurons import resolve_backend
from spikegrad.optim import make_optimizer
from spikegrad.training import build_model, iterate_batches, train

PATHS = {"default": {}, "reference": {"model.backend": "reference", "model.input_path": "dense"}}


def epoch_seconds(cfg: Config, splits, epochs: int) -> tuple[list[float], float]:
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg, splits.n_inputs, splits.n_classes)
    opt = make_optimizer(cfg, model)   # the run's optimiser: Adam, fused
    rng = np.random.default_rng(cfg.train.seed)
    times, loss = [], float("nan")
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, y in iterate_batches(splits.train, cfg, cfg.train.batch_size, rng):
            opt.zero_grad(set_to_none=True)
            out = F.cross_entropy(model(x), y)
            out.backward()
            opt.step()
            loss = out.item()
        times.append(time.perf_counter() - t0)
    return times, loss


def full_runs(cfgs: dict, splits) -> None:
    """The whole training run of each path (the defaults first: numba compiles in a warm-up)."""
    epoch_seconds(cfgs["default"], splits, 1)  # warm-up: numba compile / cache load
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, cfg in cfgs.items():
            t0 = time.perf_counter()
            m = train(cfg, out_dir=f"{tmp}/{name}", splits=splits)
            res[name] = (time.perf_counter() - t0, m["test_accuracy"], m["val_accuracy"])
            print(f"{name:9s}  {res[name][0]:7.1f} s  test {res[name][1]:.4f}  val {res[name][2]:.4f}",
                  flush=True)
    print(f"\nwhole run: default {res['default'][0]:.1f} s  reference {res['reference'][0]:.1f} s  "
          f"ratio reference/default {res['reference'][0] / res['default'][0]:.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per path and round")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--full", action="store_true", help="whole training runs instead of epochs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    tuned = tune_allocator()  # as `spikegrad train` does; both paths run in this process
    base = Config()
    splits = load_dataset(base)
    cfgs = {name: base.with_overrides({**over, "train.threads": args.threads})
            for name, over in PATHS.items()}
    print(f"default backend 'auto' runs {resolve_backend('auto')!r}; torch threads {args.threads}; "
          f"malloc tuning {'on' if tuned else 'off'}")
    if args.full:
        full_runs(cfgs, splits)
        return
    epoch_seconds(cfgs["default"], splits, 1)  # warm-up: numba compile / cache load
    times = {name: [] for name in cfgs}
    losses = {}
    for r in range(args.rounds):
        for name, cfg in cfgs.items():
            t, losses[name] = epoch_seconds(cfg, splits, args.epochs)
            times[name] += t
            print(f"round {r + 1}  {name:9s}  " + "  ".join(f"{s:6.2f}s" for s in t), flush=True)
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"\nmedian s/epoch: default {med['default']:.2f}  reference {med['reference']:.2f}  "
          f"ratio reference/default {med['reference'] / med['default']:.2f}x")
    print(f"training loss after {args.epochs} epochs: default {losses['default']:.6f}  "
          f"reference {losses['reference']:.6f}")


if __name__ == "__main__":
    main()
