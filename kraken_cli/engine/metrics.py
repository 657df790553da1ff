"""Identifiability metrics of predicted connectomes (UPSTREAM 14).

For ``n`` subjects, ``X`` is the true data and ``Y`` the prediction, both ``(n, F)``.
``C = xycorr(X, Y)`` holds ``C[i, j]``, the Pearson correlation over features between the
truth of subject ``i`` and the prediction for subject ``j``. From ``C``:

============================  ====================================================================
kraken name                   definition
============================  ====================================================================
``top1acc``                   mean_i [argmax_j C[i, j] == i]  (chance 1/n)
``topNacc``                   mean_i [i is among the N largest of row i]  (N = ``top_n``, 2)
``avgrank``                   1 - mean_i(r_i) / n, r_i the 0-based rank of i in row i sorted
                              descending (perfect 1, chance about 0.5 + 1/(2n))
``avgrank_mean``              1 + mean_i(r_i), the mean 1-based rank
``avgcorr``                   mean of diag(C)
``avgcorr_other``             mean of the strict upper triangle of C (C is not symmetric)
``avgcorr_resid``             ``avgcorr`` of xycorr(X - mu, Y - mu) ("demeaned" identifiability)
``avgcorr_resid_other``       ``avgcorr_other`` of that demeaned matrix
``explainedvar``              1 - sum_f var(X_f - Y_f) / sum_f var(X_f), population variances
                              across subjects (R^2)
``*_pred2true``               top1acc, topNacc, avgrank on C^T (for each prediction, which truth
                              matches best)
``*_bidir``                   mean of the true->pred and pred->true values
============================  ====================================================================

Ranks and ties: ``r_i`` counts the entries of row i that are strictly better than ``C[i, i]``,
plus the equal entries at a smaller column index. That is the position of ``i`` in a *stable*
descending sort, so ``top1acc`` agrees with ``numpy.argmax`` (first index wins a tie). A NaN
correlation (a constant row) never beats anything: it ranks last.

One-column outputs (``F == 1``) use distances instead of correlations, as the original does:
``D = cdist(X, Y)``, the best match is the *smallest* distance, and ``avgcorr`` is the mean of
diag(D) (``avgcorr_other`` the strict upper triangle of D). The original's torch top-N for
distances picked the farthest entries (UPSTREAM sharp edge 8); kraken picks the nearest.

The numpy functions accept numpy arrays or torch tensors; :func:`evaluate_paths_torch` is a
batched torch version over a stack of predictions ``[P x n x F]`` for training.

Record field names
------------------
The original's training record (UPSTREAM 7.6) names these metrics differently;
:data:`RECORD_FIELDS` maps each kraken name to ``(base, suffix)`` and :func:`record_field`
assembles ``base + ["_OrigScale"] + suffix + "_" + split``:

====================  =================================  ======================================
kraken name           transformed-space field (val)       original-space field (val)
====================  =================================  ======================================
top1acc               corrloss_val                        corrloss_OrigScale_val
topNacc               corrlossN_val                       corrlossN_OrigScale_val
avgrank               corrlossRank_val                    corrlossRank_OrigScale_val
avgrank_mean          avgrank_val                         avgrank_OrigScale_val (kraken only)
avgcorr               avgcorr_val                         avgcorr_OrigScale_val
avgcorr_other         avgcorr_other_val                   avgcorr_OrigScale_other_val
avgcorr_resid         avgcorr_resid_val                   avgcorr_resid_OrigScale_val
avgcorr_resid_other   avgcorr_resid_other_val             avgcorr_resid_OrigScale_other_val
explainedvar          explainedvar_val                    explainedvar_OrigScale_val
top1acc_pred2true     corrloss_pred2true_val              corrloss_OrigScale_pred2true_val
topNacc_pred2true     corrlossN_pred2true_val             corrlossN_OrigScale_pred2true_val
avgrank_pred2true     corrlossRank_pred2true_val          corrlossRank_OrigScale_pred2true_val
top1acc_bidir         corrloss_bidir_val                  corrloss_bidir_OrigScale_val
topNacc_bidir         corrlossN_bidir_val                 corrlossN_bidir_OrigScale_val
avgrank_bidir         corrlossRank_bidir_val              corrlossRank_bidir_OrigScale_val
====================  =================================  ======================================
"""

