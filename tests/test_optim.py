"""Optimisers, schedules, clipping and parameter groups from the config: the default is
exactly torch's fused Adam at a constant rate; Adam and AdamW steps are their formulas and
give the same bits in every process and for any thread count (as does a whole training
step); every optimiser and schedule resumes bit-exactly;
schedules follow their formulas; clipping bounds the joint gradient norm; groups get their
own learning rates; impossible settings are one clear error."""

import json
import math
import subprocess
import sys

import pytest
import torch

from spikegrad import SNN, Config, SpikegradError, resume, train
from spikegrad.optim import make_optimizer, make_schedule

TINY = {"data.randman.classes": 3, "data.randman.train_per_class": 40, "data.randman.val_per_class": 10,
        "data.randman.test_per_class": 10, "data.randman.terms": 50, "model.hidden": [16],
        "train.epochs": 4, "train.batch_size": 30, "train.lr": 1e-2}


def _history(run):
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("settings", [
    {"train.optimizer": "adam", "train.schedule": "cosine", "train.lr_min": 1e-3},
    {"train.optimizer": "adamw", "train.schedule": "step", "train.step_epochs": 2, "train.step_gamma": 0.5,
     "train.weight_decay": 0.01},
    {"train.optimizer": "sgd", "train.schedule": "constant", "train.lr": 0.2},
    {"train.optimizer": "sgd", "train.schedule": "step", "train.step_epochs": 1, "train.lr": 0.2,
     "train.clip_grad_norm": 0.5, "train.lr_groups": ["readout.*=0.05"]},
], ids=["adam-cosine", "adamw-step", "sgd-constant", "sgd-step-clip-groups"])
def test_every_optimiser_and_schedule_resumes_bit_exactly(tmp_path, settings, resumes_bit_exactly):
    resumes_bit_exactly(Config().with_overrides({**TINY, **settings}), tmp_path)
    ckpt = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    assert bool(ckpt["scheduler"]) == (settings["train.schedule"] != "constant")


def test_the_schedules_follow_their_formulas(tmp_path):
    cos = Config().with_overrides({**TINY, "train.schedule": "cosine", "train.lr_min": 1e-3})
    lrs = [row["lr"] for row in _history(_run(cos, tmp_path / "cos"))]
    want = [1e-3 + (1e-2 - 1e-3) * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert lrs == pytest.approx(want, rel=1e-12)
    step = Config().with_overrides({**TINY, "train.schedule": "step", "train.step_epochs": 2, "train.step_gamma": 0.1})
    assert [row["lr"] for row in _history(_run(step, tmp_path / "step"))] == pytest.approx([1e-2, 1e-2, 1e-3, 1e-3])
    assert "lr" not in _history(_run(Config().with_overrides({**TINY, "train.epochs": 1}), tmp_path / "const"))[0]


def _run(cfg, out):
    train(cfg, out)
    return out


def test_the_default_optimiser_is_torchs_fused_adam_at_a_constant_rate():
    torch.manual_seed(0)
    model = SNN(5, [4], 2)
    opt = make_optimizer(Config(), model)
    assert type(opt) is torch.optim.Adam and len(opt.param_groups) == 1
    assert opt.param_groups[0]["params"] == list(model.parameters())
    assert opt.defaults == torch.optim.Adam(model.parameters(), lr=Config().train.lr, fused=True).defaults
    assert make_schedule(Config(), opt) is None
    assert not opt._optimizer_step_pre_hooks                      # no clipping hook


def test_clipping_bounds_the_joint_gradient_norm_before_every_step():
    torch.manual_seed(0)
    model = SNN(5, [4], 2)
    opt = make_optimizer(Config().with_overrides({"train.clip_grad_norm": 0.1, "train.optimizer": "sgd",
                                                  "train.momentum": 0.0}), model)
    before = {k: v.detach().clone() for k, v in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.full_like(p, 3.0)
    opt.step()
    norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in model.parameters()]))
    assert norm.item() == pytest.approx(0.1, rel=1e-5)
    for name, p in model.named_parameters():                      # SGD moved by lr · clipped gradient
        assert torch.allclose(p.detach(), before[name] - Config().train.lr * p.grad, rtol=0, atol=1e-7)  # float32


