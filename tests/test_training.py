"""Training loop: learning, determinism, best-validation selection, run folders."""

import json

import pytest
import torch
from safetensors.torch import load_file

import spikegrad.training as training
from spikegrad import Config, SpikegradError, evaluate_run, train
from spikegrad.data import load_dataset

TINY = {
    "data.randman.classes": 3, "data.randman.train_per_class": 40, "data.randman.val_per_class": 10,
    "data.randman.test_per_class": 10, "data.randman.terms": 50, "model.hidden": [16],
    "train.epochs": 3, "train.batch_size": 30, "train.lr": 1e-2,
}


def tiny(**extra) -> Config:
    return Config().with_overrides({**TINY, **extra})


def without_time(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "wall_seconds"}


def test_learns_a_small_randman_task():
    cfg = tiny(**{"data.randman.train_per_class": 100, "train.epochs": 25, "train.batch_size": 50})
    metrics = train(cfg)
    assert metrics["val_accuracy"] >= 0.8  # chance is 1/3
    assert metrics["test_accuracy"] >= 0.7
    assert metrics["hidden_spikes_per_sample"] > 0


def test_same_seeds_give_identical_metrics(tmp_path):
    a = train(tiny(), tmp_path / "a")
    b = train(tiny(), tmp_path / "b")
    assert without_time(a) == without_time(b)
    rows_a = [json.loads(line) for line in (tmp_path / "a" / "metrics.jsonl").read_text().splitlines()]
    rows_b = [json.loads(line) for line in (tmp_path / "b" / "metrics.jsonl").read_text().splitlines()]
    for ra, rb in zip(rows_a, rows_b):
        ra.pop("seconds"), rb.pop("seconds")
        assert ra == rb
    sa, sb = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_seed_changes_the_run_and_data_seed_changes_the_data(tmp_path):
    base = tiny()
    train(base, tmp_path / "a")
    train(tiny(**{"train.seed": 1}), tmp_path / "b")
    sa, sb = load_file(str(tmp_path / "a" / "model.safetensors")), load_file(str(tmp_path / "b" / "model.safetensors"))
    assert not torch.equal(sa["layers.0.weight"], sb["layers.0.weight"])
    d1 = load_dataset(base)
    d2 = load_dataset(tiny(**{"data.seed": 2}))
    assert not (d1.train.times == d2.train.times).all()


def test_reports_best_validation_epoch_and_saved_weights_match(tmp_path):
    metrics = train(tiny(**{"train.epochs": 5}), tmp_path / "run")
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4, 5]
    best = max(r["val_accuracy"] for r in rows)
    first_best = next(r["epoch"] for r in rows if r["val_accuracy"] == best)
    assert metrics["best_epoch"] == first_best
    assert metrics["val_accuracy"] == best
    assert json.loads((tmp_path / "run" / "metrics.json").read_text()) == metrics
    again = evaluate_run(tmp_path / "run")
    assert again["test_accuracy"] == metrics["test_accuracy"]
    assert again["val_accuracy"] == metrics["val_accuracy"]


def test_last_epoch_accuracy_is_that_of_the_last_weights(tmp_path):
    cfg = tiny(**{"train.epochs": 4})
    metrics = train(cfg, tmp_path / "run")
    splits = load_dataset(cfg)
    model = training.build_model(cfg, splits.n_inputs, splits.n_classes)
    model.load_state_dict(load_file(str(tmp_path / "run" / "last.safetensors")))
    assert training.evaluate(model, splits.test, cfg)["accuracy"] == metrics["last_epoch_test_accuracy"]


