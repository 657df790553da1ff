"""``kraken describe`` through CliRunner: heatmaps from training records, kraken-trained and merged checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app
from kraken_cli.engine.datasets import make_cohort
from kraken_cli.engine.training import TrainConfig, train

from ..helpers import FC, SC, files_in, make_tiny_model

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


def describe(*args: str) -> Any:
    res = runner.invoke(app, ["describe", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The final checkpoint of a tiny kraken training run (10 epochs), with its record beside it."""
    root = tmp_path_factory.mktemp("describe_trained")
    c = make_cohort(60, n_regions=10, atlas="toy10", flavors=["FCcorr_toy10_hpf", "SCifod2act_toy10_volnorm"], seed=2)
    cfg = TrainConfig(transformation="pca6", latent_size=4, batch_size=16, epochs=10, display_every=5,
                      checkpoint_every=0, output=str(root / "k"))
    res = train(c.data, cfg, subjects=c.subjects, groups={"FCcorr_toy10_hpf": "FC", "SCifod2act_toy10_volnorm": "SC"},
                figures=False)
    return res.checkpoints[-1]


def test_heatmap_from_the_original_training_record(shared_dir: Path, tmp_path: Path) -> None:
    p = shared_dir / "conformance" / "P"
    out = tmp_path / "fig" / "heat.png"
    res = describe(str(p / "model.pt"), "--record", str(p / "reference_trainrecord.mat"), "--heatmap", str(out))
    assert out.read_bytes()[:8] == PNG and out.stat().st_size > 10_000
    assert "Heatmap written to" in res.stdout
    assert files_in(tmp_path) == {"fig/heat.png"}
    rep = json.loads(describe(str(p / "model.pt"), "--record", str(p / "reference_trainrecord.mat"), "--heatmap",
                              str(tmp_path / "h2.png"), "--json").stdout)
    assert rep["heatmap"] == str(tmp_path / "h2.png") and (tmp_path / "h2.png").is_file()


def test_kraken_trained_checkpoint_shows_completed_epochs_and_metadata(trained: Path) -> None:
    res = describe(str(trained), "--paths")
    text = " ".join(res.stdout.split())
    assert "10 completed (epoch key 9, 0-based)" in text
    assert "kraken metadata" in text
    for key in ("kraken_version", "kraken_seed", "kraken_completed_epochs", "kraken_train_config"):
        assert key in text, key
    assert "Training paths (4)" in text
    # the per-epoch history is summarised, not dumped (no tensor reprs, bounded size)
    assert "tensor(" not in res.stdout and len(res.stdout) < 30_000

    rep = json.loads(describe(str(trained), "--json").stdout)
    assert rep["completed_epochs"] == 10 and rep["epoch_key"] == 9
    assert rep["kraken"]["kraken_completed_epochs"] == 10 and rep["kraken"]["kraken_seed"] == 0
    assert rep["kraken"]["kraken_train_config"]["epochs"] == 10
    assert "kraken_optimizer_state" not in rep["kraken"]  # internal state stays out of the report
    assert all(isinstance(v, (str, list)) for v in rep["kraken"]["kraken_history"].values())


def test_heatmap_from_kraken_record_found_by_the_naming_rule(trained: Path, tmp_path: Path) -> None:
    out = tmp_path / "h.png"
    describe(str(trained), "--heatmap", str(out))
    assert out.read_bytes()[:8] == PNG


def test_merged_checkpoint_shows_where_each_flavor_came_from(tmp_path: Path) -> None:
    pc = "FCpcorr_fs86_hpf"
    a = make_tiny_model(tmp_path, (FC, SC), name="a", seed=1)
    b = make_tiny_model(tmp_path, (pc,), name="b", seed=2)
    merged = tmp_path / "merged.pt"
    res = runner.invoke(app, ["merge", str(a.checkpoint), str(b.checkpoint), "-o", str(merged), "-q"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rep = json.loads(describe(str(merged), "--json").stdout)
    sources = {f["name"]: f["source"] for f in rep["flavors"]}
    assert [Path(s).name for s in (sources[FC], sources[SC], sources[pc])] == \
        [a.checkpoint.name, a.checkpoint.name, b.checkpoint.name]
    text = " ".join(describe(str(merged)).stdout.split())
    assert "from" in text and b.checkpoint.name[:20] in text


def test_original_merged_checkpoint_provenance(shared_dir: Path) -> None:
    merged = shared_dir / "conformance" / "P" / "expected" / "merged_model.pt"
    rep = json.loads(describe(str(merged), "--json").stdout)
    sources = {f["name"]: f["source"] for f in rep["flavors"]}
    assert sources.pop("SCifod2act_fs86_count") == "newflavor_model.pt"
    assert set(sources.values()) == {"model.pt"} and len(sources) == 5
    assert rep["epoch_key"] == 39
