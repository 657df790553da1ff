"""``kraken example``: a complete offline demo on synthetic data."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import ReportStyle, with_report_style
from ._console import err, out
from ._errors import reporting_errors
from ._options import EpochsOpt, SeedOpt


@with_report_style
def example_command(
    folder: Annotated[Path, typer.Argument(metavar="DIR", help="Folder for the demo's data, model and predictions.")],
    subjects: Annotated[int, typer.Option("--n-subjects", min=50, help="Synthetic subjects.")] = 300,
    epochs: EpochsOpt = 200,
    seed: SeedOpt = 0,
    *,
    style: ReportStyle,
) -> None:
    """Make a synthetic paired SC/FC cohort, train a model on it, and predict held-out subjects.

    Prints the equivalent `kraken train` / `kraken run` commands so you can repeat and vary them.

    Examples:

        kraken example ./demo
    """
    with reporting_errors(as_json=style.as_json):
        from kraken_cli.engine.example import run_example

        from ._train_display import TrainDisplay

        display = TrainDisplay(quiet=style.quiet or style.as_json)
        with display:
            result = run_example(folder, n_subjects=subjects, epochs=epochs, seed=seed, progress=display.progress,
                                 on_display=display.show)
    style.show(json=result.to_dict, quiet=lambda: result.files, tables=lambda: _tables(result))


def _tables(result: Any) -> None:
    from ._render import table

    cols = ("top1acc", "avgrank", "avgcorr_resid")
    fusion = [m for m in result.metrics if m["source"] == "fusion"]
    table(f"Fusion predictions of {result.extra['n_test']} held-out subjects", ["target", "top-1", "avg rank",
                                                                                 "demeaned corr"],
          [(m["target"], *(f"{m[c]:.3f}" for c in cols)) for m in fusion])
    table("Written", ["file"], [(str(f),) for f in result.files])
    err.print(f"Done in {result.seconds:.1f} s (training {result.train_seconds:.1f} s). Repeat or vary it with:")
    for c in result.commands:
        out.print(c, highlight=False, markup=False, soft_wrap=True)
        out.print("")
