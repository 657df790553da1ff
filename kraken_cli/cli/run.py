"""`kraken run` (not implemented yet)."""

from __future__ import annotations

from .app import app


@app.command("run")
def run_command() -> None:
    """Not implemented yet."""
    raise SystemExit("kraken run is not implemented yet")
