"""The one-pass inference I/O of issue 18: v5 inflated once, triangles gathered in bulk, v5 written from views."""

from __future__ import annotations

import io
import zlib
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.connectome import check_square, square_to_tri
from kraken_cli.engine.errors import InputDataError
from kraken_cli.engine.io._limits import inflate_v5
from kraken_cli.engine.io._mat5_write import _PieceStream, _serialize, adler32_combine, savemat_fast
from kraken_cli.engine.io._source import square_rows

RNG = np.random.default_rng(3)


def _sym(n: int, r: int, dtype: type = np.float32) -> np.ndarray:
    a = RNG.normal(size=(n, r, r)).astype(dtype)
    return a + np.swapaxes(a, 1, 2)


@pytest.mark.parametrize("order", ["C", "F"])
def test_square_rows_equals_the_per_subject_triangles(order: str) -> None:
    mats = np.asarray(_sym(9, 7), order=order)
    mats[:, np.arange(7), np.arange(7)] = np.nan  # the diagonal is dropped: NaN there is fine
    rows = square_rows(mats, where="x")
    assert rows.flags.c_contiguous and rows.dtype == np.float32
    np.testing.assert_array_equal(rows, square_to_tri(np.ascontiguousarray(mats)))


@pytest.mark.parametrize("order", ["C", "F"])
def test_square_rows_refuses_what_check_square_refuses(order: str) -> None:
    mats = _sym(4, 6, np.float64)
    mats[2, 1, 4] += 1.0
    with pytest.raises(InputDataError) as old:
        check_square(mats, where="f")
    with pytest.raises(InputDataError) as new:
        square_rows(np.asarray(mats, order=order), where="f")
    assert new.value.message == old.value.message
    mats = _sym(4, 6, np.float64)
    mats[1, 0, 3] = np.inf
    mats[3, 5, 2] = np.nan
    with pytest.raises(InputDataError, match="2 values are NaN or Inf"):
        square_rows(np.asarray(mats, order=order), where="f")


def test_inflate_v5_gives_scipy_the_same_variables(tmp_path: Path) -> None:
    path = tmp_path / "a.mat"
    data = {"data": _sym(5, 8), "subjects": np.array(["s1", "s2", "s3", "s4", "s5"], dtype=object),
            "x": np.arange(3.0)}
    scipy.io.savemat(path, data, do_compression=True)
    with open(path, "rb") as fh:
        raw = inflate_v5(fh, path.stat().st_size, where="a")
    assert raw is not None and len(raw) > path.stat().st_size  # really uncompressed
    got, want = scipy.io.loadmat(io.BytesIO(raw)), scipy.io.loadmat(path)
    assert sorted(k for k in got if not k.startswith("__")) == ["data", "subjects", "x"]
    for k in ("data", "x"):
        np.testing.assert_array_equal(got[k], want[k])


def test_inflate_v5_leaves_uncompressed_and_large_files_to_scipy(tmp_path: Path) -> None:
    plain, packed = tmp_path / "plain.mat", tmp_path / "packed.mat"
    scipy.io.savemat(plain, {"data": _sym(5, 8)}, do_compression=False)
    scipy.io.savemat(packed, {"data": _sym(5, 8)}, do_compression=True)
    with open(plain, "rb") as fh:
        assert inflate_v5(fh, plain.stat().st_size, where="p") is None and fh.tell() == 0
    with open(packed, "rb") as fh:
        assert inflate_v5(fh, packed.stat().st_size, where="p", limit=1000) is None and fh.tell() == 0
        assert inflate_v5(fh, packed.stat().st_size, where="p") is not None
    from kraken_cli.engine.io._mat import load_mat_v5

    for f in (plain, packed):
        np.testing.assert_array_equal(load_mat_v5(f, where="f")["data"], scipy.io.loadmat(f)["data"])


def test_adler32_combine_matches_zlib() -> None:
    a, b = RNG.bytes(100_003), RNG.bytes(70_001)
    assert adler32_combine(zlib.adler32(a), zlib.adler32(b), len(b)) == zlib.adler32(a + b)
    assert adler32_combine(zlib.adler32(a), 1, 0) == zlib.adler32(a)


def test_column_major_arrays_serialize_to_scipys_bytes_without_a_copy() -> None:
    x = np.asfortranarray(RNG.normal(size=(300, 200)).astype(np.float32))  # 240 kB: passed on as a view
    value = {"pa": {"src": {"out": x}}, "n": "text"}
    ours = _PieceStream()
    _serialize(ours, "v", value, long_field_names=True, oned_as="row")
    assert any(isinstance(p, memoryview) for p in ours.pieces)
    theirs = io.BytesIO()
    scipy.io.savemat(theirs, {"v": value}, format="5", do_compression=False, long_field_names=True, oned_as="row")
    assert b"".join(bytes(v) for v in ours.views(128)) == theirs.getvalue()[128:]


def test_savemat_fast_reads_back(tmp_path: Path) -> None:
    x = np.asfortranarray(RNG.normal(size=(1500, 800)).astype(np.float32))  # two compression blocks
    path = tmp_path / "o.mat"
    with open(path, "wb") as fh:
        savemat_fast(fh, {"predicted_alltypes": {"a": {"b": x}}, "subjects": ["1", "2"]}, threads=2)
    back = scipy.io.loadmat(path)
    np.testing.assert_array_equal(back["predicted_alltypes"][0, 0]["a"][0, 0]["b"], x)


@pytest.mark.parametrize("env", [None, "1"])
def test_prediction_files_are_standard_v5_compressed_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                     env: str | None) -> None:
    from kraken_cli.engine.io.writers import COMPRESS_ENV, FileMeta, Mat5Writer, OutputFile

    if env is None:
        monkeypatch.delenv(COMPRESS_ENV, raising=False)
    else:
        monkeypatch.setenv(COMPRESS_ENV, env)
    x = RNG.normal(size=(40, 45)).astype(np.float32)
    w = Mat5Writer(OutputFile(tmp_path / "p.mat", ["a"], ["b"]), FileMeta(["s"] * 40, "m.pt", "", ["i.mat"]),
                   n_subjects=40)
    w.write_rows(0, {("a", "b"): x})
    path = w.close()
    raw = path.read_bytes()
    tags = []
    pos = 128
    while pos < len(raw):  # top-level elements: miMATRIX (14) or miCOMPRESSED (15)
        dtype, nbytes = np.frombuffer(raw[pos:pos + 8], dtype="<u4")
        tags.append(int(dtype))
        pos += 8 + int(nbytes) + (-int(nbytes) % 8 if dtype == 14 else 0)
    assert pos == len(raw)
    assert set(tags) == ({15} if env else {14})
    back = scipy.io.loadmat(path)
    np.testing.assert_array_equal(back["predicted_alltypes"][0, 0]["a"][0, 0]["b"], x)
