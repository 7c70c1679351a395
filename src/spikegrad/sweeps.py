"""Resumable grid searches on Optuna: one trial per grid point × seed, shared storage.

A sweep file is the train TOML schema plus a ``[sweep]`` table::

    [model]
    hidden = [128]

    [sweep]
    name = "beta-lr"
    grid = { "model.beta" = [1.0, 10.0], "train.lr" = [1e-3, 2e-3] }
    seeds = [0, 1]                       # train.seed values
    quick = { "train.epochs" = 2 }       # applied with --quick

Every point is enqueued once as a WAITING Optuna trial carrying its overrides as user
attributes (``point``, ``params``, ``seed``); workers claim WAITING trials one at a time
(:func:`claim_next`), train into ``SWEEP_DIR/trials/<number>/`` and record the final
metrics as user attributes (value: the loss's selection metric, ``val_accuracy`` for the
default cross-entropy; the study maximises or minimises it as the loss says).  Workers beat a heartbeat while
they train; a trial whose worker died is failed once its heartbeat is older than the
grace period (2 × ``heartbeat``) and its point enqueued again, and the new trial takes
over the dead trial's run folder and resumes it from its checkpoint.  A diverged trial
(non-finite loss) is COMPLETE with ``diverged = True`` and the metrics of its best epoch.
See docs/SWEEPS.md.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import itertools
import json
import math
import os
import socket
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ._format import cell as _cell, mean_sd as _mean_sd
from ._optional import need
from ._optuna import storage_of, trial_id
from .config import Config, merge_nested, nest, read_toml
from .errors import SpikegradError

SPEC_ATTR = "spikegrad_sweep"
DB_NAME = "study.db"
SWEEP_KEYS = ("name", "grid", "seeds", "quick")
METRIC_ATTRS = ("val_accuracy", "test_accuracy", "train_accuracy", "last_epoch_test_accuracy", "test_loss",
                "hidden_spikes_per_sample", "hidden_spikes_per_layer", "best_epoch", "epochs", "diverged",
                "wall_seconds", "selection")
# Metrics a loss names (val_<metric>, test_<metric>, …) are recorded too.
METRIC_PREFIXES = ("val_", "test_", "train_", "last_epoch_test_")

Say = Callable[[str], None]


# -- the sweep file ----------------------------------------------------------------------

@dataclass
class SweepSpec:
    """A parsed sweep: train tables (``--quick`` overrides already applied), grid, seeds."""
    name: str
    base: dict[str, Any]
    grid: dict[str, list[Any]]
    seeds: list[int]
    quick: bool = False
    source: str = "sweep"
    points: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> str:
        """What workers and joining machines must agree on (stored in the study)."""
        return json.dumps({"name": self.name, "base": self.base, "grid": self.grid, "seeds": self.seeds,
                           "quick": self.quick}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "SweepSpec":
        raw = json.loads(text)
        spec = cls(raw["name"], raw["base"], raw["grid"], raw["seeds"], raw["quick"], source=f"sweep {raw['name']}")
        spec.points = expand(spec)
        return spec


def _flatten(table: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"model": {"beta": [..]}} and {"model.beta": [..]} both → {"model.beta": [..]}."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def _check_key(key: str, where: str) -> None:
    try:
        value = Config().get(key)
    except SpikegradError:
        raise SpikegradError(f"{where}: unknown config key {key!r}") from None
    if dataclasses.is_dataclass(value):
        raise SpikegradError(f"{where}: {key!r} is a table; name one of its fields")


def _check_grid(grid: Mapping[str, Any], source: str, where: str) -> None:
    for key, values in grid.items():
        _check_key(key, f"{source}: {where}")
        if key == "train.seed":
            raise SpikegradError(f"{source}: {where}: list seeds in sweep.seeds, not as 'train.seed'")
        if not isinstance(values, list) or not values:
            raise SpikegradError(f"{source}: {where} {key!r} must be a non-empty list of values, got {values!r}")
        if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
            raise SpikegradError(f"{source}: {where} {key!r} lists a value twice: {values!r}")


def _check_seeds(seeds: Any, source: str, where: str) -> list[int]:
    if (not isinstance(seeds, list) or not seeds
            or any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds)):
        raise SpikegradError(f"{source}: {where} must be a non-empty list of integers ≥ 0, got {seeds!r}")
    if len(set(seeds)) != len(seeds):
        raise SpikegradError(f"{source}: {where} lists a seed twice: {seeds!r}")
    return list(seeds)


def load_sweep(path: str | Path, quick: bool = False) -> SweepSpec:
    """Read and validate a sweep file: every grid key, value and point config is checked."""
    raw = read_toml(path)
    return parse_sweep(raw, str(path), quick, default_name=Path(path).stem)


def parse_sweep(raw: Mapping[str, Any], source: str = "sweep", quick: bool = False,
                default_name: str = "sweep") -> SweepSpec:
    raw = dict(raw)
    table = raw.pop("sweep", None)
    if not isinstance(table, Mapping):
        raise SpikegradError(f"{source}: needs a [sweep] table with a grid")
    unknown = sorted(set(table) - set(SWEEP_KEYS))
    if unknown:
        raise SpikegradError(f"{source}: unknown key 'sweep.{unknown[0]}' (known: {', '.join(SWEEP_KEYS)})")
    base_cfg = Config.from_dict(raw, source)  # the train part alone must be valid
    name = table.get("name", default_name)
    if not isinstance(name, str) or not name.strip():
        raise SpikegradError(f"{source}: sweep.name must be a non-empty string")

    grid_raw = table.get("grid", {})
    if not isinstance(grid_raw, Mapping) or not grid_raw:
        raise SpikegradError(f"{source}: sweep.grid must be a table of config keys to lists of values")
    grid = _flatten(grid_raw)
    _check_grid(grid, source, "sweep.grid")
    seeds = _check_seeds(table.get("seeds", [base_cfg.train.seed]), source, "sweep.seeds")

    quick_raw = table.get("quick", {})
    if not isinstance(quick_raw, Mapping):
        raise SpikegradError(f"{source}: sweep.quick must be a table of config keys to values")
    quick_over = _flatten(quick_raw)
    # a grid key (or "seeds") in sweep.quick replaces that value list: --quick shrinks the grid
    quick_grid = {k: quick_over.pop(k) for k in list(quick_over) if k in grid}
    quick_seeds = quick_over.pop("seeds", None)
    for key in quick_over:
        _check_key(key, f"{source}: sweep.quick")
    _check_grid(quick_grid, source, "sweep.quick")
    if quick_seeds is not None:
        quick_seeds = _check_seeds(quick_seeds, source, "sweep.quick.seeds")
    base = merge_nested(raw, nest(quick_over)) if quick else raw
    if quick:
        Config.from_dict(base, f"{source} (--quick)")
        grid = {**grid, **quick_grid}
        seeds = quick_seeds if quick_seeds is not None else seeds

    spec = SweepSpec(name.strip(), json.loads(json.dumps(base)), grid, list(seeds), quick, source)
    spec.points = expand(spec)
    for point in spec.points:  # wrong types or impossible values fail before any work
        point_config(spec, point)
    spec_selection(spec)
    return spec


def point_key(params: Mapping[str, Any], seed: int | None = None) -> str:
    body = dict(params) if seed is None else {**params, "train.seed": seed}
    return json.dumps(body, sort_keys=True)


def expand(spec: SweepSpec) -> list[dict[str, Any]]:
    """Grid product × seeds, in file order: [{"index", "params", "seed", "key", "config"}]."""
    keys = list(spec.grid)
    points = []
    for values in itertools.product(*(spec.grid[k] for k in keys)):
        params = dict(zip(keys, values))
        for seed in spec.seeds:
            points.append({"index": len(points), "params": params, "seed": seed,
                           "key": point_key(params, seed), "config": point_key(params)})
    return points


def point_config(spec: SweepSpec, point: Mapping[str, Any]) -> Config:
    overrides = {**point["params"], "train.seed": point["seed"]}
    return Config.from_dict(merge_nested(spec.base, nest(overrides)), f"{spec.source} point {point['key']}")


# -- storage -----------------------------------------------------------------------------

def default_storage(sweep_dir: str | Path) -> str:
    return f"sqlite:///{Path(sweep_dir).resolve() / DB_NAME}"


def _quiet_optuna():
    optuna = need("optuna", "running a sweep")

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    return optuna


def shown_url(url: str) -> str:
    """The URL with any password masked."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL sqlalchemy understands: show it as given
        return url


