"""numpy front end of the metrics: arrays in, floats and arrays out, computed by :mod:`.kernel`.

Every function accepts numpy arrays, nested lists or torch tensors (moved to the CPU as
float64); one-dimensional vectors are single-feature columns.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch

from . import kernel

__all__ = ["avgcorr", "avgcorr_other", "avgrank", "avgrank_mean", "diag_ranks", "evaluate_path",
           "explained_variance", "top1acc", "topNacc", "xycorr", "xydist"]

FloatArray = npt.NDArray[np.float64]
#: numpy arrays, nested lists or torch tensors (moved to the CPU).
ArrayLike = npt.ArrayLike | torch.Tensor


def _as_float64(x: ArrayLike) -> FloatArray:
    """A float64 numpy copy/view of an array or tensor (2-D: subjects x features)."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"expected a 2-D (subjects x features) array, got shape {arr.shape}")
    return arr


def _tensor(x: ArrayLike) -> torch.Tensor:
    """A float64 CPU tensor of a 2-D (subjects x features) array."""
    return torch.from_numpy(np.ascontiguousarray(_as_float64(x)))


def _square(S: ArrayLike) -> torch.Tensor:
    St = _tensor(S)
    n = St.shape[0]
    if St.shape != (n, n):
        raise ValueError(f"expected a square matrix, got shape {tuple(St.shape)}")
    return St


def _numpy(t: torch.Tensor) -> FloatArray:
    return np.asarray(t.numpy(), dtype=np.float64)


def xycorr(X: ArrayLike, Y: ArrayLike) -> FloatArray:
    """Pearson correlation between every row of ``X`` and every row of ``Y``.

    Parameters
    ----------
    X : array of shape (n, F)
        True data, one subject per row.
    Y : array of shape (m, F)
        Predicted data.

    Returns
    -------
    ndarray of shape (n, m)
        ``C[i, j] = corr(X[i], Y[j])`` over the F features. A constant row gives NaN.

    Examples
    --------
    >>> xycorr([[1, 2, 3], [3, 2, 1]], [[2, 4, 6]]).round(6).tolist()
    [[1.0], [-1.0]]
    """
    Xt, Yt = _tensor(X), _tensor(Y)
    if Xt.shape[1] != Yt.shape[1]:
        raise ValueError(f"X and Y need the same number of features: {Xt.shape[1]} vs {Yt.shape[1]}")
    return _numpy(kernel.xycorr_torch(Xt, Yt))


def xydist(X: ArrayLike, Y: ArrayLike) -> FloatArray:
    """Euclidean distance between every row of ``X`` and every row of ``Y`` (``cdist``).

    Examples
    --------
    >>> xydist([[0.0], [3.0]], [[1.0], [3.0]]).tolist()
    [[1.0, 3.0], [2.0, 0.0]]
    """
    return _numpy(kernel.distance_matrix(_tensor(X), _tensor(Y)))


def diag_ranks(S: ArrayLike, *, largest: bool = True) -> npt.NDArray[np.int64]:
    """0-based rank of ``S[i, i]`` within row ``i`` (stable sort, best first).

    Parameters
    ----------
    S : array of shape (n, n)
        Similarity (``largest=True``) or distance (``largest=False``) matrix.
    largest : bool
        Whether larger values are better matches.

    Returns
    -------
    ndarray of int, shape (n,)
        ``r_i = #{j : S[i,j] better than S[i,i]} + #{j < i : S[i,j] == S[i,i]}``. NaNs rank last.

    Examples
    --------
    >>> diag_ranks(np.array([[0.9, 0.1], [0.5, 0.5]])).tolist()
    [0, 1]
    """
    return np.asarray(kernel.diag_ranks_torch(_square(S), largest).numpy(), dtype=np.int64)


def _identification(S: ArrayLike, top_n: int, largest: bool) -> tuple[float, ...]:
    return tuple(float(v) for v in kernel.identification(_square(S), top_n, largest))


def top1acc(S: ArrayLike, *, largest: bool = True) -> float:
    """Top-1 identification accuracy: fraction of rows whose best match is the diagonal.

    Examples
    --------
    >>> top1acc(np.array([[0.9, 0.1], [0.7, 0.2]]))
    0.5
    """
    return _identification(S, 1, largest)[0]


