"""``kraken adapt`` through CliRunner: a saved adapter gives what ``run --adapt MODE`` gives on the same data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from ..helpers import FC, SC, TinyModel, files_in, make_tiny_model

runner = CliRunner()
MODES = ["meanshift", "meanfit", "meanfit+meanshift"]
P_FLAVORS = ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCsdstream_fs86_volnorm",
             "SCifod2act_fs86_volnorm"]


def invoke(*args: str) -> Any:
    res = runner.invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def predictions(file: Path) -> dict[str, dict[str, np.ndarray]]:
    return scipy.io.loadmat(file, simplify_cells=True)["predicted_alltypes"]


def assert_same_predictions(a: Path, b: Path) -> None:
    pa, pb = predictions(a), predictions(b)
    assert sorted(pa) == sorted(pb)
    for src in pa:
        assert sorted(pa[src]) == sorted(pb[src])
        for dst in pa[src]:
            np.testing.assert_array_equal(pa[src][dst], pb[src][dst], err_msg=f"{src} -> {dst}")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("adapt_cli"))


@pytest.fixture
def site(tmp_path: Path, tiny: TinyModel) -> dict[str, Path]:
    """Inputs of 8 subjects from another 'site' (another draw than the data the transforms were fitted on)."""
    return tiny.write_inputs(tmp_path / "site", 8, seed=50)


@pytest.mark.parametrize("mode", MODES)
def test_adapter_file_equals_adapt_mode(tmp_path: Path, tiny: TinyModel, site: dict[str, Path], mode: str) -> None:
    adapter = tmp_path / "a" / "site.json"
    rep = json.loads(invoke("adapt", *tiny.model_args(), *tiny.input_args(site), "--mode", mode,
                            "-o", str(adapter), "--json").stdout)
    assert rep["file"] == str(adapter) and rep["n_subjects"] == 8
    assert [a["flavor"] for a in rep["flavors"]] == [FC, SC]
    saved = json.loads(adapter.read_text())  # a plain JSON file
    assert saved

    common = [*tiny.model_args(), *tiny.input_args(site), "--fusion", "--outputs", "all", "-q"]
    invoke("run", *common, "--adapter", str(adapter), "-o", str(tmp_path / "p1.mat"))
    invoke("run", *common, "--adapt", mode, "-o", str(tmp_path / "p2.mat"))
    invoke("run", *common, "-o", str(tmp_path / "p0.mat"))
    assert_same_predictions(tmp_path / "p1.mat", tmp_path / "p2.mat")
    # and the adaptation does something
    a, b = predictions(tmp_path / "p0.mat"), predictions(tmp_path / "p1.mat")
    assert not np.array_equal(a[FC][SC], b[FC][SC])


def test_subject_subset_fit_reports_the_count(tmp_path: Path, tiny: TinyModel, site: dict[str, Path]) -> None:
    adapter = tmp_path / "sub.json"
    res = invoke("adapt", *tiny.model_args(), *tiny.input_args(site), "--subjects", "sub000,sub002,sub005",
                 "-o", str(adapter))
    text = " ".join(res.stdout.split())
    assert "Adaptation fitted on 3 subjects" in text and f"Written: {adapter}" in text
    rep = json.loads(invoke("adapt", *tiny.model_args(), *tiny.input_args(site), "--subjects",
                            "sub000,sub002,sub005", "-o", str(tmp_path / "sub2.json"), "--json").stdout)
    assert rep["n_subjects"] == 3
    # a subset fit differs from the fit on all subjects, and applies to every subject of a run
    invoke("adapt", *tiny.model_args(), *tiny.input_args(site), "-o", str(tmp_path / "all.json"), "-q")
    common = [*tiny.model_args(), *tiny.input_args(site), "--outputs", "all", "-q"]
    invoke("run", *common, "--adapter", str(adapter), "-o", str(tmp_path / "sub.mat"))
    invoke("run", *common, "--adapter", str(tmp_path / "all.json"), "-o", str(tmp_path / "all.mat"))
    ps, pa = predictions(tmp_path / "sub.mat"), predictions(tmp_path / "all.mat")
    assert ps[FC][SC].shape == pa[FC][SC].shape == (8, pa[FC][SC].shape[1])
    assert not np.array_equal(ps[FC][SC], pa[FC][SC])


def test_quiet_prints_the_adapter_path(tmp_path: Path, tiny: TinyModel, site: dict[str, Path]) -> None:
    out = tmp_path / "q.json"
    res = invoke("adapt", *tiny.model_args(), *tiny.input_args(site), "-o", str(out), "-q")
    assert res.stdout.splitlines() == [str(out)]


def test_adapter_for_another_transform_is_refused(tmp_path: Path, tiny: TinyModel, site: dict[str, Path]) -> None:
    other = make_tiny_model(tmp_path / "other", seed=7, name="other")
    adapter = tmp_path / "other.json"
    invoke("adapt", *other.model_args(), *tiny.input_args(site), "-o", str(adapter), "-q")
    before = files_in(tmp_path)
    res = runner.invoke(app, ["run", *tiny.model_args(), *tiny.input_args(site), "--adapter", str(adapter),
                              "-o", str(tmp_path / "out" / "p.mat")])
    assert res.exit_code == 1, res.output
    flat = " ".join(res.stderr.split())
    assert "other.json" in flat and "another transform" in flat and "kraken adapt" in flat
    assert res.stdout == "" and files_in(tmp_path) == before


def test_conformance_adapter_reproduces_the_original(shared_dir: Path, tmp_path: Path) -> None:
    """An adapter fitted on P's inputs gives the original's ``--adaptmode meanfit+meanshift`` latents (m6)."""
    p = shared_dir / "conformance" / "P"
    model = ["-c", str(p / "model.pt"), "-t", str(p / "model_ioxfm.npy"), "--device", "cpu"]
    ins: list[str] = []
    for f in P_FLAVORS:
        ins += ["-i", f"{f}={p / 'inputs' / f'{f}.mat'}"]
    adapter = tmp_path / "P.json"
    rep = json.loads(invoke("adapt", *model, *ins, "-o", str(adapter), "--json").stdout)
    assert rep["n_subjects"] == 12
    common = [*model, *ins, "--fusion", "--only-fusion", "--outputs", "encoded", "-q"]
    invoke("run", *common, "--adapter", str(adapter), "-o", str(tmp_path / "m6_file.mat"))
    invoke("run", *common, "--adapt", "meanfit+meanshift", "-o", str(tmp_path / "m6_mode.mat"))
    assert_same_predictions(tmp_path / "m6_file.mat", tmp_path / "m6_mode.mat")
    got = predictions(tmp_path / "m6_file.mat")["fusion"]["encoded"]
    want = predictions(p / "expected" / "m6_fusion_adapt.encoded.mat")["fusion"]["encoded"]
    assert np.max(np.abs(got - want)) / np.max(np.abs(want)) <= 1e-5
