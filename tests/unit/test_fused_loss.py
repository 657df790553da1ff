"""The fused output loss: the same values and gradients as the reference formulas of losses.py."""

from __future__ import annotations

import pytest
import torch

from kraken_cli.engine._stats_loss import StatsLoss, TargetStats
from kraken_cli.engine.fused_loss import FUSED_TERMS, RowStats, centred, fused_output_loss, supported
from kraken_cli.engine.losses import OUTPUT_LOSSES, PAPER_RECIPE, output_loss, parse_recipe
from kraken_cli.engine.training._packed_decode import DecodeStats

RECIPES = [PAPER_RECIPE, "corrtrace+corrmatch.w0.5+dist+msesum", "mse", "correye.w2+mse.w3+neidist",
           "dist+neidist.w2+mse", "encdist"]  # the last has no output term
SHAPES = [((4, 1, 41, 30), (4, 5, 41, 30)),    # packed trainer: one target per decoder, K sources
          ((1, 41, 30), (3, 41, 30)),          # module trainer: one target, S sources
          ((41, 30), (41, 30)),                # one path
          ((1, 5, 41, 30), (4, 5, 41, 30)),    # a target that broadcasts over the first dimension
          ((2, 3, 41, 30), (2, 3, 41, 30))]    # one target per prediction


def _both(recipe: str, target: torch.Tensor, pred: torch.Tensor) -> tuple[torch.Tensor, ...]:
    r = parse_recipe(recipe)
    y1 = pred.clone().requires_grad_()
    y2 = pred.clone().requires_grad_()
    a = output_loss(r, target, y1)
    b = fused_output_loss(r, target, y2)
    if a.requires_grad:
        a.sum().backward()
        b.sum().backward()
    return a, b, y1.grad if y1.grad is not None else torch.zeros(()), y2.grad if y2.grad is not None else torch.zeros(())


