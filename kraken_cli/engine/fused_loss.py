"""The recipe's output loss computed from row statistics, with a hand-written backward.

Every output term of :mod:`.losses` except ``var`` is a function of a few statistics of the
predictions ``Y`` (n x F) of a path against its target ``X`` (n x F):

* ``G = cX Y^T`` (n x n), with ``cX`` the target rows centred over features;
* ``s = Y 1`` and ``q = (Y * Y) 1`` (n): each prediction row's sum and sum of squares;

plus statistics of the target alone. From them come the correlations
``C = G / (|cX_a| |cY_b|)`` with ``|cY_b|^2 = q_b - s_b^2 / F``; the dot products
``X Y^T = G + mean(X) s^T``; the distances ``D^2 = |X_a|^2 + q_b - 2 X_a . Y_b`` (as
``torch.cdist`` computes them for more than 25 rows); and ``MSE = (sum |X_a|^2 + sum q - 2 tr
X Y^T) / (n F)``. The correlation and distance terms are then the very functions of
:mod:`.losses`, applied to ``C`` and ``D``, so the objective is the recipe's by construction.

Why: autograd through the element-wise formulas stores and re-reads the prediction tensor at
every step (about 30 passes per batch at paper scale, more than half of an epoch). Here
:class:`RowStats` reads it three times forward (one matrix product, two row reductions) and
twice backward (``dY = dG^T cX + 2 dq Y + ds``: one fused multiply-add and one matrix
product); everything after it works on n x n matrices.

Numerics: ``MSE`` from the statistics subtracts sums of squares, so its *value* carries a
relative error of about float epsilon times ``(|X|^2 + |Y|^2) / |Y - X|^2``; its gradient is
exact to rounding. Unit tests compare values and gradients with :func:`.losses.output_loss`.
"""

from __future__ import annotations

from typing import Any

import torch

from .losses import _EPS, _FROM_CORR, _FROM_DIST, output_loss
from .recipe import LossRecipe

#: Output terms this module computes (``var`` needs column statistics: the reference runs).
FUSED_TERMS = frozenset({"mse", "msesum", *_FROM_CORR, *_FROM_DIST})

_TINY = 1e-30  # squared distances are clamped here, so that sqrt's gradient stays finite


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
    lead = torch.broadcast_shapes(target.shape[:-2], pred.shape[:-2])
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


def fused_output_loss(recipe: LossRecipe, target: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """:func:`.losses.output_loss` from row statistics (same arguments, same result).

    Recipes with a term outside :data:`FUSED_TERMS` go to the reference implementation.
    """
    terms = recipe.output_terms
    if not terms or not supported(recipe):
        return output_loss(recipe, target, pred)
    y, x, lead = _grouped(target, pred)
    bsz, k, n, f = y.shape
    mx = x.mean(dim=-1, keepdim=True)
    cx = x - mx
    g, s, q = RowStats.apply(y.reshape(bsz, k * n, f), cx)
    g = g.view(bsz, k, n, n).transpose(-1, -2)       # [B, K, a (target row), b (prediction row)]
    s, q = s.view(bsz, k, 1, n), q.view(bsz, k, 1, n)
    names = {t.name for t in terms}
    values: dict[str, torch.Tensor] = {}
    if names & set(_FROM_CORR):
        nx = torch.linalg.vector_norm(cx, dim=-1).clamp_min(_EPS)                  # [B, n]
        ny = (q - s * s / f).clamp_min(_EPS * _EPS).sqrt()                          # [B, K, 1, n]
        c = g / (nx[:, None, :, None] * ny)
        ux = (cx / nx.unsqueeze(-1)).unsqueeze(1)
        values.update({t: fn(c, ux) for t, fn in _FROM_CORR.items() if t in names})
    if names & ({"mse", "msesum"} | set(_FROM_DIST)):
        qx = (x * x).sum(dim=-1)[:, None, :, None]                                   # [B, 1, n, 1]
        dot = g + mx[:, None] * s                                                    # X_a . Y_b
        if names & set(_FROM_DIST):
            d = (qx + q - 2 * dot).clamp_min(_TINY).sqrt()
            values.update({t: fn(d) for t, fn in _FROM_DIST.items() if t in names})
        sq = qx.sum(dim=(-2, -1)) + q.sum(dim=(-2, -1)) - 2 * dot.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
        values.update({"msesum": sq, "mse": sq / (n * f)})
    total = pred.new_zeros((bsz, k))
    for t in terms:
        total = total + t.weight * values[t.name]
    return torch.nan_to_num(total.reshape(lead), nan=0.0)


__all__ = ["FUSED_TERMS", "RowStats", "fused_output_loss", "supported"]
