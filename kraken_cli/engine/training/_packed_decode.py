"""The packed decoders' product, bias, dropout and row statistics as one autograd function.

For ``J`` decoders and ``I`` source latents, ``Y[i, b, j, :] = (z_i[b] W_j^T + b_j) * mask``
is one ``addmm`` into an ``[I*n, J*F]`` matrix; the statistics of :mod:`..fused_loss` are taken
on it in place (decoder ``j``'s predictions are a strided view). The row sums ride along in the
product with the targets (``Y [cX; 1]^T = [G, s]``), so forward reads the predictions twice (the
product and the sums of squares). The backward is written out: ``dY = 2 dq Y + [dG, ds] [cX; 1]``
(computed in the predictions' own buffer, which is why the backward may run only once), times the
mask, then the three products of a linear layer, all on contiguous 2-D matrices. Autograd would
instead keep the einsum's permuted copy, the biased copy and the masked copy, and re-read each.
"""

from __future__ import annotations

from typing import Any

import torch

from ..fused_loss import PathStats, centred


class DecodeStats(torch.autograd.Function):
    """``(z [I, n, L], W [J, F, L], b [J, F], mask [I, n, J, F] or None, cX1 [J, n + 1, F])`` ->
    ``(G1 [J, I*n, n + 1], q [J, I*n])`` of the predictions of every (decoder j, source i) pair, with
    ``cX1`` decoder j's centred targets and a row of ones: ``G1 = [G, s]`` and ``q`` as in
    :class:`..fused_loss.RowStats`."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, w: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None,
                cx1: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n_src, n, n_lat = z.shape
        n_dec, n_feat, _ = w.shape
        zf = z.reshape(n_src * n, n_lat)
        y = torch.addmm(b.reshape(1, -1), zf, w.reshape(n_dec * n_feat, n_lat).t())   # [I*n, J*F]
        if mask is not None:  # (any strides: the masks are a view of the drawn multipliers)
            y.view(n_src, n, n_dec, n_feat).mul_(mask)
        yj = y.view(n_src * n, n_dec, n_feat).transpose(0, 1)                           # [J, I*n, F]
        ctx.save_for_backward(zf, w, y, mask, cx1)
        ctx.shape = (n_src, n, n_dec, n_feat)
        ctx.done = False
        return torch.bmm(yj, cx1.transpose(1, 2)), torch.linalg.vector_norm(yj, dim=-1).square()

    @staticmethod
    def backward(ctx: Any, gg1: torch.Tensor, gq: torch.Tensor
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None, None]:
        zf, w, y, mask, cx1 = ctx.saved_tensors
        if ctx.done:
            raise RuntimeError("DecodeStats reuses its saved predictions for the gradient: backward runs once")
        ctx.done = True
        n_src, n, n_dec, n_feat = ctx.shape
        gy = y.view(n_src * n, n_dec, n_feat)                   # the predictions' buffer becomes dY:
        gy.mul_((2 * gq).t().reshape(n_src * n, n_dec, 1))
        gy.transpose(0, 1).baddbmm_(gg1, cx1)                   # dY = 2 dq Y + [dG, ds] [cX; 1]
        if mask is not None:
            gy.view(n_src, n, n_dec, n_feat).mul_(mask)
        gy = gy.view(y.shape)
        w2 = w.reshape(n_dec * n_feat, -1)
        gz = (gy @ w2).view(n_src, n, -1)
        return gz, (gy.t() @ zf).view(w.shape), gy.sum(dim=0).view(n_dec, n_feat), None, None


def decode_stats(z: torch.Tensor, w: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None,
                 x: torch.Tensor) -> PathStats:
    """:class:`..fused_loss.PathStats` of the decoded predictions (targets ``x [J, n, F]``)."""
    mx, cx = centred(x)
    g1, q = DecodeStats.apply(z, w, b, mask, torch.cat([cx, cx.new_ones(cx.shape[0], 1, cx.shape[2])], dim=1))
    n = x.shape[1]
    return PathStats.of((g1[..., :n], g1[..., n], q), x, mx, cx)


__all__ = ["DecodeStats", "decode_stats"]
