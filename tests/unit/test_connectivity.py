"""Unit tests of kraken_cli.engine.connectivity: the batched math against direct per-subject formulas."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.connectivity import ConnectivityConfig, run_connectivity
from kraken_cli.engine.connectivity import regularize as reg
from kraken_cli.engine.errors import InputDataError, SpecError


def _series(n: int, t: int, r: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(r, r))
    return [rng.normal(size=(t, r)) @ mix + 0.1 * rng.normal(size=(t, r)) for _ in range(n)]


def _direct_error(x: np.ndarray, lam: float, target: np.ndarray) -> float:
    """The original's per-subject search error, written out plainly."""
    e, v = np.linalg.eigh(x)
    s = np.maximum(e, 0) + lam
    keep = s > 1e-6
    p = v[:, keep] @ np.diag(1 / s[keep]) @ v[:, keep].T
    iu = np.triu_indices(x.shape[0], 1)
    return float(np.linalg.norm(p[iu] - target[iu]))


def test_normalize_to_correlation_matches_corrcoef() -> None:
    ts = _series(1, 50, 6)[0]
    c = reg.normalize_to_correlation(np.cov(ts, rowvar=False)[None])[0]
    np.testing.assert_allclose(c, np.corrcoef(ts, rowvar=False), atol=1e-12)


def test_zero_variance_diagonal_counts_as_one() -> None:
    x = np.diag([4.0, 0.0, 1.0])[None]
    c = reg.normalize_to_correlation(x)[0]
    assert c[1, 1] == 0 and c[0, 0] == 1 and np.isfinite(c).all()


@pytest.mark.parametrize("lam", [0.0, 0.05, 0.7])
def test_search_errors_equal_the_direct_formula(lam: float) -> None:
    # rank-deficient covariances (T < R) exercise the dropped eigenvalues at lambda 0
    x = reg.normalize_to_correlation(np.stack([np.cov(s, rowvar=False) for s in _series(4, 7, 10)]))
    rng = np.random.default_rng(1)
    target = rng.normal(size=(10, 10))  # not symmetric: only its upper triangle may count
    e, v = reg.eigh(x)
    got = reg.search_errors(reg.search_terms(e, v, target), target, np.array([lam]))[:, 0]
    want = [_direct_error(m, lam, target) for m in x]
    np.testing.assert_allclose(got, want, rtol=1e-9)


def test_grid_search_refines_around_each_loops_best_and_returns_the_global_argmin() -> None:
    calls: list[np.ndarray] = []

    def f(grid: np.ndarray) -> np.ndarray:
        calls.append(grid)
        return (grid - 0.42) ** 2

    r = reg.grid_search(f, 0.0, 1.0, 5, 2)
    np.testing.assert_allclose(calls[0], np.linspace(0, 1, 5))
    np.testing.assert_allclose(calls[1], np.linspace(0.25, 0.75, 5))  # neighbours of 0.5
    assert r.best == pytest.approx(0.375)
    lam, err = r.table()
    assert np.all(np.diff(lam) >= 0) and lam.size == 10


def test_grid_search_clamps_at_the_range_edge() -> None:
    r = reg.grid_search(lambda g: -g, 0.0, 30.0, 10, 2)
    assert r.lambdas[10] == pytest.approx(30 * 8 / 9) and r.best == 30.0


def test_apply_lambda_uses_mean_eigenvalue_and_pinv_at_zero() -> None:
    x = np.stack([np.cov(s, rowvar=False) for s in _series(2, 40, 5)])
    p = reg.apply_lambda(x, 0.3, lambda i: None)
    for i in range(2):
        np.testing.assert_allclose(p[i], np.linalg.inv(x[i] + 0.3 * np.trace(x[i]) / 5 * np.eye(5)), rtol=1e-10)
    singular = np.ones((1, 3, 3))
    np.testing.assert_allclose(reg.apply_lambda(singular, 0.0, lambda i: None)[0], np.linalg.pinv(singular[0]))


