"""Subject lists (``--subjects FILE|ID,...``) and the original's train/val/test split files.

A split file is a ``.mat`` with ``subjects`` and the 0-based index vectors ``subjidx_train``,
``subjidx_val`` and ``subjidx_test`` (UPSTREAM 9.1); missing index vectors read as empty.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..connectome import clean_subject_ids
from ..errors import InputDataError
from ._atomic import atomic_path

SPLIT_NAMES = ("train", "val", "test", "all", "trainval")
_FILE_SUFFIXES = (".txt", ".tsv", ".csv", ".lst", ".list", ".mat", ".ids")


def _load_tree(path: Path) -> tuple[Any, Any]:
    """(tree, closeable or None) of a v5 or v7.3 .mat file."""
    from ._mat import load_mat_v5

    with open(path, "rb") as fh:
        head = fh.read(1024)
    if head[:10] == b"MATLAB 7.3" or head[:8] == b"\x89HDF\r\n\x1a\n" or head[512:520] == b"\x89HDF\r\n\x1a\n":
        from ._hdf5 import open_tree

        f, tree = open_tree(path, where=str(path))
        return tree, f
    return load_mat_v5(path, where=str(path)), None


@contextlib.contextmanager
def mat_with_subjects(path: str | os.PathLike[str], *, what: str, option: str,
                      hint: str) -> Iterator[tuple[Any, list[str]]]:
    """The tree of a v5 or v7.3 ``.mat`` file that lists ``subjects``, and those ids; closed on exit.

    ``what`` names the file in messages (``split file``), ``option`` the option that gave it.
    """
    from ._mat import subject_ids

    p = Path(path)
    if not p.is_file():
        raise InputDataError(f"{what} {p} not found", hint=f"check the {option} path")
    tree, closer = _load_tree(p)
    try:
        subj = tree.get("subjects", tree.get("subject"))
        ids = subject_ids(subj) if subj is not None else None
        if not ids:
            raise InputDataError(f"{p}: no 'subjects' in the {what}", hint=hint)
        yield tree, ids
    finally:
        if closer is not None:
            closer.close()


def _ids_checked(ids: list[str], *, where: str) -> list[str]:
    ids = [s for s in ids if s]
    if not ids:
        raise InputDataError(f"{where}: no subject ids", hint="give one id per line, or ID,ID,... on the command line")
    seen: set[str] = set()
    dup = sorted({s for s in ids if s in seen or seen.add(s)})  # type: ignore[func-returns-value]
    if dup:
        raise InputDataError(f"{where}: duplicate subject ids {dup[:5]}", hint="list each subject once")
    return ids


def read_subject_list(text: str) -> list[str]:
    """Subject ids from ``--subjects``: a text file (one id per line), a .mat, or ``ID,ID,...``.

    Parameters
    ----------
    text : str
        A path to a text file (one id per line; ``#`` comments and blank lines skipped), a path
        to a ``.mat`` with ``subjects``/``subject``, or comma-separated ids.

    Returns
    -------
    list of str
        Cleaned ids (``100206.0`` -> ``100206``), in the given order.

    Raises
    ------
    InputDataError
        For a missing or empty file, no ids, or duplicate ids.

    Examples
    --------
    >>> read_subject_list("100206, 100307")
    ['100206', '100307']
    """
    from ._mat import subject_ids

    raw = text.strip()
    path = Path(os.path.expanduser(raw)) if raw else Path()
    if raw and path.is_file():
        where = str(path)
        if path.suffix.lower() == ".mat":
            tree, closer = _load_tree(path)
            try:
                value = tree.get("subjects", tree.get("subject"))
                if value is None:
                    raise InputDataError(f"{where}: no 'subjects' or 'subject' variable; it holds {list(tree)[:10]}",
                                         hint="save the ids as a cell array named 'subjects'")
                ids = subject_ids(value) or []
            finally:
                if closer is not None:
                    closer.close()
            return _ids_checked(ids, where=where)
        try:
            lines = path.read_text(encoding="utf-8-sig").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputDataError(f"{where}: cannot read the subject list ({exc})",
                                 hint="give a text file with one subject id per line") from exc
        ids = [ln.split("\t")[0].split(",")[0].strip() for ln in lines
               if ln.strip() and not ln.lstrip().startswith("#")]
        return _ids_checked(clean_subject_ids(ids), where=where)
    if raw and (os.sep in raw or raw.lower().endswith(_FILE_SUFFIXES)) and "," not in raw:
        raise InputDataError(f"subject list file {raw} not found",
                             hint="give an existing file, or comma-separated ids like 100206,100307")
    ids = clean_subject_ids([s for s in raw.split(",")])
    return _ids_checked(ids, where="--subjects")


@dataclass(frozen=True, eq=False)
class SubjectSplit:
    """Train/validation/test subjects, as in the original's split files.

    Attributes
    ----------
    subjects : list of str
        Every subject, in file order.
    train, val, test : ndarray of int
        0-based indices into ``subjects``.
    """

    subjects: list[str]
    train: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    val: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))
    test: npt.NDArray[np.intp] = field(default_factory=lambda: np.zeros(0, dtype=np.intp))

    def indices(self, name: str) -> npt.NDArray[np.intp]:
        """0-based indices of split ``name`` (train, val, test, all or trainval)."""
        key = name.strip().lower()
        if key == "all":
            return np.arange(len(self.subjects), dtype=np.intp)
        if key == "trainval":
            return np.concatenate([self.train, self.val]).astype(np.intp)
        if key in ("train", "val", "test"):
            return np.asarray(getattr(self, key), dtype=np.intp)
        raise InputDataError(f"unknown split {name!r}", hint=f"choose one of {', '.join(SPLIT_NAMES)}")

    def select(self, name: str) -> list[str]:
        """Subject ids of split ``name`` (train, val, test, all or trainval).

        Raises
        ------
        InputDataError
            For an unknown or empty split.
        """
        idx = self.indices(name)
        if idx.size == 0:
            raise InputDataError(f"split {name!r} is empty", hint="choose another --split, e.g. test or all")
        return [self.subjects[i] for i in idx]


def _indices(value: Any, n: int, *, key: str, where: str) -> npt.NDArray[np.intp]:
    from ._mat import to_numpy

    if value is None or isinstance(value, str):
        return np.zeros(0, dtype=np.intp)
    arr = np.asarray(to_numpy(value, where=where), dtype=np.float64).ravel()
    if arr.size and (not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr))):
        raise InputDataError(f"{where}: {key} holds non-integer indices", hint="indices are 0-based integers")
    idx = arr.astype(np.intp)
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise InputDataError(f"{where}: {key} has indices outside 0..{n - 1}",
                             hint="split indices are 0-based positions in 'subjects'")
    return idx


def read_split_file(path: str | os.PathLike[str]) -> SubjectSplit:
    """Read the original's split ``.mat`` (v5 or v7.3).

    Raises
    ------
    InputDataError
        For a missing/unreadable file, missing ``subjects``, or out-of-range indices.
    """
    hint = "a split file holds subjects, subjidx_train, subjidx_val, subjidx_test"
    with mat_with_subjects(path, what="split file", option="--split-file", hint=hint) as (tree, ids):
        parts = {k: _indices(tree.get(f"subjidx_{k}"), len(ids), key=f"subjidx_{k}", where=str(path))
                 for k in ("train", "val", "test")}
    return SubjectSplit(ids, parts["train"], parts["val"], parts["test"])


def write_split_file(path: str | os.PathLike[str], split: SubjectSplit) -> None:
    """Write a split in the original's layout (MATLAB v5, atomically)."""
    import scipy.io

    cell = np.empty((1, len(split.subjects)), dtype=object)
    for i, s in enumerate(split.subjects):
        cell[0, i] = s
    data = {
        "subjects": cell,
        "subjidx_train": np.asarray(split.train, dtype=np.int64).reshape(1, -1),
        "subjidx_val": np.asarray(split.val, dtype=np.int64).reshape(1, -1),
        "subjidx_test": np.asarray(split.test, dtype=np.int64).reshape(1, -1),
    }
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        scipy.io.savemat(fh, data, format="5", do_compression=True)
