"""NumPy files: ``.npy`` (memory-mapped, read lazily) and ``.npz`` (arrays ``data``, ``subjects``...).

Headers are checked before anything is mapped or allocated: object arrays (pickles) are refused,
and a declared shape larger than the bytes present is refused instead of allocated.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from ..connectome import EdgeSource
from ..errors import InputDataError
from ..flavors import Flavor
from ._layout import SCAN_CHUNK_BYTES, NumpyArray, plan_layout
from ._limits import check_expansion
from ._mat import FIELD_ORDER, ID_FIELDS, file_stem, flavor_from_name, sources_from_tree
from ._source import PlannedSource, finalize

_PICKLE_HINT = "kraken never unpickles user arrays; save plain numeric arrays (np.save(..., allow_pickle=False))"


def read_npy_header(fh: IO[bytes], *, where: str) -> tuple[tuple[int, ...], np.dtype[Any], int]:
    """Shape, dtype and header length of an open ``.npy`` stream (positioned at its start).

    Raises
    ------
    InputDataError
        For a missing/corrupt header and for object (pickled) arrays.
    """
    fmt = np.lib.format
    try:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            shape, _fortran, dtype = fmt.read_array_header_1_0(fh, max_header_size=100_000)
        else:
            shape, _fortran, dtype = fmt.read_array_header_2_0(fh, max_header_size=100_000)
    except (ValueError, OSError, EOFError, SyntaxError, TypeError) as exc:
        raise InputDataError(f"{where}: not a readable .npy file ({exc})",
                             hint="check that the file is a complete .npy array") from exc
    if dtype.hasobject:
        raise InputDataError(f"{where}: holds Python objects (a pickle), which kraken refuses to load",
                             hint=_PICKLE_HINT)
    return tuple(int(s) for s in shape), dtype, fh.tell()


def _declared_bytes(shape: tuple[int, ...], dtype: np.dtype[Any]) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n * int(dtype.itemsize)


def load_npy(path: Path, *, where: str, mmap: bool = True) -> npt.NDArray[np.generic]:
    """A ``.npy`` array (memory-mapped by default), with its header checked first."""
    size = path.stat().st_size
    if size == 0:
        raise InputDataError(f"{where}: the file is empty", hint="re-create the file")
    with open(path, "rb") as fh:
        shape, dtype, offset = read_npy_header(fh, where=where)
    need = _declared_bytes(shape, dtype)
    if offset + need > size:
        raise InputDataError(
            f"{where}: header declares shape {shape} ({need:,} bytes) but the file holds {size - offset:,}",
            hint="the file is truncated or crafted; re-create it")
    if need == 0:
        raise InputDataError(f"{where}: the array is empty (shape {shape})", hint="the file holds no connectomes")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise InputDataError(f"{where}: not a readable .npy file ({exc})",
                             hint="check that the file is a complete .npy array") from exc
    return np.asarray(arr) if not mmap else arr


class NpyFileArray(NumpyArray):
    """A memory-mapped ``.npy`` file whose slices are read with plain file reads.

    ``array`` is the file's memory map (for its shape and dtype), but :meth:`take` does not read
    through it: a long-lived map keeps every page it touched in the process's resident memory, so
    streaming a 10,000-subject file chunk by chunk would end with the whole file counted in RSS.
    Here each slice costs only its own copy. Slices along an axis other than the outermost (of the
    file's order) are gathered from blocks of at most :data:`SCAN_CHUNK_BYTES` of whole rows.
    """

    def __init__(self, array: np.memmap, path: Path, *, where: str) -> None:
        super().__init__(array, in_memory=False)
        self.path = path
        self.where = where
        self.offset = int(array.offset)
        self.fortran = array.ndim > 1 and bool(array.flags.f_contiguous) and not array.flags.c_contiguous

    def take(self, axis: int, start: int, stop: int) -> npt.NDArray[np.generic]:
        shape = self.shape
        if not shape:
            return np.array(self.array)
        start, stop = max(0, start), max(start, min(stop, shape[axis]))
        if self.fortran:  # a Fortran-order array is a C-order array with its axes reversed
            return self._take_c(shape[::-1], len(shape) - 1 - axis, start, stop).transpose()
        return self._take_c(shape, axis, start, stop)

    def _take_c(self, shape: tuple[int, ...], axis: int, start: int, stop: int) -> npt.NDArray[np.generic]:
        if axis == 0:
            return self._rows(shape, start, stop)
        out = np.empty(shape[:axis] + (stop - start,) + shape[axis + 1:], dtype=self.dtype)
        row_bytes = max(1, int(np.prod(shape[1:], dtype=np.int64)) * self.dtype.itemsize)
        step = max(1, SCAN_CHUNK_BYTES // row_bytes)
        index = (slice(None),) * axis + (slice(start, stop),)
        for i in range(0, shape[0], step):
            j = min(shape[0], i + step)
            out[i:j] = self._rows(shape, i, j)[index]
        return out

    def _rows(self, shape: tuple[int, ...], start: int, stop: int) -> npt.NDArray[np.generic]:
        """Rows ``start:stop`` of the C-order array ``shape`` stored in the file."""
        inner = int(np.prod(shape[1:], dtype=np.int64))
        count = (stop - start) * inner
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset + start * inner * self.dtype.itemsize)
                flat = np.fromfile(fh, dtype=self.dtype, count=count)
        except OSError as exc:
            raise InputDataError(f"{self.where}: cannot read ({exc.strerror or exc})",
                                 hint="check that the file is still there and readable") from exc
        if flat.size != count:
            raise InputDataError(f"{self.where}: the file ends early (it changed or was truncated while read)",
                                 hint="re-create the file")
        return flat.reshape((stop - start,) + tuple(shape[1:]))


def read_npy_file(path: Path, *, spec_flavor: Flavor | None) -> list[EdgeSource]:
    """One lazy source from a ``.npy`` file: [S x E], [S x R x R], [R x R x S] or one R x R."""
    flavor = spec_flavor or flavor_from_name(file_stem(str(path)), field=None, file=str(path))
    where = f"{path} ({flavor.name})"
    arr = load_npy(path, where=where)
    array = NpyFileArray(arr, path, where=where) if isinstance(arr, np.memmap) else NumpyArray(arr, in_memory=False)
    layout = plan_layout(array, where=where, flavor=flavor)
    return [finalize(PlannedSource(flavor, str(path), None, array, layout, owner=arr), in_memory=False)]


def _check_npz_members(path: Path, *, where: str) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InputDataError(f"{where}: not a readable .npz file ({exc})",
                             hint="check that the file is a complete .npz archive") from exc
    with zf:
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            member = f"{where}[{info.filename}]"
            try:
                with zf.open(info) as fh:
                    shape, dtype, _ = read_npy_header(fh, where=member)
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise InputDataError(f"{member}: cannot read ({exc})", hint="the archive may be corrupt") from exc
            need = _declared_bytes(shape, dtype)
            check_expansion(info.compress_size, max(need, info.file_size), what=f"array {info.filename}",
                            where=str(path))
            if need > info.file_size:
                raise InputDataError(
                    f"{member}: header declares shape {shape} ({need:,} bytes), more than the archive holds",
                    hint="the file is truncated or crafted; re-create it")


def _npz_tree(npz: Any, *, where: str) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key in npz.files:
        try:
            value = npz[key]
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise InputDataError(f"{where}: cannot read array {key!r} ({exc})",
                                 hint=_PICKLE_HINT if "pickle" in str(exc).lower() else
                                 "the archive may be corrupt") from exc
        if value.dtype.kind in "US":
            value = [str(s) for s in value.ravel()] if value.ndim else str(value)
        node = tree
        parts = key.split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return tree


def read_npz_file(path: Path, *, spec_flavor: Flavor | None, field: str | None) -> list[EdgeSource]:
    """Sources of an ``.npz``: array ``data`` (or the only array, or ``field``), optional ``subjects``."""
    where = str(path)
    if path.stat().st_size == 0:
        raise InputDataError(f"{where}: the file is empty", hint="re-create the file")
    _check_npz_members(path, where=where)
    try:
        with np.load(path, allow_pickle=False) as npz:
            tree = _npz_tree(npz, where=where)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        raise InputDataError(f"{where}: not a readable .npz file ({exc})",
                             hint="check that the file is a complete .npz archive") from exc
    if field is None and "predicted_alltypes" not in tree and not any(k in tree for k in FIELD_ORDER):
        arrays = [k for k, v in tree.items()
                  if k not in ID_FIELDS and k not in ("ismissing", "trimask") and isinstance(v, np.ndarray)]
        if len(arrays) == 1:
            field = arrays[0]
    return sources_from_tree(tree, file=where, spec_flavor=spec_flavor, field=field, in_memory=True)
