"""PackedEncode: the same latents and gradients as autograd through baddbmm, dropout and F.normalize."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from kraken_cli.engine.training._packed_encode import PackedEncode


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("normalize", [False, True])
def test_matches_autograd(masked: bool, normalize: bool) -> None:
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 7, 5, generator=gen, dtype=torch.float64)
    w = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64)
    b = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    mask = (torch.rand(3, 7, 4, generator=gen) > 0.5).double() * 2 if masked else None
    if mask is not None:
        mask[1, 2] = 0  # a fully dropped latent: its norm is clamped, as F.normalize clamps it
    up = torch.randn(3, 7, 4, generator=gen, dtype=torch.float64)  # a gradient from above

    def reference(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        h = torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))
        h = h if mask is None else h * mask
        return F.normalize(h, p=2.0, dim=-1) if normalize else h

    grads = []
    for f in (reference, lambda x, w, b: PackedEncode.apply(x, w, b, mask, normalize)):
        leaves = [t.clone().requires_grad_() for t in (x, w, b)]
        z = f(*leaves)
        (z * up).sum().backward()
        grads.append([z.detach()] + [t.grad for t in leaves])
    for got, want in zip(grads[1], grads[0]):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_data_without_gradient_gets_none() -> None:
    x = torch.randn(2, 3, 4)
    w = torch.randn(2, 5, 4, requires_grad=True)
    b = torch.zeros(2, 5, requires_grad=True)
    PackedEncode.apply(x, w, b, None, True).sum().backward()
    assert x.grad is None and w.grad is not None and b.grad is not None
