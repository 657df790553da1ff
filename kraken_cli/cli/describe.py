"""`kraken describe` (not implemented yet)."""

from __future__ import annotations

from .app import app


@app.command("describe")
def describe_command() -> None:
    """Not implemented yet."""
    raise SystemExit("kraken describe is not implemented yet")
