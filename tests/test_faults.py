"""Faults a long study meets (issue 26), each test the reproduction of a failure on main at
2550e99: a corrupt newest checkpoint, an environment error during a save, a config file that
fails to load, preemption, large groups, and the small items (a resumed member's
``sweep_members``, non-UTF-8 workdirs, downloads)."""
import os
import pathlib
import subprocess
import sys

import pytest

import experiments
from experiments import train as train_cli

ROOT = pathlib.Path(__file__).resolve().parent.parent
SMOKE = ["--config", "ring8_gan:smoke", "--no-progress"]


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("error: "), err
    return lines[0]


# --- config files that fail to load -------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ("def get_config(arg=None)\n    return 1\n", "line 1: SyntaxError"),
    ("import no_such_module_for_regan\n", "line 1: ModuleNotFoundError: No module named"),
    ("def get_config(arg=None):\n    x = 1\n    raise RuntimeError('boom')\n",
     "line 3: RuntimeError: boom"),
    ("def get_config(arg=None):\n    return None\n", "get_config() returned NoneType"),
    ("X = 1\n", "defines no get_config()"),
])
def test_a_config_file_that_fails_to_load_is_one_line_exit_2(tmp_path, capsys, body,
                                                             expected):
    config = tmp_path / "broken.py"
    config.write_text(body)
    run = tmp_path / "run"
    assert train_cli.main(["--config", str(config), "--workdir", str(run)]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert str(config) in line and expected in line, line
    assert not run.exists()
