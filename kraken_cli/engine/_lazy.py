"""Lazy package exports: a name is imported from its module on first use, keeping ``import`` cheap."""

from __future__ import annotations

import importlib
from typing import Any


def load(package: str, exports: dict[str, str], name: str) -> Any:
    """``exports[name]``'s module (relative to ``package``) imported, and ``name`` taken from it."""
    if name not in exports:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{exports[name]}", package), name)
