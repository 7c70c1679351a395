"""Learning rules and losses as objects: the loop does not know which rule runs or what the
loss measures.  A rule and a loss defined only in this file train through the public train()
and the CLI config, resume bit-exactly, and the figures' "before training" network is the
one training starts from."""

import json

import pytest
import torch
from safetensors.torch import load_file

import spikegrad.training as training
from spikegrad import RULES, Config, register_rule, resume, train
from spikegrad.cli import main
from spikegrad.losses import LOSSES, Selection, register_loss
from spikegrad.rules import BPTT

TINY = {"data.randman.classes": 3, "data.randman.train_per_class": 40, "data.randman.val_per_class": 10,
        "data.randman.test_per_class": 10, "data.randman.terms": 50, "model.hidden": [16],
        "train.epochs": 4, "train.batch_size": 30, "train.lr": 1e-2, "model.init": "fluctuation"}


class ReadoutOnly:
    """Test-only rule: BPTT's gradient, but only the readout learns — BPTT's step with an
    optimizer that drops the hidden layers' gradients before it steps."""

    name = "test-readout-only"

    def __init__(self, objective):
        self.bptt = BPTT(objective)
        self.first_weights = None

    def step(self, model, batch, optimizer):
        if self.first_weights is None:
            self.first_weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return self.bptt.step(model, batch, _ReadoutOnlyOptimizer(optimizer, model))


class _ReadoutOnlyOptimizer:
    def __init__(self, optimizer, model):
        self.optimizer, self.model = optimizer, model

    def zero_grad(self, set_to_none=True):
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self):
        for layer in self.model.layers:
            for p in layer.parameters():
                p.grad = None                    # Adam skips parameters without a gradient
        self.optimizer.step()


LAST = {}


@pytest.fixture(scope="module", autouse=True)
def readout_only_rule():
    @register_rule("test-readout-only")
    def make(cfg, objective):
        LAST["rule"] = ReadoutOnly(objective)
        return LAST["rule"]
    yield
    RULES.remove("test-readout-only")


