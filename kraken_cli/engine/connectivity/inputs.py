"""Inputs of ``kraken connectivity``: ROI time series or covariance / correlation matrices, per subject.

What each file may hold:

* ``.mat`` (MATLAB v5 or v7.3) / ``.h5``: a cell of ``T x R`` time series or ``R x R`` matrices, an
  ``[S x R x R]`` (or MATLAB ``[R x R x S]``) array, or one subject's matrix; the data field is the
  first of ``C, FC, ts, timeseries, time_series, data, cov`` (the original reads ``C`` or ``FC``);
  subject ids from ``subject``/``subjects``;
* ``.npz``: the same fields; ``.npy``: one ``T x R`` / ``R x R`` array, or ``[S x R x R]``;
* ``.csv`` / ``.tsv`` / ``.txt``: one subject, with an optional header row of region labels (a header
  means a time series);
* a glob (``'ts/sub-*_timeseries.tsv'``): one subject per file, ids from ``sub-<label>`` or the ``*`` part.

A square array is a matrix unless ``kind="timeseries"``; any other 2-D array is a time series
(time points on rows). Files are read again on each pass over the subjects, so memory stays bounded
by the chunk size for per-subject files.
"""

from __future__ import annotations

import functools
import glob
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import numpy.typing as npt

from ..choices import InputKind
from ..connectome import SYMMETRY_RTOL, clean_subject_ids, n_regions_from_edges
from ..errors import InputDataError
from .regularize import covariance

F64 = npt.NDArray[np.float64]

#: Data fields tried in order in .mat / .h5 / .npz files.
DATA_FIELDS = ("C", "FC", "ts", "timeseries", "time_series", "data", "cov")
TS_FIELDS = frozenset({"ts", "timeseries", "time_series"})
_HDF5_SIG = b"\x89HDF\r\n\x1a\n"


@dataclass(frozen=True)
class Subject:
    """One subject: where its data is and how to load its raw 2-D array."""

    subject: str
    file: str
    kind: Literal["timeseries", "matrix"]
    load: Callable[[], npt.NDArray[np.generic]] = field(repr=False, compare=False)

    @property
    def where(self) -> str:
        return f"{self.file} (subject {self.subject})"


def _float(a: npt.NDArray[np.generic], where: str) -> F64:
    arr = np.asarray(a)
    if arr.dtype.kind not in "biuf":
        raise InputDataError(f"{where}: values of type {arr.dtype} are not numbers",
                             hint="give numeric time series or matrices")
    return arr.astype(np.float64, copy=False)


def _kind_of(shape: tuple[int, ...], kind: InputKind, field_name: str | None,
             where: str = "") -> Literal["timeseries", "matrix"]:
    """``matrix`` for square arrays, else ``timeseries``; [subjects x edges] rows are refused (no diagonal)."""
    if kind != "auto":
        return kind
    if field_name in TS_FIELDS:
        return "timeseries"
    if len(shape) == 2 and shape[0] == shape[1]:
        return "matrix"
    if len(shape) == 2 and 3 < shape[1] and shape[0] < shape[1] and n_regions_from_edges(shape[1]) is not None:
        raise InputDataError(
            f"{where}: shape {shape} looks like [subjects x edges] rows; connectivity needs time series or "
            "square matrices (edge vectors have no diagonal)",
            hint="give R x R matrices or T x R time series; if this is a time series, add --input-kind timeseries")
    return "timeseries"


# ------------------------------------------------------------------------------------ containers


def _pick(tree: Any, where: str) -> str:
    for name in DATA_FIELDS:
        if name in tree:
            return name
    found = [k for k in tree if not str(k).startswith("__")][:10]
    raise InputDataError(f"{where}: no data field ({', '.join(DATA_FIELDS)}); the file holds {found}",
                         hint="store time series in 'ts' (a cell of T x R arrays) or matrices in 'C'")


