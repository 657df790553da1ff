"""Data selection for the heatmap: values from a training record or from evaluation rows."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..metrics import canonical_metric
from ..training.record import TrainRecord, read_record
from .heatmap import DEFAULT_HEATMAP_METRICS, plot_heatmap
from .style import metric_label
from .tables import write_heatmap_csv

__all__ = ["heatmap_from_metrics", "heatmap_from_record", "record_heatmap_values"]

FloatArray = npt.NDArray[np.float64]
PathValues = dict[tuple[str, str], float]


def _metric_or_nan(rec: TrainRecord, metric: str, split: str, origscale: bool) -> FloatArray:
    try:
        return rec.metric(metric, split, origscale)
    except KeyError:
        return np.full((rec.n_paths, max(rec.n_epochs, 1)), np.nan)


def _metric_at_epoch(rec: TrainRecord, metric: str, arr: FloatArray, *, epoch: int | None, per_path: bool,
                     split: str, origscale: bool) -> tuple[list[float], str]:
    """Per-path values of one metric at the chosen epoch, and the epoch text of its panel."""
    if per_path:
        best = rec.best_epoch(metric, split, origscale, per_path=True) if np.isfinite(arr).any() \
            else np.full(rec.n_paths, -1)
        return [arr[p, e] if e >= 0 else np.nan for p, e in enumerate(best)], "best ep per path"
    e = epoch
    if e is None and np.isfinite(arr).any():
        e = rec.best_epoch(metric, split, origscale)
    if e is None:
        return [np.nan] * rec.n_paths, ""
    if not -arr.shape[1] <= e < arr.shape[1]:
        raise ValueError(f"epoch {e} is outside the record's 0..{arr.shape[1] - 1}")
    return list(arr[:, e]), f"ep{rec.epoch_label(e % arr.shape[1])}"


def record_heatmap_values(rec: TrainRecord, metrics: Sequence[str], *, epoch: int | None = None,
                          per_path: bool = False, split: str = "val", origscale: bool = True,
                          ) -> tuple[dict[str, PathValues], dict[str, str]]:
    """Metric -> ((source, target) -> value) at the chosen epochs, and metric -> epoch text."""
    values: dict[str, PathValues] = {}
    labels: dict[str, str] = {}
    for metric in metrics:
        arr = _metric_or_nan(rec, metric, split, origscale)
        vals, labels[metric] = _metric_at_epoch(rec, metric, arr, epoch=epoch, per_path=per_path,
                                                split=split, origscale=origscale)
        values[metric] = {pt: float(v) for pt, v in zip(rec.paths, vals)}
    return values, labels


def _record_title(rec: TrainRecord, *, split: str, origscale: bool, per_path: bool, epoch: int | None) -> str:
    n = rec.n_subjects(split)
    space = "OrigScale" if origscale else "OptimScale"
    which = "Validation" if split == "val" else "Training"
    if per_path:
        how = "Best Per-Path Epoch"
    elif epoch is None:
        how = "Best All-Path Epoch"
    else:
        how = f"Epoch {rec.epoch_label(epoch % max(rec.n_epochs, 1))}"
    return f"{space}, {which}{f'(n={n})' if n is not None else ''}, {how}"


def _csv_titles(metrics: Sequence[str], space: str, top_n: int,
                labels: Mapping[str, str] | None = None) -> dict[str, str]:
    labels = labels or {}
    return {m: f"{space} {metric_label(m, top_n)} SRC(row)xTARG(col)"
            + (f", {labels[m]}" if labels.get(m) else "") for m in metrics}


def _sources_targets(pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
    return list(dict.fromkeys(s for s, _ in pairs)), list(dict.fromkeys(t for _, t in pairs))


def heatmap_from_record(
    record: TrainRecord | str | os.PathLike[str], out_file: str | os.PathLike[str], *,
    metrics: Sequence[str] = DEFAULT_HEATMAP_METRICS, epoch: int | None = None, per_path: bool = False,
    split: str = "val", origscale: bool = True, csv_file: str | os.PathLike[str] | None = None,
    cmap: str = "magma2", dpi: int = 200,
) -> Path:
    """Heatmap of a training record (the original's or kraken's), as the original draws it.

    Parameters
    ----------
    record : TrainRecord or path-like
        A training record or its ``.mat`` file.
    out_file : path-like
        PNG to write.
    metrics : sequence of str
        Panels; kraken names or the original's heatmap names (``top1acc``, ``topnacc``,
        ``avgrank``, ``avgcorr_resid``, ``r2``, ``top1accx``...).
    epoch : int, optional
        0-based epoch to show; default the "Best All-Path Epoch" of each metric separately
        (:meth:`TrainRecord.best_epoch`).
    per_path : bool
        Use each path's own best epoch instead.
    split : {"val", "train"}
    origscale : bool
        Original edge space (``_OrigScale`` fields, the default) or the transformed space.
    csv_file : path-like, optional
        Also write the tables as CSV (:func:`write_heatmap_csv`).
    cmap, dpi
        As in :func:`plot_heatmap`.

    Returns
    -------
    Path
        The PNG written.
    """
    rec = record if isinstance(record, TrainRecord) else read_record(record)
    sources, targets = _sources_targets(rec.paths)
    values, labels = record_heatmap_values(rec, metrics, epoch=epoch, per_path=per_path, split=split,
                                           origscale=origscale)
    space = "OrigScale" if origscale else "OptimScale"
    title = _record_title(rec, split=split, origscale=origscale, per_path=per_path, epoch=epoch)
    footer = rec.path.name if rec.path is not None else str(rec.fields.get("recordfile", "") or "")
    topn = int(rec.fields.get("topN", 2) or 2)
    out = plot_heatmap(values, sources, targets, out_file, title=title,
                       subtitle=f"Final epoch: {rec.epoch_label(rec.final_epoch)}",
                       footer=footer or None, prefix=space, epoch_labels=labels, top_n=topn,
                       cmap=cmap, dpi=dpi)
    if csv_file is not None:
        write_heatmap_csv(values, sources, targets, csv_file, titles=_csv_titles(metrics, space, topn, labels))
    return out


def heatmap_from_metrics(
    rows: Sequence[Mapping[str, Any]], out_file: str | os.PathLike[str], *,
    metrics: Sequence[str] = DEFAULT_HEATMAP_METRICS, title: str | None = None, subtitle: str | None = None,
    footer: str | None = None, n_subjects: int | None = None, top_n: int = 2,
    csv_file: str | os.PathLike[str] | None = None, cmap: str = "magma", dpi: int = 200,
) -> Path:
    """Heatmap of ``kraken run --evaluate`` results.

    Parameters
    ----------
    rows : sequence of mapping
        One mapping per path with ``source``, ``target`` and metric values under kraken's
        names (the output of :func:`~kraken_cli.engine.metrics.evaluate_path` plus the names).
    out_file : path-like
        PNG to write.
    metrics : sequence of str
        Panels (kraken names or heatmap aliases such as ``r2``, ``top1accx``).
    title, subtitle, footer : str, optional
        Figure texts; the default title is ``OrigScale, Evaluation(n=<n_subjects>)``.
    n_subjects : int, optional
        Number of evaluated subjects, for the default title.
    top_n : int
        N of ``topNacc``.
    csv_file : path-like, optional
        Also write the tables as CSV.
    cmap, dpi
        As in :func:`plot_heatmap`.
    """
    sources, targets = _sources_targets([(str(r["source"]), str(r["target"])) for r in rows])
    values: dict[str, PathValues] = {}
    for metric in metrics:
        key = canonical_metric(metric)
        vals: PathValues = {}
        for r in rows:
            v = r.get(metric, r.get(key))
            vals[(str(r["source"]), str(r["target"]))] = np.nan if v is None else float(v)
        values[metric] = vals
    if title is None:
        title = f"OrigScale, Evaluation(n={n_subjects})" if n_subjects is not None else "OrigScale, Evaluation"
    out = plot_heatmap(values, sources, targets, out_file, title=title, subtitle=subtitle,
                       footer=footer, top_n=top_n, cmap=cmap, dpi=dpi)
    if csv_file is not None:
        write_heatmap_csv(values, sources, targets, csv_file, titles=_csv_titles(metrics, "OrigScale", top_n))
    return out
