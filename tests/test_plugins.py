"""Plugins: a module of the user's (docs/EXTENDING.md's example, run as written) registers
parts on import, and the command line trains with them — named by ``--plugin FILE``, by ``SPIKEGRAD_PLUGINS``, or by an installed
package's entry point — with no file of the package touched; a plugin that cannot be
loaded is one line naming it."""

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from spikegrad import Config, SpikegradError
from spikegrad.cli import main
from spikegrad.data import load_dataset
from spikegrad import plugins
from spikegrad.plugins import ENV, load_plugin
from spikegrad.training import init_model

def _docs_example() -> str:
    """The plugin example of docs/EXTENDING.md ("Plugins"): the tests run it as written."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "EXTENDING.md").read_text()
    section = text[text.index("## Plugins"):]
    return section[section.index("```python") + len("```python"):section.index("```", section.index("```python") + 3)]


PARTS = _docs_example()

TINY = ["--set", "data.randman.classes=3", "--set", "data.randman.train_per_class=40",
        "--set", "data.randman.val_per_class=10", "--set", "data.randman.test_per_class=10",
        "--hidden", "16", "--epochs", "3", "--batch-size", "30", "--threads", "1", "--quiet"]


def _spikegrad(args, env=None):
    return subprocess.run([sys.executable, "-m", "spikegrad.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})


def _saved_config(run: Path) -> dict:
    """The run's config.toml as read (its plugin parts are not registered in this process)."""
    return tomllib.loads((run / "config.toml").read_text())


def _weights_at_init(run: Path) -> dict:
    """The run's initial weights: its config with built-in parts (neither the rule nor the
    surrogate changes the init)."""
    raw = _saved_config(run)
    raw["train"]["rule"], raw["model"]["surrogate"] = "bptt", "superspike"
    cfg = Config.from_dict(raw, "test")
    return init_model(cfg, load_dataset(cfg)).state_dict()


