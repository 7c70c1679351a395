"""benchmarks/peers.py at tiny sizes: loss agreement logic, the child protocol, unavailable peers.

Needs none of the peer libraries; the peer-specific checks skip when a peer is not installed.
"""

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Tiny network; the default input gain (1.25/√density) makes the hidden layer fire at ≈ 1–2 %,
# so resets happen and the loss check is not vacuous.
TINY = dict(T=30, density=0.1, batch=6, n_in=40, n_hidden=24, n_out=5, steps=1, warmup=0,
            check_steps=3, threads=1)


@pytest.fixture(scope="module")
def pb():
    spec = importlib.util.spec_from_file_location("bench_peers", ROOT / "benchmarks" / "peers.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_peers"] = mod
    spec.loader.exec_module(mod)
    return mod


_REFERENCE: dict = {}


def _run(pb, model, arch, **kw):
    if model == "spikegrad-reference-dense" and not kw and arch in _REFERENCE:
        return dict(_REFERENCE[arch])
    res = pb.run_one(pb.Spec(model=model, arch=arch, **{**TINY, **kw}))
    assert res["status"] == "ok", res
    assert len(res["losses"]) == TINY["check_steps"]
    assert all(math.isfinite(v) for v in res["losses"])
    if model == "spikegrad-reference-dense" and not kw:
        _REFERENCE[arch] = dict(res)
    return res


@pytest.mark.parametrize("arch", ["ff", "rc"])
def test_plain_torch_loop_and_spikegrad_give_equal_losses(pb, arch):
    ref = _run(pb, "spikegrad-reference-dense", arch)
    assert ref["hidden_rate"] > 0.002, "the tiny network must spike for the check to mean anything"
    for model in ("torch-loop", "spikegrad-fused-events"):
        other = _run(pb, model, arch)
        results = [dict(ref), dict(other)]
        pb.compare_losses(results)
        assert results[1]["loss_steps"] == 3
        assert results[1]["loss_dmax"] < 1e-5, (model, ref["losses"], other["losses"])
        assert pb.equal_equations(model)
    assert ref["saved_bytes_per_neuron_step"] > 0
    assert ref["lif_saved_bytes_per_neuron_step"] > 0


def test_compare_losses_and_table(pb, capsys):
    rows = [
        {"model": "spikegrad-reference-dense", "status": "ok", "losses": [1.0, 0.9], "step_ms": 20.0,
         "peak_mib": 10.0, "hidden_rate": 0.01},
        {"model": "spikegrad-fused-dense", "status": "ok", "losses": [1.0, 0.9], "step_ms": 10.0,
         "peak_mib": 5.0},
        {"model": "norse", "status": "ok", "losses": [1.0, 0.95, 0.8], "step_ms": 30.0, "peak_mib": 20.0},
        {"model": "spyx", "status": "unavailable", "reason": "import spyx/jax: ModuleNotFoundError"},
    ]
    pb.compare_losses(rows)
    assert rows[2]["loss_dmax"] == pytest.approx(0.05) and rows[2]["loss_steps"] == 2
    assert "loss_dmax" not in rows[3]
    table = pb.report_table(("ff", 100, 0.02), rows, {r["model"] for r in rows})
    assert table["spikegrad_best"] == "spikegrad-fused-dense"
    assert table["headline_ratio"] == pytest.approx(3.0)
    out = capsys.readouterr().out
    assert "unavailable" in out and "DIFF" in out and "3.00×" in out
    assert not pb.equal_equations("norse") and pb.DIFFERENCES["norse"]
    assert pb.equal_equations("snntorch") and pb.equal_equations("torch-compile")


def test_missing_peer_is_unavailable_not_a_crash(pb, monkeypatch):
    for name, module in [("snntorch", "snntorch"), ("norse", "norse"),
                         ("spikingjelly", "spikingjelly"), ("spyx", "spyx")]:
        monkeypatch.setitem(sys.modules, module, None)  # import raises ImportError
        res = pb.run_one(pb.Spec(model=name, arch="ff", **TINY))
        assert res["status"] == "unavailable" and "import" in res["reason"], res


def test_main_reports_hidden_peers_and_writes_outputs(pb, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv(pb.HIDE_ENV, "snntorch,spyx")
    out = tmp_path / "peers.json"
    summary = pb.main(["--inprocess", "--models", "torch-loop,snntorch,spyx", "--arch", "ff",
                       "--T", "12", "--density", "0.05", "--batch", "2", "--steps", "1",
                       "--warmup", "0", "--check-steps", "2", "--threads", "1", "--out", str(out)])
    assert set(summary["unavailable"]) == {"snntorch", "spyx"}
    data = json.loads(out.read_text())
    status = {r["model"]: r["status"] for r in data["results"]}
    assert status == {"spikegrad-reference-dense": "ok", "torch-loop": "ok",
                      "snntorch": "unavailable", "spyx": "unavailable"}
    loop = next(r for r in data["results"] if r["model"] == "torch-loop")
    assert loop["loss_dmax"] < 1e-5
    assert (tmp_path / "peers.csv").read_text().count("\n") == 5
    assert "hidden by" in capsys.readouterr().out


def test_child_subprocess_protocol(pb):
    res = pb.run_in_subprocess(pb.Spec(model="torch-loop", arch="rc", **TINY), timeout=300)
    assert res["status"] == "ok", res
    assert res["step_ms"] > 0 and len(res["losses"]) == 3
    if Path("/proc/self/clear_refs").exists():
        assert "peak_mib" in res
    bad = pb.run_in_subprocess(pb.Spec(model="no-such-model", **TINY), timeout=300)
    assert bad["status"] == "failed" and "unknown model" in bad["reason"]


@pytest.mark.parametrize("peer,module", [("snntorch", "snntorch"), ("norse", "norse"),
                                         ("spikingjelly", "spikingjelly"), ("spyx", "spyx")])
def test_peer_losses_against_spikegrad(pb, peer, module):
    pytest.importorskip(module)
    for arch in ("ff", "rc"):
        ref = _run(pb, "spikegrad-reference-dense", arch)
        res = _run(pb, peer, arch)
        rows = [ref, res]
        pb.compare_losses(rows)
        if pb.equal_equations(peer):  # snnTorch: the same equations, losses agree to rounding
            assert res["loss_dmax"] < 1e-5, (peer, arch, ref["losses"], res["losses"])
        else:                         # listed differences: close, but not equal
            assert pb.DIFFERENCES[peer]
            assert res["loss_dmax"] < 0.05, (peer, arch, ref["losses"], res["losses"])
