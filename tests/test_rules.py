"""Learning rules and losses as objects: the loop does not know which rule runs or what the
loss measures.  A rule and a loss defined only in this file train through the public train()
and the CLI config, resume bit-exactly, and the figures' "before training" network is the
one training starts from.  An online rule that runs its own forward (the readout's gradient
carried forward in time) equals BPTT's readout gradient and trains through train()."""

import json

import pytest
import torch
from safetensors.torch import load_file

import spikegrad.training as training
from spikegrad import RULES, SNN, Config, LIFParams, register_rule, resume, train
from spikegrad.cli import main
from _parts import ReadoutMSE
from spikegrad.losses import LOSSES, register_loss
from spikegrad.rules import BPTT, StepResult

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
        LAST.setdefault("made", []).append(LAST["rule"])
        return LAST["rule"]
    yield
    RULES.remove("test-readout-only")


def test_a_rule_from_a_test_file_trains_through_the_config_and_resumes_bit_exactly(tmp_path, resumes_bit_exactly):
    cfg = Config().with_overrides({**TINY, "train.rule": "test-readout-only"})
    LAST["made"] = []
    resumes_bit_exactly(cfg, tmp_path)
    start = LAST["made"][0].first_weights                                          # the uninterrupted run's
    end = load_file(str(tmp_path / "full" / "last.safetensors"))
    assert torch.equal(end["layers.0.weight"], start["layers.0.weight"])          # hidden layer frozen
    assert not torch.equal(end["readout.weight"], start["readout.weight"])        # readout learnt
    assert json.loads((tmp_path / "full" / "metrics.json").read_text())["val_accuracy"] > 1 / 3


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


@pytest.fixture
def readout_mse_loss():
    register_loss("test-mse")(lambda cfg: ReadoutMSE())
    yield
    LOSSES.remove("test-mse")


def test_a_rule_and_a_loss_from_a_test_file_train_through_the_cli_config_and_resume_bit_exactly(
        tmp_path, readout_mse_loss, interrupt_after_checkpoints, assert_same_run, capsys):
    cfg = Config().with_overrides({**TINY, "train.rule": "test-readout-only", "train.loss": "test-mse"})
    (tmp_path / "cfg.toml").write_text(cfg.to_toml())
    assert main(["train", "--config", str(tmp_path / "cfg.toml"), "--quiet", "--out", str(tmp_path / "full")]) == 0
    start = LAST["rule"].first_weights
    undo = interrupt_after_checkpoints(2)
    assert main(["train", "--config", str(tmp_path / "cfg.toml"), "--quiet", "--out", str(tmp_path / "cut")]) != 0
    undo()
    assert main(["train", "--resume", str(tmp_path / "cut"), "--quiet"]) == 0
    capsys.readouterr()
    assert_same_run(tmp_path / "cut", tmp_path / "full")
    full = json.loads((tmp_path / "full" / "metrics.json").read_text())
    history = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert full["selection"] == {"metric": "val_mse", "higher_is_better": False}
    assert full["best_epoch"] == 1 + min(range(len(history)), key=lambda i: history[i]["val_mse"])
    assert {"val_accuracy", "val_mse", "test_mse", "train_mse", "last_epoch_test_mse"} <= set(full)
    end = load_file(str(tmp_path / "full" / "last.safetensors"))
    assert torch.equal(end["layers.0.weight"], start["layers.0.weight"])      # the rule: hidden layer frozen
    assert not torch.equal(end["readout.weight"], start["readout.weight"])


