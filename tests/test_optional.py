"""The main job runs without the optional dependencies, and what needs one says which extra
brings it (one line, exit code 2): each case runs in a fresh interpreter where importing
optuna, matplotlib, scipy, h5py, soundfile and soxr fails."""

import subprocess
import sys
import textwrap

OPTIONAL = ("optuna", "matplotlib", "scipy", "h5py", "soundfile", "soxr")
TINY = ["--set", "data.randman.classes=2", "--set", "data.randman.train_per_class=10",
        "--set", "data.randman.val_per_class=4", "--set", "data.randman.test_per_class=4",
        "--set", "data.randman.terms=20", "--hidden", "8", "--epochs", "1", "--quiet"]


def _without_extras(tmp_path, args):
    code = textwrap.dedent(f"""
        import sys
        for name in {OPTIONAL!r}:
            sys.modules[name] = None              # "import name" raises ImportError
        from spikegrad.cli import main
        code = main({args!r})
        assert not any(sys.modules.get(n) for n in {OPTIONAL!r}), "an optional package was imported"
        sys.exit(code)
    """)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                          env={**__import__("os").environ, "SPIKEGRAD_DATA": str(tmp_path / "cache")})


def test_the_main_job_trains_and_evaluates_without_the_extras(tmp_path):
    run = tmp_path / "run"
    done = _without_extras(tmp_path, ["train", *TINY, "--out", str(run)])
    assert done.returncode == 0, done.stderr
    assert (run / "metrics.json").is_file()
    assert _without_extras(tmp_path, ["evaluate", str(run)]).returncode == 0


def test_what_needs_an_extra_names_it(tmp_path):
    run = tmp_path / "run"
    assert _without_extras(tmp_path, ["train", *TINY, "--out", str(run)]).returncode == 0
    plot = _without_extras(tmp_path, ["activity", str(run)])
    assert plot.returncode == 2
    assert plot.stderr.strip() == ("spikegrad: error: drawing figures needs the package matplotlib, which is not "
                                   "installed; install it with: pip install 'spikegrad[figures]'")
    (tmp_path / "s.toml").write_text('[sweep]\nname = "s"\ngrid = { "train.lr" = [1e-3] }\n')
    sweep = _without_extras(tmp_path, ["sweep", str(tmp_path / "s.toml"), "--out", str(tmp_path / "sw")])
    assert sweep.returncode == 2 and "pip install 'spikegrad[sweeps]'" in sweep.stderr
    assert len(sweep.stderr.strip().splitlines()) == 1 and not (tmp_path / "sw").exists()
