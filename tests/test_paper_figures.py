"""The paper's sweep figures (fig3, fig5, fig9): PNGs, the numbers in their CSVs, errors, sweep files."""

import csv
import json
import math
import statistics
from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from spikegrad._optuna import storage_of, trial_id
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
        params = json.loads(t.user_attrs["params"])
        val = 0.5 + params["model.beta"] / 100 + t.user_attrs["seed"] / 10
        for key, value in {"val_accuracy": val, "test_accuracy": val - 0.1, "hidden_spikes_per_sample": 50.0,
                           "diverged": False}.items():
            storage_of(study).set_trial_user_attr(trial_id(study, t), key, value)
        storage_of(study).set_trial_state_values(trial_id(study, t), state=TrialState.COMPLETE, values=[val])
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
    assert err == ("spikegrad: error: unknown figure 'fig4' (did you mean 'fig9'?); "
                   "choose one of: fig2, fig3, fig5, fig6, fig8, fig9, landscape")
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

@pytest.mark.parametrize("name, full, quick, quick_epochs", [("fig3", 1512, 72, 30), ("fig3-randman20", 1512, 72, 30),
                                                             ("fig5", 720, 16, 12),
                                                             ("fig5_recurrent", 720, 16, 12), ("fig9", 144, 18, 12)])
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


def test_fig3_randman20_differs_from_fig3_only_in_classes_and_name():
    a = sweeps.load_sweep(EXPERIMENTS / "fig3.toml", quick=True)
    b = sweeps.load_sweep(EXPERIMENTS / "fig3-randman20.toml", quick=True)
    assert a.grid == b.grid and a.seeds == b.seeds and (a.name, b.name) == ("fig3", "fig3-randman20")
    ca, cb = sweeps.point_config(a, a.points[0]), sweeps.point_config(b, b.points[0])
    assert (ca.data.randman.classes, cb.data.randman.classes) == (10, 20)
    assert ca.with_overrides({"data.randman.classes": 20}).to_toml() == cb.to_toml()


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


@pytest.mark.parametrize("name, full, quick, quick_epochs, full_epochs", [
    ("fig2", 10, 6, 12, 80), ("fig6", 180, 8, 12, None), ("fig8", 36, 4, 12, 80), ("landscape", 1, 1, 12, 80)])
def test_new_experiment_sweep_files(name, full, quick, quick_epochs, full_epochs):
    spec = sweeps.load_sweep(EXPERIMENTS / f"{name}.toml")
    small = sweeps.load_sweep(EXPERIMENTS / f"{name}.toml", quick=True)
    assert len(spec.points) == full and len(small.points) == quick
    assert all(sweeps.point_config(small, p).train.epochs == quick_epochs for p in small.points)
    assert all(sweeps.point_config(small, p).data.name == "randman" for p in small.points)
    if full_epochs is not None:
        assert sweeps.point_config(spec, spec.points[0]).train.epochs == full_epochs
    text = (EXPERIMENTS / f"{name}.toml").read_text(encoding="utf-8")
    assert "# --quick:" in text and "min" in text


# -- fig2, fig6, fig8, landscape ------------------------------------------------------------

TINY_RUN = {"data": {"randman": {"classes": 3, "train_per_class": 40, "val_per_class": 10, "test_per_class": 10,
                                 "terms": 50}},
            # the fluctuation-driven init (as the experiment files use it): the tiny network fires from the start
            "model": {"hidden": [16], "init": "fluctuation", "init_sigma_u": 0.5},
            "train": {"epochs": 2, "batch_size": 30, "lr": 1e-2, "threads": 1}}


@pytest.fixture(scope="module")
def trained_sweep(tmp_path_factory):
    """A real sweep of tiny runs: surrogate {superspike, true} × λ_up {0, 1} × seeds {0, 1}."""
    import os

    root = tmp_path_factory.mktemp("trained")
    old = os.environ.get("SPIKEGRAD_DATA")
    os.environ["SPIKEGRAD_DATA"] = str(root / "cache")
    try:
        raw = {**TINY_RUN, "sweep": {"name": "tiny-trained", "seeds": [0, 1], "grid": {
            "model.surrogate": ["superspike", "true"], "regularizer.upper_strength": [0.0, 1.0]}}}
        sweeps.run_sweep(sweeps.parse_sweep(raw), root / "sw")
    finally:
        if old is None:
            os.environ.pop("SPIKEGRAD_DATA", None)
        else:
            os.environ["SPIKEGRAD_DATA"] = old
    return root / "sw"


