"""The README's commands and Python example stay true."""

import re
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_python_examples_run_and_print_what_they_say(capsys):
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 2
    namespace: dict = {}
    for block in blocks:                       # the second continues the first
        exec(compile(block, "README.md", "exec"), namespace)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "torch.Size([8, 10]) torch.Size([8, 70, 64]) torch.Size([8, 70, 10])"
    acc, spikes = map(float, lines[1].split())
    assert 0 <= acc <= 1 and spikes >= 0
    assert lines[2] == "[{'kernel': 'reference', 'input_path': 'events'}, {'readout': 'fast'}]"
    assert lines[2] in README


def test_readme_test_command_is_the_ci_command():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text(encoding="utf-8")
    assert "python -m pytest -q" in README
    assert ci.strip().splitlines()[-1] == "python -m pytest -q"
