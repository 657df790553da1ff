"""The output terms on the row statistics, with their gradients written out (see :mod:`.fused_loss`).

Per path, with ``b`` a prediction row and ``a`` a target row (the products' layout):

* correlations ``C_ba = G_ba / (|cY_b| |cX_a|)``, ``|cY_b|^2 = q_b - s_b^2 / F``;
* distances ``D_ba = sqrt(|X_a|^2 + q_b - 2 (G_ba + s_b mean(X_a)))``.

Each term is a plain function of ``C`` or ``D`` whose derivative is simple:

=============  ============================================  =========================================
term           value                                         d value / d C (or D)
=============  ============================================  =========================================
``correye``    ``|C - I|_F``                                 ``(C - I) / value``
``corrtrace``  ``-(mean diag C - mean C)``                   ``-(I / n - 1 / n^2)``
``corrmatch``  ``|C - Ux Ux^T|_F``                           ``(C - Ux Ux^T) / value``
``dist``       ``mean diag D - mean off-diagonal D``         ``I / n - (1 - I) / (n (n - 1))``
``neidist``    ``mean diag D - nearest other (rows and       ``I / n`` minus ``1 / 2n`` at each row's
               columns, averaged)``                          and each column's nearest other
``mse``        ``(sum |X|^2 + sum q - 2 sum diag X.Y) / nF``  (through ``q`` and ``G`` directly)
=============  ============================================  =========================================

Every term is unchanged by transposing ``C`` or ``D``, so these are the reference's terms of
:mod:`.losses` (which index ``C(X, Y)`` by target row first). The chain back to ``(G, s, q)``
follows from the two definitions above; a clamped norm or distance passes no gradient, as
``clamp_min`` does in the reference, and a path whose loss is NaN gets none (the reference's
``nan_to_num``). Working without autograd, the forward keeps only what the backward needs and
the backward is a few dozen tensor operations instead of autograd's ~60 small-matrix nodes. Without
``dist``, ``d loss / d D`` is non-zero at only ``3n`` places per path (the diagonal and each row's and
column's nearest other), so ``neidist``'s chain is gathered at those places, never over the whole matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .losses import _EPS

EPS = _EPS    # smallest row norm divided by: the reference's clamp, the same number by construction
TINY = 1e-30  # squared distances are clamped here, so that sqrt's gradient stays finite

CORR_TERMS = ("correye", "corrtrace", "corrmatch")
DIST_TERMS = ("dist", "neidist")
SQ_TERMS = ("mse", "msesum")


@dataclass(frozen=True)
class TargetStats:
    """What the terms need of the targets ``X [B, n, F]``, laid out along the last axis ``a``."""

    inv_nx: torch.Tensor        # [B, 1, 1, n]: 1 / |cX_a| (clamped)
    mx: torch.Tensor            # [B, 1, 1, n]: row means
    qx: torch.Tensor            # [B, 1, 1, n]: |X_a|^2
    uxx: torch.Tensor | None    # [B, 1, n, n]: Ux Ux^T (corrmatch only)
    n_features: int

    @classmethod
    def of(cls, x: torch.Tensor, mx: torch.Tensor, cx: torch.Tensor, with_uxx: bool) -> TargetStats:
        nx = torch.linalg.vector_norm(cx, dim=-1).clamp_min(EPS)                    # [B, n]
        uxx = None
        if with_uxx:
            ux = cx / nx.unsqueeze(-1)
            uxx = (ux @ ux.transpose(-1, -2)).unsqueeze(1)
        return cls((1 / nx)[:, None, None, :], mx.transpose(-1, -2).unsqueeze(1),
                   (x * x).sum(dim=-1)[:, None, None, :], uxx, int(x.shape[-1]))


def _eye(n: int, like: torch.Tensor) -> torch.Tensor:
    return torch.eye(n, dtype=like.dtype, device=like.device)


class StatsLoss(torch.autograd.Function):
    """``(G [B, K, n, n], s [B, K, n, 1], q [B, K, n, 1], TargetStats, {term: weight})`` -> ``[B, K]``."""

    @staticmethod
    def forward(ctx: Any, g: torch.Tensor, s: torch.Tensor, q: torch.Tensor, t: TargetStats,
                weights: dict[str, float]) -> torch.Tensor:
        n, f = g.shape[-1], t.n_features
        total = g.new_zeros(g.shape[:2])
        saved: dict[str, Any] = {}
        if any(k in weights for k in CORR_TERMS):
            var = q - s * s / f
            inv_ny = var.clamp_min(EPS * EPS).rsqrt()
            scale = inv_ny * t.inv_nx                                                  # d C / d G
            c = g * scale
            saved.update(var=var, inv_ny=inv_ny, scale=scale, c=c)
            if "correye" in weights:
                e = c - _eye(n, c)
                v = torch.linalg.vector_norm(e, dim=(-2, -1))
                total += weights["correye"] * v
                saved.update(correye=(e, v))
            if "corrtrace" in weights:
                total -= weights["corrtrace"] * (c.diagonal(dim1=-2, dim2=-1).mean(dim=-1) - c.mean(dim=(-2, -1)))
            if "corrmatch" in weights:
                assert t.uxx is not None
                m = c - t.uxx
                v = torch.linalg.vector_norm(m, dim=(-2, -1))
                total += weights["corrmatch"] * v
                saved.update(corrmatch=(m, v))
        if any(k in weights for k in DIST_TERMS + SQ_TERMS):
            dot = torch.addcmul(g, s, t.mx)                                            # X_a . Y_b
            if any(k in weights for k in DIST_TERMS):
                d2 = (q + t.qx).add_(dot, alpha=-2).clamp_min_(TINY)                   # clamped D^2
                d = d2.sqrt()
                saved.update(d=d, d2=d2)
                diag = d.diagonal(dim1=-2, dim2=-1)
                mean_diag = diag.mean(dim=-1)
                if "dist" in weights:
                    off = (d.sum(dim=(-2, -1)) - mean_diag * n) / (n * (n - 1))
                    total += weights["dist"] * (mean_diag - off)
                if "neidist" in weights:
                    col_min, col_arg, row_min, row_arg = _nearest_others(d, diag)
                    total += weights["neidist"] * (mean_diag - (col_min.mean(dim=-1) + row_min.mean(dim=-1)) / 2)
                    saved.update(neidist=(col_arg, row_arg))
            if any(k in weights for k in SQ_TERMS):
                sq = t.qx.sum(dim=(-2, -1)) + q.sum(dim=(-2, -1)) - 2 * dot.diagonal(dim1=-2, dim2=-1).sum(dim=-1)
                total += weights.get("msesum", 0.0) * sq + weights.get("mse", 0.0) * sq / (n * f)
        ctx.saved = saved
        ctx.weights, ctx.t = weights, t
        ctx.save_for_backward(g, s)
        ctx.finite = torch.isfinite(total)
        return torch.nan_to_num(total, nan=0.0)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, None, None]:
        g, s = ctx.saved_tensors
        saved, w, t = ctx.saved, ctx.weights, ctx.t
        n, f = g.shape[-1], t.n_features
        go = torch.where(ctx.finite, grad, 0.0)[..., None, None]                   # [B, K, 1, 1]
        dq = torch.zeros_like(s)
        ds = torch.zeros_like(s)
        dg = None
        if "c" in saved:  # c = g scale, scale = inv_ny inv_nx, inv_ny = var^-1/2, var = q - s^2 / F
            dc = _d_corr(saved, w, go, n)
            inv_ny = saved["inv_ny"]
            dvar = (dc * saved["c"]).sum(dim=-1, keepdim=True).mul_(-0.5 * inv_ny * inv_ny)
            dvar = torch.where(saved["var"] > EPS * EPS, dvar, 0.0)
            dq += dvar
            ds += dvar * (-2 * s / f)
            dg = dc.mul_(saved["scale"])
        dg = dg if dg is not None else torch.zeros_like(g)
        mx = t.mx[:, :, 0, :]                                                       # [B, 1, n]: mean(X_a)
        if "d" in saved:  # D^2 = qx + q - 2 dot, dot = g + s mx: dq, ds and dg get d D^2 = d D / 2D
            (_dense_dist if "dist" in w else _sparse_neidist)(saved, w, go, n, mx, dq, ds, dg)
        if any(x in w for x in SQ_TERMS):  # sq = sum qx + sum q - 2 sum diag dot
            k = go[..., 0] * (w.get("msesum", 0.0) + w.get("mse", 0.0) / (n * f))    # [B, K, 1]
            dq += k.unsqueeze(-1)
            dg.diagonal(dim1=-2, dim2=-1).sub_(2 * k)
            ds -= (2 * k * mx).unsqueeze(-1)
        return dg, ds, dq, None, None


def _nearest_others(d: torch.Tensor, diag: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(col_min, col_arg, row_min, row_arg)``: the nearest other row of each column and column of each
    row of ``D`` (the diagonal raised by ``max D`` while they are found, then restored exactly)."""
    kept = diag.clone()
    diag.add_(d.amax(dim=(-2, -1)).unsqueeze(-1))
    col_min, col_arg = d.min(dim=-2)       # nearest prediction row of each target
    row_min, row_arg = d.min(dim=-1)       # nearest target row of each prediction
    diag.copy_(kept)
    return col_min, col_arg, row_min, row_arg


