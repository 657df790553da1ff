"""The quality measures, each a small function on arrays of shape (n_subjects, ...), subjects on axis 0.

None of them needs training data: what they compare against comes from a transform's parameters
or from reference statistics (:mod:`.reference`). A value that cannot be measured is NaN.

>>> import numpy as np
>>> plausibility(np.array([[0.5, -0.2, 1.4]]), "FC")["fc_out_of_range"]
array([0.33333333])
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import numpy.typing as npt

from ..transforms import PCATransform, Transform

FloatArray = npt.NDArray[np.float64]

#: Values this close to zero count as zero (SC) and as not negative (FC/SC signs).
ZERO_TOLERANCE = 1e-12


def plausibility(x: npt.ArrayLike, group: str | None) -> dict[str, FloatArray]:
    """Per-subject plausibility of edge rows for a flavor group.

    Parameters
    ----------
    x : array-like of shape (n_subjects, n_edges)
    group : {"FC", "SC"} or None
        The flavor's group; None (unknown) measures nothing.

    Returns
    -------
    dict
        FC: ``fc_out_of_range`` (fraction of edges with ``|x| > 1``) and ``fc_negative`` (fraction
        below zero). SC: ``sc_negative`` and ``sc_density`` (fraction of non-zero edges).
    """
    a = np.asarray(x, dtype=np.float64)
    neg = np.mean(a < -ZERO_TOLERANCE, axis=1)
    if group == "FC":
        return {"fc_out_of_range": np.mean(np.abs(a) > 1.0 + 1e-6, axis=1), "fc_negative": neg}
    if group == "SC":
        return {"sc_negative": neg, "sc_density": np.mean(np.abs(a) > ZERO_TOLERANCE, axis=1)}
    return {}


def pca_distance(transform: Transform, x: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Reconstruction error and score norm of rows ``x`` in a transform's own terms.

    Parameters
    ----------
    transform : Transform
        A fitted input transform. PCA and truncated SVD give both numbers; the other types
        give the norm of the transformed row as "score" and NaN as residual.
    x : array-like of shape (n_subjects, n_edges)

    Returns
    -------
    residual, score : ndarray of shape (n_subjects,)
        ``||(x - mean) - (x - mean) V^T V||`` and ``||(x - mean) V^T||`` (edge units).
    """
    a = np.asarray(x, dtype=np.float64)
    if isinstance(transform, PCATransform):
        v = np.asarray(transform.components_, dtype=np.float64)
        xc = a - np.asarray(transform.pca_mean_, dtype=np.float64)
        s = xc @ v.T
        return np.linalg.norm(xc - s @ v, axis=1), np.linalg.norm(s, axis=1)
    y = np.asarray(transform.transform(a), dtype=np.float64)
    return np.full(a.shape[0], np.nan), np.linalg.norm(y, axis=1)


def mean_fit(x: npt.ArrayLike, mean: npt.ArrayLike | None) -> tuple[FloatArray, FloatArray]:
    """How each row relates to the training mean: least-squares slope (with intercept) and correlation.

    Parameters
    ----------
    x : array-like of shape (n_subjects, n_edges)
    mean : array-like of shape (n_edges,) or None
        The transform's training mean; None gives NaN.

    Returns
    -------
    slope, corr : ndarray of shape (n_subjects,)
        ``x ~ slope * mean + b`` (1 for a subject on the training scale; 3 for data in three times
        the units) and ``corr(x, mean)`` (near 0 for edges in another order or another flavor's data).

    >>> mean_fit(np.array([[2.0, 4.0, 6.0]]), np.array([1.0, 2.0, 3.0]))[0]
    array([2.])
    """
    a = np.asarray(x, dtype=np.float64)
    if mean is None:
        nan = np.full(a.shape[0], np.nan)
        return nan, nan.copy()
    mu = np.asarray(mean, dtype=np.float64).reshape(-1)
    mc = mu - mu.mean()
    xc = a - a.mean(axis=1, keepdims=True)
    denom = float(mc @ mc)
    if denom <= 0:
        nan = np.full(a.shape[0], np.nan)
        return nan, nan.copy()
    slope = xc @ mc / denom
    corr = slope * np.sqrt(denom) / np.maximum(np.linalg.norm(xc, axis=1), 1e-300)
    return slope, corr


