"""Summary of benchmarks/ab_default_run.sh: each run's metrics and median seconds per epoch,
and new/base of the medians.   python benchmarks/ab_summary.py OUT_DIR"""

import json
import statistics
import sys
from pathlib import Path


def main(out: Path) -> None:
    medians: dict[str, list[float]] = {"base": [], "new": []}
    outcomes: dict[tuple, list[str]] = {}
    runs = sorted(out.glob("*-*/metrics.json"), key=lambda p: (int(p.parent.name.split("-")[1]), p.parent.name))
    print(f"{'run':8s} {'test':>6s} {'val':>6s} {'test loss':>22s} {'spikes':>8s} {'best':>4s} {'s/epoch':>8s}")
    for path in runs:
        name = path.parent.name
        m = json.loads(path.read_text())
        rows = [json.loads(line) for line in (path.parent / "metrics.jsonl").read_text().splitlines()]
        per_epoch = statistics.median(b["seconds"] - a["seconds"] for a, b in zip(rows, rows[1:]))
        medians[name.split("-")[0]].append(per_epoch)
        key = (m["test_accuracy"], m["val_accuracy"], m["test_loss"], m["hidden_spikes_per_sample"], m["best_epoch"])
        outcomes.setdefault(key, []).append(name)
        print(f"{name:8s} {key[0]:6.3f} {key[1]:6.3f} {key[2]!r:>22s} {key[3]:8.3f} {key[4]:4d} {per_epoch:8.4f}")
    base, new = statistics.median(medians["base"]), statistics.median(medians["new"])
    print(f"median s/epoch: base {base:.4f}, new {new:.4f}, new/base {new / base:.4f}")
    for key, names in outcomes.items():
        print(f"outcome test {key[0]} val {key[1]} loss {key[2]!r} spikes {key[3]} best {key[4]}: {', '.join(names)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