def history(run_dir):
    import json

    return [json.loads(line) for line in (Path(run_dir) / "metrics.jsonl").read_text().splitlines()]


def test_fig2_learning_curves_are_mean_sd_over_seeds_of_the_best_configuration(trained_sweep, tmp_path):
    from spikegrad.paper_figures import make_figure

    res = results_table(trained_sweep)
    out = make_figure("fig2", trained_sweep, tmp_path)
    readable(tmp_path / "fig2.png")
    table = read_csv(tmp_path / "fig2.csv")
    for sur in ("superspike", "true"):
        # by hand: the λ_up value with the best mean validation accuracy over both seeds
        by_lam = {}
        for r in res.rows:
            if r["model.surrogate"] == sur:
                by_lam.setdefault(r["regularizer.upper_strength"], []).append(r)
        lam = max(by_lam, key=lambda k: (statistics.fmean(r["val_accuracy"] for r in by_lam[k]), -k))
        trials = by_lam[lam]
        assert sorted(out["numbers"]["chosen"][sur]) == sorted(r["trial"] for r in trials)
        hists = [history(trained_sweep / "trials" / str(r["trial"])) for r in trials]
        for metric in ("train_loss", "val_accuracy"):
            rows = sorted((r for r in table if r["panel"] == "curve" and r["surrogate"] == sur
                           and r["metric"] == metric), key=lambda r: int(r["epoch"]))
            assert [int(r["epoch"]) for r in rows] == [1, 2]
            for r in rows:
                vals = [h[int(r["epoch"]) - 1][metric] for h in hists]
                assert int(r["n"]) == 2
                assert float(r["mean"]) == pytest.approx(statistics.fmean(vals), abs=1e-5)
                if len(set(vals)) > 1:
                    assert float(r["sd"]) == pytest.approx(statistics.stdev(vals), abs=1e-5)


def test_fig2_snapshots_show_the_initial_and_the_trained_network(trained_sweep, tmp_path):
    import torch

    from spikegrad import train
    from spikegrad.config import load_config
    from spikegrad.paper_figures import make_figure
    from spikegrad.training import load_run

    numbers = make_figure("fig2", trained_sweep, tmp_path)["numbers"]
    table = read_csv(tmp_path / "fig2.csv")
    trial = numbers["snapshot_trial"]
    res = {r["trial"]: r for r in results_table(trained_sweep).rows}
    assert res[trial]["model.surrogate"] == "superspike"
    assert res[trial]["val_accuracy"] == max(r["val_accuracy"] for r in res.values()
                                             if r["model.surrogate"] == "superspike")
    run_dir = trained_sweep / "trials" / str(trial)

    def trace(state):
        rows = [r for r in table if r["panel"] == "readout" and r["state"] == state]
        steps, classes = max(int(r["step"]) for r in rows) + 1, max(int(r["unit"]) for r in rows) + 1
        out = np.zeros((steps, classes))
        for r in rows:
            out[int(r["step"]), int(r["unit"])] = float(r["value"])
        return out

    def spikes(state, layer):
        return {(int(r["step"]), int(r["unit"])) for r in table
                if r["panel"] == "spikes" and r["state"] == state and r["layer"] == layer}

    # after: the saved best-validation weights, run independently on test sample 0
    cfg, model, splits = load_run(run_dir)
    x = splits.test.inputs([0], cfg.data.n_steps, 1e-3)
    with torch.no_grad():
        _, rec = model.run(x)
    assert trace("after") == pytest.approx(rec.readout[0].numpy(), abs=1e-5)
    assert spikes("after", "hidden1") == {tuple(map(int, p)) for p in np.argwhere(rec.spikes[0][0].numpy())}
    assert spikes("after", "input") == {tuple(map(int, p)) for p in np.argwhere(x[0].numpy())}
    # before: the run's own initial weights — a run of the same config with a negligible learning
    # rate ends (to ~1e-12) where that run started
    frozen = load_config(run_dir / "config.toml").with_overrides({"train.lr": 1e-12, "train.epochs": 1})
    train(frozen, tmp_path / "init")
    _, init, _ = load_run(tmp_path / "init")
    with torch.no_grad():
        _, rec0 = init.run(x)
    assert trace("before") == pytest.approx(rec0.readout[0].numpy(), abs=1e-5)
    assert not np.allclose(trace("before"), trace("after"))
    snap = {r["state"]: r for r in table if r["panel"] == "snapshot"}
    assert int(snap["after"]["label"]) == int(splits.test.labels[0]) and int(snap["after"]["trial"]) == trial


