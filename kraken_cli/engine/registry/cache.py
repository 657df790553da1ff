"""The cache folder: where it is, which released files it holds, verifying them, resolving names."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import FetchError
from .catalog import Registry, RegistryEntry, registry_or_default, select_files, suggest
from .digests import has_digest

__all__ = ["CacheStatus", "CachedFile", "VerifyStatus", "default_cache_dir", "list_files", "resolve_file",
           "verify_cached", "verify_file"]

_PLACEHOLDERS = ("{FETCH}", "{KRAKENCODER_DATA}", "{KRAKENDATA}", "{KRAKENDATAFOLDER}")


def default_cache_dir(cache_dir: str | os.PathLike[str] | None, env: Mapping[str, str]) -> Path:
    """The folder of downloaded files.

    Parameters
    ----------
    cache_dir : path or None
        An explicit folder (``--cache-dir``); wins when given.
    env : mapping
        Environment variables (the CLI passes ``os.environ``): ``KRAKEN_DATA``, then the original's
        ``KRAKENCODER_DATA``; empty values are ignored.

    Returns
    -------
    Path
        Absolute folder, ``~`` expanded; else the platform's user cache folder for ``kraken``.
    """
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser().absolute()
    for var in ("KRAKEN_DATA", "KRAKENCODER_DATA"):
        value = env.get(var, "")
        if value:
            return Path(value).expanduser().absolute()
    import platformdirs

    return Path(platformdirs.user_cache_dir("kraken", appauthor=False)).absolute()


def verify_file(entry: RegistryEntry, path: str | os.PathLike[str]) -> bool:
    """True when the file at ``path`` has ``entry``'s sha256 (and size, when known).

    The file is hashed only when the digest cache beside it (``.kraken-digests.json``) has no record
    for its current size and mtime; the computed digest is then recorded.
    """
    return has_digest(Path(path), entry.sha256, entry.size)


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A released file and where it is (or would be) in the cache."""

    entry: RegistryEntry
    path: Path

    def to_dict(self) -> dict[str, Any]:
        """The file's record in ``kraken fetch --json``."""
        return {"name": self.entry.name, "kind": self.entry.kind, "path": str(self.path), "sha256": self.entry.sha256}


@dataclass(frozen=True, slots=True)
class VerifyStatus(CachedFile):
    """The result of rehashing one cached file: ``ok``, ``mismatch`` or ``missing``."""

    status: str

    def to_dict(self) -> dict[str, Any]:
        return {**CachedFile.to_dict(self), "status": self.status}


def verify_cached(cache_dir: str | os.PathLike[str], names: Sequence[str] = (), *, all_files: bool = False,
                  flavors: Sequence[str] = (), registry: Registry | None = None) -> list[VerifyStatus]:
    """Rehash cached registry files against their published sha256 (``kraken fetch --verify``).

    With no names, flavors or ``all_files``: every registry file present in the cache; otherwise the
    selected ones, a file not in the cache being ``missing``. Deletes nothing; the digest records of
    the rehashed files are renewed.
    """
    reg = registry_or_default(registry)
    cache = Path(cache_dir)
    if names or flavors or all_files:
        entries = select_files(names, all_files=all_files, flavors=flavors, registry=reg)
    else:
        entries = [e for e in reg if (cache / e.name).is_file()]
    out = []
    for e in entries:
        path = cache / e.name
        if not path.is_file():
            out.append(VerifyStatus(e, path, "missing"))
            continue
        ok = has_digest(path, e.sha256, e.size, rehash=True)
        out.append(VerifyStatus(e, path, "ok" if ok else "mismatch"))
    return out


def resolve_file(name_or_path: str | os.PathLike[str], cache_dir: str | os.PathLike[str] | None, *,
                 registry: Registry | None = None, verify: bool = True) -> Path:
    """Find a file given as a local path or as a registry name.

    Parameters
    ----------
    name_or_path : str or path
        A local file (always wins, even over a registry file of the same name), a registry name, or
        a path using the original's placeholders (``{FETCH}/NAME``, ``{KRAKENCODER_DATA}/NAME``...).
    cache_dir : path or None
        The cache folder, from :func:`default_cache_dir` (the caller reads the environment); None
        means the platform's user cache folder, ignoring ``KRAKEN_DATA``.
    registry : Registry, optional
        Defaults to :func:`load_registry`.
    verify : bool, default=True
        Check a cached registry file's sha256 (once: see :func:`verify_file`).

    Returns
    -------
    Path

    Raises
    ------
    FetchError
        A registry file not in the cache (the hint is the ``kraken fetch NAME`` command), a cached
        file that fails verification, an unknown name or a missing local file. Never downloads.
    """
    cache = default_cache_dir(cache_dir, {})
    text = os.fspath(name_or_path)
    for ph in _PLACEHOLDERS:
        text = text.replace(ph, str(cache))
    given = Path(text).expanduser()
    reg = registry_or_default(registry)
    entry = reg.get(given.name)
    bare = given.parent == Path(".") and os.sep not in text and "/" not in text
    in_cache = entry is not None and (bare or _same_dir(given.parent, cache))
    if given.is_file() and not (in_cache and _same_dir(given.parent, cache)):
        return given
    if given.is_dir():
        raise FetchError(f"{text} is a folder, not a file", hint="give the path of a file")
    if entry is None:
        if bare:
            raise FetchError(f"{text!r} is neither an existing file nor a released file name",
                             hint=suggest(text, reg.names, "; give a path to use a local file"))
        raise FetchError(f"file not found: {text}", hint="check the path")
    if not in_cache:
        raise FetchError(f"file not found: {text}",
                         hint=f"to use the released file from the cache, give just its name: {entry.name}")
    cached = cache / entry.name
    if not cached.is_file():
        raise FetchError(f"{entry.name} is not in the cache folder {cache}", hint=f"kraken fetch {entry.name}")
    if verify and not verify_file(entry, cached):
        raise FetchError(f"cached {entry.name} does not match its published sha256 (corrupt or replaced)",
                         hint=f"kraken fetch --force {entry.name}")
    return cached


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


@dataclass(frozen=True, slots=True)
class CacheStatus:
    """Where a released file is (or would be) cached, and whether it is there."""

    entry: RegistryEntry
    path: Path
    cached: bool
    size: int | None

    def to_dict(self) -> dict[str, Any]:
        """``kraken fetch --list --json``'s record of this file."""
        return {**self.entry.to_dict(), "size": self.size, "cached": self.cached, "path": str(self.path)}


def list_files(cache_dir: str | os.PathLike[str], names: Sequence[str] = (), *, flavors: Sequence[str] = (),
               registry: Registry | None = None) -> list[CacheStatus]:
    """Every released file (or the named ones / the flavors' ones) and whether it is cached (no hashing)."""
    reg = registry_or_default(registry)
    entries = select_files(names, flavors=flavors, registry=reg) if (names or flavors) else list(reg)
    out = []
    for e in entries:
        path = Path(cache_dir) / e.name
        cached = path.is_file() and (e.size is None or path.stat().st_size == e.size)
        out.append(CacheStatus(e, path, cached, path.stat().st_size if cached else e.size))
    return out