def _d_corr(saved: dict[str, Any], w: dict[str, float], go: torch.Tensor, n: int) -> torch.Tensor:
    """d loss / d C (a new tensor)."""
    dc: torch.Tensor | None = None
    for name in ("correye", "corrmatch"):
        if name in saved:
            e, v = saved[name]
            coef = w[name] * go / v.clamp_min(EPS)[..., None, None]
            dc = e * coef if dc is None else dc.addcmul_(e, coef)
    if dc is None:
        dc = torch.zeros_like(saved["c"])
    if "corrtrace" in w:  # -(I / n - 1 / n^2)
        dc += w["corrtrace"] * go / n ** 2
        dc.diagonal(dim1=-2, dim2=-1).sub_(w["corrtrace"] * go[..., 0] / n)
    return dc


def _half_inv(d: torch.Tensor, d2: torch.Tensor) -> torch.Tensor:
    """``d D / d D^2 = 1 / 2D``, 0 where ``D^2`` was clamped (no gradient, as ``clamp_min``)."""
    return torch.where(d2 > TINY, 0.5 / d, 0.0)


def _dense_dist(saved: dict[str, Any], w: dict[str, float], go: torch.Tensor, n: int, mx: torch.Tensor,
                dq: torch.Tensor, ds: torch.Tensor, dg: torch.Tensor) -> None:
    """``dist`` (every distance counts) and ``neidist``: d loss / d D on the whole matrix, added on."""
    d = saved["d"]
    off = -w.get("dist", 0.0) * go / (n * (n - 1))                 # dist's off-diagonal mean
    dd = off.expand_as(d).clone()
    diag = (w.get("dist", 0.0) + w.get("neidist", 0.0)) * go[..., 0] / n
    dd.diagonal(dim1=-2, dim2=-1).add_(diag - off[..., 0])
    if "neidist" in saved:  # minus 1/2n at each column's and each row's nearest other
        col_arg, row_arg = saved["neidist"]
        step = (-w["neidist"] / (2 * n)) * go
        dd.scatter_add_(-2, col_arg.unsqueeze(-2), step.expand(*col_arg.shape[:-1], 1, n))
        dd.scatter_add_(-1, row_arg.unsqueeze(-1), step.expand(*row_arg.shape, 1))
    dd2 = dd.mul_(_half_inv(d, saved["d2"]))
    dq += dd2.sum(dim=-1, keepdim=True)
    ddot = dd2.mul_(-2)
    ds += (ddot * mx.unsqueeze(-2)).sum(dim=-1, keepdim=True)
    dg += ddot


