"""The recipe's output loss computed from row statistics, with a hand-written backward.

Every output term of :mod:`.losses` except ``var`` is a function of a few statistics of the
predictions ``Y`` (n x F) of a path against its target ``X`` (n x F):

* ``G = cX Y^T`` (n x n), with ``cX`` the target rows centred over features;
* ``s = Y 1`` and ``q = (Y * Y) 1`` (n): each prediction row's sum and sum of squares;

plus statistics of the target alone. From them come the correlations
``C = G / (|cX_a| |cY_b|)`` with ``|cY_b|^2 = q_b - s_b^2 / F``; the dot products
``X Y^T = G + mean(X) s^T``; the distances ``D^2 = |X_a|^2 + q_b - 2 X_a . Y_b`` (as
``torch.cdist`` computes them for more than 25 rows); and ``MSE = (sum |X_a|^2 + sum q - 2 tr
X Y^T) / (n F)``. The terms on ``C`` and ``D`` and their derivatives are written out in
:mod:`._stats_loss`.

Why: autograd through the element-wise formulas stores and re-reads the prediction tensor at
every step (about 30 passes per batch at paper scale, more than half of an epoch). Here
:class:`RowStats` reads it three times forward (one matrix product, two row reductions) and
twice backward (``dY = dG^T cX + 2 dq Y + ds``: one fused multiply-add and one matrix
product); everything after it works on n x n matrices, without autograd's bookkeeping either.

Numerics: ``MSE`` from the statistics subtracts sums of squares, so its *value* carries a
relative error of about float epsilon times ``(|X|^2 + |Y|^2) / |Y - X|^2``; its gradient is
exact to rounding. Unit tests compare values and gradients with :func:`.losses.output_loss`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._stats_loss import CORR_TERMS, DIST_TERMS, SQ_TERMS, StatsLoss, TargetStats
from .losses import output_loss
from .recipe import LossRecipe
from .similarity import broadcast_lead

#: Output terms this module computes (``var`` needs column statistics: the reference runs).
FUSED_TERMS = frozenset(CORR_TERMS + DIST_TERMS + SQ_TERMS)


class RowStats(torch.autograd.Function):
    """``(Y [B, M, F], cX [B, n, F]) -> (G = Y cX^T [B, M, n], s = Y 1 [B, M], q = (Y*Y) 1 [B, M])``.

    The backward is written out: ``dY = dG cX + 2 dq Y + ds``; ``cX`` (the target) gets none.
    """

    @staticmethod
    def forward(ctx: Any, y: torch.Tensor, cx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ctx.save_for_backward(y, cx)
        g = torch.bmm(y, cx.transpose(1, 2))
        return g, y.sum(dim=-1), torch.linalg.vector_norm(y, dim=-1).square()

    @staticmethod
    def backward(ctx: Any, gg: torch.Tensor, gs: torch.Tensor, gq: torch.Tensor
                 ) -> tuple[torch.Tensor, None]:
        y, cx = ctx.saved_tensors
        gy = torch.addcmul(gs.unsqueeze(-1), y, gq.unsqueeze(-1), value=2.0)
        return gy.baddbmm_(gg, cx), None


def supported(recipe: LossRecipe) -> bool:
    """Whether every output term of ``recipe`` has a fused form."""
    return all(t.name in FUSED_TERMS for t in recipe.output_terms)


def _grouped(target: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Size]:
    """``pred`` as ``[B, K, n, F]`` and ``target`` as ``[B, n, F]`` with target row ``b`` shared by
    the ``K`` predictions of group ``b`` (no copy when the target broadcasts over trailing
    leading dimensions, the trainers' layout); returns the broadcast leading shape too."""
    lead = broadcast_lead(target.shape[:-2], pred.shape[:-2])
    n, f = pred.shape[-2:]
    pred = pred.expand(*lead, n, f)
    t_lead = (1,) * (len(lead) - (target.dim() - 2)) + tuple(target.shape[:-2])
    k = len(lead)
    while k > 0 and t_lead[k - 1] == 1 and lead[k - 1] != 1:
        k -= 1
    if tuple(t_lead[:k]) != tuple(lead[:k]):  # e.g. target [1, K] against predictions [B, K]: expand
        k = len(lead)
    b = 1
    for d in lead[:k]:
        b *= d
    x = target.reshape(*t_lead, n, f).expand(*lead[:k], *t_lead[k:], n, f).reshape(b, n, f)
    return pred.reshape(b, -1, n, f), x, lead


@dataclass(frozen=True)
class PathStats:
    """Statistics of ``K`` predictions against each of ``B`` targets (see the module docstring).

    ``g [B, K, n, n]`` is indexed (prediction row ``b``, target row ``a``): the transpose of the
    reference's ``C(X, Y)`` layout, which no term minds (each is invariant under transposing its
    correlation or distance matrix), so the products' own layout is kept. ``s`` and ``q`` are
    ``[B, K, n, 1]``; ``x`` and ``cx`` are the targets and their centred rows ``[B, n, F]``,
    ``mx`` their row means ``[B, n, 1]``.
    """

    g: torch.Tensor
    s: torch.Tensor
    q: torch.Tensor
    x: torch.Tensor
    cx: torch.Tensor
    mx: torch.Tensor

    @classmethod
    def of(cls, raw: tuple[torch.Tensor, torch.Tensor, torch.Tensor], x: torch.Tensor, mx: torch.Tensor,
           cx: torch.Tensor) -> PathStats:
        """From :class:`RowStats`' outputs ``(G [B, K*n, n], s [B, K*n], q [B, K*n])``."""
        g, s, q = raw
        bsz, n = x.shape[0], x.shape[1]
        k = g.shape[1] // n
        return cls(g.view(bsz, k, n, n), s.view(bsz, k, n, 1), q.view(bsz, k, n, 1), x, cx, mx)


def centred(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(row means [..., n, 1], centred rows)`` of targets ``x [..., n, F]``."""
    mx = x.mean(dim=-1, keepdim=True)
    return mx, x - mx


def path_stats(target: torch.Tensor, pred: torch.Tensor) -> tuple[PathStats, torch.Size]:
    """:class:`PathStats` of ``pred`` against ``target`` (broadcast as in ``output_loss``) and the
    broadcast leading shape."""
    y, x, lead = _grouped(target, pred)
    bsz, k, n, f = y.shape
    mx, cx = centred(x)
    return PathStats.of(RowStats.apply(y.reshape(bsz, k * n, f), cx), x, mx, cx), lead


def loss_from_stats(recipe: LossRecipe, st: PathStats) -> torch.Tensor:
    """The recipe's output loss ``[B, K]`` from the statistics (every term in :data:`FUSED_TERMS`)."""
    weights: dict[str, float] = {}
    for t in recipe.output_terms:
        weights[t.name] = weights.get(t.name, 0.0) + t.weight
    target = TargetStats.of(st.x, st.mx, st.cx, with_uxx="corrmatch" in weights)
    return StatsLoss.apply(st.g, st.s, st.q, target, weights)


def fused_output_loss(recipe: LossRecipe, target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """:func:`.losses.output_loss` from row statistics (same arguments, same result).

    Recipes with a term outside :data:`FUSED_TERMS` go to the reference implementation.
    """
    if not recipe.output_terms or not supported(recipe):
        return output_loss(recipe, target, pred)
    st, lead = path_stats(target, pred)
    return loss_from_stats(recipe, st).reshape(lead)


__all__ = ["FUSED_TERMS", "PathStats", "RowStats", "centred", "fused_output_loss", "loss_from_stats", "path_stats",
           "supported"]
