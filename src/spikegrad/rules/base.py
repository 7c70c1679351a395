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
checkpoints carry it; stateless rules need neither.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

import torch

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
