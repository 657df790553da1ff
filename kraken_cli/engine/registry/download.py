"""Verified, resumable HTTP downloads into a cache folder (httpx). Knows files, not the registry.

A file is written to ``NAME.incomplete`` and resumed from there with an HTTP ``Range`` request after
a dropped connection or an earlier interrupted run (restarted when a server ignores ``Range``). Its
sha256 is checked before it is renamed into place, atomically, and its digest remembered
(:mod:`.digests`).

Every download is bounded: it stops once more bytes arrive than the file has (the registry size, else
the server's Content-Length, else :data:`MAX_DOWNLOAD_BYTES`, ``$KRAKEN_MAX_DOWNLOAD_BYTES``), and
once it has taken longer than :data:`DOWNLOAD_DEADLINE_S` seconds (``$KRAKEN_DOWNLOAD_DEADLINE``).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import FetchError
from ..progress import Progress
from . import digests

if TYPE_CHECKING:
    import httpx

__all__ = ["MAX_DOWNLOAD_BYTES", "PARTIAL_SUFFIX", "download_deadline", "download_file", "make_client",
           "max_download_bytes"]

log = logging.getLogger("kraken_cli.engine.registry")

PARTIAL_SUFFIX = ".incomplete"
_MAX_ATTEMPTS = 4  # per URL: the first request plus resumes after dropped connections
#: Most bytes a download may receive when neither the registry nor the server gives a size.
MAX_DOWNLOAD_BYTES = 20 * 1024**3
MAX_BYTES_ENV = "KRAKEN_MAX_DOWNLOAD_BYTES"
#: Seconds one file's download may take in all (every mirror and resume together).
DOWNLOAD_DEADLINE_S = 3600.0
DEADLINE_ENV = "KRAKEN_DOWNLOAD_DEADLINE"


def _env_number(var: str, default: float) -> float:
    text = os.environ.get(var, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise FetchError(f"${var} must be a positive number, got {text!r}", hint=f"unset {var} for the default")
    return value


def max_download_bytes() -> int:
    """The size cap for a download of unknown size (``$KRAKEN_MAX_DOWNLOAD_BYTES``, default 20 GiB)."""
    return int(_env_number(MAX_BYTES_ENV, MAX_DOWNLOAD_BYTES))


def download_deadline() -> float:
    """Seconds one file's download may take (``$KRAKEN_DOWNLOAD_DEADLINE``, default 3600)."""
    return _env_number(DEADLINE_ENV, DOWNLOAD_DEADLINE_S)


def make_client(timeout: float = 30.0) -> httpx.Client:
    """An httpx client for downloads: redirects followed, kraken's User-Agent, proxies from the environment."""
    import httpx

    from kraken_cli import __version__

    return httpx.Client(timeout=httpx.Timeout(timeout, connect=min(timeout, 15.0)), follow_redirects=True,
                        headers={"User-Agent": f"kraken/{__version__}"})


