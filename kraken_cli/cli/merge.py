"""`kraken merge` (not implemented yet)."""

from __future__ import annotations

from .app import app


@app.command("merge")
def merge_command() -> None:
    """Not implemented yet."""
    raise SystemExit("kraken merge is not implemented yet")