from __future__ import annotations

from typing import Mapping, Union

import numpy as np
import numpy.typing as npt
import torch

__all__ = [
    "METRIC_NAMES",
    "RECORD_FIELDS",
    "avgcorr",
    "avgcorr_other",
    "avgrank",
    "avgrank_mean",
    "canonical_metric",
    "diag_ranks",
    "evaluate_path",
    "evaluate_paths_torch",
    "explained_variance",
    "record_field",
    "top1acc",
    "topNacc",
    "xycorr",
    "xycorr_torch",
    "xydist",
]

FloatArray = npt.NDArray[np.float64]
#: numpy arrays, nested lists or torch tensors (moved to the CPU).
ArrayLike = Union[npt.ArrayLike, torch.Tensor]

#: Every metric :func:`evaluate_path` returns, in a stable order.
METRIC_NAMES: tuple[str, ...] = (
    "top1acc", "topNacc", "avgrank", "avgrank_mean",
    "avgcorr", "avgcorr_other", "avgcorr_resid", "avgcorr_resid_other",
    "explainedvar",
    "top1acc_pred2true", "topNacc_pred2true", "avgrank_pred2true",
    "top1acc_bidir", "topNacc_bidir", "avgrank_bidir",
)

#: kraken metric name -> (base, suffix) of the original's record field (see module docstring).
RECORD_FIELDS: dict[str, tuple[str, str]] = {
    "top1acc": ("corrloss", ""),
    "topNacc": ("corrlossN", ""),
    "avgrank": ("corrlossRank", ""),
    "avgrank_mean": ("avgrank", ""),
    "avgcorr": ("avgcorr", ""),
    "avgcorr_other": ("avgcorr", "_other"),
    "avgcorr_resid": ("avgcorr_resid", ""),
    "avgcorr_resid_other": ("avgcorr_resid", "_other"),
    "explainedvar": ("explainedvar", ""),
    "top1acc_pred2true": ("corrloss", "_pred2true"),
    "topNacc_pred2true": ("corrlossN", "_pred2true"),
    "avgrank_pred2true": ("corrlossRank", "_pred2true"),
    "top1acc_bidir": ("corrloss_bidir", ""),
    "topNacc_bidir": ("corrlossN_bidir", ""),
    "avgrank_bidir": ("corrlossRank_bidir", ""),
    "loss": ("loss", ""),
}


_ALIASES: dict[str, str] = {
    "top1acc": "top1acc", "topnacc": "topNacc", "top2acc": "topNacc", "avgrank": "avgrank",
    "avgrank_mean": "avgrank_mean", "avgcorr": "avgcorr", "avgcorr_other": "avgcorr_other",
    "avgcorr_resid": "avgcorr_resid", "avgcorr_resid_other": "avgcorr_resid_other",
    "explainedvar": "explainedvar", "r2": "explainedvar",
    "top1accx": "top1acc_bidir", "topnaccx": "topNacc_bidir", "avgrankx": "avgrank_bidir",
    "corrloss": "top1acc", "corrlossn": "topNacc", "corrlossrank": "avgrank", "loss": "loss",
}


def canonical_metric(name: str) -> str:
    """kraken's name for a metric given by a kraken, heatmap or record-base name (case-insensitive).

    ``topnacc`` -> ``topNacc``, ``r2`` -> ``explainedvar``, ``top1accx`` -> ``top1acc_bidir``,
    ``corrlossRank`` -> ``avgrank``; names with ``_pred2true``/``_bidir`` suffixes keep them.

    Examples
    --------
    >>> canonical_metric("TopNAcc"), canonical_metric("r2"), canonical_metric("avgrankx")
    ('topNacc', 'explainedvar', 'avgrank_bidir')
    """
    key = name.strip().lower()
    for suffix in ("_pred2true", "_bidir"):
        if key.endswith(suffix) and key[: -len(suffix)] in _ALIASES:
            return _ALIASES[key[: -len(suffix)]] + suffix
    if key in _ALIASES:
        return _ALIASES[key]
    raise KeyError(f"unknown metric {name!r}; expected one of {', '.join(METRIC_NAMES)}, "
                   "or top1accx/topnaccx/avgrankx/r2")


