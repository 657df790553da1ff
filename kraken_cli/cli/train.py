"""``kraken train``: train a Krakencoder with the paper's recipe (or yours)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._argv import command_line, given_params
from ._console import err, print_json, print_path
from ._errors import reporting_errors, setup_logging
from ._options import (Device, DeviceOpt, EpochsOpt, InputOpt, JsonOpt, QuietOpt, SeedOpt, SplitFileOpt, ThreadsOpt,
                       TransformOpt, VerboseOpt)

_PAPER = "correye+enceye.w10+neidist+encdist.w10+mse.w1000+latentsimloss.w10000"


def train_command(
    ctx: typer.Context,
    inputs: InputOpt = [],  # noqa: B006
    paths: Annotated[list[str], typer.Option("--paths", metavar="SCFC|SC|FC|SC2FC|FC2SC|self|A->B",
                                             help="Paths to train (repeatable; united into one model).")] = [],  # noqa: B006
    transformation: Annotated[str, typer.Option("--transformation", metavar="pcaN|tsvdN|cfeat|zfeat|...",
                                                help="Input transform fitted on the training subjects.")] = "pca256",
    transform: TransformOpt = [],  # noqa: B006
    latent_size: Annotated[int, typer.Option("--latent-size", min=1, help="Latent dimension.")] = 128,
    latent_unit: Annotated[bool, typer.Option("--latent-unit/--no-latent-unit", help="L2-normalise latents (the paper model does).")] = True,
    hidden: Annotated[list[int], typer.Option("--hidden", metavar="N", help="Hidden layer size between input and latent (repeatable).")] = [],  # noqa: B006
    leaky_relu: Annotated[float, typer.Option("--leaky-relu", metavar="SLOPE", help="LeakyReLU slope for hidden layers (0 = ReLU).")] = 0.0,
    dropout: Annotated[float, typer.Option("--dropout", min=0.0, max=1.0, help="Dropout rate.")] = 0.5,
    dropout_schedule: Annotated[Optional[tuple[float, float]], typer.Option("--dropout-schedule", metavar="A B", help="Dropout from A to B linearly over the epochs.")] = None,
    loss: Annotated[str, typer.Option("--loss", metavar="RECIPE", help="Loss recipe: terms joined by '+', weights as .wN (exactly what it says).")] = _PAPER,
    epochs: EpochsOpt = 2000,
    batch_size: Annotated[int, typer.Option("--batch-size", min=2, help="Subjects per training batch.")] = 41,
    lr: Annotated[float, typer.Option("--lr", help="AdamW learning rate of the original schedule (the fast trainer scales it).")] = 1e-4,
    weight_decay: Annotated[float, typer.Option("--weight-decay", help="AdamW weight decay.")] = 0.01,
    seed: SeedOpt = 0,
    split_file: SplitFileOpt = None,
    trainval_frac: Annotated[float, typer.Option("--trainval-frac", help="Fraction of subjects for train+validation (rest: test).")] = 0.8,
    val_frac: Annotated[float, typer.Option("--val-frac", help="Fraction of train+validation used for validation.")] = 0.1,
    checkpoint_every: Annotated[int, typer.Option("--checkpoint-every", min=0, help="Checkpoint every N completed epochs (0: only at the end).")] = 1000,
    display_every: Annotated[int, typer.Option("--display-every", min=0, help="Validation metrics every N epochs (0: only at the end).")] = 100,
    output: Annotated[Optional[str], typer.Option("-o", "--output", metavar="PREFIX", help="Folder and file-name prefix of everything written (default: kraken; with --resume, the resumed run's).")] = None,
    target_encoding: Annotated[Optional[Path], typer.Option("--target-encoding", help="Latents to train toward (.mat with subjects), e.g. fusion latents.")] = None,
    target_name: Annotated[Optional[str], typer.Option("--target-name", help="Which latent in --target-encoding: fusion, a flavor, or self.")] = None,
    only_self: Annotated[bool, typer.Option("--only-self", help="Train only A->A paths (adding a flavor to a latent space).")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Fixed-target mode: encoder to the target latent, decoder from it.")] = False,
    path_steps: Annotated[bool, typer.Option("--path-steps", help="The original's schedule: one AdamW step per path per batch (slow).")] = False,
    resume: Annotated[Optional[Path], typer.Option("--resume", help="Continue a run from its checkpoint, bit-exactly.")] = None,
    start_from: Annotated[Optional[Path], typer.Option("--start-from", help="Fine-tune from a checkpoint's architecture and weights.")] = None,
    device: DeviceOpt = Device.auto,
    threads: ThreadsOpt = None,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Train a model: one encoder and decoder per flavor around a shared latent space.

    Examples:

        kraken train -i FCcorr_fs86_hpf=fc.mat -i SCifod2act_fs86_volnorm=sc.mat --transformation pca64 --latent-size 32 --epochs 300 -o runs/demo

        kraken train -i SCifod2act_fs86_count=count.mat --target-encoding fusion_latents.mat --target-name fusion --only-self -o runs/count
    """
    dist = _torchrun_spec()  # None unless launched by torchrun with more than one process
    follower = dist is not None and dist.rank != 0  # rank 0 alone logs, displays and writes
    setup_logging(verbose, quiet or follower)
    with reporting_errors(as_json=as_json):
        from kraken_cli.engine.training import TrainConfig
        from kraken_cli.engine.training.session import train_from_inputs

        if resume and start_from:
            raise typer.BadParameter("--resume and --start-from cannot be used together")
        if strict and not target_encoding:
            raise typer.BadParameter("--strict needs --target-encoding")
        config = TrainConfig(
            paths=tuple(paths) or ("SCFC",), transformation=transformation, transform_files=tuple(transform),
            latent_size=latent_size, latent_unit=latent_unit, hidden=tuple(hidden), leaky_relu=leaky_relu,
            dropout=dropout, dropout_schedule=tuple(dropout_schedule) if dropout_schedule else None, loss=loss,
            epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed,
            split_file=str(split_file) if split_file else None, trainval_frac=trainval_frac, val_frac=val_frac,
            checkpoint_every=checkpoint_every, display_every=display_every,
            output=output if output is not None else (_run_prefix(resume) if resume else "kraken"),
            target_encoding=str(target_encoding) if target_encoding else None, target_name=target_name,
            only_self=only_self, strict=strict, path_steps=path_steps,
            resume=str(resume) if resume else None, start_from=str(start_from) if start_from else None)
        from ._train_display import TrainDisplay

        overrides = None
        if resume:  # a resumed run keeps its stored options unless given here
            names = {"transform": "transform_files"}
            overrides = {names.get(p, p) for p in given_params(ctx)} & set(TrainConfig.__dataclass_fields__)
            overrides |= {"output"} if config.output is not None else set()
        display = TrainDisplay(quiet=quiet or as_json or follower)
        with display:
            result = train_from_inputs(inputs, config, progress=display.progress, on_display=display.show,
                                       device=device.value, command=command_line(ctx), distributed=dist,
                                       resume_overrides=overrides, threads=threads)
    if result is None:  # a torchrun process other than rank 0
        return
    files = {k: str(v) for k, v in result.files.items()}
    summary = {"flavors": result.flavors, "paths": len(result.path_names), "epochs": result.completed_epochs,
               "seconds": round(result.train_seconds, 2), "seconds_per_epoch": round(result.seconds_per_epoch, 4),
               "checkpoints": [str(c) for c in result.checkpoints], "files": files}
    if result.last_display is not None:
        summary["validation"] = {k: result.last_display.mean(k) for k in result.last_display.metrics}
    if as_json:
        print_json(summary)
    elif quiet:
        for c in result.checkpoints:
            print_path(c)
    else:
        from ._render import table

        table("Written", ["kind", "file"], [(k, v) for k, v in files.items()] +
              [("checkpoint", str(c)) for c in result.checkpoints])
        err.print(f"Trained {len(result.path_names)} paths for {result.completed_epochs} epochs in "
                  f"{result.train_seconds:.1f} s ({result.seconds_per_epoch * 1000:.1f} ms/epoch).")


