"""Figures: the identifiability heatmap (UPSTREAM 7.7) and training curves, as PNG files.

Figures are built on :class:`matplotlib.figure.Figure` and rendered with the Agg canvas, so
nothing here opens a window, touches pyplot's global figure list, or needs a display. When
pyplot has not been imported yet, the module also selects the Agg backend for the process.

* :func:`plot_heatmap` draws one panel per metric (default the 2 x 2 grid ``top1acc``,
  ``topNacc``, ``avgrank``, ``avgcorr_resid``): rows are source flavors, columns target
  flavors, both grouped by atlas and SC/FC (:func:`~kraken_cli.engine.flavors.flavor_sort_key`),
  with an ``average`` row and column over the flavor rows/columns and fusion rows last after a
  gap. :func:`heatmap_from_record` and :func:`heatmap_from_metrics` feed it from a training
  record or from ``kraken run --evaluate`` results; :func:`write_heatmap_csv` writes the same
  tables as CSV.
* :func:`plot_training_curves` summarises a training record with any number of paths: per
  metric the median over paths and a 10-90 % band, train and validation apart, best epoch marked.
"""

from __future__ import annotations

import math
import os
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import matplotlib

if "matplotlib.pyplot" not in sys.modules:  # headless by default, never clobber a user's pyplot
    matplotlib.use("Agg")

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.colors import Colormap, ListedColormap, Normalize  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from .flavors import atlas_of, flavor_sort_key, group_of, is_latent_name  # noqa: E402
from .io._atomic import atomic_path, check_writable_dir  # noqa: E402
from .metrics import canonical_metric  # noqa: E402
from .training.record import TrainRecord, read_record  # noqa: E402

__all__ = [
    "DEFAULT_HEATMAP_METRICS",
    "heatmap_from_metrics",
    "heatmap_from_record",
    "heatmap_tables",
    "plot_heatmap",
    "plot_training_curves",
    "display_sort_key",
    "short_flavor_label",
    "write_heatmap_csv",
]

FloatArray = npt.NDArray[np.float64]
#: Values of one heatmap metric: ``[sources x targets]`` in the given order, or (source, target) -> value.
HeatValues = Union[npt.ArrayLike, Mapping[tuple[str, str], float]]

#: The original's default heatmap panels.
DEFAULT_HEATMAP_METRICS: tuple[str, ...] = ("top1acc", "topNacc", "avgrank", "avgcorr_resid")

_FUSION_COLOR = "#1f4e9c"
_GAP = "__gap__"
_AVERAGE = "average"


# --------------------------------------------------------------------------- labels


def short_flavor_label(name: str) -> str:
    """Display label: the atlas first, e.g. ``FCcorr_fs86_hpf`` -> ``fs86_FCcorr_hpf``.

    Examples
    --------
    >>> short_flavor_label("SCifod2act_fs86_volnorm"), short_flavor_label("fusionSC")
    ('fs86_SCifod2act_volnorm', 'fusionSC')
    >>> short_flavor_label("SCifod2act_cocommpsuit439_volnorm")
    'coco439_SCifod2act_volnorm'
    """
    if is_latent_name(name):
        return name
    atlas = atlas_of(name)
    if atlas is None:
        return name
    parts = name.split("_")
    for i, part in enumerate(parts):
        if atlas_of(part) == atlas:
            rest = parts[:i] + parts[i + 1:]
            return "_".join([atlas] + rest)
    return name


def _label_color(name: str) -> str:
    """Colour per SC/FC and measure (FC reds, SC greens, fusion blue)."""
    if name in (_AVERAGE, _GAP):
        return "black"
    if is_latent_name(name):
        return _FUSION_COLOR
    low = name.lower()
    grp = group_of(name)
    if grp == "FC":
        return "#8b0000" if "pcorr" in low else ("#d62020" if "gsr" not in low else "#e8503a")
    if grp == "SC":
        return "#006400" if "sdstream" in low else "#1faa1f"
    return "black"


