"""Python style is checked like shell: ruff (pyflakes, pycodestyle, bugbear, isort) with
the settings in pyproject.toml, over every Python file of the project."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).parent / "ruff"


def test_ruff_is_clean():
    result = subprocess.run([str(RUFF), "check", "--no-cache", "--output-format", "concise", str(ROOT)],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_catches_an_undefined_name(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    return undefined_name\n")
    result = subprocess.run([str(RUFF), "check", "--no-cache", "--isolated", "--select", "F", str(bad)],
                            capture_output=True, text=True)
    assert result.returncode == 1 and "F821" in result.stdout
