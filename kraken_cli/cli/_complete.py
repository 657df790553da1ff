"""Shell-completion callbacks (kept light: no torch, no numpy)."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources

ADAPT_MODES = ("none", "meanshift", "meanfit", "meanfit+meanshift")


@lru_cache(maxsize=1)
def _flavors() -> list[str]:
    text = resources.files("kraken_cli.engine.resources").joinpath("flavordb.json").read_text()
    return sorted(json.loads(text))


@lru_cache(maxsize=1)
def _registry_names() -> list[str]:
    try:
        text = resources.files("kraken_cli.engine.resources").joinpath("registry.json").read_text()
    except (FileNotFoundError, OSError):
        return []
    data = json.loads(text)
    items = data.get("files", data) if isinstance(data, dict) else data
    return sorted(str(e.get("name") or e.get("filename")) for e in items)


def complete_flavor_spec(incomplete: str) -> list[str]:
    """``-i FCcorr_<TAB>`` -> flavor names followed by ``=``."""
    if "=" in incomplete:
        return []
    return [f + "=" for f in _flavors() if f.startswith(incomplete)]


def complete_flavor(incomplete: str) -> list[str]:
    """Plain flavor names."""
    return [f for f in _flavors() if f.startswith(incomplete)]


def complete_registry_name(incomplete: str) -> list[str]:
    """Names of released files (``kraken fetch <TAB>``)."""
    return [n for n in _registry_names() if n.startswith(incomplete)]


def complete_adapt_mode(incomplete: str) -> list[str]:
    return [m for m in ADAPT_MODES if m.startswith(incomplete)]