class _MirrorFailure(Exception):
    """One URL did not give the file; ``kind`` says why (not_found, http, connect, timeout, transfer, size, hash)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail


class _Restart(Exception):
    """The response cannot continue the partial file: start again from byte 0."""


def download_file(name: str, sha256: str, urls: Sequence[str], cache: Path, *, size: int | None = None,
                  force: bool = False, progress: Progress, client: httpx.Client | None = None) -> tuple[Path, bool]:
    """Make ``cache/name`` present with this sha256, trying ``urls`` in order.

    Returns
    -------
    path : Path
        ``cache / name``.
    downloaded : bool
        False when a verified copy was already there.

    Raises
    ------
    FetchError
        When the folder cannot be written, or no URL gives the right file (the message lists what
        each URL did; a file with the wrong sha256 is deleted).
    """
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FetchError(f"cannot create the cache folder {cache}: {exc.strerror or exc}",
                         hint="choose a writable folder with --cache-dir or KRAKEN_DATA") from exc
    final = cache / name
    part = cache / (name + PARTIAL_SUFFIX)
    with _download_lock(cache, name):
        if final.is_file() and not force:
            if digests.has_digest(final, sha256, size):
                log.info("%s is already in %s", name, cache)
                return final, False
            log.warning("cached %s does not match its sha256; downloading it again", name)
        if force:
            part.unlink(missing_ok=True)
        own = client is None
        http = make_client() if client is None else client
        failures: list[tuple[str, _MirrorFailure]] = []
        deadline = time.monotonic() + download_deadline()
        try:
            for url in urls:
                if failures and failures[-1][1].kind == "deadline":
                    break
                try:
                    _download_from(http, url, name, sha256, size, part, progress, deadline)
                except _MirrorFailure as fail:
                    log.info("%s: %s", url, fail.detail)
                    failures.append((url, fail))
                    continue
                except OSError as exc:
                    part.unlink(missing_ok=True)
                    raise FetchError(f"cannot write {part}: {exc.strerror or exc}",
                                     hint="check free disk space, or choose another folder with --cache-dir") from exc
                os.replace(part, final)
                digests.remember_digest(final, sha256)
                log.info("downloaded %s from %s", name, url)
                return final, True
        finally:
            if own:
                http.close()
    raise _failure_error(name, failures, cache)


def _download_from(client: httpx.Client, url: str, name: str, sha256: str, size: int | None, part: Path,
                   progress: Progress, deadline: float) -> None:
    """Fill ``part`` from ``url`` (resuming, retrying dropped connections), then check size and sha256."""
    import httpx

    restarted = False
    attempt = 0
    while True:
        attempt += 1
        _check_deadline(deadline)
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            part.unlink()
            offset = 0
        try:
            _stream_once(client, url, name, size, part, offset, progress, deadline)
        except _Restart:
            part.unlink(missing_ok=True)
            if attempt < _MAX_ATTEMPTS:
                continue
            raise _MirrorFailure("http", "inconsistent answers to Range requests") from None
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise _MirrorFailure("connect", f"cannot connect ({exc})") from exc
        except httpx.HTTPStatusError as exc:
            code = exc.response.status_code
            raise _MirrorFailure("not_found" if code in (404, 410) else "http", f"HTTP {code}") from exc
        except httpx.TransportError as exc:  # timeouts, dropped connections, protocol errors
            kind = "timeout" if isinstance(exc, httpx.TimeoutException) else "transfer"
            if part.exists() and part.stat().st_size > offset and attempt < _MAX_ATTEMPTS:
                log.info("%s: connection lost after %d bytes (%s); resuming", name, part.stat().st_size, exc)
                continue
            raise _MirrorFailure(kind, ("timed out" if kind == "timeout" else "transfer failed") + f" ({exc})") from exc
        except httpx.HTTPError as exc:  # invalid URL, too many redirects...
            raise _MirrorFailure("http", str(exc) or type(exc).__name__) from exc
        finally:
            progress.done()
        got = part.stat().st_size if part.exists() else 0
        if size is not None and got != size:
            part.unlink(missing_ok=True)
            raise _MirrorFailure("size", f"got {got} bytes, expected {size}")
        digest = digests.file_sha256(part) if part.exists() else hashlib.sha256().hexdigest()
        if digest == sha256:
            return
        part.unlink(missing_ok=True)
        if offset > 0 and not restarted:
            log.info("%s: the resumed download does not match its sha256; starting again", name)
            restarted, attempt = True, 0
            continue
        raise _MirrorFailure("hash", f"sha256 {digest[:16]}... differs from the published {sha256[:16]}...")


def _check_deadline(deadline: float) -> None:
    if time.monotonic() > deadline:
        raise _MirrorFailure("deadline", f"stopped after {download_deadline():g} s (${DEADLINE_ENV})")


def _stream_once(client: httpx.Client, url: str, name: str, size: int | None, part: Path, offset: int,
                 progress: Progress, deadline: float) -> None:
    """One GET of ``url`` written to ``part`` from byte ``offset`` (a Range request when > 0)."""
    headers = {"Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    with client.stream("GET", url, headers=headers) as r:
        if r.status_code == 416 and offset:
            return  # the partial file already holds everything: the sha256 check decides
        if r.status_code == 206 and offset:
            m = re.match(r"bytes (\d+)-", r.headers.get("Content-Range", ""))
            if m is None or int(m.group(1)) != offset:
                raise _Restart
            mode = "ab"
        elif r.status_code == 200:
            if offset:
                log.info("%s: the server ignored the Range request; downloading from the start", name)
            mode, offset = "wb", 0
        else:
            r.raise_for_status()
            raise _Restart  # a 2xx/3xx that is not the file
        length = r.headers.get("Content-Length", "")
        announced = offset + int(length) if length.isdigit() else None
        if size is not None and announced is not None and announced > size:
            if offset:
                raise _Restart
            raise _MirrorFailure("size", f"the server announces {announced} bytes, the file has {size}")
        total = size if size is not None else announced
        limit = total if total is not None else max_download_bytes()
        progress.start(name, total)
        if offset:
            progress.advance(offset)
        got = offset
        try:
            with open(part, mode) as fh:
                for chunk in r.iter_bytes():  # as received: nothing buffered is lost if the connection drops
                    got += len(chunk)
                    if got > limit:
                        raise _MirrorFailure("size", f"received more than {limit} bytes"
                                             + ("" if total is not None else f" (${MAX_BYTES_ENV})"))
                    fh.write(chunk)
                    progress.advance(len(chunk))
                    _check_deadline(deadline)
                fh.flush()
                os.fsync(fh.fileno())
        except _MirrorFailure as fail:
            if fail.kind == "size":
                part.unlink(missing_ok=True)  # a body that does not end is no start to resume from
            raise


@contextlib.contextmanager
def _download_lock(folder: Path, name: str) -> Iterator[None]:
    """Serialize downloads of one file by several processes (POSIX advisory lock; no-op elsewhere).

    The lock file is removed by its holder before it unlocks, so no empty ``.lock`` stays in the cache.
    A waiter that then wins the lock on the removed file sees that the path no longer names it and
    starts over on a fresh one, so two processes never both hold the lock.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    lock = folder / f".{name}.lock"
    while True:
        try:
            fh = open(lock, "a+b")
        except OSError:
            yield
            return
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            log.warning("another kraken process is downloading %s; waiting for it", name)
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        if _same_file(fh, lock):
            break
        fh.close()  # the holder removed it while we waited: lock the new one
    with fh:
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _same_file(fh: Any, path: Path) -> bool:
    try:
        a, b = os.fstat(fh.fileno()), os.stat(path)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


