"""rich implementation of the engine's Progress protocol (stderr; off with --quiet or no TTY)."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from kraken_cli.engine.progress import NULL_PROGRESS
from kraken_cli.engine.progress import Progress as ProgressProtocol

from ._console import err


class RichProgress:
    """One rich progress bar per engine task."""

    def __init__(self) -> None:
        self._bar: Progress | None = None
        self._task: int | None = None

    def start(self, label: str, total: int | None = None) -> None:
        self.done()
        self._bar = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
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


def make_progress(quiet: bool, as_json: bool = False) -> ProgressProtocol:
    """A rich bar on an interactive stderr, else the engine's no-op progress."""
    if quiet or as_json or not err.is_terminal:
        return NULL_PROGRESS
    return RichProgress()