def _ids(tree: Any, n: int, where: str) -> list[str] | None:
    from ..io._mat import subject_ids

    for name in ("subject", "subjects"):
        if name in tree:
            ids = subject_ids(tree[name])
            if ids is not None:
                if len(ids) != n:
                    raise InputDataError(f"{where}: {len(ids)} subject ids for {n} subjects",
                                         hint="'subjects' must list each subject once")
                return ids
    return None


def _cube_axis(shape: tuple[int, ...], first: Callable[[int], F64], where: str) -> int:
    a, b, c = shape
    if b == c and a != b:
        return 0
    if a == b and b != c:
        return 2
    if a == b == c:
        m = first(0)
        return 0 if np.allclose(m, m.T, rtol=0, atol=SYMMETRY_RTOL * max(float(np.abs(m).max()), 1e-300)) else 2
    raise InputDataError(f"{where}: a 3-D array of shape {shape} is neither [S x R x R] nor [R x R x S]",
                         hint="store time series as a cell of T x R arrays, one per subject")


def _from_value(value: Any, name: str, *, file: str, kind: InputKind,
                cube_axis0: bool) -> list[tuple[Any, Callable[[], Any]]]:
    """(shape, loader) per subject held by one data value (cell, 3-D array or one 2-D array)."""
    from ..io._mat import is_array, is_cell, to_numpy

    where = f"{file}, field {name!r}"
    if is_cell(value):
        items = list(value) if isinstance(value, list) else [value[i] for i in range(len(value))]
        out: list[tuple[Any, Callable[[], Any]]] = []
        for i, item in enumerate(items):
            if not is_array(item):
                raise InputDataError(f"{where}: cell {i + 1} holds {type(item).__name__}, not an array",
                                     hint="each cell must hold one subject's T x R time series or R x R matrix")
            out.append((getattr(item, "shape", None), functools.partial(to_numpy, item, where=where)))
        return out
    if not is_array(value):
        raise InputDataError(f"{where}: holds {type(value).__name__}, not numbers", hint="check the file's fields")
    shape = tuple(int(s) for s in value.shape)
    if len(shape) == 2:
        return [(shape, lambda: to_numpy(value, where=where))]
    if len(shape) != 3:
        raise InputDataError(f"{where}: {len(shape)}-D data (shape {shape}) is neither one subject nor a stack",
                             hint="give [S x R x R] matrices or a cell of T x R time series")

    def take(axis: int, i: int) -> F64:
        if hasattr(value, "take") and not isinstance(value, np.ndarray):
            block = np.asarray(value.take(axis, i, i + 1))
        else:
            block = np.take(np.asarray(value), [i], axis=axis)
        return np.squeeze(block, axis=axis)

    axis = 0 if cube_axis0 else _cube_axis(shape, lambda i: _float(take(0, i), where), where)
    sub_shape = tuple(s for k, s in enumerate(shape) if k != axis)
    return [(sub_shape, functools.partial(take, axis, i)) for i in range(shape[axis])]


def _subjects_from_tree(tree: Any, *, file: str, kind: InputKind, cube_axis0: bool) -> list[Subject]:
    name = _pick(tree, file)
    entries = _from_value(tree[name], name, file=file, kind=kind, cube_axis0=cube_axis0)
    if not entries:
        raise InputDataError(f"{file}: field {name!r} is empty", hint="the file holds no subjects")
    kinds = [_kind_of(shape, kind, name, f"{file}, field {name!r}") if shape is not None
             else ("timeseries" if name in TS_FIELDS or kind == "timeseries" else "matrix") for shape, _ in entries]
    ids = _ids(tree, len(entries), file)
    if ids is None:
        ids = [str(i + 1) for i in range(len(entries))] if len(entries) > 1 else [_stem_id(file)]
    out = []
    for sid, k, (_, load) in zip(ids, kinds, entries):
        out.append(Subject(sid, file, k, load))
    return out


def _stem_id(file: str) -> str:
    from ..io._glob import _SUB_ENTITY

    m = _SUB_ENTITY.search(os.path.basename(file))
    if m:
        return m.group(1)
    from ..io._mat import file_stem

    return file_stem(file)


# ------------------------------------------------------------------------------------ per file


