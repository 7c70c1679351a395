"""Grid sweeps on Optuna: expansion and validation, sqlite, concurrent and killed workers,
diverged trials, top-k tables, and (when available) a shared PostgreSQL storage."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import spikegrad.training as training
from spikegrad import SpikegradError
from spikegrad import sweeps
from spikegrad.cli import main

BASE = {
    "data": {"randman": {"classes": 2, "train_per_class": 10, "val_per_class": 4, "test_per_class": 4,
                         "terms": 20}},
    "model": {"hidden": [8]},
    "train": {"epochs": 1, "threads": 1},
}


def raw_sweep(grid=None, seeds=(0, 1), name="tiny", **sweep_extra):
    grid = grid if grid is not None else {"model.beta": [1.0, 10.0]}
    return {**BASE, "sweep": {"name": name, "grid": grid, "seeds": list(seeds), **sweep_extra}}


def write_sweep(path: Path, raw: dict) -> Path:
    import tomli_w

    path.write_text(tomli_w.dumps(raw))
    return path


def complete_trials(study):
    from optuna.trial import TrialState

    return [t for t in study.get_trials() if t.state == TrialState.COMPLETE]


def assert_each_point_once(study, spec):
    done = [t.user_attrs["point"] for t in complete_trials(study)]
    assert sorted(done) == sorted(p["key"] for p in spec.points)


# -- the sweep file -----------------------------------------------------------------------

def test_grid_expands_to_product_times_seeds():
    spec = sweeps.parse_sweep(raw_sweep({"model.beta": [1.0, 10.0], "train.lr": [1e-3, 2e-3, 4e-3]}, seeds=[0, 1]))
    assert len(spec.points) == 2 * 3 * 2
    assert spec.points[0]["params"] == {"model.beta": 1.0, "train.lr": 1e-3} and spec.points[0]["seed"] == 0
    assert spec.points[1]["params"] == {"model.beta": 1.0, "train.lr": 1e-3} and spec.points[1]["seed"] == 1
    assert len({p["key"] for p in spec.points}) == 12 and len({p["config"] for p in spec.points}) == 6
    cfg = sweeps.point_config(spec, spec.points[-1])
    assert (cfg.model.beta, cfg.train.lr, cfg.train.seed, cfg.model.hidden) == (10.0, 4e-3, 1, [8])
    # nested tables mean the same as dotted keys; list-valued fields take lists of lists
    nested = sweeps.parse_sweep(raw_sweep({"model": {"beta": [1.0, 10.0]}, "model.hidden": [[8], [8, 4]]}))
    assert len(nested.points) == 2 * 2 * 2
    assert sweeps.point_config(nested, nested.points[-1]).model.hidden == [8, 4]
    quick = sweeps.parse_sweep(raw_sweep(quick={"train.epochs": 3}), quick=True)
    assert sweeps.point_config(quick, quick.points[0]).train.epochs == 3
    assert sweeps.point_config(sweeps.parse_sweep(raw_sweep(quick={"train.epochs": 3})),
                               quick.points[0]).train.epochs == 1


@pytest.mark.parametrize("change, needle", [
    ({"grid": {"model.bogus": [1]}}, "'model.bogus'"),
    ({"grid": {"model": [1]}}, "is a table"),
    ({"grid": {"model.beta": 5.0}}, "non-empty list"),
    ({"grid": {"model.beta": []}}, "non-empty list"),
    ({"grid": {"train.seed": [0, 1]}}, "sweep.seeds"),
    ({"grid": {"model.beta": ["steep"]}}, "model.beta"),
    ({"grid": {"model.tau_mem_ms": [10.0, -1.0]}}, "tau_mem_ms"),
    ({"grid": {}}, "sweep.grid"),
    ({"seeds": [0, -1]}, "sweep.seeds"),
    ({"quick": {"train.epoch": 2}}, "'train.epoch'"),
    ({"grids": {}}, "sweep.grids"),
])
def test_bad_sweep_tables_fail_with_one_line(change, needle):
    raw = raw_sweep()
    raw["sweep"].update(change)
    with pytest.raises(SpikegradError, match=None) as info:
        sweeps.parse_sweep(raw, "s.toml")
    message = str(info.value)
    assert needle in message and "\n" not in message


def test_sweep_command_reports_a_bad_grid_key_on_one_line(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.toml", raw_sweep({"model.betta": [1.0]}))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("spikegrad: error:") and "model.betta" in err[0]
    assert not (tmp_path / "out").exists()
    del_sweep = raw_sweep()
    del del_sweep["sweep"]
    assert main(["sweep", str(write_sweep(tmp_path / "n.toml", del_sweep)), "--out", str(tmp_path / "o")]) == 2
    assert "[sweep]" in capsys.readouterr().err


# -- running sweeps -----------------------------------------------------------------------

def test_sqlite_sweep_completes_every_point_and_refuses_a_second_start(tmp_path, capsys):
    spec = sweeps.parse_sweep(raw_sweep())
    out = tmp_path / "sweep"
    counts = sweeps.run_sweep(spec, out)
    assert counts == {"points": 4, "complete": 4, "diverged": 0, "failed": 0, "pending": 0}
    study, stored = sweeps.load_study(out)
    assert stored.to_json() == spec.to_json()
    assert_each_point_once(study, spec)
    for t in complete_trials(study):
        metrics = json.loads((out / "trials" / str(t.number) / "metrics.json").read_text())
        assert t.value == metrics["val_accuracy"] == t.user_attrs["val_accuracy"]
        assert t.user_attrs["test_accuracy"] == metrics["test_accuracy"]
        assert t.user_attrs["run_dir"] == f"trials/{t.number}"
    with pytest.raises(SpikegradError, match="--resume"):
        sweeps.run_sweep(spec, out)
    with pytest.raises(SpikegradError, match="different definition"):
        sweeps.run_sweep(sweeps.parse_sweep(raw_sweep(seeds=[0, 1, 2])), out, resume=True)
    # resuming a finished sweep trains nothing
    before = len(study.get_trials())
    assert sweeps.run_sweep(spec, out, resume=True)["complete"] == 4
    assert len(study.get_trials()) == before
    # the table command reads the same storage
    capsys.readouterr()
    assert main(["sweep-table", str(out), "--group", "model.beta", "--top-k", "1"]) == 0
    assert "model.beta" in capsys.readouterr().out
    assert (out / "configs.csv").read_text().count("\n") == 1 + 2
    assert (out / "top1.csv").read_text().count("\n") == 1 + 2
    assert main(["sweep-table", str(out), "--group", "model.surrogate"]) == 2
    assert "not a grid key" in capsys.readouterr().err


def test_two_worker_processes_run_every_point_exactly_once(tmp_path, capsys):
    path = write_sweep(tmp_path / "s.toml", raw_sweep({"model.beta": [1.0, 5.0, 10.0]}))
    out = tmp_path / "sweep"
    assert main(["sweep", str(path), "--out", str(out), "--workers", "2"]) == 0
    study, spec = sweeps.load_study(out)
    assert len(spec.points) == 6
    assert_each_point_once(study, spec)
    assert len(study.get_trials()) == 6  # nothing duplicated, nothing failed
    assert sorted(p.name for p in (out / "trials").iterdir()) == sorted(str(t.number) for t in study.get_trials())
    assert len({t.user_attrs["pid"] for t in study.get_trials()}) >= 1


SLOW_WORKER = textwrap.dedent("""
    import sys, time
    import spikegrad.training as training
    real = training._save_checkpoint
    def slow(path, state):
        real(path, state)
        time.sleep(0.4)
    training._save_checkpoint = slow
    from spikegrad.cli import main
    sys.exit(main(sys.argv[1:]))
