"""Feedback alignment (fa) and direct feedback alignment (dfa): with the feedback matrices set
to the forward weights fa is BPTT (float64); with random matrices both equal the formulas
computed piece by piece with plain autograd; with one hidden layer dfa is fa; the matrices
are saved and restored bit-exactly; what the kernels cannot serve is said."""

import json

import pytest
import torch
import torch.nn.functional as F

from spikegrad import SNN, ALIFParams, Config, LIFParams, SpikegradError, train
from spikegrad.dynamics import CubaLIFParams, scan
from spikegrad.dynamics.base import feedback_matmul
from spikegrad.neurons import leaky_readout
from spikegrad.rules import DirectFeedbackAlignment, FeedbackAlignment

TINY = {"data.randman.classes": 3, "data.randman.train_per_class": 40, "data.randman.val_per_class": 10,
        "data.randman.test_per_class": 10, "data.randman.terms": 50, "model.hidden": [16],
        "train.epochs": 4, "train.batch_size": 30, "train.lr": 1e-2, "model.init": "fluctuation"}


def _net(hidden, recurrent=False, readout="max", output="readout", reset="zero", detach_reset=True,
         recurrent_grad="prop", readout_steps=0, backend="auto", neuron="lif"):
    torch.manual_seed(3)
    params = LIFParams(reset=reset, detach_reset=detach_reset, recurrent_grad=recurrent_grad)
    if neuron == "alif":
        params = ALIFParams(reset=reset, detach_reset=detach_reset, recurrent_grad=recurrent_grad,
                            tau_adapt=0.05, beta_adapt=0.5)
    if neuron == "cuba":
        params = CubaLIFParams(reset=reset, detach_reset=detach_reset, recurrent_grad=recurrent_grad,
                               decays="euler", threshold=0.5)
    net = SNN(12, hidden, 3, params, recurrent=recurrent, readout=readout, output=output,
              readout_steps=readout_steps, backend=backend).double()
    with torch.no_grad():
        for layer in net.layers:
            layer.weight.mul_(6.0)                          # layers that spike
        if output == "spikes":
            net.output_layer.weight.mul_(6.0)
    return net


def _batch():
    gen = torch.Generator().manual_seed(5)
    x = (torch.rand(4, 25, 12, generator=gen, dtype=torch.float64) < 0.2).double()
    return x, torch.tensor([0, 1, 2, 1])


def _loss(net, out, y):
    return F.cross_entropy(out.sum(1) if net.output_layer is not None else out, y)


def _grads(net, credit=None):
    x, y = _batch()
    net.zero_grad()
    net.credit = credit
    try:
        _loss(net, net(x), y).backward()
    finally:
        net.credit = None
    return {n: p.grad.clone() for n, p in net.named_parameters()}


def _rule(cls, net, matrices=None):
    rule = cls(objective=None, seed=0)
    rule.ensure(net)
    if matrices is not None:
        rule.matrices = matrices
    return rule


def _transposes(net):
    """fa's matrices set to the forward weights themselves: B_l = W_l, C_l = V_l."""
    out, top = {}, len(net.layers)
    for k, layer in enumerate(net.layers):
        if k:
            out[f"B{k}"] = layer.weight.detach().clone()
        if layer.recurrent_weight is not None:
            out[f"C{k}"] = layer.recurrent_weight.detach().clone()
    head = net.output_layer if net.output_layer is not None else net.readout
    out[f"B{top}"] = head.weight.detach().clone()
    return out


