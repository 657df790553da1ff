"""Identifiability metrics (UPSTREAM 14): hand-computed cases, ties, distances, torch == numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from kraken_cli.engine.metrics import (
    METRIC_NAMES,
    RECORD_FIELDS,
    avgcorr,
    avgcorr_other,
    avgrank,
    avgrank_mean,
    canonical_metric,
    diag_ranks,
    evaluate_path,
    evaluate_paths_torch,
    explained_variance,
    metrics_to_record_fields,
    record_field,
    top1acc,
    topNacc,
    xycorr,
    xycorr_torch,
    xydist,
)
from kraken_cli.engine.metrics.kernel import diag_ranks_torch

# Hand example. Rows are subjects, 3 features; every centred row has norm sqrt(2), so
# corr(a, b) = (a_c . b_c) / 2.
#   X0 = [1,2,3] -> [-1, 0, 1]     Y0 = [1,2,3] -> [-1, 0, 1]
#   X1 = [1,3,2] -> [-1, 1, 0]     Y1 = [3,2,1] -> [ 1, 0,-1]
#   X2 = [3,2,1] -> [ 1, 0,-1]     Y2 = [2,1,3] -> [ 0,-1, 1]
# C[i, j] = corr(X_i, Y_j):
#   [[ 1,  -1,   .5],
#    [ .5, -.5, -.5],
#    [-1,   1,  -.5]]
# ranks of the diagonal (strictly better + equal at a smaller column):
#   row 0: 0;  row 1: .5 is better, the -.5 tie is at column 2 > 1 -> 1;  row 2: 1 is better -> 1
# pred2true (C^T = [[1,.5,-1],[-1,-.5,1],[.5,-.5,-.5]]): row 0: 0; row 1: 1; row 2: .5 better,
#   tie -.5 at column 1 < 2 -> 2
X3 = np.array([[1.0, 2, 3], [1, 3, 2], [3, 2, 1]])
Y3 = np.array([[1.0, 2, 3], [3, 2, 1], [2, 1, 3]])
C3 = np.array([[1.0, -1, 0.5], [0.5, -0.5, -0.5], [-1, 1, -0.5]])


def test_xycorr_hand_example() -> None:
    np.testing.assert_allclose(xycorr(X3, Y3), C3, atol=1e-12)


def test_hand_example_identifiability() -> None:
    assert diag_ranks(C3).tolist() == [0, 1, 1]
    assert top1acc(C3) == pytest.approx(1 / 3)
    assert topNacc(C3, 2) == pytest.approx(1.0)
    assert topNacc(C3, 1) == pytest.approx(1 / 3)
    assert avgrank(C3) == pytest.approx(1 - (2 / 3) / 3)          # 7/9
    assert avgrank_mean(C3) == pytest.approx(1 + 2 / 3)           # 5/3
    assert avgcorr(C3) == pytest.approx(0.0)                      # (1 - .5 - .5)/3
    assert avgcorr_other(C3) == pytest.approx((-1 + 0.5 - 0.5) / 3)  # strict upper triangle only
    assert diag_ranks(C3.T).tolist() == [0, 1, 2]


def test_hand_example_explained_variance() -> None:
    # var over subjects (ddof 0): X columns 8/9, 2/9, 6/9 -> 16/9;
    # X - Y = [[0,0,0],[-2,1,1],[1,1,-2]]: columns 14/9, 2/9, 14/9 -> 30/9; R^2 = 1 - 30/16
    assert explained_variance(X3, Y3) == pytest.approx(1 - 30 / 16)


def test_evaluate_path_hand_example() -> None:
    m = evaluate_path(X3, Y3)
    assert list(m) == list(METRIC_NAMES)
    expected = {
        "top1acc": 1 / 3, "topNacc": 1.0, "avgrank": 7 / 9, "avgrank_mean": 5 / 3,
        "avgcorr": 0.0, "avgcorr_other": -1 / 3, "explainedvar": 1 - 30 / 16,
        "top1acc_pred2true": 1 / 3, "topNacc_pred2true": 2 / 3, "avgrank_pred2true": 1 - 3 / 9,
        "top1acc_bidir": 1 / 3, "topNacc_bidir": 5 / 6, "avgrank_bidir": (7 / 9 + 6 / 9) / 2,
    }
    for k, v in expected.items():
        assert m[k] == pytest.approx(v, abs=1e-12), k


def test_perfect_predictions() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(7, 20))
    m = evaluate_path(X, X)
    for k in ("top1acc", "topNacc", "avgrank", "avgcorr", "avgcorr_resid", "explainedvar",
              "top1acc_pred2true", "avgrank_bidir"):
        assert m[k] == pytest.approx(1.0), k
    assert m["avgrank_mean"] == pytest.approx(1.0)


def test_permuted_predictions() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(6, 30))
    perm = np.array([0, 2, 1, 3, 5, 4])  # fixed points: 0 and 3
    m = evaluate_path(X, X[perm])
    assert m["top1acc"] == pytest.approx(2 / 6)
    # the own prediction of subject i sits at column perm^-1(i); all swaps are 2-cycles,
    # so a swapped subject's true match is at the partner's column
    C = xycorr(X, X[perm])
    assert (np.argmax(C, axis=1) == np.argsort(perm)).all()
    assert m["top1acc_pred2true"] == pytest.approx(2 / 6)


def test_ties_follow_numpy_argmax_first_index() -> None:
    C = np.ones((4, 4))  # everything ties: argmax is column 0 for every row
    assert diag_ranks(C).tolist() == [0, 1, 2, 3]
    assert top1acc(C) == pytest.approx(np.mean(np.argmax(C, axis=1) == np.arange(4)))
    # identical predictions for everyone: only subject 0 is "identified", as with numpy
    X = np.random.default_rng(2).normal(size=(4, 10))
    Y = np.tile(X[:1], (4, 1))
    assert evaluate_path(X, Y)["top1acc_pred2true"] == pytest.approx(0.25)


def test_nan_correlation_ranks_last() -> None:
    X = np.array([[1.0, 2, 3], [2, 1, 3], [3, 1, 2]])
    Y = X.copy()
    Y[1] = 5.0  # constant prediction: NaN correlations in column 1
    C = xycorr(X, Y)
    assert np.isnan(C[:, 1]).all()
    r = diag_ranks(C)
    assert r[1] == 2  # its own NaN never wins
    assert r[0] == 0 and r[2] == 0


def test_demean_default_is_truth_mean_and_accepts_train_mean() -> None:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5, 12)) + np.linspace(0, 3, 12)
    Y = X + rng.normal(scale=0.5, size=X.shape)
    mu = X.mean(axis=0)
    Cr = xycorr(X - mu, Y - mu)
    m = evaluate_path(X, Y)
    assert m["avgcorr_resid"] == pytest.approx(np.mean(np.diag(Cr)))
    assert m["avgcorr_resid_other"] == pytest.approx(Cr[np.triu_indices(5, 1)].mean())
    train_mu = rng.normal(size=12)
    Ct = xycorr(X - train_mu, Y - train_mu)
    assert evaluate_path(X, Y, demean=train_mu)["avgcorr_resid"] == pytest.approx(np.mean(np.diag(Ct)))
    # a constant offset leaves Pearson correlations unchanged
    assert evaluate_path(X, Y, demean=np.full(12, 7.0))["avgcorr_resid"] == pytest.approx(m["avgcorr"])


def test_one_column_uses_distances() -> None:
    # D[i, j] = |x_i - y_j|:
    #   [[.2, 2.6, 1.1],
    #    [.8, 1.6,  .1],
    #    [2.8, .4, 1.9]]
    # ascending ranks of the diagonal: 0, 2, 1
    X = np.array([[0.0], [1.0], [3.0]])
    Y = np.array([[0.2], [2.6], [1.1]])
    np.testing.assert_allclose(xydist(X, Y), [[0.2, 2.6, 1.1], [0.8, 1.6, 0.1], [2.8, 0.4, 1.9]], atol=1e-12)
    m = evaluate_path(X, Y)
    assert m["top1acc"] == pytest.approx(1 / 3)
    assert m["topNacc"] == pytest.approx(2 / 3)   # nearest two, not the farthest (original's torch bug)
    assert m["avgrank"] == pytest.approx(1 - 3 / 9)
    assert m["avgcorr"] == pytest.approx((0.2 + 1.6 + 1.9) / 3)
    t = evaluate_paths_torch(torch.tensor(X), torch.tensor(Y)[None])
    for k in ("top1acc", "topNacc", "avgrank", "avgcorr", "avgcorr_other", "explainedvar"):
        assert t[k].item() == pytest.approx(m[k]), k


def test_accepts_torch_tensors_and_1d_vectors() -> None:
    Xt, Yt = torch.tensor(X3), torch.tensor(Y3)
    assert evaluate_path(Xt, Yt) == pytest.approx(evaluate_path(X3, Y3))
    np.testing.assert_allclose(xycorr_torch(Xt, Yt).numpy(), C3, atol=1e-12)


def test_shape_errors() -> None:
    with pytest.raises(ValueError, match="differ in shape"):
        evaluate_path(np.zeros((3, 4)), np.zeros((3, 5)))
    with pytest.raises(ValueError, match="demean"):
        evaluate_path(X3, Y3, demean=np.zeros(4))
    with pytest.raises(KeyError):
        evaluate_paths_torch(torch.tensor(X3), torch.tensor(Y3), metrics=("nope",))


def test_record_field_names() -> None:
    assert record_field("top1acc") == "corrloss_OrigScale_val"
    assert record_field("topNacc", "train") == "corrlossN_OrigScale_train"
    assert record_field("avgrank", origscale=False) == "corrlossRank_val"
    assert record_field("avgrank_mean", origscale=False) == "avgrank_val"
    assert record_field("avgcorr_other") == "avgcorr_OrigScale_other_val"
    assert record_field("avgcorr_resid") == "avgcorr_resid_OrigScale_val"
    assert record_field("avgcorr_resid_other") == "avgcorr_resid_OrigScale_other_val"
    assert record_field("explainedvar") == "explainedvar_OrigScale_val"
    assert record_field("avgrank_pred2true") == "corrlossRank_OrigScale_pred2true_val"
    assert record_field("topNacc_bidir") == "corrlossN_bidir_OrigScale_val"
    assert record_field("loss", "train") == "loss_train"
    assert set(METRIC_NAMES) <= set(RECORD_FIELDS)
    assert metrics_to_record_fields({"avgcorr": 0.5}, split="train", origscale=False) == {"avgcorr_train": 0.5}


def test_canonical_metric_aliases() -> None:
    assert canonical_metric("topnacc") == "topNacc"
    assert canonical_metric("R2") == "explainedvar"
    assert canonical_metric("top1accx") == "top1acc_bidir"
    assert canonical_metric("corrlossRank") == "avgrank"
    assert canonical_metric("topNacc_pred2true") == "topNacc_pred2true"
    with pytest.raises(KeyError):
        canonical_metric("accuracy")


# --------------------------------------------------------------------------- torch == numpy


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 7), seed=st.integers(0, 2**31 - 1), levels=st.integers(1, 4))
def test_torch_ranks_equal_numpy_ranks_with_ties(n: int, seed: int, levels: int) -> None:
    # integer-valued similarity matrices: ties everywhere
    S = np.random.default_rng(seed).integers(0, levels, size=(n, n)).astype(float)
    for largest in (True, False):
        assert diag_ranks_torch(torch.tensor(S), largest).tolist() == diag_ranks(S, largest=largest).tolist()
    assert top1acc(S) == pytest.approx(np.mean(np.argmax(S, axis=1) == np.arange(n)))


@settings(max_examples=30, deadline=None)
@given(P=st.integers(1, 4), n=st.integers(2, 9), F=st.integers(3, 12), seed=st.integers(0, 2**31 - 1),
       top_n=st.integers(1, 3), shared=st.booleans(), train_mean=st.booleans())
def test_batched_torch_equals_numpy(P: int, n: int, F: int, seed: int, top_n: int, shared: bool,
                                    train_mean: bool) -> None:
    # continuous data and F >= 3 (with F = 2 every correlation is +-1: exact ties that the two
    # libraries' rounding may break differently)
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(n, F)) if shared else rng.normal(size=(P, n, F))
    pred = rng.normal(size=(P, n, F)) + 0.8 * true
    mu = rng.normal(size=F) if train_mean else None
    out = evaluate_paths_torch(torch.tensor(true), torch.tensor(pred), top_n=top_n,
                               demean=None if mu is None else torch.tensor(mu))
    for p in range(P):
        t = true if shared else true[p]
        ref = evaluate_path(t, pred[p], top_n=top_n, demean=mu)
        for k in METRIC_NAMES:
            assert out[k].shape == (P,)
            assert out[k][p].item() == pytest.approx(ref[k], abs=1e-9), k


def test_batched_torch_per_path_demean_and_subset() -> None:
    rng = np.random.default_rng(5)
    true = rng.normal(size=(3, 6, 8))
    pred = true + rng.normal(size=true.shape)
    mu = rng.normal(size=(3, 8))
    out = evaluate_paths_torch(torch.tensor(true), torch.tensor(pred), demean=torch.tensor(mu),
                               metrics=("top1acc", "avgcorr_resid"))
    assert list(out) == ["top1acc", "avgcorr_resid"]
    for p in range(3):
        ref = evaluate_path(true[p], pred[p], demean=mu[p])
        assert out["avgcorr_resid"][p].item() == pytest.approx(ref["avgcorr_resid"])


def test_batched_torch_float32() -> None:
    rng = np.random.default_rng(6)
    true = rng.normal(size=(10, 50))
    pred = np.stack([true + rng.normal(scale=s, size=true.shape) for s in (0.3, 1.0, 3.0)])
    out = evaluate_paths_torch(torch.tensor(true, dtype=torch.float32), torch.tensor(pred, dtype=torch.float32))
    for p in range(3):
        ref = evaluate_path(true, pred[p])
        for k in ("top1acc", "avgrank", "avgcorr", "avgcorr_resid", "explainedvar"):
            assert out[k][p].item() == pytest.approx(ref[k], abs=1e-5), k


def test_a_shared_truth_gives_what_the_truth_per_path_gives() -> None:
    # one truth for every path is broadcast (normalised once), not copied per path: same metrics
    g = torch.Generator().manual_seed(4)
    true = torch.randn(9, 30, generator=g, dtype=torch.float64)
    pred = true + 0.8 * torch.randn(4, 9, 30, generator=g, dtype=torch.float64)
    shared = evaluate_paths_torch(true, pred)
    per_path = evaluate_paths_torch(true.expand(4, 9, 30).clone(), pred)
    for name in shared:
        assert shared[name].shape == (4,)
        torch.testing.assert_close(shared[name], per_path[name], rtol=1e-12, atol=1e-12)
