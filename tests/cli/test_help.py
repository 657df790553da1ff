"""``kraken --help`` and ``kraken <cmd> --help``: exit 0, name the key options, stay stable.

The help of ``describe`` and ``run`` is also pinned as a syrupy snapshot at 100 columns
(``tests/cli/__snapshots__/test_help.ambr``). After an intended change of help text, update it with
``pytest tests/cli/test_help.py --snapshot-update`` and regenerate the README reference with
``python scripts/gen_cli_reference.py``.
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from .test_docs import gen

runner = CliRunner()

#: The options a user looks for first in each command's help (DESIGN section 3).
KEY_OPTIONS = {
    "run": ["-i", "--input", "-c", "--checkpoint", "-t", "--transform", "--adapt", "--adapter", "--fusion",
            "--fusion-include", "--only-fusion", "--outputs", "-o", "--output", "--square", "--format", "--evaluate",
            "--subjects", "--chunk-size", "--device"],
    "train": ["-i", "--input", "--paths", "--transformation", "--latent-size", "--loss", "--epochs", "--batch-size",
              "--seed", "--split-file", "-o", "--output", "--resume", "--start-from", "--device"],
    "merge": ["-o", "--output", "--prefer", "--canonical"],
    "describe": ["--paths", "--record", "--heatmap"],
    "fetch": ["--all", "--list", "--flavors", "--force", "--cache-dir", "--mirror"],
    "adapt": ["-i", "--input", "-c", "--checkpoint", "-t", "--transform", "--mode", "--subjects", "-o", "--output",
              "--device"],
    "example": ["--epochs", "--seed"],
    "connectivity": ["-o", "--output", "--measure", "--target", "--lambda-range", "--lambda", "--split-file", "--split",
                     "--output-split", "--output-mean", "--search-csv", "--search-figure", "--format"],
}
COMMON = ["-v", "--verbose", "-q", "--quiet", "--json", "--help"]


def test_top_level_help() -> None:
    result = runner.invoke(app, ["--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for text in ("--version", "--install-completion", "--show-completion", *KEY_OPTIONS):
        assert text in result.stdout
    assert result.stderr == ""


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output and "run" in result.output


@pytest.mark.parametrize("command", sorted(KEY_OPTIONS))
def test_command_help(command: str) -> None:
    result = runner.invoke(app, [command, "--help"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    text = gen.help_text([command])  # plain text, wide enough that no option name is split
    for option in (*KEY_OPTIONS[command], *COMMON):
        assert f" {option} " in text or f" {option}\n" in text, f"`kraken {command} --help` does not show {option}"


def test_every_command_is_checked_here() -> None:
    assert set(KEY_OPTIONS) == {c.name for c in app.registered_commands}


@pytest.mark.parametrize("command", ["describe", "run"])
def test_help_snapshot(command: str, snapshot: SnapshotAssertion) -> None:
    assert gen.help_text([command]) == snapshot
