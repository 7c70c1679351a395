"""The same command in N fresh processes: how many distinct outcomes?  Not a test.

    python benchmarks/reproducibility.py [--runs 20] [--threads 2] [--out DIR] [-- TRAIN ARGS...]

Runs ``spikegrad train --threads K --quiet --out DIR/run-<i>`` (plus TRAIN ARGS) N times,
one after the other, each in its own process, then groups the runs by what they wrote:

- ``metrics.json`` without its timing key (``wall_seconds``),
- ``metrics.jsonl`` (every epoch's losses, accuracies and spike counts) without ``seconds``,
- the bytes of ``model.safetensors`` and ``last.safetensors``.

and prints each distinct outcome with its count and headline numbers.  A finished run in
DIR (one with metrics.json) is kept, so a killed measurement continues where it stopped.
Exit status 0 when every run gave the same outcome, 1 otherwise.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

TIMING_KEYS = {"wall_seconds", "seconds"}


def outcome(run: Path) -> dict:
    """What a finished run folder holds, timings left out."""
    metrics = json.loads((run / "metrics.json").read_text())
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line]
    strip = lambda row: {k: v for k, v in row.items() if k not in TIMING_KEYS}  # noqa: E731
    weights = {name: hashlib.sha256((run / name).read_bytes()).hexdigest()[:16]
               for name in ("model.safetensors", "last.safetensors")}
    return {"metrics": strip(metrics), "history": [strip(r) for r in history], "weights": weights}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("reproducibility"))
    ap.add_argument("train_args", nargs="*", help="more `spikegrad train` arguments (after --)")
    args = ap.parse_args()
    from rich.progress import Progress

    args.out.mkdir(parents=True, exist_ok=True)
    runs = [args.out / f"run-{i:02d}" for i in range(1, args.runs + 1)]
    with Progress() as bar:
        task = bar.add_task(f"{args.runs} runs, {args.threads} threads", total=args.runs)
        for run in runs:
            if not (run / "metrics.json").is_file():
                shutil.rmtree(run, ignore_errors=True)
                cmd = [sys.executable, "-m", "spikegrad.cli", "train", "--threads", str(args.threads), "--quiet",
                       "--out", str(run), *args.train_args]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    print(done.stdout[-2000:], done.stderr[-2000:], file=sys.stderr)
                    return 2
            bar.advance(task)

    groups: dict[str, list[str]] = defaultdict(list)
    examples: dict[str, dict] = {}
    for run in runs:
        o = outcome(run)
        key = json.dumps(o, sort_keys=True)
        groups[key].append(run.name)
        examples[key] = o
    print(f"{len(runs)} runs of `spikegrad train --threads {args.threads} {' '.join(args.train_args)}`: "
          f"{len(groups)} distinct outcome(s)")
    for key, names in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        m = examples[key]["metrics"]
        head = {k: m[k] for k in ("test_accuracy", "val_accuracy", "test_loss", "hidden_spikes_per_sample",
                                  "best_epoch") if k in m}
        print(f"  {len(names):3d} × {head}  weights {examples[key]['weights']['model.safetensors']}  "
              f"({', '.join(names)})")
    if len(groups) > 1:
        keys = list(groups)
        a, b = examples[keys[0]], examples[keys[1]]
        first = next((i for i, (x, y) in enumerate(zip(a["history"], b["history"])) if x != y), None)
        print(f"  the two largest groups first differ in epoch {None if first is None else first + 1}")
    return 0 if len(groups) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
