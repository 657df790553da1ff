"""Training curves that stay readable for any number of paths.

:func:`training_curve_panels` selects the data of a training record (arrays per panel),
:func:`draw_training_curves` draws such panels, and :func:`plot_training_curves` does both.
"""

from __future__ import annotations

import os
import textwrap
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from ..training.record import TrainRecord, read_record
from ._render import new_figure, save_png

__all__ = ["CurvePanel", "CurveSeries", "draw_training_curves", "plot_training_curves",
           "training_curve_panels"]

FloatArray = npt.NDArray[np.float64]

_CURVE_PANELS: tuple[tuple[str, str], ...] = (
    ("loss", "Loss"),
    ("top1acc", "Top-1 accuracy"),
    ("topNacc", "Top-{n} accuracy"),
    ("avgrank", "Average rank percentile"),
    ("explainedvar", "Explained variance R²"),
    ("avgcorr_resid", "Demeaned correlation (avgcorr resid)"),
)

_TRAIN_COLOR, _VAL_COLOR, _ORIG_COLOR = "#4c72b0", "#dd8452", "#2a9d3a"


@dataclass(frozen=True)
class CurveSeries:
    """One line of a panel: ``values`` is ``[paths x epochs]`` (NaN where not recorded)."""

    name: str
    values: FloatArray
    color: str
    linestyle: str
    marker: str | None = None


@dataclass(frozen=True)
class CurvePanel:
    """One metric's panel: its title, series, and the 0-based best all-path epoch (or None)."""

    metric: str
    title: str
    series: list[CurveSeries] = field(default_factory=list)
    best_epoch: int | None = None


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


def training_curve_panels(rec: TrainRecord) -> list[CurvePanel]:
    """The panels of :func:`plot_training_curves` as arrays taken from a training record."""
    topn = int(rec.fields.get("topN", 2) or 2)
    panels: list[CurvePanel] = []
    for metric, label in _CURVE_PANELS:
        specs: list[tuple[str, str, bool, str, str, str | None]] = [
            ("train", "train", False, _TRAIN_COLOR, "--", None),
            ("val", "val", False, _VAL_COLOR, "-", None),
        ]
        if metric != "loss":
            specs.append(("val (orig. space)", "val", True, _ORIG_COLOR, "-", "o"))
        series: list[CurveSeries] = []
        best: int | None = None
        for name, split, origscale, color, ls, marker in specs:
            arr = _series(rec, metric, split, origscale)
            if arr is None:
                continue
            series.append(CurveSeries(name, arr, color, ls, marker))
            if split == "val":  # best all-path epoch: original space where it exists
                best = rec.best_epoch(metric, "val", origscale, mode="min" if metric == "loss" else "max")
        panels.append(CurvePanel(metric, label.format(n=topn), series, best))
    return panels


def _draw_curve_panel(ax: Axes, panel: CurvePanel, band: tuple[float, float]) -> None:
    ax.set_title(panel.title, fontsize=11, fontweight="bold")
    ax.set_xlabel("epoch", fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(True, alpha=0.3)
    if not panel.series:
        ax.text(0.5, 0.5, "not recorded", transform=ax.transAxes, ha="center", va="center",
                color="grey", fontsize=11)
        return
    ylo, yhi = np.inf, -np.inf
    for s in panel.series:
        cols, med, lo, hi = _summary(s.values, band)
        x = cols + 1
        ax.fill_between(x, lo, hi, color=s.color, alpha=0.18, linewidth=0)
        ax.plot(x, med, color=s.color, linestyle=s.linestyle, marker=s.marker, markersize=4, linewidth=1.6)
        ylo, yhi = min(ylo, float(np.nanmin(lo))), max(yhi, float(np.nanmax(hi)))
    if panel.metric == "loss" and ylo > 0 and yhi / ylo > 20:
        ax.set_yscale("log")
    if panel.metric == "explainedvar" and ylo < -1.0:
        ax.set_ylim(bottom=-1.0)
    if panel.best_epoch is not None:
        best = panel.best_epoch + 1
        ax.axvline(best, color="black", linestyle=":", linewidth=1.2)
        ax.annotate(f"best {best}", xy=(best, 1.0), xycoords=("data", "axes fraction"),
                    xytext=(-3, -3), textcoords="offset points", ha="right", va="top",
                    fontsize=8, color="black",
                    bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def _legend_handles(band_txt: str) -> list[Any]:
    return [
        Line2D([], [], color=_TRAIN_COLOR, linestyle="--", linewidth=1.6, label="train (median over paths)"),
        Line2D([], [], color=_VAL_COLOR, linewidth=1.6, label="validation (median)"),
        Line2D([], [], color=_ORIG_COLOR, marker="o", markersize=4, linewidth=1.6,
               label="validation, original space (display epochs)"),
        Patch(facecolor="grey", alpha=0.3, label=f"{band_txt} of paths"),
        Line2D([], [], color="black", linestyle=":", linewidth=1.2, label="best all-path validation epoch"),
    ]


def _band_text(n_paths: int, band: tuple[float, float]) -> str:
    return f"{band[0]:g}-{band[1]:g}%" if n_paths >= 10 else "min-max"


def draw_training_curves(panels: Sequence[CurvePanel], out_file: str | os.PathLike[str], *, n_paths: int,
                         title: str, band: tuple[float, float] = (10.0, 90.0), dpi: int = 100) -> Path:
    """Draw up to six curve panels (2 x 3, 15 x 9 inches) with a shared legend; write the PNG."""
    fig = new_figure((15, 9), dpi)
    axes = fig.subplots(2, 3, squeeze=False).ravel()
    for ax, panel in zip(axes, panels):
        _draw_curve_panel(ax, panel, band)
    handles = _legend_handles(_band_text(n_paths, band))
    fig.legend(handles=handles, loc="outside lower center", ncol=len(handles), fontsize=9, frameon=False)
    fig.suptitle("\n".join(textwrap.wrap(title, 150)), fontsize=11)
    return save_png(fig, out_file, dpi)


def _default_title(rec: TrainRecord, band: tuple[float, float]) -> str:
    parts = [str(rec.fields.get(k, "") or "") for k in ("data_string", "network_string", "train_string")]
    title = f"{parts[0]}: {parts[1]}, {parts[2]}" if any(parts) else "Training curves"
    return title + f"  ({rec.n_paths} paths, median and {_band_text(rec.n_paths, band)} across paths)"


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
    return draw_training_curves(training_curve_panels(rec), out_file, n_paths=rec.n_paths,
                                title=_default_title(rec, band) if title is None else title,
                                band=band, dpi=dpi)
