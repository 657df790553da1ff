"""The identifiability heatmap (UPSTREAM 7.7): one panel per metric, drawn from arrays.

Rows are source flavors, columns target flavors, both grouped by atlas and SC/FC
(:func:`~kraken_cli.engine.flavors.flavor_sort_key`), with an ``average`` row and column over
the flavor rows/columns and fusion rows last after a gap.
"""

from __future__ import annotations

import math
import os
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.colors import Colormap, Normalize
from matplotlib.figure import Figure

from ._render import new_figure, save_png
from .style import (
    AVERAGE,
    GAP,
    colormap,
    fmt_cell,
    label_color,
    luminance,
    metric_clim,
    metric_label,
    separator_width,
    short_flavor_label,
)
from .tables import HeatValues, heatmap_tables

__all__ = ["DEFAULT_HEATMAP_METRICS", "plot_heatmap"]

FloatArray = npt.NDArray[np.float64]

#: The original's default heatmap panels.
DEFAULT_HEATMAP_METRICS: tuple[str, ...] = ("top1acc", "topNacc", "avgrank", "avgcorr_resid")

_BAD_CELL = (0.75, 0.75, 0.75, 0.35)


@dataclass(frozen=True)
class _Layout:
    """Panel grid, figure size and font sizes (points) of one heatmap figure."""

    nrows: int
    ncols: int
    figsize: tuple[float, float]
    fontsize: float
    label_fontsize: float


def _grid(n: int) -> tuple[int, int]:
    if n <= 1:
        return 1, 1
    if n == 2:
        return 1, 2
    if n <= 4:
        return 2, 2
    return math.ceil(n / 3), 3


def _layout(n_panels: int, n_rows: int, n_cols: int, figsize: tuple[float, float] | None) -> _Layout:
    """Figure size grown for many flavors, font sizes from the cell size."""
    nrows_g, ncols_g = _grid(n_panels)
    if figsize is None:
        scale = max(1.0, max(n_rows, n_cols) / 14.0)
        figsize = (9.0 * ncols_g * scale, 6.0 * nrows_g * scale)
    cell_h = 72.0 * figsize[1] / nrows_g * 0.6 / n_rows
    cell_w = 72.0 * figsize[0] / ncols_g * 0.6 / n_cols
    fontsize = float(np.clip(min(cell_h * 0.45, cell_w * 0.28), 5.0, 12.0))
    label_fontsize = float(np.clip(cell_h * 0.55, 6.0, 11.0))
    return _Layout(nrows_g, ncols_g, figsize, fontsize, label_fontsize)


def _with_gap_rows(table: FloatArray, rows: list[str], n_cols: int) -> FloatArray:
    """The table spread over ``rows``, gap rows left NaN."""
    data = np.full((len(rows), n_cols), np.nan)
    ti = 0
    for i, r in enumerate(rows):
        if r != GAP:
            data[i] = table[ti]
            ti += 1
    return data


def _draw_cells(ax: Axes, data: FloatArray, rows: list[str], cmap: Colormap, norm: Normalize,
                fontsize: float) -> Any:
    """The coloured cells with their values; gap rows are blank, not NaN cells."""
    img = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, norm=norm, aspect="auto",
                    interpolation="nearest")
    for i, r in enumerate(rows):
        if r == GAP:
            ax.axhspan(i - 0.5, i + 0.5, color="white", zorder=2)
            continue
        for j in range(data.shape[1]):
            v = data[i, j]
            if not np.isfinite(v):
                continue
            color = "white" if luminance(cmap(norm(v))) < 0.5 else "black"
            ax.text(j, i, fmt_cell(float(v)), ha="center", va="center", fontsize=fontsize,
                    color=color, zorder=3, in_layout=False, clip_on=True)
    return img


def _draw_separators(ax: Axes, rows: list[str], cols: list[str], line_color: str) -> None:
    """Lines between atlas/SC/FC groups and before the average row/column."""
    for i in range(1, len(rows)):
        lw = separator_width(rows[i - 1], rows[i])
        if lw:
            ax.axhline(i - 0.5, color=line_color, linewidth=lw, zorder=4)
    for j in range(1, len(cols)):
        lw = separator_width(cols[j - 1], cols[j])
        if lw:
            ax.axvline(j - 0.5, color=line_color, linewidth=lw, zorder=4)


