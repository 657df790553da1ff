"""Loss recipe parsing and every loss formula (UPSTREAM 6), batched vs hand computations and loops."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from kraken_cli.engine import losses as L
from kraken_cli.engine.errors import SpecError

# --------------------------------------------------------------------------- recipe parsing


def test_paper_recipe_weights() -> None:
    r = L.parse_recipe(L.PAPER_RECIPE)
    assert r.as_dict() == {"correye": 1.0, "enceye": 10.0, "neidist": 1.0, "encdist": 10.0, "mse": 1000.0,
                           "latentsimloss": 10000.0}
    assert [t.name for t in r.output_terms] == ["correye", "neidist", "mse"]
    assert [t.name for t in r.latent_terms] == ["enceye", "encdist"]
    assert r.latentsim_weight == 10000.0
    assert str(r) == L.PAPER_RECIPE


def test_recipe_means_what_it_says() -> None:
    # no hidden mse / latentsim terms (DESIGN 5)
    r = L.parse_recipe("correye+enceye")
    assert r.as_dict() == {"correye": 1.0, "enceye": 10.0}
    assert r.weight("mse") == 0 and r.latentsim_weight == 0


def test_default_weights_by_group() -> None:
    r = L.parse_recipe("mse+dist+encneidist+encdot+latentsimloss+latentmaxradloss+latentnormloss")
    assert r.as_dict() == {"mse": 1.0, "dist": 1.0, "encneidist": 10.0, "encdot": 10.0, "latentsimloss": 5000.0,
                           "latentmaxradloss": 10.0, "latentnormloss": 1.0}
    assert {t.name for t in r.latent_terms} == {"encneidist", "encdot", "latentmaxradloss", "latentnormloss"}


def test_weights_parse_and_canonical_string() -> None:
    r = L.parse_recipe("mse.w1+correye.w0.5+enceye.w0+latentsimlossB.w1e3")
    assert r.as_dict() == {"mse": 1.0, "correye": 0.5, "enceye": 0.0, "latentsimloss": 1000.0}
    assert str(r) == "mse+correye.w0.5+latentsimloss.w1000"  # zero weights omitted, .w1 dropped
    assert r.latent_terms == ()


@pytest.mark.parametrize("text", ["", "  ", "mse++correye", "+mse"])
def test_empty_terms_rejected(text: str) -> None:
    with pytest.raises(SpecError):
        L.parse_recipe(text)


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(SpecError) as exc:
        L.parse_recipe("correye+mystery.w3")
    assert "mystery" in str(exc.value)
    assert exc.value.hint is not None
    for name in ("correye", "neidist", "enceye", "latentsimloss"):
        assert name in exc.value.hint


@pytest.mark.parametrize("text", ["mse.wabc", "mse.w-1", "mse.winf", "mse.wnan"])
def test_bad_weights_rejected(text: str) -> None:
    with pytest.raises(SpecError):
        L.parse_recipe(text)


def test_duplicate_term_rejected() -> None:
    with pytest.raises(SpecError, match="twice"):
        L.parse_recipe("mse+correye+mse.w3")


# --------------------------------------------------------------------------- hand-computed values

def _t(a: object) -> torch.Tensor:
    return torch.tensor(a, dtype=torch.float64)


def test_xycorr_hand_values() -> None:
    x = _t([[1, 2, 3], [3, 2, 1]])
    y = _t([[2, 4, 6], [1, 1, 2]])
    c = L.xycorr(x, y)
    # corr([1,2,3],[1,1,2]) = 0.8660254
    assert torch.allclose(c, _t([[1.0, math.sqrt(3) / 2], [-1.0, -math.sqrt(3) / 2]]))


def test_correye_corrtrace_corrmatch_hand_values() -> None:
    x = _t([[1, 2, 3], [3, 2, 1]])
    y = _t([[2, 4, 6], [1, 1, 2]])
    # C = [[1, s], [-1, -s]] with s = sqrt(3)/2; C - I = [[0, s], [-1, -s-1]]
    s = math.sqrt(3) / 2
    assert float(L.correye(x, y)) == pytest.approx(math.sqrt(s**2 + 1 + (s + 1) ** 2))
    assert float(L.corrtrace(x, y)) == pytest.approx(-((1 - s) / 2 - (1 + s - 1 - s) / 4))
    cxx = np.array([[1.0, -1.0], [-1.0, 1.0]])
    cxy = np.array([[1.0, s], [-1.0, -s]])
    assert float(L.corrmatch(x, y)) == pytest.approx(np.linalg.norm(cxy - cxx))


def test_mse_msesum_hand_values() -> None:
    x = _t([[0, 0], [1, 1]])
    y = _t([[1, 0], [1, 3]])
    assert float(L.mse(x, y)) == pytest.approx((1 + 0 + 0 + 4) / 4)
    assert float(L.msesum(x, y)) == pytest.approx(5)


def test_dist_and_neidist_hand_values() -> None:
    # three points on a line: x = 0, 1, 3 ; predictions = x + 0.5
    x = _t([[0.0], [1.0], [3.0]])
    y = x + 0.5
    d = np.abs(x.numpy() - y.numpy().T)  # D[i, j] = |x_i - y_j|
    dself = np.trace(d) / 3
    dother = (d.sum() - np.trace(d)) / 6
    assert float(L.dist(x, y)) == pytest.approx(dself - dother)
    dp = d + np.eye(3) * d.max()
    nei = np.mean((dp.min(axis=0) + dp.min(axis=1)) / 2)
    assert float(L.neidist(x, y)) == pytest.approx(dself - nei)


def test_var_predicted_variance_in_denominator() -> None:
    x = _t([[0.0, 0.0], [2.0, 2.0]])  # v_x = 1
    y = _t([[0.0, 0.0], [4.0, 4.0]])  # v_y = 4
    assert float(L.var(x, y)) == pytest.approx(((4 - 1) / 4) ** 2)


def test_encdot_uses_dot_distance() -> None:
    z = _t([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    d = 1 - z.numpy() @ z.numpy().T
    expected = np.trace(d) / 3 - (d.sum() - np.trace(d)) / 6
    assert float(L.encdot(z, z)) == pytest.approx(expected)
    dp = d + np.eye(3) * d.max()
    assert float(L.encneidot(z, z)) == pytest.approx(np.trace(d) / 3 - np.mean((dp.min(0) + dp.min(1)) / 2))


def test_latent_norm_and_maxrad() -> None:
    z = _t([[3.0, 4.0], [0.6, 0.0]])
    assert float(L.latentnormloss(z)) == pytest.approx(math.sqrt(25 + 0.36))
    assert float(L.latentmaxradloss(z)) == pytest.approx((24 + 0) / 2)


def test_latentsimloss_hand_value_and_anchor() -> None:
    z = torch.randn(3, 4, 2, dtype=torch.float64, requires_grad=True)
    zh = torch.randn(3, 4, 2, dtype=torch.float64)
    expected = sum(2 * torch.mean((z[i] - zh[j]) ** 2) for i in range(3) for j in range(i))
    loss = L.latentsimloss(z, zh)
    assert torch.allclose(loss, expected)
    loss.backward()
    assert z.grad is not None
    assert torch.count_nonzero(z.grad[0]) == 0  # flavor 0 is the anchor
    assert torch.count_nonzero(z.grad[2]) > 0
    w = _t([1.0, 2.0, 0.5])
    expected_w = sum(w[i] * 2 * torch.mean((z[i] - zh[j]) ** 2) for i in range(3) for j in range(i))
    assert torch.allclose(L.latentsimloss(z, zh, w), expected_w)


# --------------------------------------------------------------------------- batched vs per-sample loops

def _loop_corr(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    c = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            c[i, j] = np.corrcoef(x[i], y[j])[0, 1]
    return c


def _loop_dist(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    n = x.shape[0]
    return np.array([[math.sqrt(sum((x[i, f] - y[j, f]) ** 2 for f in range(x.shape[1]))) for j in range(n)]
                     for i in range(n)])


def _loop_losses(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    n = x.shape[0]
    c = _loop_corr(x, y)
    cxx = _loop_corr(x, x)
    d = _loop_dist(x, y)
    eye = np.eye(n)
    dself = np.trace(d) / n
    dp = d + eye * d.max()
    nei = np.mean([(min(dp[:, i]) + min(dp[i, :])) / 2 for i in range(n)])

    def pvar(a: np.ndarray) -> float:
        return float(np.mean((a - a.mean(axis=0)) ** 2))

    return {
        "mse": float(np.mean((y - x) ** 2)), "msesum": float(np.sum((y - x) ** 2)),
        "correye": float(np.linalg.norm(c - eye)), "corrtrace": float(-(np.trace(c) / n - c.mean())),
        "corrmatch": float(np.linalg.norm(c - cxx)),
        "dist": float(dself - (d.sum() - np.trace(d)) / (n * (n - 1))), "neidist": float(dself - nei),
        "var": float(((pvar(y) - pvar(x)) / pvar(y)) ** 2),
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_output_losses_batched_match_loops(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    P, B, F = 3, 6, 5
    x = torch.randn(P, B, F, generator=g, dtype=torch.float64)
    y = torch.randn(P, B, F, generator=g, dtype=torch.float64)
    for name in L.OUTPUT_LOSSES:
        batched = getattr(L, name)(x, y)
        assert batched.shape == (P,)
        for p in range(P):
            ref = _loop_losses(x[p].numpy(), y[p].numpy())[name]
            assert float(batched[p]) == pytest.approx(ref, rel=1e-9, abs=1e-9), name


@pytest.mark.parametrize("seed", [0, 3])
def test_output_loss_recipe_sum_and_broadcast(seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    N, B, F = 3, 5, 4
    x = torch.randn(N, B, F, generator=g, dtype=torch.float64)   # truth per target flavor
    y = torch.randn(N, N, B, F, generator=g, dtype=torch.float64)  # y[i, j]: path i->j
    recipe = L.parse_recipe("correye+corrmatch.w2+neidist+dist.w0.5+mse.w1000+msesum.w0.1+corrtrace+var.w3")
    batched = L.output_loss(recipe, x.unsqueeze(0), y)
    assert batched.shape == (N, N)
    for i, j in itertools.product(range(N), range(N)):
        ref = _loop_losses(x[j].numpy(), y[i, j].numpy())
        expected = sum(t.weight * ref[t.name] for t in recipe.output_terms)
        assert float(batched[i, j]) == pytest.approx(expected, rel=1e-9)


def test_latent_losses_batched_match_loops() -> None:
    g = torch.Generator().manual_seed(5)
    z = torch.nn.functional.normalize(torch.randn(4, 7, 3, generator=g, dtype=torch.float64), dim=-1)
    zt = torch.nn.functional.normalize(torch.randn(4, 7, 3, generator=g, dtype=torch.float64), dim=-1)
    recipe = L.parse_recipe("enceye+encdist.w2+encneidist.w3+latentnormloss.w0.1+latentmaxradloss.w5")
    got = L.latent_loss(recipe, zt, z)
    for f in range(4):
        a, b = zt[f].numpy(), z[f].numpy()
        ref = _loop_losses(a, b)
        expected = (10 * ref["correye"] + 2 * ref["dist"] + 3 * ref["neidist"] + 0.1 * np.linalg.norm(b)
                    + 5 * np.mean(np.maximum((b**2).sum(1) - 1, 0)))
        assert float(got[f]) == pytest.approx(expected, rel=1e-9)
    # without a target, latents are compared with themselves
    self_loss = L.latent_loss(L.parse_recipe("enceye"), None, z)
    assert torch.allclose(self_loss, 10 * L.correye(z, z))


def test_nan_output_loss_becomes_zero_but_latent_nan_stays() -> None:
    x = torch.randn(2, 4, 3)
    y = torch.randn(2, 4, 3)
    y[1, 0, 0] = float("nan")
    out = L.output_loss(L.parse_recipe("mse+correye"), x, y)
    assert out[1] == 0 and torch.isfinite(out[0]) and out[0] > 0
    lat = L.latent_loss(L.parse_recipe("enceye"), None, y)
    assert torch.isnan(lat[1])


def test_zero_latent_row_gives_no_nan() -> None:
    # a fully dropped-out latent row (sharp edge 4) no longer poisons the weights
    z = torch.randn(5, 4, requires_grad=True)
    zn = torch.nn.functional.normalize(z * torch.tensor([[0.0], [1], [1], [1], [1]]), dim=1)
    loss = L.latent_loss(L.parse_recipe("enceye+encdist"), None, zn)
    loss.backward()
    assert torch.isfinite(loss) and z.grad is not None and torch.isfinite(z.grad).all()


def test_distance_gradients_finite_at_zero_distance() -> None:
    z = torch.randn(41, 8, requires_grad=True)
    L.encdist(z, z).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()
