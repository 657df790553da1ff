"""Evaluation reports of ``kraken run --evaluate``: metrics CSV and the heatmap figure."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..io._atomic import atomic_path

#: Columns of the metrics table, in display order.
METRIC_COLUMNS = ("top1acc", "topNacc", "avgrank", "avgcorr", "avgcorr_other", "avgcorr_resid", "explainedvar")


def mean_row(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The mean of every metric over rows."""
    out: dict[str, Any] = {"source": "mean", "target": ""}
    for c in METRIC_COLUMNS:
        vals = [float(r[c]) for r in rows if c in r]
        out[c] = sum(vals) / len(vals) if vals else float("nan")
    return out


def write_metrics_csv(rows: Sequence[dict[str, Any]], file: str | Path) -> Path:
    """One row per (source, target) path plus a mean row (atomic)."""
    path = Path(file)
    cols = ["source", "target", "n_subjects", *[k for k in rows[0] if k not in ("source", "target", "n_subjects")]]
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=cols, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)
            w.writerow(mean_row(rows))
    return path


def write_evaluation(rows: Sequence[dict[str, Any]], metrics_csv: str | None, heatmap: str | None,
                     *, title: str = "") -> list[Path]:
    """Write the requested CSV and heatmap; returns the files written."""
    out: list[Path] = []
    if metrics_csv:
        out.append(write_metrics_csv(rows, metrics_csv))
    if heatmap:
        from ..plots import heatmap_from_metrics

        heatmap_from_metrics(list(rows), heatmap, title=title)
        out.append(Path(heatmap))
    return out
