"""The report's figures as PNG bytes: evaluation heatmaps with chance marked, observed vs predicted
matrices, and the quality measures against their thresholds.

Titles name the data (subjects, split) and use the CLI's flavor names and readable metric names;
a diverging colour scale centred on chance is used wherever values can be negative.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.colors import Normalize, TwoSlopeNorm
from matplotlib.ticker import FuncFormatter, NullFormatter

from ..connectome import tri_to_square
from ..plots._render import new_figure

FloatArray = npt.NDArray[np.float64]
PathValues = Mapping[tuple[str, str], float]

#: Readable names of the metrics (instead of the original's internal labels).
METRIC_NAMES = {
    "top1acc": "Top-1 identification accuracy", "topNacc": "Top-2 identification accuracy",
    "avgrank": "Average rank percentile", "avgcorr": "Mean correlation with own truth",
    "avgcorr_resid": "Mean correlation after removing the group mean", "explainedvar": "Explained variance (R²)",
}
#: Metrics whose values can be negative: drawn on a diverging scale.
SIGNED = frozenset({"avgcorr_resid", "explainedvar", "avgcorr"})
REPORT_METRICS = ("top1acc", "topNacc", "avgrank", "avgcorr_resid")


def chance_level(metric: str, n_subjects: int) -> float:
    """What a metric gives for predictions unrelated to the truth.

    >>> chance_level("top1acc", 20), chance_level("avgrank", 20)
    (0.05, 0.5)
    """
    n = max(1, n_subjects)
    return {"top1acc": 1.0 / n, "topNacc": min(1.0, 2.0 / n), "avgrank": 0.5}.get(metric, 0.0)


def _png(fig: object) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, facecolor="white")  # type: ignore[attr-defined]
    return buf.getvalue()


@dataclass(frozen=True)
class HeatmapData:
    """Metric -> (source, target) -> value, for ``n_subjects`` subjects of one split."""

    values: Mapping[str, PathValues]
    n_subjects: int
    split: str


def _panel(ax: Axes, fig: object, metric: str, vals: PathValues, sources: list[str], targets: list[str],
           n: int) -> None:
    m = np.array([[vals.get((s, t), np.nan) for t in targets] for s in sources], dtype=np.float64)
    chance = chance_level(metric, n)
    if metric in SIGNED:
        lim = max(1e-6, float(np.nanmax(np.abs(m))) if np.isfinite(m).any() else 1.0)
        norm: Normalize = TwoSlopeNorm(vcenter=chance, vmin=min(-lim, chance - 1e-6), vmax=max(lim, chance + 1e-6))
        cmap = "RdBu_r"
    else:
        norm, cmap = Normalize(0.0, 1.0), "viridis"
    img = ax.imshow(np.ma.masked_invalid(m), cmap=cmap, norm=norm, aspect="auto", interpolation="nearest")
    cm = matplotlib.colormaps[cmap]
    for (i, j), v in np.ndenumerate(m):
        if np.isfinite(v):
            r, g, b, _ = cm(norm(v))
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                    color="white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black")
    ax.set_xticks(range(len(targets)), targets, rotation=40, ha="right", fontsize=7)
    ax.set_yticks(range(len(sources)), sources, fontsize=7)
    ax.set_xlabel("predicted flavor", fontsize=8)
    ax.set_ylabel("from", fontsize=8)
    ax.set_title(f"{METRIC_NAMES.get(metric, metric)}\nchance {chance:.2g}", fontsize=9)
    cb = fig.colorbar(img, ax=ax, fraction=0.05, pad=0.02)  # type: ignore[attr-defined]
    cb.ax.axhline(chance, color="red", linewidth=2)
    cb.ax.text(1.6, chance, "chance", transform=cb.ax.get_yaxis_transform(), color="red", fontsize=7,
               va="center")
    cb.ax.tick_params(labelsize=7)


def heatmap_png(data: HeatmapData, title: str, metrics: Sequence[str] = REPORT_METRICS) -> bytes:
    """One panel per metric (rows: sources, columns: predicted flavors), chance marked on each scale."""
    pairs = [p for m in metrics for p in data.values.get(m, {})]
    sources = list(dict.fromkeys(s for s, _ in pairs))
    targets = list(dict.fromkeys(t for _, t in pairs))
    shown = [m for m in metrics if m in data.values]
    cols = 2 if len(shown) > 1 else 1
    rows = math.ceil(len(shown) / cols)
    w = 1.6 + 0.55 * len(targets)
    fig = new_figure((cols * w + 2.5, rows * (1.5 + 0.35 * len(sources)) + 1.0), 100)
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, metric in zip(axes.flat, shown):
        _panel(ax, fig, metric, data.values[metric], sources, targets, data.n_subjects)
    for ax in list(axes.flat)[len(shown):]:
        ax.set_visible(False)
    fig.suptitle(title, fontsize=11)
    return _png(fig)


def _square(edges: npt.ArrayLike) -> FloatArray:
    return np.asarray(tri_to_square(np.asarray(edges, dtype=np.float64).reshape(-1), diagonal=np.nan),
                      dtype=np.float64)


def matrices_png(truth: npt.ArrayLike, pred: npt.ArrayLike, subjects: Sequence[str], *, flavor: str,
                 source: str) -> bytes:
    """Observed (left) and predicted (right) matrices of a few subjects, one shared colour scale per flavor."""
    t, p = np.atleast_2d(np.asarray(truth, dtype=np.float64)), np.atleast_2d(np.asarray(pred, dtype=np.float64))
    n = min(len(subjects), t.shape[0], p.shape[0])
    both = np.concatenate([t[:n], p[:n]])
    signed = bool(np.nanmin(both) < 0)
    lim = float(np.nanquantile(np.abs(both), 0.99)) or 1.0
    norm: Normalize = TwoSlopeNorm(0.0, -lim, lim) if signed else Normalize(0.0, lim)
    cmap = "RdBu_r" if signed else "viridis"
    fig = new_figure((7.0, 3.2 * n + 0.6), 100)
    axes = fig.subplots(n, 2, squeeze=False)
    for i in range(n):
        for j, (arr, what) in enumerate(((t[i], "observed"), (p[i], f"predicted from {source}"))):
            ax = axes[i, j]
            img = ax.imshow(_square(arr), cmap=cmap, norm=norm, interpolation="nearest")
            ax.set_title(f"subject {subjects[i]}: {what}", fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.colorbar(img, ax=axes[i, :].tolist(), fraction=0.04, pad=0.02).ax.tick_params(labelsize=7)
    fig.suptitle(f"{flavor}: observed vs predicted, first {n} subjects", fontsize=10)
    return _png(fig)


def measures_png(values: Mapping[str, Mapping[str, FloatArray]], thresholds: Mapping[str, float],
                 title: str) -> bytes:
    """Each ratio measure (log scale) per input flavor, one dot per subject, its threshold as a red line."""
    measures = [m for m in thresholds if any(np.isfinite(v.get(m, np.nan)).any() for v in values.values())]
    flavors = list(values)
    fig = new_figure((3.0 * max(1, len(measures)) + 1.0, 0.45 * len(flavors) + 2.2), 100)
    axes = fig.subplots(1, max(1, len(measures)), squeeze=False)[0]
    for ax, m in zip(axes, measures):
        for k, f in enumerate(flavors):
            v = np.asarray(values[f].get(m, np.array([])), dtype=np.float64)
            v = v[np.isfinite(v) & (v > 0)]
            jitter = (np.arange(v.size) % 7 - 3) * 0.05
            ax.scatter(v, k + jitter, s=9, color=np.where(v > thresholds[m], "crimson", "0.3"))
        ax.axvline(thresholds[m], color="crimson", linewidth=1.5, label="flag threshold")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_yticks(range(len(flavors)), flavors if ax is axes[0] else [], fontsize=7)
        ax.set_title(m, fontsize=9)
        ax.tick_params(labelsize=7)
    if not measures:
        axes[0].text(0.5, 0.5, "no ratio measure available", ha="center", va="center")
        axes[0].set_axis_off()
    fig.suptitle(title, fontsize=10)
    return _png(fig)
