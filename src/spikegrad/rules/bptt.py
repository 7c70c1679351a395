"""Backpropagation through time: the loss of one batch, ``loss.backward()``, one optimizer step.

With the surrogate derivative in place of the step's (spikegrad.surrogates) this is the
surrogate-gradient BPTT of Zenke & Vogels 2021; the switches of the neuron model (detached
reset, Ctl recurrence) shape the gradient.  The loss is the config's objective (today the
loss of `train.loss` plus the activity regulariser, given by the training loop).
"""

from __future__ import annotations

import torch

from .base import Objective, StepResult, gradient_alignment, register_rule


class BPTT:
    """``step``: objective → (not finite: report, no update) → zero_grad → backward → step."""

    name = "bptt"

    def __init__(self, objective: Objective):
        self.objective = objective

    def step(self, model, batch, optimizer) -> StepResult:
        x, y = batch
        loss, output, _ = self.objective(model, x, y)
        if not torch.isfinite(loss):
            return StepResult(float(loss.detach()), output, diverged=True)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return StepResult(float(loss.detach()), output)

    def alignment(self, model, batch) -> dict[str, float]:
        """BPTT against itself: cos = 1 for every parameter with a gradient (the control)."""
        return gradient_alignment(model, self.objective, batch)


@register_rule("bptt")
def _bptt(cfg, objective: Objective) -> BPTT:
    return BPTT(objective)
