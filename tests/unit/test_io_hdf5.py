"""MATLAB v7.3 / HDF5: the lazy reader and the incremental writer (round trips included)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from kraken_cli.engine.connectome import square_to_tri
from kraken_cli.engine.errors import InputDataError, OutputError
from kraken_cli.engine.io import Mat73Writer, load_cohort, read_input, safe_field_name
from kraken_cli.engine.io._hdf5 import H5Array
from kraken_cli.engine.io._mat73_write import matlab_header
from kraken_cli.engine.io._source import PlannedSource

FC = "FCcorr_fs86_hpf"


def sym(n: int, r: int, seed: int = 0) -> np.ndarray:
    a = np.random.default_rng(seed).normal(size=(n, r, r))
    return (a + np.swapaxes(a, 1, 2)) / 2


def _cls(obj: h5py.HLObject, name: str) -> None:
    obj.attrs["MATLAB_class"] = np.bytes_(name)


def handmade_v73(path: Path, data: np.ndarray, ids: list[str], *, char_matrix: bool = False) -> Path:
    """A file laid out the way MATLAB's save -v7.3 lays it out (independent of our writer)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        ds = f.create_dataset("data", data=data.transpose())  # MATLAB column-major
        _cls(ds, "double")
        if char_matrix:
            width = max(map(len, ids))
            chars = np.array([[ord(c) for c in s.ljust(width)] for s in ids], dtype=np.uint16)  # [n x width]
            c = f.create_dataset("subjects", data=chars.T)
            _cls(c, "char")
        else:
            refs = f.create_group("#refs#")
            arr = np.empty((1, len(ids)), dtype=h5py.ref_dtype)  # MATLAB [n x 1]
            for i, s in enumerate(ids):
                d = refs.create_dataset(f"r{i}", data=np.array([[ord(c)] for c in s], dtype=np.uint16))
                _cls(d, "char")
                arr[0, i] = d.ref
            c = f.create_dataset("subjects", data=arr, dtype=h5py.ref_dtype)
            _cls(c, "cell")
    with open(path, "r+b") as fh:
        fh.write(matlab_header().ljust(512, b"\x00"))
    return path


def test_handmade_matlab_file(tmp_path: Path) -> None:
    m = sym(5, 86)
    f = handmade_v73(tmp_path / "x.mat", m, ["0012", "b", "c", "d", "e"])
    (src,) = read_input(f"{FC}={f}")
    assert isinstance(src, PlannedSource) and isinstance(src.array, H5Array)
    assert src.subjects == ["0012", "b", "c", "d", "e"]
    np.testing.assert_allclose(src.read(0, 5), square_to_tri(m))
    g = handmade_v73(tmp_path / "y.mat", np.moveaxis(m, 0, 2), ["a1", "bb", "c", "d", "e"], char_matrix=True)
    (src,) = read_input(f"{FC}={g}")
    assert src.subjects == ["a1", "bb", "c", "d", "e"]
    np.testing.assert_allclose(src.read(1, 3), square_to_tri(m[1:3]))