def unit_rows(z: npt.ArrayLike) -> FloatArray:
    """Rows scaled to unit length (zero rows stay zero)."""
    a = np.asarray(z, dtype=np.float64)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return np.asarray(a / np.where(n > 0, n, 1.0), dtype=np.float64)


def standardized_distance(z: npt.ArrayLike, mean: npt.ArrayLike, std: npt.ArrayLike) -> FloatArray:
    """RMS over latent dimensions of ``(unit(z) - mean) / std``: one number per subject."""
    u = unit_rows(z)
    sd = np.maximum(np.asarray(std, dtype=np.float64), 1e-6)
    return np.sqrt(np.mean(((u - np.asarray(mean, dtype=np.float64)) / sd) ** 2, axis=1))


def agreement(latents: Mapping[str, npt.ArrayLike], *, max_others: int = 500) -> dict[str, FloatArray]:
    """Cross-flavor disagreement of each subject's latents (no training data needed).

    For flavor f and subject i: the distance from ``unit(z_f[i])`` to the mean of the subject's
    other flavors' unit latents, over the median of the same distance to other subjects' means
    (up to ``max_others`` of them, evenly spaced). Below 1 the flavors agree more with their own
    subject than with others; a wrong or damaged input stands out above it.

    Returns
    -------
    dict
        flavor -> ndarray of shape (n_subjects,); empty with fewer than 2 flavors or 3 subjects.
    """
    names = list(latents)
    units = {f: unit_rows(latents[f]) for f in names}
    n = next(iter(units.values())).shape[0] if units else 0
    if len(names) < 2 or n < 3:
        return {}
    total = sum(units.values())
    step = max(1, n // max_others)
    others = np.arange(0, n, step)
    out: dict[str, FloatArray] = {}
    for f in names:
        rest = unit_rows((total - units[f]) / (len(names) - 1))
        own = np.linalg.norm(units[f] - rest, axis=1)
        typical = np.empty(n)
        for start in range(0, n, 256):  # (rows x others) distances a block of rows at a time
            rows = np.arange(start, min(n, start + 256))
            d = np.linalg.norm(units[f][rows, None, :] - rest[None, others, :], axis=2)
            d[others[None, :] == rows[:, None]] = np.nan
            typical[rows] = np.nanmedian(d, axis=1)
        out[f] = own / np.maximum(typical, 1e-12)
    return out


def robust_z(v: npt.ArrayLike, *, min_subjects: int = 8) -> FloatArray:
    """``(v - median) / (1.4826 * MAD)`` over the subjects (NaN with fewer than ``min_subjects``).

    >>> robust_z(np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 1.0, 1.02, 3.0]))[-1] > 10
    np.True_
    """
    a = np.asarray(v, dtype=np.float64)
    finite = a[np.isfinite(a)]
    if finite.size < min_subjects:
        return np.full(a.shape, np.nan)
    med = float(np.median(finite))
    mad = 1.4826 * float(np.median(np.abs(finite - med)))
    return (a - med) / max(mad, 1e-12)


def flavor_measures(transform: Transform, x: npt.ArrayLike, group: str | None,
                    adapted: npt.ArrayLike | None = None) -> dict[str, FloatArray]:
    """Every per-flavor measure of rows ``x``: plausibility (on ``x``), then scale, pattern, residual and
    score (on ``adapted``, what the transform sees; default ``x``). Residual and score in edge units."""
    out = plausibility(x, group)
    xa = x if adapted is None else adapted
    out["scale"], out["pattern"] = mean_fit(xa, transform.training_mean())
    out["residual"], out["score"] = pca_distance(transform, xa)
    return out