def _sniff(path: Path) -> str:
    low = path.name.lower()
    for ext, k in ((".npy", "npy"), (".npz", "npz"), (".h5", "hdf5"), (".hdf5", "hdf5"), (".csv", "text"),
                   (".tsv", "text"), (".txt", "text")):
        if low.endswith(ext):
            return k
    with open(path, "rb") as fh:
        head = fh.read(1024)
    if head.startswith(b"MATLAB 7.3") or head.startswith(_HDF5_SIG) or head[512:520] == _HDF5_SIG:
        return "hdf5"
    if low.endswith(".mat") or head.startswith(b"MATLAB 5.0"):
        return "mat"
    return "text"


def read_text_array(path: Path) -> tuple[F64, bool]:
    """A numeric table from CSV/TSV/text, and whether it had a header row (region labels)."""
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputDataError(f"cannot read {where} ({exc})", hint="check the path and the file's encoding") from exc
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "%", "!"))]
    if not lines:
        raise InputDataError(f"{where}: the file is empty", hint="the file holds no values")
    delim = {".tsv": "\t", ".csv": ","}.get(path.suffix.lower())
    if delim is not None and delim not in lines[0] and len(lines[0].split()) > 1:
        delim = None
    split = (lambda ln: ln.split(delim)) if delim else (lambda ln: ln.split())
    header = False
    try:
        [float(v) for v in split(lines[0])]
    except ValueError:
        header = True
        lines = lines[1:]
    try:
        rows = [[float(v) if v.strip() else np.nan for v in split(ln)] for ln in lines]
    except ValueError as exc:
        raise InputDataError(f"{where}: non-numeric value ({exc})", hint="only the first row may hold labels") from exc
    if not rows:
        raise InputDataError(f"{where}: no numeric rows", hint="the file holds only a header")
    widths = {len(r) for r in rows}
    if len(widths) != 1:
        raise InputDataError(f"{where}: rows have different numbers of values {sorted(widths)[:4]}",
                             hint="every row must hold one value per region")
    return np.asarray(rows, dtype=np.float64), header


def _file_subjects(path: Path, *, kind: InputKind, subject: str | None) -> list[Subject]:
    file = str(path)
    if path.is_dir():
        raise InputDataError(f"{file} is a folder", hint="give files or a quoted glob such as 'ts/sub-*.tsv'")
    if path.stat().st_size == 0:
        raise InputDataError(f"{file}: the file is empty", hint="re-create the file")
    k = _sniff(path)
    if k == "text":
        arr, header = read_text_array(path)
        sk = "timeseries" if header and kind == "auto" else _kind_of(arr.shape, kind, None, file)
        return [Subject(subject or _stem_id(file), file, sk, lambda: arr)]
    if k == "npy":
        from ..io._numpy import NpyFileArray, load_npy

        stack = load_npy(path, where=file)
        if stack.ndim == 2:
            return [Subject(subject or _stem_id(file), file, _kind_of(stack.shape, kind, None, file),
                            lambda: np.array(stack))]
        # plain file reads per subject: a long-lived memory map would count every page read in RSS
        return _subjects_from_tree({"data": NpyFileArray(cast(np.memmap, stack), path, where=file)}, file=file,
                                   kind=kind, cube_axis0=True)
    if k == "npz":
        from ..io._numpy import _npz_tree

        try:
            with np.load(path, allow_pickle=False) as npz:
                tree = _npz_tree(npz, where=file)
        except (ValueError, OSError) as exc:
            raise InputDataError(f"{file}: not a readable .npz file ({exc})", hint="re-create the file") from exc
        return _subjects_from_tree(tree, file=file, kind=kind, cube_axis0=True)
    if k == "hdf5":
        from ..io._hdf5 import open_tree

        _, h5tree = open_tree(path, where=file)  # the file stays open while its subjects are read
        subs = _subjects_from_tree(h5tree, file=file, kind=kind, cube_axis0=False)
    else:
        from ..io._mat import load_mat_v5

        subs = _subjects_from_tree(load_mat_v5(path, where=file), file=file, kind=kind, cube_axis0=False)
    if subject is not None and len(subs) == 1:
        subs = [Subject(subject, s.file, s.kind, s.load) for s in subs]
    return subs


