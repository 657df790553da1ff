"""`kraken example` (not implemented yet)."""

from __future__ import annotations

from .app import app


@app.command("example")
def example_command() -> None:
    """Not implemented yet."""
    raise SystemExit("kraken example is not implemented yet")
