"""Ctrl-C and SIGTERM during training: finish the epoch, checkpoint it, then stop.

While :func:`stop_on_signals` is active, the first SIGINT or SIGTERM only sets a flag that the
epoch loop reads after each completed epoch; the loop then writes a checkpoint of that epoch and
raises :class:`~kraken_cli.engine.errors.TrainingInterrupted`. A second Ctrl-C stops at once
(``KeyboardInterrupt``). Signal handlers can only be set in the main thread; elsewhere (and under
``torchrun``, where every process must stop at the same epoch) the defaults stay.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


class StopRequest:
    """Set by the first SIGINT/SIGTERM; read by the epoch loop."""

    def __init__(self) -> None:
        self.signal: int | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""


@contextlib.contextmanager
def stop_on_signals(enabled: bool = True) -> Iterator[StopRequest]:
    """Route SIGINT and SIGTERM to a :class:`StopRequest` for the duration of the block."""
    request = StopRequest()
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum: int, frame: Any) -> None:  # only sets a flag: safe at any point
        if request.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        request.signal = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