def test_fig2_names_what_it_misses(tmp_path):
    from spikegrad.paper_figures import fig2

    only_surrogate = Results([row(trial=1), row(trial=2, seed=1)], ["train.lr"], "s")
    with pytest.raises(SpikegradError, match=r"fig2 needs true-gradient trials \(model.surrogate = true\).*s has "
                                             r"superspike"):
        fig2(only_surrogate, tmp_path / "a.png", tmp_path / "a.csv")
    only_true = Results([row(**{"model.surrogate": "true"})], ["model.surrogate"], "s")
    with pytest.raises(SpikegradError, match="fig2 needs surrogate-gradient trials"):
        fig2(only_true, tmp_path / "a.png", tmp_path / "a.csv")
    (tmp_path / "run").mkdir()
    both = Results([row(trial=1, run_dir=str(tmp_path / "run")),
                    row(trial=2, run_dir=str(tmp_path / "run"), **{"model.surrogate": "true"})], ["model.surrogate"], "s")
    with pytest.raises(SpikegradError, match="fig2 needs per-epoch metrics; .*metrics.jsonl does not exist"):
        fig2(both, tmp_path / "a.png", tmp_path / "a.csv")


def fig6_results():
    rows, n = [], 0
    rng = np.random.default_rng(3)
    for data in ("randman", "shd"):
        for rec in (False, True):
            for readout in ("max", "sum"):
                for lr in (1e-3, 2e-3, 5e-3):
                    for seed in (0, 1):
                        val = float(rng.uniform(0.3, 1.0))
                        rows.append(row(trial=n, seed=seed, val_accuracy=val, test_accuracy=val - 0.02 * seed,
                                        **{"data.name": data, "model.recurrent": rec, "model.readout": readout,
                                           "train.lr": lr}))
                        n += 1
    return Results(rows, ["data.name", "model.recurrent", "model.readout", "train.lr"], "synthetic")


def test_fig6_top_k_bars_per_data_set_architecture_and_readout(tmp_path):
    from spikegrad.paper_figures import fig6

    res = fig6_results()
    fig6(res, tmp_path / "fig6.png", tmp_path / "fig6.csv", top_k=2)
    readable(tmp_path / "fig6.png")
    table = read_csv(tmp_path / "fig6.csv")
    assert len(table) == 8
    assert [r["arch"] for r in table[:4]] == ["FF-Max", "FF-Sum", "RC-Max", "RC-Sum"]
    for bar in table:
        rec, readout = bar["arch"].split("-")
        mine = [r for r in res.rows if r["data.name"] == bar["data"] and r["model.recurrent"] == (rec == "RC")
                and r["model.readout"] == readout.lower()]
        configs = {}
        for r in mine:  # seeds pooled per learning rate
            configs.setdefault(r["train.lr"], []).append(r)
        ranked = sorted(configs.values(), key=lambda v: -statistics.fmean(r["val_accuracy"] for r in v))[:2]
        tests = [statistics.fmean(r["test_accuracy"] for r in v) for v in ranked]
        assert float(bar["mean"]) == pytest.approx(statistics.fmean(tests), abs=1e-5)
        assert float(bar["sd"]) == pytest.approx(statistics.stdev(tests), abs=1e-5)
        assert int(bar["k"]) == 2 and int(bar["configs"]) == 3
        assert float(bar["best_lr"]) == ranked[0][0]["train.lr"]


def test_fig6_needs_more_than_one_kind_of_network(tmp_path):
    from spikegrad.paper_figures import fig6

    res = Results([row(trial=i, **{"data.name": "randman", "model.readout": "max"}) for i in range(3)], ["train.lr"], "s")
    with pytest.raises(SpikegradError, match="fig6 compares .* every trial of s is randman FF-Max: sweep "
                                             "model.recurrent, model.readout or data.name"):
        fig6(res, tmp_path / "a.png", tmp_path / "a.csv")