def open_inputs(inputs: Sequence[str], *, kind: InputKind = "auto") -> list[Subject]:
    """Every subject of the given files and globs, in order.

    Raises
    ------
    InputDataError
        For missing or unreadable files, globs that match nothing, and subject ids given twice.
    """
    from ..io._glob import _pattern_regex, subject_from_file
    from ..io._paths import is_glob

    subjects: list[Subject] = []
    for raw in inputs:
        path = Path(os.path.expanduser(raw))
        if path.exists():
            subjects += _file_subjects(path, kind=kind, subject=None)
            continue
        if not is_glob(raw):
            raise InputDataError(f"input file {raw} not found", hint="check the path")
        files = sorted(f for f in glob.glob(os.path.expanduser(raw), recursive=True) if os.path.isfile(f))
        if not files:
            raise InputDataError(f"no files match {raw!r}",
                                 hint="check the pattern; quote it so the shell passes it unexpanded")
        regex = _pattern_regex(os.path.expanduser(raw))
        for f in files:
            sid = clean_subject_ids([subject_from_file(f, regex)])[0]
            subjects += _file_subjects(Path(f), kind=kind, subject=sid)
    seen: dict[str, str] = {}
    for s in subjects:
        if s.subject in seen:
            raise InputDataError(f"subject {s.subject} is given twice ({seen[s.subject]} and {s.file})",
                                 hint="give each subject once")
        seen[s.subject] = s.file
    return subjects


# ------------------------------------------------------------------------------------ validation


def load_matrix(subject: Subject, *, force_symmetry: bool) -> F64:
    """One subject's covariance (from a time series) or matrix, validated.

    Raises
    ------
    InputDataError
        For NaN/Inf, non-square matrices, asymmetric matrices (without ``force_symmetry``) and time
        series with fewer than 2 time points; the message names the file and the subject.
    """
    where = subject.where
    x = _float(subject.load(), where)
    if x.ndim != 2:
        raise InputDataError(f"{where}: expected a 2-D array, got shape {x.shape}",
                             hint="each subject is one T x R time series or one R x R matrix")
    if not np.all(np.isfinite(x)):
        bad = int(x.size - np.count_nonzero(np.isfinite(x)))
        raise InputDataError(f"{where}: {bad} values are NaN or Inf", hint="remove or impute missing values first")
    if subject.kind == "timeseries":
        if x.shape[0] < 2:
            raise InputDataError(f"{where}: a time series needs at least 2 time points, got {x.shape[0]}",
                                 hint="time points are rows, regions are columns")
        return covariance(x)
    if x.shape[0] != x.shape[1]:
        raise InputDataError(f"{where}: a matrix must be square, got shape {x.shape}",
                             hint="give R x R matrices, or time series as T x R with --input-kind timeseries")
    if not force_symmetry:
        scale = float(np.max(np.abs(x))) if x.size else 0.0
        asym = float(np.max(np.abs(x - x.T))) if x.size else 0.0
        if scale > 0 and asym > SYMMETRY_RTOL * scale:
            raise InputDataError(f"{where}: the matrix is not symmetric (max |A - A^T| = {asym:.3g})",
                                 hint="add --force-symmetry to use (A + A^T) / 2")
    return x


def read_block(subjects: Sequence[Subject], n_regions: int, *, force_symmetry: bool) -> F64:
    """Validated ``(n, R, R)`` matrices of ``subjects`` (every one must have ``n_regions`` regions)."""
    out = np.empty((len(subjects), n_regions, n_regions))
    for i, s in enumerate(subjects):
        m = load_matrix(s, force_symmetry=force_symmetry)
        if m.shape[0] != n_regions:
            raise InputDataError(f"{s.where}: {m.shape[0]} regions, but the first subject has {n_regions}",
                                 hint="every subject must use the same atlas")
        out[i] = m
    return out
