"""Every command is a thin layer: it builds its engine config from the options and calls one engine function.

Each test replaces that engine function, runs the command, and checks what reached the engine (fastapi-cli's
contract test; ``kraken run``'s is in ``test_run_cli.py``). Nothing is computed or read.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

runner = CliRunner()
FC = "FCcorr_fs86_hpf"


def invoke(*args: str) -> Any:
    res = runner.invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_train(monkeypatch: pytest.MonkeyPatch) -> None:
    import kraken_cli.engine.training.session as session

    seen: dict[str, Any] = {}

    def fake(inputs: Any, config: Any, **kw: Any) -> Any:
        seen.update(inputs=inputs, config=config, **kw)
        return SimpleNamespace(to_dict=lambda: {"fake": True})

    monkeypatch.setattr(session, "train_from_inputs", fake)
    res = invoke("train", "-i", f"{FC}=fc.mat", "--paths", "FC", "--transformation", "pca8", "--latent-size", "16",
                 "--hidden", "32", "--dropout", "0.25", "--epochs", "7", "--batch-size", "5", "--lr", "0.001",
                 "--seed", "3", "--checkpoint-every", "2", "--display-every", "1", "-o", "run/x", "--threads", "2",
                 "--device", "cpu", "--json")
    assert json.loads(res.stdout) == {"fake": True}
    c = seen["config"]
    assert seen["inputs"] == [f"{FC}=fc.mat"] and seen["threads"] == 2 and seen["device"] == "cpu"
    assert (c.paths, c.transformation, c.latent_size, c.hidden, c.dropout) == (("FC",), "pca8", 16, (32,), 0.25)
    assert (c.epochs, c.batch_size, c.lr, c.seed, c.output) == (7, 5, 0.001, 3, "run/x")
    assert (c.checkpoint_every, c.display_every) == (2, 1)
    assert seen["report"] is None


def test_train_report_reaches_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import kraken_cli.engine.training.session as session

    seen: dict[str, Any] = {}
    monkeypatch.setattr(session, "train_from_inputs",
                        lambda inputs, config, **kw: seen.update(kw) or SimpleNamespace(to_dict=dict))
    invoke("train", "-i", f"{FC}=fc.mat", "-o", "run/x", "--report", "run/x.html", "--json")
    assert seen["report"] == "run/x.html"


def test_describe_report_reaches_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import kraken_cli.engine.describe as describe
    import kraken_cli.engine.pipelines.report as report

    seen: list[Any] = []
    monkeypatch.setattr(describe, "describe_checkpoint", lambda file: SimpleNamespace(to_dict=lambda: {}))
    monkeypatch.setattr(report, "write_describe_report",
                        lambda path, ck, rec, **kw: seen.append((str(path), str(ck), rec, kw)) or Path(path))
    res = invoke("describe", "model.pt", "--record", "rec.mat", "--report", "d.html", "--json")
    assert json.loads(res.stdout)["report"] == "d.html"
    assert seen == [("d.html", "model.pt", Path("rec.mat"), {"record_given": True})]


def test_train_defaults_are_the_engines(monkeypatch: pytest.MonkeyPatch) -> None:
    import kraken_cli.engine.training.session as session
    from kraken_cli.engine.training.config import TrainConfig

    seen: list[Any] = []
    monkeypatch.setattr(session, "train_from_inputs",
                        lambda inputs, config, **kw: seen.append(config) or SimpleNamespace(to_dict=dict))
    invoke("train", "-i", f"{FC}=fc.mat", "--json")
    expected = TrainConfig(output="kraken")
    for field in ("paths", "transformation", "latent_size", "latent_unit", "dropout", "loss", "epochs", "batch_size",
                  "lr", "weight_decay", "seed", "trainval_frac", "val_frac", "checkpoint_every", "display_every"):
        assert getattr(seen[0], field) == getattr(expected, field), field


def test_adapt(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import kraken_cli.engine.pipelines.adapt as pipeline

    seen: list[Any] = []

    def fake(config: Any, progress: Any = None) -> Any:
        seen.append(config)
        return pipeline.AdaptResult(tmp_path / "a.json", 3, [])

    monkeypatch.setattr(pipeline, "fit_adapter", fake)
    res = invoke("adapt", "-c", "m.pt", "-t", "x.npy", "-i", f"{FC}=fc.mat", "--mode", "meanshift",
                 "--subjects", "s1,s2", "--edge-order", "nilearn", "-o", str(tmp_path / "a.json"), "--json")
    assert json.loads(res.stdout)["n_subjects"] == 3
    (c,) = seen
    assert (c.inputs, c.checkpoints, c.transforms, c.mode) == ((f"{FC}=fc.mat",), ("m.pt",), ("x.npy",), "meanshift")
    assert (c.subjects, c.edge_order, c.output) == ("s1,s2", "nilearn", str(tmp_path / "a.json"))


def test_connectivity(monkeypatch: pytest.MonkeyPatch) -> None:
    import kraken_cli.engine.connectivity as connectivity

    seen: list[Any] = []

    def fake(config: Any, progress: Any = None) -> Any:
        seen.append(config)
        return SimpleNamespace(to_dict=lambda: {"fake": True})

    monkeypatch.setattr(connectivity, "run_connectivity", fake)
    invoke("connectivity", "ts.mat", "--measure", "pcorr", "--lambda-range", "0", "30", "--lambda-grid", "5",
           "--target", "target.mat", "-o", "out.mat", "--json")
    (c,) = seen
    assert (c.inputs, c.measure, c.target, c.output) == (("ts.mat",), "pcorr", "target.mat", "out.mat")
    assert tuple(c.lambda_range) == (0.0, 30.0) and c.lambda_grid == 5


def test_merge(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import kraken_cli.engine.merge as merge

    seen: dict[str, Any] = {}

    def fake(checkpoints: Any, output: Any, **kw: Any) -> Any:
        seen.update(checkpoints=checkpoints, output=output, **kw)
        return merge.MergeResult(str(output), [FC], ["a.pt"], [(FC, FC)])

    monkeypatch.setattr(merge, "merge_to_file", fake)
    res = invoke("merge", "a.pt", "b.pt", "-o", str(tmp_path / "m.pt"), "--canonical", "--json")
    assert json.loads(res.stdout)["flavors"] == [FC]
    assert [str(c) for c in seen["checkpoints"]] == ["a.pt", "b.pt"] and seen["canonical"] is True


def test_describe(monkeypatch: pytest.MonkeyPatch) -> None:
    import kraken_cli.engine.describe as describe

    seen: list[Any] = []
    monkeypatch.setattr(describe, "describe_checkpoint",
                        lambda file: seen.append(file) or SimpleNamespace(to_dict=lambda: {"file": str(file)}))
    res = invoke("describe", "model.pt", "--json")
    assert json.loads(res.stdout) == {"file": "model.pt", "heatmap": None, "report": None}
    assert [str(f) for f in seen] == ["model.pt"]


def test_fetch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kraken_cli.engine import registry

    seen: dict[str, Any] = {}

    def fake(names: Any, **kw: Any) -> list[Any]:
        seen.update(names=names, **kw)
        return []

    monkeypatch.setattr(registry, "fetch", fake)
    invoke("fetch", "NAME", "--cache-dir", str(tmp_path), "--mirror", "https://m.example", "--force", "--json")
    assert seen["names"] == ["NAME"] and seen["force"] is True and seen["mirrors_first"] == ["https://m.example"]
    assert Path(seen["cache_dir"]) == tmp_path


def test_example(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import kraken_cli.engine.example as example

    seen: dict[str, Any] = {}

    def fake(folder: Any, **kw: Any) -> Any:
        seen.update(folder=folder, **kw)
        return SimpleNamespace(to_dict=lambda: {"fake": True})

    monkeypatch.setattr(example, "run_example", fake)
    invoke("example", str(tmp_path / "demo"), "--n-subjects", "60", "--epochs", "3", "--seed", "2", "--json")
    assert Path(seen["folder"]) == tmp_path / "demo"
    assert (seen["n_subjects"], seen["epochs"], seen["seed"]) == (60, 3, 2)