def test_lazy_reads_only_requested_subjects(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    m = sym(6, 10)
    f = tmp_path / "x.mat"
    with Mat73Writer(f) as w:
        w.write("data", m)
    (src,) = read_input(f"x@SC={f}")
    calls: list[tuple[int, int, int]] = []
    orig = H5Array.take

    def spy(self: H5Array, axis: int, start: int, stop: int) -> np.ndarray:
        calls.append((axis, start, stop))
        return orig(self, axis, start, stop)

    monkeypatch.setattr(H5Array, "take", spy)
    np.testing.assert_allclose(src.read(2, 4), square_to_tri(m[2:4]))
    assert calls == [(0, 2, 4)]


def test_cells_of_matrices(tmp_path: Path) -> None:
    m = sym(3, 6)
    f = tmp_path / "c.mat"
    with Mat73Writer(f) as w:
        w.write("C", [x for x in m])
        w.write("subject", [1.0, 2.0, 3.0])
    (src,) = read_input(f"x@FC={f}")
    assert src.subjects == ["1", "2", "3"]
    np.testing.assert_allclose(src.read(0, 3), square_to_tri(m))


def test_writer_header_and_classes(tmp_path: Path) -> None:
    f = tmp_path / "o.mat"
    with Mat73Writer(f) as w:
        w.write("d", np.arange(6.0).reshape(2, 3))
        w.write("s", np.ones((2, 3), np.float32))
        w.write("t", "hello")
        w.write("e", "")
        w.write("c", ["a", "bc"])
        w.write("st", {"x": 1.5, "flag": np.array([True, False])})
        w.write("i", np.arange(3, dtype=np.int64))
        w.write("empty", np.zeros((0, 3)))
    head = f.read_bytes()[:128]
    assert head.startswith(b"MATLAB 7.3 MAT-file, Platform: ")
    assert b"Created on: " in head and b"HDF5 schema 1.00 ." in head
    assert head[124:128] == b"\x00\x02IM"
    with h5py.File(f, "r") as h:
        assert h.userblock_size == 512
        classes = {k: h[k].attrs["MATLAB_class"].decode() for k in ("d", "s", "t", "c", "st", "i", "empty")}
        assert classes == {"d": "double", "s": "single", "t": "char", "c": "cell", "st": "struct",
                           "i": "int64", "empty": "double"}
        assert h["d"].shape == (3, 2)  # transposed: MATLAB sees [2 x 3]
        assert h["t"].dtype == np.uint16 and h["t"].shape == (5, 1)
        assert h["c"].shape == (1, 2)  # MATLAB [2 x 1] cell
        assert h["st/flag"].attrs["MATLAB_class"].decode() == "logical"
        fields = [b"".join(x).decode() for x in h["st"].attrs["MATLAB_fields"]]
        assert fields == ["x", "flag"]
        assert h["empty"].attrs["MATLAB_empty"] == 1


def test_writer_round_trip_prediction_with_name_map(tmp_path: Path) -> None:
    e = square_to_tri(sym(7, 86)).astype(np.float32)
    z = np.random.default_rng(2).normal(size=(7, 5)).astype(np.float32)
    f = tmp_path / "pred.mat"
    key = "predicted_alltypes/fusion.noself/" + FC
    with Mat73Writer(f) as w:
        w.write("subjects", [f"s{i}" for i in range(7)])
        w.write("inputtypes", ["fusion.noself"])
        w.create_rows(key, 7, 3655, np.float32)
        for start in range(0, 7, 3):
            w.write_rows(key, start, e[start:start + 3])
    (src,) = read_input(str(f))
    assert src.flavor.name == FC and src.subjects == [f"s{i}" for i in range(7)]
    np.testing.assert_array_equal(src.read(0, 7), e)
    with h5py.File(f, "r") as h:
        assert "fusion_noself" in h["predicted_alltypes"]
        assert "name_map" in h
    g = tmp_path / "enc.mat"
    with Mat73Writer(g) as w:
        w.create_rows("predicted_alltypes/fusion.noself/encoded", 7, 5, np.float32)
        w.write_rows("predicted_alltypes/fusion.noself/encoded", 0, z)
    (lat,) = read_input(str(g))
    assert lat.flavor.name == "fusion.noself"
    np.testing.assert_array_equal(lat.read(0, 7), z)


def test_name_map_restores_struct_names(tmp_path: Path) -> None:
    a, b = sym(3, 86, 1), sym(3, 86, 2)
    f = tmp_path / "multi.mat"
    with Mat73Writer(f) as w:
        w.write("FCcorr_fs86_hpf", {"data": a})
        w.write("SCifod2act_fs86_volnorm", {"data": b})
        w.write("subjects", ["x", "y", "z"])
    cohort = load_cohort([str(f)])
    assert cohort.flavors == [FC, "SCifod2act_fs86_volnorm"] and cohort.subjects == ["x", "y", "z"]
    np.testing.assert_allclose(cohort.read("SCifod2act_fs86_volnorm"), square_to_tri(b))


def test_safe_field_names_and_collisions(tmp_path: Path) -> None:
    assert safe_field_name("fusion.noself") == "fusion_noself"
    assert safe_field_name("_x") == "x_x" and len(safe_field_name("a" * 80)) == 63
    f = tmp_path / "c.mat"
    with Mat73Writer(f) as w:
        w.write("s/a.b", 1.0)
        w.write("s/a_b", 2.0)
    from kraken_cli.engine.io._hdf5 import open_tree

    h, tree = open_tree(f, where=str(f))
    try:
        assert sorted(tree["s"]) == ["a.b", "a_b"]
        assert float(tree["s"]["a.b"].read().item()) == 1.0 and float(tree["s"]["a_b"].read().item()) == 2.0
    finally:
        h.close()


def test_writer_is_atomic(tmp_path: Path) -> None:
    f = tmp_path / "o.mat"
    with pytest.raises(OutputError, match="rows"):
        with Mat73Writer(f) as w:
            w.create_rows("x", 4, 2, np.float64)
            w.write_rows("x", 0, np.ones((2, 2)))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(RuntimeError, match="boom"):
        with Mat73Writer(f) as w:
            w.write("a", 1.0)
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(OutputError, match="twice"):
        with Mat73Writer(f) as w:
            w.write("a", 1.0)
            w.write("a", 2.0)
    with pytest.raises(OutputError, match="reserved"):
        with Mat73Writer(f) as w:
            w.write("name_map", 1.0)
    with Mat73Writer(f) as w:
        w.create_rows("x", 4, 2, np.float64)
        with pytest.raises(ValueError):
            w.write_rows("x", 3, np.ones((2, 2)))
        w.write_rows("x", 0, np.ones((4, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["o.mat"]


def test_crafted_declared_shape_refused(tmp_path: Path) -> None:
    f = tmp_path / "huge.h5"
    with h5py.File(f, "w") as h:
        h.create_dataset("data", shape=(10**6, 10**6), dtype="f8", chunks=(64, 64))
    with pytest.raises(InputDataError, match="declares shape"):
        read_input(f"x@SC={f}")


def test_plain_hdf5_numpy_orientation(tmp_path: Path) -> None:
    m = sym(4, 6)
    f = tmp_path / "plain.h5"
    with h5py.File(f, "w") as h:
        h["data"] = square_to_tri(m)
        h["subjects"] = np.array([b"a", b"b", b"c", b"d"])
    (src,) = read_input(f"x@FC={f}")
    assert src.subjects == ["a", "b", "c", "d"]
    np.testing.assert_allclose(src.read(0, 4), square_to_tri(m))


def test_fake_v73_header_is_corrupt(tmp_path: Path) -> None:
    f = tmp_path / "x.mat"
    f.write_bytes(matlab_header().ljust(512, b"\x00") + b"garbage" * 50)
    with pytest.raises(InputDataError, match="HDF5") as exc:
        read_input(f"x@SC={f}")
    assert exc.value.hint
