"""``with_report_style`` gives a command -v, -q and --json; ``ReportStyle.show`` prints one view of its result."""

from __future__ import annotations

from typing import Annotated

import pytest
import typer
from typer.testing import CliRunner

from kraken_cli.cli._common import ReportStyle, with_report_style

runner = CliRunner()


def _app() -> typer.Typer:
    t = typer.Typer()

    @t.command()
    @with_report_style
    def show(name: Annotated[str, typer.Option("--name", help="A name.")] = "x", *, style: ReportStyle) -> None:
        style.show(json=lambda: {"name": name, "verbose": style.verbose}, quiet=lambda: [f"{name}.txt"],
                   tables=lambda: typer.echo(f"table of {name}"))

    return t


@pytest.mark.parametrize(("args", "stdout"), [
    ([], "table of a\n"),
    (["-q"], "a.txt\n"),
    (["--json", "-v"], '{\n  "name": "a",\n  "verbose": true\n}\n'),
])
def test_the_options_reach_the_command(args: list[str], stdout: str) -> None:
    res = runner.invoke(_app(), ["--name", "a", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.stdout == stdout


def test_the_options_come_last_in_help() -> None:
    res = runner.invoke(_app(), ["--help"], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert text.index("--name") < text.index("--verbose") < text.index("--quiet") < text.index("--json")
    assert "--style" not in text


def test_show_evaluates_only_the_view_asked_for() -> None:
    def never() -> list[str]:
        raise AssertionError("evaluated a view nobody asked for")

    shown: list[str] = []
    ReportStyle(quiet=True).show(json=never, quiet=lambda: [], tables=never)
    ReportStyle(as_json=True, quiet=True).show(json=dict, quiet=never, tables=never)
    ReportStyle().show(json=never, quiet=never, tables=lambda: shown.append("tables"))
    assert shown == ["tables"]
