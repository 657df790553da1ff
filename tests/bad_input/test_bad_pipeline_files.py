"""Malformed pipeline outputs and BIDS options: the same contract as ``test_bad_input.py``.

Exit 1 (2 for usage errors), an ``Error:`` naming the culprit and a ``Hint:``, no traceback, nothing on
stdout and no file left behind. (Cases for the pipeline readers of issue 16; listed in README.md here.)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from ..helpers import FC, SC, random_connectomes
from .test_bad_input import Kit, out_args, refused, snapshot
from .test_bad_input import kit as kit  # the fixture, re-exported for pytest


def _relmat(path: Path, m: np.ndarray, names: list[str] | None = None) -> Path:
    names = names or [f"R{k}" for k in range(m.shape[0])]
    rows = ["Node\t" + "\t".join(names)] + [n + "\t" + "\t".join(f"{v:.6f}" for v in row) for n, row in zip(names, m)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")
    return path


def test_labelled_matrix_with_text_cell(kit: Kit, tmp_path: Path) -> None:
    f = _relmat(tmp_path / "m.tsv", random_connectomes(1, 86)[0])
    lines = f.read_text().splitlines()
    cells = lines[3].split("\t")
    cells[5] = "oops"
    lines[3] = "\t".join(cells)
    f.write_text("\n".join(lines) + "\n")
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={f}", *out_args(tmp_path))
    refused(res, 1, ["m.tsv", "cannot read the labelled matrix", "oops"], tmp_path, before)


def test_xcpd_node_labels_differ(kit: Kit, tmp_path: Path) -> None:
    mats = random_connectomes(2, 86)
    root = tmp_path / "xcp_d"
    _relmat(root / "sub-01" / "func" / "sub-01_seg-fs86_stat-pearsoncorrelation_relmat.tsv", mats[0])
    _relmat(root / "sub-02" / "func" / "sub-02_seg-fs86_stat-pearsoncorrelation_relmat.tsv", mats[1],
            [f"X{k}" for k in range(86)])
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={root}", *out_args(tmp_path))
    refused(res, 1, ["sub-02_seg-fs86", "node labels differ"], tmp_path, before)


def test_qsirecon_key_holds_text(kit: Kit, tmp_path: Path) -> None:
    f = tmp_path / "sub-01_connectivity.mat"
    scipy.io.savemat(f, {"atlas_fs86_count_connectivity": "not a matrix"})
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{SC}={f}:atlas_fs86_count_connectivity", *out_args(tmp_path))
    refused(res, 1, ["sub-01_connectivity.mat", "not a numeric matrix"], tmp_path, before)


def test_nilearn_vector_of_wrong_length(kit: Kit, tmp_path: Path) -> None:
    f = tmp_path / "vec.npy"
    np.save(f, np.zeros((3, 3655 + 86 + 1)))
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={f}", "--edge-order", "nilearn", *out_args(tmp_path))
    refused(res, 1, ["vec.npy", "not a vectorized R x R matrix"], tmp_path, before)


def test_unknown_edge_order_and_impute(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    refused(kit.run(*kit.good_args(), "--edge-order", "tril", *out_args(tmp_path)), 2, [], tmp_path, before,
            usage=True)
    refused(kit.run(*kit.good_args(), "--impute-missing", "zero", *out_args(tmp_path)), 2, [], tmp_path, before,
            usage=True)


def test_bids_output_onto_a_file(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "preds").write_text("a file")
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--format", "bids", "-o", str(tmp_path / "preds"))
    refused(res, 1, ["preds", "is a file"], tmp_path, before)


def test_bids_dir_missing(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run("--bids", str(tmp_path / "absent"), str(tmp_path / "out"))
    refused(res, 1, ["absent", "not a folder"], tmp_path, before)


def test_bids_selector_matches_several_datasets(kit: Kit, tmp_path: Path) -> None:
    m = random_connectomes(1, 86)[0]
    for ds in ("xcp_d_a", "xcp_d_b"):
        _relmat(tmp_path / "d" / ds / "sub-01" / "func" / "sub-01_seg-fs86_stat-pearsoncorrelation_relmat.tsv", m)
    before = snapshot(tmp_path)
    res = kit.run("--bids", str(tmp_path / "d"), str(tmp_path / "out"), "-i", f"{FC}=seg-fs86")
    refused(res, 2, ["several datasets", "xcp_d_a", "xcp_d_b"], tmp_path, before)
