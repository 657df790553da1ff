"""Error -> message and exit code, in one place (STYLE rule 17): unit tests of the mapping and CLI behaviour."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import kraken_cli.engine.errors as errors
from kraken_cli.cli._errors import debug_enabled, format_error, reporting_errors
from kraken_cli.cli.app import app

from ..helpers import FC, TinyModel, make_tiny_model

runner = CliRunner()
NO_DEBUG = {"KRAKEN_DEBUG": None}


def _flat(text: str) -> str:
    return "".join(text.split())


# -- the mapping itself ---------------------------------------------------------------------------------

def test_format_error_message_and_hint() -> None:
    text = format_error(errors.InputDataError("bad [file].mat", hint="use [good].mat"))
    assert "Error:" in text and "Hint:" in text
    assert "\\[file]" in text and "\\[good]" in text  # user text is escaped, never read as rich markup
    assert "Hint" not in format_error(errors.KrakenError("no hint"))


@pytest.mark.parametrize("name", errors.__all__)
def test_every_error_class_has_its_exit_code(name: str) -> None:
    cls = getattr(errors, name)
    assert issubclass(cls, errors.KrakenError)
    expected = 130 if issubclass(cls, errors.TrainingInterrupted) else 2 if issubclass(cls, errors.SpecError) else 1
    assert cls("x").exit_code == expected


@pytest.mark.parametrize(("value", "on"), [("1", True), ("yes", True), ("", False), ("0", False), (None, False)])
def test_debug_flag(monkeypatch: pytest.MonkeyPatch, value: str | None, on: bool) -> None:
    if value is None:
        monkeypatch.delenv("KRAKEN_DEBUG", raising=False)
    else:
        monkeypatch.setenv("KRAKEN_DEBUG", value)
    assert debug_enabled() is on


# -- reporting_errors on a throwaway Typer app --------------------------------------------------------------

def _app_raising(exc: BaseException) -> typer.Typer:
    t = typer.Typer()

    @t.command()
    def boom() -> None:
        with reporting_errors():
            raise exc

    @t.command()
    def ok() -> None:
        typer.echo("fine")

    return t


@pytest.mark.parametrize(("exc", "code"), [
    (errors.InputDataError("the data is bad", hint="fix the data"), 1),
    (errors.CheckpointError("the model is bad", hint="fetch it again"), 1),
    (errors.SpecError("the spec is bad", hint="write A=B"), 2),
])
def test_kraken_errors_become_messages(exc: errors.KrakenError, code: int) -> None:
    res = runner.invoke(_app_raising(exc), ["boom"], env=NO_DEBUG)
    assert res.exit_code == code, res.output
    assert f"Error: {exc.message}" in res.stderr
    assert f"Hint: {exc.hint}" in res.stderr
    assert res.stdout == ""
    assert "Traceback" not in res.output


def test_debug_shows_the_traceback() -> None:
    res = runner.invoke(_app_raising(errors.InputDataError("bad", hint="h")), ["boom"], env={"KRAKEN_DEBUG": "1"})
    assert res.exit_code == 1
    assert "Traceback" in res.stderr and "Error: bad" in res.stderr


def test_unknown_exceptions_propagate() -> None:
    res = runner.invoke(_app_raising(ZeroDivisionError("bug")), ["boom"], env=NO_DEBUG)
    assert res.exit_code != 0
    assert isinstance(res.exception, ZeroDivisionError)


def test_keyboard_interrupt() -> None:
    res = runner.invoke(_app_raising(KeyboardInterrupt()), ["boom"], env=NO_DEBUG)
    assert res.exit_code == 130
    assert "Interrupted" in res.stderr


# -- the real commands ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("errcli"))


def test_missing_checkpoint_exit_1(tmp_path: Path) -> None:
    res = runner.invoke(app, ["describe", str(tmp_path / "nope.pt")], env=NO_DEBUG)
    assert res.exit_code == 1
    assert "Error:" in res.stderr and "nope.pt" in _flat(res.stderr) and "Hint:" in res.stderr
    assert "Traceback" not in res.output


def test_missing_checkpoint_with_debug_shows_traceback(tmp_path: Path) -> None:
    res = runner.invoke(app, ["describe", str(tmp_path / "nope.pt")], env={"KRAKEN_DEBUG": "1"})
    assert res.exit_code == 1
    assert "Traceback" in res.stderr and "CheckpointError" in res.stderr


def test_missing_input_file_exit_1(tmp_path: Path, tiny: TinyModel) -> None:
    res = runner.invoke(app, ["run", *tiny.model_args(), "-i", f"{FC}={tmp_path / 'absent.mat'}",
                              "-o", str(tmp_path / "o.mat")], env=NO_DEBUG)
    assert res.exit_code == 1, res.output
    assert "absent.mat" in _flat(res.stderr) and "Hint:" in res.stderr
    assert not (tmp_path / "o.mat").exists()


@pytest.mark.parametrize("args", [
    ["run", "--bogus"],
    ["describe"],                         # missing argument
    ["merge", "a.pt", "b.pt"],            # missing required -o
    ["run", "--format", "csv", "-i", f"{FC}=a.mat"],
    ["run", "--device", "tpu", "-i", f"{FC}=a.mat"],
    ["run", "--chunk-size", "0", "-i", f"{FC}=a.mat"],
    ["nosuchcommand"],
])
def test_usage_errors_exit_2(args: list[str]) -> None:
    res = runner.invoke(app, args, env=NO_DEBUG)
    assert res.exit_code == 2, res.output
    assert res.stdout == ""
    assert "Traceback" not in res.output


@pytest.mark.parametrize("spec", [f"{FC}=", f"{FC}@XY=a.mat", ""])
def test_malformed_input_spec_exit_2(spec: str, tiny: TinyModel) -> None:
    res = runner.invoke(app, ["run", *tiny.model_args(), "-i", spec], env=NO_DEBUG)
    assert res.exit_code == 2, res.output
    assert "Error:" in res.stderr and "Hint:" in res.stderr


def test_metrics_csv_without_evaluate_exit_2(tmp_path: Path) -> None:
    res = runner.invoke(app, ["run", "-i", f"{FC}=a.mat", "--metrics-csv", str(tmp_path / "m.csv")], env=NO_DEBUG)
    assert res.exit_code == 2, res.output
    assert "--evaluate" in res.stderr


def test_bad_adapt_mode_exit_2(tmp_path: Path, tiny: TinyModel) -> None:
    inputs = tiny.write_inputs(tmp_path / "in", 3)
    res = runner.invoke(app, ["run", *tiny.model_args(), *tiny.input_args(inputs), "--adapt", "warp",
                              "-o", str(tmp_path / "o.mat")], env=NO_DEBUG)
    assert res.exit_code == 2, res.output
    assert "warp" in res.stderr
    assert not (tmp_path / "o.mat").exists()


def test_stderr_only_for_errors(tmp_path: Path, tiny: TinyModel) -> None:
    """An error writes nothing to stdout (which scripts parse); with --json, only the JSON error object."""
    import json

    args = ["run", *tiny.model_args(), "-i", f"{FC}={tmp_path / 'absent.mat'}"]
    res: Any = runner.invoke(app, args, env=NO_DEBUG)
    assert res.exit_code == 1 and res.stdout == ""
    res = runner.invoke(app, [*args, "--json"], env=NO_DEBUG)
    assert res.exit_code == 1
    assert json.loads(res.stdout) == {"error": f"input file {tmp_path / 'absent.mat'} not found",
                                      "hint": "check the path given with -i FLAVOR=PATH", "exit_code": 1}
