"""What neuroimaging pipelines write: labelled tables, missing parcels, MRtrix and QSIRecon matrices.

* Labelled square CSV/TSV (XCP-D ``*_relmat.tsv``, ``pandas.DataFrame.to_csv``): a header row of
  node names and a label column; ``n/a`` cells are NaN.
* NaN rows/columns of parcels (XCP-D's low-coverage parcels) are an error naming the parcels, or
  are filled with each edge's mean over the other subjects (``--impute-missing mean``, reported).
* MRtrix ``tck2connectome``: upper-triangular matrices are mirrored; with ``-keep_unassigned`` the
  extra node 0 (streamlines assigned to no parcel) is dropped when the atlas size says so.
* QSIRecon / QSIPrep ``*_connectivity.mat``: one variable per atlas and measure
  (``atlas_<a>_<measure>_connectivity``; QSIPrep: ``<atlas>_sift_radius2_count_connectivity``), chosen
  with ``-i FLAVOR=FILE.mat:KEY``; region labels come from ``atlas_<a>_region_labels``.

Flavors are never guessed: a reader only suggests one in its error message.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from pathlib import Path
from typing import Any, get_args

import numpy as np
import numpy.typing as npt

from ..choices import ImputeMode
from ..connectome import ArraySource, EdgeSource, FloatArray, square_to_tri
from ..errors import InputDataError, SpecError, check_choice
from ..flavors import Flavor
from ._paths import is_number

log = logging.getLogger(__name__)

#: Values of ``--impute-missing``.
IMPUTE_CHOICES: tuple[str, ...] = get_args(ImputeMode)
_IMPUTE: ContextVar[str] = ContextVar("kraken_impute_missing", default="none")
#: Text cells read as missing values.
NA_TOKENS = frozenset({"", "n/a", "na", "nan", "none", "null"})
#: Header corner cells that mark a labelled square table.
_CORNERS = frozenset({"", "node", "nodes", "label", "labels", "region", "regions", "name", "roi", "index",
                      "parcel", "unnamed: 0"})
CONNECTIVITY_SUFFIX = "_connectivity"


def check_impute(mode: str) -> str:
    """``mode`` when it is one of :data:`IMPUTE_CHOICES`, else a usage error."""
    return check_choice(mode, IMPUTE_CHOICES, option="--impute-missing",
                        hint="none: missing parcels are an error; mean: fill each missing edge with its mean "
                             "over the other subjects")


@contextlib.contextmanager
def reading_policy(*, impute_missing: str = "none", edge_order: str = "triu") -> Iterator[None]:
    """Read inputs with this missing-value policy and edge order while the context is open."""
    from ._edge_order import reading_edge_order

    token = _IMPUTE.set(check_impute(impute_missing))
    try:
        with reading_edge_order(edge_order):
            yield
    finally:
        _IMPUTE.reset(token)


def split_key(raw: str) -> tuple[str, str | None]:
    """``PATH:KEY`` -> ``(PATH, KEY)`` when ``PATH`` exists (or is a glob) and ``PATH:KEY`` does not.

    >>> split_key("no/such/file.mat")
    ('no/such/file.mat', None)
    """
    from ._paths import is_glob

    path = os.path.expanduser(raw)
    if os.path.exists(path) or ":" not in raw:
        return raw, None
    base, _, key = raw.rpartition(":")
    if key and base and (os.path.exists(os.path.expanduser(base)) or is_glob(base)) and "/" not in key:
        return base, key
    return raw, None


# --------------------------------------------------------------------------- labelled tables


def _cell(text: str) -> float:
    t = text.strip()
    if t.lower() in NA_TOKENS:
        return float("nan")
    return float(t)


def labelled_square(rows: Sequence[Sequence[str]], *, where: str) -> tuple[FloatArray, list[str]] | None:
    """``(R x R values, labels)`` of a table with a header row of names and a label column, else None.

    The header may start with a corner cell (``Node``, empty, ...) or not; it is a labelled square
    when the row labels equal the column names, or when the corner cell names nodes.
    """
    if len(rows) < 3:
        return None
    head, body = list(rows[0]), [list(r) for r in rows[1:]]
    r = len(body)
    if any(len(row) != r + 1 for row in body):
        return None
    if len(head) == r + 1:
        corner, names = head[0], head[1:]
    elif len(head) == r:
        corner, names = "", head
    else:
        return None
    labels = [row[0].strip() for row in body]
    names = [n.strip() for n in names]
    if names != labels and corner.strip().lower() not in _CORNERS:
        return None
    if all(is_number(n) for n in names) and len(head) == r + 1 and names != labels:
        return None  # a numeric header is data, not names
    try:
        values = np.asarray([[_cell(c) for c in row[1:]] for row in body], dtype=np.float64)
    except ValueError as exc:
        raise InputDataError(f"{where}: cannot read the labelled matrix ({exc})",
                             hint="cells of a labelled matrix are numbers or n/a") from None
    return values, labels


# --------------------------------------------------------------------------- matrix fixes


def fix_matrices(mats: FloatArray, *, flavor: Flavor, where: str, labels: Sequence[str] | None = None,
                 subjects: Sequence[str] | None = None) -> FloatArray:
    """Pipeline conventions -> symmetric, finite ``[S x R x R]`` (diagonal untouched).

    Drops MRtrix's unassigned node 0, mirrors upper- (or lower-) triangular matrices, and refuses
    or imputes missing parcels (:data:`_IMPUTE`).
    """
    mats = np.array(mats, dtype=np.float64, copy=True)
    if mats.ndim != 3 or mats.shape[1] != mats.shape[2]:
        return mats
    if labels is None and flavor.n_regions is not None and mats.shape[1] == flavor.n_regions + 1:
        log.warning("%s: %d x %d matrices for a %d-region atlas: node 0 (streamlines assigned to no parcel, "
                    "tck2connectome -keep_unassigned) dropped", where, mats.shape[1], mats.shape[1],
                    flavor.n_regions)
        mats = mats[:, 1:, 1:]
    mats = _mirror_triangular(mats, where=where)
    return _missing(mats, labels=labels, subjects=subjects, where=where)


def _mirror_triangular(mats: FloatArray, *, where: str) -> FloatArray:
    r = mats.shape[1]
    iu = np.triu_indices(r, 1)
    upper = mats[:, iu[0], iu[1]]
    lower = mats[:, iu[1], iu[0]]
    with np.errstate(invalid="ignore"):
        up_only = np.all(lower == 0, axis=1) & np.any(upper != 0, axis=1)
        low_only = np.all(upper == 0, axis=1) & np.any(lower != 0, axis=1)
    if up_only.any() or low_only.any():
        log.info("%s: %d triangular matrices (tck2connectome without -symmetric) mirrored", where,
                 int(up_only.sum() + low_only.sum()))
        for i in np.flatnonzero(up_only):
            mats[i, iu[1], iu[0]] = upper[i]
        for i in np.flatnonzero(low_only):
            mats[i, iu[0], iu[1]] = lower[i]
    return mats


def _names(idx: npt.NDArray[np.intp], labels: Sequence[str] | None) -> str:
    shown = [f"{labels[i]} (#{i + 1})" if labels is not None else f"#{i + 1}" for i in idx[:6]]
    return ", ".join(shown) + (f" and {idx.size - 6} more" if idx.size > 6 else "")


def _missing(mats: FloatArray, *, labels: Sequence[str] | None, subjects: Sequence[str] | None,
             where: str) -> FloatArray:
    s, r, _ = mats.shape
    off = ~np.eye(r, dtype=bool)
    who = [subjects[i] if subjects is not None else str(i + 1) for i in range(s)]
    infinite = np.isinf(mats) & off
    if infinite.any():
        first = int(np.flatnonzero(infinite.any(axis=(1, 2)))[0])
        n_inf = int(infinite[first].sum()) // 2 or 1
        raise InputDataError(f"{where}: subject {who[first]}: {n_inf} edges are infinite",
                             hint="infinite values are not missing values: check how the matrix was computed")
    bad = np.isnan(mats) & off
    if not bad.any():
        return mats
    empty = [np.flatnonzero(bad[i].sum(axis=1) == r - 1) for i in range(s)]
    if _IMPUTE.get() == "none":
        first = next(i for i in range(s) if bad[i].any())
        parcels = empty[first]
        what = (f"parcels {_names(parcels, labels)} have no values (NaN rows/columns, e.g. XCP-D's "
                "low-coverage parcels)") if parcels.size else f"{int(bad[first].sum()) // 2 or 1} edges are NaN"
        n_sub = int(bad.any(axis=(1, 2)).sum())
        raise InputDataError(f"{where}: subject {who[first]}: {what}"
                             + (f"; {n_sub} subjects have missing values" if n_sub > 1 else ""),
                             hint="re-run the pipeline with a lower coverage threshold, drop those subjects, or "
                                  "add --impute-missing mean to fill each missing edge with its mean over the "
                                  "other subjects")
    vals = np.where(bad, np.nan, mats)
    counts = (~bad).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(counts > 0, np.nansum(vals, axis=0) / np.maximum(counts, 1), np.nan)
    never = ~np.isfinite(mean) & off
    if never.any():
        rows = np.flatnonzero(never.any(axis=1))
        raise InputDataError(f"{where}: parcels {_names(rows, labels)} have no value in any subject, so "
                             "--impute-missing mean cannot fill them",
                             hint="use an atlas without those parcels, or a lower coverage threshold")
    idx = np.nonzero(bad)
    mats[idx] = mean[idx[1], idx[2]]
    subs = [who[i] for i in range(s) if bad[i].any()]
    log.warning("%s: imputed %d missing edges in %d subjects (%s) with each edge's mean over the other "
                "subjects (--impute-missing mean)", where, int(bad.sum()) // 2, len(subs),
                ", ".join(subs[:5]) + (" ..." if len(subs) > 5 else ""))
    return mats


def matrices_source(mats: FloatArray, *, flavor: Flavor, file: str, subjects: list[str] | None,
                    labels: Sequence[str] | None = None) -> EdgeSource:
    """A validated in-memory source from ``[S x R x R]`` pipeline matrices."""
    from ..connectome import check_square

    where = f"{file} ({flavor.name})"
    fixed = fix_matrices(mats, flavor=flavor, where=where, labels=labels, subjects=subjects)
    check_square(fixed, where=where)
    return ArraySource(flavor, np.ascontiguousarray(square_to_tri(fixed)), file, subjects)


# --------------------------------------------------------------------------- QSIRecon / QSIPrep .mat


def connectivity_keys(tree: Mapping[str, Any]) -> list[str]:
    """Variables named ``*_connectivity`` (QSIRecon / QSIPrep)."""
    return sorted(k for k in tree if k.endswith(CONNECTIVITY_SUFFIX))


def region_labels(tree: Mapping[str, Any], key: str) -> list[str] | None:
    """``<prefix>_region_labels`` (else ``_region_ids``) of a connectivity key, as text."""
    from ._tree import to_strings

    stem = key[: -len(CONNECTIVITY_SUFFIX)]
    parts = stem.split("_")
    prefixes = ["_".join(parts[:k]) for k in range(len(parts) - 1, 0, -1)]
    for suffix in ("_region_labels", "_region_ids"):
        for p in prefixes:
            if p + suffix in tree:
                return [str(x).strip() for x in to_strings(tree[p + suffix])]
    return None


def suggest_flavor(key: str) -> str:
    """A flavor name to show in a message, from a connectivity key (never used silently)."""
    parts = key.split("_")
    atlas = parts[1] if parts[0] == "atlas" and len(parts) > 2 else parts[0]
    return f"SCifod2act_{atlas}_{'sift2' if 'sift' in key else 'count'}"


def connectivity_sources(tree: Mapping[str, Any], *, file: str, spec_flavor: Flavor | None,
                         field: str | None) -> list[EdgeSource] | None:
    """The source a QSIRecon/QSIPrep ``*_connectivity.mat`` file gives, or None for other files.

    Raises
    ------
    SpecError
        Without FLAVOR=, or when the file holds several atlases/measures and no key was chosen.
    InputDataError
        When the chosen key is absent or not a square matrix.
    """
    keys = connectivity_keys(tree)
    if not keys or (field is not None and field in tree and field not in keys):
        return None
    shown = ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else "")
    if field is None:
        if len(keys) > 1:
            raise SpecError(f"{file} holds {len(keys)} connectivity matrices ({shown}): choose one",
                            hint=f"-i FLAVOR={file}:KEY, e.g. -i {suggest_flavor(keys[0])}={file}:{keys[0]}")
        field = keys[0]
    if field not in tree:
        raise InputDataError(f"{file} has no variable {field!r}; its connectivity matrices are {shown}",
                             hint=f"-i FLAVOR={file}:KEY with one of those keys")
    if spec_flavor is None:
        raise SpecError(f"{file}: name the flavor of {field} (kraken never guesses an atlas)",
                        hint=f"e.g. -i {suggest_flavor(field)}={file}:{field}")
    from ._tree import is_array, to_numpy

    where = f"{file} ({spec_flavor.name}), variable {field}"
    if not is_array(tree[field]):
        raise InputDataError(f"{where}: not a numeric matrix", hint="choose a *_connectivity variable")
    mat = np.asarray(to_numpy(tree[field], where=where), dtype=np.float64)
    if mat.ndim != 2 or mat.shape[0] != mat.shape[1]:
        raise InputDataError(f"{where}: shape {mat.shape} is not a square matrix",
                             hint="QSIRecon connectivity variables are R x R matrices")
    labels = region_labels(tree, field)
    if labels is not None and len(labels) != mat.shape[0]:
        labels = None
    return [matrices_source(mat[None], flavor=spec_flavor, file=str(Path(file)), subjects=None, labels=labels)]
