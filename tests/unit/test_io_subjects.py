"""``--subjects`` lists and the original's split files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.errors import InputDataError
from kraken_cli.engine.io import Mat73Writer, SubjectSplit, read_split_file, read_subject_list, write_split_file


def test_subject_list_forms(tmp_path: Path) -> None:
    assert read_subject_list("100206, 0012 ,100307.0") == ["100206", "0012", "100307"]
    assert read_subject_list("abc") == ["abc"]
    f = tmp_path / "ids.txt"
    f.write_text("# my subjects\n100206\n\n0012\t extra\n")
    assert read_subject_list(str(f)) == ["100206", "0012"]
    m = tmp_path / "ids.mat"
    scipy.io.savemat(m, {"subjects": np.array([["a", "b"]], dtype=object)})
    assert read_subject_list(str(m)) == ["a", "b"]
    h = tmp_path / "ids73.mat"
    with Mat73Writer(h) as w:
        w.write("subject", ["x", "y"])
    assert read_subject_list(str(h)) == ["x", "y"]


def test_subject_list_errors(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="not found"):
        read_subject_list(str(tmp_path / "missing.txt"))
    with pytest.raises(InputDataError, match="duplicate"):
        read_subject_list("a,b,a")
    with pytest.raises(InputDataError, match="no subject ids"):
        read_subject_list(" , ")
    empty = tmp_path / "e.txt"
    empty.write_text("\n# nothing\n")
    with pytest.raises(InputDataError, match="no subject ids"):
        read_subject_list(str(empty))
    m = tmp_path / "n.mat"
    scipy.io.savemat(m, {"other": 1})
    with pytest.raises(InputDataError, match="subjects"):
        read_subject_list(str(m))


def test_split_round_trip(tmp_path: Path) -> None:
    split = SubjectSplit(["s0", "s1", "0002", "s3", "s4"], np.array([3, 0]), np.array([4]), np.array([1, 2]))
    f = tmp_path / "split.mat"
    write_split_file(f, split)
    back = read_split_file(f)
    assert back.subjects == split.subjects
    assert back.select("train") == ["s3", "s0"]
    assert back.select("val") == ["s4"]
    assert back.select("test") == ["s1", "0002"]
    assert back.select("trainval") == ["s3", "s0", "s4"]
    assert back.select("all") == split.subjects
    raw = scipy.io.loadmat(f)
    assert set(raw) >= {"subjects", "subjidx_train", "subjidx_val", "subjidx_test"}
    assert raw["subjidx_train"].dtype.kind == "i"
    with pytest.raises(InputDataError, match="unknown split"):
        back.select("holdout")


def test_split_errors_and_v73(tmp_path: Path) -> None:
    f = tmp_path / "bad.mat"
    scipy.io.savemat(f, {"subjects": np.array([["a", "b"]], dtype=object), "subjidx_train": np.array([[0, 5]])})
    with pytest.raises(InputDataError, match="outside"):
        read_split_file(f)
    g = tmp_path / "nosubj.mat"
    scipy.io.savemat(g, {"subjidx_train": np.array([[0]])})
    with pytest.raises(InputDataError, match="subjects"):
        read_split_file(g)
    with pytest.raises(InputDataError, match="not found"):
        read_split_file(tmp_path / "none.mat")
    h = tmp_path / "s73.mat"
    with Mat73Writer(h) as w:
        w.write("subjects", ["a", "b", "c"])
        w.write("subjidx_train", np.array([[2.0, 0.0]]))
        w.write("subjidx_test", np.array([[1.0]]))
    split = read_split_file(h)
    assert split.select("train") == ["c", "a"] and split.select("test") == ["b"]
    with pytest.raises(InputDataError, match="empty"):
        split.select("val")


def test_reference_split(shared_dir: Path) -> None:
    split = read_split_file(shared_dir / "conformance/P/reference_subjsplit.mat")
    assert len(split.subjects) == 320
    assert (split.train.size, split.val.size, split.test.size) == (230, 26, 64)
    assert split.subjects[0] == "sub0000"
    assert not set(split.select("train")) & set(split.select("test"))
