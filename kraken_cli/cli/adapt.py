"""`kraken adapt` (not implemented yet)."""

from __future__ import annotations

from .app import app


@app.command("adapt")
def adapt_command() -> None:
    """Not implemented yet."""
    raise SystemExit("kraken adapt is not implemented yet")
