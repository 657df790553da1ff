"""Heatmap tables: display order, the ``average`` row and column, and their CSV file."""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..flavors import is_latent_name
from ..io._atomic import atomic_path
from .style import display_sort_key

__all__ = ["HeatValues", "heatmap_tables", "write_heatmap_csv"]

FloatArray = npt.NDArray[np.float64]
#: Values of one heatmap metric: ``[sources x targets]`` in the given order, or (source, target) -> value.
HeatValues = npt.ArrayLike | Mapping[tuple[str, str], float]


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


def _with_averages(body: FloatArray, n_flavor_rows: int, cols: list[str]) -> FloatArray:
    """Rows ``body`` (flavor rows first) plus the row-average column and the ``average`` row."""
    n_rows, nf = body.shape[0], n_flavor_rows
    flav_cols = [j for j, c in enumerate(cols) if not is_latent_name(c)]
    row_avg = _nanmean(body[:, flav_cols], axis=1) if flav_cols else np.full(n_rows, np.nan)
    with_avg = np.column_stack([body, row_avg]) if n_rows else np.zeros((0, len(cols) + 1))
    avg_row = _nanmean(with_avg[:nf], axis=0) if nf else np.full(len(cols) + 1, np.nan)
    if nf and flav_cols:
        avg_row[-1] = _nanmean(body[:nf][:, flav_cols])
    return np.vstack([with_avg[:nf], avg_row[None, :], with_avg[nf:]])


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
    rsel = [src.index(r) for r in flavor_rows + fusion_rows]
    csel = [tgt.index(c) for c in cols]
    tables: dict[str, FloatArray] = {}
    for metric, vals in values.items():
        m = _matrix(vals, src, tgt)
        body = m[np.ix_(rsel, csel)] if rsel and csel else np.full((len(rsel), len(csel)), np.nan)
        tables[metric] = _with_averages(body, len(flavor_rows), cols)
    return flavor_rows, fusion_rows, cols, tables


def _csv_number(v: float) -> str:
    return "" if not np.isfinite(v) else repr(float(v))


def _csv_block(title: str, table: FloatArray, flavor_rows: list[str], fusion_rows: list[str],
               cols: list[str]) -> list[str]:
    lines = [f'"{title}"', "," + ",".join([f'"target:{c}"' for c in cols] + ['"average"'])]
    nf = len(flavor_rows)
    order = [(f'"source:{r}"', table[i]) for i, r in enumerate(flavor_rows)]
    order += [(f'"source:{r}"', table[nf + 1 + i]) for i, r in enumerate(fusion_rows)]
    order.append(('"average"', table[nf]))
    lines += [name + "," + ",".join(_csv_number(v) for v in row) for name, row in order]
    return lines


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
    lines: list[str] = []
    for metric, table in tables.items():
        if lines:
            lines.append("")
        lines += _csv_block((titles or {}).get(metric, metric), table, flavor_rows, fusion_rows, cols)
    final = Path(out_file)
    with atomic_path(final) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return final
