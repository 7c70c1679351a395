"""The neuron-model seam: every registered kernel equals the generic scan for every model and
switch it claims; ALIF by hand and against finite differences; tensor-valued parameters;
per-call dispatch (named backends raise, "auto" passes on and records); torch.func."""

import copy
import dataclasses
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call, grad, jvp, stack_module_state, vmap

from spikegrad import ALIFParams, EventBatch, LIFParams, SNN, SpikegradError, register_surrogate, scan
from spikegrad.dynamics import NEURON_MODELS, CubaLIFParams, alif
from spikegrad.kernels.dispatch import kernels_for, run_layer, select_kernel
from spikegrad.kernels.options import KernelOptions
from spikegrad.neurons import lif_reference
from spikegrad.surrogates import SURROGATES
from kernel_helpers import CONNECTIVITY, SURROGATES as SURROGATE_NAMES, assert_rel_close, make_inputs

SWITCHES = list(itertools.product(SURROGATE_NAMES, ["zero", "subtract"], [True, False], CONNECTIVITY))


def _params(model, surrogate, reset, detach_reset, conn, **extra):
    common = dict(surrogate=surrogate, reset=reset, detach_reset=detach_reset, recurrent_grad=conn[1],
                  beta=5.0, **extra)
    if model == "alif":
        return ALIFParams(tau_adapt=30e-3, beta_adapt=0.5, **common)
    if model == "cuba":
        return CubaLIFParams(threshold=0.5, decays="euler", syn_gain=1.5, **common)
    return LIFParams(**common)


def _run_and_grads(ff, v, p, backend):
    ff = ff.detach().clone().requires_grad_()
    v = v.detach().clone().requires_grad_() if v is not None else None
    result = run_layer(ff, v, p, backend)
    gen = torch.Generator().manual_seed(7)
    c_s = torch.randn(result.spikes.shape, generator=gen, dtype=ff.dtype)
    c_u = torch.randn(result.voltages.shape, generator=gen, dtype=ff.dtype)
    loss = (result.spikes * c_s).sum() + (result.voltages * c_u).sum()
    inputs = [ff] + ([v] if v is not None else [])
    grads = torch.autograd.grad(loss, inputs, allow_unused=True)
    return result, [torch.zeros_like(x) if g is None else g for x, g in zip(inputs, grads)]


CASES = [(model, kernel, *switch) for model in NEURON_MODELS for kernel in kernels_for(model)
         for switch in SWITCHES]


@pytest.mark.parametrize("model,kernel,surrogate,reset,detach_reset,conn", CASES)
def test_every_registered_kernel_equals_the_generic_scan(model, kernel, surrogate, reset, detach_reset, conn):
    """float64: identical spikes, voltages bitwise where the contract is (fused; compiled
    feed-forward — its recurrent input adds V's columns in another order: 1e-12), gradients
    ≤ 1e-10 relative; float32: identical spikes where the contract is bitwise."""
    p = _params(model, surrogate, reset, detach_reset, conn)
    recurrent = conn[0] == "rc"
    ff, v = make_inputs(3 + SWITCHES.index((surrogate, reset, detach_reset, conn)), recurrent=recurrent)
    if kernels_for(model).get(kernel).supports(ff, v, p) is not None:
        pytest.skip(f"{kernel} does not claim this call")
    got, g_got = _run_and_grads(ff, v, p, kernel)
    want_s, want_traces = scan(ff, v, p)
    assert got.kernel == kernel
    assert want_s.sum() > 0
    bitwise = kernel in ("fused", "reference") or not recurrent
    assert torch.equal(got.spikes, want_s)
    if bitwise:
        assert torch.equal(got.voltages, want_traces[0])
    else:
        assert_rel_close(got.voltages.detach(), want_traces[0], rel=1e-12)
    _, g_want = _run_and_grads(ff, v, p, "reference")
    for a, b in zip(g_got, g_want):
        if surrogate != "true":
            assert b.abs().sum() > 0
        assert_rel_close(a, b, rel=1e-10)
    if bitwise:
        f32 = ff.float(), (v.float() if v is not None else None)
        assert torch.equal(run_layer(*f32, p, kernel).spikes, scan(*f32, p)[0])


