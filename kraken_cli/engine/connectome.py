"""Connectome arrays: upper triangle <-> square, edge counts, and the :class:`Cohort`.

Edge vectors are the strict upper triangle in row-major ``numpy.triu_indices(R, 1)`` order
(UPSTREAM 9.3). Subjects are always axis 0: arrays are ``(n_subjects, n_edges)``.

A :class:`Cohort` holds one :class:`EdgeSource` per flavor plus the subject ids they share.
Sources read rows on demand (``read(start, stop)``), so a cohort of 10,000 subjects can be
processed chunk by chunk without holding every matrix in memory.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from .errors import InputDataError
from .flavors import Flavor

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.floating]

#: Largest |A - A^T| (relative to max |A|) accepted as "symmetric".
SYMMETRY_RTOL = 1e-4


def n_edges(n_regions: int) -> int:
    """Strict-upper-triangle edge count of an R x R matrix: R(R-1)/2."""
    return n_regions * (n_regions - 1) // 2


def n_regions_from_edges(n: int) -> int | None:
    """R such that R(R-1)/2 == n, or None when n is not a triangular count.

    >>> n_regions_from_edges(3655), n_regions_from_edges(3654)
    (86, None)
    """
    r = round((1 + math.sqrt(1 + 8 * n)) / 2)
    return r if r * (r - 1) // 2 == n and r > 1 else None


def square_to_tri(mats: FloatArray) -> FloatArray:
    """Strict upper triangles of square matrices.

    Parameters
    ----------
    mats : ndarray of shape (n_regions, n_regions) or (n_subjects, n_regions, n_regions)

    Returns
    -------
    ndarray of shape (n_edges,) or (n_subjects, n_edges)
    """
    r = mats.shape[-1]
    iu = np.triu_indices(r, 1)
    return mats[..., iu[0], iu[1]]


def tri_to_square(tri: FloatArray, *, diagonal: float = 0.0) -> FloatArray:
    """Symmetric square matrices from edge vectors (inverse of :func:`square_to_tri`).

    Parameters
    ----------
    tri : ndarray of shape (n_edges,) or (n_subjects, n_edges)
    diagonal : float
        Value put on the diagonal (the original's run_model uses NaN).
    """
    r = n_regions_from_edges(tri.shape[-1])
    if r is None:
        raise InputDataError(f"{tri.shape[-1]} values are not the upper triangle of any square matrix")
    out = np.full(tri.shape[:-1] + (r, r), diagonal, dtype=tri.dtype)
    iu = np.triu_indices(r, 1)
    out[..., iu[0], iu[1]] = tri
    out[..., iu[1], iu[0]] = tri
    return out


def _max_abs(mats: npt.NDArray[np.generic]) -> float:
    """Largest |value| (NaN ignored; 0 for an empty array): the scale of the symmetry tolerance."""
    return float(np.nanmax(np.abs(mats))) if mats.size else 0.0


def max_asymmetry(mats: npt.NDArray[np.generic]) -> float:
    """Largest |A - A^T| over matrices ``(..., R, R)`` (NaN ignored)."""
    return float(np.nanmax(np.abs(mats - np.swapaxes(mats, -1, -2))))


def is_symmetric(mats: npt.NDArray[np.generic]) -> bool:
    """True when ``mats`` ``(..., R, R)`` are square and max |A - A^T| <= :data:`SYMMETRY_RTOL` x max |A|.

    All-zero matrices are symmetric; matrices with an infinite value are not.
    """
    if mats.ndim < 2 or mats.shape[-1] != mats.shape[-2]:
        return False
    scale = _max_abs(mats)
    if not np.isfinite(scale):
        return False
    if scale == 0:
        return True
    return bool(max_asymmetry(mats) <= SYMMETRY_RTOL * scale)


def check_square(mats: FloatArray, *, where: str) -> None:
    """Raise InputDataError unless ``mats`` (..., R, R) are square and symmetric."""
    if mats.ndim < 2 or mats.shape[-1] != mats.shape[-2]:
        raise InputDataError(f"{where}: expected square connectivity matrices, got shape {mats.shape}",
                             hint="give R x R matrices, or rows of upper-triangle edge vectors")
    scale = _max_abs(mats)
    if scale > 0 and mats.size:
        asym = max_asymmetry(mats)
        if asym > SYMMETRY_RTOL * scale:
            raise InputDataError(
                f"{where}: matrices are not symmetric (max |A - A^T| = {asym:.3g})",
                hint="connectomes must be symmetric; symmetrize with (A + A.T) / 2 if this is expected")


def check_finite(x: FloatArray, *, where: str) -> None:
    """Raise InputDataError when ``x`` holds NaN or Inf."""
    if not np.all(np.isfinite(x)):
        bad = int(np.size(x) - np.count_nonzero(np.isfinite(x)))
        raise InputDataError(f"{where}: {bad} values are NaN or Inf",
                             hint="remove or impute missing edges before running kraken")


def clean_subject_ids(ids: Sequence[object]) -> list[str]:
    """Subject ids as stripped strings; ``100206.0`` becomes ``100206``, leading zeros are kept."""
    out = []
    for s in ids:
        if isinstance(s, (float, np.floating)) and float(s).is_integer():
            out.append(str(int(s)))
            continue
        if isinstance(s, bytes):
            s = s.decode()
        t = str(s).strip()
        if t.endswith(".0") and t[:-2].lstrip("-").isdigit():
            t = t[:-2]
        out.append(t)
    return out


class EdgeSource(Protocol):
    """Rows of one flavor from one file, readable in chunks."""

    flavor: Flavor
    file: str
    subjects: list[str] | None

    @property
    def n_subjects(self) -> int: ...

    @property
    def n_features(self) -> int: ...

    def read(self, start: int, stop: int) -> FloatArray:
        """Rows ``start:stop`` as an (n, n_features) float array (edges or latents)."""
        ...


@dataclass
class ArraySource:
    """An in-memory :class:`EdgeSource`."""

    flavor: Flavor
    data: FloatArray
    file: str = "<array>"
    subjects: list[str] | None = None

    @property
    def n_subjects(self) -> int:
        return int(self.data.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.data.shape[1])

    def read(self, start: int, stop: int) -> FloatArray:
        return self.data[start:stop]


def validate_source(src: EdgeSource) -> None:
    """Check a source's edge count against its flavor's atlas and its ids against its rows."""
    where = f"{src.file} ({src.flavor.name})"
    if src.n_subjects == 0:
        raise InputDataError(f"{where}: no subjects", hint="the file holds no connectomes")
    expected = src.flavor.n_edges
    if not src.flavor.is_latent and expected is not None and src.n_features != expected:
        got_r = n_regions_from_edges(src.n_features)
        got = f"{src.n_features} edges" + (f" ({got_r} regions)" if got_r else "")
        raise InputDataError(
            f"{where}: expected {expected} edges for atlas {src.flavor.atlas} "
            f"({src.flavor.n_regions} regions), got {got}",
            hint="check that the file matches the flavor name given with -i FLAVOR=PATH")
    if not src.flavor.is_latent and expected is None and n_regions_from_edges(src.n_features) is None:
        raise InputDataError(f"{where}: {src.n_features} values per subject fit no square matrix",
                             hint="edge vectors must be the strict upper triangle of an R x R matrix")
    if src.subjects is not None:
        if len(src.subjects) != src.n_subjects:
            raise InputDataError(f"{where}: {len(src.subjects)} subject ids for {src.n_subjects} rows")
        if len(set(src.subjects)) != len(src.subjects):
            dup = sorted({s for s in src.subjects if src.subjects.count(s) > 1})[:5]
            raise InputDataError(f"{where}: duplicate subject ids {dup}",
                                 hint="each subject may appear once per flavor")


@dataclass
class Cohort:
    """Subjects x flavors: one :class:`EdgeSource` per flavor, aligned on subject ids.

    ``rows[flavor]`` maps cohort row i to the source's row (None = same order).
    """

    sources: dict[str, EdgeSource]
    subjects: list[str]
    rows: dict[str, npt.NDArray[np.intp] | None] = field(default_factory=dict)

    @property
    def flavors(self) -> list[str]:
        """Flavor names in input order."""
        return list(self.sources)

    @property
    def n_subjects(self) -> int:
        return len(self.subjects)

    def read(self, flavor: str, start: int = 0, stop: int | None = None) -> FloatArray:
        """Rows ``start:stop`` (cohort order) of one flavor."""
        stop = self.n_subjects if stop is None else min(stop, self.n_subjects)
        src = self.sources[flavor]
        idx = self.rows.get(flavor)
        if idx is None:
            return np.asarray(src.read(start, stop))
        sel = idx[start:stop]
        if sel.size == 0:
            return np.asarray(src.read(0, 0))
        lo, hi = int(sel.min()), int(sel.max()) + 1
        return np.asarray(src.read(lo, hi))[sel - lo]

    def arrays(self) -> dict[str, FloatArray]:
        """Every flavor fully in memory (small cohorts, training)."""
        return {f: self.read(f) for f in self.sources}

    def subset(self, subjects: Sequence[str]) -> Cohort:
        """A cohort restricted (and reordered) to ``subjects``."""
        pos = {s: i for i, s in enumerate(self.subjects)}
        missing = [s for s in subjects if s not in pos]
        if missing:
            raise InputDataError(f"{len(missing)} requested subjects are not in the inputs, e.g. {missing[:5]}",
                                 hint="check --subjects / the split file against the input subject ids")
        want = np.array([pos[s] for s in subjects], dtype=np.intp)
        rows: dict[str, npt.NDArray[np.intp] | None] = {}
        for f in self.sources:
            base = self.rows.get(f)
            rows[f] = want if base is None else base[want]
        return Cohort(dict(self.sources), list(subjects), rows)


def align_sources(sources: Sequence[EdgeSource]) -> Cohort:
    """Build a :class:`Cohort`, matching subjects by id in the first input's order.

    Rules (DESIGN 3.1): sources with ids are matched by id; a source without ids is aligned by
    position when counts match (with a warning); without any ids subjects are ``1, 2, ...``.
    Differing id sets are an error listing a few differences.
    """
    if not sources:
        raise InputDataError("no inputs given", hint="give at least one -i FLAVOR=PATH")
    by_name: dict[str, EdgeSource] = {}
    for s in sources:
        validate_source(s)
        if s.flavor.name in by_name:
            raise InputDataError(f"flavor {s.flavor.name} is given twice "
                                 f"({by_name[s.flavor.name].file} and {s.file})",
                                 hint="give each flavor once")
        by_name[s.flavor.name] = s
    with_ids = [s for s in sources if s.subjects is not None]
    ref = with_ids[0] if with_ids else None
    n = (ref or sources[0]).n_subjects
    subjects = list(ref.subjects) if ref is not None and ref.subjects is not None \
        else [str(i + 1) for i in range(n)]
    rows: dict[str, npt.NDArray[np.intp] | None] = {}
    ref_set = set(subjects)
    for s in sources:
        if s.subjects is None:
            if s.n_subjects != n:
                raise InputDataError(
                    f"{s.file} ({s.flavor.name}) has {s.n_subjects} subjects and no ids, "
                    f"but {(ref or sources[0]).file} has {n}",
                    hint="add a 'subjects' field, or give files with the same subjects in the same order")
            if ref is not None:
                log.warning("%s has no subject ids: aligned with %s by position", s.file, ref.file)
            rows[s.flavor.name] = None
            continue
        if s.subjects == subjects:
            rows[s.flavor.name] = None
            continue
        other = set(s.subjects)
        if other != ref_set:
            only_ref = sorted(ref_set - other)[:3]
            only_this = sorted(other - ref_set)[:3]
            assert ref is not None
            raise InputDataError(
                f"subjects differ between {ref.file} ({ref.flavor.name}) and {s.file} ({s.flavor.name}): "
                f"{len(ref_set - other)} only in the first (e.g. {only_ref}), "
                f"{len(other - ref_set)} only in the second (e.g. {only_this})",
                hint="give every flavor for the same subjects, or select common ones with --subjects")
        pos = {sid: i for i, sid in enumerate(s.subjects)}
        rows[s.flavor.name] = np.array([pos[sid] for sid in subjects], dtype=np.intp)
    return Cohort(by_name, subjects, rows)