def _torchrun_spec() -> "Any":
    """The torchrun job this process belongs to (``WORLD_SIZE`` > 1), from the environment; else None.

    The only place kraken reads torchrun's variables; ``KRAKEN_DIST_TIMEOUT`` (seconds) sets how
    long a training step waits for a missing process before the run fails.
    """
    import os

    world = os.environ.get("WORLD_SIZE")
    if world is None or world.strip() in ("", "1"):
        return None
    with reporting_errors():
        from kraken_cli.engine.errors import TrainingError
        from kraken_cli.engine.training.distributed import DistributedSpec

        try:
            return DistributedSpec(rank=int(os.environ.get("RANK", "0")), world_size=int(world),
                                   local_rank=int(os.environ.get("LOCAL_RANK", "0")),
                                   timeout=float(os.environ.get("KRAKEN_DIST_TIMEOUT", "60")))
        except ValueError as exc:
            raise TrainingError(f"bad torchrun environment: {exc}",
                                hint="launch with torchrun, or unset WORLD_SIZE/RANK/LOCAL_RANK") from None


def _run_prefix(checkpoint: Path) -> Optional[str]:
    """The -o prefix a run's checkpoint was written under: a resumed run writes beside it."""
    from kraken_cli.engine.naming import run_prefix

    return run_prefix(checkpoint)
