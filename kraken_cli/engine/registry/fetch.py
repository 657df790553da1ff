"""Fetching released files into the cache: what ``kraken fetch`` does, over :mod:`.download`."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FetchError
from ..progress import NULL_PROGRESS, Progress
from .cache import CachedFile
from .catalog import Registry, RegistryEntry, registry_or_default, select_files
from .download import download_file, make_client

if TYPE_CHECKING:
    import httpx

__all__ = ["FetchedFile", "download", "fetch", "mirror_urls"]

log = logging.getLogger("kraken_cli.engine.registry")


@dataclass(frozen=True, slots=True)
class FetchedFile(CachedFile):
    """A released file present and verified in the cache."""

    downloaded: bool

    def to_dict(self) -> dict[str, Any]:
        return {**CachedFile.to_dict(self), "downloaded": self.downloaded, "size": self.path.stat().st_size}


def fetch(names: Sequence[str] = (), *, cache_dir: str | os.PathLike[str], all_files: bool = False,
          flavors: Sequence[str] = (), mirrors_first: Sequence[str] = (), force: bool = False,
          progress: Progress = NULL_PROGRESS, client: httpx.Client | None = None,
          registry: Registry | None = None) -> list[FetchedFile]:
    """Make released files present and verified in the cache: what ``kraken fetch`` does.

    Parameters
    ----------
    names : sequence of str
        Registry names; with no names, no flavors and not ``all_files``: the published model
        (:func:`default_model_files`).
    cache_dir : path
        Destination folder (created when missing).
    all_files : bool, default=False
        Every file in the registry.
    flavors : sequence of str
        Add each flavor's checkpoint and transform (:func:`files_for_flavors`).
    mirrors_first, force, progress, client
        As for :func:`download`.
    registry : Registry, optional
        Defaults to :func:`load_registry`.

    Returns
    -------
    list of FetchedFile

    Raises
    ------
    FetchError
        After trying every file, when any could not be downloaded (the others are kept).
    """
    reg = registry_or_default(registry)
    entries = select_files(names, all_files=all_files, flavors=flavors, registry=reg)
    own = client is None
    http = make_client() if client is None else client
    done: list[FetchedFile] = []
    failed: list[tuple[RegistryEntry, FetchError]] = []
    try:
        for e in entries:
            try:
                path, fresh = _download(e, Path(cache_dir), mirrors_first=mirrors_first, force=force,
                                        progress=progress, client=http)
            except FetchError as exc:
                if len(entries) == 1:
                    raise
                log.warning("%s", exc.message)
                failed.append((e, exc))
                continue
            done.append(FetchedFile(e, path, downloaded=fresh))
    finally:
        if own:
            http.close()
    if failed:
        names_failed = ", ".join(e.name for e, _ in failed)
        raise FetchError(f"{len(failed)} of {len(entries)} files could not be downloaded: {names_failed}",
                         hint=failed[0][1].hint)
    return done


def mirror_urls(entry: RegistryEntry, mirrors_first: Sequence[str] = ()) -> list[str]:
    """The URLs tried for ``entry``: each ``--mirror`` base URL + ``/NAME`` first, then the registry's."""
    return [m.rstrip("/") + "/" + entry.name for m in mirrors_first] + list(entry.urls)


def download(entry: RegistryEntry, cache_dir: str | os.PathLike[str], *, mirrors_first: Sequence[str] = (),
             force: bool = False, progress: Progress = NULL_PROGRESS, client: httpx.Client | None = None) -> Path:
    """Download ``entry`` into ``cache_dir`` unless a verified copy is there; return its path.

    Parameters
    ----------
    entry : RegistryEntry
        The file.
    cache_dir : path
        Destination folder, created when missing.
    mirrors_first : sequence of str
        Base URLs tried before the registry's (``URL/NAME``).
    force : bool, default=False
        Download again even when a verified copy exists (a partial download is discarded too).
    progress : Progress
        Told about bytes: ``start(name, total_bytes)``, ``advance(n_bytes)``, ``done()``.
    client : httpx.Client, optional
        Reused for every request; by default a new one from :func:`make_client`.

    Returns
    -------
    Path
        ``cache_dir / entry.name``, verified against ``entry.sha256``.

    Raises
    ------
    FetchError
        When no URL gives the right file (not found, no connection, timeouts, wrong sha256: a bad
        file is deleted); the message lists what each URL did.

    Notes
    -----
    The file is written to ``NAME.incomplete``, resumed from there with an HTTP Range request after a
    dropped connection or an interrupted run (restarted when the server ignores Range), and renamed
    into place only once its sha256 matches.
    """
    return _download(entry, Path(cache_dir), mirrors_first=mirrors_first, force=force, progress=progress,
                     client=client)[0]


def _download(entry: RegistryEntry, cache: Path, *, mirrors_first: Sequence[str], force: bool,
              progress: Progress, client: httpx.Client | None) -> tuple[Path, bool]:
    return download_file(entry.name, entry.sha256, mirror_urls(entry, mirrors_first), cache, size=entry.size,
                         force=force, progress=progress, client=client)
