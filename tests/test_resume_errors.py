"""`spikegrad train --resume` on a damaged run folder: one line naming the checkpoint (or
config.toml) and what is wrong, exit code 2, and not one byte of the folder changed."""

import json

import pytest
import torch

from spikegrad.cli import main

TINY = ["--set", "data.randman.classes=2", "--set", "data.randman.train_per_class=10",
        "--set", "data.randman.val_per_class=4", "--set", "data.randman.test_per_class=4",
        "--set", "data.randman.terms=20", "--hidden", "8", "--epochs", "2", "--quiet"]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("resume") / "run"
    assert main(["train", *TINY, "--out", str(run)]) == 0
    return run


def _snapshot(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _load(path):
    return torch.load(path, weights_only=True)


def _corrupt_meta(key, value):
    def change(ckpt):
        meta = json.loads(ckpt["meta"])
        if value is None:
            del meta[key]
        else:
            meta[key] = value
        ckpt["meta"] = json.dumps(meta)
        return ckpt
    return change


def _reshape_model(ckpt):
    ckpt["model"]["layers.0.weight"] = torch.zeros(3, 3)
    return ckpt


def _bad_optimizer(ckpt):
    ckpt["optimizer"]["state"][0]["exp_avg"] = torch.zeros(2)
    return ckpt


CASES = {
    "zero-bytes": (None, "the file is empty (0 bytes)"),
    "lacks-a-key": (lambda c: {k: v for k, v in c.items() if k != "optimizer"}, "it lacks optimizer"),
    "non-json-meta": (lambda c: {**c, "meta": "{not json"}, "its metadata is not JSON"),
    "incomplete-meta": (_corrupt_meta("history", None), "its metadata lacks 'history'"),
    "wrong-tensor-shape": (_reshape_model, "its model: tensor 'layers.0.weight' has shape [3, 3]"),
    "a-list": (lambda c: [c["meta"]], "it holds a list, not a checkpoint"),
    "bad-numpy-rng": (_corrupt_meta("numpy_rng", {"bit_generator": "Nope"}), "its numpy RNG state is invalid"),
    "bad-torch-rng": (lambda c: {**c, "torch_rng": torch.zeros(3)}, "its torch RNG state is not a uint8 tensor"),
    "bad-optimizer-state": (_bad_optimizer, "optimizer exp_avg of parameter 0 has shape [2]"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_damaged_checkpoint_is_one_line_and_changes_nothing(finished_run, tmp_path, capsys, case):
    run = tmp_path / "run"
    run.mkdir()
    for name, data in _snapshot(finished_run).items():
        if name != "metrics.json":                          # an unfinished run
            (run / name).write_bytes(data)
    change, needle = CASES[case]
    ckpt_path = run / "checkpoint.pt"
    if change is None:
        ckpt_path.write_bytes(b"")
    else:
        torch.save(change(_load(ckpt_path)), ckpt_path)
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spikegrad: error: cannot resume from "), err
    assert str(ckpt_path) in err[0] and needle in err[0], err[0]
    assert _snapshot(run) == before


def test_config_edited_before_resuming_is_named(finished_run, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name, data in _snapshot(finished_run).items():
        if name != "metrics.json":
            (run / name).write_bytes(data)
    cfg = (run / "config.toml").read_text()
    (run / "config.toml").write_text(cfg.replace("hidden = [\n    8,\n]", "hidden = [\n    16,\n]")
                                     .replace("hidden = [8]", "hidden = [16]"))
    assert (run / "config.toml").read_text() != cfg
    before = _snapshot(run)
    capsys.readouterr()
    assert main(["train", "--resume", str(run)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "checkpoint.pt" in line and "has shape [8, 20], the model needs [16, 20]" in line
    assert "config.toml edited" in line
    assert _snapshot(run) == before


def test_an_intact_copy_resumes(finished_run, tmp_path):
    """The control: the same copy, undamaged, resumes and finishes."""
    run = tmp_path / "run"
    run.mkdir()
    for name, data in _snapshot(finished_run).items():
        if name != "metrics.json":
            (run / name).write_bytes(data)
    assert main(["train", "--resume", str(run), "--quiet"]) == 0
    assert (run / "metrics.json").is_file()
