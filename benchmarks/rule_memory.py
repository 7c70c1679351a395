"""Peak memory of training steps per learning rule at T, 2T, 4T steps: one fresh process per
point, resident memory over a baseline taken after the data and the model are loaded.

    python benchmarks/rule_memory.py [--rules bptt,fa,dfa,dcll] [--factors 1,2,4] [--steps 5] [--repeats 3]

Each point runs ``--steps`` training steps (their input batches made before the baseline) of the default Randman network (one hidden layer
of 128, batch 250, spiking input as an EventBatch) with n_steps = factor × 70 and Δt = 1 ms
(the input's spikes all fall in the first 50 ms, so only the window grows).  The peak is
Linux's VmHWM after resetting it (``/proc/self/clear_refs``) at the baseline; each point
runs ``--repeats`` fresh processes (the allocator makes a few MB of noise) and the table
gives their median; prints one JSON line per process and the table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys


def _status(field: str) -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def point(rule: str, factor: int, steps: int) -> dict:
    import numpy as np
    import torch

    from spikegrad import Config
    from spikegrad.data import load_dataset
    from spikegrad.rules import make_rule
    from spikegrad.training import init_model, iterate_batches, loss_and_record
    from spikegrad.optim import make_optimizer

    torch.set_num_threads(1)
    cfg = Config().with_overrides({"data.n_steps": 70 * factor, "train.rule": rule})
    splits = load_dataset(cfg)
    model = init_model(cfg, splits)
    rule_obj = make_rule(cfg, lambda m, x, y: loss_and_record(m, x, y, cfg))
    opt = make_optimizer(cfg, model)
    batches = iterate_batches(splits.train, cfg, cfg.train.batch_size, np.random.default_rng(0))
    held = [next(batches) for _ in range(steps + 1)]   # the input batches: data, loaded before the baseline
    rule_obj.step(model, held[0], opt)          # warm: kernels compiled, optimiser state made
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")                           # resets VmHWM to the current resident size
    base = _status("VmRSS")
    for batch in held[1:]:
        rule_obj.step(model, batch, opt)
    peak = _status("VmHWM")
    return {"rule": rule, "n_steps": 70 * factor, "baseline_mb": base / 2**20, "over_baseline_mb": (peak - base) / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", default="bptt,fa,dfa,dcll")
    ap.add_argument("--factors", default="1,2,4")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--point", nargs=2, metavar=("RULE", "FACTOR"))
    args = ap.parse_args()
    if args.point:
        print(json.dumps(point(args.point[0], int(args.point[1]), args.steps)), flush=True)
        return
    rows = []
    for rule in args.rules.split(","):
        for factor in [int(f) for f in args.factors.split(",")]:
            runs = []
            for _ in range(args.repeats):
                out = subprocess.run([sys.executable, __file__, "--point", rule, str(factor), "--steps",
                                      str(args.steps)], capture_output=True, text=True, check=True)
                line = out.stdout.strip().splitlines()[-1]
                print(line, flush=True)
                runs.append(json.loads(line)["over_baseline_mb"])
            rows.append({"rule": rule, "n_steps": 70 * factor, "median": statistics.median(runs), "runs": runs})
    print(f"{'rule':6} {'T':>5} {'over baseline, MB (median)':>28}  runs")
    for r in rows:
        print(f"{r['rule']:6} {r['n_steps']:5d} {r['median']:28.1f}  {', '.join(f'{v:.1f}' for v in r['runs'])}")


if __name__ == "__main__":
    main()