def record_field(metric: str, split: str = "val", origscale: bool = True) -> str:
    """The original's trainrecord field name for a kraken metric.

    Parameters
    ----------
    metric : str
        A name from :data:`METRIC_NAMES` (or ``"loss"``).
    split : {"val", "train"}
        Data split.
    origscale : bool
        Original edge space (``_OrigScale`` fields) rather than the transformed space.

    Returns
    -------
    str

    Examples
    --------
    >>> record_field("top1acc"), record_field("avgcorr_other", "train", origscale=False)
    ('corrloss_OrigScale_val', 'avgcorr_other_train')
    >>> record_field("avgcorr_resid_other"), record_field("avgrank_bidir")
    ('avgcorr_resid_OrigScale_other_val', 'corrlossRank_bidir_OrigScale_val')
    """
    if metric not in RECORD_FIELDS:
        raise KeyError(f"unknown metric {metric!r}; expected one of {', '.join(RECORD_FIELDS)}")
    if metric == "loss":
        return f"loss_{split}"
    base, suffix = RECORD_FIELDS[metric]
    return f"{base}{'_OrigScale' if origscale else ''}{suffix}_{split}"


# --------------------------------------------------------------------------- numpy


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


def _check_pair(X: FloatArray, Y: FloatArray) -> None:
    if X.shape != Y.shape:
        raise ValueError(f"true and predicted arrays differ in shape: {X.shape} vs {Y.shape}")


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
    Xa, Ya = _as_float64(X), _as_float64(Y)
    if Xa.shape[1] != Ya.shape[1]:
        raise ValueError(f"X and Y need the same number of features: {Xa.shape[1]} vs {Ya.shape[1]}")
    xc = Xa - Xa.mean(axis=1, keepdims=True)
    yc = Ya - Ya.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        xc = xc / np.sqrt(np.sum(xc * xc, axis=1, keepdims=True))
        yc = yc / np.sqrt(np.sum(yc * yc, axis=1, keepdims=True))
    return np.asarray(xc @ yc.T, dtype=np.float64)


def xydist(X: ArrayLike, Y: ArrayLike) -> FloatArray:
    """Euclidean distance between every row of ``X`` and every row of ``Y`` (``cdist``).

    Examples
    --------
    >>> xydist([[0.0], [3.0]], [[1.0], [3.0]]).tolist()
    [[1.0, 3.0], [2.0, 0.0]]
    """
    Xa, Ya = _as_float64(X), _as_float64(Y)
    d2 = (Xa * Xa).sum(1)[:, None] + (Ya * Ya).sum(1)[None, :] - 2.0 * (Xa @ Ya.T)
    if Xa.shape[1] == 1:  # exact for the 1-column case the original uses it for
        return np.abs(Xa - Ya.T)
    return np.sqrt(np.maximum(d2, 0.0))


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
    Sa = _as_float64(S)
    n = Sa.shape[0]
    if Sa.shape != (n, n):
        raise ValueError(f"expected a square matrix, got shape {Sa.shape}")
    Sa = np.where(np.isnan(Sa), -np.inf if largest else np.inf, Sa)
    d = np.diag(Sa)[:, None]
    better = Sa > d if largest else Sa < d
    idx = np.arange(n)
    tie_before = (Sa == d) & (idx[None, :] < idx[:, None])
    return np.asarray(better.sum(axis=1) + tie_before.sum(axis=1), dtype=np.int64)


