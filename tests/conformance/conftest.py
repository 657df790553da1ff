"""Conformance fixtures: the original's reference outputs in ../shared/conformance/P."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
P = SHARED / "conformance" / "P"


@pytest.fixture
def conf_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run from conformance/P (the commands use paths relative to it); skip when shared/ is absent."""
    if not P.is_dir():
        pytest.skip("../shared/conformance/P is not available")
    monkeypatch.chdir(P)
    return P


def _strip(x: object) -> object:
    if isinstance(x, np.ndarray) and x.dtype.kind == "U":
        return [s.strip() for s in np.atleast_1d(x).tolist()]
    if isinstance(x, str):
        return [x.strip()]
    return x


def assert_same_predictions(ours: Path, expected: Path, rtol: float = 1e-5) -> None:
    """Every predicted_alltypes[input][output] within rtol (max abs diff / max abs), same subjects and keys."""
    import scipy.io

    a = scipy.io.loadmat(ours, simplify_cells=True)
    b = scipy.io.loadmat(expected, simplify_cells=True)
    keys_b = {k for k in b if not k.startswith("__")}
    assert keys_b <= set(a), f"missing keys {keys_b - set(a)}"
    assert _strip(a["subjects"]) == _strip(b["subjects"])
    pa, pb = a["predicted_alltypes"], b["predicted_alltypes"]
    assert set(pa) == set(pb)
    for src in pb:
        assert set(pa[src]) == set(pb[src]), (src, set(pa[src]), set(pb[src]))
        for out, vb in pb[src].items():
            va = pa[src][out]
            if isinstance(vb, list) or (isinstance(vb, np.ndarray) and vb.dtype == object):
                va, vb = np.stack(list(va)), np.stack(list(vb))
            va, vb = np.asarray(va, dtype=np.float64), np.asarray(vb, dtype=np.float64)
            assert va.shape == vb.shape, (src, out, va.shape, vb.shape)
            assert np.array_equal(np.isnan(va), np.isnan(vb))
            scale = np.nanmax(np.abs(vb))
            err = np.nanmax(np.abs(va - vb)) / scale
            assert err <= rtol, f"{src}->{out}: relative error {err:.3g}"
    assert _strip(a["outputtypes"]) == _strip(b["outputtypes"])
    assert _strip(a["inputtypes"]) == _strip(b["inputtypes"])