def test_lif_scan_is_lif_reference_bitwise():
    p = LIFParams(surrogate="sigmoid", detach_reset=False)
    ff, v = make_inputs(11, dtype=torch.float32)
    s, traces = scan(ff, v, p)
    s_r, u_r = lif_reference(ff, v, p)
    assert torch.equal(s, s_r) and torch.equal(traces.u, u_r)
    assert traces._fields == ("u", "i")
    s_u, only_u = scan(ff, v, p, fields=("u",))                  # what the reference kernel records
    assert torch.equal(s_u, s) and torch.equal(only_u.u, traces.u) and only_u.i is None


def test_alif_by_hand():
    """One neuron, g = 1 (no input gain), input 2.0 at step 0.  LIF spikes at steps 2 and 4;
    ALIF's threshold, raised by the spike at step 2, keeps it silent at step 4 and the
    second spike comes at step 5 (U[5] = a·2b² + 2b³ ≈ 2.31 > ϑ[5] ≈ 1.49)."""
    a, b, rho = torch.exp(torch.tensor(-0.1, dtype=torch.float64)), torch.exp(torch.tensor(-0.2, dtype=torch.float64)), \
        torch.exp(torch.tensor(-1 / 200, dtype=torch.float64))
    p = ALIFParams(input_gain=False, beta_adapt=100.0)
    ff = torch.zeros(1, 6, 1, dtype=torch.float64)
    ff[0, 0, 0] = 2.0
    s, tr = scan(ff, None, p)
    # by hand: U[1] = 0, I[1] = 2; U[2] = I[1] = 2 > 1 → S[2] = 1; U[3] = 0 (reset),
    # b[3] = 1 − ρ; U[4] = I[3] = 2 b²; ϑ[4] = 1 + 100 ρ (1 − ρ) ≈ 1.496 > 2 b² ≈ 1.341;
    # U[5] = a U[4] + I[4] = a·2b² + 2b³ ≈ 2.31 > ϑ[5] = 1 + 100 ρ² (1 − ρ) ≈ 1.49
    u = [0.0, 0.0, 2.0, 0.0, float(2 * b * b), float(a * 2 * b * b + 2 * b ** 3)]
    bb = [0.0, 0.0, 0.0, float(1 - rho), float(rho * (1 - rho)), float(rho * rho * (1 - rho))]
    assert s[0, :, 0].tolist() == [0.0, 0.0, 1.0, 0.0, 0.0, 1.0]
    torch.testing.assert_close(tr.u[0, :, 0], torch.tensor(u, dtype=torch.float64), rtol=1e-15, atol=0)
    torch.testing.assert_close(tr.b[0, :, 0], torch.tensor(bb, dtype=torch.float64), rtol=1e-15, atol=0)
    lif_s, _ = scan(ff, None, LIFParams(input_gain=False))
    assert lif_s[0, :, 0].tolist() == [0.0, 0.0, 1.0, 0.0, 1.0, 0.0]


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_alif_without_adaptation_is_lif_bitwise(reset):
    ff, v = make_inputs(12, dtype=torch.float32)
    s_a, tr_a = scan(ff, v, ALIFParams(reset=reset, beta_adapt=0.0, detach_reset=False))
    s_l, tr_l = scan(ff, v, LIFParams(reset=reset, detach_reset=False))
    assert torch.equal(s_a, s_l) and torch.equal(tr_a.u, tr_l.u) and torch.equal(tr_a.i, tr_l.i)


@pytest.mark.parametrize("reset", ["zero", "subtract"])
def test_alif_gradients_equal_finite_differences_of_a_smoothed_alif(monkeypatch, reset):
    """With the step replaced by a sigmoid (forward and backward alike) and every path
    differentiable, autograd through the ALIF step — reset, recurrence and the adaptation
    b — equals central finite differences (float64)."""
    def smooth(x, surrogate, beta):
        return torch.sigmoid(4.0 * x)

    monkeypatch.setattr(alif, "spike", smooth)
    gen = torch.Generator().manual_seed(5)
    ff = torch.randn(2, 15, 4, generator=gen, dtype=torch.float64) * 6 + 2
    v = torch.randn(4, 4, generator=gen, dtype=torch.float64)
    w = torch.randn(2, 15, 4, generator=gen, dtype=torch.float64)
    p = ALIFParams(tau_adapt=20e-3, beta_adapt=2.0, reset=reset, detach_reset=False)

    def loss(ff, v):
        s, tr = scan(ff, v, p)
        return (s * w).sum() + (tr.u * w).sum()

    ffg, vg = ff.clone().requires_grad_(), v.clone().requires_grad_()
    g_ff, g_v = torch.autograd.grad(loss(ffg, vg), (ffg, vg))
    eps = 1e-6
    for idx in [(0, 0, 0), (1, 3, 2), (0, 7, 1), (1, 14, 3)]:
        d = torch.zeros_like(ff)
        d[idx] = eps
        fd = (loss(ff + d, v) - loss(ff - d, v)) / (2 * eps)
        assert abs(float(fd) - float(g_ff[idx])) <= 1e-6 * max(1.0, abs(float(fd)))
    for idx in [(0, 1), (3, 2)]:
        d = torch.zeros_like(v)
        d[idx] = eps
        fd = (loss(ff, v + d) - loss(ff, v - d)) / (2 * eps)
        assert abs(float(fd) - float(g_v[idx])) <= 1e-6 * max(1.0, abs(float(fd)))


