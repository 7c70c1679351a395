"""Run folders and configs written by earlier versions keep working (issue 17): the fixtures
in tests/fixtures/run-format-2026-12/ were written by the code of 2026-12-01 (a finished
tiny run, the same run killed after its first epoch, the full config schema); they must
load, evaluate to their recorded numbers and resume to the finished run's metrics."""

import json
import shutil
import tomllib
from pathlib import Path

from spikegrad import evaluate_run, load_config, resume
from spikegrad.cli import main
from spikegrad.training import load_run

FIXTURES = Path(__file__).parent / "fixtures" / "run-format-2026-12"


def _copy(tmp_path, name):
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def test_a_finished_old_run_evaluates_to_its_recorded_metrics(tmp_path):
    run = _copy(tmp_path, "finished")
    recorded = json.loads((run / "metrics.json").read_text())
    again = evaluate_run(run)
    assert again["test_accuracy"] == recorded["test_accuracy"]
    assert again["val_accuracy"] == recorded["val_accuracy"]
    assert again["test_loss"] == recorded["test_loss"]
    assert again["hidden_spikes_per_sample"] == recorded["hidden_spikes_per_sample"]
    cfg, model, _ = load_run(run)
    assert cfg.model.hidden == [8] and sum(p.numel() for p in model.parameters()) == 20 * 8 + 8 * 3
    assert main(["activity", str(run), "--out", str(tmp_path / "a.png")]) == 0 and (tmp_path / "a.png").is_file()


def test_a_killed_old_run_resumes_to_the_finished_runs_metrics(tmp_path):
    run = _copy(tmp_path, "interrupted")
    metrics = resume(run)
    recorded = json.loads((FIXTURES / "finished" / "metrics.json").read_text())
    drop = lambda m: {k: v for k, v in m.items() if k != "wall_seconds"}  # noqa: E731
    assert drop(metrics) == drop(recorded)


def test_an_old_config_loads_with_every_value_it_names():
    path = FIXTURES / "config-schema.toml"
    raw = tomllib.loads(path.read_text())
    cfg = load_config(path).to_dict()

    def check(node, loaded, where):
        for key, value in node.items():
            assert key in loaded, f"{where}{key} was dropped"
            if isinstance(value, dict):
                check(value, loaded[key], f"{where}{key}.")
            else:
                assert loaded[key] == value, f"{where}{key}: {loaded[key]!r} != {value!r}"

    check(raw, cfg, "")
