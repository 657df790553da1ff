"""Options of ``kraken run`` alone (shared ones are in :mod:`._options`), one alias per option.

:data:`DEFAULT` holds the field defaults of the engine's ``PredictConfig`` and ``PredictOptions`` (read
without torch); ``kraken run`` declares its options with :func:`._declare.with_options`, which gives each
option the default of its name here, so ``--help`` shows the engine's own defaults and the two cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from kraken_cli.engine.pipelines.configs import PredictConfig, PredictOptions, field_defaults

from . import _complete
from ._options import flag

DEFAULT: dict[str, Any] = {**field_defaults(PredictConfig, PredictOptions), "bids": None}  # --bids fills two fields

AdaptSourceOpt = Annotated[list[str], typer.Option(
    "--adapt-source", metavar="FLAVOR=PATH", help="Fit --adapt on this data's mean instead of the inputs'.")]
AdapterOpt = Annotated[Optional[Path], typer.Option("--adapter", help="Apply a saved adapter file (from kraken adapt).")]
FusionOpt = flag("--fusion", "Also predict from fused latents (mean over inputs).")
FusionIncludeOpt = Annotated[list[str], typer.Option(
    "--fusion-include", metavar="NAME=SEL[,SEL...]",
    help="Fusion group: SEL is all, SC, FC or flavor names (repeatable).")]
FusionNoselfOpt = flag("--fusion-noself", "Add NAME.noself groups that leave out the target flavor.")
FusionNoatlasOpt = flag("--fusion-noatlas", "Add NAME.noatlas groups that leave out the target's atlas.")
FusionNormOpt = flag("--fusion-norm", "L2-normalise fused latents (the published model does not).")
OnlyFusionOpt = flag("--only-fusion", "Write predictions from fusion groups only.")
OutputsOpt = Annotated[list[str], typer.Option(
    "--outputs", metavar="all|encoded|FLAVOR", help="What to predict (repeatable): all flavors, the latent, or flavors.",
    autocompletion=_complete.complete_flavor)]
OutputTemplateOpt = Annotated[Optional[str], typer.Option(
    "-o", "--output", metavar="TEMPLATE", help="Output file; {input} and {output} make one file per input/output.")]
SquareOpt = flag("--square", "Write R x R matrices (NaN diagonal) instead of edge vectors.")
BidsAppOpt = Annotated[Optional[tuple[str, str]], typer.Option(
    "--bids", metavar="DERIV_DIR OUTDIR",
    help="BIDS App mode: read the XCP-D / QSIRecon / kraken outputs found in DERIV_DIR (-i FLAVOR=SELECTOR "
         "names the others) and write BIDS derivatives to OUTDIR.")]
EvaluateOpt = flag(
    "--evaluate", "Score predictions against inputs of the same flavor (needed by --metrics-csv and --heatmap).")
MetricsCsvOpt = Annotated[Optional[Path], typer.Option("--metrics-csv", help="Write --evaluate metrics to this CSV.")]
DemeanOpt = Annotated[str, typer.Option(
    "--demean", metavar="test|train",
    help="Mean removed for the demeaned correlation: evaluated truth's or training's.")]
ChunkSizeOpt = Annotated[int, typer.Option("--chunk-size", min=1, help="Subjects per chunk (bounds memory).")]
QcOpt = flag(
    "--qc", "Score every subject's inputs and flag the implausible or out-of-distribution ones: FC edges outside "
            "[-1, 1] or under 0.5% negative, SC over 0.1% negative or under 2% non-zero, slope on the training mean "
            "outside 0.6-1.67 or correlation with it under 0.2, PCA residual or score norm over 3x and latent "
            "distance over 2x a training subject's, cross-flavor disagreement robust z over 4, --adapt fit R² under "
            "0.5 (README: Quality control).")
QcLatentsOpt = Annotated[Optional[Path], typer.Option(
    "--qc-latents", metavar="FILE",
    help="Training latents for --qc's latent distance (kraken run --outputs encoded on training subjects, or the "
         "published model's fusion-latent target file).")]
