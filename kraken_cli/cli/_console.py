"""The two consoles: stdout carries data (tables, JSON, written paths), stderr everything else."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from rich.console import Console


def _width(stream: object) -> int | None:
    """Terminal width on a TTY; 160 columns when piped, so tables of long flavor names stay readable."""
    isatty = getattr(stream, "isatty", lambda: False)()
    return None if isatty or "COLUMNS" in os.environ else 160


out = Console(width=_width(sys.stdout))
err = Console(stderr=True, width=_width(sys.stderr))


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (plain, no colour, for scripts)."""
    out.file.write(json.dumps(data, indent=2, default=str) + "\n")
    out.file.flush()


def print_path(path: object) -> None:
    """One path on stdout, exactly as is (no markup, no wrapping), for ``-q`` output."""
    out.print(str(path), highlight=False, markup=False, soft_wrap=True)
