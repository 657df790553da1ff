"""The original's seed-0 random split (UPSTREAM 7.1) and split-file alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kraken_cli.engine.errors import InputDataError, TrainingError
from kraken_cli.engine.io.subjects import SubjectSplit, read_split_file
from kraken_cli.engine.training.splits import align_split, random_split, random_split_indices

REFERENCE = Path(__file__).resolve().parents[3] / "shared" / "conformance" / "P" / "reference_subjsplit.mat"


@pytest.mark.skipif(not REFERENCE.exists(), reason="shared conformance data not available")
def test_reproduces_reference_split_exactly() -> None:
    ref = read_split_file(REFERENCE)
    tr, va, te = random_split_indices(320)
    assert np.array_equal(tr, ref.train)
    assert np.array_equal(va, ref.val)
    assert np.array_equal(te, ref.test)


@pytest.mark.parametrize("n, sizes", [(100, (72, 8, 20)), (60, (43, 5, 12)), (320, (230, 26, 64))])
def test_split_sizes(n: int, sizes: tuple[int, int, int]) -> None:
    parts = random_split_indices(n)
    assert tuple(len(p) for p in parts) == sizes
    assert sorted(np.concatenate(parts).tolist()) == list(range(n))


def test_does_not_touch_global_numpy_state() -> None:
    state = np.random.get_state()
    random_split_indices(50, 0.7, 0.2, seed=3)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_random_split_object_and_alignment_by_id() -> None:
    subjects = [f"s{i}" for i in range(30)]
    sp = random_split(subjects, 0.8, 0.25)
    assert isinstance(sp, SubjectSplit)
    shuffled = list(reversed(subjects))
    tr, va, te = align_split(sp, shuffled)
    assert [shuffled[i] for i in tr] == sp.select("train")
    assert [shuffled[i] for i in te] == sp.select("test")
    assert len(va) == len(sp.val)


def test_alignment_errors() -> None:
    sp = SubjectSplit(["a", "b", "c"], np.array([0, 1]), np.array([2]), np.array([], dtype=np.intp))
    with pytest.raises(InputDataError, match="not in the inputs"):
        align_split(sp, ["a", "b"])
    small = SubjectSplit(["a", "b"], np.array([0]), np.array([1]))
    with pytest.raises(TrainingError):
        align_split(small, ["a", "b"])
