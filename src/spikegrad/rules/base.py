"""Learning rules as objects: ``rule.step(model, batch, optimizer) -> StepResult``.

The training loop (:func:`spikegrad.training.train`) draws the batches, counts, validates,
keeps the best state, checkpoints and resumes; which rule computes the update it does not
know.  A rule is made from the run's config by the factory registered under its name in
:data:`RULES` (``train.rule`` in the config, ``--rule`` on the command line), or passed to
``train(..., rule=...)`` as an object.

A rule's ``step`` computes whatever update it defines for one batch, applies it through the
optimizer (or sets ``.grad`` itself and calls ``optimizer.step()``), and returns the
batch's loss and the model's output for the loop's running metrics — or ``diverged=True``, with no
update, when the loss is not finite.  Rules that keep state of their own (eligibility
traces, feedback matrices) expose it with ``state_dict`` / ``load_state_dict`` so that
checkpoints carry it; stateless rules need neither.  With ``train.alignment`` the loop
asks the rule for ``alignment(model, batch) -> {name: value}`` once per epoch (on the
first validation batch) and logs it: :func:`gradient_alignment` computes it.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Protocol

import torch

from ..errors import SpikegradError
from ..registry import Registry


class StepResult(NamedTuple):
    """What one step reports: the batch's loss (a float), the model's output (the loss's
    metrics are computed from it: logits for accuracy, spike trains for a distance), and
    whether the loss was not finite (then nothing was updated)."""

    loss: float
    output: Any
    diverged: bool = False

    @property
    def logits(self):
        """The output, by its name for class logits."""
        return self.output


class Rule(Protocol):
    name: str

    def step(self, model: torch.nn.Module, batch: tuple[Any, torch.Tensor],
             optimizer: torch.optim.Optimizer) -> StepResult: ...


Objective = Callable[[torch.nn.Module, Any, torch.Tensor], tuple[torch.Tensor, torch.Tensor, Any]]
RuleFactory = Callable[[Any, Objective], Rule]   # (config, objective) -> rule
RULES: Registry[RuleFactory] = Registry("learning rule")


def register_rule(name: str) -> Callable[[RuleFactory], RuleFactory]:
    """Decorator: register ``factory(cfg, objective) -> rule`` under ``name``."""
    return RULES.register(name)


def make_rule(cfg, objective: Objective) -> Rule:
    """The rule ``cfg.train.rule`` names, made from the config and the objective."""
    return RULES.get(cfg.train.rule)(cfg, objective)


class FixedMatrices:
    """Fixed random matrices a rule keeps (feedback matrices, local readouts): drawn once,
    on the first step, from the shapes the model needs (:meth:`wanted`), each from
    U(±scale/√fan_in) in float64 with a generator seeded by ``seed · 1000 + seed_tag`` and
    cast to the model's dtype and device; saved in checkpoints (``state_dict``) and, when
    restored, checked against the model.  Subclasses set ``name``, ``matrix_kind``,
    ``seed_tag``, ``scale``, ``seed`` and ``matrices`` (a dict) and define :meth:`wanted`
    and :meth:`check_model`."""

    name: str
    matrix_kind: str
    seed_tag: int
    scale: float
    seed: int
    matrices: dict

    def wanted(self, model) -> dict:
        """name → (shape, fan_in, a tensor of the model's dtype and device), in drawing order."""
        raise NotImplementedError

    def check_model(self, model) -> None:
        """One SpikegradError when the rule cannot serve ``model``."""

    def ensure(self, model) -> None:
        """Draw the matrices for this model (once), or check the restored ones fit it."""
        self.check_model(model)
        wanted = self.wanted(model)
        if self.matrices:
            for name, (shape, _, like) in wanted.items():
                got = self.matrices.get(name)
                if got is None or tuple(got.shape) != tuple(shape):
                    raise SpikegradError(f"rule {self.name!r}: {self.matrix_kind} {name} does not fit the model "
                                         f"(needs shape {list(shape)})")
                self.matrices[name] = got.to(like)
            return
        gen = torch.Generator().manual_seed(self.seed * 1000 + self.seed_tag)
        self.matrices = {}
        for name, (shape, fan_in, like) in wanted.items():
            bound = self.scale / math.sqrt(fan_in)
            self.matrices[name] = torch.empty(shape, dtype=torch.float64).uniform_(-bound, bound, generator=gen).to(like)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().cpu().clone() for k, v in self.matrices.items()}

    def load_state_dict(self, state: dict) -> None:
        self.matrices = {k: v.clone() for k, v in state.items()}


def apply_gradients(model: torch.nn.Module, optimizer: torch.optim.Optimizer, grads: dict,
                    loss: torch.Tensor, output) -> StepResult:
    """The step of a rule that computes its own gradients: a loss that is not finite is
    reported with no update; else every parameter's ``.grad`` is set from ``grads`` (by
    name; missing or None: no gradient, the optimiser skips it) and the optimiser steps."""
    if not torch.isfinite(loss):
        return StepResult(float(loss), output, diverged=True)
    optimizer.zero_grad(set_to_none=True)
    for name, p in model.named_parameters():
        p.grad = grads.get(name)
    optimizer.step()
    return StepResult(float(loss), output)


def gradient_alignment(model: torch.nn.Module, objective: Objective, batch, credit=None,
                       feedback: dict[str, torch.Tensor] | None = None) -> dict[str, float]:
    """How a rule's update lines up with BPTT's gradient at the same weights, on one batch.

    ``credit``: the rule's :class:`~spikegrad.network.Credit` (None: BPTT itself).  Returns
    ``align_cos/<parameter>``: cos∠(rule's gradient, BPTT's gradient) per parameter (1:
    the same direction; NaN where either is zero), and with ``feedback`` (name → (forward
    weight, feedback matrix)) ``align_angle/<name>``: the angle in degrees between each
    forward weight and the feedback matrix that stands in for it (0: weight transport)."""
    x, y = batch
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]

    def grads(with_credit):
        model.credit = with_credit
        try:
            loss, _, _ = objective(model, x, y)
            return torch.autograd.grad(loss, [p for _, p in params], allow_unused=True)
        finally:
            model.credit = None

    exact, rule = grads(None), grads(credit) if credit is not None else None
    out = {}
    for (name, _), a, b in zip(params, exact, rule if rule is not None else exact):
        out[f"align_cos/{name}"] = _cosine(a, b)
    for name, (w, b) in (feedback or {}).items():
        c = _cosine(w, b)
        out[f"align_angle/{name}"] = float("nan") if c != c else math.degrees(math.acos(max(-1.0, min(1.0, c))))
    return out


def _cosine(a: torch.Tensor | None, b: torch.Tensor | None) -> float:
    if a is None or b is None:
        return float("nan")
    a, b = a.detach().double().flatten(), b.detach().double().flatten()
    norm = float(a.norm() * b.norm())
    return float(a @ b) / norm if norm > 0 else float("nan")
