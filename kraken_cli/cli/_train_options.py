"""Options of ``kraken train`` alone (shared ones are in :mod:`._options`); defaults come from the engine.

:data:`DEFAULT` holds :class:`~kraken_cli.engine.training.config.TrainConfig`'s field defaults, read
without building a config (which would import torch); :func:`._declare.with_options` gives each option
the default of its name here, so ``kraken train --help`` shows the engine's own defaults and the two cannot
drift apart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from kraken_cli.engine.pipelines.configs import field_defaults
from kraken_cli.engine.training.config import TrainConfig

from ._options import flag

#: With the options that are not TrainConfig fields (they go to train_from_inputs).
DEFAULT: dict[str, Any] = {**field_defaults(TrainConfig), "device": "auto", "threads": None, "report": None}

PathsOpt = Annotated[list[str], typer.Option(
    "--paths", metavar="SCFC|SC|FC|SC2FC|FC2SC|self|A->B", help="Paths to train (repeatable; united into one model).")]
TransformationOpt = Annotated[str, typer.Option(
    "--transformation", metavar="pcaN|tsvdN|cfeat|zfeat|...", help="Input transform fitted on the training subjects.")]
LatentSizeOpt = Annotated[int, typer.Option("--latent-size", min=1, help="Latent dimension.")]
LatentUnitOpt = flag("--latent-unit/--no-latent-unit", "L2-normalise latents (the paper model does).")
HiddenOpt = Annotated[list[int], typer.Option(
    "--hidden", metavar="N", help="Hidden layer size between input and latent (repeatable).")]
LeakyReluOpt = Annotated[float, typer.Option(
    "--leaky-relu", metavar="SLOPE", help="LeakyReLU slope for hidden layers (0 = ReLU).")]
DropoutOpt = Annotated[float, typer.Option("--dropout", min=0.0, max=1.0, help="Dropout rate.")]
DropoutScheduleOpt = Annotated[Optional[tuple[float, float]], typer.Option(
    "--dropout-schedule", metavar="A B", help="Dropout from A to B linearly over the epochs.")]
LossOpt = Annotated[str, typer.Option(
    "--loss", metavar="RECIPE", help="Loss recipe: terms joined by '+', weights as .wN (exactly what it says).")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", min=2, help="Subjects per training batch.")]
LrOpt = Annotated[float, typer.Option(
    "--lr", help="AdamW learning rate of the original schedule (the fast trainer scales it).")]
WeightDecayOpt = Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay.")]
TrainvalFracOpt = Annotated[float, typer.Option(
    "--trainval-frac", help="Fraction of subjects for train+validation (rest: test).")]
ValFracOpt = Annotated[float, typer.Option("--val-frac", help="Fraction of train+validation used for validation.")]
CheckpointEveryOpt = Annotated[int, typer.Option(
    "--checkpoint-every", min=0, help="Checkpoint every N completed epochs (0: only at the end).")]
DisplayEveryOpt = Annotated[int, typer.Option(
    "--display-every", min=0, help="Validation metrics every N epochs (0: only at the end).")]
PrefixOpt = Annotated[Optional[str], typer.Option(
    "-o", "--output", metavar="PREFIX",
    help="Folder and file-name prefix of everything written (default: kraken; with --resume, the resumed run's).")]
TargetEncodingOpt = Annotated[Optional[Path], typer.Option(
    "--target-encoding", help="Latents to train toward (.mat with subjects), e.g. fusion latents.")]
TargetNameOpt = Annotated[Optional[str], typer.Option(
    "--target-name", help="Which latent in --target-encoding: fusion, a flavor, or self.")]
OnlySelfOpt = flag("--only-self", "Train only A->A paths (adding a flavor to a latent space).")
StrictOpt = flag("--strict", "Fixed-target mode: encoder to the target latent, decoder from it.")
PathStepsOpt = flag("--path-steps", "The original's schedule: one AdamW step per path per batch (slow).")
ResumeOpt = Annotated[Optional[Path], typer.Option("--resume", help="Continue a run from its checkpoint, bit-exactly.")]
StartFromOpt = Annotated[Optional[Path], typer.Option(
    "--start-from", help="Fine-tune from a checkpoint's architecture and weights.")]