def _label_axes(ax: Axes, rows: list[str], cols: list[str], title: str, label_fontsize: float) -> None:
    """Coloured flavor tick labels, axis names and the panel title."""
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(["" if r == GAP else short_flavor_label(r) for r in rows], fontsize=label_fontsize)
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([short_flavor_label(c) for c in cols], fontsize=label_fontsize, rotation=40,
                       ha="right", rotation_mode="anchor")
    for labels, names in ((ax.get_yticklabels(), rows), (ax.get_xticklabels(), cols)):
        for lab, name in zip(labels, names):
            lab.set_color(label_color(name))
            if name == AVERAGE:
                lab.set_fontstyle("italic")
    ax.tick_params(length=0)
    ax.set_ylabel("SOURCE (row)", fontsize=label_fontsize, fontweight="bold")
    ax.set_xlabel("TARGET (col)", fontsize=label_fontsize, fontweight="bold")
    ax.set_title(title, fontsize=label_fontsize + 2, fontweight="bold")
    for spine in ax.spines.values():
        spine.set_visible(False)


def _draw_panel(ax: Axes, table: FloatArray, rows: list[str], cols: list[str], *, title: str,
                cmap: Colormap, norm: Normalize, fontsize: float, label_fontsize: float,
                line_color: str = "white") -> Any:
    """One heatmap panel; ``rows`` may contain the gap marker."""
    data = _with_gap_rows(table, rows, len(cols))
    img = _draw_cells(ax, data, rows, cmap, norm, fontsize)
    _draw_separators(ax, rows, cols, line_color)
    _label_axes(ax, rows, cols, title, label_fontsize)
    return img


def _panel_scale(metric: str, table: FloatArray, base_cmap: Colormap,
                 clim: Mapping[str, tuple[float, float]] | None) -> tuple[Colormap, Normalize, bool]:
    """Colormap and limits of one panel, and whether it uses its own (diverging) colormap."""
    lo, hi, special = metric_clim(metric)
    if clim and metric in clim:
        lo, hi = clim[metric]
    if not np.isfinite(hi):  # open-ended (mean rank): from the data
        finite = table[np.isfinite(table)]
        hi = float(finite.max()) if finite.size else lo + 1.0
    cm = (matplotlib.colormaps[special] if special else base_cmap).with_extremes(bad=_BAD_CELL)
    return cm, Normalize(vmin=lo, vmax=hi), special is not None


def _panel_title(metric: str, *, panel_titles: Mapping[str, str] | None, prefix: str, top_n: int,
                 epoch_labels: Mapping[str, str] | None) -> str:
    if panel_titles and metric in panel_titles:
        return panel_titles[metric]
    ptitle = f"{prefix} {metric_label(metric, top_n)} SRC(row)xTARG(col)".strip()
    if epoch_labels and epoch_labels.get(metric):
        ptitle += f", {epoch_labels[metric]}"
    return ptitle


def _figure_texts(fig: Figure, title: str | None, subtitle: str | None, footer: str | None,
                  label_fontsize: float) -> None:
    """Super-title (wrapped to two lines at most), top-right subtitle and footer."""
    big = float(np.clip(label_fontsize * 1.8, 12, 20))
    if title:
        # long checkpoint names: keep the title inside the figure (wrap, at most two lines, then ellipsis)
        width = int(fig.get_figwidth() * 72 / big * 1.6)
        lines = textwrap.wrap(title, width, break_on_hyphens=False) or [title]
        if len(lines) > 2:
            lines = [lines[0], lines[1][: max(width - 1, 1)] + "…"]
        fig.suptitle("\n".join(lines), x=0.01, ha="left", fontsize=big)
    if subtitle:
        fig.text(0.99, 0.995, subtitle, ha="right", va="top", fontsize=big * 0.85)
    if footer:
        fig.supxlabel(footer, fontsize=max(6.0, label_fontsize - 1), x=0.01, ha="left")


