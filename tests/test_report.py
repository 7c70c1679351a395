"""`spikegrad report`: one self-contained HTML page per sweep (trials recorded by hand: no training)."""

import base64
import html
import json
import re
import statistics

import pytest

from spikegrad._optuna import storage_of, trial_id
from spikegrad import sweeps
from spikegrad.cli import main
from spikegrad.errors import SpikegradError
from spikegrad.report import build_report, write_report

NAME = "tiny<&>"


def recorded_sweep(tmp_path, finish=True):
    """β × η × 2 seeds, metrics recorded by hand; trial 7 fails with an error."""
    from optuna.trial import TrialState

    raw = {"data": {"name": "randman"}, "train": {"epochs": 1},
           "sweep": {"name": NAME, "grid": {"model.beta": [1.0, 10.0], "train.lr": [1e-3, 1e-2]}, "seeds": [0, 1]}}
    study, _ = sweeps.create_or_join(sweeps.parse_sweep(raw), tmp_path / "sw")
    storage = storage_of(study)
    while finish and (t := sweeps.claim_next(study)) is not None:
        if t.number == 7:
            storage.set_trial_user_attr(trial_id(study, t), "error", "boom <script>")
            storage.set_trial_state_values(trial_id(study, t), state=TrialState.FAIL)
            continue
        params = json.loads(t.user_attrs["params"])
        val = 0.5 + params["model.beta"] / 100 + params["train.lr"] * 10 + t.user_attrs["seed"] / 10
        for key, value in {"val_accuracy": val, "test_accuracy": val - 0.1, "hidden_spikes_per_sample": 50.0,
                           "diverged": t.number == 2}.items():
            storage.set_trial_user_attr(trial_id(study, t), key, value)
        storage.set_trial_state_values(trial_id(study, t), state=TrialState.COMPLETE, values=[val])
    return tmp_path / "sw"


def images(page):
    return re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)


def test_report_holds_config_counts_top_k_table_and_the_figures_that_apply(tmp_path):
    sweep_dir = recorded_sweep(tmp_path)
    result = build_report(sweep_dir, top_k=2)
    page = result["html"]
    assert page.startswith("<!DOCTYPE html>") and "</html>" in page
    # escaped everywhere: the sweep name and the failed trial's error
    assert html.escape(NAME) in page and NAME not in page
    assert "boom &lt;script&gt;" in page and "<script>" not in page
    assert result["counts"] == {"points": 8, "complete": 7, "diverged": 1, "failed": 1, "pending": 0}
    assert "<td>8</td><td>7</td><td>1</td><td>1</td><td>0</td>" in page
    assert "model.beta" in page and "[1.0, 10.0]" in page and "seeds: [0, 1]" in page

    # the top-k row by hand: configurations (β, η) with seeds pooled, top 2 by mean validation accuracy
    configs = {}
    for beta in (1.0, 10.0):
        for lr in (1e-3, 1e-2):
            seeds = [0, 1] if (beta, lr) != (10.0, 1e-2) else [0]  # trial 7 = (10, 1e-2, seed 1) failed
            val = [0.5 + beta / 100 + lr * 10 + s / 10 for s in seeds]
            configs[(beta, lr)] = (statistics.fmean(val), statistics.fmean(v - 0.1 for v in val))
    top = sorted(configs.values(), key=lambda c: -c[0])[:2]
    test_mean = statistics.fmean(t for _, t in top)
    test_sd = statistics.stdev(t for _, t in top)
    assert f"{test_mean:.4f} ± {test_sd:.4f}" in page
    assert "2/4" in page  # k / configurations

    # figures: fig3 and fig9 apply to a β × η sweep with spike counts; the others say why not
    assert result["figures"] == ["fig3", "fig9"]
    shown = images(page)
    assert [name for name, _ in shown] == ["fig3", "fig9"]
    for _, data in shown:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")
    assert page.count('href="data:text/csv;base64,') == 2
    skipped = result["skipped"]
    assert set(skipped) == {"fig2", "fig5", "fig6", "fig8", "landscape"}
    assert skipped["fig2"].startswith("fig2 needs true-gradient trials")
    assert skipped["fig5"].startswith("fig5 needs a sweep over model.surrogate")
    assert "landscape needs config.toml of trial" in skipped["landscape"]
    for reason in skipped.values():
        assert html.escape(reason) in page


def test_report_of_a_sweep_without_finished_trials(tmp_path):
    result = build_report(recorded_sweep(tmp_path, finish=False))
    assert "No finished trials yet." in result["html"]
    assert result["figures"] == [] and not images(result["html"])
    assert all("no finished trials" in reason for reason in result["skipped"].values())
    assert result["counts"]["pending"] == 8


def test_report_command_writes_the_page(tmp_path, capsys):
    sweep_dir = recorded_sweep(tmp_path)
    assert main(["report", str(sweep_dir)]) == 0
    out = capsys.readouterr().out
    assert "report: figures fig3, fig9; 5 not applicable; wrote" in out
    assert (sweep_dir / "report.html").is_file()
    target = tmp_path / "pages" / "r.html"
    assert main(["report", str(sweep_dir), "--out", str(target), "--group", "model.beta", "--top-k", "1"]) == 0
    page = target.read_text(encoding="utf-8")
    assert len(images(page)) == 2
    assert "<th>model.beta</th>" in page


def test_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err.strip()
    assert "study.db missing" in err and "\n" not in err
    sweep_dir = recorded_sweep(tmp_path)
    assert main(["report", str(sweep_dir), "--group", "model.tau_mem_ms"]) == 2
    assert "is not a grid key" in capsys.readouterr().err
    with pytest.raises(SpikegradError, match="unknown figure 'fig4'"):
        write_report(sweep_dir, figures=["fig4"])
    with pytest.raises(SpikegradError, match="--top-k must be ≥ 1"):
        build_report(sweep_dir, top_k=0)
