"""``train()``: one training run from edge-space arrays to a trained model and its files.

Order of work: split -> transforms fitted on the training subjects (once) -> data moved to the
device as tensors -> model (new, fine-tuned or resumed) -> epochs. Metrics are computed only at
display epochs, in original edge space on the validation subjects; checkpoints are written
every ``checkpoint_every`` completed epochs and at the end, atomically, in the original's
layout plus ``kraken_*`` keys that make ``--resume`` bit-exact.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ..errors import TrainingInterrupted
from ..io.subjects import SubjectSplit
from ..model import Krakencoder
from ..naming import RunNames
from ..progress import NULL_PROGRESS, Progress
from ._common import Batch, PathPlan, ProcessLink, Targets
from ._evaluate import EvalData, evaluate, loss_per_path
from ._figures import FigureWorker, helpers_pay_off, start_figure_workers
from ._outputs import write_config_json
from ._setup import RunSetup, prepare_run
from .config import TrainConfig
from .fast import FastTrainer
from .interrupts import stop_on_signals
from .legacy import LegacyTrainer
from .record import TrainRecord
from .schedule import EpochSchedule, make_trainer, thread_choice, training_threads

log = logging.getLogger(__name__)


@dataclass
class DisplayEvent:
    """What a display epoch reports (the CLI renders it as a table)."""

    epoch: int                       #: completed epochs
    epochs: int                      #: total epochs of the run
    elapsed: float                   #: seconds of training so far (this process)
    seconds_per_epoch: float
    path_names: list[str]
    loss_train: npt.NDArray[np.float64]
    loss_val: npt.NDArray[np.float64]
    metrics: dict[str, npt.NDArray[np.float64]]        #: validation, original edge space, per path
    metrics_train: dict[str, npt.NDArray[np.float64]]  #: training subjects, transformed space, per path
    threads: str = ""                                  #: the CPU threads used, and why

    def mean(self, name: str) -> float:
        """Mean of a validation metric over paths (NaN-aware)."""
        v = self.metrics.get(name)
        return float(np.nanmean(v)) if v is not None and np.isfinite(v).any() else float("nan")


@dataclass
class TrainResult:
    """A finished (or resumed-and-finished) training run."""

    model: Krakencoder                   #: trained network, eval mode, on CPU
    flavors: list[str]                   #: encoder/decoder order
    path_names: list[str]                #: trained paths ``src->dst``
    transforms: dict[str, Any]           #: flavor -> fitted transform
    split: SubjectSplit
    record: TrainRecord
    completed_epochs: int
    train_seconds: float                 #: wall time of the epochs run by this call
    seconds_per_epoch: float
    effective_lr: float
    checkpoints: list[Path] = field(default_factory=list)
    files: dict[str, Path] = field(default_factory=dict)
    last_display: DisplayEvent | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of ``kraken train --json``: flavors, paths, epochs, timing, files, validation."""
        d: dict[str, Any] = {
            "flavors": self.flavors, "paths": len(self.path_names), "epochs": self.completed_epochs,
            "seconds": round(self.train_seconds, 2), "seconds_per_epoch": round(self.seconds_per_epoch, 4),
            "checkpoints": [str(c) for c in self.checkpoints], "files": {k: str(v) for k, v in self.files.items()}}
        if self.last_display is not None:
            d["validation"] = {k: self.last_display.mean(k) for k in self.last_display.metrics}
        return d