CASES = [
    dict(hidden=[10]), dict(hidden=[10], recurrent=True), dict(hidden=[10, 8]),
    dict(hidden=[10, 8], recurrent=True, readout="sum"), dict(hidden=[10], recurrent=True, recurrent_grad="ctl"),
    dict(hidden=[10], reset="subtract", detach_reset=False, readout="last"),
    dict(hidden=[10, 8], output="spikes"), dict(hidden=[10], recurrent=True, readout_steps=6),
    dict(hidden=[10, 8], recurrent=True, neuron="alif"),
    dict(hidden=[10, 8], recurrent=True, neuron="cuba"), dict(hidden=[10, 8], output="spikes", neuron="cuba"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_fa_with_the_forward_weights_as_feedback_is_bptt(case):
    net = _net(**case)
    want = _grads(net)
    got = _grads(net, _rule(FeedbackAlignment, net, _transposes(net)))
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12, msg=name)


def test_the_feedback_product_sends_the_gradient_through_the_feedback_matrix():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(6, 4, dtype=torch.float64, generator=gen, requires_grad=True)
    b = torch.randn(6, 4, dtype=torch.float64, generator=gen)
    g = torch.randn(3, 5, 6, dtype=torch.float64, generator=gen)
    y = feedback_matmul(x, w, b)
    assert torch.equal(y, x @ w.t())
    y.backward(g)
    torch.testing.assert_close(x.grad, g @ b, rtol=1e-14, atol=0)
    torch.testing.assert_close(w.grad, torch.einsum("btj,bti->ji", g, x.detach()), rtol=1e-12, atol=1e-14)


def _pieces(net, x, y, send):
    """Gradients computed layer by layer with plain autograd and the reference scan, the
    error between layers chosen by ``send(k, e_out, delta_ff_next)`` → ∂L/∂S_k."""
    p = net.params
    spikes, inputs = [], [x]
    for layer in net.layers:                                        # forward, layers cut apart
        xin = inputs[-1].detach().requires_grad_()
        ff = xin @ layer.weight.t()
        s, _ = scan(ff, None, p)
        spikes.append((xin, ff, s))
        inputs.append(s)
    h = (inputs[-1].detach() @ net.readout.weight.t()).detach().requires_grad_()
    logits = net.readout.reduce(leaky_readout(h, net.readout.decay_out, net.readout.decay_syn, net.readout.gain,
                                              net.readout.initial_state))
    loss = F.cross_entropy(logits, y)
    (e,) = torch.autograd.grad(loss, h)                            # error at the readout's input
    grads = {"readout.weight": torch.einsum("btc,btn->cn", e, inputs[-1])}
    delta_next = None
    for k in reversed(range(len(net.layers))):
        xin, ff, s = spikes[k]
        d_s = send(k, e, delta_next)
        d_ff, d_w = torch.autograd.grad(s, (ff, net.layers[k].weight), d_s)
        grads[f"layers.{k}.weight"] = d_w
        delta_next = d_ff
    return grads


def test_fa_with_random_feedback_equals_the_layer_by_layer_formula():
    net = _net([10, 8], backend="reference")
    rule = _rule(FeedbackAlignment, net)
    B1, B2 = rule.matrices["B1"], rule.matrices["B2"]
    x, y = _batch()
    want = _pieces(net, x, y, lambda k, e, d: e @ B2 if k == 1 else d @ B1)
    got = _grads(net, rule)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12, msg=name)
    bptt = _grads(net)
    assert not torch.allclose(got["layers.0.weight"], bptt["layers.0.weight"])   # random feedback: another update
    torch.testing.assert_close(got["readout.weight"], bptt["readout.weight"])      # the readout's own is BPTT's


def test_dfa_sends_the_output_error_to_every_layer_and_none_between_them():
    net = _net([10, 8], backend="reference")
    rule = _rule(DirectFeedbackAlignment, net)
    H = rule.matrices
    assert set(H) == {"H0", "H1"} and H["H0"].shape == (3, 10) and H["H1"].shape == (3, 8)
    x, y = _batch()
    want = _pieces(net, x, y, lambda k, e, d: e @ H[f"H{k}"])
    got = _grads(net, rule)
    for name in want:
        torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-12, msg=name)


@pytest.mark.parametrize("case", [dict(hidden=[10]), dict(hidden=[10], recurrent=True), dict(hidden=[10], readout_steps=6),
                                  dict(hidden=[10], output="spikes")], ids=["ff", "rc", "window", "spiking-output"])
def test_with_one_hidden_layer_dfa_is_fa(case):
    net = _net(**case)
    fa, dfa = _rule(FeedbackAlignment, net), _rule(DirectFeedbackAlignment, net)
    assert torch.equal(fa.matrices["B1"], dfa.matrices["H0"])       # the same draw
    a, b = _grads(net, fa), _grads(net, dfa)
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-12, atol=1e-14, msg=name)


