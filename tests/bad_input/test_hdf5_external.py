"""HDF5 datasets whose bytes live outside the file are refused at any size (issue 13)."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from kraken_cli.engine.errors import KrakenError
from kraken_cli.engine.io._hdf5 import open_tree


def _external(tmp_path: Path) -> Path:
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"A" * 100)
    p = tmp_path / "leak.h5"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", shape=(5, 5), dtype="u4", external=[(str(secret), 0, 100)])
    return p


def _virtual(tmp_path: Path) -> Path:
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["d"] = np.ones((4, 4))
    layout = h5py.VirtualLayout(shape=(4, 4), dtype="f8")
    layout[:] = h5py.VirtualSource(str(src), "d", shape=(4, 4))
    p = tmp_path / "virt.h5"
    with h5py.File(p, "w") as f:
        f.create_virtual_dataset("x", layout)
    return p


def _extlink(tmp_path: Path) -> Path:
    src = tmp_path / "other.h5"
    with h5py.File(src, "w") as f:
        f["d"] = np.ones((4, 4))
    p = tmp_path / "link.h5"
    with h5py.File(p, "w") as f:
        f["x"] = h5py.ExternalLink(str(src), "d")
    return p


@pytest.mark.parametrize("make,word", [(_external, "external storage"), (_virtual, "virtual"),
                                       (_extlink, "external link")])
def test_outside_storage_refused(tmp_path: Path, make, word: str) -> None:
    path = make(tmp_path)
    with pytest.raises(KrakenError, match=word):
        f, root = open_tree(path, where=str(path))
        try:
            root["x"]
        finally:
            f.close()
