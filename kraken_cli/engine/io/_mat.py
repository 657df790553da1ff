"""MATLAB v5 files (scipy), and .mat bytes of either version; what a tree means is :mod:`._tree`.

The tree helpers are re-exported here for the readers and callers that import them from this
module.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..connectome import EdgeSource
from ..errors import InputDataError
from ..flavors import Flavor
from ._tree import (
    FIELD_ORDER,
    ID_FIELDS,
    SKIP_NAMES,
    Tree,
    as_array,
    file_stem,
    flavor_from_name,
    is_array,
    is_cell,
    matrix_from_tree,
    pick_field,
    source_from_container,
    sources_from_tree,
    subject_ids,
    to_numpy,
    to_strings,
    trimask_pairs,
)

__all__ = ["FIELD_ORDER", "ID_FIELDS", "SKIP_NAMES", "Tree", "as_array", "file_stem", "flavor_from_name",
           "is_array", "is_cell", "load_mat_bytes", "load_mat_v5", "matrix_from_tree", "pick_field",
           "read_mat_file", "source_from_container", "sources_from_tree", "subject_ids", "to_numpy",
           "to_strings", "trimask_pairs"]


# --------------------------------------------------------------------------- v5 loading


def _convert_v5(value: Any) -> Any:
    """scipy.io.loadmat values -> tree values (dicts, lists, str, arrays)."""
    if isinstance(value, np.ndarray):
        if value.dtype.names:
            items = [{n: _convert_v5(rec[n]) for n in value.dtype.names} for rec in value.ravel(order="F")]
            return items[0] if len(items) == 1 else items
        if value.dtype == object:
            return [_convert_v5(x) for x in value.ravel(order="F")]
        if value.dtype.kind in "US":
            strs = [str(s) for s in value.ravel()]
            return strs[0] if len(strs) == 1 else ("" if not strs else strs)
        return value
    if hasattr(value, "toarray"):  # MATLAB sparse matrix
        return np.asarray(value.toarray())
    return value


def _readable(source: str | os.PathLike[str] | BinaryIO, *,
              where: str) -> str | os.PathLike[str] | BinaryIO | io.BytesIO:
    """What scipy reads: the file inflated in memory, or the file itself; compression bombs refused first.

    A compressed file is inflated once here (see :mod:`._limits`), replacing a bomb check that
    decompressed every variable and a scipy read that decompressed it again; files without compressed
    variables, or too large to hold twice, are checked and then read by scipy from the file.
    """
    from ._limits import check_v5_expansion, inflate_v5

    if isinstance(source, (str, os.PathLike)):
        size = Path(source).stat().st_size
        with open(source, "rb") as fh:
            data = inflate_v5(fh, size, where=where)
            if data is None:
                check_v5_expansion(fh, size, where=where)
        return source if data is None else io.BytesIO(data)
    start = source.tell()
    size = source.seek(0, os.SEEK_END) - start
    source.seek(start)
    data = inflate_v5(source, size, where=where)
    if data is None:
        check_v5_expansion(source, size, where=where)
        source.seek(start)
        return source
    return io.BytesIO(data)


def load_mat_v5(source: str | os.PathLike[str] | BinaryIO, *, where: str) -> dict[str, Any]:
    """Load a MATLAB v5 file (path or binary file object) into a tree.

    Raises
    ------
    InputDataError
        For empty, truncated or corrupt files.
    """
    import scipy.io

    if isinstance(source, (str, os.PathLike)) and Path(source).stat().st_size == 0:
        raise InputDataError(f"{where}: the file is empty", hint="re-create or re-download the file")
    data = _readable(source, where=where)
    try:
        raw = scipy.io.loadmat(data, squeeze_me=False, chars_as_strings=True, struct_as_record=True)
    except Exception as exc:  # scipy raises ValueError, MatReadError, zlib.error, EOFError...
        raise InputDataError(f"{where}: not a readable MATLAB file ({type(exc).__name__}: {exc})",
                             hint="check that the file is a complete .mat file (MATLAB v5 or v7.3)") from exc
    del data
    return {k: _convert_v5(v) for k, v in raw.items() if not k.startswith("__")}


def load_mat_bytes(data: bytes, *, where: str) -> Tree:
    """A tree from the bytes of a .mat file (v5 or v7.3), e.g. a zip member."""
    if data[:10] == b"MATLAB 7.3" or data[512:520] == b"\x89HDF\r\n\x1a\n" or data[:8] == b"\x89HDF\r\n\x1a\n":
        from ._hdf5 import open_tree  # h5py only when needed

        return open_tree(io.BytesIO(data), where=where)[1]
    return load_mat_v5(io.BytesIO(data), where=where)


def read_mat_file(path: Path, *, spec_flavor: Flavor | None, field: str | None) -> list[EdgeSource]:
    """Sources of a MATLAB v5 file (read in full; v5 cannot be read partially)."""
    tree = load_mat_v5(path, where=str(path))
    from ._pipelines import connectivity_sources

    found = connectivity_sources(tree, file=str(path), spec_flavor=spec_flavor, field=field)
    if found is not None:  # QSIRecon / QSIPrep *_connectivity.mat
        return found
    return sources_from_tree(tree, file=str(path), spec_flavor=spec_flavor, field=field, in_memory=True)


