"""The README stays true: its Python example runs, its commands exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from camal_rl.cli import COMMANDS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_python_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    exec(compile(block, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert printed.startswith("[")  # the EPG of one observation


def test_documented_commands_exist() -> None:
    used = set(re.findall(r"^camal-rl ([\w-]+)", README.read_text(), flags=re.M))
    assert used <= set(COMMANDS)
    assert {"envs", "train", "evaluate", "compare", "record", "plot"} <= used