def top1acc(S: ArrayLike, *, largest: bool = True) -> float:
    """Top-1 identification accuracy: fraction of rows whose best match is the diagonal.

    Examples
    --------
    >>> top1acc(np.array([[0.9, 0.1], [0.7, 0.2]]))
    0.5
    """
    return float(np.mean(diag_ranks(S, largest=largest) == 0))


def topNacc(S: ArrayLike, top_n: int = 2, *, largest: bool = True) -> float:
    """Top-N accuracy: fraction of rows whose diagonal is among the ``top_n`` best.

    Examples
    --------
    >>> topNacc(np.array([[0.1, 0.9, 0.0], [0.0, 0.2, 0.1], [0.3, 0.2, 0.1]]), 2)
    0.6666666666666666
    """
    return float(np.mean(diag_ranks(S, largest=largest) < top_n))


def avgrank(S: ArrayLike, *, largest: bool = True) -> float:
    """Average rank percentile ``1 - mean(r_i) / n`` (1 is perfect).

    Examples
    --------
    >>> avgrank(np.eye(4))
    1.0
    """
    r = diag_ranks(S, largest=largest)
    return float(1.0 - r.mean() / r.size)


def avgrank_mean(S: ArrayLike, *, largest: bool = True) -> float:
    """Mean 1-based rank ``1 + mean(r_i)`` (the trainrecord's ``avgrank_*`` fields)."""
    return float(1.0 + diag_ranks(S, largest=largest).mean())


def avgcorr(S: ArrayLike) -> float:
    """Mean of the diagonal: each subject's prediction against its own truth."""
    return float(np.mean(np.diag(_as_float64(S))))


def avgcorr_other(S: ArrayLike) -> float:
    """Mean of the strict upper triangle (the lower triangle of the asymmetric C is ignored)."""
    Sa = _as_float64(S)
    iu = np.triu_indices(Sa.shape[0], 1)
    return float(np.mean(Sa[iu])) if iu[0].size else float("nan")


def explained_variance(X: ArrayLike, Y: ArrayLike) -> float:
    """R^2 = 1 - sum_f var(X_f - Y_f) / sum_f var(X_f), population variances across subjects.

    Examples
    --------
    >>> explained_variance([[0.0, 1.0], [2.0, 3.0]], [[0.0, 1.0], [2.0, 3.0]])
    1.0
    """
    Xa, Ya = _as_float64(X), _as_float64(Y)
    _check_pair(Xa, Ya)
    num = float(np.sum(np.var(Xa - Ya, axis=0)))
    den = float(np.sum(np.var(Xa, axis=0)))
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(1.0 - np.float64(num) / np.float64(den))


