"""Shared helpers for the LIF-kernel tests (fused, compiled) against the plain reference."""

import torch

SURROGATES = ["superspike", "superspike-asym", "sigmoid", "esser", "true"]
CONNECTIVITY = [("ff", "prop"), ("rc", "prop"), ("rc", "ctl")]


def make_inputs(seed, batch=3, steps=25, n=6, recurrent=True, input_gain=True,
                dtype=torch.float64):
    """Random input currents (and V) that make a good fraction of neurons spike."""
    gen = torch.Generator().manual_seed(seed)
    scale = 12.0 if input_gain else 0.9  # the gain 1 − β_mem ≈ 0.095 shrinks the drive
    ff = (torch.rand(batch, steps, n, generator=gen, dtype=dtype) - 0.35) * scale
    v = (torch.rand(n, n, generator=gen, dtype=dtype) * 2 - 1) * scale / 3 if recurrent else None
    return ff, v


def outputs_and_grads(kernel, ff, v, p, seed=0, spike_grad=True, volt_grad=True):
    """Spikes, voltages, and d(loss)/d(ff, v) for a random linear functional of both outputs."""
    ff = ff.detach().clone().requires_grad_()
    v = v.detach().clone().requires_grad_() if v is not None else None
    s, u = kernel(ff, v, p)
    gen = torch.Generator().manual_seed(1000 + seed)
    loss = 0.0
    if spike_grad:
        loss = loss + (s * torch.randn(s.shape, generator=gen, dtype=s.dtype)).sum()
    if volt_grad:
        loss = loss + (u * torch.randn(u.shape, generator=gen, dtype=u.dtype)).sum()
    inputs = [ff] + ([v] if v is not None else [])
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    grads = [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]
    return s.detach(), u.detach(), grads


def assert_rel_close(got, want, rel=1e-10):
    """Equal to ``rel`` relative to the largest entry (entries near zero are compared absolutely)."""
    scale = want.abs().max().item() if want.numel() else 0.0
    err = (got - want).abs().max().item() if want.numel() else 0.0
    assert err <= rel * max(scale, 1e-300), f"max error {err:.3e} vs scale {scale:.3e}"