def _val_losses(run: Path) -> list[float]:
    return [json.loads(line)["val_loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_a_plugin_file_adds_a_rule_the_cli_trains_with(tmp_path):
    (tmp_path / "my_parts.py").write_text(PARTS)
    run = tmp_path / "run"
    done = _spikegrad(["--plugin", str(tmp_path / "my_parts.py"), "train", "--rule", "frozen", *TINY,
                       "--out", str(run)])
    assert done.returncode == 0, done.stderr
    assert _saved_config(run)["train"]["rule"] == "frozen"
    saved = load_file(str(run / "model.safetensors"))
    for name, tensor in _weights_at_init(run).items():            # the rule never updated a weight
        assert torch.equal(saved[name], tensor), name
    losses = _val_losses(run)
    assert len(losses) == 3 and len(set(losses)) == 1


def test_a_plugin_module_named_in_the_environment_adds_a_surrogate(tmp_path):
    (tmp_path / "my_parts.py").write_text(PARTS)
    run = tmp_path / "run"
    done = _spikegrad(["train", "--surrogate", "flat", "--set", "model.init=fluctuation", *TINY,  # spiking
                       "--out", str(run)],
                      env={ENV: "my_parts", "PYTHONPATH": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    saved, init = load_file(str(run / "model.safetensors")), _weights_at_init(run)
    assert torch.equal(saved["layers.0.weight"], init["layers.0.weight"])      # zero surrogate: hidden fixed
    assert not torch.equal(saved["readout.weight"], init["readout.weight"])    # the readout learned
    assert json.loads((run / "metrics.json").read_text())["kernels"][0]["kernel"] == "fused"


def test_an_installed_packages_entry_point_is_loaded(tmp_path):
    site = tmp_path / "site"
    (site / "my_pkg").mkdir(parents=True)
    (site / "my_pkg" / "__init__.py").write_text("")
    (site / "my_pkg" / "parts.py").write_text(PARTS)
    dist = site / "my_pkg-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-pkg\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[spikegrad.plugins]\nparts = my_pkg.parts\n")
    run = tmp_path / "run"
    done = _spikegrad(["train", "--rule", "frozen", *TINY, "--epochs", "1", "--out", str(run)],
                      env={"PYTHONPATH": str(site)})
    assert done.returncode == 0, done.stderr
    assert _saved_config(run)["train"]["rule"] == "frozen"


def test_without_the_plugin_its_part_is_unknown(tmp_path):
    done = _spikegrad(["train", "--rule", "frozen", *TINY, "--out", str(tmp_path / "run")])
    assert done.returncode == 2
    assert "unknown train.rule 'frozen'" in done.stderr and not (tmp_path / "run").exists()


@pytest.mark.parametrize("plugin,message", [
    ("no_such_module_for_spikegrad", "plugin 'no_such_module_for_spikegrad' (from --plugin) cannot be imported: "
                                     "ModuleNotFoundError: No module named 'no_such_module_for_spikegrad'"),
    ("missing/parts.py", "(from --plugin): no such file"),
    ("broken.py", "plugin '{dir}/broken.py' (from --plugin) failed: RuntimeError: the user's bug"),
])
def test_a_plugin_that_cannot_be_loaded_is_one_line_naming_it(tmp_path, capsys, plugin, message):
    (tmp_path / "broken.py").write_text("raise RuntimeError(\"the user's bug\")\n")
    name = str(tmp_path / plugin) if plugin.endswith(".py") else plugin
    assert main(["--plugin", name, "config"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("spikegrad: error: ")
    assert message.format(dir=tmp_path) in err[0]


def test_the_environments_plugin_errors_name_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV, "no_such_module_for_spikegrad")
    assert main(["config"]) == 2
    assert f"(from {ENV}) cannot be imported" in capsys.readouterr().err


def test_a_plugin_is_imported_once(tmp_path, monkeypatch):
    monkeypatch.setattr(plugins, "_LOADED", {})        # this process's run folders stay without plugins.json
    (tmp_path / "counted.py").write_text("import builtins\nbuiltins.SPIKEGRAD_TEST_IMPORTS = "
                                         "getattr(builtins, 'SPIKEGRAD_TEST_IMPORTS', 0) + 1\n")
    import builtins

    first = load_plugin(str(tmp_path / "counted.py"))
    assert load_plugin(str(tmp_path / "counted.py")) is first
    assert builtins.SPIKEGRAD_TEST_IMPORTS == 1
    with pytest.raises(SpikegradError, match="empty plugin name"):
        load_plugin("  ")


def test_train_help_lists_the_registered_names_with_the_plugins(tmp_path):
    (tmp_path / "my_parts.py").write_text(PARTS)
    plain = _spikegrad(["train", "--help"], env={"COLUMNS": "300"})
    with_plugin = _spikegrad(["--plugin", str(tmp_path / "my_parts.py"), "train", "--help"], env={"COLUMNS": "300"})
    assert plain.returncode == 0 and with_plugin.returncode == 0
    assert "Learning rule: bptt, dcll, dfa, fa, rtrl." in plain.stdout
    assert "Learning rule: bptt, dcll, dfa, fa, frozen, rtrl." in with_plugin.stdout
    assert "Surrogate derivative: esser, flat, sigmoid, superspike, superspike-asym, true." in with_plugin.stdout
    assert "Optimiser: adam, adamw, sgd." in plain.stdout and "Data set: clicks, fashion-mnist, mnist," in plain.stdout


def test_a_run_folder_remembers_its_plugins_for_evaluate(tmp_path):
    (tmp_path / "my_parts.py").write_text(PARTS)
    run = tmp_path / "run"
    done = _spikegrad(["--plugin", str(tmp_path / "my_parts.py"), "train", "--rule", "frozen", *TINY, "--epochs", "1",
                       "--out", str(run)])
    assert done.returncode == 0, done.stderr
    assert json.loads((run / "plugins.json").read_text()) == [str((tmp_path / "my_parts.py").resolve())]
    evaluated = _spikegrad(["evaluate", str(run)])                       # no --plugin: the folder names it
    assert evaluated.returncode == 0, evaluated.stderr
    (tmp_path / "my_parts.py").unlink()
    gone = _spikegrad(["evaluate", str(run)])
    assert gone.returncode == 2
    assert gone.stderr.strip() == (f"spikegrad: error: plugin '{(tmp_path / 'my_parts.py').resolve()}' "
                                   f"(from {run / 'plugins.json'}): no such file {(tmp_path / 'my_parts.py').resolve()}")


def test_a_run_without_plugins_writes_no_plugins_file(tmp_path):
    run = tmp_path / "run"
    assert _spikegrad(["train", *TINY, "--epochs", "1", "--out", str(run)]).returncode == 0
    assert (run / "config.toml").is_file() and not (run / "plugins.json").exists()
