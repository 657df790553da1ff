"""Conformance set R (../shared/conformance/R): the original's regularize_fc_precision.py outputs.

Every matrix within 1e-6 (max abs difference over the matrix's max abs value), the chosen lambda exactly,
the lambda-search table within 1e-6; the pcorr from time series (.mat and per-subject TSVs) equals the one
from the covariances. Skipped when ../shared is absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from .conftest import SHARED

R = SHARED / "conformance" / "R"
runner = CliRunner()


@pytest.fixture
def rdir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    if not R.is_dir():
        pytest.skip("../shared/conformance/R is not available")
    monkeypatch.chdir(R)
    return tmp_path


def _matrices(path: Path) -> np.ndarray:
    c = scipy.io.loadmat(path)["C"]
    if c.dtype == object:
        return np.stack([np.asarray(m, dtype=np.float64) for m in c.ravel()])
    return np.asarray(c, dtype=np.float64)


def _subjects(path: Path) -> list[str]:
    return [str(np.asarray(s).ravel()[0]).strip() for s in scipy.io.loadmat(path)["subjects"].ravel()]


def _scalar(path: Path, key: str) -> object:
    v = scipy.io.loadmat(path)[key]
    return str(v[0]).strip() if v.dtype.kind == "U" else float(np.asarray(v).ravel()[0])


def assert_same_file(ours: Path, expected: Path, rtol: float = 1e-6) -> None:
    a, b = _matrices(ours), _matrices(expected)
    assert a.shape == b.shape
    for x, y in zip(a.reshape(-1, *a.shape[-2:]), b.reshape(-1, *b.shape[-2:])):
        assert np.max(np.abs(x - y)) / np.max(np.abs(y)) <= rtol
    assert _subjects(ours) == _subjects(expected)
    for key in ("lambda", "lambda_raw", "conntype"):
        assert _scalar(ours, key) == (pytest.approx(_scalar(expected, key), rel=1e-12)
                                      if key == "lambda_raw" else _scalar(expected, key)), key


def assert_same_table(ours: Path, expected: Path) -> None:
    assert ours.read_text().splitlines()[0] == "lambda,reg_err"
    a = np.loadtxt(ours, delimiter=",", skiprows=1)
    b = np.loadtxt(expected, delimiter=",", skiprows=1)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=0)


def kraken(*args: str) -> None:
    result = runner.invoke(app, ["connectivity", *args, "-q"])
    assert result.exit_code == 0, result.output


def test_r1_target_free_search(rdir: Path) -> None:
    out, csv = rdir / "r1.mat", rdir / "r1.csv"
    kraken("inputs/newB_FCcov.mat", "-o", str(out), "--measure", "pcorr", "--search-csv", str(csv))
    assert_same_file(out, Path("expected/r1_newB_FCpcorr.mat"))
    assert_same_table(csv, Path("expected/r1_lambda_search.csv"))
    assert _scalar(out, "lambda") == 0.11


def _make_target(rdir: Path, source: str = "inputs/studyA_FCcov.mat") -> Path:
    target = rdir / "target.mat"
    kraken(source, "--split-file", "inputs/studyA_split.mat", "--split", "train", "--measure", "precision",
           "--lambda", "0", "--output-mean", str(target))
    return target


@pytest.mark.parametrize("source", ["inputs/studyA_FCcov.mat", "inputs/studyA_timeseries.mat"])
def test_r2_target_from_training_split(rdir: Path, source: str) -> None:
    assert_same_file(_make_target(rdir, source), Path("expected/r2_regtarget_studyA_train.mat"))


def test_r2_search_against_target(rdir: Path) -> None:
    target = _make_target(rdir)
    out, csv = rdir / "r2.mat", rdir / "r2.csv"
    kraken("inputs/newB_FCcov.mat", "--target", str(target), "--lambda-range", "0", "30", "-o", str(out),
           "--search-csv", str(csv))
    assert_same_file(out, Path("expected/r2_newB_FCpcorr.mat"))
    assert_same_table(csv, Path("expected/r2_lambda_search.csv"))
    # and against the original's own target file
    out2 = rdir / "r2b.mat"
    kraken("inputs/newB_FCcov.mat", "--target", "expected/r2_regtarget_studyA_train.mat", "--lambda-range", "0",
           "30", "-o", str(out2))
    assert_same_file(out2, Path("expected/r2_newB_FCpcorr.mat"))


@pytest.mark.parametrize("run", ["r1", "r2"])
def test_timeseries_inputs_equal_covariance_inputs(rdir: Path, run: str) -> None:
    extra = ["--target", "expected/r2_regtarget_studyA_train.mat", "--lambda-range", "0", "30"] if run == "r2" else []
    out = rdir / "ts.mat"
    kraken("inputs/newB_timeseries.mat", "-o", str(out), *extra)
    assert_same_file(out, Path(f"expected/{run}_newB_FCpcorr.mat"))


@pytest.mark.parametrize("pattern", ["inputs/persubject/sub-*_task-rest_timeseries.tsv",
                                     "inputs/persubject/sub-*_FCcov.csv"])
def test_per_subject_files_equal_the_cohort_file(rdir: Path, pattern: str) -> None:
    expected = Path("expected/r2_newB_FCpcorr.mat")
    out = rdir / "ps.mat"
    kraken(pattern, "--lambda", "30", "-o", str(out))
    ours, ref = _matrices(out), _matrices(expected)[:5]
    assert _subjects(out) == _subjects(expected)[:5]
    for x, y in zip(ours, ref):
        assert np.max(np.abs(x - y)) / np.max(np.abs(y)) <= 1e-6
