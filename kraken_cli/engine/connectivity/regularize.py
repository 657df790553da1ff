"""Batched math of the paper's regularized partial correlation (UPSTREAM 1.7 and 13).

Every function takes a stack of matrices ``(n_subjects, R, R)`` (subjects on axis 0) in float64 and
follows the original's ``regularize_fc_precision.py`` step by step:

* inputs are (optionally) symmetrised, then normalised to correlation (:func:`normalize_to_correlation`);
* the lambda search works in eigen mode: ``P(lam) = V diag(1 / (max(e, 0) + lam)) V^T`` keeping only the
  eigenvalues with ``max(e, 0) + lam > 1e-6``, and scores ``||triu1(P) - triu1(target)||_2``;
* the output is ``inv(X + lam * trace(X) / n * I)`` (``pinv`` when ``lam == 0`` and ``inv`` fails),
  turned into partial correlations by :func:`precision_to_partial_correlation`.

The search adds ``lam`` while the output adds ``lam * trace(X) / n``: they agree for correlation inputs
(``trace / n == 1``) only. This is the original's behaviour (UPSTREAM sharp edge 29), kept on purpose.

The search never forms ``P(lam)``: with ``w_k = v_k^T T v_k`` and ``d_k = 1 / (max(e_k, 0) + lam)``,
``||P - T||_F^2 = sum d^2 - 2 sum d w + ||T||_F^2`` and ``diag(P) = (V * V) d``, so each lambda costs
O(R^2) per subject instead of O(R^3).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]

#: Eigenvalues (after adding lambda) at or below this are dropped from the eigen-mode inverse.
EIG_EPS = 1e-6
#: Diagonal entries with an absolute value below this count as 1 when normalising to correlation.
DIAG_EPS = 1e-10


def symmetrize(x: F64) -> F64:
    """``(X + X^T) / 2`` for a stack of shape (n, R, R)."""
    return (x + np.swapaxes(x, -1, -2)) / 2


def normalize_to_correlation(x: F64) -> F64:
    """``X / sqrt(outer(d, d))`` with ``d = diag(X)``, where ``|d| < 1e-10`` counts as 1.

    >>> normalize_to_correlation(np.array([[[4.0, 2.0], [2.0, 1.0]]]))[0]
    array([[1., 1.],
           [1., 1.]])
    """
    d = np.diagonal(x, axis1=-2, axis2=-1).copy()
    d[np.abs(d) < DIAG_EPS] = 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        s = 1.0 / np.sqrt(d)  # X_ij / sqrt(d_i d_j) without an (n, R, R) temporary per step
    out: F64 = x * s[..., :, None]
    out *= s[..., None, :]
    return out


def covariance(ts: F64) -> F64:
    """``numpy.cov(ts, rowvar=False)`` of one ``(n_timepoints, R)`` series, as the original's inputs."""
    return np.atleast_2d(np.cov(ts, rowvar=False))


def eigh(x: F64) -> tuple[F64, F64]:
    """Eigenvalues ``(n, R)`` (ascending) and eigenvectors ``(n, R, R)`` of symmetric matrices."""
    e, v = np.linalg.eigh(x)
    return e, v


def _inverse_weights(e: F64, lam: float | F64) -> F64:
    """``1 / (max(e, 0) + lam)`` where that is above 1e-6, else 0 (same shape as ``e`` + lam)."""
    s = np.maximum(e, 0.0) + lam
    keep = s > EIG_EPS
    out = np.zeros_like(s)
    np.divide(1.0, s, out=out, where=keep)
    return out


def eig_inverse(e: F64, v: F64, lam: float = 0.0) -> F64:
    """Eigen-mode regularized inverse ``V diag(1 / (max(e, 0) + lam)) V^T`` (lam 0: unregularized)."""
    d = _inverse_weights(e, lam)
    out: F64 = (v * d[..., None, :]) @ np.swapaxes(v, -1, -2)
    return out


def upper_symmetric(t: F64) -> F64:
    """The symmetric matrix whose strict upper triangle and diagonal are ``t``'s."""
    up = np.triu(t, 1)
    out: F64 = up + up.T + np.diag(np.diag(t))
    return out


@dataclass(frozen=True)
class SearchTerms:
    """What the lambda search needs of a chunk of subjects (everything O(R^2) per subject).

    Attributes
    ----------
    evals : ndarray of shape (n, R)
        ``max(e, 0)`` of each subject's eigenvalues.
    weights : ndarray of shape (n, R)
        ``w_k = v_k^T T v_k``.
    vsq : ndarray of shape (n, R, R)
        ``V * V`` (row i, column k: ``V_ik^2``), for the diagonal of ``P(lam)``.
    """

    evals: F64
    weights: F64
    vsq: F64

    def as_tuple(self) -> tuple[F64, F64, F64]:
        return self.evals, self.weights, self.vsq


def search_terms(e: F64, v: F64, target: F64) -> SearchTerms:
    """Per-subject terms of the search error against ``target`` (its upper triangle is what counts)."""
    t = upper_symmetric(target)
    w = np.einsum("nik,nik->nk", v, t @ v)
    return SearchTerms(np.maximum(e, 0.0), w, v * v)


