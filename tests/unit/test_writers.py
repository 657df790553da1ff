"""Prediction writers (DESIGN 3.3, UPSTREAM 10): mat v5, mat73 and npz; templates; pre-compute checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kraken_cli.engine.errors import OutputError, SpecError
from kraken_cli.engine.io.writers import FileMeta, OutputFile, check_outputs, expand_template, open_writer

from ..helpers import files_in

R = 5
E = R * (R - 1) // 2
N = 7
SOURCES = ["FCcorr_fs86_hpf", "fusion.noself"]
OUTPUTS = ["SCifod2act_fs86_volnorm", "encoded"]
WIDTHS = {"SCifod2act_fs86_volnorm": E, "encoded": 3}
RNG = np.random.default_rng(11)
DATA = {(s, o): RNG.normal(size=(N, WIDTHS[o])).astype(np.float32) for s in SOURCES for o in OUTPUTS}
META = FileMeta(subjects=[f"00{i}" for i in range(N)], checkpoint="model.pt", recordfile="",
                inputfiles=["a.mat", "b.mat"], fusion_members={"fusion.noself": ["FCcorr_fs86_hpf", "SCx"]})


def _write(fmt: str, path: Path, *, square: bool = False, chunk: int = 3) -> Path:
    spec = OutputFile(path, SOURCES, OUTPUTS)
    w = open_writer(fmt, spec, META, N, WIDTHS, square=square)
    for start in range(0, N, chunk):
        w.write_rows(start, {k: v[start:start + chunk] for k, v in DATA.items()})
    return w.close()


def _square_by_loops(v: np.ndarray) -> np.ndarray:
    m = np.full((R, R), np.nan)
    k = 0
    for i in range(R):
        for j in range(i + 1, R):
            m[i, j] = m[j, i] = v[k]
            k += 1
    return m


def _strings(x: object) -> list[str]:
    return [s.strip() for s in np.atleast_1d(np.asarray(x, dtype=object)).tolist()]


# -- MATLAB v5 --------------------------------------------------------------------------------------------

def test_mat5_layout(tmp_path: Path) -> None:
    import scipy.io

    f = _write("mat", tmp_path / "out.mat")
    assert files_in(tmp_path) == {"out.mat"}
    d = scipy.io.loadmat(f, simplify_cells=True)
    for key in ("checkpoint", "recordfile", "inputfiles", "subjects", "inputtypes", "outputtypes",
                "predicted_alltypes", "fusionmode_inputtypes"):
        assert key in d, key
    assert _strings(d["subjects"]) == META.subjects  # leading zeros kept
    assert _strings(d["inputtypes"]) == SOURCES and _strings(d["outputtypes"]) == OUTPUTS
    assert d["checkpoint"] == "model.pt"
    pa = d["predicted_alltypes"]
    assert set(pa) == set(SOURCES)  # 'fusion.noself' is a field name, as scipy writes it
    for (s, o), v in DATA.items():
        got = pa[s][o]
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, v)
    assert _strings(d["fusionmode_inputtypes"]["fusion.noself"]) == ["FCcorr_fs86_hpf", "SCx"]


def test_mat5_square(tmp_path: Path) -> None:
    import scipy.io

    f = _write("mat", tmp_path / "sq.mat", square=True)
    pa = scipy.io.loadmat(f, simplify_cells=True)["predicted_alltypes"]
    cells = pa["FCcorr_fs86_hpf"]["SCifod2act_fs86_volnorm"]
    assert len(cells) == N
    for i in range(N):
        np.testing.assert_array_equal(cells[i], _square_by_loops(DATA[("FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm")][i]))
    # encoded latents are never squared
    np.testing.assert_array_equal(pa["FCcorr_fs86_hpf"]["encoded"], DATA[("FCcorr_fs86_hpf", "encoded")])


# -- npz ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("square", [False, True])
def test_npz_layout(tmp_path: Path, square: bool) -> None:
    f = _write("npz", tmp_path / "out.npz", square=square, chunk=2)
    assert files_in(tmp_path) == {"out.npz"}  # the memmap folder is gone
    with np.load(f, allow_pickle=False) as z:
        assert z["subjects"].tolist() == META.subjects
        assert z["inputtypes"].tolist() == SOURCES and z["outputtypes"].tolist() == OUTPUTS
        for (s, o), v in DATA.items():
            got = z[f"predicted_alltypes/{s}/{o}"]
            if square and o != "encoded":
                assert got.shape == (N, R, R)
                for i in range(N):
                    np.testing.assert_array_equal(got[i], _square_by_loops(v[i]))
            else:
                np.testing.assert_array_equal(got, v)


# -- MATLAB v7.3 -------------------------------------------------------------------------------------------

def _h5_strings(ds) -> list[str]:  # type: ignore[no-untyped-def]
    """Rows of a MATLAB char matrix: uint16 HDF5 (L, n) = MATLAB [n x L], padded with spaces."""
    assert ds.attrs["MATLAB_class"] == b"char" and ds.dtype == np.uint16
    return [row.astype("<u2").tobytes().decode("utf-16-le").rstrip(" ") for row in np.asarray(ds[()]).T]


def test_mat73_layout(tmp_path: Path) -> None:
    import h5py

    f = _write("mat73", tmp_path / "out.mat")
    assert files_in(tmp_path) == {"out.mat"}
    assert f.read_bytes()[:10] == b"MATLAB 7.3"
    with h5py.File(f, "r") as h5:
        assert h5.userblock_size == 512
        pa = h5["predicted_alltypes"]
        assert pa.attrs["MATLAB_class"] == b"struct"
        assert set(pa) == {"FCcorr_fs86_hpf", "fusion_noself"}  # not a MATLAB identifier -> '_'
        for (s, o), v in DATA.items():
            ds = pa[s.replace(".", "_")][o]
            assert ds.attrs["MATLAB_class"] == b"single"
            assert ds.shape == (v.shape[1], N)  # column-major: MATLAB sees [N x E]
            np.testing.assert_array_equal(ds[()].T, v)
        # text lists are char matrices (as in v5 files), not cells: GNU Octave cannot load cells
        assert _h5_strings(h5["subjects"]) == META.subjects
        assert "#refs#" not in h5
        assert "fusion.noself" in " ".join(_h5_strings(h5["name_map"]["original"]))


def test_mat73_read_back_by_engine_restores_names(tmp_path: Path) -> None:
    from kraken_cli.engine.io._hdf5 import open_tree

    f = _write("mat73", tmp_path / "out.mat")
    h5, root = open_tree(f, where=str(f))
    try:
        pa = root["predicted_alltypes"]
        assert "fusion.noself" in set(pa)
        np.testing.assert_array_equal(pa["fusion.noself"]["encoded"].read(), DATA[("fusion.noself", "encoded")])
        assert [str(s) for s in root["subjects"]] == META.subjects
    finally:
        h5.close()


def test_mat73_square(tmp_path: Path) -> None:
    import h5py

    f = _write("mat73", tmp_path / "sq.mat", square=True)
    with h5py.File(f, "r") as h5:
        stored = h5["predicted_alltypes"]["FCcorr_fs86_hpf"]["SCifod2act_fs86_volnorm"][()]
    assert stored.shape == (R, R, N)  # HDF5 (R, R, S) = MATLAB [S x R x R], like v5's R x R cells
    sq = stored.transpose()
    v = DATA[("FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm")]
    for i in range(N):
        np.testing.assert_array_equal(sq[i], _square_by_loops(v[i]))


@pytest.mark.parametrize("fmt", ["mat", "mat73", "npz"])
def test_abort_leaves_nothing(tmp_path: Path, fmt: str) -> None:
    spec = OutputFile(tmp_path / f"x.{fmt}", SOURCES, OUTPUTS)
    w = open_writer(fmt, spec, META, N, WIDTHS)
    w.write_rows(0, {k: v[:2] for k, v in DATA.items()})
    w.abort()
    assert files_in(tmp_path) == set()


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="csv"):
        open_writer("csv", OutputFile(tmp_path / "x", SOURCES, OUTPUTS), META, N, WIDTHS)


# -- templates ------------------------------------------------------------------------------------------

def test_template_both_placeholders() -> None:
    files = expand_template("out/{input}_{output}.mat", ["a", "b"], ["x", "y", "z"])
    assert [str(f.path) for f in files] == [f"out/{s}_{o}.mat" for s in "ab" for o in "xyz"]
    assert all(len(f.pairs) == 1 for f in files)


def test_template_one_placeholder_and_aliases() -> None:
    files = expand_template("p.{I}.mat", ["a", "fusion.noself"], ["x", "y"])
    assert [(str(f.path), f.sources, f.outputs) for f in files] == [
        ("p.a.mat", ["a"], ["x", "y"]), ("p.fusion.noself.mat", ["fusion.noself"], ["x", "y"])]
    files = expand_template("{target}.mat", ["a", "b"], ["x", "y"])
    assert [(str(f.path), f.sources, f.outputs) for f in files] == [
        ("x.mat", ["a", "b"], ["x"]), ("y.mat", ["a", "b"], ["y"])]
    files = expand_template("all.mat", ["a", "b"], ["x"])
    assert len(files) == 1 and files[0].pairs == [("a", "x"), ("b", "x")]


def test_template_errors() -> None:
    with pytest.raises(SpecError, match="unknown placeholder \\{flavor\\}"):
        expand_template("{flavor}.mat", ["a"], ["x"])
    with pytest.raises(SpecError, match="same file name"):
        expand_template("{input}.mat", ["a", "a"], ["x"])


# -- checks before compute ---------------------------------------------------------------------------------

def test_check_outputs_refuses_to_overwrite_an_input(tmp_path: Path) -> None:
    inp = tmp_path / "FCcorr_fs86_hpf.mat"
    inp.write_bytes(b"x")
    files = expand_template(str(tmp_path / "{input}.mat"), ["FCcorr_fs86_hpf"], ["encoded"])
    with pytest.raises(OutputError, match="overwrite an input") as ei:
        check_outputs(files, "mat", 3, {"encoded": 3}, [str(inp)])
    assert ei.value.hint
    assert inp.read_bytes() == b"x"


def test_check_outputs_unwritable_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    files = expand_template(str(blocker / "out.mat"), ["a"], ["encoded"])
    with pytest.raises(OutputError, match="output folder"):
        check_outputs(files, "mat", 3, {"encoded": 3}, [])


def test_check_outputs_creates_missing_folder(tmp_path: Path) -> None:
    files = expand_template(str(tmp_path / "new" / "deep" / "out.mat"), ["a"], ["encoded"])
    check_outputs(files, "mat", 3, {"encoded": 3}, [])
    assert (tmp_path / "new" / "deep").is_dir()


def test_check_outputs_mat5_size_limit(tmp_path: Path) -> None:
    files = expand_template(str(tmp_path / "big.mat"), ["a", "b"], ["SC"])
    widths = {"SC": 96141}
    check_outputs(files, "mat73", 6000, widths, [])
    with pytest.raises(OutputError, match="2 GB") as ei:
        check_outputs(files, "mat", 6000, widths, [])  # 2 x 6000 x 96141 x 4 bytes = 4.3 GB
    assert "mat73" in (ei.value.hint or "")
