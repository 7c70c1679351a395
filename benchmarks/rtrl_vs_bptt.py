"""rtrl's gradient against BPTT's on the default Randman network, batch by batch (float32).

    python benchmarks/rtrl_vs_bptt.py [--batches 20] [--after 0] [--threads 2]

From the same weights (the default run's initialisation), for each of the first
``--batches`` training batches of epoch 1: BPTT's gradient (``loss.backward()``) and rtrl's,
the largest relative difference per tensor (max |a − b| / max |b|), and the time of each.
Then one Adam step with BPTT's gradient, so that later batches see moving weights as in
training.  ``--after K``: first K plain BPTT steps (the default network's hidden layer is
silent for its first batches, where the readout's gradient is zero in both).  Prints one
line per batch and the worst ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--after", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    from spikegrad import Config
    from spikegrad.data import load_dataset
    from spikegrad.losses import make_loss
    from spikegrad.rules import RTRL
    from spikegrad.training import init_model, iterate_batches, loss_and_record

    torch.set_num_threads(args.threads)
    cfg = Config()
    splits = load_dataset(cfg)
    model = init_model(cfg, splits)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.train.lr)
    rule = RTRL(loss=make_loss(cfg))
    worst = 0.0
    times = {"bptt": [], "rtrl": []}
    rng = np.random.default_rng(cfg.train.seed)

    def stream():
        while True:
            yield from iterate_batches(splits.train, cfg, cfg.train.batch_size, rng)

    batches = stream()
    for _, (x, y) in zip(range(args.after), batches):
        opt.zero_grad(set_to_none=True)
        loss_and_record(model, x, y, cfg)[0].backward()
        opt.step()
    for k, (x, y) in zip(range(args.batches), batches):
        t0 = time.perf_counter()
        got, _, _ = rule.gradients(model, x, y)
        times["rtrl"].append(time.perf_counter() - t0)
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss, _, _ = loss_and_record(model, x, y, cfg)
        loss.backward()
        times["bptt"].append(time.perf_counter() - t0)
        ratios = {}
        for name, p in model.named_parameters():
            scale = float(p.grad.abs().max())
            ratios[name] = float((got[name] - p.grad).abs().max()) / scale if scale > 0 else 0.0
        worst = max(worst, *ratios.values())
        scales = {n: float(p.grad.abs().max()) for n, p in model.named_parameters()}
        print(f"batch {k + 1:2d}: " + "  ".join(f"{n} {r:.2e} (max |grad| {scales[n]:.1e})" for n, r in ratios.items())
              + f"  hidden spikes {sum(float(s.sum()) for s in model.run(x)[1].spikes):.0f}", flush=True)
        opt.step()
    print(f"largest relative difference over {args.batches} batches: {worst:.2e}")
    print(f"seconds per batch (median): bptt {np.median(times['bptt']):.3f}, rtrl {np.median(times['rtrl']):.3f}")


if __name__ == "__main__":
    main()
