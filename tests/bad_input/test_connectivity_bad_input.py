"""Bad input to ``kraken connectivity`` (README.md in this folder, section "kraken connectivity").

Every case: exit code 1, ``Error:`` naming the file and the subject, a ``Hint:``, nothing on stdout and no
file left behind (no output, no ``.part``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import scipy.io
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from .test_bad_input import refused, snapshot

README = Path(__file__).with_name("README.md")
runner = CliRunner()


def _series(n: int, t: int = 30, r: int = 6, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(t, r)) for _ in range(n)]


def _cell_mat(path: Path, field: str, mats: list[np.ndarray], ids: list[str]) -> Path:
    cell = np.empty((1, len(mats)), dtype=object)
    sub = np.empty((1, len(ids)), dtype=object)
    for i, (m, s) in enumerate(zip(mats, ids)):
        cell[0, i], sub[0, i] = m, s
    scipy.io.savemat(path, {field: cell, "subjects": sub})
    return path


def conn(tmp_path: Path, *args: str) -> Any:
    return runner.invoke(app, ["connectivity", *args, "-o", str(tmp_path / "out" / "pcorr.mat"),
                               "--cache-dir", str(tmp_path / "cache")])


def test_nan_in_timeseries(tmp_path: Path) -> None:
    ts = _series(3)
    ts[1][4, 2] = np.nan
    f = _cell_mat(tmp_path / "ts.mat", "ts", ts, ["a", "b", "c"])
    before = snapshot(tmp_path)
    refused(conn(tmp_path, str(f)), 1, ["ts.mat", "subject b", "NaN"], tmp_path, before)


def test_inf_in_covariance(tmp_path: Path) -> None:
    covs = [np.cov(s, rowvar=False) for s in _series(3)]
    covs[2][0, 0] = np.inf
    f = _cell_mat(tmp_path / "cov.mat", "C", covs, ["a", "b", "c"])
    before = snapshot(tmp_path)
    refused(conn(tmp_path, str(f)), 1, ["cov.mat", "subject c", "Inf"], tmp_path, before)


def test_non_square_matrix(tmp_path: Path) -> None:
    np.savetxt(tmp_path / "sub-01_cov.csv", np.ones((4, 5)), delimiter=",")
    before = snapshot(tmp_path)
    res = conn(tmp_path, "--input-kind", "matrix", str(tmp_path / "sub-01_cov.csv"))
    refused(res, 1, ["sub-01_cov.csv", "subject 01", "square"], tmp_path, before)


def test_asymmetric_matrix(tmp_path: Path) -> None:
    covs = [np.cov(s, rowvar=False) for s in _series(2)]
    covs[1][0, 3] += 0.5
    f = _cell_mat(tmp_path / "cov.mat", "C", covs, ["a", "b"])
    before = snapshot(tmp_path)
    refused(conn(tmp_path, str(f)), 1, ["cov.mat", "subject b", "not symmetric", "--force-symmetry"],
            tmp_path, before)
    res = conn(tmp_path, str(f), "--force-symmetry")
    assert res.exit_code == 0, res.output


def test_one_time_point(tmp_path: Path) -> None:
    (tmp_path / "sub-07_ts.tsv").write_text("r1\tr2\tr3\n0.1\t0.2\t0.3\n")
    before = snapshot(tmp_path)
    refused(conn(tmp_path, str(tmp_path / "sub-07_ts.tsv")), 1, ["sub-07_ts.tsv", "subject 07", "2 time points"],
            tmp_path, before)


def test_mismatched_region_counts(tmp_path: Path) -> None:
    np.save(tmp_path / "sub-01.npy", _series(1, r=6)[0])
    np.save(tmp_path / "sub-02.npy", _series(1, r=5)[0])
    before = snapshot(tmp_path)
    refused(conn(tmp_path, str(tmp_path / "sub-*.npy")), 1, ["sub-02.npy", "subject 02", "5 regions"],
            tmp_path, before)


def test_target_of_another_size(tmp_path: Path) -> None:
    f = _cell_mat(tmp_path / "ts.mat", "ts", _series(3), ["a", "b", "c"])
    scipy.io.savemat(tmp_path / "target.mat", {"C": np.eye(7)})
    before = snapshot(tmp_path)
    refused(conn(tmp_path, str(f), "--target", str(tmp_path / "target.mat")), 1, ["target.mat", "7 x 7", "6 regions"],
            tmp_path, before)


def test_released_target_not_in_the_cache(tmp_path: Path) -> None:
    f = _cell_mat(tmp_path / "ts.mat", "ts", _series(3), ["a", "b", "c"])
    before = snapshot(tmp_path)
    refused(conn(tmp_path, str(f), "--target", "fs86"), 1,
            ["kraken fetch kraken_regtarget_FCpcorr_fs86_hpf_HCPYA710train.mat"], tmp_path, before)


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    f = _cell_mat(tmp_path / "ts.mat", "ts", _series(3), ["a", "b", "c"])
    before = snapshot(tmp_path)
    refused(conn(tmp_path, str(f), "--measure", "corr", "--lambda", "0.1"), 2, ["--lambda"], tmp_path, before)


def test_readme_table_matches_tests() -> None:
    rows = re.findall(r"^\| connectivity: `([a-z0-9_]+)` \|", README.read_text(), flags=re.M)
    tests = {n[len("test_"):] for n in globals() if n.startswith("test_") and n != "test_readme_table_matches_tests"}
    assert set(rows) == tests, (set(rows) - tests, tests - set(rows))
