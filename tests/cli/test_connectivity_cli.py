"""``kraken connectivity`` through the CLI: options reach the engine as given; reports on stdout."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from kraken_cli.cli.app import app

runner = CliRunner()


def _ts_file(path: Path, n: int = 4, r: int = 6, t: int = 25) -> Path:
    rng = np.random.default_rng(3)
    cell = np.empty((1, n), dtype=object)
    sub = np.empty((1, n), dtype=object)
    for i in range(n):
        cell[0, i] = rng.normal(size=(t, r))
        sub[0, i] = f"s{i}"
    scipy.io.savemat(path, {"ts": cell, "subjects": sub})
    return path


def test_options_reach_the_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from kraken_cli.engine import connectivity as conn
    from kraken_cli.engine.connectivity import ConnectivityResult

    seen: dict[str, Any] = {}

    def fake(config: Any, progress: Any = None) -> ConnectivityResult:
        seen["config"] = config
        return ConnectivityResult("pcorr", "partialcorr", 6, ["a"], 1, 0.5, 0.49, "t.mat", [tmp_path / "o.mat"])

    monkeypatch.setattr(conn, "run_connectivity", fake)
    res = runner.invoke(app, ["connectivity", "a.mat", "b.mat", "-o", str(tmp_path / "o.mat"), "--target", "fs86",
                              "--lambda-range", "0", "30", "--lambda-grid", "7", "--lambda-loops", "2",
                              "--lambda-round", "3", "--geometric-mean", "--force-symmetry", "--search-csv",
                              str(tmp_path / "s.csv"), "--cache-dir", str(tmp_path), "--json"])
    assert res.exit_code == 0, res.output
    c = seen["config"]
    assert c.inputs == ("a.mat", "b.mat") and c.target == "fs86" and c.lambda_range == (0.0, 30.0)
    assert (c.lambda_grid, c.lambda_loops, c.lambda_round) == (7, 2, 3)
    assert c.geometric_mean and c.force_symmetry and not c.keep_unnormalized
    assert c.measure == "pcorr" and c.search_csv == str(tmp_path / "s.csv") and c.cache_dir == str(tmp_path)
    report = json.loads(res.stdout)
    assert report["lambda"] == 0.5 and report["lambda_raw"] == 0.49 and report["target"] == "t.mat"
    assert report["subjects"] == ["a"]


def test_json_report_of_a_real_run(tmp_path: Path) -> None:
    f = _ts_file(tmp_path / "ts.mat")
    res = runner.invoke(app, ["connectivity", str(f), "-o", str(tmp_path / "o.mat"), "--json"])
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["subjects"] == ["s0", "s1", "s2", "s3"] and report["n_regions"] == 6
    assert report["lambda"] == round(report["lambda_raw"], 2)
    assert "mean of the unregularized inverses" in report["target"]
    m = scipy.io.loadmat(tmp_path / "o.mat")
    assert m["C"].shape == (4, 1) and m["C"][0, 0].shape == (6, 6) and str(m["conntype"][0]) == "partialcorr"


def test_quiet_prints_only_the_files(tmp_path: Path) -> None:
    f = _ts_file(tmp_path / "ts.mat")
    res = runner.invoke(app, ["connectivity", str(f), "-o", str(tmp_path / "o.npz"), "--search-figure",
                              str(tmp_path / "s.png"), "-q"])
    assert res.exit_code == 0, res.output
    assert res.stdout.split() == [str(tmp_path / "o.npz"), str(tmp_path / "s.png")]
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_output_formats_hold_the_same_matrices(tmp_path: Path) -> None:
    import h5py

    f = _ts_file(tmp_path / "ts.mat")
    for name, fmt in (("a.mat", "mat"), ("b.mat", "mat73"), ("c.npz", "npz")):
        res = runner.invoke(app, ["connectivity", str(f), "--lambda", "0.2", "-o", str(tmp_path / name),
                                  "--format", fmt, "-q"])
        assert res.exit_code == 0, res.output
    a = np.stack([np.asarray(c) for c in scipy.io.loadmat(tmp_path / "a.mat")["C"].ravel()])
    with h5py.File(tmp_path / "b.mat") as h5:
        b = np.asarray(h5["C"]).transpose(2, 1, 0)  # HDF5 (R, R, N) is MATLAB's [N x R x R]
        assert float(np.asarray(h5["lambda"]).ravel()[0]) == 0.2
    with np.load(tmp_path / "c.npz") as z:
        c = z["C"]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_contradicting_options_are_usage_errors(tmp_path: Path) -> None:
    f = _ts_file(tmp_path / "ts.mat")
    res = runner.invoke(app, ["connectivity", str(f), "-o", str(tmp_path / "o.mat"), "--lambda", "0.1",
                              "--search-csv", str(tmp_path / "s.csv")])
    assert res.exit_code == 2
    assert "--search-csv" in res.stderr and not (tmp_path / "o.mat").exists()


def test_target_completion_offers_atlases_and_released_targets() -> None:
    from kraken_cli.cli._complete import complete_regtarget
    from kraken_cli.engine.connectivity.files import REGTARGET_ATLASES

    assert complete_regtarget("sh") == ["shen268"]
    assert "kraken_regtarget_FCpcorr_fs86_hpf_HCPYA710train.mat" in complete_regtarget("kraken_regtarget")
    assert set(REGTARGET_ATLASES) <= set(complete_regtarget(""))
