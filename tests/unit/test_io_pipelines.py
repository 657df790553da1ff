"""Pipeline outputs: XCP-D relmats, labelled tables, QSIRecon .mat, MRtrix CSVs, nilearn vectors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.errors import InputDataError, SpecError
from kraken_cli.engine.io import load_cohort, read_input
from kraken_cli.engine.io._edge_order import nilearn_columns

R = 86
FC = "FCcorr_fs86_hpf"
SC = "SCifod2act_fs86_volnorm"


def corr(seed: int, r: int = R, t: int = 200) -> np.ndarray:
    """A realistic correlation matrix (positive definite, structured)."""
    rng = np.random.default_rng(seed)
    base = rng.standard_normal((t, 4)) @ rng.standard_normal((4, r))
    return np.corrcoef(base + 0.8 * rng.standard_normal((t, r)), rowvar=False)


def counts(seed: int, r: int = R) -> np.ndarray:
    rng = np.random.default_rng(seed)
    m = rng.integers(0, 50, (r, r)).astype(float)
    m = np.triu(m, 1)
    return m + m.T


def triu(m: np.ndarray) -> np.ndarray:
    return m[np.triu_indices(m.shape[-1], 1)]


def labels(r: int = R) -> list[str]:
    return [f"ctx-lh-region{i:02d}" for i in range(r)]


def write_relmat(path: Path, m: np.ndarray, *, corner: str = "Node", sep: str = "\t") -> Path:
    """XCP-D's relmat layout: a header row of node names, a label column, n/a for missing values."""
    names = labels(m.shape[0])
    lines = [sep.join([corner, *names])]
    for name, row in zip(names, m):
        lines.append(sep.join([name, *("n/a" if not np.isfinite(v) else repr(float(v)) for v in row)]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


# --------------------------------------------------------------------------- labelled square tables


@pytest.mark.parametrize("name,corner,sep", [
    ("sub-01_task-rest_space-MNI_seg-fs86_stat-pearsoncorrelation_relmat.tsv", "Node", "\t"),
    ("matrix.csv", "", ","),  # pandas DataFrame.to_csv with an index
    ("labelled.tsv", "label", "\t"),
])
def test_labelled_square_matrix(tmp_path: Path, name: str, corner: str, sep: str) -> None:
    m = corr(1)
    f = write_relmat(tmp_path / name, m, corner=corner, sep=sep)
    (src,) = read_input(f"{FC}={f}")
    np.testing.assert_allclose(src.read(0, 1)[0], triu(m))


def test_labelled_header_without_corner(tmp_path: Path) -> None:
    m = corr(2, r=6)
    names = labels(6)
    lines = ["\t".join(names)] + ["\t".join([n, *map(str, row)]) for n, row in zip(names, m)]
    f = tmp_path / "m.tsv"
    f.write_text("\n".join(lines))
    (src,) = read_input(f"FCcorr_atlas6_hpf@FC={f}")
    np.testing.assert_allclose(src.read(0, 1)[0], triu(m))


def test_wide_table_still_rows(tmp_path: Path) -> None:
    """subject_id, e1..eE tables with a header are not taken for labelled matrices."""
    rows = np.random.default_rng(0).uniform(-0.2, 0.2, (3, 3))
    f = tmp_path / "wide.csv"
    f.write_text("subject,e1,e2,e3\n" + "\n".join(f"s{i},{','.join(map(str, r))}" for i, r in enumerate(rows)))
    (src,) = read_input(f"FCcorr_atlas3_hpf@FC={f}")
    assert src.subjects == ["s0", "s1", "s2"]
    np.testing.assert_allclose(src.read(0, 3), rows)


# --------------------------------------------------------------------------- XCP-D folders


def xcpd_folder(root: Path, subjects: list[str], *, scheme: str = "seg", atlases: tuple[str, ...] = ("fs86",),
                sessions: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    out = {}
    for i, sub in enumerate(subjects):
        for atlas in atlases:
            for ses in sessions or ("",):
                m = corr(10 + i + 100 * len(ses))
                ses_ent = f"_ses-{ses}" if ses else ""
                folder = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "") / "func"
                if scheme == "seg":
                    name = f"sub-{sub}{ses_ent}_task-rest_space-MNI152NLin2009cAsym_seg-{atlas}_stat-pearsoncorrelation_relmat.tsv"
                elif scheme == "atlas":
                    name = f"sub-{sub}{ses_ent}_task-rest_space-MNI152NLin2009cAsym_atlas-{atlas}_stat-pearsoncorrelation_relmat.tsv"
                else:
                    name = f"sub-{sub}{ses_ent}_task-rest_space-MNI152NLin2009cAsym_atlas-{atlas}_measure-pearsoncorrelation_conmat.tsv"
                write_relmat(folder / name, m)
                if atlas == "fs86":
                    out[sub + (f"_ses-{ses}" if ses else "")] = m
    (root / "dataset_description.json").write_text('{"Name": "XCP-D", "DatasetType": "derivative"}')
    return out


@pytest.mark.parametrize("scheme", ["seg", "atlas", "conmat"])
def test_xcpd_folder_naming_schemes(tmp_path: Path, scheme: str) -> None:
    truth = xcpd_folder(tmp_path / "xcp_d", ["01", "02", "03"], scheme=scheme, atlases=("fs86", "Glasser"))
    (src,) = read_input(f"{FC}={tmp_path / 'xcp_d'}")
    assert src.subjects == ["01", "02", "03"]
    np.testing.assert_allclose(src.read(0, 3), np.stack([triu(truth[s]) for s in src.subjects]))


def test_xcpd_folder_needs_flavor_and_never_maps_an_atlas(tmp_path: Path) -> None:
    xcpd_folder(tmp_path / "x", ["01", "02"], atlases=("4S156Parcels",))
    with pytest.raises(SpecError, match="never guesses"):
        read_input(str(tmp_path / "x"))
    with pytest.raises(InputDataError, match="no relmat files of atlas fs86") as err:
        read_input(f"{FC}={tmp_path / 'x'}")
    assert "seg-4S156Parcels" in (err.value.hint or "")


def test_xcpd_selector_and_sessions(tmp_path: Path) -> None:
    truth = xcpd_folder(tmp_path / "x", ["01", "02"], sessions=("1", "2"))
    (src,) = read_input(f"{FC}={tmp_path / 'x'}")
    assert src.subjects == ["01_ses-1", "01_ses-2", "02_ses-1", "02_ses-2"]
    (one,) = read_input(f"{FC}={tmp_path / 'x'}:ses-2")
    assert one.subjects == ["01_ses-2", "02_ses-2"]
    np.testing.assert_allclose(one.read(0, 1)[0], triu(truth["01_ses-2"]))


def test_xcpd_duplicate_runs_are_an_error(tmp_path: Path) -> None:
    root = tmp_path / "x"
    for run in ("1", "2"):
        write_relmat(root / "sub-01" / "func" / f"sub-01_task-rest_run-{run}_seg-fs86_stat-pearsoncorrelation_relmat.tsv",
                     corr(int(run)))
    with pytest.raises(InputDataError, match="run-1, run-2") as err:
        read_input(f"{FC}={root}")
    assert ":run-1" in (err.value.hint or "")
    (src,) = read_input(f"{FC}={root}:run-2")
    np.testing.assert_allclose(src.read(0, 1)[0], triu(corr(2)))


def test_missing_parcels_error_names_them(tmp_path: Path) -> None:
    root = tmp_path / "x"
    truth = xcpd_folder(root, ["01", "02", "03"])
    m = truth["02"].copy()
    m[5, :] = m[:, 5] = np.nan
    write_relmat(next((root / "sub-02" / "func").glob("*.tsv")), m)
    with pytest.raises(InputDataError, match=r"subject 02: parcels ctx-lh-region05 \(#6\) have no values") as err:
        read_input(f"{FC}={root}")
    assert "--impute-missing mean" in (err.value.hint or "")


def test_missing_parcels_imputed_with_mean(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "x"
    truth = xcpd_folder(root, ["01", "02", "03"])
    m = truth["02"].copy()
    m[5, :] = m[:, 5] = np.nan
    write_relmat(next((root / "sub-02" / "func").glob("*.tsv")), m)
    cohort = load_cohort([f"{FC}={root}"], impute_missing="mean")
    got = np.asarray(cohort.read(FC))
    full = np.zeros((R, R))
    full[np.triu_indices(R, 1)] = got[1]
    full = full + full.T
    want = (truth["01"][5] + truth["03"][5]) / 2
    np.testing.assert_allclose(np.delete(full[5], 5), np.delete(want, 5))
    np.testing.assert_allclose(got[0], triu(truth["01"]))
    assert "imputed" in caplog.text and "02" in caplog.text


def test_infinite_values_are_not_imputed(tmp_path: Path) -> None:
    m = corr(4)
    m[1, 2] = m[2, 1] = 12345.0
    f = write_relmat(tmp_path / "m.tsv", m)
    f.write_text(f.read_text().replace("12345.0", "inf"))
    with pytest.raises(InputDataError, match="1 edges are infinite"):
        read_input(f"{FC}={f}", impute_missing="mean")


def test_missing_everywhere_cannot_be_imputed(tmp_path: Path) -> None:
    m = corr(3)
    m[2, :] = m[:, 2] = np.nan
    f = write_relmat(tmp_path / "m.tsv", m)
    with pytest.raises(InputDataError, match="no value in any subject"):
        read_input(f"{FC}={f}", impute_missing="mean")


# --------------------------------------------------------------------------- QSIRecon / QSIPrep .mat


def qsirecon_mat(path: Path, seed: int, *, old: bool = False) -> dict[str, np.ndarray]:
    a, b = counts(seed), counts(seed + 1)
    if old:
        data = {"fs86_sift_radius2_count_connectivity": a, "fs86_region_ids": np.arange(1, R + 1),
                "fs86_region_labels": np.array(labels(), dtype=object),
                "schaefer100_sift_radius2_count_connectivity": counts(seed + 2, 100)}
    else:
        data = {"atlas_fs86_sift_invnodevol_radius2_count_connectivity": a,
                "atlas_fs86_radius2_meanlength_connectivity": b,
                "atlas_fs86_region_ids": np.arange(1, R + 1),
                "atlas_fs86_region_labels": np.array(labels(), dtype=object)}
    path.parent.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(path, data)
    return data


def test_qsirecon_mat_key(tmp_path: Path) -> None:
    f = tmp_path / "sub-01_space-T1w_connectivity.mat"
    data = qsirecon_mat(f, 1)
    key = "atlas_fs86_sift_invnodevol_radius2_count_connectivity"
    (src,) = read_input(f"{SC}={f}:{key}")
    np.testing.assert_allclose(src.read(0, 1)[0], triu(data[key]))
    with pytest.raises(SpecError, match="2 connectivity matrices") as err:
        read_input(f"{SC}={f}")
    assert f"{f}:atlas_fs86" in (err.value.hint or "")
    with pytest.raises(SpecError, match="never guesses"):
        read_input(f"{f}:{key}")
    with pytest.raises(InputDataError, match="no variable 'atlas_fs86_nope_connectivity'"):
        read_input(f"{SC}={f}:atlas_fs86_nope_connectivity")


def test_qsiprep_old_keys(tmp_path: Path) -> None:
    f = tmp_path / "sub-01_connectivity.mat"
    data = qsirecon_mat(f, 4, old=True)
    (src,) = read_input(f"{SC}={f}:fs86_sift_radius2_count_connectivity")
    np.testing.assert_allclose(src.read(0, 1)[0], triu(data["fs86_sift_radius2_count_connectivity"]))


def test_qsirecon_folder(tmp_path: Path) -> None:
    root = tmp_path / "qsirecon"
    truth = [qsirecon_mat(root / f"sub-{s}" / "dwi" / f"sub-{s}_space-T1w_connectivity.mat", i)
             for i, s in enumerate(["01", "02"])]
    key = "atlas_fs86_radius2_meanlength_connectivity"
    (src,) = read_input(f"{SC}={root}:{key}")
    assert src.subjects == ["01", "02"]
    np.testing.assert_allclose(src.read(0, 2), np.stack([triu(t[key]) for t in truth]))
    with pytest.raises(SpecError, match="choose one of the connectivity matrices"):
        read_input(f"{SC}={root}")


# --------------------------------------------------------------------------- MRtrix tck2connectome


def test_mrtrix_upper_triangular_csv(tmp_path: Path) -> None:
    m = counts(5)
    f = tmp_path / "connectome.csv"
    np.savetxt(f, np.triu(m), delimiter=",", fmt="%g")
    (src,) = read_input(f"{SC}={f}")
    np.testing.assert_allclose(src.read(0, 1)[0], triu(m))


def test_mrtrix_keep_unassigned_node_dropped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    m = counts(6, R + 1)
    f = tmp_path / "connectome.csv"
    np.savetxt(f, np.triu(m), delimiter=" ", fmt="%g")
    (src,) = read_input(f"{SC}={f}")
    np.testing.assert_allclose(src.read(0, 1)[0], triu(m[1:, 1:]))
    assert "node 0" in caplog.text


# --------------------------------------------------------------------------- nilearn edge order


def nilearn_vec(mats: np.ndarray, *, diagonal: bool) -> np.ndarray:
    """nilearn's documented layout: lower triangle, row-major, diagonal / sqrt(2) when kept."""
    r = mats.shape[-1]
    mask = np.tril(np.ones((r, r), dtype=bool), 0 if diagonal else -1)
    scale = np.ones((r, r))
    if diagonal:
        np.fill_diagonal(scale, math.sqrt(2))
    return (mats / scale)[:, mask]


def test_nilearn_columns_small() -> None:
    m = np.arange(16, dtype=float).reshape(4, 4)
    m = m + m.T
    vec = nilearn_vec(m[None], diagonal=False)[0]
    np.testing.assert_array_equal(vec[nilearn_columns(4, diagonal=False)], triu(m))


@pytest.mark.parametrize("diagonal", [False, True])
def test_nilearn_vectors_read_with_edge_order(tmp_path: Path, diagonal: bool) -> None:
    mats = np.stack([corr(i) for i in range(4)])
    f = tmp_path / "vec.npy"
    np.save(f, nilearn_vec(mats, diagonal=diagonal))
    (src,) = read_input(f"{FC}={f}", edge_order="nilearn")
    np.testing.assert_allclose(src.read(0, 4), np.stack([triu(m) for m in mats]))


@pytest.mark.parametrize("diagonal", [False, True])
def test_nilearn_vectors_without_edge_order_are_refused(tmp_path: Path, diagonal: bool) -> None:
    """The scramble guard: nilearn vectors read in kraken's order do not pass silently."""
    mats = np.stack([corr(i) for i in range(4)])
    f = tmp_path / "vec.npy"
    np.save(f, nilearn_vec(mats, diagonal=diagonal))
    with pytest.raises(InputDataError, match="nilearn") as err:
        read_input(f"{FC}={f}")
    assert "--edge-order nilearn" in (err.value.hint or "")


def test_guard_passes_kraken_order(tmp_path: Path) -> None:
    mats = np.stack([corr(i) for i in range(4)])
    f = tmp_path / "vec.npy"
    np.save(f, np.stack([triu(m) for m in mats]))
    (src,) = read_input(f"{FC}={f}")
    np.testing.assert_allclose(src.read(0, 4), np.stack([triu(m) for m in mats]))


def test_nilearn_unknown_atlas_diagonal_detected(tmp_path: Path) -> None:
    mats = np.stack([corr(i, r=12) for i in range(3)])
    f = tmp_path / "vec.npy"
    np.save(f, nilearn_vec(mats, diagonal=True))
    (src,) = read_input(f"FCcorr_atlas12_hpf@FC={f}", edge_order="nilearn")
    assert src.n_features == 66
    np.testing.assert_allclose(src.read(0, 3), np.stack([triu(m) for m in mats]))


class TestRealNilearn:
    """Vectors made by nilearn itself (a test-only dependency)."""

    @pytest.fixture
    def series(self) -> list[np.ndarray]:
        rng = np.random.default_rng(0)
        mix = rng.standard_normal((5, R))
        return [rng.standard_normal((150, 5)) @ mix + rng.standard_normal((150, R)) for _ in range(3)]

    @pytest.mark.parametrize("discard", [False, True])
    def test_connectivity_measure(self, tmp_path: Path, series: list[np.ndarray], discard: bool) -> None:
        nilearn_conn = pytest.importorskip("nilearn.connectome", reason="nilearn is not installed")
        square = nilearn_conn.ConnectivityMeasure(kind="correlation").fit_transform(series)
        vec = nilearn_conn.ConnectivityMeasure(kind="correlation", vectorize=True,
                                               discard_diagonal=discard).fit_transform(series)
        np.save(tmp_path / "square.npy", square)
        np.save(tmp_path / "vec.npy", vec)
        (sq,) = read_input(f"{FC}={tmp_path / 'square.npy'}")
        (vc,) = read_input(f"{FC}={tmp_path / 'vec.npy'}", edge_order="nilearn")
        np.testing.assert_allclose(vc.read(0, 3), sq.read(0, 3), atol=1e-12)
        with pytest.raises(InputDataError, match="nilearn"):
            read_input(f"{FC}={tmp_path / 'vec.npy'}")