def test_partial_correlation_of_a_precision_matrix() -> None:
    p = np.array([[[2.0, -1.0], [-1.0, 2.0]]])
    np.testing.assert_allclose(reg.precision_to_partial_correlation(p)[0], [[0, 0.5], [0.5, 0]])


def test_geometric_mean_of_commuting_matrices() -> None:
    a, b = np.diag([1.0, 4.0]), np.diag([4.0, 1.0])
    m = reg.sym_expm(reg.sym_logm(np.stack([a, b])).mean(axis=0))
    np.testing.assert_allclose(m, np.diag([2.0, 2.0]), atol=1e-12)


# ------------------------------------------------------------------------------------ pipeline


def _write_ts(path: Path, series: list[np.ndarray], ids: list[str]) -> Path:
    cell = np.empty((1, len(series)), dtype=object)
    for i, s in enumerate(series):
        cell[0, i] = s
    sub = np.empty((1, len(ids)), dtype=object)
    for i, s in enumerate(ids):
        sub[0, i] = s
    scipy.io.savemat(path, {"ts": cell, "subjects": sub})
    return path


def _load_c(path: Path) -> np.ndarray:
    m = scipy.io.loadmat(path)
    return np.stack([np.asarray(c, float) for c in m["C"].ravel()])


def test_timeseries_covariance_and_scaled_covariance_give_the_same_pcorr(tmp_path: Path) -> None:
    series = _series(5, 30, 8)
    ids = [f"s{i}" for i in range(5)]
    ts = _write_ts(tmp_path / "ts.mat", series, ids)
    cov = np.stack([np.cov(s, rowvar=False) * (i + 1) * 7.5 for i, s in enumerate(series)])
    np.save(tmp_path / "cov.npy", cov)
    a = run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), output=str(tmp_path / "a.mat")))
    b = run_connectivity(ConnectivityConfig.build(inputs=(str(tmp_path / "cov.npy"),), output=str(tmp_path / "b.mat")))
    assert a.lam == b.lam and a.lam_raw == pytest.approx(b.lam_raw)
    np.testing.assert_allclose(_load_c(tmp_path / "a.mat"), _load_c(tmp_path / "b.mat"), atol=1e-10)
    assert a.subjects == ids and b.subjects == ["1", "2", "3", "4", "5"]


def test_chunking_and_cache_do_not_change_results(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kraken_cli.engine.connectivity import passes

    ts = _write_ts(tmp_path / "ts.mat", _series(7, 12, 9), [f"s{i}" for i in range(7)])
    a = run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), output=str(tmp_path / "a.mat")))
    monkeypatch.setattr(passes, "EIGEN_CACHE_BYTES", 0)
    b = run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), output=str(tmp_path / "b.mat"), chunk_size=2))
    assert a.lam_raw == b.lam_raw
    np.testing.assert_allclose(np.array(a.search), np.array(b.search), rtol=1e-12)
    np.testing.assert_allclose(_load_c(tmp_path / "a.mat"), _load_c(tmp_path / "b.mat"), rtol=1e-12)


def test_corr_and_cov_measures(tmp_path: Path) -> None:
    series = _series(3, 25, 6)
    ts = _write_ts(tmp_path / "ts.mat", series, ["a", "b", "c"])
    run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), measure="corr", output=str(tmp_path / "r.npz")))
    with np.load(tmp_path / "r.npz") as z:
        np.testing.assert_allclose(z["C"][1], np.corrcoef(series[1], rowvar=False), atol=1e-12)
        assert str(z["conntype"]) == "correlation" and list(z["subjects"]) == ["a", "b", "c"]
    run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), measure="cov", output=str(tmp_path / "c.mat")))
    np.testing.assert_allclose(_load_c(tmp_path / "c.mat")[2], np.cov(series[2], rowvar=False), rtol=1e-12)


