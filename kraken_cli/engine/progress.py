"""A tiny progress protocol: the engine reports, the CLI draws (with rich) or not."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """What long-running engine functions call to report progress."""

    def start(self, label: str, total: int | None = None) -> None:
        """Begin a task of ``total`` steps (None when unknown)."""

    def advance(self, n: int = 1) -> None:
        """Mark ``n`` more steps done."""

    def done(self) -> None:
        """Finish the current task."""


class NullProgress:
    """Progress that reports nothing (the default)."""

    def start(self, label: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


NULL_PROGRESS: Progress = NullProgress()
