"""Dropout masks from few random bits: a rate ``p`` costs ``k`` bits per element, the fewest that
represent it (1 for the paper's 0.5, 2 for 0.25, ...; 16 for any other rate, which is then
``round(p * 2**16) / 2**16``, within 1e-5 of it).

An element keeps when its ``k``-bit value is at least ``p * 2**k``, and a kept element is scaled
by the inverse of the keep probability, so the expected output is the input. Bits come from
64-bit draws of a reseeded ``torch.Generator`` (64 elements per draw at ``p = 0.5``, four at 16
bits), so a mask depends only on its generator's seed; one float per element, as ``torch.rand``
draws, took a tenth of a paper-scale epoch. The multipliers come from the random bytes in one
lookup: a table of the ``8 / k`` multipliers each byte value stands for.
"""

from __future__ import annotations

import functools
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

    def multipliers(self, words: torch.Tensor) -> torch.Tensor:
        """Float32 multipliers (0 or :attr:`scale`) of the ``bits``-bit values of 64-bit ``words``, in
        order: value ``k`` of a byte is its bits ``k * bits`` and up; 16-bit values are ``int16``
        offset by -2**15."""
        if self.bits == 16:
            return words.view(torch.int16).ge(self.cut - 32768).to(torch.float32).mul_(self.scale)
        table = _byte_table(self.bits, self.cut, self.scale, words.device)
        return table.index_select(0, words.view(torch.uint8).to(torch.int64)).view(-1)


@functools.lru_cache(maxsize=32)
def _byte_table(bits: int, cut: int, scale: float, device: torch.device) -> torch.Tensor:
    """``[256, 8 / bits]``: the multipliers of the values packed in each byte."""
    shifts = torch.arange(0, 8, bits)
    values = (torch.arange(256).unsqueeze(-1) >> shifts) & ((1 << bits) - 1)
    return (values >= cut).to(torch.float32).mul_(scale).to(device)


def _draw_words(sizes: Sequence[int], gens: Sequence[Callable[[], torch.Generator]],
                device: torch.device) -> torch.Tensor:
    """One buffer of ``sum(sizes)`` random 64-bit words, block ``k`` drawn from ``gens[k]()`` (called
    just before its block is drawn)."""
    words = torch.empty(sum(sizes), dtype=torch.int64, device=device)
    for block, gen in zip(words.split(list(sizes)), gens):
        block.random_(-(1 << 63), None, generator=gen())
    return words


def _as_like(keep: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return keep if like.dtype == torch.float32 else keep.to(like.dtype)


def keep_mask(shape: Sequence[int], p: float, gen: torch.Generator, like: torch.Tensor,
              rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverted-dropout multipliers (0 or ``1 / keep probability``) of ``shape`` drawn from ``gen``.

    ``rows=(n_rows, offset)`` draws the masks of ``n_rows`` rows (axis 0) and keeps
    ``shape[0]`` of them from ``offset``: a part of a block gets the rows the whole block has.
    """
    return keep_masks(shape, p, [(lambda: gen, rows)], like, 0)[0]


def keep_masks(shape: Sequence[int], p: float, draws: Sequence[tuple[Callable[[], torch.Generator],
               tuple[int, int] | None]], like: torch.Tensor, dim: int) -> torch.Tensor:
    """``torch.stack([keep_mask(shape, p, gen(), like, rows) for gen, rows in draws], dim)``, in a few
    tensor operations: every block's words are drawn into one buffer (each from its own generator,
    called just before its block is drawn) and turned into multipliers at once. Equal blocks come
    back as a view of that result (strided: ``dim`` need not be the slowest axis)."""
    rate = MaskRate.of(p)
    draws = [(gen, None if rows == (shape[0], 0) else rows) for gen, rows in draws]  # a whole block: no cut
    full = [tuple(shape) if rows is None else (rows[0], *shape[1:]) for _, rows in draws]
    sizes = [rate.words(math.prod(f)) for f in full]
    mult = rate.multipliers(_draw_words(sizes, [gen for gen, _ in draws], like.device))
    per = [64 // rate.bits * size for size in sizes]
    count = math.prod(shape)
    if all(rows is None for _, rows in draws) and len(set(sizes)) == 1:  # equal blocks: a view
        return _as_like(mult.view(len(draws), per[0])[:, :count].view(len(draws), *shape).movedim(0, dim), like)
    out = torch.empty([len(draws), *shape], dtype=torch.float32, device=like.device)
    for k, ((_, rows), f, block) in enumerate(zip(draws, full, mult.split(per))):
        v = block[:math.prod(f)].view(f)
        out[k] = v if rows is None else v[rows[1]:rows[1] + shape[0]]
    return _as_like(out.movedim(0, dim), like)


__all__ = ["MaskRate", "keep_mask", "keep_masks"]
