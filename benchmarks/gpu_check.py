"""GPU check: the kernel-equality checks on CUDA tensors, and a timed training step of every
backend, written as files.  Not a test (needs no pytest); run by benchmarks/gpu_check.sh.

    PYTHONPATH=src python benchmarks/gpu_check.py --out DIR [--device cuda] [--quick]

Checks (each prints PASS/FAIL and goes into DIR/gpu_check.json):

* every kernel of every neuron model that supports the device's calls equals the generic
  scan run on the CPU in float64, for every switch (surrogate × reset × reset gradient ×
  connectivity): identical spikes, voltages to 1e-12, gradients w.r.t. ff and V to 1e-10
  relative; kernels that decline the device (compiled: CPU only) must say why when named,
  and "auto" must pick the next candidate and record it;
* a whole SNN on the device (auto backend, dense and EventBatch input) equals the CPU
  reference network in float64 (logits and gradients);
* torch.func.vmap of K stacked weight sets equals K separate calls on the device;
* every learning rule (fa, dfa, dcll, rtrl; feed-forward and recurrent, two hidden layers)
  gives on the device the gradient it gives on the CPU (float64, 1e-10), and rtrl BPTT's.

Timing: one training step (forward, backward, Adam) of the default Randman network
(B 250, T 70, 20 → 128 → 10) and of an SHD-like recurrent one (B 64, T 100, 700 → 256 RC →
20), float32, per backend that runs on the device, synchronised (torch.cuda.synchronize),
median of repeats after warm-up; the same on the CPU for "compiled" as the reference point.
Needs only torch, numpy and spikegrad's own imports (no tomli-w, optuna or pytest).
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

from spikegrad import ALIFParams, CubaLIFParams, EventBatch, LIFParams, SNN, SpikegradError, scan
from spikegrad.dynamics import NEURON_MODELS
from spikegrad.kernels.dispatch import kernels_for, run_layer, select_kernel

SURROGATES = ["superspike", "superspike-asym", "sigmoid", "esser", "true"]
CONNECTIVITY = [("ff", "prop"), ("rc", "prop"), ("rc", "ctl")]


def rel_err(got: torch.Tensor, want: torch.Tensor) -> float:
    got, want = got.detach().cpu().double(), want.detach().cpu().double()
    scale = max(float(want.abs().max()) if want.numel() else 0.0, 1e-300)
    return (float((got - want).abs().max()) if want.numel() else 0.0) / scale


def inputs(seed, recurrent, batch=3, steps=25, n=6):
    gen = torch.Generator().manual_seed(seed)
    ff = (torch.rand(batch, steps, n, generator=gen, dtype=torch.float64) - 0.35) * 12.0
    v = (torch.rand(n, n, generator=gen, dtype=torch.float64) * 2 - 1) * 4.0 if recurrent else None
    return ff, v


def params(model, surrogate, reset, detach_reset, conn):
    common = dict(surrogate=surrogate, reset=reset, detach_reset=detach_reset, recurrent_grad=conn[1], beta=5.0)
    if model == "alif":
        return ALIFParams(tau_adapt=30e-3, beta_adapt=0.5, **common)
    if model == "cuba":
        return CubaLIFParams(threshold=0.5, decays="euler", syn_gain=1.5, **common)
    return LIFParams(**common)


def run_grads(ff, v, p, backend):
    ff = ff.detach().clone().requires_grad_()
    v = v.detach().clone().requires_grad_() if v is not None else None
    res = run_layer(ff, v, p, backend)
    gen = torch.Generator().manual_seed(7)
    c_s = torch.randn(res.spikes.shape, generator=gen, dtype=torch.float64).to(ff.device)
    c_u = torch.randn(res.voltages.shape, generator=gen, dtype=torch.float64).to(ff.device)
    loss = (res.spikes * c_s).sum() + (res.voltages * c_u).sum()
    wrt = [ff] + ([v] if v is not None else [])
    grads = torch.autograd.grad(loss, wrt, allow_unused=True)
    return res, [torch.zeros_like(x) if g is None else g for x, g in zip(wrt, grads)]


def check_kernels(device: str, quick: bool) -> list[dict]:
    rows = []
    switches = list(itertools.product(SURROGATES, ["zero", "subtract"], [True, False], CONNECTIVITY))
    if quick:
        switches = switches[::7]
    for model in NEURON_MODELS:
        for kernel_name, kernel in kernels_for(model).items():
            for k, (surrogate, reset, detach_reset, conn) in enumerate(switches):
                p = params(model, surrogate, reset, detach_reset, conn)
                ff, v = inputs(3 + k, conn[0] == "rc")
                ffd, vd = ff.to(device), (v.to(device) if v is not None else None)
                row = dict(model=model, kernel=kernel_name, surrogate=surrogate, reset=reset,
                           detach_reset=detach_reset, conn="-".join(conn))
                reason = kernel.supports(ffd, vd, p)
                if reason is not None:
                    try:
                        run_layer(ffd, vd, p, kernel_name)
                        row.update(status="FAIL", why=f"declines ({reason}) but ran when named")
                    except SpikegradError as err:
                        auto = select_kernel(ffd, vd, p, "auto").name
                        ok = reason in str(err) and auto != kernel_name
                        row.update(status="PASS" if ok else "FAIL", declined=reason, auto_runs=auto)
                    rows.append(row)
                    continue
                got, g_got = run_grads(ffd, vd, p, kernel_name)
                want_s, want_tr = scan(ff, v, p)
                _, g_want = run_grads(ff, v, p, "reference")
                errs = dict(spikes_equal=bool(torch.equal(got.spikes.detach().cpu(), want_s.detach())),
                            volt_rel=rel_err(got.voltages, want_tr[0]),
                            grad_rel=max(rel_err(a, b) for a, b in zip(g_got, g_want)))
                ok = errs["spikes_equal"] and errs["volt_rel"] <= 1e-12 and errs["grad_rel"] <= 1e-10 \
                    and got.kernel == kernel_name
                row.update(status="PASS" if ok else "FAIL", **errs)
                rows.append(row)
    return rows


def check_network(device: str) -> list[dict]:
    rows = []
    for recurrent in (False, True):
        torch.manual_seed(0)
        ref = SNN(30, [20], 5, LIFParams(), recurrent=recurrent, backend="reference").double()
        with torch.no_grad():
            ref.layers[0].weight.mul_(6.0).add_(0.15)
        dev = SNN(30, [20], 5, LIFParams(), recurrent=recurrent).double().to(device)
        dev.load_state_dict(ref.state_dict())
        gen = torch.Generator().manual_seed(3)
        x = (torch.rand(4, 40, 30, generator=gen, dtype=torch.float64) < 0.05).double()
        y = torch.arange(4) % 5
        for kind, xd in (("dense", x.to(device)), ("eventbatch", EventBatch.from_dense(x.to(device)))):
            ref.zero_grad(), dev.zero_grad()
            lr, rr = ref.run(x)
            F.cross_entropy(lr, y).backward()
            ld, rd = dev.run(xd)
            F.cross_entropy(ld, y.to(device)).backward()
            grad_rel = max(rel_err(a.grad, b.grad) for a, b in zip(dev.parameters(), ref.parameters()))
            ok = torch.equal(rd.spikes[0].cpu(), rr.spikes[0]) and rel_err(ld, lr) <= 1e-12 and grad_rel <= 1e-10
            rows.append(dict(check="snn", recurrent=recurrent, input=kind, kernels=dev.kernels(),
                             logit_rel=rel_err(ld, lr), grad_rel=grad_rel, status="PASS" if ok else "FAIL"))
    return rows


def check_rules(device: str) -> list[dict]:
    """Each learning rule's gradient on the device equals the same rule's on the CPU in
    float64 (fa, dfa: through the credit seam; dcll, rtrl: their own step-by-step forward),
    and rtrl's equals BPTT's on the device."""
    from spikegrad.losses import CrossEntropy
    from spikegrad.rules import DCLL, RTRL, DirectFeedbackAlignment, FeedbackAlignment

    def grads_of(name, net, x, y):
        if name in ("dcll", "rtrl"):
            rule = DCLL(burn_in=3) if name == "dcll" else RTRL(loss=CrossEntropy())
            got, _, _ = rule.gradients(net, x, y)
            return got
        rule = (FeedbackAlignment if name == "fa" else DirectFeedbackAlignment)(objective=None)
        rule.ensure(net)
        net.zero_grad()
        net.credit = rule
        try:
            F.cross_entropy(net(x), y).backward()
        finally:
            net.credit = None
        return {n: p.grad.clone() for n, p in net.named_parameters()}

    rows = []
    gen = torch.Generator().manual_seed(4)
    x = (torch.rand(4, 30, 12, generator=gen, dtype=torch.float64) < 0.2).double()
    y = torch.arange(4) % 3
    for name in ("fa", "dfa", "dcll", "rtrl"):
        for recurrent in (False, True):
            torch.manual_seed(0)
            ref = SNN(12, [10, 8], 3, LIFParams(), recurrent=recurrent, backend="reference").double()
            with torch.no_grad():
                for layer in ref.layers:
                    layer.weight.mul_(8.0)
            dev = SNN(12, [10, 8], 3, LIFParams(), recurrent=recurrent).double().to(device)
            dev.load_state_dict(ref.state_dict())
            want = grads_of(name, ref, x, y)
            got = grads_of(name, dev, x.to(device), y.to(device))
            rel = max(rel_err(got[k], want[k]) for k in want if want[k] is not None)
            row = dict(check="rule", rule=name, recurrent=recurrent, rel=rel)
            ok = rel <= 1e-10
            if name == "rtrl":
                dev.zero_grad()
                F.cross_entropy(dev(x.to(device)), y.to(device)).backward()
                row["vs_bptt"] = max(rel_err(got[k], p.grad) for k, p in dev.named_parameters())
                ok = ok and row["vs_bptt"] <= 1e-10
            rows.append({**row, "status": "PASS" if ok else "FAIL"})
    return rows


def check_vmap(device: str) -> list[dict]:
    import copy
    from torch.func import functional_call, stack_module_state, vmap
    torch.manual_seed(0)
    nets = [SNN(10, [8], 3, LIFParams(surrogate="sigmoid")).double().to(device) for _ in range(3)]
    for net in nets:
        with torch.no_grad():
            net.layers[0].weight.mul_(8)
    x = (torch.rand(4, 20, 10, generator=torch.Generator().manual_seed(1)) < 0.3).double().to(device)
    prm, buf = stack_module_state(nets)
    base = copy.deepcopy(nets[0]).to("meta")
    out = vmap(lambda p, b: functional_call(base, (p, b), (x,)))(prm, buf)
    err = rel_err(out, torch.stack([net(x) for net in nets]))
    return [dict(check="vmap", kernels=base.kernels(), rel=err, status="PASS" if err <= 1e-12 else "FAIL")]


def time_steps(device: str, backend: str, case: dict, repeats: int) -> float:
    torch.manual_seed(0)
    net = SNN(case["n_in"], [case["hidden"]], case["classes"], LIFParams(), recurrent=case["recurrent"],
              backend=backend).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(case["batch"], case["steps"], case["n_in"], generator=gen) < case["density"]).float().to(device)
    y = (torch.arange(case["batch"]) % case["classes"]).to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)

    def step():
        opt.zero_grad(set_to_none=True)
        F.cross_entropy(net(x), y).backward()
        opt.step()

    for _ in range(2):
        step()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1e3


CASES = [
    dict(name="randman-default B250 T70 20-128-10 FF", batch=250, steps=70, n_in=20, hidden=128, classes=10,
         recurrent=False, density=0.014),
    dict(name="SHD-like B64 T100 700-256-20 RC", batch=64, steps=100, n_in=700, hidden=256, classes=20,
         recurrent=True, density=0.02),
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--quick", action="store_true", help="a seventh of the switches, 3 timing repeats")
    ap.add_argument("--repeats", type=int, default=10)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    dev = args.device
    info = dict(python=platform.python_version(), torch=torch.__version__, device=dev,
                cuda_available=torch.cuda.is_available(),
                gpu=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None)
    print(json.dumps(info), flush=True)
    result = dict(info=info, checks=[], timing=[], errors=[])
    t0 = time.perf_counter()
    for name, fn in (("kernels", lambda: check_kernels(dev, args.quick)), ("network", lambda: check_network(dev)),
                     ("vmap", lambda: check_vmap(dev)), ("rules", lambda: check_rules(dev))):
        try:
            rows = fn()
            result["checks"] += rows
            bad = [r for r in rows if r["status"] != "PASS"]
            print(f"{name}: {len(rows) - len(bad)}/{len(rows)} PASS", flush=True)
            for r in bad:
                print("  FAIL", r, flush=True)
        except Exception:
            result["errors"].append({name: traceback.format_exc()})
            print(f"{name}: ERROR\n{traceback.format_exc()}", flush=True)
    repeats = 3 if args.quick else args.repeats
    for case in CASES:
        for device, backend in [(dev, "reference"), (dev, "fused"), (dev, "auto"), ("cpu", "compiled")]:
            try:
                ms = time_steps(device, backend, case, repeats)
                row = dict(case=case["name"], device=device, backend=backend, ms_per_step=ms)
            except Exception as err:
                row = dict(case=case["name"], device=device, backend=backend, error=str(err).splitlines()[0])
            result["timing"].append(row)
            print(json.dumps(row), flush=True)
    result["seconds"] = time.perf_counter() - t0
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    failed = [r for r in result["checks"] if r["status"] != "PASS"] or result["errors"]
    print(f"{'FAILED' if failed else 'ALL PASS'} in {result['seconds']:.0f} s; results in {args.out}/gpu_check.json")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