def test_parameter_groups_get_their_own_learning_rates():
    torch.manual_seed(0)
    model = SNN(5, [4], 2, recurrent=True)
    cfg = Config().with_overrides({"train.lr_groups": ["readout.*=1e-4", "layers.0.recurrent_weight=5e-3"]})
    opt = make_optimizer(cfg, model)
    groups = [(g["lr"], [id(p) for p in g["params"]]) for g in opt.param_groups]
    assert groups == [(cfg.train.lr, [id(model.layers[0].weight)]), (1e-4, [id(model.readout.weight)]),
                      (5e-3, [id(model.layers[0].recurrent_weight)])]
    with pytest.raises(SpikegradError, match="pattern 'hidden.\\*' matches no parameter"):
        make_optimizer(Config().with_overrides({"train.lr_groups": ["hidden.*=1e-3"]}), model)


@pytest.mark.parametrize("override, message", [
    ({"train.optimizer": "adamm"}, "unknown train.optimizer 'adamm' (did you mean 'adam'?)"),
    ({"train.schedule": "cosin"}, "unknown train.schedule 'cosin' (did you mean 'cosine'?)"),
    ({"train.momentum": 1.0}, "train.momentum must lie in [0, 1)"),
    ({"train.schedule": "cosine", "train.lr_min": 0.1}, "must be below train.lr"),
    ({"train.step_epochs": 0}, "train.step_epochs must be ≥ 1"),
    ({"train.clip_grad_norm": -1.0}, "train.clip_grad_norm must be ≥ 0"),
    ({"train.lr_groups": ["readout.*"]}, "train.lr_groups entry 'readout.*' is not PATTERN=LR"),
    ({"train.lr_groups": ["readout.*=-1"]}, "is not PATTERN=LR"),
])
def test_impossible_optimiser_settings_are_one_clear_error(override, message):
    with pytest.raises(SpikegradError) as err:
        Config().with_overrides(override)
    assert message in str(err.value)


def _killed_run_without(cfg, run, interrupt_after_checkpoints, *keys):
    """Train ``cfg`` into ``run``, killed after the 2nd checkpoint; drop ``keys`` from it."""
    undo = interrupt_after_checkpoints(2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run)
    undo()
    ckpt = torch.load(run / "checkpoint.pt", weights_only=True)
    for key in keys:
        del ckpt[key]
    torch.save(ckpt, run / "checkpoint.pt")


def test_a_checkpoint_from_before_schedules_and_rule_state_resumes(tmp_path, interrupt_after_checkpoints,
                                                                   assert_same_run):
    """Checkpoints written by earlier versions have no ``scheduler`` and ``rule`` entries."""
    cfg = Config().with_overrides(TINY)
    train(cfg, tmp_path / "full")
    _killed_run_without(cfg, tmp_path / "cut", interrupt_after_checkpoints, "scheduler", "rule")
    resume(tmp_path / "cut")
    assert_same_run(tmp_path / "cut", tmp_path / "full")


def test_a_schedule_cannot_resume_from_a_checkpoint_without_its_state(tmp_path, interrupt_after_checkpoints):
    cfg = Config().with_overrides({**TINY, "train.schedule": "cosine"})
    _killed_run_without(cfg, tmp_path / "cut", interrupt_after_checkpoints, "scheduler")
    with pytest.raises(SpikegradError, match="no learning-rate schedule state"):
        resume(tmp_path / "cut")


