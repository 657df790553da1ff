"""The two consoles: stdout carries data (tables, JSON, written paths), stderr everything else."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

out = Console()
err = Console(stderr=True)


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain, no colour, for scripts)."""
    out.file.write(json.dumps(data, indent=2, default=str) + "\n")
    out.file.flush()