def open_storage(url: str, heartbeat: int = 60):
    """An Optuna RDBStorage with heartbeats (grace period 2 × heartbeat seconds)."""
    optuna = _quiet_optuna()
    if heartbeat < 1:
        raise SpikegradError(f"--heartbeat must be ≥ 1 second, got {heartbeat}")
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs = {"connect_args": {"timeout": 120}}
    else:
        kwargs = {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=heartbeat,
                                          grace_period=2 * heartbeat)
    except Exception as err:  # sqlalchemy/driver errors of many kinds
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise SpikegradError(f"cannot open storage {shown_url(url)}: {first}") from None


@contextlib.contextmanager
def _lock(sweep_dir: Path):
    """Exclusive lock among the processes of this machine (guards enqueueing and claiming:
    SQLite's read-then-write in Optuna is not atomic across processes)."""
    import fcntl

    sweep_dir.mkdir(parents=True, exist_ok=True)
    with open(sweep_dir / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _states():
    from optuna.trial import TrialState

    return TrialState


def ensure_enqueued(study, spec: SweepSpec, retry_errors: bool = False) -> int:
    """Enqueue every point no live or finished trial stands for; return how many.

    A point is covered by a WAITING, RUNNING or COMPLETE trial, and — unless
    ``retry_errors`` — by a trial that failed with an error.  Stale trials (failed by
    the heartbeat check) and duplicates never cover their point.
    """
    S = _states()
    covered = set()
    for t in study.get_trials(deepcopy=False):
        key = t.user_attrs.get("point")
        if key is None or t.user_attrs.get("duplicate_of") is not None:
            continue
        if t.state in (S.WAITING, S.RUNNING, S.COMPLETE):
            covered.add(key)
        elif t.state == S.FAIL and "error" in t.user_attrs and not retry_errors:
            covered.add(key)
    added = 0
    for point in spec.points:
        if point["key"] in covered:
            continue
        study.enqueue_trial({}, user_attrs={"point": point["key"], "config": point["config"],
                                            "params": json.dumps(point["params"], sort_keys=True),
                                            "seed": point["seed"], "index": point["index"]})
        added += 1
    return added


def claim_next(study):
    """Claim the lowest-numbered WAITING trial (state → RUNNING) and beat its heartbeat once."""
    S = _states()
    storage = storage_of(study)
    for t in sorted(study.get_trials(deepcopy=False, states=(S.WAITING,)), key=lambda t: t.number):
        tid = trial_id(study, t)
        if storage.set_trial_state_values(tid, state=S.RUNNING):
            storage.record_heartbeat(tid)
            return storage.get_trial(tid)
    return None


def _duplicate_of(study, trial) -> int | None:
    """Number of another trial that stands for the same point, if this one must yield."""
    S = _states()
    key = trial.user_attrs.get("point")
    for t in study.get_trials(deepcopy=False):
        if t.number == trial.number or t.user_attrs.get("point") != key or t.user_attrs.get("duplicate_of") is not None:
            continue
        if t.state == S.COMPLETE or (t.state in (S.RUNNING, S.WAITING) and t.number < trial.number):
            return t.number
    return None


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


def create_or_join(spec: SweepSpec, sweep_dir: str | Path, storage: str | None = None, resume: bool = False,
                   heartbeat: int = 60):
    """Create the study and enqueue every point once, or (``resume``) join an existing one.

    Returns (study, storage URL).  An existing sweep without ``resume`` is refused; an
    existing sweep with a different definition always is.  With ``resume``, points whose
    trials failed with an error are enqueued again.
    """
    optuna = _quiet_optuna()
    sweep_dir = Path(sweep_dir)
    url = storage or default_storage(sweep_dir)
    sweep_dir.mkdir(parents=True, exist_ok=True)
    store = open_storage(url, heartbeat)
    with _lock(sweep_dir):
        direction = spec_selection(spec).direction
        study = optuna.create_study(study_name=spec.name, storage=store, direction=direction, load_if_exists=True)
        stored = study.user_attrs.get(SPEC_ATTR)
        if stored is None:
            study.set_user_attr(SPEC_ATTR, spec.to_json())
            ensure_enqueued(study, spec)
            study.set_user_attr("enqueued", True)
        else:
            if stored != spec.to_json():
                raise SpikegradError(f"sweep {spec.name!r} in {shown_url(url)} was started with a different "
                                     f"definition (grid, seeds, train tables or --quick); use another name or --out")
            if not resume:
                raise SpikegradError(f"sweep {spec.name!r} already exists in {shown_url(url)}; "
                                     f"pass --resume to continue it or to join it from another machine")
            from optuna.storages import fail_stale_trials

            fail_stale_trials(study)
            ensure_enqueued(study, spec, retry_errors=True)
    return study, url


def load_study(sweep_dir: str | Path, storage: str | None = None, name: str | None = None, heartbeat: int = 60):
    """The sweep's study and its spec (a storage holding several sweeps needs ``name``)."""
    optuna = _quiet_optuna()
    url = storage or default_storage(sweep_dir)
    if storage is None and not (Path(sweep_dir) / DB_NAME).is_file():
        raise SpikegradError(f"{sweep_dir} holds no sweep ({DB_NAME} missing); pass --storage for a shared one")
    store = open_storage(url, heartbeat)
    names = [s.study_name for s in optuna.get_all_study_summaries(store, include_best_trial=False)]
    if name is None:
        if len(names) != 1:
            raise SpikegradError(f"{shown_url(url)} holds {len(names)} studies ({', '.join(names) or 'none'}); "
                                 f"name one with --study")
        name = names[0]
    if name not in names:
        raise SpikegradError(f"no sweep {name!r} in {shown_url(url)} (found: {', '.join(names) or 'none'})")
    study = optuna.load_study(study_name=name, storage=store)
    stored = study.user_attrs.get(SPEC_ATTR)
    if stored is None:
        raise SpikegradError(f"study {name!r} in {shown_url(url)} is not a spikegrad sweep")
    return study, SweepSpec.from_json(stored)


# -- workers -----------------------------------------------------------------------------

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
    from . import training

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


def summary(study) -> dict[str, Any]:
    """Counts over the sweep's points: complete, diverged, failed, pending."""
    S = _states()
    spec = SweepSpec.from_json(study.user_attrs[SPEC_ATTR])
    rows = trial_rows(study)
    done = {r["point"] for r in rows}
    failed = {t.user_attrs.get("point") for t in study.get_trials(deepcopy=False, states=(S.FAIL,))
              if "error" in t.user_attrs} - done
    return {"points": len(spec.points), "complete": len(done), "diverged": sum(r["diverged"] for r in rows),
            "failed": len(failed), "pending": len(spec.points) - len(done) - len(failed)}


# -- selection tables ---------------------------------------------------------------------

def trial_rows(study) -> list[dict[str, Any]]:
    """One row per finished point (the lowest-numbered COMPLETE trial of each)."""
    S = _states()
    rows, seen = [], set()
    for t in sorted(study.get_trials(deepcopy=False, states=(S.COMPLETE,)), key=lambda t: t.number):
        key = t.user_attrs.get("point")
        if key is None or key in seen:
            continue
        seen.add(key)
        row = {"trial": t.number, "point": key, "params": json.loads(t.user_attrs["params"]),
               "seed": t.user_attrs["seed"], "diverged": bool(t.user_attrs.get("diverged", False))}
        for metric, value in t.user_attrs.items():
            if _is_metric(metric) and metric != "diverged":
                row[metric] = value
        rows.append(row)
    return rows


def _is_metric(key: str) -> bool:
    return key in METRIC_ATTRS or key.startswith(METRIC_PREFIXES)


def row_selection(row: Mapping[str, Any]):
    """The selection a trial's metrics name (``selection``: metric and direction); rows
    written before losses named theirs: validation accuracy, higher is better."""
    from .losses import Selection

    sel = row.get("selection")
    if isinstance(sel, Mapping) and isinstance(sel.get("metric"), str):
        return Selection(sel["metric"], bool(sel.get("higher_is_better", True)))
    return Selection("val_accuracy", True)


def spec_selection(spec: "SweepSpec"):
    """The selection of the loss the sweep's points train with (the first point's; the loss
    and its direction must be the same for all, or the ranking would mean nothing)."""
    from .losses import Selection, make_loss

    found = set()
    for point in spec.points:
        sel = make_loss(point_config(spec, point)).selection
        found.add((sel.metric, sel.higher_is_better))
    if len(found) > 1:
        raise SpikegradError(f"sweep {spec.name!r}: its points select by different metrics {sorted(found)}; "
                             f"one sweep ranks by one metric (do not put train.loss in the grid)")
    metric, higher = found.pop()
    return Selection(f"val_{metric}", higher)


def rank_configs(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Grid points (seeds pooled), best mean of the selection metric first (validation
    accuracy by default; ties: file order).  ``val_*`` and ``test_*`` of each entry are that
    metric on the validation and test splits; ``metric`` names it."""
    rows = list(rows)
    select = row_selection(rows[0]) if rows else row_selection({})
    val_key = select.metric
    test_key = "test_" + val_key.removeprefix("val_")
    sign = -1.0 if select.higher_is_better else 1.0
    configs: dict[str, dict[str, Any]] = {}
    for row in rows:
        key = point_key(row["params"])
        c = configs.setdefault(key, {"params": dict(row["params"]), "seeds": [], "val": [], "test": [],
                                     "diverged": 0})
        c["seeds"].append(row["seed"])
        c["val"].append(row[val_key])
        c["test"].append(row[test_key])
        c["diverged"] += bool(row.get("diverged", False))
    out = []
    for c in configs.values():
        val_mean, val_sd = _mean_sd(c["val"])
        test_mean, test_sd = _mean_sd(c["test"])
        out.append({"params": c["params"], "n_seeds": len(c["seeds"]), "seeds": sorted(c["seeds"]),
                    "val_mean": val_mean, "val_sd": val_sd, "test_mean": test_mean, "test_sd": test_sd,
                    "diverged": c["diverged"], "metric": val_key.removeprefix("val_"),
                    "higher_is_better": select.higher_is_better})
    order = sorted(range(len(out)), key=lambda i: (sign * out[i]["val_mean"], i))
    ranked = [out[i] for i in order]
    for rank, c in enumerate(ranked, 1):
        c["rank"] = rank
    return ranked


def top_k_table(rows: Iterable[Mapping[str, Any]], group: Sequence[str] = (), top_k: int = 5,
                grid_keys: Sequence[str] | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(ranked configurations with their group, per-group summary of the top k).

    Within each group (the values of the ``group`` grid keys), configurations are ranked
    by mean validation accuracy over their seeds; the summary gives mean ± sd (sample sd,
    n − 1) over the top k configurations' mean test accuracies.
    """
    if top_k < 1:
        raise SpikegradError(f"--top-k must be ≥ 1, got {top_k}")
    rows = list(rows)
    if grid_keys is not None:
        for key in group:
            if key not in grid_keys:
                raise SpikegradError(f"--group {key!r} is not a grid key of this sweep "
                                     f"(grid keys: {', '.join(grid_keys)})")
    ranked = rank_configs(rows)
    groups: dict[str, list[dict[str, Any]]] = {}
    for c in ranked:
        missing = [k for k in group if k not in c["params"]]
        if missing:
            raise SpikegradError(f"--group {missing[0]!r} is not a grid key of this sweep")
        c["group"] = {k: c["params"][k] for k in group}
        groups.setdefault(point_key(c["group"]), []).append(c)
    summary_rows = []
    for members in groups.values():
        top = members[:top_k]
        test_mean, test_sd = _mean_sd([c["test_mean"] for c in top])
        val_mean, val_sd = _mean_sd([c["val_mean"] for c in top])
        summary_rows.append({"group": top[0]["group"], "k": len(top), "configs": len(members),
                             "test_mean": test_mean, "test_sd": test_sd, "val_mean": val_mean, "val_sd": val_sd,
                             "best_params": top[0]["params"], "best_val": top[0]["val_mean"],
                             "best_test": top[0]["test_mean"], "diverged": sum(c["diverged"] for c in top)})
    sign = -1.0 if not ranked or ranked[0]["higher_is_better"] else 1.0
    summary_rows.sort(key=lambda s: sign * s["test_mean"] if math.isfinite(s["test_mean"]) else math.inf)
    return ranked, summary_rows


def write_tables(sweep_dir: str | Path, ranked: list[dict[str, Any]], summary_rows: list[dict[str, Any]],
                 group: Sequence[str], top_k: int) -> tuple[Path, Path]:
    """``configs.csv`` (every configuration, ranked) and ``top<k>.csv`` (per group) in SWEEP_DIR."""
    sweep_dir = Path(sweep_dir)
    params = list(ranked[0]["params"]) if ranked else []
    configs_path = sweep_dir / "configs.csv"
    with configs_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", *params, "n_seeds", "val_mean", "val_sd", "test_mean", "test_sd", "diverged"])
        for c in ranked:
            w.writerow([c["rank"], *(_cell(c["params"][p]) for p in params), c["n_seeds"], _cell(c["val_mean"]),
                        _cell(c["val_sd"]), _cell(c["test_mean"]), _cell(c["test_sd"]), c["diverged"]])
    top_path = sweep_dir / f"top{top_k}.csv"
    with top_path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([*group, "k", "configs", "test_mean", "test_sd", "val_mean", "val_sd", "best_config",
                    "best_val", "best_test", "diverged"])
        for s in summary_rows:
            w.writerow([*(_cell(s["group"][g]) for g in group), s["k"], s["configs"], _cell(s["test_mean"]),
                        _cell(s["test_sd"]), _cell(s["val_mean"]), _cell(s["val_sd"]),
                        point_key(s["best_params"]), _cell(s["best_val"]), _cell(s["best_test"]), s["diverged"]])
    return configs_path, top_path


def sweep_table(sweep_dir: str | Path, group: Sequence[str] = (), top_k: int = 5, storage: str | None = None,
                name: str | None = None) -> dict[str, Any]:
    """Rank a sweep's configurations, summarise the top k per group, write the CSV files."""
    study, spec = load_study(sweep_dir, storage, name)
    rows = trial_rows(study)
    if not rows:
        raise SpikegradError(f"sweep {spec.name!r} has no finished trials yet")
    ranked, summary_rows = top_k_table(rows, group, top_k, grid_keys=list(spec.grid))
    paths = write_tables(sweep_dir, ranked, summary_rows, group, top_k)
    return {"spec": spec, "ranked": ranked, "summary": summary_rows, "paths": paths,
            "counts": summary(study)}
