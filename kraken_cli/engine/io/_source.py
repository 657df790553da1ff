"""Sources over planned arrays: subjects read on demand, converted to edges and validated.

:class:`PlannedSource` reads the subjects asked for from an :class:`~._layout.ArrayLike`,
turns square matrices into strict-upper-triangle edges and checks every chunk it reads
(symmetry, finiteness). :func:`finalize` decides how much is validated when a file is opened.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..connectome import SYMMETRY_RTOL, ArraySource, EdgeSource, FloatArray, check_finite, check_square
from ..errors import InputDataError
from ..flavors import Flavor
from ._layout import EAGER_CHECK_BYTES, SCAN_CHUNK_BYTES, ArrayLike, Layout


def _as_float(x: npt.NDArray[np.generic]) -> FloatArray:
    if x.dtype == np.float32 or x.dtype == np.float64:
        return x.astype(x.dtype, copy=False)  # typed as a float array
    if np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_:
        return x.astype(np.float64)
    raise InputDataError(f"values of type {x.dtype} are not numbers",
                         hint="connectome values must be numeric")


def extract_rows(array: ArrayLike, layout: Layout, start: int, stop: int, *, where: str) -> FloatArray:
    """Validated rows ``start:stop`` of ``(n_subjects, n_features)`` from a planned array."""
    if layout.subject_axis is None:
        block = np.asarray(array.take(0, 0, array.shape[0]))[None]
    else:
        block = np.asarray(array.take(layout.subject_axis, start, stop))
        if layout.subject_axis != 0:
            block = np.moveaxis(block, layout.subject_axis, 0)
    try:
        block = _as_float(block)
    except InputDataError as exc:
        raise InputDataError(f"{where}: {exc.message}", hint=exc.hint) from None
    if layout.kind == "square":
        return square_rows(block, where=where)
    rows = block.reshape(block.shape[0], -1)
    check_finite(rows, where=where)
    if layout.column_order is not None:
        rows = rows[:, layout.column_order]
    return rows


def square_rows(block: FloatArray, *, where: str) -> FloatArray:
    """Validated strict upper triangles ``(n, n_edges)`` of ``[n x R x R]`` matrices, in one pass.

    One gather takes the upper and the lower triangle of every subject (MATLAB's column-major
    arrays are read along their memory order); finiteness (the diagonal is dropped, NaN there is
    fine) and symmetry are checked on those in bulk, with the messages of
    :func:`~kraken_cli.engine.connectome.check_finite` and :func:`~kraken_cli.engine.connectome.check_square`.
    """
    if block.ndim != 3 or block.shape[1] != block.shape[2]:
        check_square(block, where=where)  # raises: not square
    n, r = block.shape[0], block.shape[-1]
    iu0, iu1 = np.triu_indices(r, 1)
    column_major = block.flags.f_contiguous and not block.flags.c_contiguous
    if column_major:  # block.T is [R x R x n] in C order: one row of n values per matrix entry
        flat = block.T.reshape(r * r, n)
        upper, lower = np.take(flat, iu1 * r + iu0, axis=0), np.take(flat, iu0 * r + iu1, axis=0)
    else:
        flat = np.ascontiguousarray(block).reshape(n, r * r)
        upper, lower = np.take(flat, iu0 * r + iu1, axis=1), np.take(flat, iu1 * r + iu0, axis=1)
    if not (np.isfinite(upper).all() and np.isfinite(lower).all()):
        check_finite(np.where(~np.eye(r, dtype=bool), block, 0.0), where=where)
    scale = max(float(np.abs(upper).max(initial=0.0)), float(np.abs(lower).max(initial=0.0)),
                float(np.fmax.reduce(np.abs(np.diagonal(block, axis1=1, axis2=2)), axis=None, initial=0.0)))
    if scale > 0 and np.isfinite(scale):
        asym = float(np.abs(upper - lower).max(initial=0.0))
        if asym > SYMMETRY_RTOL * scale:
            raise InputDataError(
                f"{where}: matrices are not symmetric (max |A - A^T| = {asym:.3g})",
                hint="connectomes must be symmetric; symmetrize with (A + A.T) / 2 if this is expected")
    del lower
    return np.ascontiguousarray(upper.T) if column_major else upper


class PlannedSource:
    """An :class:`~kraken_cli.engine.connectome.EdgeSource` reading a planned array on demand.

    Parameters
    ----------
    flavor, file, subjects
        As in :class:`~kraken_cli.engine.connectome.EdgeSource`.
    array : ArrayLike
        Where the values are.
    layout : Layout
        From :func:`plan_layout`.
    keep : ndarray of int or None
        Rows of the array to expose (e.g. after dropping ``ismissing`` subjects).
    owner : object
        Anything that must stay alive while the source is read (an open file).
    """

    def __init__(self, flavor: Flavor, file: str, subjects: list[str] | None, array: ArrayLike,
                 layout: Layout, *, keep: npt.NDArray[np.intp] | None = None, owner: object = None) -> None:
        self.flavor = flavor
        self.file = file
        self.subjects = subjects
        self.array = array
        self.layout = layout
        self.keep = keep
        self._owner = owner

    @property
    def where(self) -> str:
        return f"{self.file} ({self.flavor.name})"

    @property
    def n_subjects(self) -> int:
        return int(self.keep.size) if self.keep is not None else self.layout.n_subjects

    @property
    def n_features(self) -> int:
        return self.layout.n_features

    @property
    def nbytes(self) -> int:
        """Bytes of the underlying array (an estimate of a full read)."""
        return int(np.prod(self.array.shape)) * max(int(self.array.dtype.itemsize), 1)

    def read(self, start: int, stop: int) -> FloatArray:
        """Rows ``start:stop`` as a validated (n, n_features) float array."""
        start = max(0, start)
        stop = min(stop, self.n_subjects)
        if stop <= start:
            return np.zeros((0, self.n_features), dtype=np.float64)
        if self.keep is None:
            return extract_rows(self.array, self.layout, start, stop, where=self.where)
        sel = self.keep[start:stop]
        lo, hi = int(sel.min()), int(sel.max()) + 1
        return extract_rows(self.array, self.layout, lo, hi, where=self.where)[sel - lo]

    def chunk_size(self) -> int:
        """Subjects per chunk so that one chunk is about :data:`SCAN_CHUNK_BYTES`."""
        per = max(1, self.nbytes // max(self.layout.n_subjects, 1))
        return max(1, SCAN_CHUNK_BYTES // per)

    def validate_all(self) -> None:
        """Read (and so validate) every subject, chunk by chunk."""
        step = self.chunk_size()
        for i in range(0, self.n_subjects, step):
            self.read(i, i + step)


def finalize(src: PlannedSource, *, in_memory: bool) -> EdgeSource:
    """Validate a planned source and return what callers get.

    In-memory data become an :class:`ArraySource` of edges (converted once). Lazy data stay
    lazy; they are validated in full now when small (:data:`EAGER_CHECK_BYTES`), else the first
    chunk now and every chunk as it is read. Edge rows are first put in kraken's order
    (``--edge-order``) or checked for a scrambled order (:mod:`._edge_order`).
    """
    from ._edge_order import apply_edge_order

    src = apply_edge_order(src)
    if in_memory:
        return ArraySource(src.flavor, src.read(0, src.n_subjects), src.file, src.subjects)
    if src.nbytes <= EAGER_CHECK_BYTES:
        src.validate_all()
    else:
        src.read(0, src.chunk_size())
    return src

