"""Readers for MATLAB v5, NumPy and CSV/TSV inputs, written by the tests themselves."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.connectome import ArraySource, square_to_tri
from kraken_cli.engine.errors import FlavorError, InputDataError, SpecError
from kraken_cli.engine.flavors import FlavorSpec
from kraken_cli.engine.io import _layout, load_cohort, read_input
from kraken_cli.engine.io._source import PlannedSource

FC = "FCcorr_fs86_hpf"


def sym(n: int, r: int, seed: int = 0) -> np.ndarray:
    """n random symmetric r x r matrices, shape (n, r, r)."""
    a = np.random.default_rng(seed).normal(size=(n, r, r))
    return (a + np.swapaxes(a, 1, 2)) / 2


def save(path: Path, **data: object) -> Path:
    scipy.io.savemat(path, data, long_field_names=True)
    return path


def cell(items: list) -> np.ndarray:
    c = np.empty((1, len(items)), dtype=object)
    for i, x in enumerate(items):
        c[0, i] = x
    return c


# --------------------------------------------------------------------------- MATLAB v5 layouts


def test_mat_subjects_first(tmp_path: Path) -> None:
    m = sym(4, 6)
    f = save(tmp_path / "x.mat", data=m, subjects=cell(["a", "b", "c", "d"]))
    (src,) = read_input(f"myflav@SC={f}")
    assert isinstance(src, ArraySource)
    assert src.flavor.name == "myflav" and src.flavor.group == "SC"
    assert src.subjects == ["a", "b", "c", "d"]
    np.testing.assert_allclose(src.read(0, 4), square_to_tri(m))
    np.testing.assert_allclose(src.read(1, 3), square_to_tri(m)[1:3])


def test_mat_matlab_orientation_rrs(tmp_path: Path) -> None:
    m = sym(3, 5)
    f = save(tmp_path / "x.mat", data=np.moveaxis(m, 0, 2))  # MATLAB [R x R x S], shape (5, 5, 3)
    (src,) = read_input(f"a@FC={f}")
    assert src.n_subjects == 3
    np.testing.assert_allclose(src.read(0, 3), square_to_tri(m))


def test_mat_known_atlas_rrs(tmp_path: Path) -> None:
    m = sym(12, 86)
    f = save(tmp_path / "x.mat", data=np.moveaxis(m, 0, 2))  # (86, 86, 12)
    (src,) = read_input(f"{FC}={f}")
    assert (src.n_subjects, src.n_features) == (12, 3655)
    np.testing.assert_allclose(src.read(0, 12), square_to_tri(m))


def test_cube_decided_by_symmetry(tmp_path: Path) -> None:
    m = sym(5, 5)  # symmetric as [S x R x R] only
    f = save(tmp_path / "a.mat", data=m)
    (src,) = read_input(f"x@SC={f}")
    np.testing.assert_allclose(src.read(0, 5), square_to_tri(m))
    g = save(tmp_path / "b.mat", data=np.moveaxis(m, 0, 2))
    (src,) = read_input(f"x@SC={g}")
    np.testing.assert_allclose(src.read(0, 5), square_to_tri(m))


def test_cube_ambiguous_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = np.arange(4.0)
    t = a[:, None, None] + a[None, :, None] + a[None, None, :]  # symmetric both ways: same either way
    f = save(tmp_path / "a.mat", data=t)
    np.testing.assert_allclose(read_input(f"x@SC={f}")[0].read(0, 4), square_to_tri(t))
    monkeypatch.setattr(_layout, "EAGER_CHECK_BYTES", 0)  # too big to check in full: ambiguous
    with pytest.raises(InputDataError, match="ambiguous") as exc:
        read_input(f"x@SC={f}")
    assert exc.value.hint and "first axis" in exc.value.hint
    g = save(tmp_path / "r.mat", data=np.random.default_rng(0).normal(size=(4, 4, 4)))
    with pytest.raises(InputDataError, match="non-symmetric"):
        read_input(f"x@SC={g}")


def test_cell_array_and_single_matrix(tmp_path: Path) -> None:
    m = sym(3, 4)
    f = save(tmp_path / "c.mat", data=cell(list(m)), subject=np.array([[100206.0, 7.0, 8.0]]))
    (src,) = read_input(f"x@FC={f}")
    assert src.subjects == ["100206", "7", "8"]
    np.testing.assert_allclose(src.read(0, 3), square_to_tri(m))
    g = save(tmp_path / "one.mat", C=m[0])
    (one,) = read_input(f"x@FC={g}")
    assert one.n_subjects == 1
    np.testing.assert_allclose(one.read(0, 1), square_to_tri(m[:1]))


def test_rows_trimask_variants(tmp_path: Path) -> None:
    m = sym(3, 5)
    e = square_to_tri(m)
    iu = np.triu_indices(5, 1)
    mask = np.zeros((5, 5), bool)
    mask[iu] = True
    f = save(tmp_path / "m.mat", data=e, trimask=mask)
    np.testing.assert_allclose(read_input(f"x@FC={f}")[0].read(0, 3), e)
    # column-major (MATLAB) order given as 0-based [2 x E] lower-triangle indices
    il = np.tril_indices(5, -1)
    order = np.lexsort((il[0], il[1]))
    rows, cols = il[0][order], il[1][order]
    data = m[:, rows, cols]
    g = save(tmp_path / "p.mat", data=data, trimask=np.vstack([rows, cols]).astype(float))
    np.testing.assert_allclose(read_input(f"x@FC={g}")[0].read(0, 3), e)
    h = save(tmp_path / "t.mat", data=data, trimask=cell([rows, cols]))
    np.testing.assert_allclose(read_input(f"x@FC={h}")[0].read(0, 3), e)
    bad = save(tmp_path / "bad.mat", data=e[:, :-1], trimask=np.vstack([iu[0][:-1], iu[1][:-1]]))
    with pytest.raises(InputDataError, match="trimask"):
        read_input(f"x@FC={bad}")


def test_plain_rows_and_transposed(tmp_path: Path) -> None:
    e = square_to_tri(sym(4, 86))
    f = save(tmp_path / "r.mat", data=e)
    (src,) = read_input(f"{FC}={f}")
    assert (src.n_subjects, src.n_features, src.subjects) == (4, 3655, None)
    g = save(tmp_path / "t.mat", data=e.T, subjects=cell(["a", "b", "c", "d"]))
    (src,) = read_input(f"{FC}={g}")
    np.testing.assert_allclose(src.read(0, 4), e)


def test_encoded_latent(tmp_path: Path) -> None:
    z = np.random.default_rng(1).normal(size=(5, 7))
    f = save(tmp_path / "enc.mat", encoded=z, subjects=cell(list("abcde")))
    (src,) = read_input(f"encoded={f}")
    assert src.flavor.is_latent and src.n_features == 7
    np.testing.assert_allclose(src.read(0, 5), z)
    (bare,) = read_input(str(f))
    assert bare.flavor.name == "encoded"
    (fus,) = read_input(f"fusionSC={f}")
    assert fus.flavor.name == "fusionSC"


def test_prediction_file(tmp_path: Path) -> None:
    e = square_to_tri(sym(3, 86)).astype(np.float32)
    pred = {"SCifod2act_fs86_volnorm": {FC: e}}
    f = save(tmp_path / "pred.mat", predicted_alltypes=pred, subjects=["s1", "s2", "s3"])
    (src,) = read_input(str(f))
    assert src.flavor.name == FC and src.subjects == ["s1", "s2", "s3"]
    np.testing.assert_allclose(src.read(0, 3), e)
    multi = {"A": {FC: e, "FCcorr_fs86_hpfgsr": e}, "B": {FC: e}}
    g = save(tmp_path / "multi.mat", predicted_alltypes=multi)
    with pytest.raises(InputDataError, match="several inputs"):
        read_input(str(g))
    z = np.ones((3, 4), np.float32)
    h = save(tmp_path / "enc.mat", predicted_alltypes={"fusion.noself": {"encoded": z}})
    (lat,) = read_input(str(h))
    assert lat.flavor.name == "fusion.noself" and lat.n_features == 4


def test_ismissing_drops_subjects(tmp_path: Path) -> None:
    m = sym(4, 5)
    f = save(tmp_path / "x.mat", data=m, subjects=cell(["a", "b", "c", "d"]), ismissing=np.array([[0, 1, 0, 0]]))
    (src,) = read_input(f"x@SC={f}")
    assert src.subjects == ["a", "c", "d"]
    np.testing.assert_allclose(src.read(0, 3), square_to_tri(m[[0, 2, 3]]))


def test_ids_keep_leading_zeros(tmp_path: Path) -> None:
    f = save(tmp_path / "x.mat", data=sym(2, 4), subjects=cell(["0012", " 100206.0 "]))
    assert read_input(f"x@SC={f}")[0].subjects == ["0012", "100206"]


def test_field_choice_and_no_field(tmp_path: Path) -> None:
    m = sym(2, 4)
    f = save(tmp_path / "x.mat", SC=m, other=m[:1] * 2)
    np.testing.assert_allclose(read_input(f"x@SC={f}")[0].read(0, 2), square_to_tri(m))
    np.testing.assert_allclose(read_input(f"x@SC={f}", field="other")[0].read(0, 1), square_to_tri(m[:1] * 2))
    g = save(tmp_path / "none.mat", foo=m)
    with pytest.raises(InputDataError, match="no usable data field") as exc:
        read_input(f"x@SC={g}")
    assert "foo" in str(exc.value) and exc.value.hint
    with pytest.raises(InputDataError, match="no usable"):
        read_input(f"x@SC={f}", field="missing")


def test_multi_flavor_struct_file(tmp_path: Path) -> None:
    a, b = sym(3, 86, 1), sym(3, 86, 2)
    f = save(tmp_path / "multi.mat", SCifod2act_fs86_volnorm={"data": cell(list(a))},
             FCcorr_fs86_hpf={"data": cell(list(b))}, subjects=cell(["x", "y", "z"]))
    srcs = read_input(str(f))
    assert [s.flavor.name for s in srcs] == ["SCifod2act_fs86_volnorm", FC]
    assert srcs[1].subjects == ["x", "y", "z"]
    (one,) = read_input(f"{FC}={f}")
    np.testing.assert_allclose(one.read(0, 3), square_to_tri(b))
    with pytest.raises(FlavorError, match="no struct for flavor"):
        read_input(f"FCcorr_fs86_hpfgsr={f}")


def test_bare_file_flavor_from_name(tmp_path: Path) -> None:
    f = save(tmp_path / "mydata_fs86_FCcov_hpf.mat", data=sym(2, 86))
    assert read_input(str(f))[0].flavor.name == FC
    g = save(tmp_path / "connectomes.mat", data=sym(2, 86))
    with pytest.raises(SpecError, match="FLAVOR"):
        read_input(str(g))


def test_spec_object_and_equals_in_path(tmp_path: Path) -> None:
    d = tmp_path / "a=b"
    d.mkdir()
    f = save(d / "x.mat", data=sym(2, 4))
    assert read_input(FlavorSpec.parse(f"x@SC={f}"))[0].n_subjects == 2
    assert read_input(f"x@SC={f}")[0].file == str(f)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (np.ones((3, 4, 5)), "neither"),
        (np.random.default_rng(0).normal(size=(2, 4, 4)) + np.eye(4) * 0, "not symmetric"),
        (np.ones((2, 3, 4, 4)), "4-D"),
    ],
)
def test_bad_shapes(tmp_path: Path, data: np.ndarray, match: str) -> None:
    f = save(tmp_path / "x.mat", data=data)
    with pytest.raises(InputDataError, match=match) as exc:
        read_input(f"x@SC={f}")
    assert str(f) in str(exc.value) and exc.value.hint


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_refused(tmp_path: Path, bad: float) -> None:
    m = sym(2, 4)
    m[1, 0, 2] = m[1, 2, 0] = bad
    f = save(tmp_path / "x.mat", data=m)
    with pytest.raises(InputDataError, match="NaN or Inf"):
        read_input(f"x@SC={f}")


def test_nan_diagonal_is_fine(tmp_path: Path) -> None:
    m = sym(2, 4)
    m[:, np.arange(4), np.arange(4)] = np.nan
    f = save(tmp_path / "x.mat", data=m)
    np.testing.assert_allclose(read_input(f"x@SC={f}")[0].read(0, 2), square_to_tri(m))


@pytest.mark.parametrize("suffix", [".mat", ".npy", ".npz", ".csv", ".tsv", ".h5"])
def test_empty_file(tmp_path: Path, suffix: str) -> None:
    f = tmp_path / f"x{suffix}"
    f.write_bytes(b"")
    with pytest.raises(InputDataError, match="empty") as exc:
        read_input(f"x@SC={f}")
    assert exc.value.hint


@pytest.mark.parametrize("suffix", [".mat", ".npy", ".npz", ".h5"])
def test_corrupt_file(tmp_path: Path, suffix: str) -> None:
    f = tmp_path / f"x{suffix}"
    f.write_bytes(b"this is not what the extension says" * 10)
    with pytest.raises(InputDataError) as exc:
        read_input(f"x@SC={f}")
    assert str(f) in str(exc.value) and exc.value.hint


def test_truncated_mat(tmp_path: Path) -> None:
    f = save(tmp_path / "x.mat", data=sym(3, 20))
    f.write_bytes(f.read_bytes()[:600])
    with pytest.raises(InputDataError, match="not a readable MATLAB file"):
        read_input(f"x@SC={f}")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="not found"):
        read_input(f"x@SC={tmp_path / 'nope.mat'}")


def test_cohort_subject_mismatch_and_duplicates(tmp_path: Path) -> None:
    a = save(tmp_path / "a.mat", data=sym(3, 86), subjects=cell(["1", "2", "3"]))
    b = save(tmp_path / "b.mat", data=sym(3, 86), subjects=cell(["1", "2", "4"]))
    with pytest.raises(InputDataError, match="subjects differ"):
        load_cohort([f"{FC}={a}", f"SCifod2act_fs86_volnorm={b}"])
    c = save(tmp_path / "c.mat", data=sym(3, 86), subjects=cell(["3", "1", "2"]))
    cohort = load_cohort([f"{FC}={a}", f"SCifod2act_fs86_volnorm={c}"])
    assert cohort.subjects == ["1", "2", "3"]
    np.testing.assert_allclose(cohort.read("SCifod2act_fs86_volnorm", 0, 1),
                               read_input(f"SCifod2act_fs86_volnorm={c}")[0].read(1, 2))
    d = save(tmp_path / "d.mat", data=sym(3, 86), subjects=cell(["1", "1", "2"]))
    with pytest.raises(InputDataError, match="duplicate"):
        load_cohort([f"{FC}={d}"])
    e = save(tmp_path / "e.mat", data=sym(3, 80))
    with pytest.raises(InputDataError, match="expected 3655 edges"):
        load_cohort([f"{FC}={e}"])


def test_cohort_read_in_threads_is_the_cohort_read_in_turn(tmp_path: Path) -> None:
    flavors = ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "SCifod2act_fs86_volnorm"]
    specs = [f"{f}={save(tmp_path / f'{f}.mat', data=sym(4, 86, seed=k), subjects=cell(['a', 'b', 'c', 'd']))}"
             for k, f in enumerate(flavors)]
    one, two = load_cohort(specs), load_cohort(specs, workers=2)
    assert two.flavors == one.flavors == flavors and two.subjects == one.subjects
    for f in flavors:
        np.testing.assert_array_equal(two.read(f, 0, 4), one.read(f, 0, 4))
    # the error is the first failing input's, in the order given, whichever thread finishes first
    bad = [f"FCpcorr_fs86_hpf={tmp_path / 'missing.mat'}", f"SCsdstream_fs86_volnorm={save(tmp_path / 'x.mat', data=sym(2, 80))}"]
    with pytest.raises(InputDataError, match="not found"):
        load_cohort([specs[0], *bad], workers=2)


# --------------------------------------------------------------------------- NumPy


def test_npy_layouts_lazy(tmp_path: Path) -> None:
    m = sym(5, 6)
    e = square_to_tri(m)
    np.save(tmp_path / "rows.npy", e)
    (src,) = read_input(f"x@SC={tmp_path / 'rows.npy'}")
    assert isinstance(src, PlannedSource) and isinstance(src.array.array, np.memmap)
    np.testing.assert_allclose(src.read(2, 4), e[2:4])
    np.save(tmp_path / "sq.npy", m.astype(np.float32))
    (sq,) = read_input(f"x@SC={tmp_path / 'sq.npy'}")
    assert sq.read(0, 5).dtype == np.float32
    np.testing.assert_allclose(sq.read(0, 5), square_to_tri(m), rtol=1e-6)
    np.save(tmp_path / "one.npy", m[0])
    assert read_input(f"x@SC={tmp_path / 'one.npy'}")[0].n_subjects == 1
    np.save(tmp_path / "rrs.npy", np.moveaxis(m, 0, 2))
    np.testing.assert_allclose(read_input(f"x@SC={tmp_path / 'rrs.npy'}")[0].read(0, 5), e)


def test_npy_pickle_refused(tmp_path: Path) -> None:
    f = tmp_path / "evil.npy"
    np.save(f, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    with pytest.raises(InputDataError, match="pickle"):
        read_input(f"x@SC={f}")
    g = tmp_path / "raw.npy"  # a bare pickle named .npy
    g.write_bytes(pickle.dumps({"x": 1}))
    with pytest.raises(InputDataError):
        read_input(f"x@SC={g}")


def test_npy_absurd_shape_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    f = tmp_path / "huge.npy"
    f.write_bytes(buf.getvalue() + b"\x00" * 64)
    with pytest.raises(InputDataError, match="declares shape"):
        read_input(f"x@SC={f}")


def test_npz(tmp_path: Path) -> None:
    m = sym(3, 5)
    np.savez(tmp_path / "a.npz", data=m, subjects=np.array(["s1", "s2", "s3"]))
    (src,) = read_input(f"x@SC={tmp_path / 'a.npz'}")
    assert src.subjects == ["s1", "s2", "s3"]
    np.testing.assert_allclose(src.read(0, 3), square_to_tri(m))
    np.savez_compressed(tmp_path / "b.npz", whatever=square_to_tri(m))
    np.testing.assert_allclose(read_input(f"x@SC={tmp_path / 'b.npz'}")[0].read(0, 3), square_to_tri(m))
    np.savez(tmp_path / "evil.npz", data=np.array([None, {}], dtype=object))
    with pytest.raises(InputDataError, match="pickle"):
        read_input(f"x@SC={tmp_path / 'evil.npz'}")


# --------------------------------------------------------------------------- text


def test_csv_square_block(tmp_path: Path) -> None:
    m = sym(1, 5)[0]
    f = tmp_path / "FCcorr_fs86_hpf_sub1.csv"
    np.savetxt(f, m, delimiter=",")
    (src,) = read_input(f"x@FC={f}")
    assert src.n_subjects == 1 and src.subjects is None
    np.testing.assert_allclose(src.read(0, 1), square_to_tri(m[None]))
    g = tmp_path / "m.txt"
    np.savetxt(g, m)  # whitespace
    np.testing.assert_allclose(read_input(f"x@FC={g}")[0].read(0, 1), square_to_tri(m[None]))


@pytest.mark.parametrize(("suffix", "sep"), [(".csv", ","), (".tsv", "\t"), (".tsv", " ")])
@pytest.mark.parametrize("header", [True, False])
def test_text_rows(tmp_path: Path, suffix: str, sep: str, header: bool) -> None:
    e = square_to_tri(sym(4, 5))
    ids = ["0012", "100206", "abc", "x-1"]
    lines = [sep.join(["subject"] + [f"e{i}" for i in range(e.shape[1])])] if header else []
    lines += [sep.join([s] + [repr(float(v)) for v in row]) for s, row in zip(ids, e)]
    f = tmp_path / f"rows{suffix}"
    f.write_text("# comment\n" + "\n".join(lines) + "\n")
    (src,) = read_input(f"x@FC={f}")
    assert src.subjects == ids
    np.testing.assert_allclose(src.read(0, 4), e)


def test_text_errors(tmp_path: Path) -> None:
    f = tmp_path / "ragged.csv"
    f.write_text("a,1,2,3\nb,1,2\n")
    with pytest.raises(InputDataError, match="cannot read the table"):
        read_input(f"x@FC={f}")
    g = tmp_path / "hdr.csv"
    g.write_text("subject,e1,e2,e3\n")
    with pytest.raises(InputDataError, match="only a header"):
        read_input(f"x@FC={g}")
    h = tmp_path / "nan.csv"
    h.write_text("a,1,nan,3\nb,1,2,3\n")
    with pytest.raises(InputDataError, match="NaN"):
        read_input(f"x@FC={h}")
    k = tmp_path / "asym.csv"
    k.write_text("0,1,2\n5,0,3\n2,3,0\n")
    with pytest.raises(InputDataError, match="not symmetric"):
        read_input(f"x@FC={k}")


def test_npz_run_output_and_latent_npy(tmp_path: Path) -> None:
    e = square_to_tri(sym(3, 86)).astype(np.float32)
    np.savez(tmp_path / "pred.npz", **{f"predicted_alltypes/SCifod2act_fs86_volnorm/{FC}": e},
             subjects=np.array(["a", "b", "c"]))
    (src,) = read_input(str(tmp_path / "pred.npz"))
    assert src.flavor.name == FC and src.subjects == ["a", "b", "c"]
    np.testing.assert_array_equal(src.read(0, 3), e)
    z = np.random.default_rng(0).normal(size=(6, 3))
    np.save(tmp_path / "z.npy", z)
    (lat,) = read_input(f"encoded={tmp_path / 'z.npy'}")
    np.testing.assert_array_equal(lat.read(0, 6), z)
    np.save(tmp_path / "z3.npy", np.zeros((2, 3, 3)))
    with pytest.raises(InputDataError, match="latent"):
        read_input(f"encoded={tmp_path / 'z3.npy'}")
