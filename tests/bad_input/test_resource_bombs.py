"""Tiny files that ask for huge memory or endless work are refused from what they declare, before allocation."""

from __future__ import annotations

import io
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kraken_cli.engine.errors import TransformError
from kraken_cli.engine.transforms.files import read_transform_params


def _pickled_npy(path: Path, pickle_bytes: bytes) -> Path:
    """A ``.npy`` of one object (what ``np.save(path, obj)`` writes), holding these pickle bytes."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "|O", "fortran_order": False, "shape": ()})
    path.write_bytes(buf.getvalue() + pickle_bytes)
    return path


def test_a_storage_of_billions_of_elements_from_a_few_bytes(tmp_path: Path) -> None:
    # torch.FloatStorage(778_774_528): 3 GB asked for by a 34-byte pickle
    payload = b"\x80\x02ctorch\nFloatStorage\nq\x00J\x00\x28\x6b\x2eq\x01\x85R."
    f = _pickled_npy(tmp_path / "bomb_ioxfm.npy", payload)
    assert f.stat().st_size < 300
    with pytest.raises(TransformError, match="FloatStorage of 778,774,528 elements"):
        read_transform_params(f)


def test_containers_that_share_one_another_exponentially(tmp_path: Path) -> None:
    nested: list = []
    for _ in range(80):  # 2**80 leaves when walked, a few hundred bytes when pickled
        nested = [nested, nested]
    f = _pickled_npy(tmp_path / "laughs_ioxfm.npy", pickle.dumps({"FCcorr_fs86_hpf": {"type": "pca", "x": nested}}))
    assert f.stat().st_size < 1000
    with pytest.raises(TransformError, match="nested objects"):
        read_transform_params(f)


# -- compression bombs: a small file that would expand past KRAKEN_MAX_EXPANSION ------------------------------------

ZEROS_MB = 80  # above the 64 MiB floor below which any ratio is fine; deflates about 1000:1


def _zip_of_zeros(path: Path, member: str, header: bytes = b"") -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf, zf.open(member, "w") as fh:
        fh.write(header)
        block = bytes(1 << 20)
        for _ in range(ZEROS_MB):
            fh.write(block)
    assert path.stat().st_size < ZEROS_MB * (1 << 20) / 200
    return path


def _npy_header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": shape})
    return buf.getvalue()


def test_an_npz_transform_bomb(tmp_path: Path) -> None:
    f = _zip_of_zeros(tmp_path / "bomb_ioxfm.npz", "transform_params.npy", _npy_header((ZEROS_MB << 17,)))
    with pytest.raises(TransformError, match="would expand"):
        read_transform_params(f)


def test_an_npz_input_bomb(tmp_path: Path) -> None:
    from kraken_cli.engine.errors import InputDataError
    from kraken_cli.engine.io._numpy import read_npz_file

    f = _zip_of_zeros(tmp_path / "FCcorr_fs86_hpf.npz", "data.npy", _npy_header((ZEROS_MB << 7, 1024)))
    with pytest.raises(InputDataError, match="would expand"):
        read_npz_file(f, spec_flavor=None, field=None)


def test_a_bids_zip_member_bomb(tmp_path: Path) -> None:
    from kraken_cli.engine.errors import InputDataError
    from kraken_cli.engine.io._bids import _Container

    f = _zip_of_zeros(tmp_path / "bids.zip", "sub-1/func/sub-1_atlas-fs86_meas-FCcorrHPF_relmat.tsv")
    box = _Container(f)
    with pytest.raises(InputDataError, match="would expand"):
        box.read(box.names[0])
    box.close()


def test_a_compressed_v5_mat_bomb(tmp_path: Path) -> None:
    import scipy.io

    from kraken_cli.engine.errors import InputDataError
    from kraken_cli.engine.io._mat import load_mat_v5

    f = tmp_path / "bomb.mat"
    scipy.io.savemat(f, {"FC": np.zeros((ZEROS_MB << 7, 1024))}, do_compression=True)
    assert f.stat().st_size < ZEROS_MB * (1 << 20) / 200
    with pytest.raises(InputDataError, match="would expand"):
        load_mat_v5(f, where=str(f))
    small = tmp_path / "fine.mat"  # small compressed files are read whatever their ratio
    scipy.io.savemat(small, {"FC": np.zeros((100, 100))}, do_compression=True)
    assert load_mat_v5(small, where=str(small))["FC"].shape == (100, 100)


def _h5(path: Path, build: Any) -> Path:
    import h5py

    with h5py.File(path, "w", userblock_size=512) as f:
        build(f)
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file".ljust(116))
    return path


def test_v73_gzip_bombs_and_a_text_bomb(tmp_path: Path) -> None:
    from kraken_cli.engine.errors import InputDataError
    from kraken_cli.engine.io._hdf5 import open_tree

    def zeros(f: Any, name: str, dtype: str, matlab_class: str) -> None:
        ds = f.create_dataset(name, shape=(ZEROS_MB << 7, 1024 * 8 // np.dtype(dtype).itemsize), dtype=dtype,
                              chunks=(1024, 1024), compression="gzip")
        for i in range(0, ds.shape[0], 1024):
            ds[i:i + 1024] = 0
        ds.attrs["MATLAB_class"] = np.bytes_(matlab_class)

    data = _h5(tmp_path / "data_bomb.mat", lambda f: zeros(f, "FC", "<f8", "double"))
    text = _h5(tmp_path / "text_bomb.mat", lambda f: zeros(f, "subjects", "<u2", "char"))
    for f, field in ((data, "FC"), (text, "subjects")):
        assert f.stat().st_size < ZEROS_MB * (1 << 20) / 200
        h5, tree = open_tree(f, where=str(f))
        with pytest.raises(InputDataError, match="would expand"), h5:
            value = tree[field]
            getattr(value, "read", lambda v=value: v)()


def test_matlab_empty_with_huge_dims(tmp_path: Path) -> None:
    from kraken_cli.engine.errors import InputDataError
    from kraken_cli.engine.io._hdf5 import open_tree

    def build(f: Any) -> None:
        ds = f.create_dataset("FC", data=np.array([10**9, 10**9], dtype=np.uint64))
        ds.attrs["MATLAB_class"] = np.bytes_("double")
        ds.attrs["MATLAB_empty"] = np.uint8(1)

    f = _h5(tmp_path / "empty.mat", build)
    h5, tree = open_tree(f, where=str(f))
    with pytest.raises(InputDataError, match="marked empty"), h5:
        tree["FC"]
