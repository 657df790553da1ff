"""``--json`` failures print ``{"error", "hint", "exit_code"}`` on stdout; ``-q`` is quiet on every command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from ..helpers import TinyModel, make_tiny_model

runner = CliRunner()
NO_DEBUG = {"KRAKEN_DEBUG": ""}
GHOST = "does-not-exist.pt"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("jsonq"))


@pytest.mark.parametrize("args", [
    ["run", "-c", GHOST, "-i", "FCcorr_fs86_hpf=x.mat"],
    ["describe", GHOST],
    ["merge", GHOST, GHOST, "-o", "m.pt"],
    ["adapt", "-c", GHOST, "-i", "FCcorr_fs86_hpf=x.mat", "-o", "a.json"],
    ["train", "-i", "FCcorr_fs86_hpf=does-not-exist.mat", "-o", "k"],
    ["fetch", "no_such_file.pt"],
], ids=lambda a: a[0])
def test_json_failure_is_a_json_object(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*args, "--json"], env=NO_DEBUG)
    assert res.exit_code == 1, res.output
    report = json.loads(res.stdout)
    assert set(report) == {"error", "hint", "exit_code"} and report["exit_code"] == 1
    assert "does-not-exist" in report["error"] or "no_such_file" in report["error"]
    assert "Error:" in res.stderr  # people still read stderr


@pytest.mark.parametrize("args", [
    ["run", "-i", "FCcorr_fs86_hpf=x.mat", "--demean", "bogus"],  # a usage error of the engine
    ["train", "-i", "FCcorr_fs86_hpf=x.mat", "--resume", "a.pt", "--start-from", "b.pt"],  # raised by the command
], ids=["engine", "command"])
def test_json_usage_error_says_exit_code_2(args: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, [*args, "--json"], env=NO_DEBUG)
    assert res.exit_code == 2, res.output
    report = json.loads(res.stdout)
    assert report["exit_code"] == 2 and report["error"]


def test_describe_quiet_prints_only_the_flavors(tiny: TinyModel) -> None:
    res = runner.invoke(app, ["describe", str(tiny.checkpoint), "-q"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == list(tiny.flavors) and res.stderr == ""
    res = runner.invoke(app, ["describe", str(tiny.checkpoint), "-q", "--paths"], catch_exceptions=False)
    assert res.stdout.splitlines()[len(tiny.flavors):] and all("->" in ln
                                                                for ln in res.stdout.splitlines()[len(tiny.flavors):])


def test_run_and_merge_quiet_print_only_paths(tiny: TinyModel, tmp_path: Path) -> None:
    inputs = tiny.write_inputs(tmp_path / "in", 4)
    out = tmp_path / "pred.mat"
    res = runner.invoke(app, ["run", *tiny.model_args(), *tiny.input_args(inputs), "-o", str(out), "-q"],
                        catch_exceptions=False)
    assert res.exit_code == 0 and res.stderr == "" and res.stdout.splitlines() == [str(out)], res.output
    res = runner.invoke(app, ["merge", str(tiny.checkpoint), str(tiny.checkpoint), "-o", str(tmp_path / "m.pt"), "-q"],
                        catch_exceptions=False)
    assert res.exit_code == 0 and res.stderr == "", res.output
