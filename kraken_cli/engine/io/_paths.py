"""Small tests on input text: is a path a glob, is a table cell a number (shared by the readers)."""

from __future__ import annotations

GLOB_CHARS = frozenset("*?[")


def is_glob(text: str) -> bool:
    """True when ``text`` has glob characters (and so names several files).

    >>> is_glob("data/sub-*_fc.tsv"), is_glob("data/fc.mat")
    (True, False)
    """
    return any(c in GLOB_CHARS for c in text)


def is_number(text: str) -> bool:
    """True when a table cell parses as a number (``nan`` and ``inf`` included)."""
    try:
        float(text)
    except ValueError:
        return False
    return True