def test_hidden_spike_counts_are_per_sample_and_per_layer():
    cfg = tiny(**{"model.hidden": [16, 8], "train.epochs": 1})
    splits = load_dataset(cfg)
    torch.manual_seed(0)
    model = training.build_model(cfg, splits.n_inputs, splits.n_classes)
    with torch.no_grad():
        for layer in model.layers:
            layer.weight.mul_(20)  # make both layers fire
    result = training.evaluate(model, splits.test, cfg)
    x, _ = splits.test.raster(range(len(splits.test)), cfg.data.n_steps, 1e-3)
    with torch.no_grad():
        _, rec = model.run(x)
    expect = [float(s.sum()) / len(splits.test) for s in rec.spikes]
    assert all(e > 0 for e in expect)
    assert result["hidden_spikes_per_layer"] == pytest.approx(expect)
    assert result["hidden_spikes_per_sample"] == pytest.approx(sum(expect))


def test_trains_without_a_hidden_layer_on_event_batches():
    """model.hidden = [0]: the readout reads the loader's event batches directly; the run
    learns (chance 1/3) and its evaluation equals the dense raster's, 0 hidden spikes."""
    cfg = tiny(**{"model.hidden": [0], "train.epochs": 8})
    metrics = train(cfg)
    assert metrics["hidden_spikes_per_sample"] == 0.0 and metrics["hidden_spikes_per_layer"] == []
    assert metrics["val_accuracy"] > 0.5
    splits = load_dataset(cfg)
    torch.manual_seed(0)
    model = training.build_model(cfg, splits.n_inputs, splits.n_classes)
    result = training.evaluate(model, splits.test, cfg)
    x, _ = splits.test.raster(range(len(splits.test)), cfg.data.n_steps, 1e-3)
    with torch.no_grad():
        logits = model(x)
    y = torch.from_numpy(splits.test.labels)
    assert result["accuracy"] == pytest.approx(float((logits.argmax(1) == y).float().mean()))
    assert result["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), rel=1e-5)


def test_non_finite_loss_stops_and_is_reported(monkeypatch):
    real = training.loss_and_record
    calls = {"n": 0}

    def flaky(model, x, y, cfg, *rest):
        calls["n"] += 1
        loss, logits, rec = real(model, x, y, cfg, *rest)
        if model.training and calls["n"] > 6:  # after two epochs of 3 batches (+ evals)
            loss = loss * float("nan")
        return loss, logits, rec

    monkeypatch.setattr(training, "loss_and_record", flaky)
    metrics = train(tiny(**{"train.epochs": 5}))
    assert metrics["diverged"] is True
    assert 1 <= metrics["epochs"] < 5
    assert 0 <= metrics["test_accuracy"] <= 1


def test_refuses_a_non_empty_run_folder(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "keep.txt").write_text("x")
    with pytest.raises(SpikegradError, match="not empty"):
        train(tiny(), tmp_path / "run")
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["keep.txt"]


def test_init_from_a_run_starts_from_its_weights(tmp_path):
    first = train(tiny(), tmp_path / "a")
    # a vanishing learning rate leaves the loaded weights as they are
    again = train(tiny(**{"train.init_from": str(tmp_path / "a"), "train.epochs": 1, "train.lr": 1e-30}))
    assert again["test_accuracy"] == first["test_accuracy"]
    assert again["test_loss"] == pytest.approx(first["test_loss"], rel=1e-6)
    with pytest.raises(SpikegradError, match="does not exist"):
        train(tiny(**{"train.init_from": str(tmp_path / "nope")}))
    with pytest.raises(SpikegradError, match="cannot load weights"):
        train(tiny(**{"train.init_from": str(tmp_path / "a"), "model.hidden": [7]}))


# -- checkpoints and resume -----------------------------------------------------------------

LEARNING = {"data.randman.classes": 2, "data.randman.train_per_class": 20, "data.randman.val_per_class": 6,
            "data.randman.test_per_class": 6, "data.randman.terms": 20, "model.hidden": [8],
            "train.epochs": 4, "train.batch_size": 10, "train.lr": 0.1, "train.threads": 1}


def _weights_equal(a, b):
    for name in ("model.safetensors", "last.safetensors"):
        sa, sb = load_file(str(a / name)), load_file(str(b / name))
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa), name


