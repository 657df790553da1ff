"""What every process of a training run agrees on: the trainer it builds, its threads, and the epoch schedule.

Rank 0 (:mod:`.loop`) and the other ranks of a ``torchrun`` job (:func:`.distributed.follow`) both
build their trainer with :func:`make_trainer` and stop at the epochs :class:`EpochSchedule` names,
so the two can never drift apart (a drift would leave ranks waiting for each other forever).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch

from .._malloc import keep_freed_buffers
from ..errors import TrainingError
from ..model import Krakencoder
from ..threads import ThreadChoice, choose_threads
from ._common import Batch, PathPlan, ProcessLink, Targets
from .config import TrainConfig
from .fast import FastTrainer
from .legacy import LegacyTrainer


@dataclass(frozen=True)
class EpochSchedule:
    """Which completed-epoch counts show metrics, write a checkpoint, or make the other ranks wait."""

    epochs: int
    display_every: int
    checkpoint_every: int

    @classmethod
    def of(cls, config: TrainConfig) -> EpochSchedule:
        return cls(config.epochs, config.display_every, config.checkpoint_every)

    def shows(self, done: int) -> bool:
        """Metrics are computed and shown after ``done`` epochs."""
        return done == self.epochs or (self.display_every > 0 and done % self.display_every == 0)

    def checkpoints(self, done: int) -> bool:
        """A checkpoint is written after ``done`` epochs."""
        return done == self.epochs or (self.checkpoint_every > 0 and done % self.checkpoint_every == 0)

    def syncs(self, done: int) -> bool:
        """Rank 0 evaluates or writes after ``done`` epochs while the other ranks wait."""
        return self.shows(done) or self.checkpoints(done)


def make_trainer(model: Krakencoder, data: Batch, plan: PathPlan, config: TrainConfig, *, lr: float,
                 targets: Targets | None, comm: ProcessLink | None = None) -> FastTrainer | LegacyTrainer:
    """The trainer of ``config``: the fast batched one, or the original's per-path steps (``--path-steps``)."""
    common: dict[str, Any] = dict(seed=config.seed, batch_size=config.batch_size, lr=lr,
                                  weight_decay=config.weight_decay, dropout_at=config.dropout_at, targets=targets)
    if config.path_steps:
        if comm is not None and comm.world_size > 1:
            raise TrainingError("--path-steps (one step per path, in sequence) cannot be split across processes",
                                hint="run --path-steps without torchrun, or drop --path-steps")
        return LegacyTrainer(model, data, plan, config.recipe, **common)
    return FastTrainer(model, data, plan, config.recipe, comm=comm, **common)


def thread_choice(requested: int | None, n_paths: int, batch_size: int, width: int,
                  dev: torch.device) -> ThreadChoice:
    """CPU threads for training (:func:`~kraken_cli.engine.threads.choose_threads`): small steps
    (recipe P: 65k predictions per batch) run on 1 thread, paper scale (2.4M) on the free cores."""
    return choose_threads(requested, device_type=dev.type, small_work=n_paths * batch_size * width < 1_000_000)


@contextlib.contextmanager
def training_threads(n: int | None) -> Iterator[None]:
    """Use ``n`` CPU threads inside the block (None: leave torch's setting), restoring the setting after;
    freed buffers are kept for the next batch from here on (:func:`.._malloc.keep_freed_buffers`)."""
    keep_freed_buffers()
    old = torch.get_num_threads()
    try:
        if n and n != old:
            torch.set_num_threads(n)
        yield
    finally:
        if torch.get_num_threads() != old:
            torch.set_num_threads(old)
