"""kraken's PCA fit gives scikit-learn's PCA(k, random_state=0) components on every solver scikit-learn picks."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.decomposition import PCA

from kraken_cli.engine.transforms._pca import fit_pca


@pytest.mark.parametrize(("n", "p", "k", "solver"), [
    (12, 6, 4, "full"), (12, 6, 6, "full"),               # small: full SVD (k == min(n, p) too)
    (300, 20, 5, "covariance_eigh"),                      # tall and narrow
    (100, 400, 90, "full"),
    (230, 3655, 64, "randomized"),                        # recipe P: subjects < features (transposed)
    (200, 900, 5, "randomized"),                          # few components: 7 power iterations
    (900, 600, 50, "randomized"),                         # more subjects than features
    (60, 800, 55, "full"),                                # k >= 0.8 min(n, p)
])
def test_fit_pca_matches_scikit_learn(n: int, p: int, k: int, solver: str) -> None:
    rng = np.random.default_rng(n + p + k)
    X = rng.normal(size=(n, p)) * np.linspace(3.0, 0.1, p) + rng.normal(size=p)
    ref = PCA(n_components=k, random_state=0).fit(X)
    assert ref._fit_svd_solver == solver
    mean, components, ratio = fit_pca(X, k)
    np.testing.assert_allclose(mean, ref.mean_, rtol=0, atol=1e-12)
    assert components.shape == (k, p)
    np.testing.assert_allclose(components, ref.components_, rtol=0, atol=1e-9)
    assert ratio == pytest.approx(float(np.sum(ref.explained_variance_ratio_)), rel=1e-10)