def _draw_panels(fig: Figure, tables: Mapping[str, FloatArray], rows: list[str], cols: list[str], lay: _Layout, *,
                 base_cmap: Colormap, clim: Mapping[str, tuple[float, float]] | None,
                 titles: Mapping[str, str]) -> None:
    """One panel with its colour bar per table on the layout's grid; unused grid cells hidden."""
    axes = fig.subplots(lay.nrows, lay.ncols, squeeze=False)
    for k, (metric, table) in enumerate(tables.items()):
        ax = axes.flat[k]
        cm, norm, special = _panel_scale(metric, table, base_cmap, clim)
        img = _draw_panel(ax, table, rows, cols, title=titles[metric], cmap=cm, norm=norm,
                          fontsize=lay.fontsize, label_fontsize=lay.label_fontsize,
                          line_color="0.35" if special else "white")
        cb = fig.colorbar(img, ax=ax, fraction=0.04, pad=0.02)
        cb.ax.tick_params(labelsize=lay.label_fontsize)
    for ax in list(axes.flat)[len(tables):]:
        ax.set_visible(False)


def plot_heatmap(
    values: Mapping[str, HeatValues], sources: Sequence[str], targets: Sequence[str],
    out_file: str | os.PathLike[str], *,
    title: str | None = None, subtitle: str | None = None, footer: str | None = None,
    panel_titles: Mapping[str, str] | None = None, prefix: str = "OrigScale",
    epoch_labels: Mapping[str, str] | None = None, top_n: int = 2,
    cmap: str = "magma", clim: Mapping[str, tuple[float, float]] | None = None,
    dpi: int = 200, figsize: tuple[float, float] | None = None,
) -> Path:
    """Draw the identifiability heatmap, one panel per metric, and save it as PNG.

    Parameters
    ----------
    values : mapping
        Metric name (e.g. ``top1acc``, ``topNacc``, ``avgrank``, ``avgcorr_resid``, ``r2``) ->
        ``[len(sources) x len(targets)]`` array in the given order, or a mapping
        ``(source, target) -> value``. Missing pairs and NaN are shown as light grey cells.
    sources, targets : sequence of str
        Source (row) and target (column) flavor names; fusion sources go last after a gap.
    out_file : path-like
        PNG file to write (atomically).
    title, subtitle, footer : str, optional
        Super-title at the top left (``OrigScale, Validation(n=26), Best All-Path Epoch``), text
        at the top right (``Final epoch: 40``), small text at the bottom (a file name).
    panel_titles, prefix, epoch_labels
        Metric -> full panel title; else ``"<prefix> <metric> SRC(row)xTARG(col)"`` with
        ``prefix`` (default ``OrigScale``) and ``, <epoch_labels[metric]>`` (``"ep40"``) appended.
    top_n : int
        N shown in the ``topNacc`` label.
    cmap : str
        Matplotlib colormap for accuracy/rank/correlation panels (``R²`` uses a diverging one);
        ``magma2`` is magma without its darkest end (the default of training heatmaps).
    clim : mapping, optional
        Metric -> (vmin, vmax); default 0..1 (-1..1 for R² and off-diagonal correlations).
    dpi, figsize
        Resolution and size in inches; the default 18 x 12 inches (4 panels, grown for many
        flavors) at 200 dpi is 3600 x 2400 px, like the original's.

    Returns
    -------
    Path
        The PNG written.
    """
    if not values:
        raise ValueError("plot_heatmap needs at least one metric")
    flavor_rows, fusion_rows, cols, tables = heatmap_tables(values, sources, targets)
    rows = flavor_rows + [AVERAGE] + ([GAP] + fusion_rows if fusion_rows else [])
    disp_cols = cols + [AVERAGE]
    lay = _layout(len(tables), len(rows), len(disp_cols), figsize)
    fig = new_figure(lay.figsize, dpi)
    titles = {m: _panel_title(m, panel_titles=panel_titles, prefix=prefix, top_n=top_n, epoch_labels=epoch_labels)
              for m in tables}
    _draw_panels(fig, tables, rows, disp_cols, lay, base_cmap=colormap(cmap), clim=clim, titles=titles)
    _figure_texts(fig, title, subtitle, footer, lay.label_fontsize)
    return save_png(fig, out_file, dpi)
