"""Property tests: spec parsing, triangle round trips, and reader round trips on random data."""

from __future__ import annotations

import string
import tempfile
from pathlib import Path

import numpy as np
import scipy.io
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from kraken_cli.engine.connectome import square_to_tri, tri_to_square
from kraken_cli.engine.flavors import FlavorSpec
from kraken_cli.engine.io import Mat73Writer, read_input

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

flavor_names = st.text(string.ascii_letters + string.digits + "_", min_size=1, max_size=20)
path_text = st.text(string.ascii_letters + string.digits + "=/._-@ ", min_size=1, max_size=30).filter(
    lambda p: p.strip() == p)


@SETTINGS
@given(flavor=flavor_names, group=st.sampled_from([None, "SC", "FC", "sc", "fc"]), path=path_text)
def test_flavor_spec_parse(flavor: str, group: str | None, path: str) -> None:
    text = flavor + (f"@{group}" if group else "") + "=" + path
    spec = FlavorSpec.parse(text)
    assert spec.flavor == flavor
    assert spec.group == (group.upper() if group else None)
    assert spec.path == path


@SETTINGS
@given(path=path_text)
def test_flavor_spec_bare_path_with_equals(path: str) -> None:
    spec = FlavorSpec.parse("some dir/" + path)
    assert spec.flavor is None and spec.path == "some dir/" + path


@st.composite
def sym_mats(draw: st.DrawFn, max_subjects: int = 4, min_regions: int = 3) -> np.ndarray:
    n = draw(st.integers(1, max_subjects))
    r = draw(st.integers(min_regions, 8))
    a = draw(hnp.arrays(np.float64, (n, r, r), elements=st.floats(-1e3, 1e3, allow_nan=False, width=32)))
    return (a + np.swapaxes(a, 1, 2)) / 2


@SETTINGS
@given(mats=sym_mats())
def test_tri_square_round_trip(mats: np.ndarray) -> None:
    tri = square_to_tri(mats)
    assert tri.shape == (mats.shape[0], mats.shape[1] * (mats.shape[1] - 1) // 2)
    back = tri_to_square(tri)
    np.testing.assert_array_equal(square_to_tri(back), tri)
    off = ~np.eye(mats.shape[1], dtype=bool)
    np.testing.assert_array_equal(back[:, off], mats[:, off])


ids_strategy = st.lists(
    st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=8), min_size=4, max_size=4, unique=True)


@SETTINGS
@given(mats=sym_mats(min_regions=5), ids=ids_strategy, fmt=st.sampled_from(["csv", "tsv", "npy", "mat", "mat73"]))
def test_reader_round_trip(mats: np.ndarray, ids: list[str], fmt: str) -> None:
    n = mats.shape[0]
    ids = ids[:n]
    edges = square_to_tri(mats)
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / f"data.{'mat' if fmt == 'mat73' else fmt}"
        if fmt in ("csv", "tsv"):
            sep = "," if fmt == "csv" else "\t"
            lines = [sep.join(["subject"] + [f"e{i}" for i in range(edges.shape[1])])]
            lines += [sep.join([s] + [repr(float(v)) for v in row]) for s, row in zip(ids, edges)]
            f.write_text("\n".join(lines) + "\n")
            want_ids: list[str] | None = ids
        elif fmt == "npy":
            np.save(f, mats)
            want_ids = None
        elif fmt == "mat":
            cell = np.empty((1, n), dtype=object)
            cell[0, :] = ids
            scipy.io.savemat(f, {"data": mats, "subjects": cell})
            want_ids = ids
        else:
            with Mat73Writer(f) as w:
                w.write("data", mats)
                w.write("subjects", ids)
            want_ids = ids
        (src,) = read_input(f"test@SC={f}")
        assert src.subjects == want_ids
        np.testing.assert_array_equal(src.read(0, n), edges)
