"""Clicks task: train a recurrent network through a curriculum of growing delays.

From scratch, the paper's 0.5 s delay leaves the hidden layer silent in the response
window and the gradient vanishes across the delay.  Growing the delay stage by stage
(each stage starts from the previous stage's best weights via ``train.init_from``)
lets the network build delay activity.  The last stage is the default clicks task.

    python experiments/clicks_curriculum.py runs/clicks-curriculum [--delays 0,100,200,300,400,500]
"""

import argparse
import json
from pathlib import Path

from spikegrad import Config, train


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--delays", default="0,100,200,300,400,500", help="delay per stage, ms")
    ap.add_argument("--epochs", type=int, default=15, help="epochs per stage")
    ap.add_argument("--recurrent", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--set", action="append", default=[], help="extra dotted config values key=json")
    args = ap.parse_args()
    extra = {k: json.loads(v) for k, v in (item.split("=", 1) for item in args.set)}
    previous = ""
    for delay in [float(d) for d in args.delays.split(",")]:
        base = Config.from_overrides({"data.name": "clicks"})
        spec = base.data.clicks
        steps = int(round((spec.stimulus_ms + delay + spec.response_ms) / base.model.dt_ms))
        cfg = Config.from_overrides({"data.name": "clicks", "data.clicks.delay_ms": delay, "data.n_steps": steps,
                                     "model.recurrent": args.recurrent, "train.epochs": args.epochs,
                                     "train.init_from": previous, **extra})
        run = args.out / f"delay-{int(delay)}ms"
        metrics = train(cfg, run)
        print(json.dumps({"delay_ms": delay, "run": str(run), **{k: metrics[k] for k in (
            "val_accuracy", "test_accuracy", "hidden_spikes_per_sample", "best_epoch")}}), flush=True)
        previous = str(run)


if __name__ == "__main__":
    main()