def test_output_split_differs_from_search_split(tmp_path: Path) -> None:
    from kraken_cli.engine.io import SubjectSplit, write_split_file

    ids = [f"s{i}" for i in range(6)]
    ts = _write_ts(tmp_path / "ts.mat", _series(6, 20, 5), ids)
    write_split_file(tmp_path / "split.mat", SubjectSplit(ids, np.array([0, 1, 2, 3]), np.array([4]), np.array([5])))
    r = run_connectivity(ConnectivityConfig.build(
        inputs=(str(ts),), split_file=str(tmp_path / "split.mat"), split="train", output_split="test",
        output=str(tmp_path / "o.mat")))
    assert r.n_search_subjects == 4 and r.subjects == ["s5"]
    assert [str(s[0]) for s in scipy.io.loadmat(tmp_path / "o.mat")["subjects"].ravel()] == ["s5"]


@pytest.mark.parametrize("kwargs, match", [
    ({"measure": "corr", "target": "t.mat"}, "--target"),
    ({"lambda_value": 0.1, "lambda_range": (0.0, 5.0)}, "--lambda-range"),
    ({"lambda_range": (2.0, 1.0)}, "lambda-range"),
    ({"output_split": "test"}, "--split-file"),
    ({"output": None}, "-o FILE"),
    ({"output": "x.npz", "fmt": "mat"}, "extension"),
])
def test_conflicting_options_are_usage_errors(kwargs: dict[str, object], match: str) -> None:
    base: dict[str, object] = {"inputs": ("in.mat",), "output": "out.mat"}
    base.update(kwargs)
    with pytest.raises(SpecError, match=match) as info:
        ConnectivityConfig.build(**base)
    assert info.value.exit_code == 2


def test_target_of_another_size_is_refused(tmp_path: Path) -> None:
    ts = _write_ts(tmp_path / "ts.mat", _series(3, 20, 5), ["a", "b", "c"])
    scipy.io.savemat(tmp_path / "t.mat", {"C": np.eye(6)})
    with pytest.raises(InputDataError, match="6 x 6.*5 regions"):
        run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), target=str(tmp_path / "t.mat"),
                                                  output=str(tmp_path / "o.mat")))
    assert not (tmp_path / "o.mat").exists()


def test_released_target_name_resolves_through_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kraken_cli.engine import registry
    from kraken_cli.engine.connectivity.files import resolve_target
    from kraken_cli.engine.errors import FetchError

    name = "kraken_regtarget_FCpcorr_shen268_hpf_HCPYA710train.mat"
    with pytest.raises(FetchError) as info:
        resolve_target("shen268", str(tmp_path))
    assert info.value.hint == f"kraken fetch {name}"
    (tmp_path / name).write_bytes(b"x")
    monkeypatch.setattr(registry.cache, "verify_file", lambda entry, path: True)
    assert resolve_target("FCpcorr_shen268_hpf", str(tmp_path)) == str(tmp_path / name)
    assert resolve_target("shen268", str(tmp_path)) == str(tmp_path / name)


def test_streamed_outputs_equal_the_v5_file_and_abort_cleanly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import h5py

    from kraken_cli.engine.connectivity import regularize

    ts = _write_ts(tmp_path / "ts.mat", _series(5, 15, 5), [f"s{i}" for i in range(5)])
    run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), output=str(tmp_path / "a.mat")))
    ref = _load_c(tmp_path / "a.mat")
    out = tmp_path / "out"
    for name in ("b.npz", "c.h5"):
        run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), output=str(out / name), chunk_size=2))
    with np.load(out / "b.npz") as z:
        np.testing.assert_array_equal(z["C"], ref)
        assert list(z["subjects"]) == [f"s{i}" for i in range(5)]
        assert float(z["lambda"]) == float(scipy.io.loadmat(tmp_path / "a.mat")["lambda"][0, 0])
        assert str(z["conntype"]) == "partialcorr"
    with h5py.File(out / "c.h5") as h5:
        np.testing.assert_array_equal(np.asarray(h5["C"]).transpose(2, 1, 0), ref)
    calls = [0]
    real = regularize.precision_to_partial_correlation

    def failing(p: np.ndarray) -> np.ndarray:  # the third chunk fails: nothing may be left behind
        calls[0] += 1
        if calls[0] == 3:
            raise InputDataError("boom")
        return real(p)

    monkeypatch.setattr(regularize, "precision_to_partial_correlation", failing)
    for name in ("d.npz", "e.h5"):
        calls[0] = 0
        with pytest.raises(InputDataError):
            run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), lambda_value=0.1, output=str(out / name),
                                                      chunk_size=2))
    assert sorted(p.name for p in out.iterdir()) == ["b.npz", "c.h5"]


