"""Upper triangle <-> square, edge counts, source validation and subject alignment."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kraken_cli.engine.connectome import (
    ArraySource,
    align_sources,
    check_finite,
    check_square,
    clean_subject_ids,
    n_edges,
    n_regions_from_edges,
    square_to_tri,
    tri_to_square,
    validate_source,
)
from kraken_cli.engine.errors import InputDataError
from kraken_cli.engine.flavors import resolve_flavor

from ..helpers import LogRecorder, random_connectomes, tri

FC = resolve_flavor("FCcorr_fs86_hpf")
SC = resolve_flavor("SCifod2act_fs86_volnorm")
CUSTOM = resolve_flavor("myparc", "SC")


def test_square_to_tri_matches_explicit_row_major_loop() -> None:
    m = np.arange(25, dtype=float).reshape(5, 5)
    expected = [m[i, j] for i in range(5) for j in range(i + 1, 5)]
    assert square_to_tri(m).tolist() == expected
    assert expected[:4] == [1, 2, 3, 4]  # (0,1), (0,2), ... row-major


def test_square_to_tri_stacks() -> None:
    mats = random_connectomes(3, 7, seed=1)
    np.testing.assert_array_equal(square_to_tri(mats), tri(mats))


def test_tri_to_square_explicit() -> None:
    v = np.array([1.0, 2.0, 3.0])  # R = 3
    sq = tri_to_square(v, diagonal=np.nan)
    expected = np.array([[np.nan, 1, 2], [1, np.nan, 3], [2, 3, np.nan]])
    np.testing.assert_array_equal(sq, expected)
    assert tri_to_square(v).trace() == 0


def test_tri_to_square_rejects_non_triangular_counts() -> None:
    with pytest.raises(InputDataError):
        tri_to_square(np.zeros((2, 4)))


@settings(max_examples=40, deadline=None)
@given(r=st.integers(2, 12), n=st.integers(1, 3), seed=st.integers(0, 1000))
def test_round_trip_property(r: int, n: int, seed: int) -> None:
    mats = random_connectomes(n, r, seed=seed)
    back = tri_to_square(square_to_tri(mats), diagonal=1.0)
    np.testing.assert_allclose(back, mats)


@pytest.mark.parametrize(("r", "e"), [(2, 1), (3, 3), (86, 3655), (268, 35778), (439, 96141)])
def test_edge_counts(r: int, e: int) -> None:
    assert n_edges(r) == e
    assert n_regions_from_edges(e) == r


@pytest.mark.parametrize("e", [0, 2, 4, 3654, 3656])
def test_non_triangular_counts(e: int) -> None:
    assert n_regions_from_edges(e) is None


def test_check_square_and_symmetry() -> None:
    m = random_connectomes(2, 5)
    check_square(m, where="x")
    with pytest.raises(InputDataError, match="square"):
        check_square(np.zeros((2, 5, 4)), where="x")
    bad = m.copy()
    bad[0, 1, 2] += 1.0
    with pytest.raises(InputDataError, match="symmetric") as ei:
        check_square(bad, where="f.mat")
    assert "f.mat" in ei.value.message and ei.value.hint
    tiny = m.copy()
    tiny[0, 1, 2] += 1e-9  # within tolerance
    check_square(tiny, where="x")


def test_check_finite_counts_bad_values() -> None:
    x = np.ones((3, 4))
    check_finite(x, where="x")
    x[0, 0], x[2, 1] = np.nan, np.inf
    with pytest.raises(InputDataError, match="2 values are NaN or Inf"):
        check_finite(x, where="x")


def test_clean_subject_ids() -> None:
    assert clean_subject_ids([100206.0, "0012", " 7 ", b"abc", "100307.0", 3]) == \
        ["100206", "0012", "7", "abc", "100307", "3"]


# -- sources and alignment ----------------------------------------------------------------------------

def _src(flavor, data, ids=None, file="f.mat"):  # type: ignore[no-untyped-def]
    return ArraySource(flavor, np.asarray(data, dtype=float), file=file, subjects=ids)


def test_validate_source_edge_count_names_atlas() -> None:
    with pytest.raises(InputDataError) as ei:
        validate_source(_src(FC, np.zeros((2, 3654))))
    msg = ei.value.message
    assert "3655" in msg and "3654" in msg and "fs86" in msg
    with pytest.raises(InputDataError, match="4005 edges \\(90 regions\\)"):
        validate_source(_src(FC, np.zeros((2, 4005))))


def test_validate_source_custom_atlas_takes_any_triangle() -> None:
    validate_source(_src(CUSTOM, np.zeros((2, 10))))
    with pytest.raises(InputDataError, match="fit no square"):
        validate_source(_src(CUSTOM, np.zeros((2, 11))))


def test_validate_source_ids() -> None:
    with pytest.raises(InputDataError, match="no subjects"):
        validate_source(_src(CUSTOM, np.zeros((0, 10))))
    with pytest.raises(InputDataError, match="2 subject ids for 3 rows"):
        validate_source(_src(CUSTOM, np.zeros((3, 10)), ["a", "b"]))
    with pytest.raises(InputDataError, match="duplicate subject ids \\['a'\\]"):
        validate_source(_src(CUSTOM, np.zeros((3, 10)), ["a", "b", "a"]))


def test_align_by_id_in_first_inputs_order() -> None:
    a = _src(FC, np.arange(3)[:, None] * np.ones((3, 3655)), ["s1", "s2", "s3"], "a.mat")
    data_b = np.array([3, 1, 2])[:, None] * np.ones((3, 3655))
    b = _src(SC, data_b, ["s3", "s1", "s2"], "b.mat")
    c = align_sources([a, b])
    assert c.subjects == ["s1", "s2", "s3"]
    assert c.read(SC.name)[:, 0].tolist() == [1, 2, 3]
    assert c.read(SC.name, 1, 3)[:, 0].tolist() == [2, 3]
    sub = c.subset(["s3", "s1"])
    assert sub.read(SC.name)[:, 0].tolist() == [3, 1]
    assert sub.read(FC.name)[:, 0].tolist() == [2, 0]
    with pytest.raises(InputDataError, match="not in the inputs"):
        c.subset(["s9"])


def test_align_without_ids() -> None:
    a = _src(FC, np.zeros((3, 3655)))
    b = _src(SC, np.zeros((3, 3655)))
    assert align_sources([a, b]).subjects == ["1", "2", "3"]
    with LogRecorder() as logs:
        c = align_sources([_src(FC, np.zeros((3, 3655)), ["x", "y", "z"], "a.mat"), _src(SC, np.zeros((3, 3655)),
                                                                                     file="b.mat")])
    assert c.subjects == ["x", "y", "z"]
    assert any("b.mat" in m and "position" in m for m in logs.messages(logging.WARNING))
    with pytest.raises(InputDataError, match="no ids"):
        align_sources([a, _src(SC, np.zeros((4, 3655)))])


def test_align_differing_ids_lists_differences() -> None:
    a = _src(FC, np.zeros((3, 3655)), ["s1", "s2", "s3"], "a.mat")
    b = _src(SC, np.zeros((3, 3655)), ["s1", "s2", "s4"], "b.mat")
    with pytest.raises(InputDataError) as ei:
        align_sources([a, b])
    msg = ei.value.message
    assert "a.mat" in msg and "b.mat" in msg and "s3" in msg and "s4" in msg


def test_align_same_flavor_twice() -> None:
    with pytest.raises(InputDataError, match="given twice"):
        align_sources([_src(FC, np.zeros((1, 3655)), file="a"), _src(FC, np.zeros((1, 3655)), file="b")])
    with pytest.raises(InputDataError, match="no inputs"):
        align_sources([])
