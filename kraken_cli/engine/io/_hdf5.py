"""MATLAB v7.3 (HDF5) files read lazily with h5py.

MATLAB stores arrays column-major, so h5py sees every array with its dimensions reversed: a
MATLAB ``[S x R x R]`` array is ``(R, R, S)`` here. :class:`H5Array` hides that: its ``shape``
and slices are in MATLAB (= numpy/scipy) orientation and only the requested subjects are read.
Cell arrays are datasets of object references, text is ``uint16`` with ``MATLAB_class='char'``,
structs are groups. A ``name_map`` variable (written by :class:`~._mat73_write.Mat73Writer`)
restores field names that were not MATLAB identifiers (``fusion_noself`` -> ``fusion.noself``).

Plain HDF5 files without MATLAB attributes are read in numpy orientation.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np
import numpy.typing as npt

from ..connectome import EdgeSource
from ..errors import InputDataError
from ..flavors import Flavor
from ._limits import check_expansion, check_text_size
from ._tree import sources_from_tree, to_strings

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


def _attr_str(obj: h5py.HLObject, name: str) -> str | None:
    v = obj.attrs.get(name)
    if v is None:
        return None
    if isinstance(v, np.ndarray):
        v = v.ravel()[0] if v.size else b""
    if isinstance(v, bytes):
        return v.decode("ascii", "replace")
    return str(v)


def check_self_contained(ds: h5py.Dataset, *, where: str) -> None:
    """Refuse a dataset whose bytes live outside the file (external storage, virtual dataset).

    Checked for every dataset kraken reads, whatever its size: such a dataset would make kraken
    read another file (``/etc/passwd``) or silently fill missing sources with zeros.
    """
    plist = ds.id.get_create_plist()
    if plist.get_layout() == h5py.h5d.VIRTUAL or getattr(ds, "is_virtual", False):
        raise InputDataError(f"{where}: dataset {ds.name} is a virtual dataset (data stored outside the file)",
                             hint="kraken reads only self-contained HDF5 files; re-save the data in the file")
    if plist.get_external_count() > 0:
        raise InputDataError(f"{where}: dataset {ds.name} uses external storage (refers to other files)",
                             hint="kraken reads only self-contained HDF5 files; re-save the data in the file")


def check_link(group: h5py.Group, name: str, *, where: str) -> None:
    """Refuse an external link (a link into another file)."""
    link = group.get(name, getlink=True)
    if isinstance(link, h5py.ExternalLink):
        full = f"{group.name.rstrip('/')}/{name}"
        raise InputDataError(f"{where}: {full} is an external link to {link.filename}:{link.path}",
                             hint="kraken reads only self-contained HDF5 files")


def check_declared_size(ds: h5py.Dataset, *, where: str) -> None:
    """Refuse a dataset whose declared size cannot come from the bytes the file holds.

    Raises
    ------
    InputDataError
        For crafted or truncated datasets (e.g. 10^12 elements declared in a tiny file) and
        for datasets stored outside the file (external or virtual storage).
    """
    check_self_contained(ds, where=where)
    nbytes = int(np.prod(ds.shape, dtype=object)) * int(ds.dtype.itemsize) if ds.shape else ds.dtype.itemsize
    if nbytes <= 2**20:
        return
    plist = ds.id.get_create_plist()
    layout = plist.get_layout()
    if layout not in (h5py.h5d.CONTIGUOUS, h5py.h5d.CHUNKED, h5py.h5d.COMPACT):
        raise InputDataError(f"{where}: dataset {ds.name} is stored outside the file",
                             hint="kraken reads only self-contained HDF5 files")
    if plist.get_external_count() > 0:
        raise InputDataError(f"{where}: dataset {ds.name} refers to external files",
                             hint="kraken reads only self-contained HDF5 files")
    stored = int(ds.id.get_storage_size())
    if plist.get_nfilters() > 0:
        check_expansion(stored, nbytes, what=f"dataset {ds.name} (shape {ds.shape})", where=where)
    elif nbytes > stored:
        raise InputDataError(
            f"{where}: dataset {ds.name} declares shape {ds.shape} ({nbytes:,} bytes) but the file holds "
            f"{stored:,} bytes for it", hint="the file is truncated, incomplete or crafted; re-create it")


class H5Array:
    """A numeric dataset seen in MATLAB orientation, read slice by slice."""

    def __init__(self, ds: h5py.Dataset, *, matlab: bool, logical: bool, where: str) -> None:
        check_declared_size(ds, where=where)
        if ds.dtype.kind not in "biuf":
            raise InputDataError(f"{where}: dataset {ds.name} holds {ds.dtype}, not real numbers",
                                 hint="connectomes must be real-valued arrays")
        self.ds = ds
        self.matlab = matlab
        self.logical = logical
        self.where = where

    @property
    def shape(self) -> tuple[int, ...]:
        s = tuple(int(x) for x in self.ds.shape)
        return s[::-1] if self.matlab else s

    @property
    def dtype(self) -> np.dtype[np.generic]:
        return np.dtype(np.bool_) if self.logical else self.ds.dtype

    def take(self, axis: int, start: int, stop: int) -> npt.NDArray[np.generic]:
        """Elements ``start:stop`` along ``axis`` (MATLAB orientation)."""
        ndim = len(self.ds.shape)
        index: list[slice] = [slice(None)] * ndim
        index[ndim - 1 - axis if self.matlab else axis] = slice(start, stop)
        try:
            block = np.asarray(self.ds[tuple(index)])
        except (OSError, ValueError, RuntimeError) as exc:
            raise InputDataError(f"{self.where}: cannot read {self.ds.name} ({exc})",
                                 hint="the file may be truncated or corrupt") from exc
        if self.matlab:
            block = block.transpose()
        return block.astype(bool) if self.logical else block

    def read(self) -> npt.NDArray[np.generic]:
        """The whole array."""
        if not self.ds.shape:
            return np.asarray(self.ds[()])
        return self.take(0, 0, self.shape[0])


class H5CellStack:
    """Cells (one subject each) stacked on a new axis 0, dereferenced on demand."""

    def __init__(self, cell: H5Cell, *, where: str) -> None:
        self.cell = cell
        self.where = where
        if len(cell) == 0:
            raise InputDataError(f"{where}: the cell array is empty", hint="the file holds no connectomes")
        first = cell.element(0)
        if not isinstance(first, H5Array):
            raise InputDataError(f"{where}: cells hold {type(first).__name__}, not matrices",
                                 hint="each cell must be one subject's R x R matrix")
        self._elem_shape = self._squeeze(first.shape)
        self._dtype = first.dtype

    @staticmethod
    def _squeeze(shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(shape) == 2 and 1 in shape and shape != (1, 1):
            return (max(shape),)
        return shape

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.cell),) + self._elem_shape

    @property
    def dtype(self) -> np.dtype[np.generic]:
        return self._dtype

    def take(self, axis: int, start: int, stop: int) -> npt.NDArray[np.generic]:
        if axis != 0:
            raise InputDataError(f"{self.where}: cannot slice cells along axis {axis}")
        mats = []
        for i in range(start, min(stop, len(self.cell))):
            el = self.cell.element(i)
            if not isinstance(el, H5Array) or self._squeeze(el.shape) != self._elem_shape:
                got = el.shape if isinstance(el, H5Array) else type(el).__name__
                raise InputDataError(f"{self.where}: cell {i + 1} holds {got}, cell 1 holds {self._elem_shape}",
                                     hint="every subject's matrix must have the same size")
            mats.append(el.read().reshape(self._elem_shape))
        if not mats:
            return np.zeros((0,) + self._elem_shape, dtype=self._dtype)
        return np.stack(mats)


class H5Cell:
    """A MATLAB cell array: references resolved lazily, elements in MATLAB (column-major) order."""

    is_cell = True

    def __init__(self, ds: h5py.Dataset, ctx: _Context) -> None:
        check_declared_size(ds, where=ctx.where)
        self.refs = np.asarray(ds[()]).ravel()  # h5py C order == MATLAB column-major order
        self.ctx = ctx

    def __len__(self) -> int:
        return int(self.refs.size)

    def element(self, i: int) -> Any:
        """Element ``i`` (0-based), converted like any other value."""
        ref = self.refs[i]
        if not ref:
            return np.zeros((0, 0))
        try:
            obj = self.ctx.file[ref]
        except (ValueError, KeyError, OSError) as exc:
            raise InputDataError(f"{self.ctx.where}: broken cell reference ({exc})",
                                 hint="the file may be corrupt") from exc
        if isinstance(obj, h5py.Dataset):
            check_self_contained(obj, where=self.ctx.where)
        return convert(obj, self.ctx, "")

    def __iter__(self) -> Iterator[Any]:
        return (self.element(i) for i in range(len(self)))

    def __getitem__(self, i: int) -> Any:
        return self.element(i)

    def stack(self, *, where: str) -> H5CellStack:
        """The cells as an array of subjects (axis 0)."""
        return H5CellStack(self, where=where)


class _Context:
    def __init__(self, file: h5py.File, *, matlab: bool, where: str) -> None:
        self.file = file
        self.matlab = matlab
        self.where = where
        self.name_map: dict[str, str] = {}


def _char_value(ds: h5py.Dataset, where: str) -> str | list[str]:
    if ds.attrs.get("MATLAB_empty"):
        return ""
    check_declared_size(ds, where=where)
    check_text_size(ds.size * ds.dtype.itemsize, what=f"text field {ds.name}", where=where)
    raw = np.asarray(ds[()])
    if raw.ndim == 1:
        raw = raw[:, None]
    rows = raw.T if raw.ndim == 2 else raw.reshape(1, -1)
    strs = [np.ascontiguousarray(row, dtype="<u2").tobytes().decode("utf-16-le", "replace").rstrip("\x00")
            for row in rows]
    if len(strs) > 1:  # a char matrix: rows padded with spaces to one width (MATLAB char(), kraken's lists)
        strs = [t.rstrip(" ") for t in strs]
    return strs[0] if len(strs) == 1 else strs


def convert(obj: h5py.HLObject, ctx: _Context, path: str) -> Any:
    """An HDF5 object as a tree value (group -> mapping, cell -> H5Cell, char -> str...)."""
    if isinstance(obj, h5py.Group):
        return H5Tree(obj, ctx, path)
    if not isinstance(obj, h5py.Dataset):
        raise InputDataError(f"{ctx.where}: unsupported HDF5 object {obj.name}")
    check_self_contained(obj, where=ctx.where)
    cls = _attr_str(obj, "MATLAB_class")
    if obj.dtype == h5py.ref_dtype or obj.dtype.kind == "O" and h5py.check_ref_dtype(obj.dtype):
        return H5Cell(obj, ctx)
    if cls == "char":
        return _char_value(obj, ctx.where)
    if obj.attrs.get("MATLAB_empty"):
        check_declared_size(obj, where=ctx.where)
        dims = tuple(int(d) for d in np.asarray(obj[()]).ravel())
        if dims and 0 not in dims:
            raise InputDataError(f"{ctx.where}: {obj.name} is marked empty but declares dimensions {dims}",
                                 hint="the file is crafted or corrupt")
        return np.zeros(dims if dims else (0, 0))
    if obj.dtype.kind in "SO" or h5py.check_string_dtype(obj.dtype) is not None:
        check_declared_size(obj, where=ctx.where)
        check_text_size(obj.size * max(1, obj.dtype.itemsize), what=f"text field {obj.name}", where=ctx.where)
        val = obj[()]
        if isinstance(val, bytes):
            return val.decode("utf-8", "replace")
        if isinstance(val, np.ndarray):
            return [v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in val.ravel()]
        return str(val)
    if obj.dtype.kind not in "biuf":
        raise InputDataError(f"{ctx.where}: dataset {obj.name} holds {obj.dtype}, which kraken cannot read",
                             hint="save real-valued numeric arrays")
    if not obj.shape:
        return np.asarray(obj[()])
    matlab = ctx.matlab or cls is not None
    return H5Array(obj, matlab=matlab, logical=(cls == "logical"), where=ctx.where)


class H5Tree(Mapping[str, Any]):
    """A group (struct) as a read-only mapping; names restored through ``name_map``."""

    def __init__(self, group: h5py.Group, ctx: _Context, path: str) -> None:
        self.group = group
        self.ctx = ctx
        self.path = path
        self._names: dict[str, str] = {}
        for written in group:
            if written in ("#refs#", "#subsystem#"):
                continue
            full = f"{path}/{written}" if path else written
            original = ctx.name_map.get(full, written)
            self._names[original] = written

    def __getitem__(self, key: str) -> Any:
        written = self._names[key]
        full = f"{self.path}/{written}" if self.path else written
        check_link(self.group, written, where=self.ctx.where)
        try:
            obj = self.group[written]
        except (KeyError, OSError, ValueError) as exc:
            raise InputDataError(f"{self.ctx.where}: cannot read {full} ({exc})",
                                 hint="the file may be truncated or corrupt") from exc
        return convert(obj, self.ctx, full)

    def __contains__(self, key: object) -> bool:
        return key in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def _read_name_map(root: H5Tree) -> dict[str, str]:
    if "name_map" not in root:
        return {}
    nm = root["name_map"]
    if not isinstance(nm, Mapping) or "written" not in nm or "original" not in nm:
        return {}
    written = [str(s) for s in to_strings(nm["written"])]
    original = [str(s) for s in to_strings(nm["original"])]
    return {w: o.rsplit("/", 1)[-1] for w, o in zip(written, original)}


def open_tree(source: str | Path | IO[bytes], *, where: str) -> tuple[h5py.File, H5Tree]:
    """Open an HDF5 / MATLAB v7.3 file and return it with its root as a tree.

    Raises
    ------
    InputDataError
        When the file cannot be opened as HDF5.
    """
    try:
        f = h5py.File(source, "r")
    except (OSError, ValueError) as exc:
        raise InputDataError(f"{where}: not a readable HDF5 / MATLAB v7.3 file ({exc})",
                             hint="check that the file is complete; re-save it from MATLAB with -v7.3") from exc
    try:
        ub = int(f.userblock_size)
        matlab = ub >= 128
        if not matlab:
            keys = list(f.keys())[:20]
            for k in keys:
                check_link(f, k, where=where)
            matlab = any(_attr_str(f[k], "MATLAB_class") is not None for k in keys)
        ctx = _Context(f, matlab=matlab, where=where)
        root = H5Tree(f, ctx, "")
        ctx.name_map = _read_name_map(root)
        if ctx.name_map:
            root = H5Tree(f, ctx, "")
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        f.close()
        raise InputDataError(f"{where}: cannot read the HDF5 file ({exc})",
                             hint="the file may be truncated or corrupt") from exc
    return f, root


def read_hdf5_file(path: Path, *, spec_flavor: Flavor | None, field: str | None) -> list[EdgeSource]:
    """Sources of a MATLAB v7.3 / HDF5 file; subjects are read from the file as needed."""
    f, root = open_tree(path, where=str(path))
    try:
        return sources_from_tree(root, file=str(path), spec_flavor=spec_flavor, field=field,
                                 in_memory=False, owner=f)
    except (OSError, RuntimeError) as exc:
        f.close()
        raise InputDataError(f"{path}: cannot read the HDF5 file ({exc})",
                             hint="the file may be truncated or corrupt") from exc
    except BaseException:
        f.close()
        raise
