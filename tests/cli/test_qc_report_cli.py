"""``kraken run --qc/--report`` (and ``describe --report``) end to end on a tiny model, plus the browser check.

The browser test renders the report in headless Chromium (Debian's ``chromium``; skipped where it is not
installed): the DOM must hold the QC table and no console error, and a screenshot must be a non-blank page.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from ..helpers import FC, SC, TinyModel, make_tiny_model, n_regions_of, plausible_connectomes, tri, write_mat

runner = CliRunner()
GROUP = {FC: "FC", SC: "SC"}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    """A tiny model whose transforms were fitted on plausible connectomes (the tests' inputs come from the same
    population, so in-distribution subjects must pass)."""
    data = {f: tri(plausible_connectomes(40, n_regions_of(f), GROUP[f], seed=k)) for k, f in enumerate((FC, SC))}
    return make_tiny_model(tmp_path_factory.mktemp("qccli"), train_data=data)


def write_inputs(tiny: TinyModel, folder: Path, n: int, *, seed: int = 50) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    ids = [f"sub{i:03d}" for i in range(n)]
    out = {}
    for k, f in enumerate(tiny.flavors):
        out[f] = write_mat(folder / f"{f}.mat", data=plausible_connectomes(n, n_regions_of(f), GROUP[f],
                                                                          seed=seed + k), subjects=ids)
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, tiny: TinyModel) -> Path:
    folder = tmp_path_factory.mktemp("qcreport")
    inputs = write_inputs(tiny, folder / "in", 10)
    out = folder / "report.html"
    res = _run(tiny, inputs, "--fusion", "--evaluate", "--qc", "--report", str(out), "-o", str(folder / "p.mat"))
    assert res.exit_code == 0, res.output
    return out


def _run(tiny: TinyModel, inputs: dict[str, Path], *extra: str) -> Any:
    return runner.invoke(app, ["run", *tiny.model_args(), *tiny.input_args(inputs), *extra], catch_exceptions=False)


def test_report_holds_summary_qc_table_heatmap_and_matrices(report: Path, tiny: TinyModel) -> None:
    page = report.read_text()
    import hashlib

    digest = hashlib.sha256(tiny.checkpoint.read_bytes()).hexdigest()
    assert digest in page  # the checkpoint's sha256
    assert 'id="qc-table"' in page and "Quality control" in page
    assert "chance" in page and "Top-1 accuracy" not in page  # readable names come from the figure, not text
    assert page.count("data:image/png;base64,") >= 3  # QC measures, heatmap, observed vs predicted
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_qc_reaches_json(tiny: TinyModel, tmp_path: Path) -> None:
    inputs = write_inputs(tiny, tmp_path / "in", 9)
    res = _run(tiny, inputs, "--qc", "--json")
    assert res.exit_code == 0, res.output
    qc = json.loads(res.stdout)["qc"]
    assert qc["subjects"] == 9 and len(qc["rows"]) == 9 * len(tiny.flavors)
    assert set(qc["thresholds"]) >= {"residual", "score", "scale", "pattern", "latent", "agreement", "adapt_r2"}
    assert all("flags" in r for r in qc["rows"])


def test_a_planted_subject_is_flagged_in_the_table(tiny: TinyModel, tmp_path: Path) -> None:
    from scipy.io import loadmat, savemat

    inputs = write_inputs(tiny, tmp_path / "in", 10)
    fc = tiny.flavors[0]
    m = loadmat(inputs[fc])
    data = np.asarray(m["data"], dtype=np.float64)
    data[3] *= 5.0  # subject 3's FC in the wrong units
    savemat(inputs[fc], {"data": data, "subjects": m["subjects"]})
    res = _run(tiny, inputs, "--qc")
    assert res.exit_code == 0, res.output
    assert "1 of 10 subjects flagged" in res.stdout and "sub003" in res.stdout and "fc_out_of_range" in res.stdout


def test_in_distribution_subjects_pass(tiny: TinyModel, tmp_path: Path) -> None:
    inputs = write_inputs(tiny, tmp_path / "in", 30, seed=7)
    res = _run(tiny, inputs, "--qc", "--json")
    assert res.exit_code == 0, res.output
    qc = json.loads(res.stdout)["qc"]
    assert len(qc["flagged_subjects"]) <= 1, qc["flagged_subjects"]  # under 5 % of 30
    # this transform file carries train_subjects: all but the latent distance (no training latents) are measured
    assert {n for notes in qc["notes"].values() for n in notes} == {
        "latent n/a: no training latents (train with kraken, or give --qc-latents FILE)"}


def test_report_may_not_overwrite_an_input(tiny: TinyModel, tmp_path: Path) -> None:
    inputs = write_inputs(tiny, tmp_path / "in", 4)
    target = inputs[tiny.flavors[0]]
    before = target.read_bytes()
    res = _run(tiny, inputs, "--report", str(target))
    assert res.exit_code != 0 and "--report" in res.output
    assert target.read_bytes() == before


def test_report_must_be_html_and_qc_latents_needs_qc(tiny: TinyModel, tmp_path: Path) -> None:
    inputs = write_inputs(tiny, tmp_path / "in", 4)
    res = _run(tiny, inputs, "--report", str(tmp_path / "r.png"))
    assert res.exit_code == 2 and "HTML" in res.output  # a usage error, before any input is read and not (tmp_path / "r.png").exists()
    res = _run(tiny, inputs, "--qc-latents", str(tmp_path / "z.mat"))
    assert res.exit_code == 2 and "--qc" in res.output


def test_qc_latents_of_another_model_are_refused(tiny: TinyModel, tmp_path: Path) -> None:
    inputs = write_inputs(tiny, tmp_path / "in", 4)
    bad = write_mat(tmp_path / "z.mat", encoded=np.ones((5, tiny.latent + 3)), subjects=[f"s{i}" for i in range(5)])
    out = tmp_path / "r.html"
    res = _run(tiny, inputs, "--qc", "--qc-latents", str(bad), "--report", str(out))
    assert res.exit_code == 1 and "latents" in res.output and not out.exists()


def test_report_and_output_may_not_be_one_file(tiny: TinyModel, tmp_path: Path) -> None:
    inputs = write_inputs(tiny, tmp_path / "in", 4)
    out = tmp_path / "same.html"
    res = _run(tiny, inputs, "--report", str(out), "-o", str(out), "--format", "npz")
    assert res.exit_code != 0 and not out.exists()


def test_failed_run_leaves_no_report(tiny: TinyModel, tmp_path: Path) -> None:
    """The report is committed with the run's other outputs: an error later in the run leaves none."""
    inputs = write_inputs(tiny, tmp_path / "in", 4)
    out = tmp_path / "r.html"
    res = _run(tiny, inputs, "--report", str(out), "--evaluate", "--metrics-csv", str(tmp_path / "nodir" / "m.csv"),
               "--outputs", "encoded")
    assert res.exit_code != 0 and not out.exists()


