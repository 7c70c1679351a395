"""LIF dynamics on hand-derived cases (eq. 4.1 and the tutorial's subtractive form)."""

import math

import pytest
import torch

from spikegrad import LIFParams, SpikegradError, lif_layer
from spikegrad.neurons import leaky_readout

B_MEM = math.exp(-0.1)  # dt = 1 ms, tau_mem = 10 ms
B_SYN = math.exp(-0.2)  # tau_syn = 5 ms


def run_one(weight: float, steps: int, **kw):
    """One neuron, one input spike at step 0 with weight ``weight``; float64."""
    p = LIFParams(**kw)
    ff = torch.zeros(1, steps, 1, dtype=torch.float64)
    ff[0, 0, 0] = weight
    s, u = lif_layer(ff, None, p)
    return s[0, :, 0].tolist(), u[0, :, 0].tolist()


def test_zero_reset_without_gain_by_hand():
    # I[1] = 3; U[2] = 3 > 1 -> S[2] = 1, U[3] = 0; I[n] = 3 B_SYN^(n-1)
    # U[4] = I[3] = 3 B_SYN^2 = 2.01 -> S[4] = 1; U[6] = 3 B_SYN^4 = 1.35 -> S[6] = 1;
    # U[8] = 3 B_SYN^6 = 0.904 < 1, then U[9] = B_MEM U[8] + 3 B_SYN^7 ...
    s, u = run_one(3.0, 10, input_gain=False)
    assert u[0] == 0 and u[1] == 0
    assert u[2] == pytest.approx(3.0)
    assert u[3] == 0.0 and u[5] == 0.0 and u[7] == 0.0
    assert u[4] == pytest.approx(3 * B_SYN**2)
    assert u[6] == pytest.approx(3 * B_SYN**4)
    assert u[8] == pytest.approx(3 * B_SYN**6)
    u9 = B_MEM * 3 * B_SYN**6 + 3 * B_SYN**7
    assert u[9] == pytest.approx(u9)
    assert s == [0, 0, 1, 0, 1, 0, 1, 0, 0, 1 if u9 > 1 else 0]
    assert u9 > 1  # 1.45: the neuron fires once more at step 9


def test_zero_reset_with_gain_by_hand():
    # gain g = 1 - B_MEM: U[2] = 3 g = 0.285 -> no spike;
    # U[n+1] = B_MEM U[n] + g 3 B_SYN^(n-1)
    s, u = run_one(3.0, 6)
    g = 1 - B_MEM
    expect = [0.0, 0.0, 3 * g]
    for n in range(2, 5):
        expect.append(B_MEM * expect[n] + g * 3 * B_SYN ** (n - 1))
    assert u == pytest.approx(expect, rel=1e-12)
    assert s == [0] * 6


def test_subtractive_reset_by_hand():
    # U[3] = B_MEM*3 + 3 B_SYN - 1 (subtract threshold instead of zeroing)
    s, u = run_one(3.0, 5, input_gain=False, reset="subtract")
    u3 = B_MEM * 3 + 3 * B_SYN - 1
    u4 = B_MEM * u3 + 3 * B_SYN**2 - 1
    assert u[2] == pytest.approx(3.0)
    assert u[3] == pytest.approx(u3)
    assert u[4] == pytest.approx(u4)
    assert s == [0, 0, 1, 1, 1]


def test_threshold_is_strict():
    # U[2] = exactly 1.0 (weight 1, no gain): U > 1 is required for a spike
    s, u = run_one(1.0, 4, input_gain=False)
    assert u[2] == 1.0
    assert s[2] == 0


def test_recurrent_input_arrives_one_step_after_the_spike():
    # neuron A fires at step 2; V[B, A] = 5 enters I_B[3], so U_B[4] = 5 and B fires at 4
    p = LIFParams(input_gain=False)
    ff = torch.zeros(1, 7, 2, dtype=torch.float64)
    ff[0, 0, 0] = 3.0
    v = torch.tensor([[0.0, 0.0], [5.0, 0.0]], dtype=torch.float64)
    s, u = lif_layer(ff, v, p)
    assert s[0, :, 0].tolist() == [0, 0, 1, 0, 1, 0, 1]
    assert u[0, :4, 1].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert u[0, 4, 1].item() == pytest.approx(5.0)
    assert s[0, :, 1].tolist()[:5] == [0, 0, 0, 0, 1]
    # B was reset to 0 at 5; I_B[5] = B_SYN I_B[4] + 5 S_A[4] = 5 B_SYN^2 + 5 -> U_B[6] = I_B[5]
    assert u[0, 6, 1].item() == pytest.approx(5 * B_SYN**2 + 5)


def test_readout_by_hand():
    # U_out[0] = u0; one input at step 0 into I_out[1]; U_out[2] = b u0 + g w
    b_out = math.exp(-1 / 20)
    g = 1 - b_out
    h = torch.zeros(1, 5, 1, dtype=torch.float64)
    h[0, 0, 0] = 2.0
    u = leaky_readout(h, b_out, B_SYN, g, -1e-3)[0, :, 0].tolist()
    expect = [-1e-3, b_out * -1e-3]
    i = 2.0
    for _ in range(3):
        expect.append(b_out * expect[-1] + g * i)
        i *= B_SYN
    assert u == pytest.approx(expect, rel=1e-12)


@pytest.mark.parametrize("kw, msg", [
    ({"tau_mem": -1e-3}, "tau_mem"),
    ({"tau_syn": 0.0}, "tau_syn"),
    ({"dt": float("nan")}, "dt"),
    ({"reset": "soft"}, "reset"),
    ({"recurrent_grad": "both"}, "recurrent_grad"),
    ({"surrogate": "nope"}, "nope"),
    ({"beta": -1.0}, "beta"),
])
def test_bad_params_raise(kw, msg):
    with pytest.raises(SpikegradError, match=msg):
        LIFParams(**kw)


def test_unknown_backend_raises():
    with pytest.raises(SpikegradError, match="backend"):
        lif_layer(torch.zeros(1, 2, 1), None, LIFParams(), backend="cuda-magic")


def test_time_loop_has_no_select_nodes():
    """Indexing h[:, t] in the loop makes backward O(T^2) (SCIENCE.md §7); unbind avoids it."""
    ff = torch.randn(2, 30, 3, requires_grad=True)
    s, u = lif_layer(ff, torch.randn(3, 3), LIFParams(), backend="reference")
    seen, stack, names = set(), [s.grad_fn, u.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        stack.extend(n for n, _ in node.next_functions)
    assert "UnbindBackward0" in names
    assert not any(n.startswith("SelectBackward") for n in names)
