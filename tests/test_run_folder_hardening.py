"""Run folders that travel and stay readable: weight-shape mismatches named, valid JSON for a
diverged run, absolute data folders, a word on Ctrl-C, ordinary file modes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from spikegrad import evaluate_run, load_config
from spikegrad.cli import main

TINY = ["--set", "data.randman.classes=2", "--set", "data.randman.train_per_class=10",
        "--set", "data.randman.val_per_class=4", "--set", "data.randman.test_per_class=4",
        "--set", "data.randman.terms=20", "--hidden", "8", "--epochs", "2", "--quiet"]


def _strict_json(text):
    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")
    return json.loads(text, parse_constant=no_constants)


def test_init_from_weights_of_another_shape_names_the_tensor(tmp_path, capsys):
    assert main(["train", *TINY, "--out", str(tmp_path / "a")]) == 0
    capsys.readouterr()
    args = [a if a != "8" else "5" for a in TINY]
    assert main(["train", *args, "--set", f"train.init_from={tmp_path / 'a'}", "--out", str(tmp_path / "b")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "model.safetensors" in line and "tensor 'layers.0.weight' has shape [8, 20]" in line
    assert "the model needs [5, 20]" in line and not (tmp_path / "b").exists()


def test_a_diverged_run_writes_valid_json_with_null(tmp_path, monkeypatch):
    """Losses turn NaN in epoch 2 (as in a diverged run): the files hold null, not NaN."""
    import spikegrad.training as training
    real, calls = training.loss_and_record, []

    def nan_later(model, x, y, cfg, *rest):
        loss, logits, rec = real(model, x, y, cfg, *rest)
        calls.append(1)
        return (loss * float("nan") if len(calls) > 3 else loss), logits, rec

    monkeypatch.setattr(training, "loss_and_record", nan_later)
    assert main(["train", *TINY, "--set", "train.batch_size=10", "--out", str(tmp_path / "run")]) == 0
    metrics = _strict_json((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["diverged"] is True and metrics["test_loss"] is None
    for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines():
        _strict_json(line)


def test_a_relative_data_dir_is_stored_absolute(tmp_path, monkeypatch):
    from spikegrad.data.mnist import write_idx
    data = tmp_path / "work" / "mnist-files"
    data.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 30), ("t10k", 10)):
        write_idx(data / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 4, 5), dtype=np.uint8))
        write_idx(data / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    monkeypatch.chdir(tmp_path / "work")
    assert main(["train", "--dataset", "mnist", "--data-dir", "mnist-files", "--hidden", "8", "--epochs", "1",
                 "--allow-dropped-events", "--quiet", "--out", "run"]) == 0
    cfg = load_config(tmp_path / "work" / "run" / "config.toml")
    assert cfg.data.dir == str(data.resolve())
    monkeypatch.chdir(tmp_path)                                 # elsewhere: the run still finds its data
    assert 0 <= evaluate_run(tmp_path / "work" / "run")["test_accuracy"] <= 1


def test_weights_get_the_mode_of_the_rest_of_the_run_folder(tmp_path):
    assert main(["train", *TINY, "--out", str(tmp_path / "run")]) == 0
    mode = lambda name: (tmp_path / "run" / name).stat().st_mode & 0o777  # noqa: E731
    assert mode("model.safetensors") == mode("last.safetensors") == mode("config.toml") == mode("metrics.json")


def test_ctrl_c_says_how_to_continue_and_the_run_resumes(tmp_path):
    run = tmp_path / "run"
    args = [a if a != "2" else "100000" for a in TINY]          # interrupted long before the end
    proc = subprocess.Popen([sys.executable, "-m", "spikegrad.cli", "train", *args, "--out", str(run)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while not (run / "checkpoint.pt").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130
    assert err.strip().splitlines() == [f"spikegrad: interrupted; the run folder {run} keeps every finished "
                                        f"epoch; `spikegrad train --resume {run}` continues it"]
    assert not (run / "metrics.json").exists()
    done = len((run / "metrics.jsonl").read_text().splitlines())
    assert done >= 1
    # continue it to a near end: the run folder's own config, with the epochs cut short
    config = (run / "config.toml").read_text()
    (run / "config.toml").write_text(config.replace("epochs = 100000", f"epochs = {done + 1}"))
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert json.loads((run / "metrics.json").read_text())["epochs"] == done + 1
