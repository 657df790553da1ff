"""``kraken describe``: show what a checkpoint holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._common import ReportStyle, with_report_style
from ._console import out
from ._errors import reporting_errors
from ._options import HeatmapOpt, ReportOpt


@with_report_style
def describe_command(
    checkpoint: Annotated[Path, typer.Argument(metavar="CKPT", help="Checkpoint .pt file.")],
    paths: Annotated[bool, typer.Option("--paths", help="List the trained paths.")] = False,
    record: Annotated[Optional[Path], typer.Option("--record", help="Training record .mat (ours or the original's) whose validation metrics --heatmap draws.")] = None,
    heatmap: HeatmapOpt = None,
    report: ReportOpt = None,
    *,
    style: ReportStyle,
) -> None:
    """Show a checkpoint's flavors, sizes, architecture, transform and training parameters.

    Examples:

        kraken describe model.pt --paths

        kraken describe model.pt --record model_trainrecord.mat --heatmap heatmap.png

        kraken describe model.pt --record model_trainrecord.mat --report model.html
    """
    with reporting_errors(as_json=style.as_json):
        from kraken_cli.engine.describe import describe_checkpoint
        from kraken_cli.engine.naming import sibling

        desc = describe_checkpoint(checkpoint)
        written = None
        if heatmap:
            from kraken_cli.engine.errors import InputDataError
            from kraken_cli.engine.plots import heatmap_from_record
            from kraken_cli.engine.training.record import read_record

            rec_file = record or sibling(checkpoint, "trainrecord")
            if not Path(rec_file).exists():
                raise InputDataError(f"no training record found at {rec_file}",
                                     hint="name it with --record FILE.mat")
            heatmap_from_record(read_record(rec_file), heatmap)
            written = str(heatmap)
        written_report = _report(checkpoint, record, report) if report else None
    style.show(json=lambda: {**desc.to_dict(), "heatmap": written, "report": written_report},
               quiet=lambda: _quiet_lines(desc, paths, [written, written_report]),
               tables=lambda: _tables(desc, paths, written, written_report))


def _quiet_lines(desc: Any, paths: bool, written: list[Optional[str]]) -> list[str]:
    """``-q``: the flavors (one per line), then the trained paths with --paths, then the files written."""
    return [*(row.name for row in desc.flavors), *(f"{src}->{dst}" for src, dst in (desc.paths if paths else [])),
            *(w for w in written if w)]


def _tables(desc: Any, paths: bool, written: Optional[str], written_report: Optional[str]) -> None:
    from ._render import render_describe

    render_describe(desc, show_paths=paths)
    if written:
        out.print(f"Heatmap written to {written}", highlight=False)
    if written_report:
        out.print(f"Report written to {written_report}", highlight=False)


def _report(checkpoint: Path, record: Optional[Path], report: Path) -> str:
    """``--report``: the record given, else the checkpoint's sibling record when it exists."""
    from kraken_cli.engine.naming import sibling
    from kraken_cli.engine.pipelines.report import write_describe_report

    sib = sibling(checkpoint, "trainrecord")
    rec = record if record is not None else (sib if sib.exists() else None)
    return str(write_describe_report(report, checkpoint, rec, record_given=record is not None))