def _ident(S: FloatArray, top_n: int, largest: bool) -> tuple[float, float, float, float]:
    r = diag_ranks(S, largest=largest)
    n = r.size
    return (float(np.mean(r == 0)), float(np.mean(r < top_n)),
            float(1.0 - r.mean() / n), float(1.0 + r.mean()))


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
    module docstring.

    Examples
    --------
    >>> X = np.array([[1.0, 2.0, 4.0], [3.0, 1.0, 0.0], [0.0, 5.0, 1.0]])
    >>> m = evaluate_path(X, X)
    >>> m["top1acc"], m["avgrank"], m["explainedvar"]
    (1.0, 1.0, 1.0)
    """
    X, Y = _as_float64(true), _as_float64(pred)
    _check_pair(X, Y)
    if X.shape[0] < 1:
        raise ValueError("cannot evaluate zero subjects")
    mu = X.mean(axis=0) if demean is None else _as_float64(demean).reshape(-1)
    if mu.shape[0] != X.shape[1]:
        raise ValueError(f"demean vector has {mu.shape[0]} values, expected {X.shape[1]}")
    distance = X.shape[1] == 1
    if distance:
        C = xydist(X, Y)
        Cr = xydist(X - mu, Y - mu)
    else:
        C = xycorr(X, Y)
        Cr = xycorr(X - mu, Y - mu)
    largest = not distance
    t1, tn, ar, am = _ident(C, top_n, largest)
    p1, pn, pr, _ = _ident(C.T, top_n, largest)
    return {
        "top1acc": t1, "topNacc": tn, "avgrank": ar, "avgrank_mean": am,
        "avgcorr": avgcorr(C), "avgcorr_other": avgcorr_other(C),
        "avgcorr_resid": avgcorr(Cr), "avgcorr_resid_other": avgcorr_other(Cr),
        "explainedvar": explained_variance(X, Y),
        "top1acc_pred2true": p1, "topNacc_pred2true": pn, "avgrank_pred2true": pr,
        "top1acc_bidir": (t1 + p1) / 2, "topNacc_bidir": (tn + pn) / 2,
        "avgrank_bidir": (ar + pr) / 2,
    }


# --------------------------------------------------------------------------- torch (batched)


def xycorr_torch(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    """Batched Pearson correlation between rows: ``[..., n, F] x [..., m, F] -> [..., n, m]``.

    Examples
    --------
    >>> xycorr_torch(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])).round(decimals=4).tolist()
    [[-1.0]]
    """
    xc = X - X.mean(dim=-1, keepdim=True)
    yc = Y - Y.mean(dim=-1, keepdim=True)
    xc = xc / torch.sqrt((xc * xc).sum(dim=-1, keepdim=True))
    yc = yc / torch.sqrt((yc * yc).sum(dim=-1, keepdim=True))
    return xc @ yc.transpose(-1, -2)


def _diag_ranks_torch(S: torch.Tensor, largest: bool) -> torch.Tensor:
    """Batched :func:`diag_ranks`: ``[..., n, n] -> [..., n]`` (int64)."""
    n = S.shape[-1]
    fill = float("-inf") if largest else float("inf")
    S = torch.where(torch.isnan(S), torch.full_like(S, fill), S)
    d = torch.diagonal(S, dim1=-2, dim2=-1).unsqueeze(-1)
    better = S > d if largest else S < d
    idx = torch.arange(n, device=S.device)
    lower = idx[None, :] < idx[:, None]
    tie_before = (S == d) & lower
    return better.sum(dim=-1) + tie_before.sum(dim=-1)


def _ident_torch(S: torch.Tensor, top_n: int, largest: bool) -> tuple[torch.Tensor, ...]:
    r = _diag_ranks_torch(S, largest).to(torch.float64)
    n = S.shape[-1]
    return ((r == 0).to(torch.float64).mean(-1), (r < top_n).to(torch.float64).mean(-1),
            1.0 - r.mean(-1) / n, 1.0 + r.mean(-1))


def _upper_mean_torch(S: torch.Tensor) -> torch.Tensor:
    n = S.shape[-1]
    iu = torch.triu_indices(n, n, 1, device=S.device)
    if iu.shape[1] == 0:
        return torch.full(S.shape[:-2], float("nan"), dtype=torch.float64, device=S.device)
    return S[..., iu[0], iu[1]].to(torch.float64).mean(-1)


def _cdist_torch(X: torch.Tensor, Y: torch.Tensor) -> torch.Tensor:
    if X.shape[-1] == 1:
        return (X - Y.transpose(-1, -2)).abs()
    return torch.cdist(X, Y)


def evaluate_paths_torch(
    true: torch.Tensor,
    pred: torch.Tensor,
    *,
    demean: torch.Tensor | None = None,
    top_n: int = 2,
    metrics: tuple[str, ...] | None = None,
) -> dict[str, torch.Tensor]:
    """Batched :func:`evaluate_path` over a stack of paths, on the tensors' device.

    Parameters
    ----------
    true : Tensor of shape (n, F) or (P, n, F)
        Ground truth; a 2-D tensor is shared by all paths (paths with the same target).
    pred : Tensor of shape (P, n, F) or (n, F)
        Predictions of P paths for the same n subjects.
    demean : Tensor of shape (F,) or (P, F), optional
        ``mu`` for ``avgcorr_resid``; default: each path's truth mean over subjects.
    top_n : int
        N of ``topNacc``.
    metrics : tuple of str, optional
        Subset of :data:`METRIC_NAMES` to compute (default all). Leaving out the
        ``avgcorr_resid*`` metrics skips the second correlation matrix.

    Returns
    -------
    dict of str to Tensor
        Each value has shape (P,) and dtype float64; keys follow :data:`METRIC_NAMES`.

    Notes
    -----
    Computation always runs in float64, whatever the inputs' dtype, so ranks and ties are
    decided exactly as :func:`evaluate_path` decides them (float32 lets near-ties flip between
    torch versions and devices). Memory is O(P n F + P n^2).

    Examples
    --------
    >>> X = torch.randn(5, 10, dtype=torch.float64)
    >>> out = evaluate_paths_torch(X, torch.stack([X, X.flip(0)]))
    >>> out["top1acc"].tolist()
    [1.0, 0.2]
    """
    wanted = METRIC_NAMES if metrics is None else tuple(metrics)
    unknown = [m for m in wanted if m not in METRIC_NAMES]
    if unknown:
        raise KeyError(f"unknown metrics {unknown}; expected names from {METRIC_NAMES}")
    if pred.dim() == 2:
        pred = pred.unsqueeze(0)
    if true.dim() == 2:
        true = true.unsqueeze(0).expand(pred.shape[0], -1, -1)
    if true.shape != pred.shape:
        raise ValueError(f"true and predicted stacks differ in shape: {tuple(true.shape)} vs {tuple(pred.shape)}")
    true = true.to(torch.float64)
    pred = pred.to(torch.float64)
    distance = true.shape[-1] == 1
    largest = not distance
    pair = _cdist_torch if distance else xycorr_torch
    out: dict[str, torch.Tensor] = {}
    C = pair(true, pred)
    t1, tn, ar, am = _ident_torch(C, top_n, largest)
    p1, pn, pr, _ = _ident_torch(C.transpose(-1, -2), top_n, largest)
    diag = torch.diagonal(C, dim1=-2, dim2=-1).to(torch.float64).mean(-1)
    vals: dict[str, torch.Tensor] = {
        "top1acc": t1, "topNacc": tn, "avgrank": ar, "avgrank_mean": am,
        "avgcorr": diag, "avgcorr_other": _upper_mean_torch(C),
        "top1acc_pred2true": p1, "topNacc_pred2true": pn, "avgrank_pred2true": pr,
        "top1acc_bidir": (t1 + p1) / 2, "topNacc_bidir": (tn + pn) / 2,
        "avgrank_bidir": (ar + pr) / 2,
    }
    if "avgcorr_resid" in wanted or "avgcorr_resid_other" in wanted:
        mu = true.mean(dim=-2, keepdim=True) if demean is None else demean.to(true)
        if mu.dim() == 1:
            mu = mu[None, None, :]
        elif mu.dim() == 2 and mu.shape[-2] != 1:
            mu = mu.unsqueeze(-2)
        Cr = pair(true - mu, pred - mu)
        vals["avgcorr_resid"] = torch.diagonal(Cr, dim1=-2, dim2=-1).to(torch.float64).mean(-1)
        vals["avgcorr_resid_other"] = _upper_mean_torch(Cr)
    if "explainedvar" in wanted:
        num = (true - pred).to(torch.float64).var(dim=-2, unbiased=False).sum(-1)
        den = true.to(torch.float64).var(dim=-2, unbiased=False).sum(-1)
        vals["explainedvar"] = 1.0 - num / den
    for name in wanted:
        out[name] = vals[name]
    return out


def metrics_to_record_fields(
    metrics: Mapping[str, float], *, split: str = "val", origscale: bool = True
) -> dict[str, float]:
    """Rename a :func:`evaluate_path` result to the original's record field names.

    Examples
    --------
    >>> metrics_to_record_fields({"top1acc": 0.5})
    {'corrloss_OrigScale_val': 0.5}
    """
    return {record_field(k, split, origscale): v for k, v in metrics.items() if k in RECORD_FIELDS}


__all__ += ["metrics_to_record_fields"]