def train(cohort_arrays: Mapping[str, npt.NDArray[np.floating]], config: TrainConfig, *,
          subjects: Sequence[str] | None = None,
          groups: Mapping[str, str | None] | None = None,
          transforms: Mapping[str, Any] | None = None,
          split: SubjectSplit | None = None,
          target_latents: Mapping[str, npt.NDArray[np.floating]] | npt.NDArray[np.floating] | None = None,
          progress: Progress = NULL_PROGRESS,
          on_display: Callable[[DisplayEvent], None] | None = None,
          on_checkpoint: Callable[[Path], None] | None = None,
          device: torch.device | str = "cpu",
          threads: int | None = None,
          figures: bool = True,
          command: Sequence[str] | None = None,
          comm: ProcessLink | None = None,
          resume_overrides: Collection[str] | None = None,
          inputs: Sequence[str] | None = None) -> TrainResult:
    """Train a Krakencoder; see ``kraken train --help`` for what ``config`` holds.

    ``cohort_arrays`` maps flavor -> edge rows ``(n_subjects, n_edges)``, rows aligned across
    flavors, in the model's flavor order (a resumed or fine-tuned run takes the checkpoint's).
    Optional data: ``subjects`` (row ids, default "1", "2", ...), ``groups`` (SC/FC of each flavor,
    default from the names), ``transforms`` (fitted, e.g. from ``-t`` files; the others get
    ``config.transformation`` fitted on the training subjects), ``split`` (default: the original's
    seed-0 split), ``target_latents`` (target encoding: per flavor, or one array, of shape
    ``(n_subjects, latent_size)``), ``inputs`` (the ``-i`` specs, recorded so ``--resume`` alone
    can reread them).

    Running: ``progress`` advances once per epoch; ``on_display(DisplayEvent)`` and
    ``on_checkpoint(path)`` are called at display epochs and after each checkpoint; ``threads``
    overrides the CPU threads :mod:`~kraken_cli.engine.threads` would choose (the choice is in the
    run's log); ``figures`` draws the curves and heatmap PNGs (with ``config.output``); ``command``
    is recorded in checkpoints and records. ``comm`` is rank 0's link to the other processes of a
    ``torchrun`` job (they run :func:`~.distributed.follow`; rank 0 writes every file).
    ``resume_overrides`` names the options a resumed run takes from ``config`` (default
    :func:`~.resume.default_overrides`).

    Raises
    ------
    TrainingError, SpecError, InputDataError, FlavorError, CheckpointError
        For unusable options or data, before any training.
    TrainingInterrupted
        After SIGINT/SIGTERM (single process): the last completed epoch is checkpointed first.
    """
    dev = torch.device(device)
    try:
        setup = prepare_run(cohort_arrays, config, subjects=subjects, groups=groups, transforms=transforms,
                            split=split, target_latents=target_latents, device=dev, command=command,
                            resume_overrides=resume_overrides, inputs=inputs)
        width = max(x.shape[1] for x in setup.train.xs)
        choice = thread_choice(threads, setup.plan.n_paths, setup.config.batch_size, width, dev)
        setup.threads = choice.reason
        log.info("training threads: %s", choice.reason)
        with training_threads(choice.threads):
            return _run(setup, progress=progress, on_display=on_display, on_checkpoint=on_checkpoint,
                        figures=figures, command=command, comm=comm)
    except BaseException as exc:
        if comm is not None:
            comm.abort_setup(exc)
        raise


def _start(s: RunSetup, comm: ProcessLink | None) -> tuple[FastTrainer | LegacyTrainer, ProcessLink | None]:
    """The trainer (resumed when the run is), with the other ranks of a torchrun job sent their share."""
    trainer = make_trainer(s.model, s.train, s.plan, s.config, lr=s.effective_lr, targets=s.train_targets,
                           comm=comm)
    if s.resume_state is not None:
        trainer.load_state_dict(s.resume_state)
    if comm is None or comm.world_size == 1:
        return trainer, None
    from .distributed import Communicator, send_setup

    assert isinstance(trainer, FastTrainer) and isinstance(comm, Communicator)
    send_setup(comm, trainer, config=s.config, start_epoch=s.start_epoch, effective_lr=s.effective_lr,
               flavors=s.flavors)
    comm.last_checkpoint = s.config.resume
    return trainer, comm


