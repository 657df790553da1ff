"""Shell-completion callbacks (kept light: json and the package data only; no torch, no numpy, no engine).

Every TAB press runs ``kraken`` again (Typer's completion scripts call it with ``_KRAKEN_COMPLETE``
set), so these read ``flavordb.json`` and ``registry.json`` directly instead of importing the engine.
A callback that returns nothing lets the shell fall back to completing file names.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

ADAPT_MODES = ("none", "meanshift", "meanfit", "meanfit+meanshift")
_GROUPS = ("SC", "FC")


def _resource(name: str) -> object:
    try:
        return json.loads(resources.files("kraken_cli.engine.resources").joinpath(name).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


@lru_cache(maxsize=1)
def _flavors() -> tuple[str, ...]:
    data = _resource("flavordb.json")
    return tuple(sorted(data)) if isinstance(data, dict) else ()


@lru_cache(maxsize=1)
def _registry() -> tuple[tuple[str, str], ...]:
    """(name, kind) of every released file."""
    data = _resource("registry.json")
    items = data.get("files", []) if isinstance(data, dict) else data if isinstance(data, list) else []
    out = []
    for e in items:
        if isinstance(e, dict):
            name = str(e.get("name") or e.get("filename") or "")
            if name:
                out.append((name, str(e.get("kind", ""))))
    return tuple(sorted(out))


def complete_flavor_spec(incomplete: str) -> list[str]:
    """``-i FCcorr_<TAB>`` -> flavor names followed by ``=`` (also after ``@SC`` / ``@FC``)."""
    if "=" in incomplete:
        return []
    if "@" in incomplete:
        flavor, _, group = incomplete.partition("@")
        return [f"{flavor}@{g}=" for g in _GROUPS if g.startswith(group.upper())]
    return [f + "=" for f in _flavors() if f.startswith(incomplete)]


def complete_flavor(incomplete: str) -> list[str]:
    """Plain flavor names."""
    return [f for f in _flavors() if f.startswith(incomplete)]


def complete_flavor_list(incomplete: str) -> list[str]:
    """Comma-separated flavor names: completes the item after the last comma."""
    head, sep, last = incomplete.rpartition(",")
    prefix = head + sep
    return [prefix + f for f in _flavors() if f.startswith(last)]


def complete_registry_name(incomplete: str) -> list[str]:
    """Names of released files (``kraken fetch <TAB>``)."""
    return [n for n, _ in _registry() if n.startswith(incomplete)]


def complete_checkpoint_name(incomplete: str) -> list[str]:
    """Names of released checkpoints (``-c <TAB>``)."""
    return [n for n, k in _registry() if k == "checkpoint" and n.startswith(incomplete)]


def complete_transform_name(incomplete: str) -> list[str]:
    """Names of released input transforms (``-t <TAB>``)."""
    return [n for n, k in _registry() if k == "transform" and n.startswith(incomplete)]


def complete_adapt_mode(incomplete: str) -> list[str]:
    """Domain-adaptation modes (``--adapt mean<TAB>``)."""
    return [m for m in ADAPT_MODES if m.startswith(incomplete)]


REGTARGET_ATLASES = ("fs86", "shen268", "coco439")


def complete_regtarget(incomplete: str) -> list[str]:
    """``--target <TAB>``: atlas shorthands and released regularization targets (else file names)."""
    names = [*REGTARGET_ATLASES, *(n for n, k in _registry() if k == "regtarget")]
    return [n for n in names if n.startswith(incomplete)]
