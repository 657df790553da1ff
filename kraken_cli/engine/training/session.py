"""``kraken train`` as one engine call: read inputs, split and transforms, then :func:`.loop.train`."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence

from ..errors import SpecError
from ..flavors import FlavorSpec
from ..progress import NULL_PROGRESS, Progress
from .config import TrainConfig
from .loop import DisplayEvent, TrainResult, train


def train_from_inputs(inputs: Sequence[str], config: TrainConfig, *, progress: Progress = NULL_PROGRESS,
                      on_display: Callable[[DisplayEvent], None] | None = None,
                      on_checkpoint: Callable[[Path], None] | None = None, device: str = "cpu",
                      figures: bool = True, command: Sequence[str] | None = None) -> TrainResult:
    """Train on ``-i FLAVOR[@GROUP]=PATH`` inputs with ``config`` (see ``kraken train --help``)."""
    from ..io import load_cohort, read_split_file
    from ..io._atomic import check_writable_dir
    from ..predict import resolve_device
    from ..transform_files import load_transforms

    if not inputs:
        raise SpecError("no inputs given", hint="give -i FLAVOR=PATH for every flavor to train")
    if config.output:
        from ._outputs import output_prefix

        check_writable_dir(str(output_prefix(config.output)))
    specs = [FlavorSpec.parse(s) for s in inputs]
    cohort = load_cohort(specs)
    groups = {s.flavor.name: s.flavor.group for s in cohort.sources.values()}
    split = read_split_file(config.split_file) if config.split_file else None
    transforms = load_transforms(config.transform_files) if config.transform_files else None
    if transforms is not None:
        transforms = {f: t for f, t in transforms.items() if f in cohort.sources}
    targets = None
    if config.target_encoding:
        from .target import read_target_latents

        targets = read_target_latents(config.target_encoding, config.target_name, cohort.flavors, cohort.subjects)
    log = TrainLog(command)

    def display(ev: DisplayEvent) -> None:
        log.add(ev)
        if on_display is not None:
            on_display(ev)

    def checkpointed(path: Path) -> None:
        log.write_next_to(path)
        if on_checkpoint is not None:
            on_checkpoint(path)

    result = train(cohort.arrays(), config, subjects=cohort.subjects, groups=groups, transforms=transforms,
                   split=split, target_latents=targets, progress=progress, on_display=display,
                   on_checkpoint=checkpointed, device=resolve_device(device), figures=figures, command=command)
    if log.file is not None:
        result.files["log"] = log.file
    return result


class TrainLog:
    """The run's log file (``<prefix>_log_<suffix>.txt``): the command, then one line per display epoch.

    It is (re)written next to each checkpoint, so a killed run keeps the log up to its last checkpoint.
    """

    def __init__(self, command: Sequence[str] | None) -> None:
        self.lines = [" ".join(command) if command else "kraken train"]
        self.file: Path | None = None

    def add(self, ev: DisplayEvent) -> None:
        self.lines.append(
            f"epoch {ev.epoch}/{ev.epochs}  {ev.seconds_per_epoch * 1000:.1f} ms/epoch  "
            f"loss train {float(ev.loss_train.mean()):.6g} val {float(ev.loss_val.mean()):.6g}  "
            + "  ".join(f"val {k} {ev.mean(k):.4f}" for k in sorted(ev.metrics)))

    def write_next_to(self, checkpoint: Path) -> None:
        import re

        from ..io._atomic import atomic_path

        name = re.sub(r"_ep\d+\.pt$", ".txt", checkpoint.name.replace("_chkpt_", "_log_"))
        self.file = checkpoint.with_name(name)
        with atomic_path(self.file) as tmp:
            tmp.write_text("\n".join(self.lines) + "\n")