@dataclass
class _Progress:
    """Loss history and timing of the epochs so far, written into the record at each stop."""

    loss: torch.Tensor                       #: (epochs, paths)
    timestamps: npt.NDArray[np.float64]
    offset: float                            #: seconds of the run before this call (resumed runs)
    t0: float = field(default_factory=time.perf_counter)

    @classmethod
    def of(cls, s: RunSetup) -> _Progress:
        E, h = s.config.epochs, s.record
        loss = torch.full((E, s.plan.n_paths), float("nan"), device=s.device)
        if s.start_epoch > 0:
            loss[: s.start_epoch] = torch.as_tensor(h["loss_train"][:, : s.start_epoch].T, device=s.device)
        stamps = np.asarray(h.get("epoch_timestamp", np.full(E, np.nan)), dtype=np.float64)
        return cls(loss, stamps, float(np.nanmax(stamps[: s.start_epoch])) if s.start_epoch > 0 else 0.0)

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def into(self, history: TrainRecord, e: int) -> None:
        total = self.offset + self.elapsed()
        history["loss_train"] = self.loss.T.cpu().numpy().astype(np.float64)
        history["epoch_timestamp"] = self.timestamps
        history["current_epoch"] = e
        history["trainduration"] = total
        history["seconds_per_epoch"] = total / (e + 1)


def _run(s: RunSetup, *, progress: Progress, on_display: Callable[[DisplayEvent], None] | None,
         on_checkpoint: Callable[[Path], None] | None, figures: bool, command: Sequence[str] | None,
         comm: ProcessLink | None = None) -> TrainResult:
    trainer, comm = _start(s, comm)
    sched, E = EpochSchedule.of(s.config), s.config.epochs
    state = _Progress.of(s)
    checkpoints: list[Path] = list(s.previous_checkpoints)
    last: DisplayEvent | None = None
    progress.start("training", total=E - s.start_epoch)
    if figures and s.names.prefix is not None and helpers_pay_off(  # import the plotting code while the model trains
            E - s.start_epoch, s.plan.n_paths, s.train.xs[0].shape[0], max(x.shape[1] for x in s.train.xs)):
        s.figure_worker = start_figure_workers()
    with stop_on_signals(enabled=comm is None) as stop:
        for e in range(s.start_epoch, E):
            state.loss[e] = trainer.run_epoch(e)
            state.timestamps[e] = state.offset + state.elapsed()  # host time: no device synchronisation
            progress.advance()
            done = e + 1
            if not (sched.syncs(done) or stop.requested):
                continue
            model = trainer.sync_model()
            state.into(s.record, e)
            if sched.shows(done):
                last = _display(s, model, e, state.elapsed() / (done - s.start_epoch), state.offset + state.elapsed())
                if on_display is not None:
                    on_display(last)
            stopping = stop.requested and done < E  # a signal during the display: this epoch is complete
            if s.names.prefix is not None and done < E and (sched.shows(done) or stopping):
                s.names.files["trainrecord"] = s.record.save(s.names.path("trainrecord"))  # type: ignore[arg-type]
            path = None
            if (sched.checkpoints(done) or stopping) and s.names.prefix is not None:
                path = _checkpoint(s, model, done, trainer, comm, on_checkpoint)
                checkpoints.append(path)
            if comm is not None:
                comm.wait_for_main()  # the other processes wait here while rank 0 evaluates and writes
            if stopping:
                raise _interrupted(stop.name, done, E, path)
    progress.done()
    train_seconds = state.elapsed()
    model = trainer.sync_model().eval()
    files = _finish(s, checkpoints, figures, command)
    return TrainResult(model=model.cpu(), flavors=list(s.flavors), path_names=list(s.path_names),
                       transforms=dict(s.transforms), split=s.split, record=s.record, completed_epochs=E,
                       train_seconds=train_seconds, seconds_per_epoch=train_seconds / max(1, E - s.start_epoch),
                       effective_lr=s.effective_lr, checkpoints=checkpoints, files=files, last_display=last)


def _checkpoint(s: RunSetup, model: Krakencoder, done: int, trainer: FastTrainer | LegacyTrainer,
                comm: ProcessLink | None, on_checkpoint: Callable[[Path], None] | None) -> Path:
    path = s.save_checkpoint(model, done, trainer.state_dict())
    if comm is not None:
        comm.last_checkpoint = str(path)
    if on_checkpoint is not None:
        on_checkpoint(path)
    return path


def _finish(s: RunSetup, checkpoints: list[Path], figures: bool, command: Sequence[str] | None) -> dict[str, Path]:
    """The final record, figures and config beside the checkpoints; the files of the run by kind."""
    files = dict(s.names.files)
    if s.names.prefix is None:
        return files
    files["trainrecord"] = s.record.save(s.names.path("trainrecord"))  # type: ignore[arg-type]
    s.names.files.update(files)
    if figures:
        files.update(_figures(s))
        s.names.files.update(files)
    cfgjson = write_config_json(s.names, checkpoints, command)
    if cfgjson is not None:
        files["config"] = cfgjson
    return files