def test_with_two_hidden_layers_dfa_and_fa_differ():
    net = _net([10, 8])
    a, b = _grads(net, _rule(FeedbackAlignment, net)), _grads(net, _rule(DirectFeedbackAlignment, net))
    torch.testing.assert_close(a["readout.weight"], b["readout.weight"])
    assert not torch.allclose(a["layers.0.weight"], b["layers.0.weight"])


def test_recurrent_feedback_runs_on_the_reference_scan_and_a_named_fast_kernel_says_why_not():
    net = _net([10], recurrent=True)
    net.credit = _rule(FeedbackAlignment, net)
    x, _ = _batch()
    net(x)
    assert net.kernels()[0]["kernel"] == "reference"
    net.layers[0].backend = "compiled"
    with pytest.raises(SpikegradError, match="backend 'compiled' cannot run this lif layer: .*feedback matrix"):
        net(x)
    net.credit = None
    ff = _net([10, 8])
    ff.credit = _rule(FeedbackAlignment, ff)
    ff(x)
    assert [k.get("kernel") for k in ff.kernels()[:2]] == ["compiled", "compiled"]   # feed-forward: the fast kernel


@pytest.mark.parametrize("rule", ["fa", "dfa"])
def test_feedback_matrices_are_saved_and_restored_bit_exactly(tmp_path, rule, resumes_bit_exactly):
    cfg = Config().with_overrides({**TINY, "train.rule": rule, "model.hidden": [16, 8], "model.recurrent": True})
    resumes_bit_exactly(cfg, tmp_path)
    ckpt = torch.load(tmp_path / "full" / "checkpoint.pt", weights_only=True)
    names = {"fa": {"C0", "C1", "B1", "B2"}, "dfa": {"C0", "C1", "H0", "H1"}}[rule]
    assert set(ckpt["rule"]) == names


def test_the_rules_train_by_name_and_refuse_models_they_cannot_serve(tmp_path):
    small = {**TINY, "data.randman.train_per_class": 60, "data.randman.val_per_class": 20,
             "data.randman.test_per_class": 20, "model.hidden": [32], "train.epochs": 8}
    metrics = train(Config().with_overrides({**small, "train.rule": "fa"}))
    assert metrics["val_accuracy"] > 0.5                              # 3 classes: chance is 1/3
    with pytest.raises(SpikegradError, match="train.feedback_scale must be > 0"):
        Config().with_overrides({"train.feedback_scale": 0.0})
    from spikegrad.models import MODELS, register_model
    register_model("test-not-snn")(lambda cfg, n_in, n_out: torch.nn.Linear(n_in, n_out))
    try:
        with pytest.raises(SpikegradError, match="train.rule 'dfa' sends errors through an eq. 4.1 network"):
            train(Config().with_overrides({**TINY, "train.rule": "dfa", "model.arch": "test-not-snn",
                                           "model.init": "uniform"}))
    finally:
        MODELS.remove("test-not-snn")


SMALL = {**TINY, "data.randman.train_per_class": 60, "data.randman.val_per_class": 20,
         "data.randman.test_per_class": 20, "model.hidden": [32], "train.epochs": 3}


def test_with_one_hidden_layer_fa_and_dfa_train_the_same_run_bit_for_bit(tmp_path, assert_same_run):
    for rule in ("fa", "dfa"):
        train(Config().with_overrides({**SMALL, "train.rule": rule}), tmp_path / rule)
    assert_same_run(tmp_path / "fa", tmp_path / "dfa")


def test_alignment_is_one_for_bptt_and_for_fa_with_the_forward_weights():
    from spikegrad.rules import BPTT
    from spikegrad.training import loss_and_record

    cfg = Config()
    objective = lambda m, x, y: loss_and_record(m, x, y, cfg)  # noqa: E731
    net = _net([10, 8], recurrent=True)
    batch = _batch()
    report = BPTT(objective).alignment(net, batch)
    assert all(v == pytest.approx(1.0, abs=1e-12) for v in report.values())
    fa = FeedbackAlignment(objective)
    fa.ensure(net)
    fa.matrices = _transposes(net)
    report = fa.alignment(net, batch)
    assert {k for k in report if k.startswith("align_angle/")} == {"align_angle/B1", "align_angle/B2",
                                                                  "align_angle/C0", "align_angle/C1"}
    for key, value in report.items():
        assert value == pytest.approx(1.0 if key.startswith("align_cos/") else 0.0, abs=1e-6), key
    fa.matrices = {}
    random = fa.alignment(net, batch)
    assert all(60 < random[f"align_angle/{n}"] < 120 for n in ("B1", "B2", "C0", "C1"))   # random: ~90°
    assert random["align_cos/readout.weight"] == pytest.approx(1.0, abs=1e-12)       # its own gradient is BPTT's
    assert random["align_cos/layers.0.weight"] < 0.999


