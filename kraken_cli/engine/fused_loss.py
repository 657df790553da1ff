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

from dataclasses import dataclass
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
    names = {t.name for t in recipe.output_terms}
    n, f = st.x.shape[-2:]
    values: dict[str, torch.Tensor] = {}
    if names & set(_FROM_CORR):
        nx = torch.linalg.vector_norm(st.cx, dim=-1).clamp_min(_EPS)                # [B, n]
        ny = (st.q - st.s * st.s / f).clamp_min(_EPS * _EPS).sqrt()                 # [B, K, n, 1]
        c = st.g / (ny * nx[:, None, None, :])
        ux = (st.cx / nx.unsqueeze(-1)).unsqueeze(1)
        values.update({t: fn(c, ux) for t, fn in _FROM_CORR.items() if t in names})
    if names & ({"mse", "msesum"} | set(_FROM_DIST)):
        qx = (st.x * st.x).sum(dim=-1)[:, None, None, :]                             # [B, 1, 1, n]
        dot = st.g + st.s * st.mx.transpose(-1, -2).unsqueeze(1)                     # Y_b . X_a
        if names & set(_FROM_DIST):
            d = (qx + st.q - 2 * dot).clamp_min(_TINY).sqrt()
            values.update({t: fn(d) for t, fn in _FROM_DIST.items() if t in names})
        sq = qx.sum(dim=(-2, -1)) + st.q.sum(dim=(-2, -1)) - 2 * dot.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
        values.update({"msesum": sq, "mse": sq / (n * f)})
    total = st.g.new_zeros(st.g.shape[:2])
    for t in recipe.output_terms:
        total = total + t.weight * values[t.name]
    return torch.nan_to_num(total, nan=0.0)


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