def _interrupted(signame: str, done: int, epochs: int, checkpoint: Path | None) -> TrainingInterrupted:
    if checkpoint is None:
        return TrainingInterrupted(f"{signame}: stopped after epoch {done} of {epochs}; nothing was saved (no output "
                                   "prefix)", hint="give -o PREFIX to keep checkpoints", completed_epochs=done)
    import shlex

    return TrainingInterrupted(f"{signame}: stopped after epoch {done} of {epochs}; saved {checkpoint}",
                               hint=f"continue with: kraken train --resume {shlex.quote(str(checkpoint))}",
                               checkpoint=str(checkpoint), completed_epochs=done)


def _display(s: RunSetup, model: Krakencoder, e: int, sec_per_epoch: float, elapsed: float) -> DisplayEvent:
    rec = s.record
    tlist = [s.transforms[f] for f in s.flavors]
    val = evaluate(model, s.plan, s.val, tlist, origscale=True)
    val_opt = evaluate(model, s.plan, s.val, tlist, origscale=False)
    train_opt = evaluate(model, s.plan, s.train_eval, tlist, origscale=False)
    loss_val = loss_per_path(model, s.plan, s.config.recipe, s.val)
    rec.set_metrics(e, val, split="val", origscale=True)
    rec.set_metrics(e, val_opt, split="val", origscale=False)
    rec.set_metrics(e, train_opt, split="train", origscale=False)
    rec.set_loss(e, loss_val, split="val")
    loss_train = np.asarray(rec["loss_train"][:, e], dtype=np.float64)
    ev = DisplayEvent(epoch=e + 1, epochs=s.config.epochs, elapsed=elapsed, seconds_per_epoch=sec_per_epoch,
                      path_names=list(s.path_names), loss_train=loss_train, loss_val=loss_val, metrics=val,
                      metrics_train=train_opt, threads=s.threads)
    log.info("epoch %d/%d: %.3f s/epoch, validation top1acc %.3f avgrank %.4f avgcorr_resid %.3f",
             ev.epoch, ev.epochs, sec_per_epoch, ev.mean("top1acc"), ev.mean("avgrank"), ev.mean("avgcorr_resid"))
    return ev


def _figures(s: RunSetup) -> dict[str, Path]:
    """Training curves and the heatmap of the final record, drawn side by side by the helpers started with the
    training (training/_figures), else here (failures are logged, not fatal)."""
    out: dict[str, Path] = {}
    workers: dict[str, FigureWorker] = s.figure_worker or {}
    s.figure_worker = None
    record_file = s.names.files.get("trainrecord")
    titles = {"loss": s.names.suffix, "heatmap": None}
    pngs = {kind: s.names.path(kind, "png") for kind in titles}
    try:
        for kind, worker in workers.items():
            if record_file is not None:
                worker.submit(kind, record_file, pngs[kind], titles[kind])  # type: ignore[arg-type]
        for kind in titles:
            helper = workers.get(kind) if record_file is not None else None
            out[kind] = _figure(helper, kind, s.record, pngs[kind], titles[kind])  # type: ignore[arg-type]
    except ImportError as exc:  # pragma: no cover - matplotlib missing
        log.warning("figures skipped: %s", exc)
    except Exception as exc:
        log.warning("could not draw the training figures: %s", exc)
    finally:
        for worker in workers.values():
            worker.close()
    return out


def _figure(worker: FigureWorker | None, kind: str, record: TrainRecord, out_file: Path, title: str | None) -> Path:
    """The helper's figure, or drawn here when there is no helper or it failed."""
    from ._figures import draw

    if worker is not None:
        try:
            return worker.result()
        except Exception as exc:
            log.info("drawing the %s figure here: %s", kind, exc)
    return draw(kind, record, out_file, title)


__all__ = ["DisplayEvent", "TrainResult", "train", "Batch", "PathPlan", "Targets", "EvalData", "RunNames"]