def test_describe_report(tiny: TinyModel, tmp_path: Path) -> None:
    out = tmp_path / "d.html"
    res = runner.invoke(app, ["describe", str(tiny.checkpoint), "--report", str(out), "--json"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["report"] == str(out)
    page = out.read_text()
    assert "stores no training statistics" in page and "No training record given" in page


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("chromium")
    assert exe is not None
    return subprocess.run([exe, "--headless", "--disable-gpu", "--no-sandbox", "--enable-logging=stderr",
                           "--v=0", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_renders_in_a_browser(report: Path) -> None:
    res = _chromium("--dump-dom", report.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    assert '<table id="qc-table">' in res.stdout and "Quality control" in res.stdout
    assert res.stdout.count("<img") >= 3
    console = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium (installed by .ci/run)")
def test_report_screenshot(report: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    res = _chromium(f"--screenshot={shot}", "--window-size=1200,2000", "--hide-scrollbars", report.as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as im:
        assert im.size == (1200, 2000)
        gray = np.asarray(im.convert("L"), dtype=np.float64)
    assert gray.std() > 10  # not a blank or uniform page
    assert (gray < 128).mean() > 0.005  # text and figures drawn, not just background
    top = gray[:400]
    assert (top < 128).mean() > 0.001  # the title and summary at the top are visible


def test_report_without_evaluate_still_shows_observed_vs_predicted(tmp_path: Path, tiny: TinyModel) -> None:
    # .mat outputs are written file by file and the inputs freed when nothing reads them again:
    # the report still needs the observed matrices and the predictions of its sample subjects
    inputs = write_inputs(tiny, tmp_path / "in", 6)
    out = tmp_path / "report.html"
    res = _run(tiny, inputs, "--fusion", "--report", str(out), "-o", str(tmp_path / "p_{input}.mat"))
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "Observed vs predicted" in page and page.count("data:image/png;base64,") >= 2
