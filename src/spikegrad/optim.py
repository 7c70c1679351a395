"""Optimisers, learning-rate schedules, gradient clipping and parameter groups from the config.

``train.optimizer`` names a factory in :data:`OPTIMIZERS` (``adam``, ``adamw``, ``sgd`` with
``train.momentum``), ``train.schedule`` one in :data:`SCHEDULES`, stepped once per epoch:

    constant:  η_e = η
    cosine:    η_e = η_min + (η − η_min) · (1 + cos(π e / E)) / 2      (E = train.epochs)
    step:      η_e = η · γ^⌊e / s⌋                                      (s = train.step_epochs)

with e the number of epochs done.  ``train.clip_grad_norm`` > 0 rescales the gradients of
all parameters together to at most that L2 norm before every optimiser step (a step
pre-hook, so a rule that sets ``.grad`` itself is clipped too).  ``train.lr_groups``
(``["readout.*=1e-3", …]``) gives the parameters whose names match a glob pattern their own
learning rate (the first matching pattern wins; the others keep ``train.lr``); the
schedule scales every group alike.  The default — Adam, constant, no clipping, one group —
is ``torch.optim.Adam(model.parameters(), lr=train.lr, fused=True)``, exactly.

Adam and AdamW take torch's fused kernel (``fused=True``) wherever it runs (CPU and CUDA
parameters): one pass over each parameter that computes

    m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²,
    θ ← θ − η (m / (1 − β₁ᵗ)) / (√v / √(1 − β₂ᵗ) + ε)

with the IEEE square root of the vector unit.  Torch's default CPU path takes ``v.sqrt()``
through MKL's vector math library instead, whose float32 results are not correctly rounded
and were seen to differ between processes of the same command with 2 threads (the one
source of run-to-run variation found: docs/PERFORMANCE.md, "Reproducible runs"); the fused
kernel gives the same bits in every process and for any thread count, and is faster.
"""

from __future__ import annotations

import fnmatch
import math
from typing import Any, Callable

import torch

from .errors import SpikegradError
from .registry import Registry

# The per-parameter state tensors each optimiser keeps (a resumed checkpoint's are checked
# against the parameters' shapes before anything is loaded).
STATE_TENSORS = {"adam": ("exp_avg", "exp_avg_sq"), "adamw": ("exp_avg", "exp_avg_sq"), "sgd": ()}

OptimizerFactory = Callable[[Any, Any], torch.optim.Optimizer]   # (params or groups, train config)
OPTIMIZERS: Registry[OptimizerFactory] = Registry("optimizer")
ScheduleFactory = Callable[[torch.optim.Optimizer, Any], "torch.optim.lr_scheduler.LRScheduler | None"]
SCHEDULES: Registry[ScheduleFactory] = Registry("learning-rate schedule")


# the devices torch's fused Adam/AdamW kernels serve
FUSED_DEVICES = ("cpu", "cuda")


def _fused(params) -> tuple[list, dict]:
    """The parameters (a list) and ``{"fused": True}`` when every one of them is a
    floating-point tensor on a device the fused kernel serves (else ``{}``: torch's default)."""
    params = list(params)
    tensors = [p for entry in params for p in (entry["params"] if isinstance(entry, dict) else [entry])]
    ok = all(p.device.type in FUSED_DEVICES and p.is_floating_point() for p in tensors)
    return params, ({"fused": True} if ok else {})


@OPTIMIZERS.register("adam")
def _adam(params, t) -> torch.optim.Optimizer:
    params, fused = _fused(params)
    if t.weight_decay:
        return torch.optim.Adam(params, lr=t.lr, weight_decay=t.weight_decay, **fused)
    return torch.optim.Adam(params, lr=t.lr, **fused)


@OPTIMIZERS.register("adamw")
def _adamw(params, t) -> torch.optim.Optimizer:
    params, fused = _fused(params)
    return torch.optim.AdamW(params, lr=t.lr, weight_decay=t.weight_decay, **fused)


@OPTIMIZERS.register("sgd")
def _sgd(params, t) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=t.lr, momentum=t.momentum, weight_decay=t.weight_decay)


@SCHEDULES.register("constant")
def _constant(opt, t):
    return None


