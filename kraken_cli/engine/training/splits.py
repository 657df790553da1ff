"""Train / validation / test subject splits, reproducing the original's random split (UPSTREAM 7.1).

The original draws ``N`` uniform numbers after ``np.random.seed(0)``, orders subjects by
``argsort`` of those draws and keeps the first ``int(N * frac)`` for training. It splits twice:
trainval/test with ``trainval_frac``, then train/val *within trainval* with ``1 - val_frac``.
For 320 subjects with the defaults (0.8, 0.1) that gives 230 / 26 / 64 subjects, exactly the
split in ``conformance/P/reference_subjsplit.mat``. :func:`random_split_indices` uses a private
``numpy.random.RandomState(seed)``, which yields the same numbers without touching numpy's
global state.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ..errors import InputDataError, TrainingError
from ..io.subjects import SubjectSplit

IntArray = npt.NDArray[np.intp]


def _random_train_test(n: int, train_frac: float, seed: int) -> tuple[IntArray, IntArray]:
    order = np.argsort(np.random.RandomState(seed).random_sample(n)).astype(np.intp)
    n_train = int(n * train_frac)
    return order[:n_train], order[n_train:]


def random_split_indices(n_subjects: int, trainval_frac: float = 0.8, val_frac: float = 0.1,
                         seed: int = 0) -> tuple[IntArray, IntArray, IntArray]:
    """The original's two-stage random split as 0-based index arrays.

    Parameters
    ----------
    n_subjects : int
    trainval_frac : float
        Fraction of subjects used for training + validation; the rest is test.
    val_frac : float
        Fraction of train + validation used for validation.
    seed : int
        Seed of both stages (the original always uses 0).

    Returns
    -------
    train, val, test : ndarray of int
        Indices in draw order (not sorted), as the original stores them.

    Examples
    --------
    >>> [len(a) for a in random_split_indices(320)]
    [230, 26, 64]
    >>> [len(a) for a in random_split_indices(100)]
    [72, 8, 20]
    """
    trainval, test = _random_train_test(n_subjects, trainval_frac, seed)
    inner_train, inner_val = _random_train_test(len(trainval), 1 - val_frac, seed)
    return trainval[inner_train], trainval[inner_val], test


def random_split(subjects: Sequence[str], trainval_frac: float = 0.8, val_frac: float = 0.1,
                 seed: int = 0) -> SubjectSplit:
    """A :class:`~kraken_cli.engine.io.subjects.SubjectSplit` of ``subjects`` (see :func:`random_split_indices`)."""
    train, val, test = random_split_indices(len(subjects), trainval_frac, val_frac, seed)
    return SubjectSplit(list(subjects), train, val, test)


def align_split(split: SubjectSplit, subjects: Sequence[str]) -> tuple[IntArray, IntArray, IntArray]:
    """Train/val/test indices of a split file expressed as rows of a cohort with ``subjects``.

    Subjects are matched by id, so the cohort may be in another order than the split file.

    Raises
    ------
    InputDataError
        When a split subject is missing from the cohort.
    TrainingError
        When the split has fewer than 2 training subjects.
    """
    pos = {s: i for i, s in enumerate(subjects)}
    out = []
    for name in ("train", "val", "test"):
        ids = [split.subjects[i] for i in np.asarray(getattr(split, name), dtype=np.intp)]
        missing = [s for s in ids if s not in pos]
        if missing:
            raise InputDataError(
                f"{len(missing)} {name} subjects of the split file are not in the inputs, e.g. {missing[:5]}",
                hint="the split file must list subjects present in every -i input")
        out.append(np.array([pos[s] for s in ids], dtype=np.intp))
    if out[0].size < 2:
        raise TrainingError(f"the split has {out[0].size} training subjects; at least 2 are needed",
                            hint="use a split file with more training subjects, or a larger --trainval-frac")
    return out[0], out[1], out[2]
