"""engine.report: self-contained pages (escaped, no network, no script) and figures with chance marked."""

from __future__ import annotations

import base64
import re

import numpy as np
import pytest

from kraken_cli.engine.report import Image, Section, Table, render_page
from kraken_cli.engine.report.figures import HeatmapData, chance_level, heatmap_png, matrices_png, measures_png

PNG = b"\x89PNG\r\n\x1a\n"


def test_page_is_self_contained_and_escaped() -> None:
    sec = Section("QC <b>", ["a & b"], [("checkpoint", "m.pt sha256 ab")],
                  [Table("t", ["subject", "flags"], [["<script>x</script>", "FLAG residual"], ["s2", "ok"]],
                         frozenset({0}), "qc-table")], [Image("fig", PNG + b"data")])
    page = render_page("title", [sec], subtitle="sub", footer="foot")
    assert "<script>" not in page and "&lt;script&gt;" in page and "QC &lt;b&gt;" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing fetched from a network
    assert 'id="qc-table"' in page and '<tr class="flagged">' in page and 'class="flag">FLAG residual' in page
    data = re.search(r'src="data:image/png;base64,([^"]+)"', page)
    assert data is not None and base64.b64decode(data.group(1)) == PNG + b"data"


@pytest.mark.parametrize(("metric", "n", "expected"), [("top1acc", 20, 0.05), ("topNacc", 20, 0.1),
                                                       ("avgrank", 12, 0.5), ("avgcorr_resid", 12, 0.0)])
def test_chance_levels(metric: str, n: int, expected: float) -> None:
    assert chance_level(metric, n) == pytest.approx(expected)


def test_figures_are_png() -> None:
    vals = {m: {("FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"): 0.4, ("fusion", "FCcorr_fs86_hpf"): -0.1}
            for m in ("top1acc", "avgrank", "avgcorr_resid")}
    assert heatmap_png(HeatmapData(vals, 20, "test"), "Identifiability, test: 20 subjects").startswith(PNG)
    rng = np.random.default_rng(0)
    truth, pred = rng.normal(size=(2, 10)), rng.normal(size=(2, 10))  # 5 regions
    assert matrices_png(truth, pred, ["s1", "s2"], flavor="FCcorr_fs86_hpf", source="fusion").startswith(PNG)
    ratios = {"FCcorr_fs86_hpf": {"residual": np.array([1.0, 4.0]), "score": np.array([np.nan, np.nan])}}
    assert measures_png(ratios, {"residual": 3.0, "score": 3.0}, "QC").startswith(PNG)