_HINTS = {
    "deadline": f"the download took longer than ${DEADLINE_ENV} seconds (default {DOWNLOAD_DEADLINE_S:g}); "
                "run again to resume, raise the limit, or use a faster mirror with --mirror URL",
    "size": f"the mirror sent more bytes than the file has (deleted); try another mirror with --mirror URL, "
            f"or raise ${MAX_BYTES_ENV} for a file of unknown size",
    "hash": "the mirror served a different file (deleted); try again later, or another mirror with --mirror URL",
    "not_found": "the file has moved: upgrade kraken for an updated registry, or give a mirror with --mirror URL",
    "connect": "check the network connection and proxy settings (HTTPS_PROXY); offline, copy the file into {cache}",
    "timeout": "the mirrors are slow or unreachable; try again (the download resumes), or use --mirror URL",
}


def _failure_error(name: str, failures: list[tuple[str, _MirrorFailure]], cache: Path) -> FetchError:
    if not failures:
        return FetchError(f"no download URL for {name}", hint="give one with --mirror URL")
    kinds = {f.kind for _, f in failures}
    if kinds == {"not_found"}:
        headline = "not found on any mirror (HTTP 404)"
    elif kinds == {"connect"}:
        headline = "no connection to any mirror (no network?)"
    elif kinds == {"timeout"}:
        headline = "every mirror timed out"
    elif "deadline" in kinds:
        headline = "the download took too long"
    elif "hash" in kinds:
        headline = "the downloaded file does not match its published sha256"
    elif "size" in kinds:
        headline = "a mirror sent more data than the file has"
    else:
        headline = "every mirror failed"
    details = "\n".join(f"  {url}: {f.detail}" for url, f in failures)
    key = next((k for k in ("deadline", "hash", "size", "not_found", "connect", "timeout") if k in kinds), "timeout")
    return FetchError(f"could not download {name}: {headline}\n{details}", hint=_HINTS[key].format(cache=cache))