def search_errors(terms: SearchTerms, target: F64, lambdas: F64) -> F64:
    """``||triu1(P_i(lam)) - triu1(target)||_2`` for each subject and lambda: shape (n, n_lambdas).

    >>> rng = np.random.default_rng(0); a = rng.normal(size=(3, 20, 5)); x = np.cov(a[0], rowvar=False)[None]
    >>> e, v = eigh(x); t = np.eye(5)
    >>> direct = np.linalg.norm((eig_inverse(e, v, 0.5) - t)[0][np.triu_indices(5, 1)])
    >>> bool(np.isclose(search_errors(search_terms(e, v, t), t, np.array([0.5]))[0, 0], direct))
    True
    """
    t = upper_symmetric(target)
    t_fro2 = float(np.sum(t * t))
    t_diag = np.diag(t)
    out = np.empty((terms.evals.shape[0], len(lambdas)))
    for j, lam in enumerate(np.asarray(lambdas, dtype=np.float64)):
        d = _inverse_weights(terms.evals, float(lam))  # max(e,0) was taken already; max is idempotent
        full = np.sum(d * d, axis=1) - 2 * np.sum(d * terms.weights, axis=1) + t_fro2
        pdiag = np.einsum("nik,nk->ni", terms.vsq, d)
        diag = np.sum((pdiag - t_diag) ** 2, axis=1)
        out[:, j] = np.sqrt(np.maximum((full - diag) / 2, 0.0))
    return out


@dataclass(frozen=True)
class SearchResult:
    """Every evaluated lambda (in evaluation order), its mean error, and the optimum."""

    lambdas: F64
    errors: F64
    best: float

    def table(self) -> tuple[F64, F64]:
        """``(lambda, reg_err)`` sorted by lambda, as the original's CSV."""
        order = np.argsort(self.lambdas, kind="stable")
        return self.lambdas[order], self.errors[order]


def grid_search(objective: Callable[[F64], F64], lo: float, hi: float, n_grid: int, n_loops: int,
                on_loop: Callable[[int], None] | None = None) -> SearchResult:
    """The original's refining grid search of the lambda that minimises ``objective``.

    Each loop evaluates ``linspace(a, b, n_grid)``; the next loop spans the neighbours of that loop's
    best point (clamped to the grid at its edges). The optimum is the argmin over every evaluated point.

    >>> r = grid_search(lambda g: (g - 0.3) ** 2, 0.0, 1.0, 10, 3)
    >>> round(r.best, 4), r.lambdas.size
    (0.299, 30)
    """
    a, b = float(lo), float(hi)
    lams: list[F64] = []
    errs: list[F64] = []
    for loop in range(n_loops):
        grid = np.linspace(a, b, n_grid)
        err = np.asarray(objective(grid), dtype=np.float64)
        lams.append(grid)
        errs.append(err)
        i = int(np.argmin(err))
        a, b = float(grid[max(i - 1, 0)]), float(grid[min(i + 1, n_grid - 1)])
        if on_loop is not None:
            on_loop(loop)
    all_l, all_e = np.concatenate(lams), np.concatenate(errs)
    return SearchResult(all_l, all_e, float(all_l[int(np.argmin(all_e))]))


def round_lambda(lam: float, decimals: int) -> float:
    """The applied lambda: ``numpy.round(lam, decimals)``."""
    return float(np.round(lam, decimals))


def shifted(x: F64, lam: float) -> F64:
    """``X + lam * trace(X) / n * I`` for each matrix of a stack."""
    r = x.shape[-1]
    scale = lam * np.trace(x, axis1=-2, axis2=-1) / r
    out = x.copy()
    idx = np.arange(r)
    out[:, idx, idx] += scale[:, None]
    return out


def apply_lambda(x: F64, lam: float, on_singular: Callable[[int], None]) -> F64:
    """Precision matrices ``inv(X + lam * trace(X)/n * I)``; with ``lam == 0`` ``pinv`` where ``inv`` fails.

    ``on_singular(i)`` is called for a subject whose matrix cannot be inverted with ``lam != 0`` (it
    should raise); with ``lam == 0`` it is not called and ``pinv`` is used, as in the original.
    """
    m = shifted(x, lam) if lam != 0 else x
    try:
        out: F64 = np.asarray(np.linalg.inv(m), dtype=np.float64)
        return out
    except np.linalg.LinAlgError:
        pass
    res = np.empty_like(m)
    for i in range(m.shape[0]):
        try:
            res[i] = np.linalg.inv(m[i])
        except np.linalg.LinAlgError:
            if lam != 0:
                on_singular(i)
            res[i] = np.linalg.pinv(m[i])
    return res


def precision_to_partial_correlation(p: F64) -> F64:
    """``D^{-1/2} (-P) D^{-1/2}`` with ``D = |diag(P)|``, diagonal set to 0."""
    d = np.abs(np.diagonal(p, axis1=-2, axis2=-1))
    with np.errstate(divide="ignore", invalid="ignore"):
        s = 1.0 / np.sqrt(d)
        out: F64 = p * (-s)[..., :, None]
        out *= s[..., None, :]
    r = p.shape[-1]
    out[..., np.arange(r), np.arange(r)] = 0.0
    return out


def sym_logm(x: F64) -> F64:
    """Matrix logarithm of symmetric positive-definite matrices ``logm((X + X^T) / 2)``."""
    e, v = np.linalg.eigh(symmetrize(x))
    out: F64 = (v * np.log(e)[..., None, :]) @ np.swapaxes(v, -1, -2)
    return out


def sym_expm(x: F64) -> F64:
    """Matrix exponential of a symmetric matrix (the geometric mean's last step)."""
    e, v = np.linalg.eigh(symmetrize(x))
    out: F64 = (v * np.exp(e)[..., None, :]) @ np.swapaxes(v, -1, -2)
    return out


def min_sym_eigenvalue(x: F64) -> F64:
    """Smallest eigenvalue of each ``(X + X^T) / 2`` (positive definiteness check for the geometric mean)."""
    out: F64 = np.asarray(np.linalg.eigvalsh(symmetrize(x))[..., 0], dtype=np.float64)
    return out
