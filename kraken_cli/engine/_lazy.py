"""Lazy package exports: a name is imported from its module on first use, keeping ``import`` cheap."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def load(package: str, exports: dict[str, str], name: str) -> Any:
    """``exports[name]``'s module (relative to ``package``) imported, and ``name`` taken from it."""
    if name not in exports:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{exports[name]}", package), name)


def lazy_exports(package: str, exports: dict[str, str]
                 ) -> tuple[list[str], Callable[[str], Any], Callable[[], list[str]]]:
    """A package's ``__all__``, ``__getattr__`` and ``__dir__`` for ``{name: module}`` exports.

    Use as ``__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)``; type checkers
    see the names through the package's ``TYPE_CHECKING`` imports.
    """
    names = sorted(exports)

    def getattr_(name: str) -> Any:
        return load(package, exports, name)

    def dir_() -> list[str]:
        return names

    return names, getattr_, dir_
