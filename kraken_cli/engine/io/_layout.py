"""Array layouts: which axis holds subjects, square matrices vs edge rows, ``trimask`` orders.

Every reader turns what it found into an :class:`ArrayLike` (a numpy array, a memory map, an
HDF5 dataset seen in MATLAB orientation, or a stack of cells) and plans its layout once with
:func:`plan_layout`; :mod:`._source` then reads subjects on demand.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from ..connectome import is_symmetric, n_edges, n_regions_from_edges
from ..errors import InputDataError
from ..flavors import Flavor

log = logging.getLogger(__name__)

#: Sources whose data take at most this many bytes are validated in full when opened;
#: larger (lazy) sources are validated chunk by chunk as they are read.
EAGER_CHECK_BYTES = 256 * 2**20
#: Bytes per chunk when a reader scans a lazy source.
SCAN_CHUNK_BYTES = 64 * 2**20
#: No connectome has more values per subject than this (a 20,000-region matrix has 4e8).
MAX_VALUES_PER_SUBJECT = 4 * 10**8


class ArrayLike(Protocol):
    """An array that can be sliced along one axis without loading the rest."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    @property
    def dtype(self) -> np.dtype[np.generic]: ...

    def take(self, axis: int, start: int, stop: int) -> npt.NDArray[np.generic]:
        """Elements ``start:stop`` along ``axis`` (all of every other axis)."""
        ...


class NumpyArray:
    """:class:`ArrayLike` over an in-memory array or a ``numpy.memmap``."""

    def __init__(self, array: npt.NDArray[np.generic], *, in_memory: bool = True) -> None:
        self.array = array
        self.in_memory = in_memory

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(s) for s in self.array.shape)

    @property
    def dtype(self) -> np.dtype[np.generic]:
        return self.array.dtype

    def take(self, axis: int, start: int, stop: int) -> npt.NDArray[np.generic]:
        index: list[slice] = [slice(None)] * self.array.ndim
        index[axis] = slice(start, stop)
        part = self.array[tuple(index)]
        return np.asarray(part) if self.in_memory else np.array(part)  # no views into a memory map


@dataclass(frozen=True)
class Layout:
    """Where the subjects are in an array and what each holds.

    Attributes
    ----------
    kind : {"square", "rows"}
        R x R matrices, or rows of values (edges or latents).
    subject_axis : int or None
        Axis of the array that indexes subjects; None for a single subject.
    n_subjects : int
    n_features : int
        Values per subject after conversion (edges for square matrices).
    column_order : ndarray of shape (n_features,) or None
        For rows given with a ``trimask``: column ``k`` of the output is input column
        ``column_order[k]`` (None when already in ``triu_indices`` order).
    """

    kind: Literal["square", "rows"]
    subject_axis: int | None
    n_subjects: int
    n_features: int
    column_order: npt.NDArray[np.intp] | None = None


def _is_symmetric(mat: npt.NDArray[np.generic]) -> bool:
    m = np.asarray(mat, dtype=np.float64)
    return m.ndim == 2 and is_symmetric(m)


def _triangular(n: int) -> bool:
    return n > 1 and n_regions_from_edges(n) is not None


def trimask_order(pairs: tuple[npt.NDArray[np.integer], npt.NDArray[np.integer]], *,
                  where: str) -> npt.NDArray[np.intp] | None:
    """Column permutation that puts edges given as (row, col) pairs into ``triu_indices`` order.

    Parameters
    ----------
    pairs : tuple of two int arrays of shape (n_edges,)
        0-based row and column of each data column (either triangle; the diagonal is refused).
    where : str
        File and flavor, for messages.

    Returns
    -------
    ndarray of shape (n_edges,) or None
        None when the pairs already follow ``numpy.triu_indices(R, 1)``.

    Raises
    ------
    InputDataError
        When the pairs do not cover the strict upper triangle exactly once.
    """
    rows = np.asarray(pairs[0], dtype=np.int64).ravel()
    cols = np.asarray(pairs[1], dtype=np.int64).ravel()
    hint = "trimask must list every pair (i, j), i < j, of an R x R matrix once (0-based)"
    if rows.size != cols.size or rows.size == 0:
        raise InputDataError(f"{where}: trimask has {rows.size} rows and {cols.size} columns", hint=hint)
    if rows.min() < 0 or cols.min() < 0 or np.any(rows == cols):
        raise InputDataError(f"{where}: trimask holds negative or diagonal indices", hint=hint)
    lo, hi = np.minimum(rows, cols), np.maximum(rows, cols)
    r = int(hi.max()) + 1
    if rows.size != n_edges(r):
        raise InputDataError(
            f"{where}: trimask lists {rows.size} edges, but its largest index implies {r} regions "
            f"({n_edges(r)} edges)", hint=hint)
    lin = lo * r - lo * (lo + 1) // 2 + (hi - lo - 1)
    if np.unique(lin).size != lin.size:
        raise InputDataError(f"{where}: trimask lists some edges twice", hint=hint)
    if np.array_equal(lin, np.arange(lin.size)):
        return None
    return np.argsort(lin).astype(np.intp)


