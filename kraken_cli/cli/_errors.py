"""Map exceptions to messages and exit codes in one place."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator

import typer
from rich.markup import escape

from kraken_cli.engine.errors import KrakenError

from ._console import err, print_json


def format_error(exc: KrakenError) -> str:
    """``Error: message`` and, when there is one, ``Hint: ...`` on the next line."""
    text = f"[bold red]Error:[/] {escape(exc.message)}"
    if exc.hint:
        text += f"\n[yellow]Hint:[/] {escape(exc.hint)}"
    return text


def debug_enabled() -> bool:
    """``KRAKEN_DEBUG=1`` shows tracebacks."""
    return os.environ.get("KRAKEN_DEBUG", "") not in ("", "0", "false", "no")


#: What Ctrl-C/SIGTERM leaves, true of every command (each output file is written atomically).
INTERRUPTED = "No file was left half-written, and files that existed before this command are unchanged."


@contextlib.contextmanager
def reporting_errors(as_json: bool = False, *, interrupted: str = INTERRUPTED) -> Iterator[None]:
    """Turn a KrakenError into a message on stderr and exit code 1 (2 for usage errors).

    With ``as_json`` (the command's ``--json``) stdout also gets ``{"error", "hint", "exit_code"}``,
    so a script reading stdout always gets JSON, on success and on failure alike.
    """
    try:
        yield
    except KrakenError as exc:
        if debug_enabled():
            err.print_exception()
        err.print(format_error(exc), soft_wrap=True)  # paths and commands stay whole for copy and paste
        if as_json:
            print_json({"error": exc.message, "hint": exc.hint, "exit_code": exc.exit_code})
        raise typer.Exit(code=exc.exit_code) from None
    except typer.BadParameter as exc:  # a usage error found by the command itself: typer prints it
        if as_json:
            print_json({"error": exc.format_message(), "hint": None, "exit_code": 2})
        raise
    except KeyboardInterrupt:
        err.print(f"[bold red]Interrupted.[/] {escape(interrupted)}")
        if as_json:
            print_json({"error": "interrupted", "hint": None, "exit_code": 130})
        raise typer.Exit(code=130) from None


class _RichLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        style = {"WARNING": "yellow", "ERROR": "red"}.get(record.levelname, "dim")
        prefix = "Warning: " if record.levelno >= logging.WARNING else ""
        err.print(f"[{style}]{escape(prefix + record.getMessage())}[/]")


def setup_logging(verbose: bool, quiet: bool) -> None:
    """Route the engine's ``kraken_cli`` logger to stderr (warnings always, info with -v)."""
    logger = logging.getLogger("kraken_cli")
    for h in list(logger.handlers):
        logger.removeHandler(h)
    logger.addHandler(_RichLogHandler())
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else (logging.ERROR if quiet else logging.WARNING))
