"""``kraken train`` as one engine call: read inputs, split and transforms, then :func:`.loop.train`.

Under ``torchrun`` (``distributed=``), rank 0 does all of that and the other ranks receive their
share of the run from it (:mod:`.distributed`); they read no input file.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import SpecError, TrainingError
from ..flavors import FlavorSpec
from ..naming import sibling
from ..progress import NULL_PROGRESS, Progress
from .config import TrainConfig
from .loop import DisplayEvent, TrainResult, train

if TYPE_CHECKING:
    from ..connectome import Cohort
    from .distributed import Communicator, DistributedSpec

_log = logging.getLogger(__name__)


def train_from_inputs(inputs: Sequence[str], config: TrainConfig, *, progress: Progress = NULL_PROGRESS,
                      on_display: Callable[[DisplayEvent], None] | None = None,
                      on_checkpoint: Callable[[Path], None] | None = None, device: str = "cpu",
                      figures: bool = True, command: Sequence[str] | None = None,
                      distributed: DistributedSpec | None = None,
                      resume_overrides: Collection[str] | None = None,
                      threads: int | None = None, report: str | None = None) -> TrainResult | None:
    """Train on ``-i FLAVOR[@GROUP]=PATH`` inputs with ``config`` (see ``kraken train --help``).

    With ``config.resume``, ``inputs`` may be empty (the run's recorded inputs are read again) and
    ``resume_overrides`` names the options of ``config`` the caller gave explicitly; the others
    come from the checkpoint (see :mod:`.resume`).

    With ``distributed`` (a ``torchrun`` job of more than one process) this process joins the
    job; rank 0 returns the result, the other ranks return None. ``threads``: CPU threads per
    process (default: chosen from the free cores, see :mod:`kraken_cli.engine.threads`).
    ``report``: an HTML file written at the end (model, validation heatmap, quality control).
    """
    _check_report(report, config, inputs)
    if distributed is None or distributed.world_size <= 1:
        return _train_from_inputs(inputs, config, progress=progress, on_display=on_display,
                                  on_checkpoint=on_checkpoint, device=device, figures=figures, command=command,
                                  resume_overrides=resume_overrides, threads=threads, report=report)
    from .distributed import follow, start

    if config.path_steps:
        raise TrainingError("--path-steps (one step per path, in sequence) cannot be split across processes",
                            hint="run --path-steps without torchrun, or drop --path-steps")
    comm = start(distributed, device)
    try:
        if comm.is_main:
            result: TrainResult | None = _train_from_inputs(
                inputs, config, progress=progress, on_display=on_display, on_checkpoint=on_checkpoint,
                device=str(comm.device), figures=figures, command=command, comm=comm,
                resume_overrides=resume_overrides, threads=threads, report=report)
        else:
            follow(comm, threads=threads)
            result = None
    except BaseException as exc:
        comm.abort_setup(exc)
        raise
    comm.close()
    return result


def _train_from_inputs(inputs: Sequence[str], config: TrainConfig, *, progress: Progress,
                       on_display: Callable[[DisplayEvent], None] | None,
                       on_checkpoint: Callable[[Path], None] | None, device: str, figures: bool,
                       command: Sequence[str] | None, comm: Communicator | None = None,
                       resume_overrides: Collection[str] | None = None, threads: int | None = None,
                       report: str | None = None) -> TrainResult:
    from ..inference import resolve_device
    from ..io import load_cohort, read_split_file
    from ..io._atomic import check_writable_dir
    from ..threads import usable_cores
    from ..transforms.files import load_transforms
    from .resume import absolute_inputs, option_name, resolve_resume

    previous_log = None
    if config.resume:
        resumed = resolve_resume(config, inputs, resume_overrides)
        for f, (old, new) in resumed.changed.items():
            _log.warning("resuming with %s %s (the run had %s)", option_name(f), new, old)
        config, inputs = resumed.config, resumed.inputs
        resume_overrides = [f for f in TrainConfig.__dataclass_fields__ if not f.startswith("_")]  # complete now
        previous_log = (sibling(str(config.resume), "log"), resumed.completed_epochs)
    if not inputs:
        raise SpecError("no inputs given", hint="give -i FLAVOR=PATH for every flavor to train")
    if config.output:
        from ._outputs import output_prefix

        check_writable_dir(str(output_prefix(config.output)))
    specs = [FlavorSpec.parse(s) for s in inputs]
    cohort = load_cohort(specs, workers=min(2, usable_cores()))  # two files' parsing buffers at a time, at most
    groups = {s.flavor.name: s.flavor.group for s in cohort.sources.values()}
    split = read_split_file(config.split_file) if config.split_file and not config.resume else None
    transforms = load_transforms(config.transform_files) if config.transform_files else None
    if transforms is not None:
        transforms = {f: t for f, t in transforms.items() if f in cohort.sources}
    targets = None
    if config.target_encoding:
        from .target import read_target_latents

        targets = read_target_latents(config.target_encoding, config.target_name, cohort.flavors, cohort.subjects)
    log = TrainLog(command, previous=previous_log)

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
                   on_checkpoint=checkpointed, device=resolve_device(device), figures=figures, command=command,
                   comm=comm, resume_overrides=resume_overrides, inputs=absolute_inputs(inputs), threads=threads)
    if log.file is not None:
        result.files["log"] = log.file
    _write_report(report, result, cohort)
    return result


def _write_report(report: str | None, result: TrainResult, cohort: Cohort) -> None:
    """``--report``: the HTML page of the finished run, listed among its files."""
    if report:
        from ..pipelines.report import write_train_report

        result.files["report"] = write_train_report(report, result, cohort)


def _check_report(report: str | None, config: TrainConfig, inputs: Sequence[str]) -> None:
    """``--report`` needs the checkpoint it describes (``-o``), an HTML name, and must not be an input."""
    if not report:
        return
    from ..io._atomic import check_writable_dir, refuse_overwriting

    if not config.output and not config.resume:
        raise SpecError("--report describes the trained checkpoint, which only -o writes",
                        hint="add -o PREFIX")
    if not report.lower().endswith((".html", ".htm")):
        raise SpecError(f"--report writes HTML, got {report!r}", hint="name the report FILE.html")
    refuse_overwriting({"--report": report}, [*(FlavorSpec.parse(s).path for s in inputs), config.split_file,
                                               config.start_from, config.resume, *config.transform_files])
    check_writable_dir(report)


class TrainLog:
    """The run's log file (``<prefix>_log_<suffix>.txt``): the command, then one line per display epoch.

    It is (re)written next to each checkpoint, so a killed run keeps the log up to its last checkpoint.
    A resumed run (``previous``: the resumed run's log and its completed epochs) continues that log:
    its lines up to the resumed epoch, a ``resumed`` line with the new command, then the new epochs.
    """

    def __init__(self, command: Sequence[str] | None, previous: tuple[Path, int] | None = None) -> None:
        from ._outputs import command_text

        self.lines = [command_text(command)]
        self.file: Path | None = None
        if previous is not None:
            old = _read_lines(previous[0])
            if old:
                kept = [ln for ln in old if _epoch_of(ln) is None or _epoch_of(ln) <= previous[1]]  # type: ignore[operator]
                self.lines = [*kept, f"resumed at epoch {previous[1]}: {command_text(command)}"]

    def add(self, ev: DisplayEvent) -> None:
        note = f"threads: {ev.threads}"
        if ev.threads and note not in self.lines:
            self.lines.append(note)
        self.lines.append(
            f"epoch {ev.epoch}/{ev.epochs}  {ev.seconds_per_epoch * 1000:.1f} ms/epoch  "
            f"loss train {float(ev.loss_train.mean()):.6g} val {float(ev.loss_val.mean()):.6g}  "
            + "  ".join(f"val {k} {ev.mean(k):.4f}" for k in sorted(ev.metrics)))

    def write_next_to(self, checkpoint: Path) -> None:
        from ..io._atomic import atomic_path

        self.file = sibling(checkpoint, "log")
        with atomic_path(self.file) as tmp:
            tmp.write_text("\n".join(self.lines) + "\n")


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []


def _epoch_of(line: str) -> int | None:
    if not line.startswith("epoch "):
        return None
    head = line.split()[1].split("/")[0]
    return int(head) if head.isdigit() else None
