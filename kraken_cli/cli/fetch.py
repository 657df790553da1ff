"""`kraken fetch` (not implemented yet)."""

from __future__ import annotations

from .app import app


@app.command("fetch")
def fetch_command() -> None:
    """Not implemented yet."""
    raise SystemExit("kraken fetch is not implemented yet")
