"""The one file-naming rule: run files, and the files beside a checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraken_cli.engine.naming import RUN_FILES, RunNames, release_kind, run_prefix, sibling


def test_every_run_file_is_a_sibling_of_the_checkpoint() -> None:
    names = RunNames("out/x", "SCFC_2flav_20261206_101010")
    ck = names.checkpoint(500)
    assert ck == Path("out/x_chkpt_SCFC_2flav_20261206_101010_ep000500.pt")
    for kind in RUN_FILES:
        if kind != "chkpt":
            assert sibling(ck, kind) == names.path(kind), kind
    assert run_prefix(ck) == "out/x"


@pytest.mark.parametrize("name,ioxfm", [
    ("kraken_chkpt_SCFC_fs86_pc256_ep002000.pt", "kraken_ioxfm_SCFC_fs86_pc256.npy"),
    ("a_chkpt_b_epoch1999.pt", "a_ioxfm_b.npy"),
    ("a_chkpt_b.pt", "a_ioxfm_b.npy"),
    ("old_checkpoint_b_ep000010.pt", "old_iox_b.npy"),  # the original's older naming
])
def test_transform_beside_a_checkpoint(name: str, ioxfm: str) -> None:
    assert sibling(Path("d") / name, "ioxfm") == Path("d") / ioxfm


def test_no_prefix_without_the_chkpt_tag() -> None:
    assert run_prefix("model.pt") is None
    assert RunNames(None, "s").path("log") is None and RunNames(None, "s").all_paths() == []


@pytest.mark.parametrize("name,kind", [("kraken_chkpt_x.pt", "checkpoint"), ("kraken_ioxfm_x.npy", "transform"),
                                       ("kraken_regtarget_FCpcorr_fs86_hpf_x.mat", "regtarget"),
                                       ("subject_splits_993.mat", "split"), ("kraken_target_x.mat", "target")])
def test_release_kinds(name: str, kind: str) -> None:
    assert release_kind(name) == kind
