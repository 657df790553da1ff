"""Labels, colours, sort keys and colour scales shared by the figures."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib
import numpy as np
from matplotlib.colors import Colormap, ListedColormap

from ..flavors import atlas_of, flavor_sort_key, group_of, is_latent_name
from ..metrics import canonical_metric

__all__ = ["display_sort_key", "short_flavor_label"]

FUSION_COLOR = "#1f4e9c"
#: Row marker of the blank gap before the fusion rows.
GAP = "__gap__"
#: Name of the average row and column.
AVERAGE = "average"


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


def label_color(name: str) -> str:
    """Colour per SC/FC and measure (FC reds, SC greens, fusion blue)."""
    if name in (AVERAGE, GAP):
        return "black"
    if is_latent_name(name):
        return FUSION_COLOR
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


def group_key(name: str) -> tuple[Any, ...]:
    """Rows with different keys are separated by a thick line (SC/FC blocks, fusion)."""
    if name in (AVERAGE, GAP):
        return (name,)
    if is_latent_name(name):
        return ("fusion",)
    return (group_of(name),)


def measure_key(name: str) -> tuple[Any, ...]:
    """Within a block, a thin line separates measures (FC correlation vs partial correlation)."""
    if name in (AVERAGE, GAP) or is_latent_name(name):
        return group_key(name)
    return (group_of(name), "pcorr" in name.lower())


def separator_width(a: str, b: str) -> float:
    """Line width between neighbouring rows/columns ``a`` and ``b`` (0: no line)."""
    if GAP in (a, b):
        return 0.0
    if group_key(a) != group_key(b):
        return 2.0
    return 0.8 if measure_key(a) != measure_key(b) else 0.0


def fmt_cell(v: float) -> str:
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


def metric_label(metric: str, top_n: int) -> str:
    """Panel label of a metric, e.g. ``corr top2acc`` or ``avgrank %ile (bidir)``."""
    try:
        m = canonical_metric(metric)
    except KeyError:
        return metric
    base = m.partition("_bidir")[0] if m.endswith("_bidir") else m.partition("_pred2true")[0]
    suffix_txt = " (bidir)" if m.endswith("_bidir") else (" (pred2true)" if m.endswith("_pred2true") else "")
    if base == "topNacc":
        return f"corr top{top_n}acc{suffix_txt}"
    return _METRIC_LABELS.get(base, base) + suffix_txt


def metric_clim(metric: str) -> tuple[float, float, str | None]:
    """Default colour limits of a metric and its special colormap (None: the figure's)."""
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


def colormap(name: str) -> Colormap:
    """A matplotlib colormap; ``magma2`` is magma without its darkest 15 % (the original's
    training heatmaps), so low values stay distinguishable from the cell text."""
    if name == "magma2":
        base = matplotlib.colormaps["magma"]
        return ListedColormap(base(np.linspace(0.15, 1.0, 256)), name="magma2")
    try:
        return matplotlib.colormaps[name]
    except KeyError:
        raise ValueError(f"unknown colormap {name!r}") from None


def luminance(rgba: Sequence[float]) -> float:
    """Perceived brightness of an RGB(A) colour, 0..1."""
    r, g, b = rgba[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b
