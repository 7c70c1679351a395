"""Workers: claim a trial, train it into its run folder with a heartbeat, record its
metrics; take over the run folder of a dead worker's trial; run N local workers."""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

from .._optuna import storage_of, trial_id
from ..errors import SpikegradError
from .spec import SweepSpec, _is_metric, point_config, row_selection
from .storage import _duplicate_of, _lock, _states, claim_next, create_or_join, ensure_enqueued, load_study
from .tables import summary


Say = Callable[[str], None]


class _Heartbeat:
    def __init__(self, storage, trial_id: int, interval: float):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(storage, trial_id, interval), daemon=True)

    def _run(self, storage, trial_id, interval):
        while not self._stop.wait(interval):
            with contextlib.suppress(Exception):  # a missed beat is not fatal; staleness takes 2
                storage.record_heartbeat(trial_id)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

def _point_text(trial) -> str:
    params = json.loads(trial.user_attrs["params"])
    return " ".join(f"{k}={json.dumps(v)}" for k, v in params.items()) + f" seed={trial.user_attrs['seed']}"


def _take_over_run_dir(study, trial, run_dir: Path, sweep_dir: Path) -> int | None:
    """Move the run folder of an earlier failed trial of the same point here (it resumes)."""
    S = _states()
    earlier = [t for t in study.get_trials(deepcopy=False, states=(S.FAIL,))
               if t.user_attrs.get("point") == trial.user_attrs["point"] and t.number < trial.number
               and t.user_attrs.get("duplicate_of") is None]
    for t in sorted(earlier, key=lambda t: -t.number):
        old = sweep_dir / "trials" / str(t.number)
        if (old / "config.toml").is_file():
            os.replace(old, run_dir)
            return t.number
    return None


def run_trial(study, trial, spec: SweepSpec, sweep_dir: Path, heartbeat: int, say: Say | None = None) -> str:
    """Train one claimed trial and record it; returns "complete", "diverged", "failed" or "duplicate"."""
    from .. import training

    S = _states()
    storage = storage_of(study)
    tid = trial_id(study, trial)
    dup = _duplicate_of(study, trial)
    if dup is not None:
        storage.set_trial_user_attr(tid, "duplicate_of", dup)
        storage.set_trial_state_values(tid, state=S.FAIL)
        return "duplicate"
    run_dir = sweep_dir / "trials" / str(trial.number)
    storage.set_trial_user_attr(tid, "run_dir", str(run_dir.relative_to(sweep_dir)))
    storage.set_trial_user_attr(tid, "host", socket.gethostname())
    storage.set_trial_user_attr(tid, "pid", os.getpid())
    point = {"params": json.loads(trial.user_attrs["params"]), "seed": trial.user_attrs["seed"],
             "key": trial.user_attrs["point"]}
    try:
        with _Heartbeat(storage, tid, heartbeat):
            run_dir.parent.mkdir(parents=True, exist_ok=True)
            if not run_dir.exists():
                taken = _take_over_run_dir(study, trial, run_dir, sweep_dir)
                if taken is not None:
                    storage.set_trial_user_attr(tid, "resumed_from", taken)
            cfg = point_config(spec, point)
            if training.is_finished(run_dir):  # killed after training, before recording
                metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
            else:
                metrics = training.train(cfg, run_dir, resume=True)
    except BaseException as err:
        message = " ".join(str(err).split()) or type(err).__name__
        with contextlib.suppress(Exception):
            storage.set_trial_user_attr(tid, "error", message[:500])
            storage.set_trial_state_values(tid, state=S.FAIL)
        if not isinstance(err, Exception):  # KeyboardInterrupt, SystemExit: stop the worker
            raise
        if say:
            say(f"trial {trial.number} [{_point_text(trial)}] failed: {message}")
        return "failed"
    for key in metrics:
        if _is_metric(key):
            storage.set_trial_user_attr(tid, key, metrics[key])
    select = row_selection(metrics)
    value = metrics.get(select.metric)
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        value = select.worst
    storage.set_trial_state_values(tid, state=S.COMPLETE, values=[float(value)])
    status = "diverged" if metrics.get("diverged") else "complete"
    if say:
        test = "test_" + select.metric.removeprefix("val_")
        say(f"trial {trial.number} [{_point_text(trial)}]: val {metrics[select.metric]:.4f} "
            f"test {metrics[test]:.4f}" + (" (diverged)" if status == "diverged" else ""))
    return status


def work(sweep_dir: str | Path, storage: str | None = None, name: str | None = None, heartbeat: int = 60,
         say: Say | None = None) -> dict[str, int]:
    """One worker: claim and train WAITING trials until every point is done; counts by outcome.

    While other workers' trials are RUNNING it waits, so that it can take over the point of
    one whose worker dies (its heartbeat goes stale).
    """
    from optuna.storages import fail_stale_trials

    sweep_dir = Path(sweep_dir)
    study, spec = load_study(sweep_dir, storage, name, heartbeat)
    S = _states()
    counts = {"complete": 0, "diverged": 0, "failed": 0, "duplicate": 0}
    while True:
        with _lock(sweep_dir):
            fail_stale_trials(study)
            ensure_enqueued(study, spec)
            trial = claim_next(study)
        if trial is None:
            if study.get_trials(deepcopy=False, states=(S.RUNNING, S.WAITING)):
                time.sleep(min(heartbeat, 5))
                continue
            return counts
        counts[run_trial(study, trial, spec, sweep_dir, heartbeat, say)] += 1


def run_sweep(spec: SweepSpec, sweep_dir: str | Path, storage: str | None = None, workers: int = 1,
              resume: bool = False, heartbeat: int = 60, say: Say | None = None) -> dict[str, Any]:
    """Create (or with ``resume`` continue/join) a sweep and work on it with N local workers."""
    if workers < 1:
        raise SpikegradError(f"--workers must be ≥ 1, got {workers}")
    sweep_dir = Path(sweep_dir)
    study, url = create_or_join(spec, sweep_dir, storage, resume, heartbeat)
    if workers == 1:
        work(sweep_dir, url, spec.name, heartbeat, say)
    else:
        cmd = [sys.executable, "-m", "spikegrad.cli", "sweep-worker", str(sweep_dir), "--storage", url,
               "--study", spec.name, "--heartbeat", str(heartbeat)]
        procs = [subprocess.Popen(cmd, stdout=None if say else subprocess.DEVNULL) for _ in range(workers)]
        try:
            codes = [p.wait() for p in procs]
        except BaseException:
            for p in procs:
                p.terminate()
            raise
        bad = [c for c in codes if c != 0]
        if bad:
            raise SpikegradError(f"{len(bad)} of {workers} sweep workers failed (exit codes {bad})")
    return summary(study)
