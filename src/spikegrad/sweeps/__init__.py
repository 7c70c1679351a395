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
The package: :mod:`.spec` (the sweep file, points, ranking metric), :mod:`.storage` (the
Optuna study: storage, locking, enqueueing, claiming), :mod:`.runner` (workers, heartbeats,
take-overs), :mod:`.tables` (ranking tables, CSV).  See docs/SWEEPS.md.
"""

from .runner import Say, run_sweep, run_trial, work
from .spec import (METRIC_ATTRS, METRIC_PREFIXES, SWEEP_KEYS, SweepSpec, expand, load_sweep, parse_sweep,
                   point_config, point_key, row_selection, spec_selection)
from .storage import (DB_NAME, SPEC_ATTR, claim_next, create_or_join, default_storage, ensure_enqueued, load_study,
                      open_storage, shown_url)
from .tables import rank_configs, summary, sweep_table, top_k_table, trial_rows, write_tables

__all__ = ["DB_NAME", "METRIC_ATTRS", "METRIC_PREFIXES", "SPEC_ATTR", "SWEEP_KEYS", "Say", "SweepSpec",
           "claim_next", "create_or_join", "default_storage", "ensure_enqueued", "expand", "load_study",
           "load_sweep", "open_storage", "parse_sweep", "point_config", "point_key", "rank_configs", "row_selection",
           "run_sweep", "run_trial", "shown_url", "spec_selection", "summary", "sweep_table", "top_k_table",
           "trial_rows", "work", "write_tables"]