def _adam_formula(p, grads, lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False):
    """Adam (Kingma & Ba 2015; AdamW: Loshchilov & Hutter 2019) written out, in float64."""
    p, m, v = p.clone(), torch.zeros_like(p), torch.zeros_like(p)
    for t, g in enumerate(grads, start=1):
        if decoupled:
            p = p * (1 - lr * weight_decay)
        elif weight_decay:
            g = g + weight_decay * p
        m = betas[0] * m + (1 - betas[0]) * g
        v = betas[1] * v + (1 - betas[1]) * g * g
        m_hat, v_hat = m / (1 - betas[0] ** t), v / (1 - betas[1] ** t)
        p = p - lr * m_hat / (v_hat.sqrt() + eps)
    return p


@pytest.mark.parametrize("optimizer,weight_decay", [("adam", 0.0), ("adam", 0.1), ("adamw", 0.1)])
def test_adam_and_adamw_steps_are_their_formulas_in_float64(optimizer, weight_decay):
    gen = torch.Generator().manual_seed(0)
    model = torch.nn.Linear(7, 5, bias=False).double()
    start = model.weight.detach().clone()
    grads = [torch.randn(5, 7, generator=gen, dtype=torch.float64) * 10.0 ** -k for k in range(6)]
    cfg = Config().with_overrides({"train.optimizer": optimizer, "train.weight_decay": weight_decay, "train.lr": 0.01})
    opt = make_optimizer(cfg, model)
    assert opt.param_groups[0]["fused"] is True
    for g in grads:
        model.weight.grad = g.clone()
        opt.step()
    want = _adam_formula(start, grads, 0.01, weight_decay=weight_decay, decoupled=optimizer == "adamw")
    torch.testing.assert_close(model.weight.detach(), want, rtol=1e-13, atol=1e-15)


# One fresh process: every optimiser's steps on float32 gradients spanning 12 decades (the
# tensors whose square roots MKL's vector math rounded differently from process to process),
# and one whole BPTT step of a small spiking network, at 1 and 2 torch threads; prints hashes.
_REPLAY = r"""
import hashlib, sys, torch
from spikegrad import Config, SNN
from spikegrad.optim import make_optimizer
from spikegrad.rules import make_rule
from spikegrad.training import loss_and_record
h = lambda ts: hashlib.md5(b"".join(t.detach().numpy().tobytes() for t in ts)).hexdigest()[:12]
out = []
for threads in (1, 2):
    torch.set_num_threads(threads)
    for name in ("adam", "adamw", "sgd"):
        gen = torch.Generator().manual_seed(1)
        params = [torch.randn(s, generator=gen).requires_grad_() for s in ((128, 20), (10, 128), (4099,))]
        cfg = Config().with_overrides({"train.optimizer": name, "train.weight_decay": 1e-2, "train.momentum": 0.9})
        opt = make_optimizer(cfg, torch.nn.ParameterList(params))
        for k in range(4):
            for p in params:
                p.grad = torch.randn(p.shape, generator=gen) * 10.0 ** -torch.randint(0, 12, p.shape, generator=gen)
            opt.step()
        out.append(f"{name}{threads}={h(params)}")
    torch.manual_seed(0)
    model = SNN(20, [64], 5)
    for p in model.parameters():
        p.data.mul_(8.0)                        # a network that spikes from the first step
    gen = torch.Generator().manual_seed(2)
    x, y = (torch.rand(32, 50, 20, generator=gen) < 0.1).float(), torch.randint(0, 5, (32,), generator=gen)
    cfg = Config()
    rule = make_rule(cfg, lambda m, x, y: loss_and_record(m, x, y, cfg))
    opt = make_optimizer(cfg, model)
    for _ in range(3):
        rule.step(model, (x, y), opt)
    out.append(f"bptt{threads}={h(model.parameters())}")
print(" ".join(out))
"""


def test_optimiser_and_training_steps_give_the_same_bits_in_fresh_processes():
    runs = [subprocess.run([sys.executable, "-c", _REPLAY], capture_output=True, text=True, check=True).stdout.split()
            for _ in range(4)]
    assert all(r == runs[0] for r in runs), runs
    steps = dict(item.split("=") for item in runs[0])
    for name in ("adam", "adamw"):                # the fused kernel: the same bits for any thread count
        assert steps[f"{name}1"] == steps[f"{name}2"]