class OnlineReadout:
    """Test-only online rule that runs its own forward: the hidden layers without a graph, then
    the readout's gradient carried forward in time (no backward pass through time).

    U_out[n] = u0 β_out^n + W e[n], with the eligibility e (per sample and hidden neuron)
        i[n+1] = β_syn i[n] + S[n],   e[n+1] = β_out e[n] + g i[n],   e[0] = i[0] = 0,
    so ∂z_k/∂W_kj = e_j at the step the reduction reads: all steps (sum, mean), the last, or
    the running argmax (strict >: ties to the first step, as torch.max).  Memory: the state
    and, for max, e at the argmax per class — independent of T."""

    def __init__(self, reduction):
        self.reduction = reduction

    def forward(self, model, x):
        with torch.no_grad():
            events = None
            for layer in model.layers:
                out = layer.run(x, events)
                x, events = out.spikes, out.events
        ro = model.readout
        s = x.to_dense() if hasattr(x, "to_dense") else x
        batch, steps, _ = s.shape
        w = ro.weight.detach()
        i = s.new_zeros(batch, s.shape[2])
        e = torch.zeros_like(i)
        u0 = s.new_full((batch, w.shape[0]), ro.initial_state)
        best_z = best_e = None
        z_sum = torch.zeros_like(u0)
        e_sum = s.new_zeros(batch, w.shape[0], s.shape[2])
        for n in range(steps):
            z = u0 * ro.decay_out ** n + e @ w.t()                      # U_out[n]
            ek = e.unsqueeze(1).expand(-1, w.shape[0], -1)
            if best_z is None:
                best_z, best_e = z.clone(), ek.clone()
            else:
                better = z > best_z
                best_z = torch.where(better, z, best_z)
                best_e = torch.where(better.unsqueeze(2), ek, best_e)
            z_sum, e_sum = z_sum + z, e_sum + ek
            e, i = ro.decay_out * e + ro.gain * i, ro.decay_syn * i + s[:, n]
        return {"max": (best_z, best_e), "sum": (z_sum, e_sum), "mean": (z_sum / steps, e_sum / steps),
                "last": (z, ek)}[self.reduction]

    def step(self, model, batch, optimizer):
        x, y = batch
        z, elig = self.forward(model, x)
        z = z.requires_grad_()
        loss = torch.nn.functional.cross_entropy(z, y)
        (dz,) = torch.autograd.grad(loss, z)
        optimizer.zero_grad(set_to_none=True)
        model.readout.weight.grad = torch.einsum("bk,bkj->kj", dz, elig)
        optimizer.step()
        return StepResult(float(loss.detach()), z.detach())


@pytest.mark.parametrize("reduction", ["max", "sum", "mean", "last"])
def test_an_online_rule_running_its_own_forward_gives_bptts_readout_gradient(reduction):
    cfg = Config().with_overrides({**TINY, "model.readout": reduction})
    torch.manual_seed(0)
    net = SNN(20, [16], 3, LIFParams(), readout=reduction).double()
    with torch.no_grad():
        net.layers[0].weight.mul_(8.0)                                  # hidden spikes to read
    x = (torch.rand(6, 40, 20, dtype=torch.float64) < 0.1).double()
    y = torch.tensor([0, 1, 2, 0, 1, 2])
    logits = net(x)
    torch.nn.functional.cross_entropy(logits, y).backward()
    want = net.readout.weight.grad.clone()
    net.zero_grad()
    rule = OnlineReadout(cfg.model.readout)
    z, elig = rule.forward(net, x)
    torch.testing.assert_close(z, logits.detach(), rtol=1e-12, atol=1e-12)
    dz = torch.softmax(z, 1) - torch.nn.functional.one_hot(y, 3)
    torch.testing.assert_close(torch.einsum("bk,bkj->kj", dz / 6, elig), want, rtol=1e-10, atol=1e-12)


def test_an_online_rule_object_trains_through_train_as_bptt_on_the_readout_does(tmp_path):
    cfg = Config().with_overrides(TINY)
    online = train(cfg, tmp_path / "online", rule=OnlineReadout(cfg.model.readout))
    bptt = train(cfg.with_overrides({"train.rule": "test-readout-only"}), tmp_path / "bptt")
    a, b = (load_file(str(tmp_path / run / "last.safetensors")) for run in ("online", "bptt"))
    assert torch.equal(a["layers.0.weight"], b["layers.0.weight"])        # neither moves the hidden layer
    torch.testing.assert_close(a["readout.weight"], b["readout.weight"], rtol=1e-4, atol=1e-5)  # float32 paths
    assert online["val_accuracy"] == bptt["val_accuracy"] and online["best_epoch"] == bptt["best_epoch"]
