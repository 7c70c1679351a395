"""The matrix form of the leaky readout equals the step-by-step loop (values and gradients)."""

import pytest
import torch

from spikegrad.kernels import readout as readout_kernels
from spikegrad.kernels.readout import leaky_readout_fast, leaky_readout_matmul
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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("n_steps", [1, 2, 70, 500])
def test_compiled_readout_equals_the_loop(dtype, n_steps):
    g = torch.Generator().manual_seed(n_steps)
    h = torch.randn(3, n_steps, 5, dtype=dtype, generator=g).requires_grad_()
    coef = (0.951229424500714, 0.8187307530779818, 0.048770575499286, -1e-3)
    ref = leaky_readout(h, *coef)
    fast = leaky_readout_fast(h, *coef)
    assert type(fast.grad_fn).__name__ == "CompiledReadoutBackward"
    assert torch.equal(fast, ref)  # same operations in the same order
    up = torch.randn(ref.shape, dtype=dtype, generator=g)
    if not ref.requires_grad:
        ref = ref + 0 * h.sum()
    (g_ref,) = torch.autograd.grad(ref, h, up)
    (g_fast,) = torch.autograd.grad(fast, h, up)
    tol = dict(rtol=1e-12, atol=1e-13) if dtype == torch.float64 else dict(rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_fast, g_ref, **tol)


def test_compiled_readout_gradcheck_and_fallback(monkeypatch):
    h = torch.randn(2, 9, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: leaky_readout_fast(x, 0.9, 0.7, 0.1, 0.2), (h,))
    monkeypatch.setattr(readout_kernels, "numba_available", lambda: False)
    out = leaky_readout_fast(h, 0.9, 0.7, 0.1, 0.2)
    assert type(out.grad_fn).__name__ != "CompiledReadoutBackward"
    torch.testing.assert_close(out, leaky_readout(h, 0.9, 0.7, 0.1, 0.2), rtol=1e-12, atol=1e-13)


def test_fast_backends_use_the_compiled_readout():
    from spikegrad.network import SNN
    x = (torch.rand(4, 30, 6) < 0.2).float()
    fast, ref = SNN(6, [5], 3), SNN(6, [5], 3, backend="reference")
    ref.load_state_dict(fast.state_dict())
    assert fast.readout.method == "fast" and ref.readout.method == "loop"
    torch.testing.assert_close(fast(x), ref(x), rtol=1e-6, atol=1e-7)
