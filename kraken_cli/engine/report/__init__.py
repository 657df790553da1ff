"""Self-contained HTML reports (``kraken run/train/describe --report``): page assembly and figures.

* :mod:`.html`: :func:`~.html.render_page` from :class:`~.html.Section` objects (inline CSS,
  base64-embedded PNGs, no script, no network);
* :mod:`.figures`: the PNGs (evaluation heatmaps with chance marked, observed vs predicted
  matrices, quality measures against their thresholds);
* :mod:`.content`: the sections shared by the three commands (model summary, QC table, file).
"""

from __future__ import annotations

from .html import Image, Section, Table, render_page

__all__ = ["Image", "Section", "Table", "render_page"]
