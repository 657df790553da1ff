"""Shared rendering helpers (rich tables on stdout)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.markup import escape
from rich.table import Table

from ._console import out


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a simple rich table on stdout."""
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c, overflow="fold")
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    out.print(t)


def render_run(result: Any) -> None:
    """Inputs read, adaptation, files written and (with --evaluate) the metrics table."""
    if getattr(result, "discovery", None):
        table("Found in the derivatives folder (--bids)", ["dataset", "pipeline", "files", "what", "used as"],
              [(escape(d["dataset"]), d["pipeline"], d["files"], escape(d["what"]),
                escape(d["used_as"]) if d["used_as"] else f"[dim]skipped; to use: {escape(d['suggestion'])}[/]")
               for d in result.discovery])
    table("Inputs", ["flavor", "file", "subjects", "edges", "atlas"],
          [(i.flavor, escape(str(i.file)), i.subjects, i.features, i.atlas or "") for i in result.inputs])
    if result.adaptations:
        table("Adaptation", ["flavor", "mode", "slope", "intercept", "fit R²", "subjects"],
              [(a["flavor"], a["mode"], f"{a['slope']:.4g}", f"{a['intercept']:.4g}", f"{a['fit_r2']:.3f}",
                a["n_subjects"]) for a in result.adaptations])
    if result.metrics:
        cols = ["top1acc", "topNacc", "avgrank", "avgcorr", "avgcorr_resid", "explainedvar"]
        rows = [(f"{m['source']} → {m['target']}", *(f"{m[c]:.3f}" for c in cols)) for m in result.metrics]
        means = [sum(m[c] for m in result.metrics) / len(result.metrics) for c in cols]
        rows.append(("[bold]mean[/]", *(f"[bold]{v:.3f}[/]" for v in means)))
        table(f"Evaluation on {result.n_subjects} subjects", ["path", "top-1", "top-2", "avg rank", "corr",
                                                              "demeaned corr", "R²"], rows)
    if getattr(result, "qc", None) is not None:
        render_qc(result.qc)
    if result.files:
        table("Written", ["file"], [(escape(str(f)),) for f in result.files])


def render_qc(qc: Any) -> None:
    """The flagged subjects with what flagged them, and a one-line verdict."""
    flagged = qc.flagged
    for line in qc.file_flags():
        out.print(f"[bold red]Input file:[/] {escape(line)}")
    if flagged:
        table(f"Quality control: {len(flagged)} of {len(qc.subjects)} subjects flagged", ["subject", "flags"],
              [(escape(qc.subjects[i]), escape(qc.grouped_flags(i))) for i in flagged])
    else:
        out.print(f"Quality control: none of the {len(qc.subjects)} subjects flagged.", highlight=False)


def render_describe(desc: Any, *, show_paths: bool) -> None:
    """Model facts, training parameters, flavors and (optionally) paths."""
    from rich.table import Table

    t = Table(title=f"Checkpoint {escape(str(desc.file))}", title_justify="left", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value", overflow="fold")
    epochs = f"{desc.completed_epochs} completed (epoch key {desc.epoch_key}, 0-based)"
    facts = [("architecture", desc.architecture), ("parameters", f"{desc.parameter_count:,}"),
             ("input transform", desc.transform), ("epochs", epochs)]
    for k, v in facts:
        t.add_row(k, str(v))
    for k, v in desc.model_info.items():
        if k not in ("input_name_list",):
            t.add_row(k, str(v))
    out.print(t)
    if desc.training:
        table("Training parameters", ["parameter", "value"], sorted(desc.training.items()))
    has_src = any(f.source for f in desc.flavors)
    cols = ["#", "flavor", "edges", "input size"] + (["from"] if has_src else [])
    rows = [(f.index, f.name, f"Sx{f.edges}" if f.edges else "?", f.input_size, *( [f.source] if has_src else []))
            for f in desc.flavors]
    table(f"Input types ({len(desc.flavors)})", cols, rows)
    if show_paths:
        table(f"Training paths ({len(desc.paths)})", ["#", "path"],
              [(i + 1, f"{a} -> {b}") for i, (a, b) in enumerate(desc.paths)])
    if desc.kraken:
        table("kraken metadata", ["key", "value"], sorted(desc.kraken.items()))
    if desc.unknown_keys:
        table("Keys kraken did not understand", ["key"], [(k,) for k in desc.unknown_keys])
