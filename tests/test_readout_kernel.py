"""The matrix form of the leaky readout equals the step-by-step loop (values and gradients)."""

import pytest
import torch

from spikegrad.kernels.readout import leaky_readout_matmul
from spikegrad.neurons import leaky_readout


@pytest.mark.parametrize("gain", [1.0, 1 - 0.951229424500714])
@pytest.mark.parametrize("u0", [0.0, -1e-3, 0.5])
@pytest.mark.parametrize("decays", [(0.951229424500714, 0.8187307530779818), (0.5, 0.5), (0.9, 0.0)])
@pytest.mark.parametrize("n_steps", [1, 2, 37])
def test_matmul_readout_equals_the_loop_in_float64(gain, u0, decays, n_steps):
    g = torch.Generator().manual_seed(n_steps)
    h = torch.randn(3, n_steps, 4, dtype=torch.float64, generator=g, requires_grad=True)
    ref = leaky_readout(h, decays[0], decays[1], gain, u0)
    fast = leaky_readout_matmul(h, decays[0], decays[1], gain, u0)
    torch.testing.assert_close(fast, ref, rtol=1e-12, atol=1e-13)
    up = torch.randn(ref.shape, dtype=torch.float64, generator=g)
    if not ref.requires_grad:  # one step: U_out[0] = u0 depends on nothing
        ref = ref + 0 * h.sum()
    (g_ref,) = torch.autograd.grad(ref, h, up)
    (g_fast,) = torch.autograd.grad(fast, h, up)
    torch.testing.assert_close(g_fast, g_ref, rtol=1e-12, atol=1e-13)


def test_float32_close_to_the_loop():
    h = torch.rand(8, 500, 20)
    ref = leaky_readout(h, 0.951229424500714, 0.8187307530779818, 0.048770575499286, -1e-3)
    fast = leaky_readout_matmul(h, 0.951229424500714, 0.8187307530779818, 0.048770575499286, -1e-3)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-6)