def check_real_dtype(dtype: np.dtype[Any] | None, *, where: str) -> None:
    """Refuse complex (its imaginary part would be dropped silently), text and object data."""
    if dtype is None:
        return
    dtype = np.dtype(dtype)
    if dtype.kind == "c":
        raise InputDataError(f"{where}: the data are complex numbers ({dtype}); connectomes are real",
                             hint="save the real values (e.g. numpy.real, or abs for magnitudes) and try again")
    if dtype.kind not in "biuf":
        raise InputDataError(f"{where}: the data are not numbers (dtype {dtype})",
                             hint="give numeric [subjects x edges] rows or R x R matrices")


def plan_layout(
    array: ArrayLike,
    *,
    where: str,
    flavor: Flavor,
    n_ids: int | None = None,
    trimask: tuple[npt.NDArray[np.integer], npt.NDArray[np.integer]] | None = None,
    cells: bool = False,
) -> Layout:
    """Decide how an array holds subjects (never guessing between equally valid readings).

    Parameters
    ----------
    array : ArrayLike
        Data in numpy / MATLAB orientation.
    where : str
        File and flavor, for messages.
    flavor : Flavor
        Latent flavors are rows ``(n_subjects, n_latent)``; connectome flavors with a known
        atlas disambiguate orientations by their region count.
    n_ids : int or None
        Number of subject ids found beside the data, when any.
    trimask : tuple of two int arrays or None
        (row, col) of each column of ``[S x E]`` data.
    cells : bool
        True when axis 0 stacks cells (one subject each).

    Raises
    ------
    InputDataError
        For empty or unsupported shapes and for ambiguous [R x R x R] arrays.
    """
    shape = array.shape
    check_real_dtype(getattr(array, "dtype", None), where=where)
    _check_shape(shape, where)
    if len(shape) == 1:
        return Layout("rows", None, 1, shape[0])
    if flavor.is_latent:
        return _plan_latent(shape, where=where, n_ids=n_ids)
    if trimask is not None:
        return _plan_trimask(shape, trimask, where=where)
    if len(shape) == 2:
        return _plan_2d(array, where=where, n_ids=n_ids, cells=cells, n_regions=flavor.n_regions)
    return _plan_3d(array, where=where, cells=cells)


def _check_shape(shape: tuple[int, ...], where: str) -> None:
    """Refuse scalars, empty arrays, absurd sizes and more than three dimensions."""
    if len(shape) == 0:
        raise InputDataError(f"{where}: holds a single number, not connectomes",
                             hint="give [subjects x edges] rows or R x R matrices")
    if any(s == 0 for s in shape):
        raise InputDataError(f"{where}: the data array is empty (shape {shape})",
                             hint="the file holds no connectomes")
    if min(math.prod(shape[1:]), math.prod(shape[:-1])) > MAX_VALUES_PER_SUBJECT:
        raise InputDataError(f"{where}: shape {shape} is far larger than any connectome",
                             hint="the file may be corrupt or crafted")
    if len(shape) > 3:
        raise InputDataError(f"{where}: {len(shape)}-D arrays are not connectomes (shape {shape})",
                             hint="give [subjects x R x R], MATLAB [R x R x subjects] or [subjects x edges]")


def _plan_latent(shape: tuple[int, ...], *, where: str, n_ids: int | None) -> Layout:
    """Latent rows ``[subjects x latent]`` (transposed only when the ids say so)."""
    if len(shape) != 2:
        raise InputDataError(f"{where}: latent input must be [subjects x latent], got shape {shape}",
                             hint="encoded/fusion inputs are 2-D arrays of latent vectors")
    a, b = shape
    if n_ids is not None and b == n_ids and a != n_ids:
        return Layout("rows", 1, b, a)
    return Layout("rows", 0, a, b)


def _plan_trimask(shape: tuple[int, ...], trimask: tuple[npt.NDArray[np.integer], npt.NDArray[np.integer]], *,
                  where: str) -> Layout:
    """Edge rows whose columns a ``trimask`` names: the axis with one entry per edge is the edge axis."""
    order = trimask_order(trimask, where=where)
    e = int(np.asarray(trimask[0]).size)
    if len(shape) == 2 and shape[1] == e:
        return Layout("rows", 0, shape[0], e, order)
    if len(shape) == 2 and shape[0] == e:
        return Layout("rows", 1, shape[1], e, order)
    raise InputDataError(f"{where}: trimask lists {e} edges but the data has shape {shape}",
                         hint="with a trimask the data must be [subjects x edges]")


