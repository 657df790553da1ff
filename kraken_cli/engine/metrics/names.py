"""Metric names: kraken's names, their aliases, and the original's record field names.

See the table "Record field names" in :mod:`kraken_cli.engine.metrics`.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["METRIC_NAMES", "RECORD_FIELDS", "canonical_metric", "metrics_to_record_fields", "record_field"]

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
