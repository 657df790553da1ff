"""Edge orders of ``[subjects x edges]`` rows, and the guard against silently scrambled edges.

kraken's edge vectors are the strict upper triangle in row-major ``numpy.triu_indices(R, 1)``
order (UPSTREAM 9.3). nilearn's ``ConnectivityMeasure(vectorize=True)`` (``sym_matrix_to_vec``)
stores the *lower* triangle in row-major order: ``(1,0), (2,0), (2,1), (3,0), ...``; with
``discard_diagonal=False`` (its default) the diagonal is kept, ``(0,0), (1,0), (1,1), ...``, and
divided by sqrt(2). For R >= 4 the two orders differ, so reading one as the other scrambles the
edges without any size error.

``--edge-order nilearn`` (:func:`reading_edge_order`) reorders such rows (dropping the diagonal).
Without it, :func:`guard_scramble` refuses rows that are detectably in nilearn's order: the
sqrt(2)-scaled unit diagonal of a vectorized correlation matrix, or correlation matrices that are
positive semi-definite only when read in nilearn's order. Other nilearn vectors (partial
correlations or covariances without their diagonal) cannot be told apart: see the README.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import replace
from typing import TYPE_CHECKING, get_args

import numpy as np
import numpy.typing as npt

from ..choices import EdgeOrder
from ..connectome import n_edges, n_regions_from_edges
from ..errors import InputDataError, check_choice

if TYPE_CHECKING:
    from ._source import PlannedSource

log = logging.getLogger(__name__)

#: Values of ``--edge-order``.
EDGE_ORDERS: tuple[str, ...] = get_args(EdgeOrder)
_ORDER: ContextVar[str] = ContextVar("kraken_edge_order", default="triu")
_NILEARN_HINT = ("nilearn's ConnectivityMeasure(vectorize=True) stores the lower triangle: read it with "
                 "--edge-order nilearn, or save the [subjects x R x R] matrices (vectorize=False) instead")
#: Subjects sampled by the scramble guard.
GUARD_SUBJECTS = 3
#: Largest R the positive-semidefinite test runs for (an eigen-decomposition per sampled subject).
GUARD_MAX_REGIONS = 1000


def check_edge_order(order: str) -> str:
    """``order`` when it is one of :data:`EDGE_ORDERS`, else a usage error."""
    return check_choice(order, EDGE_ORDERS, option="--edge-order",
                        hint="triu: kraken's numpy.triu_indices(R, 1) order; "
                             "nilearn: ConnectivityMeasure(vectorize=True)")


@contextlib.contextmanager
def reading_edge_order(order: str) -> Iterator[None]:
    """Read ``[subjects x edges]`` rows in ``order`` while the context is open."""
    token = _ORDER.set(check_edge_order(order))
    try:
        yield
    finally:
        _ORDER.reset(token)


def current_edge_order() -> str:
    return _ORDER.get()


def nilearn_columns(n_regions: int, *, diagonal: bool) -> npt.NDArray[np.intp]:
    """Column ``k`` of kraken's edge order is column ``out[k]`` of nilearn's vector.

    >>> nilearn_columns(4, diagonal=False).tolist(), nilearn_columns(3, diagonal=True).tolist()
    ([0, 1, 3, 2, 4, 5], [1, 3, 4])
    """
    r = n_regions
    pos = np.full((r, r), -1, dtype=np.intp)
    lo = np.tril_indices(r, 0 if diagonal else -1)  # row-major, as nilearn's boolean mask
    pos[lo] = np.arange(lo[0].size)
    iu = np.triu_indices(r, 1)
    return pos[iu[1], iu[0]]


def nilearn_diagonal_columns(n_regions: int) -> npt.NDArray[np.intp]:
    """Positions of the diagonal in a nilearn vector kept with its diagonal: 0, 2, 5, 9, ..."""
    i = np.arange(n_regions)
    return (i * (i + 3) // 2).astype(np.intp)


def _nilearn_regions(src: PlannedSource, width: int) -> tuple[int, bool]:
    """(R, diagonal kept) of nilearn vectors ``width`` long."""
    where = src.where
    r_tri = n_regions_from_edges(width)
    if r_tri is None:
        raise InputDataError(f"{where}: {width} values per subject is not a vectorized R x R matrix",
                             hint="nilearn vectors hold R(R-1)/2 values, or R(R+1)/2 with the diagonal")
    known = src.flavor.n_regions
    if known is not None:
        if known == r_tri:
            return known, False
        if known == r_tri - 1:
            return known, True
        raise InputDataError(
            f"{where}: {width} values per subject fit neither {n_edges(known)} ({known} regions) nor "
            f"{n_edges(known + 1)} (with the diagonal) of atlas {src.flavor.atlas}",
            hint="check the flavor's atlas, or that the file holds nilearn vectors")
    sample = np.asarray(src.read(0, min(src.n_subjects, GUARD_SUBJECTS)))
    diag = sample[:, nilearn_diagonal_columns(r_tri - 1)]
    if np.ptp(diag) <= 1e-6 * max(1.0, float(np.abs(diag).max())) and np.any(diag != 0):
        return r_tri - 1, True
    if np.all(diag == 0):
        raise InputDataError(f"{where}: cannot tell whether these nilearn vectors keep the diagonal",
                             hint="name a flavor whose atlas has a known size (e.g. fs86), so the edge count decides")
    return r_tri, False


def apply_edge_order(src: PlannedSource) -> PlannedSource:
    """Reorder (``--edge-order nilearn``) or guard (default) a source of edge rows, in place."""
    if src.flavor.is_latent or src.layout.kind != "rows":
        return src
    if current_edge_order() == "triu":
        guard_scramble(src)
        return src
    if src.layout.column_order is not None:
        raise InputDataError(f"{src.where}: the file's trimask already gives the edge order",
                             hint="drop --edge-order nilearn for this input")
    r, diagonal = _nilearn_regions(src, src.layout.n_features)
    cols = nilearn_columns(r, diagonal=diagonal)
    log.info("%s: read in nilearn's edge order (%d regions, diagonal %s)", src.where, r,
             "dropped" if diagonal else "absent")
    src.layout = replace(src.layout, n_features=int(cols.size), column_order=cols)
    return src


def _min_eig(edges: npt.NDArray[np.floating], cols: npt.NDArray[np.intp] | None, r: int) -> float:
    mat = np.eye(r)
    iu = np.triu_indices(r, 1)
    vals = edges if cols is None else edges[cols]
    mat[iu] = vals
    mat[iu[1], iu[0]] = vals
    return float(np.linalg.eigvalsh(mat)[0])


def guard_scramble(src: PlannedSource) -> None:
    """Refuse edge rows in triu order that are detectably nilearn vectors.

    Raises
    ------
    InputDataError
        When the sampled rows hold 1/sqrt(2) at every diagonal position of a nilearn vector kept
        with its diagonal, or are correlation matrices that are positive semi-definite in nilearn's
        order but not in kraken's.
    """
    if src.layout.column_order is not None:
        return
    width = src.layout.n_features
    r = n_regions_from_edges(width)
    if r is None or r < 4:
        return
    rows = np.asarray(src.read(0, min(src.n_subjects, GUARD_SUBJECTS)), dtype=np.float64)
    if rows.size == 0 or not np.isfinite(rows).all():
        return
    diag = rows[:, nilearn_diagonal_columns(r - 1)]
    if np.allclose(diag, 1 / math.sqrt(2), rtol=0, atol=1e-5):
        raise InputDataError(
            f"{src.where}: the rows look like nilearn vectors kept with their diagonal (1/sqrt(2) = 0.7071 "
            "at every diagonal position), not kraken's upper-triangle edges", hint=_NILEARN_HINT)
    if r > GUARD_MAX_REGIONS or np.abs(rows).max() > 1:
        return
    cols = nilearn_columns(r, diagonal=False)
    tol = -1e-6 * r
    if all(_min_eig(row, None, r) < tol and _min_eig(row, cols, r) >= tol for row in rows):
        raise InputDataError(
            f"{src.where}: the edges are not a valid correlation matrix in kraken's upper-triangle order, "
            "but are in nilearn's lower-triangle order", hint=_NILEARN_HINT)
