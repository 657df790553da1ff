"""The real example files in ``../shared`` (skipped when that folder is absent)."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.connectome import square_to_tri
from kraken_cli.engine.io import load_cohort, read_input

FLAVORS5 = ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCifod2act_fs86_volnorm",
            "SCsdstream_fs86_volnorm"]


@pytest.fixture(scope="module")
def example(shared_dir: Path) -> Path:
    return shared_dir / "data" / "hcp_fs86_example"


def test_bids_zip_20_subjects_5_flavors(example: Path) -> None:
    z = example / "example_bidsdir_5flav_20subj.zip"
    cohort = load_cohort([str(z)])
    assert sorted(cohort.flavors) == FLAVORS5
    assert cohort.n_subjects == 20
    with zipfile.ZipFile(z) as zf:
        rows = list(csv.DictReader(io.StringIO(zf.read("participants.tsv").decode()), delimiter="\t"))
        first = np.loadtxt(io.BytesIO(zf.read(
            f"sub-{rows[0]['subject']}_atlas-fs86_meas-FCcorrHPF_relmat.dense.tsv")), delimiter="\t")
    assert cohort.subjects == [r["subject"] for r in rows]
    data = cohort.read("FCcorr_fs86_hpf", 0, 1)
    assert data.shape == (1, 3655)
    np.testing.assert_allclose(data[0], square_to_tri(first))


def test_mat_files_10_subjects(example: Path) -> None:
    (fc,) = read_input(str(example / "exampledata_10subj_FCcorr_fs86_hpf.mat"))
    (sc,) = read_input(str(example / "exampledata_10subj_SCifod2act_fs86_volnorm.mat"))
    assert (fc.flavor.name, sc.flavor.name) == ("FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm")
    assert fc.subjects == [f"subj{i:02d}" for i in range(1, 11)] == sc.subjects
    raw = scipy.io.loadmat(example / "exampledata_10subj_FCcorr_fs86_hpf.mat")["data"]
    np.testing.assert_allclose(fc.read(3, 4)[0], square_to_tri(raw[0, 3]))
    cohort = load_cohort([str(example / "exampledata_10subj_FCcorr_fs86_hpf.mat"),
                          str(example / "exampledata_10subj_SCifod2act_fs86_volnorm.mat")])
    assert cohort.n_subjects == 10


def test_multi_flavor_mat(example: Path) -> None:
    f = example / "exampledata_10subj_fs86_inputs.mat"
    srcs = read_input(str(f))
    assert sorted(s.flavor.name for s in srcs) == FLAVORS5
    assert all(s.n_subjects == 10 and s.n_features == 3655 for s in srcs)
    (one,) = read_input(f"FCcorr_fs86_hpf={f}")
    (single,) = read_input(str(example / "exampledata_10subj_FCcorr_fs86_hpf.mat"))
    np.testing.assert_array_equal(one.read(0, 10), single.read(0, 10))


def test_conformance_inputs(shared_dir: Path) -> None:
    files = sorted((shared_dir / "conformance" / "P" / "inputs").glob("*.mat"))
    assert len(files) == 6
    cohort = load_cohort([str(f) for f in files])
    assert cohort.flavors == [f.stem for f in files]
    assert cohort.n_subjects == 12
    raw = scipy.io.loadmat(files[0])
    np.testing.assert_allclose(cohort.read(files[0].stem), square_to_tri(raw["data"]))
    assert cohort.subjects[0] == str(raw["subjects"][0, 0][0])
