"""Input transforms (UPSTREAM 3.2): formulas computed independently, inverse, params and file round trips."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from kraken_cli.engine.errors import KrakenNotFittedError, SpecError, TransformError
from kraken_cli.engine.transforms import (
    CFeatTransform,
    PCATransform,
    TSVDTransform,
    make_transform,
    transform_from_params,
)
from kraken_cli.engine.transforms.files import load_transforms, read_transform_params, save_transforms

RNG = np.random.default_rng(3)
X = RNG.normal(loc=0.3, scale=2.0, size=(12, 6))            # training rows (n_subjects, n_features)
X[:, 2] = 5.0                                               # a constant feature (zfeat: std 0 -> 1)
XNEW = RNG.normal(loc=0.1, scale=1.5, size=(4, 6))          # rows to transform


def _pca_forward(k: int) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.decomposition import PCA

    p = PCA(n_components=k, random_state=0).fit(X)
    s = np.linalg.norm((X - p.mean_) @ p.components_.T)
    return lambda x: 100 * ((x - p.mean_) @ p.components_.T) / s


def _tsvd_forward(k: int) -> Callable[[np.ndarray], np.ndarray]:
    from sklearn.decomposition import TruncatedSVD

    t = TruncatedSVD(n_components=k, random_state=0).fit(X)
    s = np.linalg.norm(X @ t.components_.T)
    return lambda x: 100 * (x @ t.components_.T) / s


def _affine(shift: Any, scale: Any) -> Callable[[np.ndarray], np.ndarray]:
    return lambda x: (x - shift) / scale


mu = X.mean(axis=0)
sd = X.std(axis=0)
sd_fixed = np.where(sd == 0, 1.0, sd)
m_all, s_all = X.mean(), X.std()
EXPECTED: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "none": lambda x: x,
    "pca4": _pca_forward(4),
    "pca6": _pca_forward(6),
    "tsvd3": _tsvd_forward(3),
    "norm": _affine(0.0, np.sqrt(np.sum(X ** 2) / X.size) / 100),
    "varnorm": _affine(0.0, sum(np.var(X[:, j]) for j in range(X.shape[1]))),
    "zscore": _affine(m_all, s_all),
    "zfeat": _affine(mu, sd_fixed),
    "cfeat": _affine(mu, 1.0),
    "cfeat+norm": _affine(mu, np.mean([np.sqrt(np.sum((row - mu) ** 2)) for row in X])),
    "cfeat+varnorm": _affine(mu, np.sum(np.var(X - mu, axis=0))),
    "zscore+rownorm": _affine(m_all, s_all * np.mean([np.linalg.norm((row - m_all) / s_all) for row in X])),
}
#: types whose inverse is an exact inverse on any row (PCA with k < rank projects)
EXACT_INVERSE = [k for k in EXPECTED if k not in ("pca4", "tsvd3")]


def _np(t: torch.Tensor | np.ndarray) -> np.ndarray:
    return (t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)).astype(np.float64)


@pytest.mark.parametrize("spec", sorted(EXPECTED))
def test_forward_matches_formula(spec: str) -> None:
    t = make_transform(spec).fit(X)
    assert t.fit(X) is t  # fit returns self
    y = t.transform(XNEW)  # numpy in and out, float64 kept
    assert isinstance(y, np.ndarray) and y.dtype == np.float64
    np.testing.assert_allclose(y, EXPECTED[spec](XNEW), rtol=1e-5, atol=1e-5)
    yt = t.as_torch().transform(XNEW)  # the network's side: float32 tensors
    assert isinstance(yt, torch.Tensor) and yt.dtype == torch.float32
    np.testing.assert_allclose(_np(yt), EXPECTED[spec](XNEW), rtol=2e-4, atol=2e-4)
    assert t.transform(XNEW.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("spec", EXACT_INVERSE)
def test_inverse_undoes_forward(spec: str) -> None:
    t = make_transform(spec).fit(X)
    np.testing.assert_allclose(_np(t.inverse_transform(t.transform(XNEW))), XNEW, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("spec", ["pca4", "tsvd3"])
def test_reduced_inverse_is_the_projection(spec: str) -> None:
    t = make_transform(spec).fit(X)
    comps = t.components_.astype(np.float64)
    mean = t.pca_mean_.astype(np.float64)
    expected = (XNEW - mean) @ comps.T @ comps + mean
    np.testing.assert_allclose(_np(t.inverse_transform(t.transform(XNEW))), expected, rtol=1e-4, atol=1e-4)
    # forward(inverse(y)) == y in the reduced space (orthonormal components)
    y = t.transform(XNEW)
    np.testing.assert_allclose(_np(t.transform(t.inverse_transform(y))), _np(y), rtol=1e-4, atol=1e-3)


def test_accepts_torch_input() -> None:
    t = make_transform("cfeat").fit(X)
    a = t.as_torch().transform(torch.as_tensor(XNEW))
    b = t.as_torch().transform(XNEW)
    assert torch.equal(a, b)
    np.testing.assert_array_equal(t.transform(torch.as_tensor(XNEW)), t.transform(XNEW))


@pytest.mark.parametrize("spec", sorted(EXPECTED))
def test_params_round_trip(spec: str) -> None:
    t = make_transform(spec).fit(X)
    p = t.params()
    assert p["type"] == t.kind
    assert p["input_dimension"] == X.shape[1]
    t2 = transform_from_params(p)
    assert type(t2) is type(t)
    assert (t2.n_features_in_, t2.n_features_out_) == (t.n_features_in_, t.n_features_out_)
    np.testing.assert_array_equal(_np(t2.transform(XNEW)), _np(t.transform(XNEW)))
    y = t.transform(XNEW)
    np.testing.assert_array_equal(_np(t2.inverse_transform(y)), _np(t.inverse_transform(y)))


def test_pca_params_layout_matches_upstream_3_3() -> None:
    p = make_transform("pca4").fit(X).params()
    assert p["reduce_dimension"] == 4 and p["output_dimension"] == 4
    assert p["input_normscale"].shape == (1,) and p["input_normscale"].dtype == np.float32
    assert p["output_normscale"].tolist() == [100.0]
    assert p["pca_input_mean"].shape == (6,)
    assert p["pca_components"].shape == (4, 6) and p["pca_components"].dtype == np.float32
    assert 0 < p["pca_explained_variance_ratio"] <= 1
    c = make_transform("cfeat").fit(X).params()
    assert c["input_mean"].shape == (1, 6)


def test_pca_without_explained_variance_loads_as_nan() -> None:
    p = make_transform("pca4").fit(X).params()
    del p["pca_explained_variance_ratio"]
    assert np.isnan(transform_from_params(p).explained_variance_ratio_)


def test_training_mean() -> None:
    np.testing.assert_allclose(make_transform("pca4").fit(X).training_mean(), mu, rtol=1e-6)
    np.testing.assert_allclose(make_transform("zfeat").fit(X).training_mean(), mu, rtol=1e-6)
    assert make_transform("tsvd3").fit(X).training_mean() is None
    assert make_transform("zscore").fit(X).training_mean() is None


@pytest.mark.parametrize(("spec", "cls", "k"), [("pca256", PCATransform, 256), ("PC64", PCATransform, 64),
                                                 ("tsvd10", TSVDTransform, 10), ("cfeat", CFeatTransform, None)])
def test_make_transform_parses(spec: str, cls: type, k: int | None) -> None:
    t = make_transform(spec)
    assert type(t) is cls
    if k is not None:
        assert t.n_components == k  # type: ignore[attr-defined]


def test_make_transform_aliases_and_unknown() -> None:
    assert make_transform("cfeatnorm").kind == "cfeat+norm"
    assert make_transform("zrownorm").kind == "zscore+rownorm"
    with pytest.raises(SpecError) as ei:
        make_transform("wavelet16")
    assert "wavelet16" in ei.value.message and ei.value.hint


def test_pca_needs_enough_subjects() -> None:
    with pytest.raises(TransformError, match="pca20"):
        make_transform("pca20").fit(X)


def test_not_fitted() -> None:
    t = make_transform("cfeat")
    with pytest.raises(KrakenNotFittedError):
        t.transform(XNEW)
    with pytest.raises(ValueError):  # also a ValueError, as sklearn's NotFittedError
        t.params()


def test_wrong_width_is_a_transform_error() -> None:
    t = make_transform("cfeat").fit(X)
    with pytest.raises(TransformError, match="X has 5 features, but CFeatTransform is expecting 6"):
        t.transform(XNEW[:, :5])
    with pytest.raises(ValueError):  # scikit-learn's contract too
        t.transform(XNEW[:, :5])
    with pytest.raises(TransformError, match="expects 6 features, got 5"):
        t.as_torch().transform(XNEW[:, :5])


@pytest.mark.parametrize(("params", "match"), [
    ({"type": "lognorm", "input_dimension": 3}, "lognorm"),
    ({"type": "wavelet"}, "unknown transform type"),
    ({"type": "pca", "pca_components": np.zeros((2, 3))}, "pca_input_mean|input_normscale"),
    ({"type": "cfeat"}, "input_mean"),
    ({"type": "varnorm", "input_variance": 2.0}, "input dimension"),
])
def test_transform_from_params_errors(params: dict[str, Any], match: str) -> None:
    with pytest.raises(TransformError, match=match):
        transform_from_params(params, source="f.npy")


# -- files ---------------------------------------------------------------------------------------------

def _fitted() -> dict[str, Any]:
    return {"FCcorr_fs86_hpf": make_transform("pca4").fit(X), "SCifod2act_fs86_volnorm": make_transform("cfeat").fit(X),
            "FCpcorr_fs86_hpf": make_transform("zscore+rownorm").fit(X)}


def _assert_same(loaded: dict[str, Any], fitted: dict[str, Any]) -> None:
    assert set(loaded) == set(fitted)
    for k, t in fitted.items():
        assert type(loaded[k]) is type(t)
        np.testing.assert_allclose(_np(loaded[k].transform(XNEW)), _np(t.transform(XNEW)), rtol=1e-6)


def test_save_load_npy_round_trip(tmp_path: Path) -> None:
    fitted = _fitted()
    f = save_transforms(tmp_path / "m_ioxfm_x.npy", fitted, train_subjects=[f"s{i}" for i in range(12)])
    # the original's layout: np.save of a dict (0-d object array)
    raw = np.load(f, allow_pickle=True).item()  # our own freshly written file, in a test
    assert set(raw) == set(fitted)
    assert raw["FCcorr_fs86_hpf"]["train_subjects"].tolist()[:2] == ["s0", "s1"]
    assert raw["FCcorr_fs86_hpf"]["type"] == "pca"
    _assert_same(load_transforms([f]), fitted)
    assert not list(tmp_path.glob("*.part"))


def test_read_npz_layout(tmp_path: Path) -> None:
    fitted = _fitted()
    f = tmp_path / "m_ioxfm_x.npz"
    np.savez_compressed(f, transform_params={k: t.params() for k, t in fitted.items()})
    _assert_same(load_transforms([f]), fitted)


def test_read_h5_layout(tmp_path: Path) -> None:
    import h5py

    fitted = _fitted()
    f = tmp_path / "m_ioxfm_x.h5"
    with h5py.File(f, "w") as h:
        for name, t in fitted.items():
            g = h.create_group(name)
            for k, v in t.params().items():
                if np.ndim(v) == 0 or (isinstance(v, np.ndarray) and v.size == 1 and v.ndim == 1 and k.endswith("scale")):
                    g.attrs[k] = v  # scalars as attributes
                else:
                    g.create_dataset(k, data=v, compression="gzip")
    _assert_same(load_transforms([f]), fitted)


def test_tensor_valued_legacy_npy(tmp_path: Path) -> None:
    """Older files hold torch tensors inside the pickled dict."""
    t = make_transform("pca4").fit(X)
    p = {k: (torch.as_tensor(v) if isinstance(v, np.ndarray) else v) for k, v in t.params().items()}
    f = tmp_path / "old_ioxfm.npy"
    buf = io.BytesIO()
    np.save(buf, np.array({"FCcorr_fs86_hpf": p}, dtype=object), allow_pickle=True)
    f.write_bytes(buf.getvalue())
    loaded = load_transforms([f])["FCcorr_fs86_hpf"]
    np.testing.assert_allclose(_np(loaded.transform(XNEW)), _np(t.transform(XNEW)), rtol=1e-6)


def test_files_merge_by_flavor_and_refuse_duplicates(tmp_path: Path) -> None:
    fitted = _fitted()
    a = save_transforms(tmp_path / "a.npy", {"FCcorr_fs86_hpf": fitted["FCcorr_fs86_hpf"]})
    b = save_transforms(tmp_path / "b.npy", {"SCifod2act_fs86_volnorm": fitted["SCifod2act_fs86_volnorm"]})
    assert set(load_transforms([a, b])) == {"FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"}
    with pytest.raises(TransformError, match="both"):
        load_transforms([a, a])


def test_read_errors(tmp_path: Path) -> None:
    with pytest.raises(TransformError, match="does not exist"):
        read_transform_params(tmp_path / "missing.npy")
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(TransformError, match="unknown transform file type"):
        read_transform_params(tmp_path / "x.txt")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(TransformError, match="flavor"):
        read_transform_params(tmp_path / "plain.npy")


@pytest.mark.parametrize(("ckpt", "xfm"), [
    ("run_chkpt_SCFC_pc64_ep000500.pt", "run_ioxfm_SCFC_pc64.npy"),
    ("dir/x_chkpt_y_epoch000040.pt", "dir/x_ioxfm_y.npy"),
    ("model.pt", "model.npy"),
])
def test_transform_file_naming_rule(ckpt: str, xfm: str) -> None:
    from kraken_cli.engine.naming import sibling

    assert sibling(ckpt, "ioxfm") == Path(xfm)


# -- scikit-learn's own estimator checks ----------------------------------------------------------------------

def _sklearn_instances() -> list:
    from kraken_cli.engine.transforms import (
        CFeatNormTransform,
        CFeatVarNormTransform,
        NormTransform,
        Transform,
        VarNormTransform,
        ZFeatTransform,
        ZScoreRowNormTransform,
        ZScoreTransform,
    )

    return [Transform(), PCATransform(n_components=2), TSVDTransform(n_components=2), NormTransform(),
            VarNormTransform(), ZScoreTransform(), ZFeatTransform(), CFeatTransform(), CFeatNormTransform(),
            CFeatVarNormTransform(), ZScoreRowNormTransform()]


def _sklearn_checks():
    pytest.importorskip("sklearn")
    from sklearn.utils.estimator_checks import parametrize_with_checks

    return parametrize_with_checks(_sklearn_instances())


@pytest.mark.filterwarnings("ignore::UserWarning")  # "does not inherit from BaseEstimator": duck-typed on purpose
@_sklearn_checks()
def test_scikit_learn_estimator_checks(estimator, check) -> None:
    """Transforms are scikit-learn transformers (numpy in and out, get_params, fit_transform...)."""
    check(estimator)