def _sparse_neidist(saved: dict[str, Any], w: dict[str, float], go: torch.Tensor, n: int, mx: torch.Tensor,
                    dq: torch.Tensor, ds: torch.Tensor, dg: torch.Tensor) -> None:
    """``neidist`` alone: d loss / d D is non-zero at ``3n`` places per path (the diagonal, each column's and
    each row's nearest other), so only those are gathered and added on, never the whole matrix."""
    d, d2 = saved["d"], saved["d2"]
    col_arg, row_arg = saved["neidist"]                            # [B, K, n]: b of column a; a of row b
    nei = w["neidist"] * go[..., 0]                                # [B, K, 1]
    at_col = (col_arg.unsqueeze(-2), -2)
    at_row = (row_arg.unsqueeze(-1), -1)
    v_diag = (nei / n) * _half_inv(d.diagonal(dim1=-2, dim2=-1), d2.diagonal(dim1=-2, dim2=-1))
    v_col, v_row = ((-nei / (2 * n)) * _half_inv(d.gather(dim, idx), d2.gather(dim, idx)).squeeze(dim)
                    for idx, dim in (at_col, at_row))              # d loss / d D^2 at those places
    dq_b = (v_diag + v_row).scatter_add_(-1, col_arg, v_col)       # row b's sum: its own and the columns'
    dq += dq_b.unsqueeze(-1)
    ds_b = (v_diag * mx + v_row * mx.expand_as(row_arg).gather(-1, row_arg)).scatter_add_(-1, col_arg, v_col * mx)
    ds -= (2 * ds_b).unsqueeze(-1)                                 # d dot = -2 d D^2; d s = d dot mx
    dg.diagonal(dim1=-2, dim2=-1).sub_(2 * v_diag)
    dg.scatter_add_(-2, at_col[0], (-2 * v_col).unsqueeze(-2))
    dg.scatter_add_(-1, at_row[0], (-2 * v_row).unsqueeze(-1))


__all__ = ["CORR_TERMS", "DIST_TERMS", "SQ_TERMS", "StatsLoss", "TargetStats"]
