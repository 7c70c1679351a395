"""The paper's sweep figures (fig3, fig5, fig9): PNGs, the numbers in their CSVs, errors, sweep files."""

import csv
import math
import statistics
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from spikegrad import sweeps
from spikegrad.cli import main
from spikegrad.errors import SpikegradError
from spikegrad.paper_figures import Results, fig3, fig5, fig9, results_table

EXPERIMENTS = Path(__file__).resolve().parents[1] / "experiments"


def row(**kw):
    base = {"trial": 0, "model.surrogate": "superspike", "model.beta": 10.0, "train.lr": 1e-3, "model.hidden": [128],
            "model.recurrent": False, "model.recurrent_grad": "prop", "model.detach_reset": True, "n_hidden": 1,
            "seed": 0, "val_accuracy": 0.5, "test_accuracy": 0.5, "hidden_spikes_per_sample": 100.0,
            "diverged": False}
    base.update(kw)
    return base


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def readable(png):
    image = mpimg.imread(png)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def fig3_results():
    rows, n = [], 0
    rng = np.random.default_rng(0)
    for sur in ("superspike", "esser"):
        for beta in (0.0, 10.0, 100.0):
            for lr in (1e-3, 1e-2):
                for seed in (0, 1):
                    val = float(rng.uniform(0.2, 1.0))
                    rows.append(row(trial=n, **{"model.surrogate": sur, "model.beta": beta, "train.lr": lr},
                                    seed=seed, val_accuracy=val, test_accuracy=val - 0.05))
                    n += 1
    return Results(rows, ["model.surrogate", "model.beta", "train.lr"], "synthetic")


def test_fig3_heatmap_cells_and_top_k_bars(tmp_path):
    res = fig3_results()
    out = fig3(res, tmp_path / "fig3.png", tmp_path / "fig3.csv", top_k=2)
    readable(tmp_path / "fig3.png")
    table = read_csv(tmp_path / "fig3.csv")
    cells = [r for r in table if r["panel"] == "heatmap_val"]
    assert len(cells) == 2 * 3 * 2
    for c in cells:
        mine = [r["val_accuracy"] for r in res.rows if r["model.surrogate"] == c["shape"]
                and r["model.beta"] == float(c["beta"]) and r["train.lr"] == float(c["lr"])]
        assert len(mine) == 2 and int(c["n"]) == 2
        assert float(c["mean"]) == pytest.approx(statistics.fmean(mine), abs=1e-5)
        assert float(c["sd"]) == pytest.approx(statistics.stdev(mine), abs=1e-5)
    hm = out["heatmaps"]["esser"]
    assert hm["betas"] == [0.0, 10.0, 100.0] and hm["lrs"] == [1e-3, 1e-2]

    bars = {b["shape"]: b for b in out["bars"]}
    assert set(bars) == {"superspike", "superspike β=0", "esser", "esser β=0"}
    # by hand: configurations (β, η) of superspike with β > 0, seeds pooled, top 2 by mean val
    configs = {}
    for r in res.rows:
        if r["model.surrogate"] == "superspike" and r["model.beta"] > 0:
            configs.setdefault((r["model.beta"], r["train.lr"]), []).append(r)
    means = sorted(([statistics.fmean(x["val_accuracy"] for x in v), statistics.fmean(x["test_accuracy"] for x in v)]
                    for v in configs.values()), key=lambda m: -m[0])[:2]
    tests = [m[1] for m in means]
    csv_bar = next(r for r in table if r["panel"] == "top2_test" and r["shape"] == "superspike")
    assert float(csv_bar["mean"]) == pytest.approx(statistics.fmean(tests), abs=1e-5)
    assert float(csv_bar["sd"]) == pytest.approx(statistics.stdev(tests), abs=1e-5)
    assert int(csv_bar["n"]) == 2


def test_fig3_true_gradient_and_no_hidden_pool_beta(tmp_path):
    rows = [row(trial=i, **{"model.surrogate": s, "model.beta": b}, val_accuracy=v, test_accuracy=v)
            for i, (s, b, v) in enumerate([("superspike", 10.0, 0.9), ("true", 10.0, 0.2), ("true", 100.0, 0.4)])]
    rows += [row(trial=9, **{"model.hidden": [0]}, n_hidden=0, val_accuracy=0.3, test_accuracy=0.3)]
    out = fig3(Results(rows, ["model.surrogate", "model.beta", "train.lr", "model.hidden"]),
               tmp_path / "f.png", tmp_path / "f.csv")
    assert out["heatmaps"]["true"]["betas"] == [None]
    assert out["heatmaps"]["true"]["mean"][0, 0] == pytest.approx(0.3)
    bars = {b["shape"]: b for b in out["bars"]}
    assert bars["true"]["k"] == 1 and bars["true"]["mean"] == pytest.approx(0.3)  # one config, β pooled
    assert bars["no hidden"]["n_hidden"] == 0


