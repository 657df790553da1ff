"""Row correlation and distance matrices shared by the losses and the metrics (torch, batched).

Inputs have shape ``(..., n, F)``: ``n`` rows (subjects) of ``F`` features. Both the training
losses (:mod:`~kraken_cli.engine.losses`, which need gradients) and the identifiability
metrics (:mod:`~kraken_cli.engine.metrics`, float64) use these; they differ only in how a
constant row is treated (``eps``).
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["broadcast_lead", "pairwise_distance", "unit_rows", "xycorr"]


def broadcast_lead(a: torch.Size | tuple[int, ...], b: torch.Size | tuple[int, ...]) -> torch.Size:
    """``torch.broadcast_shapes(a, b)`` without its cost: torch's first call imports its symbolic-shape
    machinery (sympy, 0.4-0.5 s, a twentieth of a short training command)."""
    return torch.Size(np.broadcast_shapes(tuple(a), tuple(b)))


def unit_rows(x: torch.Tensor, *, eps: float = 0.0) -> torch.Tensor:
    """Rows centred over features and scaled to unit length.

    Parameters
    ----------
    x : Tensor of shape (..., n, F)
    eps : float
        Smallest norm divided by. With 0 (the metrics' choice) a constant row becomes NaN; the
        losses pass a tiny ``eps`` so that such a row becomes zero (zero correlation).
    """
    c = x - x.mean(dim=-1, keepdim=True)
    return c / torch.linalg.vector_norm(c, dim=-1, keepdim=True).clamp_min(eps)


def xycorr(x: torch.Tensor, y: torch.Tensor, *, eps: float = 0.0) -> torch.Tensor:
    """Pearson correlation between every row of ``x`` and every row of ``y``.

    Parameters
    ----------
    x : Tensor of shape (..., n, F)
    y : Tensor of shape (..., m, F)
    eps : float
        As in :func:`unit_rows`.

    Returns
    -------
    Tensor of shape (..., n, m)
        ``C[..., i, j]`` = correlation (over features) of ``x[..., i, :]`` and ``y[..., j, :]``.

    Examples
    --------
    >>> xycorr(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])).round(decimals=4).tolist()
    [[-1.0]]
    """
    return unit_rows(x, eps=eps) @ unit_rows(y, eps=eps).transpose(-1, -2)


def pairwise_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Euclidean distances ``D[..., i, j] = ||x_i - y_j||`` (``torch.cdist``, as the original)."""
    lead = broadcast_lead(x.shape[:-2], y.shape[:-2])
    return torch.cdist(x.expand(*lead, *x.shape[-2:]), y.expand(*lead, *y.shape[-2:]))