def test_alignment_is_logged_per_epoch_and_plotted(tmp_path, capsys):
    from spikegrad.cli import main

    for rule in ("fa", "dfa"):
        cfg = Config().with_overrides({**SMALL, "model.hidden": [16, 8], "train.rule": rule, "train.alignment": True})
        train(cfg, tmp_path / rule)
    rows = [json.loads(line) for line in (tmp_path / "dfa" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and {"align_cos/layers.0.weight", "align_angle/H1"} <= set(rows[0])
    assert main(["alignment", str(tmp_path / "fa"), str(tmp_path / "dfa"), "--out", str(tmp_path / "a.png")]) == 0
    assert (tmp_path / "a.png").stat().st_size > 10_000
    lines = (tmp_path / "a.csv").read_text().splitlines()
    assert lines[0] == "run,rule,epoch,quantity,value" and any(",dfa,3,align_angle/H1," in line for line in lines)
    train(Config().with_overrides({**SMALL, "train.epochs": 1}), tmp_path / "plain")
    capsys.readouterr()
    assert main(["alignment", str(tmp_path / "plain"), "--out", str(tmp_path / "b.png")]) == 2
    assert "no alignment was logged" in capsys.readouterr().err and not (tmp_path / "b.png").exists()


def test_a_rule_without_an_alignment_report_is_refused_when_asked_for_one():
    class Quiet:
        name = "quiet"

        def step(self, model, batch, optimizer):
            raise AssertionError("not reached")

    with pytest.raises(SpikegradError, match="train.alignment: rule 'quiet' does not report"):
        train(Config().with_overrides({**SMALL, "train.alignment": True}), rule=Quiet())


def test_kolen_pollack_gives_each_feedback_matrix_its_weights_update_and_decays_both():
    from spikegrad.training import loss_and_record

    cfg = Config()
    net = _net([10, 8], recurrent=True)
    rule = FeedbackAlignment(lambda m, x, y: loss_and_record(m, x, y, cfg), kolen_pollack=0.1)
    rule.ensure(net)
    pairs = rule.standing_for(net)
    b_before = {k: v.clone() for k, v in rule.matrices.items()}
    w_before = {k: w.detach().clone() for k, (w, _) in pairs.items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    stepped = {}
    real_step = opt.step

    def spy():
        real_step()
        stepped.update({k: w.detach().clone() for k, (w, _) in pairs.items()})

    opt.step = spy
    rule.step(net, _batch(), opt)
    for name, (w, _) in pairs.items():
        torch.testing.assert_close(rule.matrices[name], 0.9 * (b_before[name] + stepped[name] - w_before[name]),
                                   rtol=1e-12, atol=1e-14)
        torch.testing.assert_close(w.detach(), 0.9 * stepped[name], rtol=1e-12, atol=1e-14)


def test_kolen_pollack_brings_the_feedback_into_line_with_the_weights(tmp_path):
    angles = {}
    for kp in (0.0, 0.01):
        cfg = Config().with_overrides({**SMALL, "model.hidden": [32, 16], "train.epochs": 8, "train.rule": "fa",
                                       "train.alignment": True, "train.kolen_pollack": kp})
        train(cfg, tmp_path / str(kp))
        rows = [json.loads(line) for line in (tmp_path / str(kp) / "metrics.jsonl").read_text().splitlines()]
        angles[kp] = [row["align_angle/B2"] for row in rows]
    assert abs(angles[0.0][-1] - angles[0.0][0]) < 5                # plain fa: B stays where it was drawn
    assert angles[0.01][-1] < angles[0.01][0] - 30                  # Kolen–Pollack: B comes to W
    with pytest.raises(SpikegradError, match="use it with train.rule 'fa'"):
        train(Config().with_overrides({**SMALL, "train.rule": "dfa", "train.kolen_pollack": 0.01}))