def test_v5_size_limit_is_checked_before_compute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kraken_cli.engine.errors import OutputError
    from kraken_cli.engine.io import writers

    ts = _write_ts(tmp_path / "ts.mat", _series(4, 15, 5), [f"s{i}" for i in range(4)])
    monkeypatch.setattr(writers, "MAT5_LIMIT_BYTES", 100)
    with pytest.raises(OutputError, match="2 GB limit"):
        run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), output=str(tmp_path / "a.mat")))
    run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), output=str(tmp_path / "a.npz")))


def test_edge_rows_are_refused_not_read_as_a_time_series(tmp_path: Path) -> None:
    scipy.io.savemat(tmp_path / "edges.mat", {"C": np.ones((4, 10)), "subjects": np.array(["a", "b", "c", "d"])})
    with pytest.raises(InputDataError, match="subjects x edges"):
        run_connectivity(ConnectivityConfig.build(inputs=(str(tmp_path / "edges.mat"),),
                                                  output=str(tmp_path / "o.mat")))
    # the same numbers declared a time series are one (4 time points x 10 regions)
    scipy.io.savemat(tmp_path / "ts.mat", {"C": np.random.default_rng(0).normal(size=(4, 10))})
    r = run_connectivity(ConnectivityConfig.build(inputs=(str(tmp_path / "ts.mat"),), measure="cov",
                                                  input_kind="timeseries", output=str(tmp_path / "o.mat")))
    assert r.n_regions == 10


def test_geometric_mean_target_and_output_mean(tmp_path: Path) -> None:
    import scipy.linalg

    series = _series(3, 40, 5)
    ts = _write_ts(tmp_path / "ts.mat", series, ["a", "b", "c"])
    r = run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), measure="precision", lambda_value=0.0,
                                                  geometric_mean=True, output_mean=str(tmp_path / "m.mat")))
    assert r.lam == 0.0
    prec = [np.linalg.inv(np.corrcoef(s, rowvar=False)) for s in series]
    want = scipy.linalg.expm(np.mean([scipy.linalg.logm(p).real for p in prec], axis=0))
    np.testing.assert_allclose(scipy.io.loadmat(tmp_path / "m.mat")["C"], want, rtol=1e-9)
    g = run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), geometric_mean=True,
                                                  output=str(tmp_path / "g.mat")))
    assert g.target_source is not None and g.target_source.startswith("geometric mean")


def test_geometric_mean_of_singular_inverses_is_an_error(tmp_path: Path) -> None:
    ts = _write_ts(tmp_path / "ts.mat", _series(3, 4, 8), ["a", "b", "c"])  # 4 time points, 8 regions
    with pytest.raises(InputDataError, match="not positive definite"):
        run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), geometric_mean=True,
                                                  output=str(tmp_path / "g.mat")))
    assert not (tmp_path / "g.mat").exists()


def test_v73_cell_and_per_subject_mat_files_give_the_same_result(tmp_path: Path) -> None:
    from kraken_cli.engine.io import Mat73Writer

    series = _series(3, 30, 6)
    ids = ["a", "b", "c"]
    v5 = _write_ts(tmp_path / "ts.mat", series, ids)
    with Mat73Writer(tmp_path / "ts73.mat") as w:
        w.write("ts", list(series))
        w.write("subjects", ids)
    folder = tmp_path / "per"
    folder.mkdir()
    for s, x in zip(ids, series):
        scipy.io.savemat(folder / f"sub-{s}_cov.mat", {"C": np.cov(x, rowvar=False)})
    outs = []
    for k, inp in enumerate((str(v5), str(tmp_path / "ts73.mat"), str(folder / "sub-*_cov.mat"))):
        r = run_connectivity(ConnectivityConfig.build(inputs=(inp,), lambda_value=0.1,
                                                      output=str(tmp_path / f"o{k}.mat")))
        assert r.subjects == ids
        outs.append(_load_c(tmp_path / f"o{k}.mat"))
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-12)
    np.testing.assert_allclose(outs[0], outs[2], rtol=1e-10)


