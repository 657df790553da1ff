"""``kraken run`` (and the small ``merge``/``describe`` reports) through CliRunner: options -> config, stdout/stderr."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from ..helpers import FC, SC, TinyModel, files_in, make_tiny_model

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("runcli"))


@pytest.fixture
def inputs(tmp_path: Path, tiny: TinyModel) -> dict[str, Path]:
    return tiny.write_inputs(tmp_path / "in", 4)


def _run(tiny: TinyModel, inputs: dict[str, Path], *extra: str) -> Any:
    args = ["run", *tiny.model_args(), *tiny.input_args(inputs), *extra]
    return runner.invoke(app, args, catch_exceptions=False)


def test_json_report_lists_files(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    out = tmp_path / "out"
    res = _run(tiny, inputs, "--fusion", "-o", str(out / "p.{input}.mat"), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    expected = {str(out / f"p.{s}.mat") for s in (FC, SC, "fusion")}
    assert set(report["files"]) == expected
    assert all(Path(f).exists() for f in report["files"])
    assert files_in(out) == {f"p.{s}.mat" for s in (FC, SC, "fusion")}
    assert report["n_subjects"] == 4
    assert [i["flavor"] for i in report["inputs"]] == [FC, SC]
    assert report["plan_sources"] == [FC, SC, "fusion"] and report["plan_outputs"] == [FC, SC]


def test_quiet_prints_only_written_paths(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    # a long folder name with brackets: neither rich markup nor line folding may alter the paths
    out = tmp_path / ("very_long_output_folder_name_" * 4 + "[bold]")
    res = _run(tiny, inputs, "-q", "-o", str(out / "{input}_{output}.npz"), "--format", "npz",
               "--outputs", SC, "--outputs", "encoded")
    assert res.exit_code == 0, res.output
    lines = res.stdout.splitlines()
    expected = [str(out / f"{s}_{o}.npz") for s in (FC, SC) for o in (SC, "encoded")]
    assert lines == expected
    assert all(Path(p).exists() for p in lines)


def test_default_report_has_tables_on_stdout(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    res = _run(tiny, inputs, "-o", str(tmp_path / "o.mat"))
    assert res.exit_code == 0, res.output
    assert "Inputs" in res.stdout and "Written" in res.stdout
    assert FC in res.stdout


def test_no_output_warns_on_stderr(tiny: TinyModel, inputs: dict[str, Path]) -> None:
    res = _run(tiny, inputs, "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["files"] == []
    assert "Warning:" in res.stderr and "not saved" in res.stderr


def test_written_predictions_are_readable(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    import scipy.io

    res = _run(tiny, inputs, "-q", "--outputs", "encoded", "-o", str(tmp_path / "enc.mat"))
    assert res.exit_code == 0, res.output
    d = scipy.io.loadmat(tmp_path / "enc.mat", simplify_cells=True)
    assert [s.strip() for s in d["subjects"]] == [f"sub{i:03d}" for i in range(4)]
    z = d["predicted_alltypes"][FC]["encoded"]
    assert z.shape == (4, tiny.latent)
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, rtol=1e-5)  # latent_normalize


def test_chunk_size_option_gives_same_file(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    for cs in ("1", "1000"):
        res = _run(tiny, inputs, "-q", "--fusion", "--chunk-size", cs, "--format", "npz",
                   "-o", str(tmp_path / f"c{cs}.npz"))
        assert res.exit_code == 0, res.output
    with np.load(tmp_path / "c1.npz") as a, np.load(tmp_path / "c1000.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        for k in a.files:
            if a[k].dtype.kind == "f":  # BLAS may round differently for other batch sizes: float32 noise only
                np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(a[k], b[k])


def test_options_reach_the_engine_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI builds one PredictConfig and calls pipelines.predict.predict once (fastapi-cli's contract test)."""
    import kraken_cli.engine.pipelines.predict as pipeline

    seen: list[Any] = []

    def fake_run(config: Any, progress: Any = None) -> Any:
        seen.append(config)
        return pipeline.PredictResult(inputs=[], n_subjects=0, checkpoint="x.pt", files=[tmp_path / "a.mat"])

    monkeypatch.setattr(pipeline, "predict", fake_run)
    args = ["run", "-c", "a.pt", "-c", "b.pt", "-t", "x.npy", "-i", f"{FC}=dir/a=b.mat", "-i", f"{SC}@SC=s.mat",
            "--fusion-include", "fusionSC=SC", "--fusion-include", "fusion=all", "--fusion-noself",
            "--fusion-norm", "--only-fusion", "--outputs", "encoded", "--outputs", SC, "-o", "o/{input}.mat",
            "--square", "--format", "mat73", "--adapt", "meanshift", "--adapt-source", f"{FC}=ref.mat",
            "--subjects", "s1,s2", "--split-file", "split.mat", "--split", "test", "--evaluate",
            "--metrics-csv", "m.csv", "--demean", "train", "--chunk-size", "7", "--device", "cpu",
            "--cache-dir", "cache", "--qc", "--qc-latents", "z.mat", "--report", "r.html", "-q"]
    res = runner.invoke(app, args, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [str(tmp_path / "a.mat")]
    (c,) = seen
    assert c.inputs == (f"{FC}=dir/a=b.mat", f"{SC}@SC=s.mat")
    assert c.checkpoints == ("a.pt", "b.pt") and c.transforms == ("x.npy",)
    o = c.options
    assert o.fusion is True  # implied by --fusion-include
    assert o.fusion_include == {"fusionSC": ["SC"], "fusion": ["all"]}
    assert (o.fusion_noself, o.fusion_noatlas, o.fusion_norm, o.only_fusion) == (True, False, True, True)
    assert o.outputs == ("encoded", SC) and o.adapt == "meanshift" and o.chunk_size == 7
    assert (c.output, c.square, c.fmt) == ("o/{input}.mat", True, "mat73")
    assert c.adapt_source == (f"{FC}=ref.mat",) and c.adapter is None
    assert (c.subjects, c.split_file, c.split) == ("s1,s2", "split.mat", "test")
    assert (c.evaluate, c.metrics_csv, c.heatmap, c.demean) == (True, "m.csv", None, "train")
    assert c.device == "cpu" and Path(c.cache_dir) == Path("cache").resolve()
    assert (c.qc, c.qc_latents, c.report) == (True, "z.mat", "r.html")


def test_defaults_reach_the_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    import kraken_cli.engine.pipelines.predict as engine_run

    seen: list[Any] = []
    monkeypatch.setattr(engine_run, "predict", lambda config, progress=None: seen.append(config) or
                        engine_run.PredictResult(inputs=[], n_subjects=0, checkpoint=""))
    res = runner.invoke(app, ["run", "-i", f"{FC}=a.mat", "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    (c,) = seen
    assert c.options.outputs == ("all",) and c.options.fusion is False and c.options.adapt == "none"
    from kraken_cli.engine.inference import DEFAULT_CHUNK_SIZE

    assert c.options.chunk_size == DEFAULT_CHUNK_SIZE and c.fmt is None and c.device == "auto" and c.demean == "test"
    assert c.checkpoints == () and c.output is None and c.adapter is None and c.subjects is None
    assert (c.qc, c.qc_latents, c.report) == (False, None, None)


def test_metrics_csv_without_evaluate_is_a_usage_error(tiny: TinyModel, inputs: dict[str, Path],
                                                        tmp_path: Path) -> None:
    for opt in ("--metrics-csv", "--heatmap"):
        res = runner.invoke(app, ["run", *tiny.model_args(), *tiny.input_args(inputs), opt, str(tmp_path / "x")])
        assert res.exit_code == 2, res.output
        assert "--evaluate" in res.stderr
        assert not (tmp_path / "x").exists()


def test_evaluate_writes_metrics_csv(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    import csv

    res = _run(tiny, inputs, "--evaluate", "--metrics-csv", str(tmp_path / "m.csv"), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    pairs = {(m["source"], m["target"]) for m in report["metrics"]}
    assert pairs == {(s, o) for s in (FC, SC) for o in (FC, SC)}
    rows = list(csv.DictReader((tmp_path / "m.csv").open()))
    assert len(rows) == 5 and rows[-1]["source"] == "mean"
    assert str(tmp_path / "m.csv") in report["files"]


# -- merge and describe reports ------------------------------------------------------------------------------

def test_merge_json_and_quiet(tmp_path: Path, tiny: TinyModel) -> None:
    other = make_tiny_model(tmp_path / "b", ("FCpcorr_fs86_hpf",), name="b")
    out = tmp_path / "merged.pt"
    res = runner.invoke(app, ["merge", str(tiny.checkpoint), str(other.checkpoint), "-o", str(out), "--json"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["output"] == str(out) and report["flavors"] == [FC, SC, "FCpcorr_fs86_hpf"]
    assert report["sources"] == [tiny.checkpoint.name] * 2 + [other.checkpoint.name]
    out2 = tmp_path / "merged2.pt"
    res = runner.invoke(app, ["merge", str(tiny.checkpoint), str(other.checkpoint), "-o", str(out2), "-q"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [str(out2)]


def test_merge_collision_warns_on_stderr(tmp_path: Path, tiny: TinyModel) -> None:
    other = make_tiny_model(tmp_path / "b", (SC,), name="b", seed=5)
    res = runner.invoke(app, ["merge", str(tiny.checkpoint), str(other.checkpoint), "-o", str(tmp_path / "m.pt"),
                              "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "Warning:" in res.stderr and SC in res.stderr
    assert json.loads(res.stdout)["flavors"] == [FC, SC]


def test_describe_json(tiny: TinyModel) -> None:
    res = runner.invoke(app, ["describe", str(tiny.checkpoint), "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    d = json.loads(res.stdout)
    assert [f["name"] for f in d["flavors"]] == [FC, SC]
    assert d["epoch_key"] == 9 and d["completed_epochs"] == 10
    assert [f["edges"] for f in d["flavors"]] == [3655, 3655]


def test_describe_table_paths(tiny: TinyModel) -> None:
    res = runner.invoke(app, ["describe", str(tiny.checkpoint), "--paths"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert f"{FC} -> {SC}" in res.stdout
    assert "10 completed" in res.stdout


def test_adapt_quiet_prints_the_adapter_path(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    out = tmp_path / ("long_folder_name_for_the_adapter_" * 3 + "[site]") / "site.json"
    res = runner.invoke(app, ["adapt", "-c", str(tiny.checkpoint), "-t", str(tiny.transforms_file),
                              *tiny.input_args(inputs), "--mode", "meanshift", "-o", str(out), "-q"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [str(out)]
    assert json.loads(out.read_text())["format"] == "kraken-adapter"