@pytest.mark.parametrize("recipe", RECIPES)
@pytest.mark.parametrize(("t_shape", "p_shape"), SHAPES)
def test_values_and_gradients_match_the_reference(recipe: str, t_shape: tuple[int, ...],
                                                  p_shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(*t_shape, generator=g, dtype=torch.float64) * 2 + 0.5
    y = x + torch.randn(*p_shape, generator=g, dtype=torch.float64)
    a, b, ga, gb = _both(recipe, x, y)
    assert a.shape == b.shape
    torch.testing.assert_close(b, a, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(gb, ga, rtol=1e-9, atol=1e-12)


def test_float32_agrees_to_float_tolerance() -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.randn(3, 1, 41, 256, generator=g)
    y = x + 0.7 * torch.randn(3, 15, 41, 256, generator=g)
    a, b, ga, gb = _both(PAPER_RECIPE, x, y)
    torch.testing.assert_close(b, a, rtol=2e-5, atol=1e-4)
    torch.testing.assert_close(gb, ga, rtol=1e-3, atol=1e-5)


def test_degenerate_rows_stay_finite() -> None:
    # a constant prediction row (zero variance) and a perfect prediction: the reference clamps
    # the norm and gives a zero correlation; the fused form must not turn either into NaN
    x = torch.randn(6, 10, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    y = x.clone()
    y[2] = 3.0
    a, b, ga, gb = _both(PAPER_RECIPE, x, y)
    assert torch.isfinite(b).all() and torch.isfinite(gb).all()
    # a zero distance from the dot products is sqrt(rounding): ~1e-8 of the row norm
    torch.testing.assert_close(b, a, rtol=1e-6, atol=1e-6)


def test_neidist_gradient_from_its_few_places_equals_the_whole_matrix() -> None:
    # neidist alone takes the sparse backward, with dist (weight 0) the dense one; some squared distances
    # come out negative (clamped: no gradient there), including diagonal and nearest-other places
    gen = torch.Generator().manual_seed(5)
    b, k, n, f = 2, 3, 9, 16
    x = torch.randn(b, n, f, generator=gen, dtype=torch.float64)
    mx, cx = centred(x)
    g = torch.randn(b, k, n, n, generator=gen, dtype=torch.float64)
    s = torch.randn(b, k, n, 1, generator=gen, dtype=torch.float64)
    q = torch.rand(b, k, n, 1, generator=gen, dtype=torch.float64) * 5
    g[0, 0, 3, 3] = g[0, 0, 4, 5] = g[1, 2, 0, 7] = 1e3  # D^2 < 0 there
    t = TargetStats.of(x, mx, cx, with_uxx=False)
    grads = []
    for weights in ({"neidist": 1.5}, {"neidist": 1.5, "dist": 0.0}):
        leaves = [v.clone().requires_grad_() for v in (g, s, q)]
        (StatsLoss.apply(*leaves, t, weights) * torch.arange(1.0, k + 1, dtype=torch.float64)).sum().backward()
        grads.append([v.grad for v in leaves])
    assert grads[0][0][0, 0, 3, 3] == 0 and grads[0][0][0, 0, 4, 5] == 0  # clamped: the diagonal, a nearest other
    for sparse, dense in zip(*grads):
        torch.testing.assert_close(sparse, dense, rtol=1e-12, atol=1e-14)


def test_var_goes_to_the_reference() -> None:
    assert not supported(parse_recipe("correye+var"))
    assert supported(parse_recipe(PAPER_RECIPE))
    assert FUSED_TERMS == set(OUTPUT_LOSSES) - {"var"}
    x = torch.randn(2, 12, 9, dtype=torch.float64)
    y = x + torch.randn(2, 12, 9, dtype=torch.float64)
    a, b, ga, gb = _both("correye+var.w3", x, y)
    torch.testing.assert_close(b, a)
    torch.testing.assert_close(gb, ga)


def test_row_stats_backward_matches_autograd() -> None:
    g = torch.Generator().manual_seed(3)
    y = torch.randn(2, 7, 5, generator=g, dtype=torch.float64, requires_grad=True)
    cx = torch.randn(2, 4, 5, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: RowStats.apply(t, cx), (y,))


@pytest.mark.parametrize("masked", [False, True])
def test_packed_decode_matches_autograd(masked: bool) -> None:
    # DecodeStats against the explicit decode (einsum, bias, mask) followed by RowStats (whose
    # backward gradcheck verifies above): same statistics, same gradients for z, W and b
    g = torch.Generator().manual_seed(6)
    z = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)       # I, n, L
    w = torch.randn(2, 6, 4, generator=g, dtype=torch.float64)       # J, F, L
    b = torch.randn(2, 6, generator=g, dtype=torch.float64)
    mask = (torch.rand(3, 5, 2, 6, generator=g, dtype=torch.float64) > 0.5) * 2.0 if masked else None
    cx = torch.randn(2, 5, 6, generator=g, dtype=torch.float64)
    weights = [torch.randn(2, 15, 5, generator=g, dtype=torch.float64), torch.randn(2, 15, generator=g,
               dtype=torch.float64), torch.randn(2, 15, generator=g, dtype=torch.float64)]

    def run(explicit: bool) -> tuple[torch.Tensor, ...]:
        zz, ww, bb = (t.clone().requires_grad_() for t in (z, w, b))
        if explicit:
            y = torch.einsum("ibl,jfl->jibf", zz, ww) + bb[:, None, None, :]
            y = y if mask is None else y * mask.permute(2, 0, 1, 3)
            stats = RowStats.apply(y.reshape(2, 15, 6), cx)
        else:
            g1, q = DecodeStats.apply(zz, ww, bb, mask, torch.cat([cx, torch.ones(2, 1, 6, dtype=cx.dtype)], dim=1))
            stats = (g1[..., :5], g1[..., 5], q)  # the row sums come as the product with a row of ones
        sum((s * k).sum() for s, k in zip(stats, weights)).backward()
        return (*stats, zz.grad, ww.grad, bb.grad)

    for got, want in zip(run(False), run(True)):
        torch.testing.assert_close(got, want)
