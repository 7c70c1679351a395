"""The GPU check script runs end to end (here on the CPU, in its quick form) and writes its
results: every check PASS, a timing row for every backend and case."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_script_passes_on_the_cpu_and_writes_its_results(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path),
                           "--device", "cpu", "--quick"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["errors"] == []
    assert len(result["checks"]) > 30 and all(r["status"] == "PASS" for r in result["checks"])
    assert {r["kernel"] for r in result["checks"] if "kernel" in r} == {"compiled", "fused", "reference"}
    assert len(result["timing"]) == 8 and all(r["ms_per_step"] > 0 for r in result["timing"])
