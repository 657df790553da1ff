"""``kraken example`` through CliRunner: a small offline demo whose printed commands work as printed."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

runner = CliRunner()
FLAVORS = ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCifod2act_fs86_volnorm",
           "SCsdstream_fs86_volnorm"]


def commands(stdout: str) -> dict[str, list[str]]:
    """The printed ``kraken ...`` commands by subcommand, as argument lists without the leading ``kraken``."""
    out: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        if line.startswith("kraken "):
            args = shlex.split(line)[1:]
            out[args[0]] = args
    return out


@pytest.fixture(scope="module")
def example(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    """A small demo (60 subjects, 20 epochs) in a fresh working folder, with relative paths as a user types them."""
    cwd = tmp_path_factory.mktemp("example_cli")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)
        mp.setattr("kraken_cli.engine.training.loop._figures", lambda setup: {})  # 4 s; tested with `kraken train`
        res = runner.invoke(app, ["example", "demo", "--n-subjects", "60", "--epochs", "20"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return cwd, res


def test_example_writes_data_model_and_predictions(example: tuple[Path, Any]) -> None:
    cwd, res = example
    demo = cwd / "demo"
    assert sorted(p.name for p in (demo / "data").iterdir()) == sorted(f"{f}.mat" for f in FLAVORS)
    model = demo / "model"
    assert len(list(model.glob("kraken_chkpt_*_ep000020.pt"))) == 1
    for kind in ("ioxfm", "subjsplit", "trainrecord", "log", "config"):
        assert len(list(model.glob(f"kraken_{kind}_*"))) == 1, kind
    pred = demo / "predictions"
    assert {p.name for p in pred.iterdir()} == {*(f"{f}.mat" for f in FLAVORS), "fusion.mat", "metrics.csv",
                                                 "heatmap.png"}
    assert not list(cwd.rglob("*.part"))
    # the report: a metrics table of held-out subjects on stdout, the talk on stderr
    text = " ".join(res.stdout.split())
    assert "Fusion predictions of 12 held-out subjects" in text
    assert "Repeat or vary it with" in res.stderr


def test_printed_commands(example: tuple[Path, Any]) -> None:
    cmds = commands(example[1].stdout)
    assert set(cmds) == {"train", "run", "describe"}
    train = cmds["train"]
    for f in FLAVORS:
        assert f"{f}=demo/data/{f}.mat" in train
    assert train[train.index("--epochs") + 1] == "20"
    # 43 training subjects are too few for PCA-64: the demo picks a PCA the cohort supports
    assert train[train.index("--transformation") + 1] == "pca42"


def test_printed_run_command_succeeds_offline(example: tuple[Path, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    cwd, _ = example
    args = commands(example[1].stdout)["run"]
    out_template = args[args.index("-o") + 1]
    assert out_template == "demo/predictions/{input}.mat"
    # write the predictions elsewhere, so the demo's own files stay as they were
    args[args.index("-o") + 1] = "again/{input}.mat"
    args[args.index("--metrics-csv") + 1] = "again/metrics.csv"
    args[args.index("--heatmap") + 1] = "again/heatmap.png"
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("KRAKEN_DATA", str(cwd / "no-cache"))  # nothing may come from a download cache
    res = runner.invoke(app, [*args, "--json", "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["n_subjects"] == 12
    assert {Path(f).name for f in rep["files"]} == {*(f"{f}.mat" for f in FLAVORS), "fusion.mat", "metrics.csv",
                                                     "heatmap.png"}
    assert not (cwd / "no-cache").exists()
    # the same numbers as the demo's own evaluation
    assert (cwd / "again" / "metrics.csv").read_text() == (cwd / "demo" / "predictions" / "metrics.csv").read_text()


def test_json_report_and_printed_train_command_repeats_the_model(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The smallest cohort allowed (50 subjects, 36 training subjects): PCA and batch size shrink to fit."""
    import torch

    from kraken_cli.engine.checkpoint import load_checkpoint

    monkeypatch.setattr("kraken_cli.engine.training.loop._figures", lambda setup: {})
    monkeypatch.chdir(tmp_path)
    res = runner.invoke(app, ["example", "d", "--n-subjects", "50", "--epochs", "2", "--json"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["folder"] == "d"
    assert all(Path(f).exists() for f in rep["files"])
    assert [c.split()[1] for c in rep["commands"]] == ["train", "run", "describe"]
    assert {m["source"] for m in rep["metrics"]} >= {"fusion"}

    train = shlex.split(rep["commands"][0])[1:]
    assert train[train.index("--transformation") + 1] == "pca35"
    assert train[train.index("--batch-size") + 1] == "36"
    train[train.index("-o") + 1] = "again/"
    res = runner.invoke(app, [*train, "-q", "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    again = load_checkpoint(res.stdout.strip()).raw["state_dict"]
    first = load_checkpoint(rep["files"][0]).raw["state_dict"]
    assert all(torch.equal(again[k], first[k]) for k in first)
