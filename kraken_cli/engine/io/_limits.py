"""One resource policy for every reader: how far a file's stored bytes may expand when read.

A connectome file holds roughly as many bytes as the arrays it declares: dense correlations
compress barely at all, sparse counts a few times. A small file that declares gigabytes (a
zip or HDF5 "compression bomb", a declared shape the bytes cannot fill) is refused from its
headers, before anything is allocated. Small arrays (under :data:`EXPANSION_FLOOR`) may
expand freely; larger ones at most :func:`max_expansion` times their stored size.
``KRAKEN_MAX_EXPANSION`` raises the ratio for a genuine, extremely compressible file.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Iterator
from typing import BinaryIO

from ..errors import InputDataError, KrakenError

#: Arrays up to this size are read whatever their compression ratio.
EXPANSION_FLOOR = 64 << 20
#: Default largest ratio of read bytes to stored bytes (deflate itself stops near 1032:1).
DEFAULT_MAX_EXPANSION = 200.0
_STEP = 16 << 20
_READ = 1 << 20
#: Compressed files that inflate to at most this many bytes are inflated once, in memory (:func:`inflate_v5`).
INFLATE_ONCE_BYTES = 256 << 20
#: Longest text field (subject ids, flavor names) a reader accepts, in bytes.
MAX_TEXT_BYTES = 64 << 20


def max_expansion() -> float:
    """The expansion ratio allowed, from ``KRAKEN_MAX_EXPANSION`` (default :data:`DEFAULT_MAX_EXPANSION`)."""
    try:
        return max(1.0, float(os.environ.get("KRAKEN_MAX_EXPANSION", DEFAULT_MAX_EXPANSION)))
    except ValueError:
        return DEFAULT_MAX_EXPANSION


def check_expansion(stored: int, expanded: int, *, what: str, where: str,
                    error: type[KrakenError] = InputDataError) -> None:
    """Raise ``error`` when ``expanded`` bytes cannot plausibly come from ``stored`` bytes."""
    if expanded <= EXPANSION_FLOOR:
        return
    ratio = max_expansion()
    if expanded > stored * ratio:
        raise error(f"{where}: {what} would expand from {stored:,} stored bytes to {expanded:,} bytes "
                    f"(more than {ratio:g} times)",
                    hint="the file is crafted or corrupt; for a genuine, extremely compressible file set "
                         "KRAKEN_MAX_EXPANSION to a larger ratio")


def _v5_pieces(fh: BinaryIO, size: int, *, where: str, keep: bool) -> Iterator[bytes]:
    """The bytes of a MATLAB v5 file with every ``miCOMPRESSED`` element inflated, piece by piece.

    Each compressed element is streamed through zlib with its output bounded per call; reading
    stops with InputDataError as soon as one would exceed what :func:`check_expansion` allows.
    With ``keep`` False the inflated bytes are counted, not kept (empty pieces are yielded).
    """
    head = fh.read(128)
    if len(head) < 128:
        if keep:
            yield head + fh.read()
        return  # scipy reports a truncated header itself
    yield head
    end = 128
    for pos, tag, dtype, nbytes in _v5_elements(fh, size, head):
        end = min(size, pos + 8 + nbytes + (0 if dtype == 15 else -nbytes % 8))
        if dtype != 15:  # not miCOMPRESSED: kept as it is (padded to 8 bytes)
            yield (tag + fh.read(end - pos - 8)) if keep else b""
        else:
            yield from _inflate(fh, nbytes, where=where, keep=keep)
    if keep and end < size:  # a truncated trailing element: scipy reports it
        fh.seek(end)
        yield fh.read()


def _v5_elements(fh: BinaryIO, size: int, head: bytes) -> Iterator[tuple[int, bytes, int, int]]:
    """``(position, tag, data type, byte count)`` of each top-level element of a MATLAB v5 file
    whose 128-byte header is ``head``; ``fh`` is left after the tag (callers may read on)."""
    endian = "<" if head[126:128] == b"IM" else ">"
    pos = 128
    while pos + 8 <= size:
        fh.seek(pos)
        tag = fh.read(8)
        if len(tag) < 8:
            return
        dtype, nbytes = struct.unpack(endian + "II", tag)
        yield pos, tag, dtype, nbytes
        pos += 8 + nbytes + (0 if dtype == 15 else -nbytes % 8)


def _inflate(fh: BinaryIO, nbytes: int, *, where: str, keep: bool) -> Iterator[bytes]:
    """One compressed element's inflated bytes (bounded; see :func:`_v5_pieces`)."""
    limit = max(EXPANSION_FLOOR, int(nbytes * max_expansion()))
    z = zlib.decompressobj()
    left, out = nbytes, 0
    while left > 0:
        chunk = fh.read(min(left, _READ))
        if not chunk:
            break
        left -= len(chunk)
        data = z.decompress(chunk, min(_STEP, limit + 1 - out))  # output bounded per call
        while True:
            out += len(data)
            if out > limit:
                check_expansion(nbytes, out, what="a compressed variable", where=where)
            if data and keep:
                yield data
            if not z.unconsumed_tail:
                break
            data = z.decompress(z.unconsumed_tail, min(_STEP, limit + 1 - out))
        if z.eof:
            break
    if keep and not z.eof:  # truncated or corrupt: hand scipy what there is, it reports the error
        tail = z.flush()
        if tail:
            yield tail


def check_v5_expansion(fh: BinaryIO, size: int, *, where: str) -> None:
    """Decompress the compressed elements of a MATLAB v5 file, counting bytes, before scipy allocates them."""
    for _ in _v5_pieces(fh, size, where=where, keep=False):
        pass


def _has_compressed(fh: BinaryIO, size: int) -> bool:
    """Whether the file holds a ``miCOMPRESSED`` element (tags read, nothing else)."""
    head = fh.read(128)
    return len(head) == 128 and any(e[2] == 15 for e in _v5_elements(fh, size, head))


def inflate_v5(fh: BinaryIO, size: int, *, where: str, limit: int = INFLATE_ONCE_BYTES) -> bytes | None:
    """The file as an uncompressed MATLAB v5 file (checked as :func:`check_v5_expansion` checks).

    scipy reads the result without decompressing again, so a compressed file is inflated once.
    None (``fh`` back where it was) when the file holds no compressed variable, or would inflate past
    ``limit``: scipy then reads the file itself, after :func:`check_v5_expansion`, keeping one copy of
    the data in memory instead of two.
    """
    start = fh.tell()
    found = _has_compressed(fh, size)
    fh.seek(start)
    if not found:
        return None
    pieces, total = [], 0
    for piece in _v5_pieces(fh, size, where=where, keep=True):
        total += len(piece)
        if total > limit:
            fh.seek(start)
            return None
        pieces.append(piece)
    return b"".join(pieces)


def check_text_size(nbytes: int, *, what: str, where: str) -> None:
    """Refuse a text field longer than :data:`MAX_TEXT_BYTES`."""
    if nbytes > MAX_TEXT_BYTES:
        raise InputDataError(f"{where}: {what} holds {nbytes:,} bytes of text, more than any id list needs",
                             hint="the file is crafted or corrupt")
