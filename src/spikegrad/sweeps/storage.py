"""A sweep's Optuna study: storage URLs, locking, enqueueing every point once, claiming
WAITING trials, creating or joining a study."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any

from .._optional import need
from .._optuna import storage_of, trial_id
from ..errors import SpikegradError
from .spec import SweepSpec, spec_selection


SPEC_ATTR = "spikegrad_sweep"
DB_NAME = "study.db"

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