@SCHEDULES.register("cosine")
def _cosine(opt, t):
    return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=t.epochs, eta_min=t.lr_min)


@SCHEDULES.register("step")
def _step(opt, t):
    return torch.optim.lr_scheduler.StepLR(opt, step_size=t.step_epochs, gamma=t.step_gamma)


def parse_lr_groups(entries: list[str]) -> list[tuple[str, float]]:
    """``["readout.*=1e-3"]`` → ``[("readout.*", 0.001)]``; SpikegradError naming a bad entry."""
    out = []
    for entry in entries:
        pattern, sep, value = entry.partition("=")
        try:
            lr = float(value)
        except ValueError:
            lr = math.nan
        if not sep or not pattern.strip() or not (math.isfinite(lr) and lr > 0):
            raise SpikegradError(f"train.lr_groups entry {entry!r} is not PATTERN=LR with a learning rate > 0 "
                                 f"(e.g. 'readout.*=1e-3')")
        out.append((pattern.strip(), lr))
    return out


def param_groups(model: torch.nn.Module, lr_groups: list[str]):
    """The model's parameters, or — with ``lr_groups`` — a list of torch parameter groups:
    first the parameters no pattern matches (at ``train.lr``), then one group per pattern
    (each parameter in model order).  A pattern that matches nothing is an error."""
    if not lr_groups:
        return model.parameters()
    patterns = parse_lr_groups(lr_groups)
    rest, groups = [], [[] for _ in patterns]
    for name, p in model.named_parameters():
        for k, (pattern, _) in enumerate(patterns):
            if fnmatch.fnmatchcase(name, pattern):
                groups[k].append(p)
                break
        else:
            rest.append(p)
    names = [n for n, _ in model.named_parameters()]
    for (pattern, _), members in zip(patterns, groups):
        if not members:
            raise SpikegradError(f"train.lr_groups pattern {pattern!r} matches no parameter "
                                 f"(the model's: {', '.join(names)})")
    out = [{"params": rest}] if rest else []
    return out + [{"params": members, "lr": lr} for (_, lr), members in zip(patterns, groups)]


def make_optimizer(cfg, model: torch.nn.Module) -> torch.optim.Optimizer:
    """The optimiser the config names over the model's parameters (groups, clipping)."""
    t = cfg.train
    opt = OPTIMIZERS.get(t.optimizer)(param_groups(model, t.lr_groups), t)
    if t.clip_grad_norm > 0:
        params = [p for group in opt.param_groups for p in group["params"]]

        def clip(optimizer, args, kwargs) -> None:
            torch.nn.utils.clip_grad_norm_(params, t.clip_grad_norm)

        opt.register_step_pre_hook(clip)
    return opt


def make_schedule(cfg, opt: torch.optim.Optimizer):
    """The schedule the config names (stepped once per epoch), or None for ``constant``."""
    return SCHEDULES.get(cfg.train.schedule)(opt, cfg.train)


def check_train_config(t) -> None:
    """One clear error for an impossible optimiser or schedule setting."""
    if t.optimizer not in OPTIMIZERS:
        raise OPTIMIZERS.unknown(t.optimizer, "train.optimizer")
    if t.schedule not in SCHEDULES:
        raise SCHEDULES.unknown(t.schedule, "train.schedule")
    for name in ("weight_decay", "lr_min", "clip_grad_norm"):
        value = getattr(t, name)
        if not (math.isfinite(value) and value >= 0):
            raise SpikegradError(f"train.{name} must be ≥ 0, got {value}")
    if not (math.isfinite(t.momentum) and 0 <= t.momentum < 1):
        raise SpikegradError(f"train.momentum must lie in [0, 1), got {t.momentum}")
    if t.step_epochs < 1:
        raise SpikegradError(f"train.step_epochs must be ≥ 1, got {t.step_epochs}")
    if not (math.isfinite(t.step_gamma) and 0 < t.step_gamma <= 1):
        raise SpikegradError(f"train.step_gamma must lie in (0, 1], got {t.step_gamma}")
    if t.schedule == "cosine" and t.lr_min >= t.lr:
        raise SpikegradError(f"train.lr_min ({t.lr_min}) must be below train.lr ({t.lr}) for the cosine schedule")
    parse_lr_groups(t.lr_groups)
