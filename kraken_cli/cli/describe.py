"""``kraken describe``: show what a checkpoint holds."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._console import out, print_json, print_path
from ._errors import reporting_errors, setup_logging
from ._options import HeatmapOpt, JsonOpt, QuietOpt, ReportOpt, VerboseOpt


def describe_command(
    checkpoint: Annotated[Path, typer.Argument(metavar="CKPT", help="Checkpoint .pt file.")],
    paths: Annotated[bool, typer.Option("--paths", help="List the trained paths.")] = False,
    record: Annotated[Optional[Path], typer.Option("--record", help="Training record .mat (ours or the original's) whose validation metrics --heatmap draws.")] = None,
    heatmap: HeatmapOpt = None,
    report: ReportOpt = None,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Show a checkpoint's flavors, sizes, architecture, transform and training parameters.

    Examples:

        kraken describe model.pt --paths

        kraken describe model.pt --record model_trainrecord.mat --heatmap heatmap.png

        kraken describe model.pt --record model_trainrecord.mat --report model.html
    """
    setup_logging(verbose, quiet)
    with reporting_errors(as_json=as_json):
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
    if as_json:
        print_json({**desc.to_dict(), "heatmap": written, "report": written_report})
        return
    if quiet:  # the flavors (one per line), then the trained paths with --paths: no tables, for scripts
        for row in desc.flavors:
            print_path(row.name)
        for src, dst in desc.paths if paths else []:
            print_path(f"{src}->{dst}")
        for w in (written, written_report):
            if w:
                print_path(w)
        return
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
