"""Sections the three reports share: model summary, quality-control table, evaluation, the file itself."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..connectome import Cohort
    from ..inference import PredictPlan

from ..flavors import is_latent_name, match_flavor
from ..io._atomic import atomic_path
from ..qc import QCResult
from ..qc.thresholds import ADAPT_R2, BY_NAME, SUBJECT_THRESHOLDS
from .figures import HeatmapData, chance_level, heatmap_png, measures_png
from .html import Image, Section, Table, render_page

#: Cohorts larger than this list only their flagged subjects in the QC table (--json has all).
MAX_TABLE_SUBJECTS = 200
#: Measures drawn against their threshold (ratios; log scale).
RATIO_MEASURES = ("residual", "score", "latent", "agreement")


#: Subjects whose observed and predicted matrices the report shows.
REPORT_SAMPLE_SUBJECTS = 3


def sample_pairs(cohort: Cohort, plan: PredictPlan) -> list[tuple[str, str]]:
    """For up to 3 outputs with their truth among the inputs: the most telling source (fusion, else another flavor)."""
    truth = {o for o in plan.outputs for f in cohort.flavors if not is_latent_name(f) and match_flavor(f, [o])}
    pairs = []
    for o in [o for o in plan.outputs if o in truth][:3]:
        own = match_flavor(o, list(plan.sources))
        ranked = sorted(plan.sources, key=lambda s: (s == own, ".noself" not in s, not s.startswith("fusion")))
        pairs.append((ranked[0], o))
    return pairs


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def checkpoint_facts(checkpoints: Sequence[str]) -> list[tuple[str, str]]:
    """One ``checkpoint`` fact per file with its sha256 (a missing file says so)."""
    out = []
    for c in checkpoints:
        digest = sha256_file(c) if Path(c).is_file() else "(file not found)"
        out.append(("checkpoint", f"{c}  sha256 {digest}"))
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return "n/a" if v != v else f"{v:.3g}"
    return str(v)


def _qc_table(qc: QCResult) -> Table:
    measures = [t.measure for t in SUBJECT_THRESHOLDS]
    flagged_subjects = set(qc.flagged)
    show = range(len(qc.subjects)) if len(qc.subjects) <= MAX_TABLE_SUBJECTS else sorted(flagged_subjects)
    rows: list[list[str]] = []
    marked: set[int] = set()
    for i in show:
        for fq in qc.flavors:
            flags = fq.flags(i)
            if flags:
                marked.add(len(rows))
            cells = [_fmt(float(fq.values[m][i])) if m in fq.values else "" for m in measures]
            rows.append([qc.subjects[i], fq.flavor, *cells, ("FLAG " + ", ".join(flags)) if flags else "ok"])
    if not rows:
        rows.append(["(no subject flagged)", "", *([""] * len(measures)), ""])
    caption = (f"Quality control: {len(qc.subjects)} subjects x {len(qc.flavors)} input flavors, "
               f"{len(flagged_subjects)} subjects flagged")
    if len(qc.subjects) > MAX_TABLE_SUBJECTS:
        caption += f" (only flagged subjects listed; --json lists all {len(qc.subjects)})"
    return Table(caption, ["subject", "flavor", *measures, "flags"], rows, frozenset(marked), "qc-table")


def qc_sections(qc: QCResult) -> list[Section]:
    """Summary, thresholds, per-subject table, adaptation fits and the measures figure."""
    flagged = [qc.subjects[i] for i in qc.flagged]
    summary = (f"{len(flagged)} of {len(qc.subjects)} subjects flagged"
               + (f": {', '.join(flagged[:20])}{' ...' if len(flagged) > 20 else ''}." if flagged else "."))
    s = Section("Quality control", [summary, *qc.file_flags(), f"Latent distance reference: {qc.latent_source}."])
    s.tables.append(Table("Thresholds (a subject is flagged when any measure of any input breaks its rule)",
                          ["measure", "what", "flagged when", "why"],
                          [(t.measure, t.label, t.rule(), t.meaning) for t in (*SUBJECT_THRESHOLDS, ADAPT_R2)]))
    s.tables.append(_qc_table(qc))
    if qc.adaptation:
        s.tables.append(Table("Adaptation fit quality (--adapt)", ["flavor", "mode", "slope", "fit R²", "flag"],
                              [(a["flavor"], a["mode"], _fmt(a["slope"]), _fmt(a["fit_r2"]),
                                "FLAG adapt_r2" if a["flagged"] else "ok") for a in qc.adaptation],
                              frozenset(i for i, a in enumerate(qc.adaptation) if a["flagged"])))
    notes: dict[str, list[str]] = {}
    for fq in qc.flavors:
        for n in fq.notes:
            notes.setdefault(n, []).append(fq.flavor)
    s.paragraphs += [f"{', '.join(fl) if len(fl) < len(qc.flavors) else 'All inputs'}: {n}" for n, fl in notes.items()]
    values = {fq.flavor: {m: fq.values[m] for m in RATIO_MEASURES if m in fq.values} for fq in qc.flavors}
    thresholds = {m: float(BY_NAME[m].upper or 1.0) for m in RATIO_MEASURES}
    s.images.append(Image("Ratio measures per input flavor, one dot per subject (log scale); red line: threshold",
                          measures_png(values, thresholds, f"Quality measures, {len(qc.subjects)} subjects")))
    return [s]


def evaluation_section(values: Mapping[str, Mapping[tuple[str, str], float]], n_subjects: int, split: str,
                       note: str = "") -> Section:
    """Identifiability heatmaps with each metric's chance level stated and marked."""
    chance = ", ".join(f"{m} {chance_level(m, n_subjects):.3g}" for m in ("top1acc", "topNacc", "avgrank"))
    s = Section(f"Evaluation ({split}, {n_subjects} subjects)",
                [f"Chance levels for {n_subjects} subjects: {chance}; correlations and R² around 0.", note]
                if note else [f"Chance levels for {n_subjects} subjects: {chance}; correlations and R² around 0."])
    title = f"Identifiability, {split}: {n_subjects} subjects"
    s.images.append(Image(title + " (red line on each scale: chance)",
                          heatmap_png(HeatmapData(values, n_subjects, split), title)))
    return s


def metric_values(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[tuple[str, str], float]]:
    """``kraken run --evaluate`` rows as metric -> (source, target) -> value."""
    out: dict[str, dict[tuple[str, str], float]] = {}
    for r in rows:
        for m in ("top1acc", "topNacc", "avgrank", "avgcorr", "avgcorr_resid", "explainedvar"):
            if m in r and r[m] is not None:
                out.setdefault(m, {})[(str(r["source"]), str(r["target"]))] = float(np.asarray(r[m]))
    return out


def write_report(path: str | Path, title: str, sections: Sequence[Section], *, subtitle: str = "") -> Path:
    """Render and write the page atomically (joins an enclosing ``committed_together`` block)."""
    from ... import __version__

    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = render_page(title, sections, subtitle=subtitle, footer=f"kraken {__version__}, {stamp}")
    p = Path(path)
    with atomic_path(p) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return p
