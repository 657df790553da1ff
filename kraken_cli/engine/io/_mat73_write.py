"""A MATLAB v7.3 (HDF5) writer that can write large [rows x columns] arrays chunk by chunk.

The file MATLAB expects: a 512-byte userblock starting ``MATLAB 7.3 MAT-file, ...``, a
``MATLAB_class`` attribute on every variable (``double``, ``single``, ``char``, ``cell``,
``struct``, ``logical``, integer classes), structs as groups (with ``MATLAB_fields``), text as
``uint16`` UTF-16 code units, cell arrays as object references into ``#refs#``, and every array
stored with its dimensions reversed (MATLAB is column-major), so a numpy ``(S, E)`` array is an
HDF5 ``(E, S)`` dataset and MATLAB sees ``[S x E]``.

Names that are not MATLAB identifiers (``fusion.noself``) are written as :func:`safe_field_name`
gives them (``fusion_noself``) and a ``name_map`` struct (cells ``written`` and ``original`` of
``/``-separated paths) records the originals; kraken's reader restores them.
"""

from __future__ import annotations

import os
import re
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np
import numpy.typing as npt

from ..errors import OutputError
from ._atomic import atomic_path, reserve_space

_IDENT = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_CLASSES = {
    "float64": "double", "float32": "single", "bool": "logical",
    "int8": "int8", "uint8": "uint8", "int16": "int16", "uint16": "uint16",
    "int32": "int32", "uint32": "uint32", "int64": "int64", "uint64": "uint64",
}
_REFS = "#refs#"


def safe_field_name(name: str) -> str:
    """A valid MATLAB identifier for ``name`` (``.`` and other symbols become ``_``).

    >>> safe_field_name("fusion.noself"), safe_field_name("1st"), safe_field_name("FCcorr_fs86_hpf")
    ('fusion_noself', 'x1st', 'FCcorr_fs86_hpf')
    """
    out = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not out or not out[0].isalpha():
        out = "x" + out
    return out[:63]


def _platform() -> str:
    if sys.platform.startswith("linux"):
        return "GLNXA64"
    if sys.platform == "darwin":
        return "MACI64"
    if sys.platform.startswith("win"):
        return "PCWIN64"
    return sys.platform


