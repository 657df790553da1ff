"""The latent terms ``enceye`` and ``encdist`` of a batch's latents against themselves, from one Gram
matrix, with a hand-written backward (the latent counterpart of :mod:`.fused_loss`).

For latents ``Z [n, L]`` compared with themselves (no target encodings), with the rows centred
``Zc = Z - m 1^T`` (``m`` the row means) and ``Gc = Zc Zc^T``:

* correlations ``C_ij = Gc_ij r_i r_j`` with ``r_i = 1 / max(sqrt(Gc_ii), eps)``, as ``xycorr``;
* squared distances ``D_ij^2 = Gc_ii + Gc_jj - 2 Gc_ij + L (m_i - m_j)^2``, which is ``|z_i - z_j|^2``
  (centred rows sum to zero) without the cancellation of uncentred dot products.

``enceye = |C - I|_F`` and ``encdist = mean diag D - mean off-diagonal D``, the terms of
:mod:`.losses`. A latent's distance to itself is exactly 0 here; ``torch.cdist`` gives the square
root of the rounding of ``|z|^2 + |z|^2 - 2 z.z`` (up to 1e-3 for unit latents in float32, so the
reference's ``encdist`` carries that much noise) and a gradient of rounding noise there (about 1e-6 of
the gradient in float32). Why: autograd through the reference formulas (two unit-row
products, ``cdist`` and their ~40 backward nodes) took 3 ms of a paper-scale batch; this takes a
few tenths of one.
"""

from __future__ import annotations

from typing import Any

import torch

from .losses import _EPS, LossRecipe, latent_loss

#: Latent terms with a fused form (of latents against themselves).
SELF_TERMS = frozenset({"enceye", "encdist"})


class SelfStatsLoss(torch.autograd.Function):
    """``(Z [B, n, L], w_enceye, w_encdist)`` -> ``w_enceye * enceye + w_encdist * encdist`` ``[B]``."""

    @staticmethod
    def forward(ctx: Any, z: torch.Tensor, w_eye: float, w_dist: float) -> torch.Tensor:
        n, width = z.shape[-2:]
        m = z.mean(dim=-1, keepdim=True)                                        # [B, n, 1]
        zc = z - m
        gc = torch.bmm(zc, zc.transpose(1, 2))                                  # [B, n, n]
        qc = gc.diagonal(dim1=-2, dim2=-1)                                      # |Zc_i|^2
        total = z.new_zeros(z.shape[0])
        saved: dict[str, torch.Tensor] = {}
        if w_eye:
            norm = qc.sqrt()
            r = 1 / norm.clamp_min(_EPS)
            c = gc * r.unsqueeze(-1) * r.unsqueeze(-2)
            e = c.clone()
            e.diagonal(dim1=-2, dim2=-1).sub_(1)
            v = torch.linalg.vector_norm(e, dim=(-2, -1))
            total += w_eye * v
            saved.update(r=r, c=c, e=e, v=v, free=norm > _EPS)
        if w_dist:
            dm = m - m.transpose(-1, -2)                                        # m_i - m_j
            d2 = (qc.unsqueeze(-1) + qc.unsqueeze(-2)).sub_(gc, alpha=2).addcmul_(dm, dm, value=width)
            d = d2.clamp_min_(0).sqrt_()
            d.diagonal(dim1=-2, dim2=-1).zero_()                                # |z_i - z_i|, exactly
            total -= w_dist * d.sum(dim=(-2, -1)) / (n * (n - 1))
            saved.update(d=d, dm=dm)
        ctx.saved, ctx.weights = saved, (w_eye, w_dist)
        ctx.save_for_backward(zc)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (zc,) = ctx.saved_tensors
        saved, (w_eye, w_dist) = ctx.saved, ctx.weights
        n, width = zc.shape[-2:]
        go = grad[:, None, None]                                                # [B, 1, 1]
        dgc = zc.new_zeros(zc.shape[0], n, n)
        dm = None
        if w_eye:  # C = Gc r r^T, r = qc^-1/2 (clamped: no gradient)
            r, c = saved["r"], saved["c"]
            dc = saved["e"] * (w_eye * go / saved["v"].clamp_min(_EPS)[:, None, None])
            dqc = (dc * c).sum(dim=-1).mul_(-r * r * saved["free"])             # via r_i, r_j (C symmetric)
            dgc = dc.mul_(r.unsqueeze(-1) * r.unsqueeze(-2))
            dgc.diagonal(dim1=-2, dim2=-1).add_(dqc)
        if w_dist:  # D^2 = qc_i + qc_j - 2 Gc_ij + L (m_i - m_j)^2, off the diagonal
            d = saved["d"]
            dd2 = torch.where(d > 0, (-w_dist / (2 * n * (n - 1))) * go / d, 0.0)  # d loss / d D^2
            dgc.sub_(dd2, alpha=2)
            dgc.diagonal(dim1=-2, dim2=-1).add_(2 * dd2.sum(dim=-1))
            dm = (dd2 * saved["dm"]).sum(dim=-1, keepdim=True).mul_(4 * width)  # [B, n, 1]
        dzc = torch.bmm(dgc + dgc.transpose(1, 2), zc)                          # Gc = Zc Zc^T
        dz = dzc - dzc.mean(dim=-1, keepdim=True)                               # Zc = Z - m
        if dm is not None:
            dz += dm / width                                                    # m = mean(Z)
        return dz, None, None


def fused_latent_loss(recipe: LossRecipe, z_target: torch.Tensor | None, z: torch.Tensor) -> torch.Tensor:
    """:func:`.losses.latent_loss` (same arguments, same result to float tolerance).

    Latents against themselves with only :data:`SELF_TERMS` take :class:`SelfStatsLoss`; anything else
    (target encodings, other terms) the reference.
    """
    terms = recipe.latent_terms
    if z_target is not None or not terms or any(t.name not in SELF_TERMS for t in terms) or z.dim() < 2:
        return latent_loss(recipe, z_target, z)
    weights = {name: sum(t.weight for t in terms if t.name == name) for name in SELF_TERMS}
    lead, (n, width) = z.shape[:-2], z.shape[-2:]
    out = SelfStatsLoss.apply(z.reshape(-1, n, width), weights["enceye"], weights["encdist"])
    return out.reshape(lead)


__all__ = ["SELF_TERMS", "SelfStatsLoss", "fused_latent_loss"]
