"""BIDS-like folders and zips, and globs of per-subject files."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.connectome import square_to_tri
from kraken_cli.engine.errors import FlavorError, InputDataError, SpecError
from kraken_cli.engine.io import load_cohort, read_input
from kraken_cli.engine.io._bids import flavor_from_meas

R = 86


def sym(n: int, r: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(n, r, r))
    return (a + np.swapaxes(a, 1, 2)) / 2


def tsv_bytes(m: np.ndarray) -> bytes:
    buf = io.StringIO()
    np.savetxt(buf, m, delimiter="\t", fmt="%.6f")
    return buf.getvalue().encode()


def make_bids(labels: list[str], meas: dict[str, np.ndarray], *, participants: str | None) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if participants is not None:
        files["participants.tsv"] = participants.encode()
    for m_name, mats in meas.items():
        for lab, mat in zip(labels, mats):
            files[f"sub-{lab}/sub-{lab}_atlas-fs86_meas-{m_name}_relmat.dense.tsv"] = tsv_bytes(mat)
    return files


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def write_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(f"bids/{name}", data)
    return path


@pytest.mark.parametrize(
    ("meas", "flavor"),
    [("FCcorrHPF", "FCcorr_fs86_hpf"), ("FCcorrHPFGSR", "FCcorr_fs86_hpfgsr"), ("FCpcorrHPF", "FCpcorr_fs86_hpf"),
     ("FCcorrNFGSR", "FCcorr_fs86_nofiltgsr"), ("SCifod2actVN", "SCifod2act_fs86_volnorm"),
     ("SCsdstreamCount", "SCsdstream_fs86_count"), ("SCifod2actSiftCount", "SCifod2act_fs86_sift2"),
     ("SCifod2actSiftVN", "SCifod2act_fs86_sift2volnorm")],
)
def test_meas_names(meas: str, flavor: str) -> None:
    got = flavor_from_meas(meas, "fs86")
    assert got is not None and got[0] == flavor


def test_meas_unknown() -> None:
    assert flavor_from_meas("FCcorr", "fs86") is None
    assert flavor_from_meas("Weird", "fs86") is None


@pytest.mark.parametrize("as_zip", [False, True])
def test_bids_with_participants(tmp_path: Path, as_zip: bool) -> None:
    fc, sc = sym(3, R, 1), sym(3, R, 2)
    parts = "participant_id\tsubject\ttrain_val_test\nsub-B2\t0042\ttrain\nsub-A1\t100206\ttrain\nsub-C3\tc3\ttrain\n"
    files = make_bids(["B2", "A1", "C3"], {"FCcorrHPF": fc, "SCifod2actSiftVN": sc}, participants=parts)
    root = write_zip(tmp_path / "b.zip", files) if as_zip else write_dir(tmp_path / "bids", files)
    srcs = read_input(str(root))
    assert [s.flavor.name for s in srcs] == ["FCcorr_fs86_hpf", "SCifod2act_fs86_sift2volnorm"]
    assert srcs[0].subjects == ["0042", "100206", "c3"]
    np.testing.assert_allclose(srcs[0].read(0, 3), square_to_tri(fc), atol=1e-6)
    np.testing.assert_allclose(srcs[1].read(0, 3), square_to_tri(sc), atol=1e-6)
    (one,) = read_input(f"SCifod2act_fs86_sift2volnorm={root}")
    assert one.n_subjects == 3
    with pytest.raises(FlavorError, match="no files for flavor"):
        read_input(f"FCpcorr_fs86_hpf={root}")


def test_bids_without_participants_sorted_labels(tmp_path: Path) -> None:
    fc = sym(2, R)
    root = write_dir(tmp_path / "b", make_bids(["02", "01"], {"FCcorrHPF": fc}, participants=None))
    (src,) = read_input(str(root))
    assert src.subjects == ["01", "02"]
    np.testing.assert_allclose(src.read(0, 1), square_to_tri(fc[1:2]), atol=1e-6)


def test_bids_missing_flavor_is_an_error(tmp_path: Path) -> None:
    files = make_bids(["a", "b"], {"FCcorrHPF": sym(2, R), "SCifod2actVN": sym(2, R)}, participants=None)
    del files["sub-b/sub-b_atlas-fs86_meas-SCifod2actVN_relmat.dense.tsv"]
    root = write_dir(tmp_path / "b", files)
    with pytest.raises(InputDataError, match="missing") as exc:
        read_input(str(root))
    assert "sub-b" in str(exc.value) and exc.value.hint


def test_bids_mat_members_and_unknown_meas(tmp_path: Path) -> None:
    m = sym(2, R)
    files = {}
    for lab, mat in zip(["x", "y"], m):
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"data": mat.astype(np.float32)})
        files[f"sub-{lab}_atlas-fs86_meas-SCsdstreamVN_relmat.dense.mat"] = buf.getvalue()
    root = write_zip(tmp_path / "m.zip", files)
    (src,) = read_input(str(root))
    assert src.flavor.name == "SCsdstream_fs86_volnorm" and src.subjects == ["x", "y"]
    np.testing.assert_allclose(src.read(0, 2), square_to_tri(m.astype(np.float32)), rtol=1e-6)
    bad = write_dir(tmp_path / "bad", {"sub-a_atlas-fs86_meas-Nonsense_relmat.dense.tsv": b"1\n"})
    with pytest.raises(InputDataError, match="unknown measure"):
        read_input(str(bad))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputDataError, match="no sub-"):
        read_input(str(empty))


def test_bids_corrupt_zip(tmp_path: Path) -> None:
    f = tmp_path / "x.zip"
    f.write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(InputDataError, match="zip"):
        read_input(str(f))


def test_glob_sub_entity(tmp_path: Path) -> None:
    m = sym(3, R)
    for lab, mat in zip(["003", "001", "002"], m):
        (tmp_path / f"sub-{lab}_fc.tsv").write_bytes(tsv_bytes(mat))
    (src,) = read_input(f"FCcorr_fs86_hpf={tmp_path}/sub-*_fc.tsv")
    assert src.subjects == ["001", "002", "003"]
    np.testing.assert_allclose(src.read(0, 3), square_to_tri(m[[1, 2, 0]]), atol=1e-6)


def test_glob_star_ids_and_formats(tmp_path: Path) -> None:
    m = sym(2, R)
    np.save(tmp_path / "subjA_FCcorr_fs86_hpf.npy", m[0])
    scipy.io.savemat(tmp_path / "subjB_FCcorr_fs86_hpf.mat", {"C": m[1]})
    srcs = read_input(f"{tmp_path}/subj*_FCcorr_fs86_hpf.*")
    (src,) = srcs
    assert src.flavor.name == "FCcorr_fs86_hpf"  # from the pattern's name
    assert src.subjects == ["A_npy", "B_mat"]
    np.testing.assert_allclose(src.read(0, 2), square_to_tri(m))
    cohort = load_cohort([f"FCcorr_fs86_hpf={tmp_path}/subj*_FCcorr_fs86_hpf.npy"])
    assert cohort.subjects == ["A"]


def test_glob_errors(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="no files match"):
        read_input(f"x@FC={tmp_path}/nothing-*.tsv")
    (tmp_path / "sub-1_x.tsv").write_bytes(tsv_bytes(sym(1, 4)[0]))
    (tmp_path / "sub-2_x.tsv").write_bytes(tsv_bytes(sym(1, 5)[0]))
    with pytest.raises(InputDataError, match="differs"):
        read_input(f"x@FC={tmp_path}/sub-*_x.tsv")
    with pytest.raises(SpecError, match="FLAVOR"):
        read_input(f"{tmp_path}/sub-*_x.tsv")


def test_glob_edge_vectors(tmp_path: Path) -> None:
    e = square_to_tri(sym(2, 5))
    for lab, row in zip(["a", "b"], e):
        (tmp_path / f"sub-{lab}_x.csv").write_text(",".join(repr(float(v)) for v in row) + "\n")
    (src,) = read_input(f"x@FC={tmp_path}/sub-*_x.csv")
    assert src.subjects == ["a", "b"]
    np.testing.assert_allclose(src.read(0, 2), e)


def test_bids_participant_id_only(tmp_path: Path) -> None:
    fc = sym(2, R)
    parts = "participant_id\tage\nsub-02\t30\nsub-01\t31\n"
    root = write_dir(tmp_path / "b", make_bids(["01", "02"], {"FCcorrHPF": fc}, participants=parts))
    (src,) = read_input(str(root))
    assert src.subjects == ["02", "01"]
    np.testing.assert_allclose(src.read(0, 1), square_to_tri(fc[1:2]), atol=1e-6)