def matlab_header(now: float | None = None) -> bytes:
    """The 128 bytes MATLAB expects at the start of a v7.3 file (padded to 512 by the caller)."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.localtime(now))
    text = f"MATLAB 7.3 MAT-file, Platform: {_platform()}, Created on: {stamp} HDF5 schema 1.00 ."
    raw = text.encode("ascii")[:116].ljust(116, b" ")
    return raw + b"\x00" * 8 + b"\x00\x02" + b"IM"


#: HDF5 metadata cache of a file being written. With the library default (adaptive, up to 32 MB),
#: writing a 10,000-subject id cell array (one dataset per id) costs about 39 MB of memory per open
#: file, about 21 MB with this cap; a few MB serve the writer's access pattern.
METADATA_CACHE_BYTES = 2 * 2**20


def _limit_metadata_cache(f: h5py.File, max_bytes: int) -> None:
    cfg = f.id.get_mdc_config()
    cfg.set_initial_size = True
    cfg.initial_size = max_bytes // 2
    cfg.min_size = max_bytes // 2
    cfg.max_size = max_bytes
    f.id.set_mdc_config(cfg)


class CharMatrix(tuple):  # type: ignore[type-arg]
    """Strings to write as one MATLAB char matrix ``[n x L]``, rows padded with spaces.

    This is what MATLAB's ``char({...})`` and scipy's v5 ``savemat`` of a list of strings give. Unlike
    a cell array (object references into ``#refs#``), GNU Octave can load it (as the ``uint16``
    codes: ``char(x)`` gives the text; ``cellstr(char(x))`` the trimmed strings).
    """


def _set_class(obj: h5py.HLObject, cls: str) -> None:
    obj.attrs["MATLAB_class"] = np.bytes_(cls)


class Mat73Writer:
    """Write a MATLAB v7.3 file atomically, small values at once and big arrays by rows.

    Parameters
    ----------
    path : str or os.PathLike
        Final file; written to a temporary file beside it and renamed on success.
    compression : str or None
        HDF5 filter for row arrays (``"gzip"`` as MATLAB does, or None for speed).

    Examples
    --------
    >>> import tempfile, numpy as np, os
    >>> out = os.path.join(tempfile.mkdtemp(), "pred.mat")
    >>> with Mat73Writer(out) as w:
    ...     w.write("subjects", ["s1", "s2"])
    ...     w.create_rows("predicted_alltypes/fusion.noself/encoded", 2, 3, np.float32)
    ...     w.write_rows("predicted_alltypes/fusion.noself/encoded", 0, np.ones((2, 3), np.float32))
    """

    def __init__(self, path: str | os.PathLike[str], *, compression: str | None = None,
                 reserve_bytes: int = 0) -> None:
        self.path = Path(path)
        self.compression = compression
        self.reserve_bytes = reserve_bytes
        self._h5: h5py.File | None = None
        self._ctx: Any = None
        self._tmp: Path | None = None
        self._written: dict[str, str] = {}  # original path -> written path
        self._renamed: list[tuple[str, str]] = []  # (written, original)
        self._fields: dict[str, list[str]] = {}  # written struct path -> written field names in order
        self._rows: dict[str, npt.NDArray[np.bool_]] = {}  # written path -> rows filled
        self._n_refs = 0

    # ------------------------------------------------------------------ context management

    def __enter__(self) -> Mat73Writer:
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        try:
            self._h5 = h5py.File(self._tmp, "w", userblock_size=512, libver="earliest")
            if self.reserve_bytes:
                # HDF5 cannot recover from a full disk (its close fails, then the process crashes):
                # take the space first; HDF5 writes inside it and trims the file to its end on close.
                self._h5.close()
                reserve_space(self._tmp, self.reserve_bytes, target=self.path)
                self._h5 = h5py.File(self._tmp, "r+")
            _limit_metadata_cache(self._h5, METADATA_CACHE_BYTES)
        except (OSError, ValueError, OutputError) as exc:
            err = exc if isinstance(exc, OutputError) else OutputError(
                f"cannot create {self.path}: {exc}", hint="check free disk space and permissions")
            self._ctx.__exit__(type(err), err, None)
            raise err from exc
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> bool:
        if et is None:
            try:
                self._finish()
            except BaseException as exc:
                self._close()
                self._ctx.__exit__(type(exc), exc, exc.__traceback__)
                raise
        else:
            self._close()
        return bool(self._ctx.__exit__(et, ev, tb))

    def _close(self) -> None:
        if self._h5 is not None:
            try:
                self._h5.close()
            finally:
                self._h5 = None

    def _finish(self) -> None:
        for path, done in self._rows.items():
            if not done.all():
                raise OutputError(f"{self.path}: only {int(done.sum())} of {done.size} rows of {path} were written",
                                  hint="this is a bug in the caller; the output was not saved")
        if self._renamed:
            self._write_value(self.file, "name_map", {
                "written": CharMatrix(w for w, _ in self._renamed),
                "original": CharMatrix(o for _, o in self._renamed),
            })
        for gpath, names in self._fields.items():
            grp = self.file[gpath] if gpath else None
            if grp is not None:
                self._set_fields(grp, names)
        self._close()
        assert self._tmp is not None
        with open(self._tmp, "r+b") as fh:
            fh.write(matlab_header().ljust(512, b"\x00"))

    @property
    def file(self) -> h5py.File:
        if self._h5 is None:
            raise RuntimeError("Mat73Writer is not open: use it as a context manager")
        return self._h5

    # ------------------------------------------------------------------ names

    def _resolve(self, path_in_file: str, *, create_groups: bool) -> tuple[h5py.Group, str, str]:
        """(parent group, written leaf name, written full path) for an original ``a/b/c`` path."""
        parts = [p for p in path_in_file.strip("/").split("/") if p]
        if not parts:
            raise ValueError("empty path in file")
        if parts[0] == "name_map":
            raise OutputError("'name_map' is reserved in MATLAB v7.3 outputs", hint="rename the variable")
        group: h5py.Group = self.file
        written_parts: list[str] = []
        for i, part in enumerate(parts):
            original = "/".join(parts[: i + 1])
            written = self._written.get(original)
            if written is None:
                parent_written = "/".join(written_parts)
                name = safe_field_name(part)
                taken = set(self._fields.get(parent_written, [])) | set(group.keys())
                base, k = name, 1
                while name in taken:
                    suffix = f"_{k}"
                    name = base[: 63 - len(suffix)] + suffix
                    k += 1
                written = f"{parent_written}/{name}" if parent_written else name
                self._written[original] = written
                if name != part:
                    self._renamed.append((written, original))
                self._fields.setdefault(parent_written, []).append(name)
            leaf = written.rsplit("/", 1)[-1]
            written_parts.append(leaf)
            if i < len(parts) - 1:
                if leaf in group:
                    sub = group[leaf]
                    if not isinstance(sub, h5py.Group):
                        raise OutputError(f"{self.path}: {original} is already a value, not a struct")
                    group = sub
                elif create_groups:
                    group = group.create_group(leaf)
                    _set_class(group, "struct")
                else:
                    raise KeyError(path_in_file)
        return group, written_parts[-1], "/".join(written_parts)

    @staticmethod
    def _set_fields(group: h5py.Group, names: list[str]) -> None:
        arr = np.empty(len(names), dtype=object)
        for i, n in enumerate(names):
            arr[i] = np.frombuffer(n.encode("ascii"), dtype="S1")
        group.attrs.create("MATLAB_fields", arr, dtype=h5py.vlen_dtype(np.dtype("S1")))

    # ------------------------------------------------------------------ public writing API

    def write(self, path_in_file: str, value: Any) -> None:
        """Write a small value: str, list of str (cell), numpy array, scalar, list (cell) or dict (struct).

        Parameters
        ----------
        path_in_file : str
            ``/``-separated, e.g. ``"predicted_alltypes/fusion.noself/encoded"``; intermediate
            structs are created.
        value : str, list, dict, ndarray, int, float, bool or None
        """
        if isinstance(value, dict):
            for k, v in value.items():
                self.write(f"{path_in_file.rstrip('/')}/{k}", v)
            if not value:
                group, leaf, _ = self._resolve(path_in_file, create_groups=True)
                if leaf not in group:
                    _set_class(group.create_group(leaf), "struct")
            return
        group, leaf, _ = self._resolve(path_in_file, create_groups=True)
        if leaf in group:
            raise OutputError(f"{self.path}: {path_in_file} is written twice", hint="this is a bug in the caller")
        self._write_value(group, leaf, value)

    def create_rows(self, path_in_file: str, n_rows: int, n_cols: int | tuple[int, ...],
                    dtype: npt.DTypeLike) -> None:
        """Create an ``[n_rows x n_cols]`` array (``[n_rows x R x R]`` for ``n_cols=(R, R)``) to fill by rows.

        As for every array, the HDF5 dataset has the dimensions reversed: ``(n_cols, n_rows)``, or
        ``(R, R, n_rows)``, so MATLAB (column-major) sees ``[n_rows x ...]``.
        """
        cols = (int(n_cols),) if isinstance(n_cols, (int, np.integer)) else tuple(int(c) for c in n_cols)
        dt = np.dtype(dtype)
        if dt.name not in _CLASSES:
            raise ValueError(f"unsupported dtype {dt} for a MATLAB array")
        group, leaf, written = self._resolve(path_in_file, create_groups=True)
        if leaf in group:
            raise OutputError(f"{self.path}: {path_in_file} is written twice", hint="this is a bug in the caller")
        if n_rows == 0 or 0 in cols:
            self._write_value(group, leaf, np.zeros((n_rows, *cols), dtype=dt))
            return
        item = dt.itemsize
        if len(cols) == 1:
            col_chunks: tuple[int, ...] = (cols[0] if cols[0] * item <= 4 * 2**20 else max(1, 2**20 // item),)
        else:  # [n x R x R]: whole matrices per chunk
            col_chunks = cols
        per_row = int(np.prod(col_chunks)) * item
        row_chunk = max(1, min(n_rows, 2**20 // max(1, per_row)))
        ds = group.create_dataset(leaf, shape=(*cols[::-1], n_rows), dtype=dt,
                                  chunks=(*col_chunks[::-1], row_chunk), compression=self.compression)
        _set_class(ds, _CLASSES[dt.name])
        self._rows[written] = np.zeros(n_rows, dtype=bool)

    def write_rows(self, path_in_file: str, start: int, array: npt.ArrayLike) -> None:
        """Write rows ``start : start + len(array)`` of an array made by :meth:`create_rows`."""
        written = self._written.get(path_in_file.strip("/"))
        if written is None or written not in self._rows:
            raise KeyError(f"{path_in_file} was not created with create_rows")
        ds = self.file[written]
        arr = np.asarray(array)
        n_rows, cols = ds.shape[-1], tuple(ds.shape[:-1][::-1])
        if arr.shape[1:] != cols or start < 0 or start + arr.shape[0] > n_rows:
            dims = " x ".join(str(d) for d in (n_rows, *cols))
            raise ValueError(f"rows of shape {arr.shape} at {start} do not fit [{dims}] {path_in_file}")
        try:
            ds[..., start:start + arr.shape[0]] = arr.transpose().astype(ds.dtype, copy=False)
        except OSError as exc:
            raise OutputError(f"could not write {self.path}: {exc}", hint="check free disk space") from exc
        self._rows[written][start:start + arr.shape[0]] = True

    # ------------------------------------------------------------------ values

    def _write_value(self, group: h5py.Group, name: str, value: Any) -> h5py.HLObject:
        """Write ``value`` as ``group[name]`` and return the new dataset or group."""
        if isinstance(value, dict):
            sub = group.create_group(name)
            _set_class(sub, "struct")
            names = []
            for k, v in value.items():
                kk = safe_field_name(k)
                self._write_value(sub, kk, v)
                names.append(kk)
            self._set_fields(sub, names)
            return sub
        if isinstance(value, str):
            return self._write_char(group, name, value)
        if isinstance(value, CharMatrix):
            return self._write_char_rows(group, name, list(value))
        if isinstance(value, (list, tuple)) or (isinstance(value, np.ndarray) and value.dtype.kind in "USO"):
            items = list(np.asarray(value, dtype=object).ravel()) if isinstance(value, np.ndarray) else list(value)
            return self._write_cell(group, name, items)
        if value is None:
            value = np.zeros((0, 0))
        arr = np.asarray(value)
        if arr.dtype.name not in _CLASSES:
            if arr.dtype.kind == "f":
                arr = arr.astype(np.float64)
            elif arr.dtype.kind in "iu":
                arr = arr.astype(np.int64)
            else:
                raise ValueError(f"cannot write {arr.dtype} values to MATLAB")
        if arr.ndim == 0:
            arr = arr.reshape(1, 1)
        elif arr.ndim == 1:
            arr = arr.reshape(1, -1)
        cls = _CLASSES[arr.dtype.name]
        if arr.size == 0:
            ds = group.create_dataset(name, data=np.asarray(arr.shape, dtype=np.uint64))
            ds.attrs["MATLAB_empty"] = np.uint8(1)
        else:
            data = arr.astype(np.uint8) if cls == "logical" else arr
            ds = group.create_dataset(name, data=np.ascontiguousarray(data.transpose()))
            if cls == "logical":
                ds.attrs["MATLAB_int_decode"] = np.int32(1)
        _set_class(ds, cls)
        return ds

    def _write_char(self, group: h5py.Group, name: str, text: str) -> h5py.Dataset:
        if not text:
            ds = group.create_dataset(name, data=np.zeros(2, dtype=np.uint64))
            ds.attrs["MATLAB_empty"] = np.uint8(1)
        else:
            units = np.frombuffer(text.encode("utf-16-le"), dtype="<u2")
            ds = group.create_dataset(name, data=units.reshape(-1, 1))  # MATLAB [1 x n]
        _set_class(ds, "char")
        ds.attrs["MATLAB_int_decode"] = np.int32(2)
        return ds

    def _write_char_rows(self, group: h5py.Group, name: str, texts: list[str]) -> h5py.Dataset:
        if not texts or not any(texts):
            ds = group.create_dataset(name, data=np.zeros(2, dtype=np.uint64))
            ds.attrs["MATLAB_empty"] = np.uint8(1)
        else:
            rows = [np.frombuffer(t.encode("utf-16-le"), dtype="<u2") for t in texts]
            width = max(r.size for r in rows)
            mat = np.full((len(rows), width), ord(" "), dtype="<u2")
            for i, r in enumerate(rows):
                mat[i, :r.size] = r
            ds = group.create_dataset(name, data=np.ascontiguousarray(mat.transpose()))  # MATLAB [n x L]
        _set_class(ds, "char")
        ds.attrs["MATLAB_int_decode"] = np.int32(2)
        return ds

    def _write_cell(self, group: h5py.Group, name: str, items: list[Any]) -> h5py.Dataset:
        if not items:
            ds = group.create_dataset(name, data=np.zeros(2, dtype=np.uint64))
            ds.attrs["MATLAB_empty"] = np.uint8(1)
            _set_class(ds, "cell")
            return ds
        refs_group = self.file.require_group(_REFS)
        refs = np.empty((1, len(items)), dtype=h5py.ref_dtype)  # HDF5 (1, n) = MATLAB [n x 1]
        for i, item in enumerate(items):
            key = self._ref_name()
            obj = self._write_value(refs_group, key, item.item() if isinstance(item, np.generic) else item)
            refs[0, i] = obj.ref
        ds = group.create_dataset(name, data=refs, dtype=h5py.ref_dtype)
        _set_class(ds, "cell")
        return ds

    def _ref_name(self) -> str:
        n = self._n_refs
        self._n_refs += 1
        letters = ""
        while True:
            letters = chr(ord("a") + n % 26) + letters
            n = n // 26 - 1
            if n < 0:
                return letters
