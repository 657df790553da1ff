"""Shared rendering helpers (rich tables on stdout)."""

from __future__ import annotations

from typing import Any, Sequence

from rich.table import Table

from ._console import out


def table(title: str | None, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print a simple rich table on stdout."""
    t = Table(title=title, title_justify="left", header_style="bold")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*("" if v is None else str(v) for v in r))
    out.print(t)