def test_fig5_groups_and_best_configurations(tmp_path):
    rows, n = [], 0
    for sur, detach, rec, rgrad, acc in [("superspike", True, False, "prop", 0.9), ("superspike-asym", True, False, "prop", 0.85),
                                         ("superspike-asym", False, False, "prop", 0.3),
                                         ("superspike-asym", True, True, "prop", 0.1),
                                         ("superspike-asym", True, True, "ctl", 0.8)]:
        for lr, bonus in ((1e-3, 0.0), (1e-2, 0.05)):
            for hidden in ([128], [128, 128]):
                rows.append(row(trial=n, **{"model.surrogate": sur, "model.detach_reset": detach, "model.recurrent": rec,
                                            "model.recurrent_grad": rgrad, "train.lr": lr, "model.hidden": hidden},
                                n_hidden=len(hidden), val_accuracy=acc + bonus, test_accuracy=acc + bonus - 0.01))
                n += 1
    res = Results(rows, ["model.surrogate", "model.detach_reset", "model.recurrent_grad", "train.lr", "model.hidden"])
    out = fig5(res, tmp_path / "fig5.png", tmp_path / "fig5.csv", top_k=1)
    readable(tmp_path / "fig5.png")
    table = read_csv(tmp_path / "fig5.csv")
    got = {(r["panel"], r["group"], r["n_hidden"]): r for r in table}
    assert set(g for _, g, _ in got) == {"sCtl", "aCtl", "aDR", "aProp", "aCtl"}
    assert ("recurrent", "aProp", "1") in got and ("feedforward", "aDR", "2") in got
    best = got[("feedforward", "aDR", "1")]
    assert float(best["mean"]) == pytest.approx(0.3 + 0.05 - 0.01) and float(best["best_lr"]) == 1e-2
    assert float(got[("recurrent", "aCtl", "1")]["mean"]) == pytest.approx(0.84)
    two = fig5(res, tmp_path / "b.png", tmp_path / "b.csv", top_k=2)["bars"]
    sctl = next(b for b in two if b["group"] == "sCtl" and b["n_hidden"] == 1)
    assert sctl["mean"] == pytest.approx(statistics.fmean([0.89, 0.94]))
    assert sctl["sd"] == pytest.approx(statistics.stdev([0.89, 0.94]))


def test_fig9_fit_recovers_the_critical_spike_count(tmp_path):
    rng = np.random.default_rng(1)
    critical, a, b, d = 36.0, 0.1, 0.95, 0.5
    rows = []
    for i, s in enumerate(np.geomspace(1.0, 3000.0, 40)):
        acc = a + (b - a) / (1 + math.exp(-(math.log(s) - math.log(critical)) / d)) + rng.normal(0, 0.01)
        rows.append(row(trial=i, seed=i, hidden_spikes_per_sample=float(s), test_accuracy=float(acc)))
    rows.append(row(trial=99, hidden_spikes_per_sample=0.0, test_accuracy=0.1))  # silent: left out of the log plot
    out = fig9(Results(rows, ["regularizer.upper_strength"]), tmp_path / "fig9.png", tmp_path / "fig9.csv")
    readable(tmp_path / "fig9.png")
    fit = out["fits"]["FF n_h=1"]
    assert fit["critical_spikes"] == pytest.approx(critical, rel=0.10)
    table = read_csv(tmp_path / "fig9.csv")
    fit_row = next(r for r in table if r["kind"] == "fit")
    assert float(fit_row["critical_spikes"]) == pytest.approx(fit["critical_spikes"], rel=1e-5)
    assert float(fit_row["c"]) == pytest.approx(math.log(fit["critical_spikes"]), rel=1e-5)
    points = [r for r in table if r["kind"] == "point"]
    assert len(points) == 40
    assert float(points[3]["test_accuracy"]) == pytest.approx(rows[3]["test_accuracy"], abs=1e-5)


def test_figures_name_what_they_miss(tmp_path):
    with pytest.raises(SpikegradError, match="fig3 needs a sweep over model.beta"):
        fig3(Results([row()], ["train.lr"], "s"), tmp_path / "a.png", tmp_path / "a.csv")
    with pytest.raises(SpikegradError, match="fig9 needs hidden_spikes_per_sample in every trial; trial 4"):
        fig9(Results([row(trial=4, hidden_spikes_per_sample=None)], [], "s"), tmp_path / "a.png", tmp_path / "a.csv")
    with pytest.raises(SpikegradError, match="superspike or superspike-asym"):
        fig5(Results([row(**{"model.surrogate": "esser"})], ["model.surrogate"], "s"),
             tmp_path / "a.png", tmp_path / "a.csv")


# -- from a sweep's storage (trials recorded by hand: no training) ------------------------