def _rows(run):
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for r in rows:
        r.pop("seconds")
    return rows


def test_interrupted_and_resumed_run_equals_an_uninterrupted_one(tmp_path, interrupt_after_checkpoints):
    from spikegrad import resume

    cfg = Config().with_overrides(LEARNING)
    full = train(cfg, tmp_path / "full")
    assert full["hidden_spikes_per_sample"] > 0 and full["best_epoch"] > 1  # a run that does learn
    undo = interrupt_after_checkpoints(2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut")
    undo()
    assert not (tmp_path / "cut" / "metrics.json").exists()
    # a kill between the metrics line and the checkpoint leaves a line too many
    with (tmp_path / "cut" / "metrics.jsonl").open("a") as fh:
        fh.write('{"epoch": 3, "partial": tru')
    again = resume(tmp_path / "cut")
    assert without_time(again) == without_time(full)
    assert json.loads((tmp_path / "cut" / "metrics.json").read_text())["test_accuracy"] == full["test_accuracy"]
    assert _rows(tmp_path / "cut") == _rows(tmp_path / "full")
    _weights_equal(tmp_path / "cut", tmp_path / "full")
    with pytest.raises(SpikegradError, match="already finished"):
        resume(tmp_path / "cut")
    with pytest.raises(SpikegradError, match="already finished"):
        train(cfg, tmp_path / "cut", resume=True)


def test_train_resume_flag_starts_fresh_and_checks_the_config(tmp_path):
    cfg = Config().with_overrides({**LEARNING, "train.epochs": 1})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.toml").write_text(cfg.to_toml())  # killed before epoch 1 ended
    (tmp_path / "run" / "metrics.jsonl").write_text("garbage\n")
    first = train(cfg, tmp_path / "run", resume=True)
    assert without_time(first) == without_time(train(cfg, tmp_path / "fresh"))
    assert _rows(tmp_path / "run") == _rows(tmp_path / "fresh")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.toml").write_text(cfg.to_toml())
    with pytest.raises(SpikegradError, match="differs"):
        train(cfg.with_overrides({"train.lr": 0.2}), tmp_path / "other", resume=True)
    with pytest.raises(SpikegradError, match="not a run folder"):
        training.resume(tmp_path / "nothing")


def test_alif_trains_from_the_config_and_records_its_kernel(tmp_path):
    """model.neuron = "alif" builds ALIF layers, which learn the small task on the reference
    scan; metrics.json records which kernels ran."""
    cfg = tiny(**{"model.neuron": "alif", "model.tau_adapt_ms": 50.0, "model.beta_adapt": 0.5,
                  "data.randman.train_per_class": 100, "train.epochs": 25, "train.batch_size": 50})
    metrics = train(cfg, tmp_path / "run")
    assert metrics["val_accuracy"] >= 0.8                  # chance is 1/3
    assert metrics["kernels"] == [{"kernel": "reference", "input_path": "events"}, {"readout": "fast"}]
    saved = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert saved["kernels"] == metrics["kernels"]
    assert train(tiny())["kernels"][0] == {"kernel": "compiled", "input_path": "events"}


def test_unknown_or_unserved_neuron_models_are_one_clear_error():
    with pytest.raises(SpikegradError, match=r"unknown model.neuron 'alf' \(did you mean 'alif'\?\); "
                                             r"choose one of: alif, cuba, lif"):
        tiny(**{"model.neuron": "alf"}).validate()
    with pytest.raises(SpikegradError, match=r"unknown backend 'compiled' for model.neuron 'alif'; "
                                             r"choose one of: auto, reference"):
        tiny(**{"model.neuron": "alif", "model.backend": "compiled"}).validate()
    with pytest.raises(SpikegradError, match="tau_adapt must be a positive number of seconds"):
        tiny(**{"model.neuron": "alif", "model.tau_adapt_ms": -1.0}).validate()
