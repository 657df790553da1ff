"""Digests of verified files: sha256, and authenticated records that a cached file was verified.

The digests of verified files are remembered in ``.kraken-digests.json`` beside them, keyed by
size and mtime, so that a cached file is hashed once. Each record carries an HMAC-SHA256 under a
per-user secret key kept outside the cache (:func:`digest_key`), so a record written by hand (or
copied from elsewhere) is not trusted: the file is hashed again. A file that rots while keeping its
size and mtime is only found by rehashing (``kraken fetch --verify``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
from pathlib import Path
from typing import Any

from ..digest import file_sha256

__all__ = ["DIGEST_FILE", "DIGEST_KEY_ENV", "digest_key", "digest_key_path", "file_sha256", "has_digest",
           "remember_digest"]

log = logging.getLogger("kraken_cli.engine.registry")

DIGEST_FILE = ".kraken-digests.json"
#: Path of the secret key that authenticates digest records (default: in the user state folder).
DIGEST_KEY_ENV = "KRAKEN_DIGEST_KEY_FILE"


def digest_key_path() -> Path:
    """Where the digest key lives: ``$KRAKEN_DIGEST_KEY_FILE``, else the user state folder of kraken."""
    given = os.environ.get(DIGEST_KEY_ENV, "")
    if given:
        return Path(given).expanduser()
    import platformdirs

    return Path(platformdirs.user_state_dir("kraken", appauthor=False)) / "digest-key"


def digest_key() -> bytes | None:
    """The per-user secret that authenticates digest records, created (mode 0600) on first use.

    None when it can be neither read nor created: then no record is trusted and every cached file is
    hashed before use.
    """
    path = digest_key_path()
    for _ in range(2):
        try:
            data = path.read_bytes().strip()
            if len(data) >= 32:
                return data
            log.warning("the digest key %s is too short; cached files are hashed before use", path)
            return None
        except FileNotFoundError:
            pass
        except OSError as exc:
            log.debug("cannot read the digest key %s: %s", path, exc)
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue  # created by another process meanwhile: read it
        except OSError as exc:
            log.debug("cannot create the digest key %s: %s", path, exc)
            return None
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_hex(32).encode())
    return None


def _record_mac(key: bytes, name: str, size: int, mtime_ns: int, digest: str) -> str:
    msg = "\0".join(("kraken-digest/1", name, str(size), str(mtime_ns), digest)).encode()
    return hmac.new(key, msg, hashlib.sha256).hexdigest()


def _read_digests(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / DIGEST_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember_digest(path: Path, digest: str) -> None:
    """Record ``digest`` for ``path`` under its current size and mtime (best effort: a read-only cache is fine)."""
    from ..errors import OutputError
    from ..io._atomic import atomic_path

    folder = path.parent
    key = digest_key()
    if key is None:
        return
    try:
        st = path.stat()
        data = _read_digests(folder)
        data[path.name] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": digest,
                           "mac": _record_mac(key, path.name, st.st_size, st.st_mtime_ns, digest)}
        with atomic_path(folder / DIGEST_FILE) as tmp:
            tmp.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
    except (OSError, OutputError) as exc:
        log.debug("could not record the digest of %s: %s", path, exc)


def _trusted_digest(path: Path, st: os.stat_result) -> str | None:
    """The recorded sha256 of ``path`` when a record matches its size and mtime and carries a valid MAC."""
    rec = _read_digests(path.parent).get(path.name)
    if not (isinstance(rec, dict) and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns):
        return None
    digest, mac = rec.get("sha256"), rec.get("mac")
    if not (isinstance(digest, str) and isinstance(mac, str)):
        return None
    key = digest_key()
    if key is None or not hmac.compare_digest(mac, _record_mac(key, path.name, st.st_size, st.st_mtime_ns, digest)):
        log.info("the digest record of %s is not authentic; hashing the file", path.name)
        return None
    return digest


def has_digest(path: Path, sha256: str, size: int | None = None, *, rehash: bool = False) -> bool:
    """True when ``path`` has this sha256.

    Hashes only when the digest cache has no authentic record (valid MAC) of its size+mtime, or
    always with ``rehash`` (which finds a file that changed but kept its size and mtime).
    """
    st = path.stat()
    if size is not None and st.st_size != size:
        return False
    known = None if rehash else _trusted_digest(path, st)
    if known is not None:
        return known == sha256
    log.info("verifying the sha256 of %s", path.name)
    digest = file_sha256(path)
    remember_digest(path, digest)
    return digest == sha256