def test_detaching_the_adaptation_changes_only_the_gradient():
    ff, v = make_inputs(13)
    p = ALIFParams(tau_adapt=20e-3, beta_adapt=2.0)
    r_on, g_on = _run_and_grads(ff, v, p, "auto")
    r_off, g_off = _run_and_grads(ff, v, dataclasses.replace(p, detach_adaptation=True), "auto")
    assert r_on.kernel == "reference" and torch.equal(r_on.spikes, r_off.spikes)
    assert (g_on[0] - g_off[0]).abs().max() > 1e-6


def test_tensor_valued_time_constants_run_on_the_reference_and_learn():
    """Per-neuron τ_mem as a learnable parameter: equal to the float record where all entries
    agree, "auto" picks the reference scan, a named fast kernel raises, and dL/dτ equals a
    finite difference (feed-forward, detached reset: no surrogate on the voltages' path)."""
    ff, _ = make_inputs(14, recurrent=False)
    v = None
    n = ff.shape[-1]
    tau = torch.nn.Parameter(torch.full((n,), 10e-3, dtype=torch.float64))
    p = LIFParams(tau_mem=tau, surrogate="sigmoid")
    assert p.tensor_fields == ("tau_mem",)
    result = run_layer(ff, v, p)
    s_f, u_f = lif_reference(ff, v, LIFParams(surrogate="sigmoid"))
    assert result.kernel == "reference"
    assert torch.equal(result.spikes, s_f)
    assert_rel_close(result.voltages.detach(), u_f, rel=1e-15)
    for backend in ("fused", "compiled"):
        with pytest.raises(SpikegradError, match=f"backend '{backend}' cannot run this lif layer: .*tau_mem are tensors"):
            run_layer(ff, v, p, backend)
    w = torch.randn(ff.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    (g,) = torch.autograd.grad((run_layer(ff, v, p).voltages * w).sum(), tau)
    eps = 1e-9
    for k in range(n):
        d = torch.zeros(n, dtype=torch.float64)
        d[k] = eps
        up = (run_layer(ff, v, LIFParams(tau_mem=tau.detach() + d, surrogate="sigmoid")).voltages * w).sum()
        dn = (run_layer(ff, v, LIFParams(tau_mem=tau.detach() - d, surrogate="sigmoid")).voltages * w).sum()
        assert abs(float((up - dn) / (2 * eps)) - float(g[k])) <= 1e-5 * max(1.0, abs(float(g[k])))
    layer_net = SNN(ff.shape[-1], [n], 2, p)
    assert any(name.endswith("neuron_tau_mem") for name, _ in layer_net.named_parameters())


def test_member_axis_parameters_equal_separate_members():
    """τ with a leading member axis [K, 1, N] runs K models at once (state [K, B, N])."""
    ff, v = make_inputs(15)
    taus = [8e-3, 12e-3, 20e-3]
    p = LIFParams(tau_mem=torch.tensor(taus, dtype=torch.float64).reshape(3, 1, 1).expand(3, 1, ff.shape[-1]))
    s, tr = scan(ff, v, p)
    assert s.shape == (3, *ff.shape)
    for k, tau in enumerate(taus):
        s_k, u_k = lif_reference(ff, v, LIFParams(tau_mem=tau))
        assert torch.equal(s[k], s_k)
        assert_rel_close(tr.u[k], u_k, rel=1e-14)


def test_named_backend_that_cannot_serve_raises_and_auto_records_what_ran():
    p = LIFParams()
    ff = torch.rand(2, 6, 3)
    with pytest.raises(SpikegradError, match="backend 'compiled' cannot run this lif layer: it runs on the CPU"):
        select_kernel(ff.to("meta"), None, p, "compiled")
    assert select_kernel(ff.to("meta"), None, p, "auto").name == "fused"
    with pytest.raises(SpikegradError, match=r"unknown backend 'compild' \(did you mean 'compiled'\?\); "
                                             r"choose one of: auto, compiled, fused, reference"):
        select_kernel(ff, None, p, "compild")
    with pytest.raises(SpikegradError, match="unknown backend 'fused'.*choose one of: auto, reference.*'alif'"):
        select_kernel(ff, None, ALIFParams(), "fused")
    net = SNN(3, [4], 2, LIFParams(surrogate="test-kernels-quartic"))
    net(torch.rand(2, 6, 3))
    assert net.kernels()[0]["kernel"] == "fused"                # no kernel form → next candidate
    net = SNN(3, [4], 2, ALIFParams())
    net(torch.rand(2, 6, 3))
    assert net.kernels() == [{"kernel": "reference", "input_path": "dense"}, {"readout": "fast"}]


@register_surrogate("test-kernels-quartic", "test only: 1/(β|x|+1)⁴")
def _quartic(x, beta):
    return 1.0 / (beta * x.abs() + 1.0) ** 4


def test_a_surrogate_with_a_kernel_form_reaches_the_compiled_kernel():
    """The compiled kernels' surrogate table comes from the registry: a user surrogate that
    declares a kernel form runs there and equals the reference."""
    from spikegrad.kernels import compiled
    name = "test-kernels-fast-sigmoid"
    register_surrogate(name, "test only", kernel_form="superspike")(SURROGATES.get("superspike").derivative)
    try:
        assert compiled.surrogate_codes()[name] == compiled.surrogate_codes()["superspike"] == 0
        ff, v = make_inputs(16)
        p = LIFParams(surrogate=name)
        got, g_got = _run_and_grads(ff, v, p, "auto")
        assert got.kernel == "compiled"
        _, g_want = _run_and_grads(ff, v, p, "reference")
        for a, b in zip(g_got, g_want):
            assert_rel_close(a, b, rel=1e-10)
    finally:
        SURROGATES.remove(name)


# ---------------------------------------------------------------------------------------
# torch.func

def _nets(backend, recurrent, k=3, seed=0):
    torch.manual_seed(seed)
    nets = [SNN(10, [8], 3, LIFParams(surrogate="sigmoid"), recurrent=recurrent, backend=backend).double()
            for _ in range(k)]
    for net in nets:
        with torch.no_grad():
            net.layers[0].weight.mul_(8)
    x = (torch.rand(4, 20, 10, generator=torch.Generator().manual_seed(seed + 1)) < 0.3).double()
    return nets, x


def _vmapped_logits(nets, x):
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    return vmap(lambda p, b: functional_call(base, (p, b), (x,)))(params, buffers), base


@pytest.mark.parametrize("recurrent", [False, True])
def test_vmap_over_stacked_weights_equals_separate_calls_on_the_reference(recurrent):
    nets, x = _nets("reference", recurrent)
    out, _ = _vmapped_logits(nets, x)
    want = torch.stack([net(x) for net in nets])
    assert want.abs().sum() > 0
    assert_rel_close(out, want, rel=1e-12)


@pytest.mark.parametrize("recurrent", [False, True])
def test_grad_equals_backward_and_jvp_the_directional_derivative_on_the_reference(recurrent):
    nets, x = _nets("reference", recurrent)
    net = nets[0]
    y = torch.tensor([0, 1, 2, 0])
    params = {k: v.detach() for k, v in net.named_parameters()}

    def loss(p):
        return F.cross_entropy(functional_call(net, p, (x,)), y)

    g = grad(loss)(params)
    F.cross_entropy(net(x), y).backward()
    tangents = {k: torch.randn(v.shape, generator=torch.Generator().manual_seed(9), dtype=v.dtype)
                for k, v in params.items()}
    _, directional = jvp(loss, (params,), (tangents,))
    from_backward = sum((prm.grad * tangents[k]).sum() for k, prm in net.named_parameters())
    for k, prm in net.named_parameters():
        assert prm.grad.abs().sum() > 0
        assert_rel_close(g[k], prm.grad, rel=1e-12)
    assert abs(float(directional - from_backward)) <= 1e-12 * max(1.0, abs(float(from_backward)))


@pytest.mark.parametrize("backend", ["fused", "compiled"])
def test_vmap_folds_into_the_batch_on_fast_paths_and_raises_for_stacked_recurrent_weights(backend):
    nets, x = _nets(backend, recurrent=False)
    out, base = _vmapped_logits(nets, x)
    assert base.kernels()[0] == {"kernel": backend, "input_path": "dense"}
    assert_rel_close(out, torch.stack([net(x) for net in nets]), rel=1e-12)
    nets, x = _nets(backend, recurrent=True)
    with pytest.raises(SpikegradError, match=f"backend '{backend}' cannot run this lif layer: vmap over "
                                             "stacked recurrent weights"):
        _vmapped_logits(nets, x)
    for net in nets:
        net.layers[0].backend = "auto"                     # "auto" passes on to the reference
    out, base = _vmapped_logits(nets, x)
    assert base.kernels()[0]["kernel"] == "reference"
    assert_rel_close(out, torch.stack([net(x) for net in nets]), rel=1e-12)


def test_fast_kernels_decline_torch_func_grad_and_auto_takes_the_reference():
    nets, x = _nets("compiled", recurrent=False)
    net = nets[0]
    params = {k: v.detach() for k, v in net.named_parameters()}
    with pytest.raises(SpikegradError, match="does not run under torch.func.grad"):
        grad(lambda p: functional_call(net, p, (x,)).sum())(params)
    net.layers[0].backend = "auto"
    g = grad(lambda p: functional_call(net, p, (x,)).sum())(params)
    assert net.kernels()[0]["kernel"] == "reference"
    net.layers[0].backend = "compiled"
    net(x).sum().backward()
    for k, prm in net.named_parameters():
        assert_rel_close(g[k], prm.grad, rel=1e-10)


def test_kernel_options_are_values(monkeypatch):
    with pytest.raises(SpikegradError, match="event_density_max must be a density"):
        KernelOptions(event_density_max=2.0)
    with pytest.raises(SpikegradError, match="unknown projection_impl 'gpu'"):
        KernelOptions(projection_impl="gpu")
    options = KernelOptions(record_events=False, projection_impl="torch")
    net = SNN(3, [], 2, kernel_options=options)            # no hidden layer: the readout projects the events
    assert net.readout.options is options
    import spikegrad.network as network
    seen = []
    real = network.project_input
    monkeypatch.setattr(network, "project_input", lambda *a, **k: (seen.append(k.get("options")), real(*a, **k))[1])
    net(EventBatch.from_dense((torch.rand(2, 6, 3) < 0.2).float()))
    assert seen == [options]


@pytest.mark.parametrize("backend", ["compiled", "fused", "reference"])
def test_backward_through_vmapped_stacked_weights_gives_each_members_gradients(backend):
    """Ensembles: stacked weights (leaves that require grad) through vmap, then an ordinary
    backward, give each member exactly its standalone gradients."""
    nets, x = _nets(backend, recurrent=False)
    params, buffers = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    vmap(lambda p, b: functional_call(base, (p, b), (x,)))(params, buffers).pow(2).sum().backward()
    assert base.kernels()[0]["kernel"] == backend
    for i, net in enumerate(nets):
        net(x).pow(2).sum().backward()
        for name, prm in net.named_parameters():
            assert prm.grad.abs().sum() > 0
            assert_rel_close(params[name].grad[i], prm.grad, rel=1e-12)


def test_the_fast_apply_equals_function_apply():
    """spikegrad._autograd.apply skips torch's per-call signature binding: same outputs,
    same backward node, same gradients as Function.apply (and Function.apply itself under
    torch.func)."""
    from spikegrad._autograd import apply
    from spikegrad.kernels.compiled import CompiledLIF
    from spikegrad.kernels.fused import FusedLIF
    from spikegrad.surrogates import SpikeFunction, get_surrogate
    ff, v = make_inputs(21)
    p = LIFParams(surrogate="sigmoid")
    cases = [(SpikeFunction, (ff[:, 0], get_surrogate("sigmoid"), 5.0)), (FusedLIF, (ff, v, p)),
             (CompiledLIF, (ff, v, p, KernelOptions()))]
    for fn, args in cases:
        grads = []
        for call in (apply, lambda f, *a: f.apply(*a)):
            x = args[0].detach().clone().requires_grad_()
            out = call(fn, x, *args[1:])
            first = out[0] if isinstance(out, tuple) else out
            assert type(first.grad_fn).__name__ == f"{fn.__name__}Backward"
            (first * torch.arange(first.numel(), dtype=first.dtype).reshape(first.shape)).sum().backward()
            grads.append((first.detach(), x.grad))
        assert torch.equal(grads[0][0], grads[1][0]) and torch.equal(grads[0][1], grads[1][1])
