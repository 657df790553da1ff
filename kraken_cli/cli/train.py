"""``kraken train``: train a Krakencoder with the paper's recipe (or yours)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from . import _options as shared
from . import _train_options as own
from ._argv import command_line, given_params
from ._common import ReportStyle, with_report_style
from ._console import err
from ._declare import with_options
from ._errors import reporting_errors, setup_logging


@with_report_style
@with_options(
    own.DEFAULT, inputs=shared.InputOpt, paths=own.PathsOpt, transformation=own.TransformationOpt,
    transform=shared.TransformOpt, latent_size=own.LatentSizeOpt, latent_unit=own.LatentUnitOpt,
    hidden=own.HiddenOpt, leaky_relu=own.LeakyReluOpt, dropout=own.DropoutOpt,
    dropout_schedule=own.DropoutScheduleOpt, loss=own.LossOpt, epochs=shared.EpochsOpt, batch_size=own.BatchSizeOpt,
    lr=own.LrOpt, weight_decay=own.WeightDecayOpt, seed=shared.SeedOpt, split_file=shared.SplitFileOpt,
    trainval_frac=own.TrainvalFracOpt, val_frac=own.ValFracOpt, checkpoint_every=own.CheckpointEveryOpt,
    display_every=own.DisplayEveryOpt, output=own.PrefixOpt, target_encoding=own.TargetEncodingOpt,
    target_name=own.TargetNameOpt, only_self=own.OnlySelfOpt, strict=own.StrictOpt, path_steps=own.PathStepsOpt,
    resume=own.ResumeOpt, start_from=own.StartFromOpt, device=shared.DeviceOpt, threads=shared.ThreadsOpt,
    report=shared.ReportOpt)
def train_command(ctx: typer.Context, *, style: ReportStyle) -> None:
    """Train a model: one encoder and decoder per flavor around a shared latent space.

    Examples:

        kraken train -i FCcorr_fs86_hpf=fc.mat -i SCifod2act_fs86_volnorm=sc.mat --transformation pca64 --latent-size 32 --epochs 300 -o runs/demo

        kraken train -i SCifod2act_fs86_count=count.mat --target-encoding fusion_latents.mat --target-name fusion --only-self -o runs/count

        kraken train -i data.zip --epochs 300 -o runs/demo --report runs/demo_report.html
    """
    dist = _torchrun_spec()  # None unless launched by torchrun with more than one process
    follower = dist is not None and dist.rank != 0  # rank 0 alone logs, displays and writes
    if follower:
        setup_logging(style.verbose, quiet=True)  # errors only, as with -q
    with reporting_errors(as_json=style.as_json):
        result = _train(ctx, dist, quiet=style.quiet or style.as_json or follower)
    if result is not None:  # None: a torchrun process other than rank 0
        style.show(json=result.to_dict, quiet=lambda: result.checkpoints, tables=lambda: _tables(result))


def _train(ctx: typer.Context, dist: Any, *, quiet: bool) -> Any:
    """The one engine call, with the live display (its progress bar and display-epoch tables)."""
    from kraken_cli.engine.training.session import train_from_inputs

    from ._train_display import TrainDisplay

    p = ctx.params
    config = _train_config(p)
    with TrainDisplay(quiet=quiet) as display:
        return train_from_inputs(p["inputs"], config, progress=display.progress, on_display=display.show,
                                 device=p["device"], command=command_line(ctx), distributed=dist,
                                 resume_overrides=_resume_overrides(ctx, config), threads=p["threads"],
                                 report=str(p["report"]) if p["report"] else None)


def _train_config(p: dict[str, Any]) -> Any:
    """The engine's TrainConfig from the parsed options (usage errors raised here, before any input is read)."""
    from kraken_cli.engine.training import TrainConfig

    if p["resume"] and p["start_from"]:
        raise typer.BadParameter("--resume and --start-from cannot be used together")
    if p["strict"] and not p["target_encoding"]:
        raise typer.BadParameter("--strict needs --target-encoding")

    def text(key: str) -> str | None:
        return str(p[key]) if p[key] else None

    same = ("transformation", "latent_size", "latent_unit", "leaky_relu", "dropout", "loss", "epochs", "batch_size",
            "lr", "weight_decay", "seed", "trainval_frac", "val_frac", "checkpoint_every", "display_every",
            "target_name", "only_self", "strict", "path_steps")
    return TrainConfig(
        **{k: p[k] for k in same}, paths=tuple(p["paths"]) or own.DEFAULT["paths"], transform_files=tuple(p["transform"]),
        hidden=tuple(p["hidden"]), dropout_schedule=tuple(p["dropout_schedule"]) if p["dropout_schedule"] else None,
        split_file=text("split_file"), target_encoding=text("target_encoding"), resume=text("resume"),
        start_from=text("start_from"),
        output=p["output"] if p["output"] is not None else (_run_prefix(p["resume"]) if p["resume"] else "kraken"))


def _resume_overrides(ctx: typer.Context, config: Any) -> set[str] | None:
    """A resumed run keeps its stored options except those given on this command line."""
    if not config.resume:
        return None
    names = {"transform": "transform_files"}
    fields = {f for f in type(config).__dataclass_fields__ if not f.startswith("_")}
    overrides = {names.get(p, p) for p in given_params(ctx)} & fields
    return overrides | ({"output"} if config.output is not None else set())


def _tables(result: Any) -> None:
    from ._render import table

    table("Written", ["kind", "file"], [(k, str(v)) for k, v in result.files.items()] +
          [("checkpoint", str(c)) for c in result.checkpoints])
    err.print(f"Trained {len(result.path_names)} paths for {result.completed_epochs} epochs in "
              f"{result.train_seconds:.1f} s ({result.seconds_per_epoch * 1000:.1f} ms/epoch).")


def _torchrun_spec() -> Any:
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
