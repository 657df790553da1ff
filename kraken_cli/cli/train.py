"""`kraken train` (not implemented yet)."""

from __future__ import annotations

from .app import app


@app.command("train")
def train_command() -> None:
    """Not implemented yet."""
    raise SystemExit("kraken train is not implemented yet")
