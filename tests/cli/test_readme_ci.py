"""CI installs and tests exactly as README.md tells a new user to (issue: README commands pass as written).

``.ci/run`` may only add shell plumbing (``set``, ``cd``, ``rm``); every command it runs must stand verbatim in a
fenced block of README.md, and every command of README's quick start must be in ``.ci/run``, in the same order.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CI = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
PLUMBING = re.compile(r"^(set |cd |rm )")


def fenced_commands(text: str) -> list[str]:
    """Command lines of the bash blocks, without trailing comments."""
    out, in_fence = [], False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence and stripped.startswith("```bash")
            continue
        if in_fence and stripped and not stripped.startswith("#"):
            out.append(re.sub(r"\s+#\s.*$", "", stripped))
    return out


def section(text: str, title: str) -> str:
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start:end if end != -1 else None]


def ci_commands() -> list[str]:
    lines = [ln.strip() for ln in CI.splitlines()]
    return [ln for ln in lines if ln and not ln.startswith("#") and not PLUMBING.match(ln)]


def test_every_ci_command_is_in_the_readme() -> None:
    readme = set(fenced_commands(README))
    extra = [c for c in ci_commands() if c not in readme]
    assert not extra, f".ci/run runs commands README.md does not show: {extra}"


def test_ci_runs_the_quick_start_in_order() -> None:
    quick = [c for c in fenced_commands(section(README, "Quick start")) if "kraken example" not in c]
    ci = ci_commands()
    assert quick, "README's quick start has no commands"
    positions = [ci.index(c) if c in ci else -1 for c in quick]
    assert -1 not in positions, f"README quick-start commands missing from .ci/run: {quick}"
    assert positions == sorted(positions), "README's quick-start commands run in another order in .ci/run"


def test_ci_pins_no_more_than_the_readme() -> None:
    """The test command is the bare one: no pytest flags or pip pins the README does not print."""
    assert 'pip install -e ".[test]" && python -m pytest' in ci_commands()
    assert not re.search(r"pytest\s+-", CI)


def test_distribution_name_and_scripts() -> None:
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert meta["name"] == "krakencoder"
    assert isinstance(meta["license"], str)  # SPDX expression, not the deprecated table form
    assert meta["scripts"]["kraken"] == meta["scripts"]["krakencoder"] == "kraken_cli.cli.app:main"