def test_a_rule_from_a_test_file_trains_through_the_config_and_resumes_bit_exactly(tmp_path, interrupt_after_checkpoints):
    cfg = Config().with_overrides({**TINY, "train.rule": "test-readout-only"})
    full = train(cfg, tmp_path / "full")
    start = LAST["rule"].first_weights
    end = load_file(str(tmp_path / "full" / "last.safetensors"))
    assert torch.equal(end["layers.0.weight"], start["layers.0.weight"])          # hidden layer frozen
    assert not torch.equal(end["readout.weight"], start["readout.weight"])        # readout learnt
    assert full["val_accuracy"] > 1 / 3
    undo = interrupt_after_checkpoints(2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "cut")
    undo()
    again = resume(tmp_path / "cut")
    drop = lambda m: {k: v for k, v in m.items() if k != "wall_seconds"}  # noqa: E731
    assert drop(again) == drop(full)
    for name in ("model.safetensors", "last.safetensors"):
        a, b = load_file(str(tmp_path / "cut" / name)), load_file(str(tmp_path / "full" / name))
        assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_cli_takes_a_rule_by_name(tmp_path, capsys):
    args = ["--set", "data.randman.classes=2", "--set", "data.randman.train_per_class=10",
            "--set", "data.randman.val_per_class=4", "--set", "data.randman.test_per_class=4",
            "--set", "data.randman.terms=20", "--hidden", "8", "--epochs", "1", "--quiet"]
    assert main(["train", *args, "--rule", "test-readout-only", "--out", str(tmp_path / "run")]) == 0
    assert "rule = \"test-readout-only\"" in (tmp_path / "run" / "config.toml").read_text()
    capsys.readouterr()
    assert main(["train", *args, "--rule", "bpt", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "unknown train.rule 'bpt' (did you mean 'bptt'?)" in err and not (tmp_path / "bad").exists()


def test_a_rule_object_passed_to_train_replaces_the_configs(tmp_path):
    calls = []

    class Counting(BPTT):
        def step(self, model, batch, optimizer):
            calls.append(1)
            return super().step(model, batch, optimizer)

    cfg = Config().with_overrides({**TINY, "train.epochs": 1})
    metrics = train(cfg, rule=Counting(lambda m, x, y: training.loss_and_record(m, x, y, cfg)))
    assert len(calls) == 4                                         # 120 samples / batch 30
    assert metrics == {**train(cfg), "wall_seconds": metrics["wall_seconds"]}  # the same as bptt by name


@pytest.mark.parametrize("init", ["uniform", "fluctuation"])
def test_the_figures_before_training_network_is_the_one_training_starts_from(tmp_path, init):
    from spikegrad.paper_figures import _load_trained
    cfg = Config().with_overrides({**TINY, "train.epochs": 1, "model.init": init,
                                   "train.rule": "test-readout-only"})
    train(cfg, tmp_path / "run")
    start = LAST["rule"].first_weights
    _, model, _ = _load_trained(tmp_path / "run", None)
    state = model.state_dict()
    assert set(state) == set(start) and all(torch.equal(state[k], start[k]) for k in start)


class ReadoutMSE:
    """Test-only loss: mean squared error between the readout's reduced voltages and the
    one-hot target; reports accuracy and the error, and selects by the error (lower)."""

    name = "test-mse"
    metrics = ("accuracy", "mse")
    selection = Selection("mse", higher_is_better=False)

    def _errors(self, out, y):
        return (out - torch.nn.functional.one_hot(y, out.shape[1]).to(out.dtype)).pow(2).mean(dim=1)

    def __call__(self, out, y):
        return self._errors(out, y).mean()

    def predict(self, out):
        return out.argmax(1)

    def batch_metrics(self, out, y):
        return {"accuracy": int((self.predict(out) == y).sum()), "mse": float(self._errors(out.detach(), y).sum())}


@pytest.fixture
def readout_mse_loss():
    register_loss("test-mse")(lambda cfg: ReadoutMSE())
    yield
    LOSSES.remove("test-mse")


def test_a_rule_and_a_loss_from_a_test_file_train_through_the_cli_config_and_resume_bit_exactly(
        tmp_path, readout_mse_loss, interrupt_after_checkpoints, capsys):
    cfg = Config().with_overrides({**TINY, "train.rule": "test-readout-only", "train.loss": "test-mse"})
    (tmp_path / "cfg.toml").write_text(cfg.to_toml())
    assert main(["train", "--config", str(tmp_path / "cfg.toml"), "--quiet", "--out", str(tmp_path / "full")]) == 0
    start = LAST["rule"].first_weights
    undo = interrupt_after_checkpoints(2)
    assert main(["train", "--config", str(tmp_path / "cfg.toml"), "--quiet", "--out", str(tmp_path / "cut")]) != 0
    undo()
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    capsys.readouterr()
    full, cut = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("full", "cut"))
    drop = lambda m: {k: v for k, v in m.items() if k != "wall_seconds"}  # noqa: E731
    assert drop(cut) == drop(full)
    history = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert full["selection"] == {"metric": "val_mse", "higher_is_better": False}
    assert full["best_epoch"] == 1 + min(range(len(history)), key=lambda i: history[i]["val_mse"])
    assert {"val_accuracy", "val_mse", "test_mse", "train_mse", "last_epoch_test_mse"} <= set(full)
    end = load_file(str(tmp_path / "full" / "last.safetensors"))
    assert torch.equal(end["layers.0.weight"], start["layers.0.weight"])      # the rule: hidden layer frozen
    assert not torch.equal(end["readout.weight"], start["readout.weight"])
    for name in ("model.safetensors", "last.safetensors"):
        a, b = load_file(str(tmp_path / "cut" / name)), load_file(str(tmp_path / "full" / name))
        assert all(torch.equal(a[k], b[k]) for k in a)
