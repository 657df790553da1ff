"""Figures: the identifiability heatmap (UPSTREAM 7.7) and training curves, as PNG files.

Figures are built on :class:`matplotlib.figure.Figure` and rendered with the Agg canvas
(:mod:`._render`), so nothing here opens a window, touches pyplot's global figure list, needs
a display, or switches the process's matplotlib backend.

Modules:

* :mod:`.style`: flavor labels, colours, sort keys, metric labels and colour scales;
* :mod:`.tables`: display order, the ``average`` row/column, and the CSV file of the tables;
* :mod:`.heatmap`: :func:`plot_heatmap`, drawn from arrays (one panel per metric);
* :mod:`.select`: :func:`heatmap_from_record` and :func:`heatmap_from_metrics`, which pick the
  values out of a training record or ``kraken run --evaluate`` results;
* :mod:`.curves`: :func:`plot_training_curves` (median over paths and a 10-90 % band per
  metric, train and validation apart, best epoch marked).
"""

from __future__ import annotations

from .curves import (
    CurvePanel,
    CurveSeries,
    draw_training_curves,
    plot_training_curves,
    training_curve_panels,
)
from .heatmap import DEFAULT_HEATMAP_METRICS, plot_heatmap
from .select import heatmap_from_metrics, heatmap_from_record, record_heatmap_values
from .style import display_sort_key, short_flavor_label
from .style import fmt_cell as _fmt_cell  # noqa: F401  (the tests' name for it)
from .tables import HeatValues, heatmap_tables, write_heatmap_csv

__all__ = [
    "DEFAULT_HEATMAP_METRICS",
    "CurvePanel",
    "CurveSeries",
    "HeatValues",
    "display_sort_key",
    "draw_training_curves",
    "heatmap_from_metrics",
    "heatmap_from_record",
    "heatmap_tables",
    "plot_heatmap",
    "plot_training_curves",
    "record_heatmap_values",
    "short_flavor_label",
    "training_curve_panels",
    "write_heatmap_csv",
]