def topNacc(S: ArrayLike, top_n: int = 2, *, largest: bool = True) -> float:
    """Top-N accuracy: fraction of rows whose diagonal is among the ``top_n`` best.

    Examples
    --------
    >>> topNacc(np.array([[0.1, 0.9, 0.0], [0.0, 0.2, 0.1], [0.3, 0.2, 0.1]]), 2)
    0.6666666666666666
    """
    return _identification(S, top_n, largest)[1]


def avgrank(S: ArrayLike, *, largest: bool = True) -> float:
    """Average rank percentile ``1 - mean(r_i) / n`` (1 is perfect).

    Examples
    --------
    >>> avgrank(np.eye(4))
    1.0
    """
    return _identification(S, 1, largest)[2]


def avgrank_mean(S: ArrayLike, *, largest: bool = True) -> float:
    """Mean 1-based rank ``1 + mean(r_i)`` (the trainrecord's ``avgrank_*`` fields)."""
    return _identification(S, 1, largest)[3]


def avgcorr(S: ArrayLike) -> float:
    """Mean of the diagonal: each subject's prediction against its own truth."""
    return float(kernel.diag_mean(_tensor(S)))


def avgcorr_other(S: ArrayLike) -> float:
    """Mean of the strict upper triangle (the lower triangle of the asymmetric C is ignored)."""
    return float(kernel.upper_mean(_tensor(S)))


def explained_variance(X: ArrayLike, Y: ArrayLike) -> float:
    """R^2 = 1 - sum_f var(X_f - Y_f) / sum_f var(X_f), population variances across subjects.

    Examples
    --------
    >>> explained_variance([[0.0, 1.0], [2.0, 3.0]], [[0.0, 1.0], [2.0, 3.0]])
    1.0
    """
    Xt, Yt = _tensor(X), _tensor(Y)
    _check_pair(Xt, Yt)
    return float(kernel.explained_variance_torch(Xt, Yt))


def _check_pair(X: torch.Tensor, Y: torch.Tensor) -> None:
    if X.shape != Y.shape:
        raise ValueError(f"true and predicted arrays differ in shape: {tuple(X.shape)} vs {tuple(Y.shape)}")


def evaluate_path(
    true: ArrayLike,
    pred: ArrayLike,
    *,
    demean: ArrayLike | None = None,
    top_n: int = 2,
) -> dict[str, float]:
    """All identifiability metrics of one path (see :data:`METRIC_NAMES`).

    Parameters
    ----------
    true : array of shape (n, F)
        Ground truth, one subject per row.
    pred : array of shape (n, F)
        Predictions for the same subjects, in the same order.
    demean : array of shape (F,), optional
        The population mean ``mu`` removed before ``avgcorr_resid``. Default: the mean of
        ``true`` over subjects (the original's ``run_model``); training passes the
        training-set mean in original space.
    top_n : int
        N of ``topNacc`` (the original's ``topN``, 2).

    Returns
    -------
    dict of str to float
        Keys in the order of :data:`METRIC_NAMES`.

    Notes
    -----
    With one feature column the matches come from distances (smallest is best); see the
    module docstring. The values are :func:`evaluate_paths_torch` for a single path.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0, 4.0], [3.0, 1.0, 0.0], [0.0, 5.0, 1.0]])
    >>> m = evaluate_path(X, X)
    >>> m["top1acc"], m["avgrank"], m["explainedvar"]
    (1.0, 1.0, 1.0)
    """
    X, Y = _tensor(true), _tensor(pred)
    _check_pair(X, Y)
    if X.shape[0] < 1:
        raise ValueError("cannot evaluate zero subjects")
    mu = None if demean is None else _tensor(demean).reshape(-1)
    if mu is not None and mu.shape[0] != X.shape[1]:
        raise ValueError(f"demean vector has {mu.shape[0]} values, expected {X.shape[1]}")
    out = kernel.evaluate_paths_torch(X, Y[None], demean=mu, top_n=top_n)
    return {name: float(v[0]) for name, v in out.items()}