def test_fig8_histograms_count_the_test_spikes_of_the_best_trials(trained_sweep, tmp_path):
    import torch

    from spikegrad.paper_figures import make_figure
    from spikegrad.training import load_run

    numbers = make_figure("fig8", trained_sweep, tmp_path)["numbers"]
    readable(tmp_path / "fig8.png")
    table = read_csv(tmp_path / "fig8.csv")
    rows = results_table(trained_sweep).rows
    for cond, pick in (("unregularised", lambda r: r["regularizer.upper_strength"] == 0),
                       ("regularised", lambda r: r["regularizer.upper_strength"] > 0)):
        mine = [r for r in rows if pick(r)]
        best = max(mine, key=lambda r: (r["val_accuracy"], -r["trial"]))
        assert numbers["info"][cond]["trial"] == best["trial"]
        # spike counts computed independently: the whole test split in one batch
        cfg, model, splits = load_run(trained_sweep / "trials" / str(best["trial"]))
        x, _ = splits.test.raster(range(len(splits.test)), cfg.data.n_steps, 1e-3)
        with torch.no_grad():
            _, rec = model.run(x)
        per_neuron = rec.spikes[0].sum(1).numpy()  # [samples, neurons]
        assert per_neuron.sum() > 0
        for panel, values in (("per_neuron", per_neuron.ravel()), ("per_input", per_neuron.sum(1))):
            bins = [r for r in table if r["panel"] == panel and r["condition"] == cond]
            edges = [float(b["bin_left"]) for b in bins] + [float(bins[-1]["bin_right"])]
            counts, _ = np.histogram(values, edges)
            assert [int(b["count"]) for b in bins] == counts.tolist()
            assert counts.sum() == values.size
        summary = next(r for r in table if r["panel"] == "summary" and r["condition"] == cond)
        assert float(summary["mean_per_input"]) == pytest.approx(per_neuron.sum(1).mean(), rel=1e-5)
        assert float(summary["mean_per_input"]) == pytest.approx(best["hidden_spikes_per_sample"], rel=1e-5)


def test_fig8_needs_both_conditions(tmp_path):
    from spikegrad.paper_figures import fig8

    res = Results([row(trial=i, **{"regularizer.upper_strength": 0.0, "regularizer.lower_strength": 0.0})
                   for i in range(2)], ["train.lr"], "s")
    with pytest.raises(SpikegradError, match=r"fig8 needs regularised .* trials with a hidden layer; s has none"):
        fig8(res, tmp_path / "a.png", tmp_path / "a.csv")
    # a lower regulariser with ν_low = 0 penalises nothing: not regularised
    res.rows.append(row(trial=5, **{"regularizer.upper_strength": 0.0, "regularizer.lower_strength": 1.0,
                                    "regularizer.lower_threshold": 0.0}))
    with pytest.raises(SpikegradError, match="fig8 needs regularised"):
        fig8(res, tmp_path / "a.png", tmp_path / "a.csv")
    res = Results([row(**{"regularizer.upper_strength": 1.0, "regularizer.lower_strength": 0.0})], [], "s")
    with pytest.raises(SpikegradError, match=r"fig8 needs unregularised \(λ_up = 0 and λ_low = 0\)"):
        fig8(res, tmp_path / "a.png", tmp_path / "a.csv")


def test_filter_normalised_directions_have_the_weights_row_norms():
    import torch

    from spikegrad.paper_figures import filter_normalized_direction

    g = torch.Generator().manual_seed(0)
    weights = {"w": torch.randn(5, 7, generator=g) * torch.arange(1, 6).unsqueeze(1), "v": torch.randn(3, 3),
               "b": torch.randn(4)}
    d = filter_normalized_direction(weights, torch.Generator().manual_seed(1))
    assert d["w"].norm(dim=1) == pytest.approx(weights["w"].norm(dim=1), rel=1e-5)
    assert d["v"].norm(dim=1) == pytest.approx(weights["v"].norm(dim=1), rel=1e-5)
    assert float(d["b"].norm()) == pytest.approx(float(weights["b"].norm()), rel=1e-5)
    assert not torch.allclose(d["w"] / d["w"].norm(dim=1, keepdim=True),
                              weights["w"] / weights["w"].norm(dim=1, keepdim=True))
    again = filter_normalized_direction(weights, torch.Generator().manual_seed(1))
    other = filter_normalized_direction(weights, torch.Generator().manual_seed(2))
    assert all(torch.equal(d[k], again[k]) for k in d)
    assert not torch.equal(d["w"], other["w"])


