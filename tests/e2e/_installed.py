"""Helpers for end-to-end tests that run the installed ``kraken`` console script in a subprocess."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest


def kraken_script() -> Path:
    """The ``kraken`` console script of the interpreter running the tests (skip when it is not installed)."""
    beside = Path(sys.executable).with_name("kraken")
    if beside.is_file():
        return beside
    found = shutil.which("kraken")
    if found is None:
        pytest.skip("the kraken console script is not installed (pip install -e .)")
    return Path(found)


def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a user's shell: no debug switch, an empty model cache, plain output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KRAKEN", "PYTEST", "COLUMNS"))}
    env["KRAKEN_DATA"] = str(tmp_path / "empty-cache")
    env["NO_COLOR"] = "1"
    return env


def run_kraken(args: Sequence[str], *, cwd: Path, env: dict[str, str], timeout: float = 120,
               script: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``kraken ARGS`` and fail with its output when it does not exit 0."""
    cmd = [str(script or kraken_script()), *args]
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(cmd)}\nexit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc
