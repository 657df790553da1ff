"""Tiny files that ask for huge memory or endless work are refused from what they declare, before allocation."""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pytest

from kraken_cli.engine.errors import TransformError
from kraken_cli.engine.transform_files import read_transform_params


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