def display_sort_key(name: str) -> tuple[Any, ...]:
    """Row/column order of the heatmap (UPSTREAM 7.7 ``flavor_reorder``).

    :func:`~kraken_cli.engine.flavors.flavor_sort_key` (fusion last, FC before SC, pcorr last
    within FC, then atlas order), refined so that within an atlas ``ifod2act``, ``volnorm``
    and ``sift2`` flavors come after the others (``SCsdstream`` before ``SCifod2act``).
    """
    key = flavor_sort_key(name)
    low = name.lower()
    return (*key[:4], "ifod2act" in low, "volnorm" in low, "sift2" in low, key[4])


def _group_key(name: str) -> tuple[Any, ...]:
    """Rows with different keys are separated by a thick line (SC/FC blocks, fusion)."""
    if name in (_AVERAGE, _GAP):
        return (name,)
    if is_latent_name(name):
        return ("fusion",)
    return (group_of(name),)


def _measure_key(name: str) -> tuple[Any, ...]:
    """Within a block, a thin line separates measures (FC correlation vs partial correlation)."""
    if name in (_AVERAGE, _GAP) or is_latent_name(name):
        return _group_key(name)
    return (group_of(name), "pcorr" in name.lower())


# --------------------------------------------------------------------------- tables


def _matrix(vals: HeatValues, sources: Sequence[str], targets: Sequence[str]) -> FloatArray:
    if isinstance(vals, Mapping):
        m = np.full((len(sources), len(targets)), np.nan)
        si = {s: i for i, s in enumerate(sources)}
        ti = {t: j for j, t in enumerate(targets)}
        for key, v in vals.items():
            src, tgt = key if isinstance(key, tuple) else str(key).split("->", 1)
            if src in si and tgt in ti:
                m[si[src], ti[tgt]] = np.nan if v is None else float(v)
        return m
    arr = np.asarray(vals, dtype=np.float64)
    if arr.shape != (len(sources), len(targets)):
        raise ValueError(f"heatmap values have shape {arr.shape}, expected "
                         f"({len(sources)} sources x {len(targets)} targets)")
    return arr


def _nanmean(a: FloatArray, axis: int | None = None) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def heatmap_tables(
    values: Mapping[str, HeatValues], sources: Sequence[str], targets: Sequence[str]
) -> tuple[list[str], list[str], list[str], dict[str, FloatArray]]:
    """Order rows and columns for display and add the ``average`` row and column.

    Parameters
    ----------
    values : mapping
        Metric -> ``[len(sources) x len(targets)]`` array, or (source, target) -> value.
    sources, targets : sequence of str
        Row and column names in the order of the arrays.

    Returns
    -------
    flavor_rows : list of str
        Non-fusion sources in display order.
    fusion_rows : list of str
        Fusion (latent) sources in display order.
    cols : list of str
        Targets in display order.
    tables : dict of str to ndarray
        Metric -> ``[(len(flavor_rows) + 1 + len(fusion_rows)) x (len(cols) + 1)]``: the flavor
        rows, the ``average`` row (mean over the flavor rows), then the fusion rows; the last
        column is the row average over the targets.
    """
    src, tgt = list(sources), list(targets)
    if len(set(src)) != len(src) or len(set(tgt)) != len(tgt):
        raise ValueError("heatmap sources and targets must not repeat")
    flavor_rows = sorted((s for s in src if not is_latent_name(s)), key=display_sort_key)
    fusion_rows = sorted((s for s in src if is_latent_name(s)), key=display_sort_key)
    cols = sorted(tgt, key=display_sort_key)
    tables: dict[str, FloatArray] = {}
    for metric, vals in values.items():
        m = _matrix(vals, src, tgt)
        rsel = [src.index(r) for r in flavor_rows + fusion_rows]
        csel = [tgt.index(c) for c in cols]
        body = m[np.ix_(rsel, csel)] if rsel and csel else np.full((len(rsel), len(csel)), np.nan)
        nf = len(flavor_rows)
        flav_cols = [j for j, c in enumerate(cols) if not is_latent_name(c)]
        row_avg = _nanmean(body[:, flav_cols], axis=1) if flav_cols else np.full(len(rsel), np.nan)
        with_avg = np.column_stack([body, row_avg]) if len(rsel) else np.zeros((0, len(cols) + 1))
        avg_row = _nanmean(with_avg[:nf], axis=0) if nf else np.full(len(cols) + 1, np.nan)
        if nf and flav_cols:
            avg_row[-1] = _nanmean(body[:nf][:, flav_cols])
        tables[metric] = np.vstack([with_avg[:nf], avg_row[None, :], with_avg[nf:]])
    return flavor_rows, fusion_rows, cols, tables