def test_landscape_centre_is_the_trained_loss_and_is_deterministic(trained_sweep, tmp_path):
    import torch

    from spikegrad.paper_figures import landscape_run
    from spikegrad.training import load_run, loss_and_record

    run_dir = trained_sweep / "trials" / "0"
    out = landscape_run(run_dir, tmp_path / "l.png", tmp_path / "l.csv", points=5, span=0.5, seed=3, batch=12)
    readable(tmp_path / "l.png")
    table = read_csv(tmp_path / "l.csv")
    assert len(table) == 25
    assert sorted({float(r["a"]) for r in table}) == pytest.approx([-0.5, -0.25, 0.0, 0.25, 0.5])
    cfg, model, splits = load_run(run_dir)
    rng = np.random.default_rng(3)
    idx = np.sort(rng.choice(len(splits.val), size=12, replace=False))
    assert out["batch"].tolist() == idx.tolist()
    x = splits.val.inputs(idx, cfg.data.n_steps, 1e-3)
    y = torch.from_numpy(splits.val.labels[idx]).long()
    with torch.no_grad():
        loss, _, _ = loss_and_record(model, x, y, cfg)
    centre = next(r for r in table if float(r["a"]) == 0 and float(r["b"]) == 0)
    assert float(centre["loss"]) == pytest.approx(float(loss), rel=1e-5)
    assert out["centre_loss"] == pytest.approx(float(loss), rel=1e-6)
    assert np.nanstd(out["loss"]) > 0  # the plane is not flat
    again = landscape_run(run_dir, tmp_path / "m.png", tmp_path / "m.csv", points=5, span=0.5, seed=3, batch=12)
    assert np.array_equal(again["loss"], out["loss"])
    other = landscape_run(run_dir, tmp_path / "n.png", tmp_path / "n.csv", points=5, span=0.5, seed=4, batch=12)
    assert not np.array_equal(other["loss"], out["loss"])


def test_landscape_from_a_sweep_or_a_run_folder_on_the_command_line(trained_sweep, tmp_path, monkeypatch, capsys):
    import functools

    import spikegrad.paper_figures as pf
    from spikegrad.paper_figures import catalog

    monkeypatch.setattr(catalog, "landscape_run", functools.partial(pf.landscape_run, points=3, batch=8))  # run folders
    monkeypatch.setitem(pf.FIGURES, "landscape", functools.partial(pf.landscape, points=3, batch=8))  # sweeps
    run_dir = trained_sweep / "trials" / "1"
    assert main(["figure", "landscape", str(run_dir), "--out", str(tmp_path / "run")]) == 0
    assert len(read_csv(tmp_path / "run" / "landscape.csv")) == 9
    assert "landscape: 1 trials" in capsys.readouterr().out
    assert main(["figure", "landscape", str(trained_sweep), "--out", str(tmp_path / "sw")]) == 0
    readable(tmp_path / "sw" / "landscape.png")
    assert len(read_csv(tmp_path / "sw" / "landscape.csv")) == 9
    assert main(["figure", "landscape", str(tmp_path / "run")]) == 2
    assert "study.db missing" in capsys.readouterr().err


def test_new_figures_on_the_command_line_and_their_errors(trained_sweep, tmp_path, capsys):
    assert main(["figure", "fig8", str(trained_sweep), "--out", str(tmp_path)]) == 0
    readable(tmp_path / "fig8.png")
    assert "fig8: 8 trials" in capsys.readouterr().out
    assert main(["figure", "fig8", str(trained_sweep), "--top-k", "2"]) == 2
    assert capsys.readouterr().err.strip() == "spikegrad: error: --top-k applies to fig3, fig5, fig6, not fig8"
    no_true = fake_sweep(tmp_path)
    assert main(["figure", "fig2", str(no_true)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikegrad: error: fig2 needs true-gradient trials") and "\n" not in err
    assert main(["figure", "fig8", str(no_true)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("spikegrad: error: fig8 needs regularised") and "\n" not in err
    assert main(["figure", "landscape", str(no_true)]) == 2  # hand-recorded trials: no weights
    err = capsys.readouterr().err.strip()
    assert "landscape needs config.toml of trial" in err and "does not exist" in err and "\n" not in err