def test_matlab_rrs_and_srr_arrays(tmp_path: Path) -> None:
    covs = np.stack([np.cov(s, rowvar=False) for s in _series(4, 30, 6)])
    scipy.io.savemat(tmp_path / "rrs.mat", {"C": np.moveaxis(covs, 0, -1)})  # MATLAB [R x R x S]
    scipy.io.savemat(tmp_path / "srr.mat", {"FC": covs})
    a = run_connectivity(ConnectivityConfig.build(inputs=(str(tmp_path / "rrs.mat"),), measure="corr",
                                                  output=str(tmp_path / "a.mat")))
    run_connectivity(ConnectivityConfig.build(inputs=(str(tmp_path / "srr.mat"),), measure="corr",
                                              output=str(tmp_path / "b.mat")))
    assert a.subjects == ["1", "2", "3", "4"]
    np.testing.assert_allclose(_load_c(tmp_path / "a.mat"), _load_c(tmp_path / "b.mat"), rtol=1e-12)
    np.testing.assert_allclose(_load_c(tmp_path / "a.mat")[0], reg.normalize_to_correlation(covs[:1])[0], rtol=1e-12)


def test_optimum_on_the_range_edge_is_reported(tmp_path: Path) -> None:
    from ..helpers import LogRecorder

    ts = _write_ts(tmp_path / "ts.mat", _series(3, 30, 5), ["a", "b", "c"])
    with LogRecorder() as rec:
        r = run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), lambda_range=(0.0, 1e-3),
                                                      output=str(tmp_path / "o.mat")))
    assert r.lam_raw == 1e-3
    assert any("edge of --lambda-range" in m for m in rec.messages())


def test_keep_unnormalized_regularizes_the_covariance_with_lambda_times_mean_eigenvalue(tmp_path: Path) -> None:
    series = _series(2, 30, 5)
    ts = _write_ts(tmp_path / "ts.mat", series, ["a", "b"])
    run_connectivity(ConnectivityConfig.build(inputs=(str(ts),), measure="precision", keep_unnormalized=True,
                                              lambda_value=0.25, output=str(tmp_path / "o.mat")))
    cov = np.cov(series[1], rowvar=False)
    want = np.linalg.inv(cov + 0.25 * np.trace(cov) / 5 * np.eye(5))
    np.testing.assert_allclose(_load_c(tmp_path / "o.mat")[1], want, rtol=1e-10)


def test_xcpd_timeseries_tsvs_are_read_by_glob(tmp_path: Path) -> None:
    """XCP-D's ``*_stat-mean_timeseries.tsv`` (a header row of parcel labels, one row per volume) (issue 16)."""
    series = _series(3, 40, 6, seed=3)
    ids = ["01", "02", "03"]
    for sid, ts in zip(ids, series):
        folder = tmp_path / "xcp_d" / f"sub-{sid}" / "func"
        folder.mkdir(parents=True)
        lines = ["\t".join(f"Parcel{k}" for k in range(6))] + ["\t".join(f"{v:.10g}" for v in row) for row in ts]
        (folder / f"sub-{sid}_task-rest_space-MNI152NLin2009cAsym_seg-4S156_stat-mean_timeseries.tsv").write_text(
            "\n".join(lines) + "\n")
    pattern = str(tmp_path / "xcp_d" / "sub-*" / "func" / "*_stat-mean_timeseries.tsv")
    result = run_connectivity(ConnectivityConfig.build(inputs=(pattern,), measure="corr",
                                                       output=str(tmp_path / "fc.mat")))
    assert result.subjects == ids
    c = scipy.io.loadmat(tmp_path / "fc.mat")["C"]
    for k, ts in enumerate(series):
        np.testing.assert_allclose(c[k, 0], np.corrcoef(ts, rowvar=False), atol=1e-7)