def _fmt_cell(v: float) -> str:
    """Two decimals without the leading zero: ``.25``, ``-.07``, ``1.00``."""
    s = f"{v:.2f}"
    if s.startswith("0."):
        return s[1:]
    if s.startswith("-0."):
        return "-" + s[2:]
    return s


_METRIC_LABELS = {
    "top1acc": "corr top1acc", "avgrank": "avgrank %ile", "avgrank_mean": "mean rank",
    "avgcorr": "avgcorr", "avgcorr_other": "avgcorr (other)", "avgcorr_resid": "avgcorr (resid)",
    "avgcorr_resid_other": "avgcorr (resid, other)", "explainedvar": "R²",
}


def _metric_label(metric: str, top_n: int) -> str:
    try:
        m = canonical_metric(metric)
    except KeyError:
        return metric
    base, _, suffix = m.partition("_bidir") if m.endswith("_bidir") else m.partition("_pred2true")
    suffix_txt = " (bidir)" if m.endswith("_bidir") else (" (pred2true)" if m.endswith("_pred2true") else "")
    if base == "topNacc":
        return f"corr top{top_n}acc{suffix_txt}"
    return _METRIC_LABELS.get(base, base) + suffix_txt


def _metric_clim(metric: str) -> tuple[float, float, str | None]:
    try:
        m = canonical_metric(metric)
    except KeyError:
        return 0.0, 1.0, None
    if m == "explainedvar":
        return -1.0, 1.0, "PuOr_r"
    if m == "avgrank_mean":
        return 1.0, float("nan"), None
    if m in ("avgcorr_other", "avgcorr_resid_other"):
        return -1.0, 1.0, None
    return 0.0, 1.0, None


# --------------------------------------------------------------------------- heatmap


def _colormap(name: str) -> Colormap:
    """A matplotlib colormap; ``magma2`` is magma without its darkest 15 % (the original's
    training heatmaps), so low values stay distinguishable from the cell text."""
    if name == "magma2":
        base = matplotlib.colormaps["magma"]
        return ListedColormap(base(np.linspace(0.15, 1.0, 256)), name="magma2")
    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"unknown colormap {name!r}") from None


def _grid(n: int) -> tuple[int, int]:
    if n <= 1:
        return 1, 1
    if n == 2:
        return 1, 2
    if n <= 4:
        return 2, 2
    return math.ceil(n / 3), 3


