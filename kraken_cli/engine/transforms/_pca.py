"""``sklearn.decomposition.PCA(n_components=k, random_state=0).fit(X)`` on dense data, without scikit-learn.

Importing scikit-learn took about 0.8 s of every ``kraken train`` that fits PCA transforms. This
module repeats what scikit-learn (1.5 and later) computes, step for step with the same numpy/scipy
calls and the same random numbers, so the components are the same to rounding (a unit test compares
them with scikit-learn's on every solver's shapes):

* the solver ``"auto"`` picks: ``covariance_eigh`` (at most 1,000 features and 10x as many samples),
  ``full`` (at most 500 rows and columns), ``randomized`` (k < 0.8 min(n, p); Halko et al., with
  ``RandomState(0)``, 10 oversamples, 7 or 4 LU-normalised power iterations), else ``full``;
* signs: the largest-magnitude entry of each component is positive (``svd_flip`` on the rows of V).

Small problems run their BLAS calls on one thread: on a busy 2-core machine OpenBLAS's spinning
threads made a 230 x 3655 fit take 1.5-3.6 s instead of 0.09 s.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..threads import blas_threads

#: Data with fewer values than this is decomposed on one BLAS thread.
ONE_THREAD_VALUES = 4_000_000


def fit_pca(X: npt.NDArray[np.float64], k: int) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    """``(mean_, components_ (k, p), sum(explained_variance_ratio_))`` of scikit-learn's PCA(k, random_state=0)."""
    from scipy import linalg  # noqa: F401  (loads scipy's BLAS before the limit below, so it applies to it too)

    X = np.asarray(X, dtype=np.float64)
    n, p = X.shape
    with blas_threads(1 if X.size < ONE_THREAD_VALUES else None):
        mean = X.mean(axis=0)
        if p <= 1_000 and n >= 10 * p:
            vt, ratio = _covariance_eigh(X, mean, k)
        elif max(n, p) <= 500 or not 1 <= k < 0.8 * min(n, p):
            vt, ratio = _full(X - mean, k)
        else:
            vt, ratio = _randomized(X - mean, k)
    return mean, vt, ratio


def _flip(vt: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """scikit-learn's ``svd_flip(u, v, u_based_decision=False)`` on V alone."""
    rows = np.arange(vt.shape[0])
    signs = np.sign(vt[rows, np.argmax(np.abs(vt), axis=1)])
    return vt * signs[:, np.newaxis]


def _full(xc: npt.NDArray[np.float64], k: int) -> tuple[npt.NDArray[np.float64], float]:
    from scipy import linalg

    n = xc.shape[0]
    _, s, vt = linalg.svd(xc, full_matrices=False)
    var = s ** 2 / (n - 1)
    return _flip(vt)[:k], float(np.sum(var[:k] / np.sum(var)))


def _covariance_eigh(X: npt.NDArray[np.float64], mean: npt.NDArray[np.float64],
                     k: int) -> tuple[npt.NDArray[np.float64], float]:
    n = X.shape[0]
    c = X.T @ X
    c -= n * mean.reshape(-1, 1) * mean.reshape(1, -1)
    c /= n - 1
    vals, vecs = np.linalg.eigh(c)
    vals, vecs = np.flip(vals.reshape(-1), axis=0), np.flip(vecs, axis=1)
    vals[vals < 0.0] = 0.0
    return _flip(vecs.T)[:k], float(np.sum(vals[:k] / np.sum(vals)))


def _randomized(xc: npt.NDArray[np.float64], k: int) -> tuple[npt.NDArray[np.float64], float]:
    from scipy import linalg

    n = xc.shape[0]
    n_iter = 7 if k < 0.1 * min(xc.shape) else 4
    transpose = xc.shape[0] < xc.shape[1]
    m = xc.T if transpose else xc
    q = np.random.RandomState(0).normal(size=(m.shape[1], k + 10))
    for _ in range(n_iter):  # LU-normalised power iterations (n_iter > 2 always here)
        q, _ = linalg.lu(m @ q, permute_l=True, check_finite=False)
        q, _ = linalg.lu(m.T @ q, permute_l=True, check_finite=False)
    q, _ = linalg.qr(m @ q, mode="economic", check_finite=False)
    uhat, s, vt = linalg.svd(q.T @ m, full_matrices=False, lapack_driver="gesdd")
    v = (q @ uhat)[:, :k].T if transpose else vt[:k]
    total_var = float(np.sum(xc ** 2) / (n - 1))
    return _flip(v), float(np.sum((s[:k] ** 2 / (n - 1)) / total_var))
