"""``with_options`` declares a command's options from aliases, with defaults from the engine's config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Optional

import pytest
import typer
from typer.testing import CliRunner

from kraken_cli.cli._common import ReportStyle, with_report_style
from kraken_cli.cli._declare import with_options
from kraken_cli.cli._options import flag
from kraken_cli.engine.pipelines.configs import field_defaults

runner = CliRunner()

SizeOpt = Annotated[int, typer.Option("--size", help="A size.")]
NamesOpt = Annotated[list[str], typer.Option("--name", help="Names (repeatable).")]
LoudOpt = flag("--loud", "Shout.")
LabelOpt = Annotated[Optional[str], typer.Option("--label", help="A label.")]


@dataclass(frozen=True)
class _Config:  # stands in for an engine config: its field defaults are the options' defaults
    size: int = 7
    loud: bool = False
    label: Optional[str] = "a"


def _app(seen: list[dict[str, Any]]) -> typer.Typer:
    t = typer.Typer()

    @t.command()
    @with_report_style
    @with_options(field_defaults(_Config), size=SizeOpt, names=NamesOpt, loud=LoudOpt, label=LabelOpt)
    def show(ctx: typer.Context, *, style: ReportStyle) -> None:
        seen.append({**ctx.params, "json": style.as_json})

    return t


def test_defaults_come_from_the_config_and_values_reach_ctx_params() -> None:
    seen: list[dict[str, Any]] = []
    assert runner.invoke(_app(seen), [], catch_exceptions=False).exit_code == 0
    res = runner.invoke(_app(seen), ["--size", "3", "--name", "x", "--name", "y", "--loud", "--json"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    first, second = (dict(s, names=list(s["names"])) for s in seen)
    assert first == {"size": 7, "names": [], "loud": False, "label": "a", "verbose": False, "quiet": False,
                     "as_json": False, "json": False}
    assert second["size"] == 3 and second["names"] == ["x", "y"] and second["loud"] and second["json"]


def test_help_lists_the_options_in_order_with_the_config_defaults() -> None:
    res = runner.invoke(_app([]), ["--help"], env={"COLUMNS": "100"})
    assert res.exit_code == 0, res.output
    text = res.stdout
    assert text.index("--size") < text.index("--name") < text.index("--loud") < text.index("--label")
    assert text.index("--label") < text.index("--verbose")  # the report options still come last
    assert "[default: 7]" in text and "Shout." in text


def test_an_option_without_a_default_fails_at_declaration() -> None:
    with pytest.raises(TypeError, match="'size' has no default"):
        with_options({}, size=SizeOpt)


def test_an_option_may_not_also_be_a_parameter() -> None:
    def command(ctx: typer.Context, size: int = 1) -> None: ...

    with pytest.raises(TypeError, match="both as options and as parameters"):
        with_options({"size": 1}, size=SizeOpt)(command)


@pytest.mark.parametrize("command", ["run", "train", "adapt"])
def test_every_default_shown_is_the_engine_s(command: str) -> None:
    """The commands built from the engine configs show exactly those configs' defaults."""
    import inspect

    from kraken_cli.cli import _run_options, _train_options, adapt, run, train

    callback = {"run": run.run_command, "train": train.train_command, "adapt": adapt.adapt_command}[command]
    defaults = {"run": _run_options.DEFAULT, "train": _train_options.DEFAULT, "adapt": adapt.DEFAULT}[command]
    params = inspect.signature(callback).parameters
    for name, p in params.items():
        if name in defaults:
            assert p.default == defaults[name], (command, name)
        elif name not in ("ctx", "verbose", "quiet", "as_json"):
            assert p.default == (), (command, name)  # a repeatable option the engine names otherwise
