"""The fused latent terms (enceye, encdist of latents against themselves): the reference's values and gradients."""

from __future__ import annotations

import pytest
import torch

from kraken_cli.engine._self_loss import SelfStatsLoss, fused_latent_loss
from kraken_cli.engine.losses import PAPER_RECIPE, latent_loss, parse_recipe


def _both(recipe: str, z: torch.Tensor, target: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
    r = parse_recipe(recipe)
    z1, z2 = z.clone().requires_grad_(), z.clone().requires_grad_()
    a, b = latent_loss(r, target, z1), fused_latent_loss(r, target, z2)
    weights = torch.arange(1.0, a.numel() + 1, dtype=z.dtype).reshape(a.shape)  # a different weight per path
    (a * weights).sum().backward()
    (b * weights).sum().backward()
    return a, b, z1.grad, z2.grad


@pytest.mark.parametrize("recipe", [PAPER_RECIPE, "correye+enceye", "mse+encdist.w3", "enceye.w2+encdist.w0.5"])
@pytest.mark.parametrize("shape", [(4, 41, 32), (41, 16), (2, 3, 30, 8)])
@pytest.mark.parametrize("offset", [0.0, 3.0])  # rows far from zero mean: centring must not lose precision
def test_values_and_gradients_match_the_reference(recipe: str, shape: tuple[int, ...], offset: float) -> None:
    z = torch.randn(*shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64) + offset
    a, b, ga, gb = _both(recipe, z)
    assert b.shape == a.shape
    # the reference's self-distances are sqrt(rounding) (~1e-8 |z| in float64), not 0: in the value and,
    # as rounding noise, in the gradient
    torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(gb, ga, rtol=1e-6, atol=1e-7)


def test_unit_latents_in_float32_are_closer_to_float64_than_the_reference() -> None:
    # the paper's latents: unit rows in float32, where cdist's self-distances are up to 1e-3 of noise
    z = torch.nn.functional.normalize(torch.randn(15, 41, 128, generator=torch.Generator().manual_seed(2)), dim=-1)
    a, b, ga, gb = _both(PAPER_RECIPE, z)
    a64, _, ga64, _ = _both(PAPER_RECIPE, z.double())
    scale = float(ga64.abs().max())
    assert (b.double() - a64).abs().max() <= (a.double() - a64).abs().max()
    assert (gb.double() - ga64).abs().max() <= (ga.double() - ga64).abs().max()
    torch.testing.assert_close(gb.double(), ga64, rtol=1e-4, atol=1e-5 * scale)


def test_a_constant_row_stays_finite_and_matches() -> None:
    # zero variance: the reference clamps the norm (zero correlation, no gradient through it)
    z = torch.randn(2, 12, 9, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    z[0, 4] = 0.7
    a, b, ga, gb = _both(PAPER_RECIPE, z)
    assert torch.isfinite(gb).all()
    torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(gb, ga, rtol=1e-6, atol=1e-7)


def test_other_terms_and_targets_take_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(SelfStatsLoss, "apply", lambda *a: calls.append(a) or a[0].sum(dim=(-2, -1)))
    z = torch.randn(3, 10, 5, dtype=torch.float64)
    fused_latent_loss(parse_recipe("enceye+encneidist"), None, z)
    fused_latent_loss(parse_recipe(PAPER_RECIPE), z.flip(0), z)
    assert calls == []
    fused_latent_loss(parse_recipe(PAPER_RECIPE), None, z)
    assert len(calls) == 1 and calls[0][1:] == (10.0, 10.0)