def _plan_2d(array: ArrayLike, *, where: str, n_ids: int | None, cells: bool, n_regions: int | None) -> Layout:
    """A 2-D array: one square matrix, cells of edge rows, or edge rows on either axis."""
    a, b = array.shape
    if a == b and not cells:
        return _plan_square_2d(array, where=where, n_ids=n_ids)
    if cells:
        return Layout("rows", 0, a, b)
    expected_e = None if n_regions is None else n_edges(n_regions)
    if n_ids is not None and b == n_ids and a != n_ids:
        axis = 1
    elif n_ids is not None and a == n_ids:
        axis = 0
    elif expected_e is not None:
        axis = 1 if (a == expected_e and b != expected_e) else 0
    else:
        axis = 1 if (not _triangular(b) and _triangular(a)) else 0
    if axis == 1:
        log.info("%s: reading shape %s as [edges x subjects]", where, array.shape)
        return Layout("rows", 1, b, a)
    return Layout("rows", 0, a, b)


def _plan_3d(array: ArrayLike, *, where: str, cells: bool) -> Layout:
    """A stack of square matrices: ``[subjects x R x R]``, MATLAB's ``[R x R x subjects]`` or cells."""
    a, b, c = array.shape
    if cells:
        if b != c:
            raise InputDataError(f"{where}: cells hold {b} x {c} matrices, which are not square",
                                 hint="each cell must be one subject's R x R matrix")
        return Layout("square", 0, a, n_edges(b))
    candidates = []
    if b == c:
        candidates.append(0)
    if a == b:
        candidates.append(2)
    if not candidates:
        raise InputDataError(
            f"{where}: 3-D array of shape {array.shape} is neither [subjects x R x R] nor MATLAB's "
            "[R x R x subjects]", hint="store one R x R matrix per subject")
    axis = _disambiguate_cube(array, where=where) if len(candidates) == 2 else candidates[0]
    n_sub = a if axis == 0 else c
    return Layout("square", axis, n_sub, n_edges(b))


def _plan_square_2d(array: ArrayLike, *, where: str, n_ids: int | None) -> Layout:
    a = array.shape[0]
    if n_ids is None or n_ids == 1 or a == 1:
        return Layout("square", None, 1, n_edges(a))
    if n_ids == a and _triangular(a):
        mat = array.take(0, 0, a)
        if _is_symmetric(mat):
            raise InputDataError(
                f"{where}: a symmetric {a} x {a} array with {n_ids} subject ids could be one subject's "
                f"matrix or {a} subjects x {a} edges",
                hint="save [subjects x edges] data with a trimask, or one matrix per file")
        return Layout("rows", 0, a, a)
    return Layout("square", None, 1, n_edges(a))


def _symmetric_along(array: ArrayLike, axis: int, indices: list[int] | None = None) -> bool:
    """True when every matrix (or those at ``indices``) taken along ``axis`` is symmetric."""
    n = array.shape[axis]
    if indices is not None:
        return all(_is_symmetric(np.squeeze(array.take(axis, i, i + 1), axis=axis)) for i in indices)
    step = max(1, SCAN_CHUNK_BYTES // max(1, array.shape[0] ** 2 * array.dtype.itemsize))
    for i in range(0, n, step):
        block = np.moveaxis(np.asarray(array.take(axis, i, min(n, i + step))), axis, 0)
        if not all(_is_symmetric(m) for m in block):
            return False
    return True


def _disambiguate_cube(array: ArrayLike, *, where: str) -> int:
    """Subject axis (0 or 2) of an [R x R x R] array, from which reading gives symmetric matrices.

    When both readings give symmetric matrices for every subject the array is fully symmetric
    and both readings are identical, so axis 0 is returned.
    """
    n = array.shape[0]
    samples = sorted({0, n // 2, n - 1})
    sym = {axis: _symmetric_along(array, axis, samples) for axis in (0, 2)}
    if sym[0] == sym[2] and sym[0]:
        nbytes = n ** 3 * array.dtype.itemsize
        if nbytes > EAGER_CHECK_BYTES:
            raise InputDataError(
                f"{where}: shape {array.shape} is ambiguous: subjects could be on the first or the last axis",
                hint="store subjects on the first axis ([subjects x R x R]) or save [subjects x edges] rows")
        sym = {axis: _symmetric_along(array, axis) for axis in (0, 2)}
        if sym[0] and sym[2]:
            return 0
    if sym[0] != sym[2]:
        axis = 0 if sym[0] else 2
        log.info("%s: [R x R x R] array read with subjects on axis %d (symmetric that way)", where, axis)
        return axis
    raise InputDataError(
        f"{where}: shape {array.shape} gives non-symmetric matrices with subjects on either the first "
        "or the last axis", hint="connectomes must be symmetric; store them as [subjects x R x R]")