def _luminance(rgba: Sequence[float]) -> float:
    r, g, b = rgba[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def _draw_panel(ax: Axes, table: FloatArray, rows: list[str], cols: list[str], *, title: str,
                cmap: Colormap, norm: Normalize, fontsize: float, label_fontsize: float,
                line_color: str = "white") -> Any:
    """One heatmap panel; ``rows`` may contain the gap marker."""
    nr, nc = len(rows), len(cols)
    data = np.full((nr, nc), np.nan)
    ti = 0
    for i, r in enumerate(rows):
        if r != _GAP:
            data[i] = table[ti]
            ti += 1
    img = ax.imshow(np.ma.masked_invalid(data), cmap=cmap, norm=norm, aspect="auto",
                    interpolation="nearest")
    gap_rows = [i for i, r in enumerate(rows) if r == _GAP]
    for i in gap_rows:  # the gap is blank, not a NaN cell
        ax.axhspan(i - 0.5, i + 0.5, color="white", zorder=2)
    for i, r in enumerate(rows):
        if r == _GAP:
            continue
        for j in range(nc):
            v = data[i, j]
            if not np.isfinite(v):
                continue
            color = "white" if _luminance(cmap(norm(v))) < 0.5 else "black"
            ax.text(j, i, _fmt_cell(float(v)), ha="center", va="center", fontsize=fontsize,
                    color=color, zorder=3, in_layout=False, clip_on=True)
    # block separators: between atlas/SC/FC groups, before the average row/column
    def sep(a: str, b: str) -> float:
        if _GAP in (a, b):
            return 0.0
        if _group_key(a) != _group_key(b):
            return 2.0
        return 0.8 if _measure_key(a) != _measure_key(b) else 0.0

    for i in range(1, nr):
        lw = sep(rows[i - 1], rows[i])
        if lw:
            ax.axhline(i - 0.5, color=line_color, linewidth=lw, zorder=4)
    for j in range(1, nc):
        lw = sep(cols[j - 1], cols[j])
        if lw:
            ax.axvline(j - 0.5, color=line_color, linewidth=lw, zorder=4)
    ax.set_yticks(range(nr))
    ax.set_yticklabels(["" if r == _GAP else short_flavor_label(r) for r in rows], fontsize=label_fontsize)
    ax.set_xticks(range(nc))
    ax.set_xticklabels([short_flavor_label(c) for c in cols], fontsize=label_fontsize, rotation=40,
                       ha="right", rotation_mode="anchor")
    for lab, name in zip(ax.get_yticklabels(), rows):
        lab.set_color(_label_color(name))
        if name == _AVERAGE:
            lab.set_fontstyle("italic")
    for lab, name in zip(ax.get_xticklabels(), cols):
        lab.set_color(_label_color(name))
        if name == _AVERAGE:
            lab.set_fontstyle("italic")
    ax.tick_params(length=0)
    ax.set_ylabel("SOURCE (row)", fontsize=label_fontsize, fontweight="bold")
    ax.set_xlabel("TARGET (col)", fontsize=label_fontsize, fontweight="bold")
    ax.set_title(title, fontsize=label_fontsize + 2, fontweight="bold")
    for spine in ax.spines.values():
        spine.set_visible(False)
    return img


def plot_heatmap(
    values: Mapping[str, HeatValues],
    sources: Sequence[str],
    targets: Sequence[str],
    out_file: str | os.PathLike[str],
    *,
    title: str | None = None,
    subtitle: str | None = None,
    footer: str | None = None,
    panel_titles: Mapping[str, str] | None = None,
    prefix: str = "OrigScale",
    epoch_labels: Mapping[str, str] | None = None,
    top_n: int = 2,
    cmap: str = "magma",
    clim: Mapping[str, tuple[float, float]] | None = None,
    dpi: int = 200,
    figsize: tuple[float, float] | None = None,
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
    title : str, optional
        Super-title, top left (e.g. ``OrigScale, Validation(n=26), Best All-Path Epoch``).
    subtitle : str, optional
        Text at the top right (e.g. ``Final epoch: 40``).
    footer : str, optional
        Small text at the bottom (e.g. the record or checkpoint file name).
    panel_titles : mapping, optional
        Metric -> full panel title; default ``"<prefix> <metric> SRC(row)xTARG(col)[, ep<k>]"``.
    prefix : str
        First word of the default panel titles.
    epoch_labels : mapping, optional
        Metric -> epoch text appended to the default panel title (``"ep40"``).
    top_n : int
        N shown in the ``topNacc`` label.
    cmap : str
        Matplotlib colormap for accuracy/rank/correlation panels (``R²`` uses a diverging one);
        ``magma2`` is magma without its darkest end (the default of training heatmaps).
    clim : mapping, optional
        Metric -> (vmin, vmax); default 0..1 (-1..1 for R² and off-diagonal correlations).
    dpi : int
        Resolution; the default 18 x 12 inch figure at 200 dpi is 3600 x 2400 px, like the
        original's.
    figsize : (float, float), optional
        Figure size in inches; default 18 x 12 for 4 panels, grown for many flavors.

    Returns
    -------
    Path
        The PNG written.
    """
    if not values:
        raise ValueError("plot_heatmap needs at least one metric")
    flavor_rows, fusion_rows, cols, tables = heatmap_tables(values, sources, targets)
    rows = flavor_rows + [_AVERAGE] + ([_GAP] + fusion_rows if fusion_rows else [])
    disp_cols = cols + [_AVERAGE]
    nrows_g, ncols_g = _grid(len(tables))
    n_big = max(len(rows), len(disp_cols))
    if figsize is None:
        scale = max(1.0, n_big / 14.0)
        figsize = (9.0 * ncols_g * scale, 6.0 * nrows_g * scale)
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    # font sizes from the cell size (points)
    cell_h = 72.0 * figsize[1] / nrows_g * 0.6 / len(rows)
    cell_w = 72.0 * figsize[0] / ncols_g * 0.6 / len(disp_cols)
    fontsize = float(np.clip(min(cell_h * 0.45, cell_w * 0.28), 5.0, 12.0))
    label_fontsize = float(np.clip(cell_h * 0.55, 6.0, 11.0))
    axes = fig.subplots(nrows_g, ncols_g, squeeze=False)
    base_cmap = _colormap(cmap)
    for k, (metric, table) in enumerate(tables.items()):
        ax = axes.flat[k]
        lo, hi, special = _metric_clim(metric)
        if clim and metric in clim:
            lo, hi = clim[metric]
        if not np.isfinite(hi):  # open-ended (mean rank): from the data
            finite = table[np.isfinite(table)]
            hi = float(finite.max()) if finite.size else lo + 1.0
        cm = (matplotlib.colormaps[special] if special else base_cmap).with_extremes(
            bad=(0.75, 0.75, 0.75, 0.35))
        norm = Normalize(vmin=lo, vmax=hi)
        if panel_titles and metric in panel_titles:
            ptitle = panel_titles[metric]
        else:
            ptitle = f"{prefix} {_metric_label(metric, top_n)} SRC(row)xTARG(col)".strip()
            if epoch_labels and epoch_labels.get(metric):
                ptitle += f", {epoch_labels[metric]}"
        img = _draw_panel(ax, table, rows, disp_cols, title=ptitle, cmap=cm, norm=norm,
                          fontsize=fontsize, label_fontsize=label_fontsize,
                          line_color="0.35" if special else "white")
        cb = fig.colorbar(img, ax=ax, fraction=0.04, pad=0.02)
        cb.ax.tick_params(labelsize=label_fontsize)
    for ax in list(axes.flat)[len(tables):]:
        ax.set_visible(False)
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
    return _save(fig, out_file, dpi)


def _save(fig: Figure, out_file: str | os.PathLike[str], dpi: int) -> Path:
    final = Path(out_file)
    check_writable_dir(final)  # a missing folder is made, as for every other output
    with atomic_path(final) as tmp:
        with open(tmp, "wb") as fh:
            fig.savefig(fh, format="png", dpi=dpi, facecolor="white")
    return final


def write_heatmap_csv(
    values: Mapping[str, HeatValues],
    sources: Sequence[str],
    targets: Sequence[str],
    out_file: str | os.PathLike[str],
    *,
    titles: Mapping[str, str] | None = None,
) -> Path:
    """Write the heatmap tables as CSV, one block per metric (the original's ``--heatmapcsv``).

    Each block is a title line (``titles[metric]`` or the metric name), a header
    ``,"target:X",...,"average"``, one row ``"source:Y",v,...`` per source (flavors, then
    fusion inputs) and an ``"average"`` row over the flavor rows; blocks are separated by an
    empty line. Values are written with full precision; missing values are empty.
    """
    flavor_rows, fusion_rows, cols, tables = heatmap_tables(values, sources, targets)

    def num(v: float) -> str:
        return "" if not np.isfinite(v) else repr(float(v))

    lines: list[str] = []
    for metric, table in tables.items():
        if lines:
            lines.append("")
        lines.append(f'"{(titles or {}).get(metric, metric)}"')
        lines.append("," + ",".join([f'"target:{c}"' for c in cols] + ['"average"']))
        nf = len(flavor_rows)
        order = [(f'"source:{r}"', table[i]) for i, r in enumerate(flavor_rows)]
        order += [(f'"source:{r}"', table[nf + 1 + i]) for i, r in enumerate(fusion_rows)]
        order.append(('"average"', table[nf]))
        for name, row in order:
            lines.append(name + "," + ",".join(num(v) for v in row))
    final = Path(out_file)
    with atomic_path(final) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return final


def heatmap_from_record(
    record: TrainRecord | str | os.PathLike[str],
    out_file: str | os.PathLike[str],
    *,
    metrics: Sequence[str] = DEFAULT_HEATMAP_METRICS,
    epoch: int | None = None,
    per_path: bool = False,
    split: str = "val",
    origscale: bool = True,
    csv_file: str | os.PathLike[str] | None = None,
    cmap: str = "magma2",
    dpi: int = 200,
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
    paths = rec.paths
    sources = list(dict.fromkeys(s for s, _ in paths))
    targets = list(dict.fromkeys(t for _, t in paths))
    values: dict[str, dict[tuple[str, str], float]] = {}
    labels: dict[str, str] = {}
    for metric in metrics:
        try:
            arr = rec.metric(metric, split, origscale)
        except KeyError:
            arr = np.full((rec.n_paths, max(rec.n_epochs, 1)), np.nan)
        if per_path:
            best = rec.best_epoch(metric, split, origscale, per_path=True) if np.isfinite(arr).any() \
                else np.full(rec.n_paths, -1)
            vals = [arr[p, e] if e >= 0 else np.nan for p, e in enumerate(best)]
            labels[metric] = "best ep per path"
        else:
            e = epoch
            if e is None and np.isfinite(arr).any():
                e = rec.best_epoch(metric, split, origscale)
            if e is None:
                vals = [np.nan] * rec.n_paths
                labels[metric] = ""
            else:
                if not -arr.shape[1] <= e < arr.shape[1]:
                    raise ValueError(f"epoch {e} is outside the record's 0..{arr.shape[1] - 1}")
                vals = list(arr[:, e])
                labels[metric] = f"ep{rec.epoch_label(e % arr.shape[1])}"
        values[metric] = {pt: float(v) for pt, v in zip(paths, vals)}
    n = rec.n_subjects(split)
    space = "OrigScale" if origscale else "OptimScale"
    which = "Validation" if split == "val" else "Training"
    if per_path:
        how = "Best Per-Path Epoch"
    elif epoch is None:
        how = "Best All-Path Epoch"
    else:
        how = f"Epoch {rec.epoch_label(epoch % max(rec.n_epochs, 1))}"
    title = f"{space}, {which}{f'(n={n})' if n is not None else ''}, {how}"
    footer = rec.path.name if rec.path is not None else str(rec.fields.get("recordfile", "") or "")
    topn = int(rec.fields.get("topN", 2) or 2)
    out = plot_heatmap(values, sources, targets, out_file, title=title,
                       subtitle=f"Final epoch: {rec.epoch_label(rec.final_epoch)}",
                       footer=footer or None, prefix=space, epoch_labels=labels, top_n=topn,
                       cmap=cmap, dpi=dpi)
    if csv_file is not None:
        titles = {m: f"{space} {_metric_label(m, topn)} SRC(row)xTARG(col)"
                  + (f", {labels[m]}" if labels.get(m) else "") for m in metrics}
        write_heatmap_csv(values, sources, targets, csv_file, titles=titles)
    return out


def heatmap_from_metrics(
    rows: Sequence[Mapping[str, Any]],
    out_file: str | os.PathLike[str],
    *,
    metrics: Sequence[str] = DEFAULT_HEATMAP_METRICS,
    title: str | None = None,
    subtitle: str | None = None,
    footer: str | None = None,
    n_subjects: int | None = None,
    top_n: int = 2,
    csv_file: str | os.PathLike[str] | None = None,
    cmap: str = "magma",
    dpi: int = 200,
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
    sources = list(dict.fromkeys(str(r["source"]) for r in rows))
    targets = list(dict.fromkeys(str(r["target"]) for r in rows))
    values: dict[str, dict[tuple[str, str], float]] = {}
    for metric in metrics:
        key = canonical_metric(metric)
        vals: dict[tuple[str, str], float] = {}
        for r in rows:
            v = r.get(metric, r.get(key))
            vals[(str(r["source"]), str(r["target"]))] = np.nan if v is None else float(v)
        values[metric] = vals
    if title is None:
        title = f"OrigScale, Evaluation(n={n_subjects})" if n_subjects is not None else "OrigScale, Evaluation"
    out = plot_heatmap(values, sources, targets, out_file, title=title, subtitle=subtitle,
                       footer=footer, top_n=top_n, cmap=cmap, dpi=dpi)
    if csv_file is not None:
        titles = {m: f"OrigScale {_metric_label(m, top_n)} SRC(row)xTARG(col)" for m in metrics}
        write_heatmap_csv(values, sources, targets, csv_file, titles=titles)
    return out


# --------------------------------------------------------------------------- training curves


def _series(rec: TrainRecord, metric: str, split: str, origscale: bool) -> FloatArray | None:
    try:
        arr = rec.metric(metric, split, origscale)
    except KeyError:
        return None
    return arr if np.isfinite(arr).any() else None


def _summary(arr: FloatArray, band: tuple[float, float]) -> tuple[Any, ...]:
    """Epochs with data, median, low and high band over paths."""
    cols = np.where(np.isfinite(arr).any(axis=0))[0]
    sub = arr[:, cols]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(sub, axis=0)
        if arr.shape[0] >= 10:
            lo, hi = np.nanpercentile(sub, band[0], axis=0), np.nanpercentile(sub, band[1], axis=0)
        else:
            lo, hi = np.nanmin(sub, axis=0), np.nanmax(sub, axis=0)
    return cols, med, lo, hi


_CURVE_PANELS: tuple[tuple[str, str, str], ...] = (
    ("loss", "loss", "Loss"),
    ("top1acc", "top1acc", "Top-1 accuracy"),
    ("topNacc", "topNacc", "Top-{n} accuracy"),
    ("avgrank", "avgrank", "Average rank percentile"),
    ("explainedvar", "explainedvar", "Explained variance R²"),
    ("avgcorr_resid", "avgcorr_resid", "Demeaned correlation (avgcorr resid)"),
)

_TRAIN_COLOR, _VAL_COLOR, _ORIG_COLOR = "#4c72b0", "#dd8452", "#2a9d3a"


def plot_training_curves(
    record: TrainRecord | str | os.PathLike[str],
    out_file: str | os.PathLike[str],
    *,
    band: tuple[float, float] = (10.0, 90.0),
    title: str | None = None,
    dpi: int = 100,
) -> Path:
    """Training curves that stay readable for any number of paths.

    One panel per metric: loss, top-1 and top-N accuracy, average rank percentile, R² and
    the demeaned correlation. Each shows, over epochs, the median across paths as a line and
    the 10-90 % range of paths as a band (the min-max range below 10 paths); training is
    dashed blue, validation solid orange, validation in original space (``_OrigScale``, only
    at display epochs) green with markers. A vertical line marks each panel's best
    all-path validation epoch. Epochs are counted 1-based (completed epochs).

    Parameters
    ----------
    record : TrainRecord or path-like
        A training record or its ``.mat`` file.
    out_file : path-like
        PNG to write (15 x 9 inches).
    band : (float, float)
        Percentiles of the band across paths.
    title : str, optional
        Super-title; default ``data: network, train`` from the record's strings.
    dpi : int
        Resolution.

    Returns
    -------
    Path
        The PNG written.
    """
    rec = record if isinstance(record, TrainRecord) else read_record(record)
    topn = int(rec.fields.get("topN", 2) or 2)
    fig = Figure(figsize=(15, 9), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 3, squeeze=False).ravel()
    band_txt = f"{band[0]:g}-{band[1]:g}%" if rec.n_paths >= 10 else "min-max"
    for ax, (metric, _, label) in zip(axes, _CURVE_PANELS):
        ax.set_title(label.format(n=topn), fontsize=11, fontweight="bold")
        ax.set_xlabel("epoch", fontsize=9)
        ax.tick_params(labelsize=8)
        ax.grid(True, alpha=0.3)
        lower_better = metric == "loss"
        series = [
            ("train", _series(rec, metric, "train", False), _TRAIN_COLOR, "--", None),
            ("val", _series(rec, metric, "val", False), _VAL_COLOR, "-", None),
        ]
        if metric != "loss":
            series.append(("val (orig. space)", _series(rec, metric, "val", True), _ORIG_COLOR, "-", "o"))
        drawn = 0
        ylo, yhi = np.inf, -np.inf
        for name, arr, color, ls, marker in series:
            if arr is None:
                continue
            cols, med, lo, hi = _summary(arr, band)
            x = cols + 1
            ax.fill_between(x, lo, hi, color=color, alpha=0.18, linewidth=0)
            ax.plot(x, med, color=color, linestyle=ls, marker=marker, markersize=4, linewidth=1.6)
            drawn += 1
            ylo, yhi = min(ylo, float(np.nanmin(lo))), max(yhi, float(np.nanmax(hi)))
        if not drawn:
            ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center", va="center",
                    color="grey", fontsize=11)
            continue
        if metric == "loss" and ylo > 0 and yhi / ylo > 20:
            ax.set_yscale("log")
        if metric == "explainedvar" and ylo < -1.0:
            ax.set_ylim(bottom=-1.0)
        # best all-path epoch on the validation series (original space where it exists)
        best_src = [s for s in series if s[1] is not None and s[0] != "train"]
        if best_src:
            origscale = best_src[-1][0].endswith("(orig. space)")
            best = rec.best_epoch(metric, "val", origscale, mode="min" if lower_better else "max")
            if best is not None:
                ax.axvline(best + 1, color="black", linestyle=":", linewidth=1.2)
                ax.annotate(f"best {best + 1}", xy=(best + 1, 1.0), xycoords=("data", "axes fraction"),
                            xytext=(-3, -3), textcoords="offset points", ha="right", va="top",
                            fontsize=8, color="black",
                            bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
    handles = [
        Line2D([], [], color=_TRAIN_COLOR, linestyle="--", linewidth=1.6, label="train (median over paths)"),
        Line2D([], [], color=_VAL_COLOR, linewidth=1.6, label="validation (median)"),
        Line2D([], [], color=_ORIG_COLOR, marker="o", markersize=4, linewidth=1.6,
               label="validation, original space (display epochs)"),
        Patch(facecolor="grey", alpha=0.3, label=f"{band_txt} of paths"),
        Line2D([], [], color="black", linestyle=":", linewidth=1.2, label="best all-path validation epoch"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    if title is None:
        parts = [str(rec.fields.get(k, "") or "") for k in ("data_string", "network_string", "train_string")]
        title = f"{parts[0]}: {parts[1]}, {parts[2]}" if any(parts) else "Training curves"
        title += f"  ({rec.n_paths} paths, median and {band_txt} across paths)"
    fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=11)
    return _save(fig, out_file, dpi)
