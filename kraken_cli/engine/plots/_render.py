"""A headless figure and its atomic PNG file: the Agg canvas, no pyplot, no backend switch."""

from __future__ import annotations

import os
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..io._atomic import atomic_path, check_writable_dir


def new_figure(figsize: tuple[float, float], dpi: float) -> Figure:
    """A constrained-layout figure attached to its own Agg canvas."""
    fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save_png(fig: Figure, out_file: str | os.PathLike[str], dpi: int) -> Path:
    """Write ``fig`` as PNG atomically; a missing folder is made, as for every other output."""
    final = Path(out_file)
    check_writable_dir(final)
    with atomic_path(final) as tmp, open(tmp, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi, facecolor="white")
    return final