def fake_sweep(tmp_path, complete=True):
    raw = {"data": {"name": "randman"}, "train": {"epochs": 1},
           "sweep": {"name": "tiny", "grid": {"model.beta": [1.0, 10.0], "train.lr": [1e-3, 1e-2]}, "seeds": [0, 1]}}
    spec = sweeps.parse_sweep(raw)
    study, _ = sweeps.create_or_join(spec, tmp_path / "sw")
    from optuna.trial import TrialState

    while complete and (t := sweeps.claim_next(study)) is not None:
        params = sweeps.json.loads(t.user_attrs["params"])
        val = 0.5 + params["model.beta"] / 100 + t.user_attrs["seed"] / 10
        for key, value in {"val_accuracy": val, "test_accuracy": val - 0.1, "hidden_spikes_per_sample": 50.0,
                           "diverged": False}.items():
            study._storage.set_trial_user_attr(t._trial_id, key, value)
        study._storage.set_trial_state_values(t._trial_id, state=TrialState.COMPLETE, values=[val])
    return tmp_path / "sw"


def test_results_table_and_figure_command_from_a_sweep(tmp_path, capsys):
    sweep_dir = fake_sweep(tmp_path)
    res = results_table(sweep_dir)
    assert len(res.rows) == 8 and res.swept == ["model.beta", "train.lr"]
    r = res.rows[0]
    assert r["model.surrogate"] == "superspike" and r["model.hidden"] == [128] and r["n_hidden"] == 1
    assert {r["seed"] for r in res.rows} == {0, 1} and r["val_accuracy"] == pytest.approx(0.51)
    assert main(["figure", "fig3", str(sweep_dir), "--out", str(tmp_path / "figs"), "--top-k", "2"]) == 0
    readable(tmp_path / "figs" / "fig3.png")
    cell = next(c for c in read_csv(tmp_path / "figs" / "fig3.csv") if c["panel"] == "heatmap_val"
                and float(c["beta"]) == 10.0 and float(c["lr"]) == 1e-3)
    assert float(cell["mean"]) == pytest.approx(statistics.fmean([0.6, 0.7]))
    assert "fig3: 8 trials" in capsys.readouterr().out


def test_figure_command_one_line_errors(tmp_path, capsys):
    assert main(["figure", "fig4", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "spikegrad: error: unknown figure 'fig4'; available: fig3, fig5, fig9"
    empty = fake_sweep(tmp_path, complete=False)
    assert main(["figure", "fig3", str(empty)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikegrad: error: no finished trials in") and "tiny" in err and "\n" not in err
    assert main(["figure", "fig3", str(tmp_path / "nothing")]) == 2
    assert "study.db missing" in capsys.readouterr().err
    sweep_dir = fake_sweep(tmp_path / "x")
    assert main(["figure", "fig5", str(sweep_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert "fig5 needs a sweep over model.surrogate" in err and "\n" not in err


# -- the ready sweep files -----------------------------------------------------------------

@pytest.mark.parametrize("name, full, quick, quick_epochs", [("fig3", 1512, 36, 12), ("fig5", 720, 32, 10),
                                                             ("fig5_recurrent", 720, 16, 10), ("fig9", 144, 18, 10)])
def test_experiment_sweep_files_validate_and_quick_shrinks_them(name, full, quick, quick_epochs):
    spec = sweeps.load_sweep(EXPERIMENTS / f"{name}.toml")
    small = sweeps.load_sweep(EXPERIMENTS / f"{name}.toml", quick=True)
    assert len(spec.points) == full and len(small.points) == quick < full
    assert math.prod(len(v) for v in spec.grid.values()) * len(spec.seeds) == full
    assert set(small.grid) == set(spec.grid)
    assert sweeps.point_config(small, small.points[0]).train.epochs == quick_epochs
    assert sweeps.point_config(spec, spec.points[0]).train.epochs == 80
    text = (EXPERIMENTS / f"{name}.toml").read_text(encoding="utf-8")
    assert "# --quick:" in text and "min" in text


def test_quick_grid_keys_are_checked():
    raw = {"sweep": {"grid": {"model.beta": [1.0, 10.0]}, "quick": {"model.beta": [], "seeds": [0]}}}
    with pytest.raises(SpikegradError, match="sweep.quick 'model.beta' must be a non-empty list"):
        sweeps.parse_sweep(raw)
    raw["sweep"]["quick"] = {"model.beta": [1.0], "seeds": [-1]}
    with pytest.raises(SpikegradError, match="sweep.quick.seeds must be a non-empty list"):
        sweeps.parse_sweep(raw)
    raw["sweep"]["quick"] = {"model.beta": [1.0], "seeds": [3]}
    assert len(sweeps.parse_sweep(raw).points) == 2
    quick = sweeps.parse_sweep(raw, quick=True)
    assert quick.grid == {"model.beta": [1.0]} and quick.seeds == [3] and len(quick.points) == 1
