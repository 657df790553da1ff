"""Dropout masks from few random bits: a rate ``p`` costs ``k`` bits per element, the fewest that
represent it (1 for the paper's 0.5, 2 for 0.25, ...; 16 for any other rate, which is then
``round(p * 2**16) / 2**16``, within 1e-5 of it).

An element keeps when its ``k``-bit value is at least ``p * 2**k``, and a kept element is scaled
by the inverse of the keep probability, so the expected output is the input. Bits come from
64-bit draws of a reseeded ``torch.Generator`` (64 elements per draw at ``p = 0.5``, four at 16
bits), so a mask depends only on its generator's seed; one float per element, as ``torch.rand``
draws, took a tenth of a paper-scale epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MaskRate:
    """A dropout rate as ``bits`` random bits per element: keep where the value is >= ``cut``."""

    bits: int
    cut: int

    @classmethod
    def of(cls, p: float) -> MaskRate:
        if p >= 1:
            return cls(1, 2)
        for k in (1, 2, 4, 8):
            if (p * (1 << k)).is_integer():
                return cls(k, int(p * (1 << k)))
        return cls(16, min(round(p * 65536), 65535))

    @property
    def scale(self) -> float:
        """Multiplier of a kept element: 1 / keep probability (0 when nothing is kept)."""
        levels = 1 << self.bits
        return levels / (levels - self.cut) if self.cut < levels else 0.0

    def words(self, count: int) -> int:
        """64-bit words that hold ``count`` values."""
        return -(-count * self.bits // 64)

    def values(self, count: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
        """``count`` random ``bits``-bit values (``uint8``; ``int16`` offset by -2**15 for 16 bits)."""
        words = torch.empty(self.words(count), dtype=torch.int64, device=device)
        return self.unpack(words.random_(-(1 << 63), None, generator=gen))[:count]

    def unpack(self, words: torch.Tensor) -> torch.Tensor:
        """The ``bits``-bit values of 64-bit ``words``, in order (64 / bits per word)."""
        if self.bits == 16:
            return words.view(torch.int16)
        octets = words.view(torch.uint8)
        if self.bits == 8:
            return octets
        shifts = torch.arange(0, 8, self.bits, dtype=torch.uint8, device=words.device)
        return ((octets.unsqueeze(-1) >> shifts) & ((1 << self.bits) - 1)).view(-1)

    def keep(self, u: torch.Tensor) -> torch.Tensor:
        """Random values (as float32, in place) -> 0 or :attr:`scale`."""
        threshold = self.cut - 32768 if self.bits == 16 else self.cut
        return u.ge_(threshold).mul_(self.scale)


def _draw(shape: Sequence[int], rate: MaskRate, gen: torch.Generator, device: torch.device,
          rows: tuple[int, int] | None) -> torch.Tensor:
    """Random values of ``shape``; ``rows``: see :func:`keep_mask`."""
    full = tuple(shape) if rows is None else (rows[0], *shape[1:])
    v = rate.values(math.prod(full), gen, device).view(full)
    if rows is not None and (rows[1] != 0 or rows[0] != shape[0]):
        v = v[rows[1]:rows[1] + shape[0]]
    return v


def keep_mask(shape: Sequence[int], p: float, gen: torch.Generator, like: torch.Tensor,
              rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverted-dropout multipliers (0 or ``1 / keep probability``) of ``shape`` drawn from ``gen``.

    ``rows=(n_rows, offset)`` draws the masks of ``n_rows`` rows (axis 0) and keeps
    ``shape[0]`` of them from ``offset``: a part of a block gets the rows the whole block has.
    """
    rate = MaskRate.of(p)
    keep = rate.keep(_draw(shape, rate, gen, like.device, rows).to(torch.float32))
    return keep if like.dtype == torch.float32 else keep.to(like.dtype)


def keep_masks(shape: Sequence[int], p: float, draws: Sequence[tuple[Callable[[], torch.Generator],
               tuple[int, int] | None]], like: torch.Tensor, dim: int) -> torch.Tensor:
    """``torch.stack([keep_mask(shape, p, gen(), like, rows) for gen, rows in draws], dim)``, in a few
    tensor operations: every block's words are drawn into one buffer (each from its own generator,
    called just before its block is drawn), unpacked once and written in place (no stacking copy)."""
    rate = MaskRate.of(p)
    full = [tuple(shape) if rows is None else (rows[0], *shape[1:]) for _, rows in draws]
    sizes = [rate.words(math.prod(f)) for f in full]
    words = torch.empty(sum(sizes), dtype=torch.int64, device=like.device)
    lo = 0
    for (gen, _), size in zip(draws, sizes):
        words[lo:lo + size].random_(-(1 << 63), None, generator=gen())
        lo += size
    values = rate.unpack(words)
    out = torch.empty([*shape[:dim], len(draws), *shape[dim:]], dtype=torch.float32, device=like.device)
    per = 64 // rate.bits * sizes[0]
    if all(rows is None for _, rows in draws) and len(set(sizes)) == 1:  # equal blocks: one strided copy
        out.movedim(dim, 0).copy_(values.view(len(draws), per)[:, :math.prod(shape)].view(len(draws), *shape))
    else:
        start = 0
        for k, ((_, rows), f, size) in enumerate(zip(draws, full, sizes)):
            v = values[start:start + math.prod(f)].view(f)
            if rows is not None:
                v = v[rows[1]:rows[1] + shape[0]]
            out.select(dim, k).copy_(v)
            start += 64 // rate.bits * size
    keep = rate.keep(out)
    return keep if like.dtype == torch.float32 else keep.to(like.dtype)


__all__ = ["MaskRate", "keep_mask", "keep_masks"]
