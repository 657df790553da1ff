"""Input path text: whether a path is a glob (read by :mod:`._glob`, tested by every reader that splits specs)."""

from __future__ import annotations

GLOB_CHARS = frozenset("*?[")


def is_glob(text: str) -> bool:
    """True when ``text`` has glob characters (and so names several files).

    >>> is_glob("data/sub-*_fc.tsv"), is_glob("data/fc.mat")
    (True, False)
    """
    return any(c in GLOB_CHARS for c in text)
