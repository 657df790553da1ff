"""rich implementation of the engine's Progress protocol (stderr; off with --quiet or no TTY)."""

from __future__ import annotations

from typing import Any

from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from kraken_cli.engine.progress import NULL_PROGRESS
from kraken_cli.engine.progress import Progress as ProgressProtocol

from ._console import err


class RichProgress:
    """One rich progress bar per engine task."""

    def __init__(self, *, in_bytes: bool = False) -> None:
        self.in_bytes = in_bytes
        self._bar: Progress | None = None
        self._task: Any = None  # rich's TaskID

    def start(self, label: str, total: int | None = None) -> None:
        self.done()
        counts = (DownloadColumn(), TransferSpeedColumn()) if self.in_bytes else (MofNCompleteColumn(),)
        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), *counts,
                             TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True)
        self._bar.start()
        self._task = self._bar.add_task(label, total=total)

    def advance(self, n: int = 1) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, n)

    def done(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
            self._task = None


def make_progress(quiet: bool, as_json: bool = False, *, in_bytes: bool = False) -> ProgressProtocol:
    """A rich bar on an interactive stderr, else the engine's no-op progress."""
    if quiet or as_json or not err.is_terminal:
        return NULL_PROGRESS
    return RichProgress(in_bytes=in_bytes)