""")


def test_sigkilled_worker_then_resume_finishes_without_redoing_trials(tmp_path):
    raw = raw_sweep({"model.beta": [1.0, 10.0]}, seeds=[0, 1, 2])
    raw["train"] = {**raw["train"], "epochs": 3}
    path = write_sweep(tmp_path / "s.toml", raw)
    out = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-c", SLOW_WORKER, "sweep", str(path), "--out", str(out),
                             "--heartbeat", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    finished = []
    while proc.poll() is None and time.monotonic() < deadline:
        finished = list(out.glob("trials/*/metrics.json"))
        # one trial done and the next one past its first checkpoint: kill mid-trial
        if finished and len(list(out.glob("trials/*/checkpoint.pt"))) > len(finished):
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = {p.parent.name: (p.stat().st_mtime_ns, p.read_text()) for p in out.glob("trials/*/metrics.json")}
    assert 1 <= len(finished) < 6, "the kill did not land mid-sweep"
    study, spec = sweeps.load_study(out)
    from optuna.trial import TrialState
    assert [t.number for t in study.get_trials(states=(TrialState.RUNNING,))]  # left behind by the dead worker

    counts = sweeps.run_sweep(spec, out, resume=True, heartbeat=1)
    assert counts["complete"] == 6 and counts["pending"] == 0
    study, _ = sweeps.load_study(out)
    assert_each_point_once(study, spec)
    for name, (mtime, text) in finished.items():  # finished trials were not trained again
        metrics = out / "trials" / name / "metrics.json"
        assert metrics.stat().st_mtime_ns == mtime and metrics.read_text() == text
    # exactly one run folder per point: the dead trial's folder was taken over and resumed
    folders = [p for p in (out / "trials").iterdir() if (p / "config.toml").exists()]
    assert len(folders) == 6 and all((p / "metrics.json").exists() for p in folders)
    taken = [t for t in complete_trials(study) if "resumed_from" in t.user_attrs]
    assert len(taken) == 1
    rows = (out / "trials" / str(taken[0].number) / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(r)["epoch"] for r in rows] == [1, 2, 3]


def test_a_diverging_trial_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = training.loss_and_record

    def nan_for_beta_1(model, x, y, cfg, *rest):
        loss, logits, rec = real(model, x, y, cfg, *rest)
        if cfg.model.beta == 1.0 and cfg.train.seed == 1 and model.training:
            loss = loss * float("nan")
        return loss, logits, rec

    monkeypatch.setattr(training, "loss_and_record", nan_for_beta_1)
    spec = sweeps.parse_sweep(raw_sweep())
    counts = sweeps.run_sweep(spec, tmp_path / "sweep")
    assert counts == {"points": 4, "complete": 4, "diverged": 1, "failed": 0, "pending": 0}
    study, _ = sweeps.load_study(tmp_path / "sweep")
    diverged = [t for t in complete_trials(study) if t.user_attrs["diverged"]]
    assert len(diverged) == 1 and diverged[0].user_attrs["seed"] == 1
    assert diverged[0].user_attrs["epochs"] == 0 and math.isfinite(diverged[0].value)
    ranked, _ = sweeps.top_k_table(sweeps.trial_rows(study))
    assert sum(c["diverged"] for c in ranked) == 1


def test_a_failing_trial_is_recorded_and_rerun_on_resume(tmp_path, monkeypatch):
    real = training.train

    def broken(cfg, out_dir=None, **kw):
        if cfg.model.beta == 10.0 and cfg.train.seed == 0:
            raise RuntimeError("disk on fire")
        return real(cfg, out_dir, **kw)

    monkeypatch.setattr(training, "train", broken)
    spec = sweeps.parse_sweep(raw_sweep())
    counts = sweeps.run_sweep(spec, tmp_path / "sweep")
    assert counts == {"points": 4, "complete": 3, "diverged": 0, "failed": 1, "pending": 0}
    monkeypatch.setattr(training, "train", real)
    assert sweeps.run_sweep(spec, tmp_path / "sweep", resume=True)["complete"] == 4


# -- selection tables ---------------------------------------------------------------------

def test_top_k_statistics_on_a_hand_made_table():
    rows = []
    # (surrogate, lr) → (val, test) for seeds 0 and 1
    table = {
        ("a", 1): [(0.90, 0.80), (0.80, 0.70)],   # val mean 0.85, test mean 0.75
        ("a", 2): [(0.70, 0.60), (0.70, 0.60)],   # val 0.70, test 0.60
        ("a", 3): [(0.95, 0.90), (0.85, 0.90)],   # val 0.90, test 0.90
        ("b", 1): [(0.60, 0.50), (0.60, 0.30)],   # val 0.60, test 0.40
        ("b", 2): [(0.65, 0.55), (0.65, 0.65)],   # val 0.65, test 0.60
    }
    for (sur, lr), results in table.items():
        for seed, (val, test) in enumerate(results):
            rows.append({"params": {"model.surrogate": sur, "train.lr": lr}, "seed": seed,
                         "val_accuracy": val, "test_accuracy": test, "diverged": False})
    ranked, summary = sweeps.top_k_table(rows, ["model.surrogate"], top_k=2,
                                         grid_keys=["model.surrogate", "train.lr"])
    assert [(c["params"]["model.surrogate"], c["params"]["train.lr"]) for c in ranked] == \
        [("a", 3), ("a", 1), ("a", 2), ("b", 2), ("b", 1)]
    assert ranked[0]["val_mean"] == pytest.approx(0.90) and ranked[0]["test_sd"] == pytest.approx(0.0)
    assert ranked[1]["test_sd"] == pytest.approx(math.sqrt(0.005))
    a, b = summary
    assert a["group"] == {"model.surrogate": "a"} and a["k"] == 2 and a["configs"] == 3
    assert a["test_mean"] == pytest.approx(0.825)                      # mean of 0.90 and 0.75
    assert a["test_sd"] == pytest.approx(math.sqrt(2 * 0.075 ** 2))    # sample sd, n − 1
    assert b["test_mean"] == pytest.approx(0.50) and b["test_sd"] == pytest.approx(math.sqrt(0.02))
    assert b["best_params"] == {"model.surrogate": "b", "train.lr": 2}
    _, single = sweeps.top_k_table(rows, [], top_k=1)
    assert single[0]["test_mean"] == pytest.approx(0.90) and math.isnan(single[0]["test_sd"])
    with pytest.raises(SpikegradError, match="not a grid key"):
        sweeps.top_k_table(rows, ["model.beta"], grid_keys=["model.surrogate", "train.lr"])
    with pytest.raises(SpikegradError, match="top-k"):
        sweeps.top_k_table(rows, [], top_k=0)


# -- PostgreSQL ---------------------------------------------------------------------------

def test_postgres_storage_shared_by_two_workers(tmp_path):
    url = os.environ.get("SPIKEGRAD_TEST_POSTGRES_URL")
    required = os.environ.get("SPIKEGRAD_REQUIRE_POSTGRES") == "1"
    if not url:
        if required:
            pytest.fail("SPIKEGRAD_REQUIRE_POSTGRES=1 but SPIKEGRAD_TEST_POSTGRES_URL is not set")
        pytest.skip("SPIKEGRAD_TEST_POSTGRES_URL not set")
    # psycopg connects through libpq, not Python's socket module: the test guard does not apply
    try:
        sweeps.open_storage(url)
    except SpikegradError as err:
        if required:
            pytest.fail(f"PostgreSQL required but unreachable: {err}")
        pytest.skip(f"PostgreSQL unreachable: {err}")
    name = f"pgtest-{os.getpid()}-{time.time_ns()}"
    path = write_sweep(tmp_path / "s.toml", raw_sweep({"model.beta": [1.0, 5.0, 10.0]}, name=name))
    assert main(["sweep", str(path), "--out", str(tmp_path / "a"), "--storage", url, "--workers", "2"]) == 0
    study, spec = sweeps.load_study(tmp_path / "a", url, name)
    assert_each_point_once(study, spec)
    assert len(study.get_trials()) == 6
    # a second machine joins with --resume and finds nothing left to do
    assert main(["sweep", str(path), "--out", str(tmp_path / "b"), "--storage", url, "--resume"]) == 0
    assert len(study.get_trials()) == 6
    assert main(["sweep-table", str(tmp_path / "a"), "--storage", url, "--study", name]) == 0



def test_a_sweep_in_which_every_trial_failed_exits_non_zero(tmp_path, monkeypatch, capsys):
    def broken(cfg, out_dir=None, **kw):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(training, "train", broken)
    path = write_sweep(tmp_path / "s.toml", raw_sweep(seeds=(0,)))
    assert main(["sweep", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no trial of sweep 'tiny' succeeded (2 of 2 points failed" in err


def test_a_sweep_minimises_and_ranks_by_a_lower_is_better_loss_metric(tmp_path):
    from spikegrad.losses import LOSSES, register_loss

    from _parts import ReadoutMSE

    register_loss("test-sweep-mse")(lambda cfg: ReadoutMSE())
    try:
        raw = raw_sweep({"train.lr": [1e-4, 5e-2]}, seeds=(0,), name="mse")
        raw["train"] = {**raw["train"], "loss": "test-sweep-mse", "epochs": 3}
        raw["model"] = {**raw["model"], "init": "fluctuation"}            # a network that spikes
        spec = sweeps.parse_sweep(raw)
        sweeps.run_sweep(spec, tmp_path / "sweep")
        study, _ = sweeps.load_study(tmp_path / "sweep")
        assert study.direction.name == "MINIMIZE"
        rows = sweeps.trial_rows(study)
        assert all(t.values[0] == r["val_mse"] for t, r in zip(complete_trials(study), rows))
        ranked, summary = sweeps.top_k_table(rows, (), top_k=1)
        assert [c["metric"] for c in ranked] == ["mse", "mse"]
        assert ranked[0]["val_mean"] < ranked[1]["val_mean"]            # lower first
        assert summary[0]["best_val"] == ranked[0]["val_mean"]
        raw["sweep"]["grid"]["train.loss"] = ["test-sweep-mse", "cross_entropy"]
        with pytest.raises(SpikegradError, match="select by different metrics"):
            sweeps.parse_sweep(raw)
    finally:
        LOSSES.remove("test-sweep-mse")


def test_the_optuna_adapter_reaches_the_storage_and_the_trial_ids():
    """The one place below Optuna's public Study API (spikegrad/_optuna.py) still works."""
    import optuna

    from spikegrad._optuna import storage_of, trial_id

    study = optuna.create_study(storage=optuna.storages.InMemoryStorage())
    for _ in range(3):
        study.enqueue_trial({})
    trials = study.get_trials(deepcopy=False)
    storage = storage_of(study)
    assert [storage.get_trial(trial_id(study, t)).number for t in trials] == [0, 1, 2]
