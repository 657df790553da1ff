"""``kraken run --format bids``, pipeline inputs and ``--edge-order``/``--impute-missing`` through CliRunner."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from ..helpers import FC, SC, TinyModel, make_tiny_model, random_connectomes, tri

runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("bidscli"))


@pytest.fixture
def inputs(tmp_path: Path, tiny: TinyModel) -> dict[str, Path]:
    return tiny.write_inputs(tmp_path / "in", 3)


def invoke(*args: str) -> Any:
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_bids_output_layout_sidecars_and_round_trip(tmp_path: Path, tiny: TinyModel,
                                                    inputs: dict[str, Path]) -> None:
    out = tmp_path / "deriv" / "kraken"
    res = invoke("run", *tiny.model_args(), *tiny.input_args(inputs), "--fusion", "--format", "bids",
                 "-o", str(out), "--json")
    assert res.exit_code == 0, res.output
    desc = json.loads((out / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "derivative" and desc["GeneratedBy"][0]["Name"] == "kraken"
    tsv = out / "sub-sub000" / "func" / "sub-sub000_atlas-fs86_meas-FCcorrHPF_desc-fusion_relmat.dense.tsv"
    assert tsv.is_file()
    assert (out / "sub-sub002" / "dwi" / "sub-sub002_atlas-fs86_meas-SCifod2actVN_desc-FCcorrfs86hpf_relmat.dense.tsv").is_file()
    side = json.loads(tsv.with_name(tsv.name.replace(".dense.tsv", ".json")).read_text())
    sha = hashlib.sha256(tiny.checkpoint.read_bytes()).hexdigest()
    assert side["CheckpointSHA256"] == [sha]
    assert side["Measure"] == "FCcorrHPF" and side["Directed"] is False and side["ValidDiagonal"] is False
    assert side["SourcesFused"] == [FC, SC] and side["Flavor"] == FC
    mat = np.loadtxt(tsv, delimiter="\t")
    assert mat.shape == (86, 86) and np.isnan(np.diag(mat)).all()

    # the same predictions as a .npz, for comparison
    npz = tmp_path / "p.npz"
    assert invoke("run", *tiny.model_args(), *tiny.input_args(inputs), "--fusion", "-o", str(npz)).exit_code == 0
    with np.load(npz) as z:
        want = z[f"predicted_alltypes/fusion/{FC}.npy"]
        subjects = list(z["subjects.npy"])
    np.testing.assert_allclose(tri(mat), want[0], rtol=1e-6)

    # round trip: kraken reads its own BIDS output (choosing one source with desc-)
    again = tmp_path / "again.npz"
    res = invoke("run", *tiny.model_args(), "-i", f"{out}:desc-fusion", "-o", str(again), "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert sorted(i["flavor"] for i in report["inputs"]) == sorted([FC, SC])
    with np.load(again) as z:
        assert list(z["subjects.npy"]) == subjects
    res = invoke("run", *tiny.model_args(), "-i", str(out), "-o", str(again))
    assert res.exit_code == 1 and "desc-" in res.output


def test_single_source_round_trips_through_bare_outdir(tmp_path: Path, tiny: TinyModel,
                                                       inputs: dict[str, Path]) -> None:
    out = tmp_path / "k"
    fc_only = ["-i", f"{FC}={inputs[FC]}"]
    assert invoke("run", *tiny.model_args(), *fc_only, "--format", "bids", "-o", str(out)).exit_code == 0
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert invoke("run", *tiny.model_args(), *fc_only, "-o", str(a)).exit_code == 0
    res = invoke("run", *tiny.model_args(), "-i", str(out), "--outputs", SC, "-o", str(b))
    assert res.exit_code == 0, res.output
    with np.load(a) as za, np.load(b) as zb:
        assert list(zb["subjects.npy"]) == list(za["subjects.npy"])
        # predicting SC from the predicted FC reads back exactly what was written (float32, 9 digits)
        assert zb[f"predicted_alltypes/{FC}/{SC}.npy"].shape == za[f"predicted_alltypes/{FC}/{SC}.npy"].shape
    with np.load(a) as za:
        fc_pred = za[f"predicted_alltypes/{FC}/{FC}.npy"]
    from kraken_cli.engine.io import read_input

    got = {s.flavor.name: s for s in read_input(str(out))}
    np.testing.assert_array_equal(np.asarray(got[FC].read(0, 3), dtype=np.float32), fc_pred)


def test_bids_usage_errors(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    base = ["run", *tiny.model_args(), *tiny.input_args(inputs), "--format", "bids"]
    res = invoke(*base)
    assert res.exit_code == 2 and "needs -o OUTDIR" in res.output
    res = invoke(*base, "-o", str(tmp_path / "{input}"))
    assert res.exit_code == 2 and "placeholder" in res.output
    res = invoke(*base, "-o", str(tmp_path / "x"), "--outputs", "encoded")
    assert res.exit_code == 2 and "encoded" in res.output
    res = invoke(*base, "-o", str(tmp_path / "x.mat"))
    assert res.exit_code == 2
    other = tmp_path / "xcp_d"
    other.mkdir()
    (other / "dataset_description.json").write_text('{"GeneratedBy": [{"Name": "xcp_d"}]}')
    res = invoke(*base, "-o", str(other))
    assert res.exit_code == 1 and "another pipeline" in res.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "x.mat").exists()
    assert [p.name for p in other.iterdir()] == ["dataset_description.json"]


def test_participant_label(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    out = tmp_path / "k"
    res = invoke("run", *tiny.model_args(), *tiny.input_args(inputs), "--format", "bids", "-o", str(out),
                 "--participant-label", "sub-sub001", "--outputs", SC)
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("sub-*")) == ["sub-sub001"]
    res = invoke("run", *tiny.model_args(), *tiny.input_args(inputs), "-o", str(tmp_path / "a.npz"),
                 "--participant-label", "nobody")
    assert res.exit_code == 2 and "matches none" in res.output


def _nilearn_vec(mats: np.ndarray) -> np.ndarray:
    r = mats.shape[-1]
    mask = np.tril(np.ones((r, r), dtype=bool))
    scale = np.ones((r, r))
    np.fill_diagonal(scale, math.sqrt(2))
    return (mats / scale)[:, mask]


def test_edge_order_nilearn_option(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    rng = np.random.default_rng(0)
    ts = rng.standard_normal((3, 300, 86)) + rng.standard_normal((3, 300, 1))
    mats = np.stack([np.corrcoef(t, rowvar=False) for t in ts])
    vec = tmp_path / "fc_vec.npy"
    np.save(vec, _nilearn_vec(mats))
    sq = tmp_path / "fc_sq.npy"
    np.save(sq, mats)
    res = invoke("run", *tiny.model_args(), "-i", f"{FC}={vec}", "-o", str(tmp_path / "bad.npz"))
    assert res.exit_code == 1 and "--edge-order nilearn" in res.output
    a, b = tmp_path / "a.npz", tmp_path / "b.npz"
    assert invoke("run", *tiny.model_args(), "-i", f"{FC}={vec}", "--edge-order", "nilearn",
                  "-o", str(a)).exit_code == 0
    assert invoke("run", *tiny.model_args(), "-i", f"{FC}={sq}", "-o", str(b)).exit_code == 0
    with np.load(a) as za, np.load(b) as zb:
        np.testing.assert_allclose(za[f"predicted_alltypes/{FC}/{SC}.npy"], zb[f"predicted_alltypes/{FC}/{SC}.npy"],
                                   rtol=1e-5, atol=1e-6)


def test_impute_missing_option(tmp_path: Path, tiny: TinyModel) -> None:
    mats = random_connectomes(3, 86, seed=3)
    mats[1, 4, :] = mats[1, :, 4] = np.nan
    root = tmp_path / "xcp_d"
    for i, m in enumerate(mats):
        f = root / f"sub-0{i}" / "func" / f"sub-0{i}_task-rest_seg-fs86_stat-pearsoncorrelation_relmat.tsv"
        f.parent.mkdir(parents=True)
        names = [f"r{k}" for k in range(86)]
        rows = ["Node\t" + "\t".join(names)] + [n + "\t" + "\t".join("n/a" if np.isnan(v) else f"{v:.6f}" for v in row)
                                             for n, row in zip(names, m)]
        f.write_text("\n".join(rows) + "\n")
    res = invoke("run", *tiny.model_args(), "-i", f"{FC}={root}", "-o", str(tmp_path / "p.npz"))
    assert res.exit_code == 1 and "parcels r4 (#5)" in res.output and "--impute-missing mean" in res.output
    res = invoke("run", *tiny.model_args(), "-i", f"{FC}={root}", "--impute-missing", "mean",
                 "-o", str(tmp_path / "p.npz"))
    assert res.exit_code == 0, res.output
    assert "imputed" in res.output


def _relmat(path: Path, m: np.ndarray) -> None:
    names = [f"ROI{k}" for k in range(m.shape[0])]
    rows = ["Node\t" + "\t".join(names)] + [n + "\t" + "\t".join(f"{v:.8f}" for v in row) for n, row in zip(names, m)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(rows) + "\n")


def derivatives(root: Path, subjects: list[str]) -> None:
    """XCP-D (fs86 and Glasser) and QSIRecon outputs for the same subjects."""
    import scipy.io

    fc = random_connectomes(len(subjects), 86, seed=1)
    sc = np.abs(random_connectomes(len(subjects), 86, seed=2))
    for i, s in enumerate(subjects):
        func = root / "xcp_d" / f"sub-{s}" / "func"
        _relmat(func / f"sub-{s}_task-rest_space-MNI_seg-fs86_stat-pearsoncorrelation_relmat.tsv", fc[i])
        _relmat(func / f"sub-{s}_task-rest_space-MNI_seg-Glasser_stat-pearsoncorrelation_relmat.tsv", fc[i][:50, :50])
        dwi = root / "qsirecon" / f"sub-{s}" / "dwi"
        dwi.mkdir(parents=True)
        scipy.io.savemat(dwi / f"sub-{s}_space-T1w_connectivity.mat",
                         {"atlas_fs86_sift_invnodevol_radius2_count_connectivity": sc[i],
                          "atlas_fs86_region_labels": np.array([f"ROI{k}" for k in range(86)], dtype=object)})
    (root / "xcp_d" / "dataset_description.json").write_text('{"GeneratedBy": [{"Name": "xcp_d"}]}')


def test_bids_app_mode(tmp_path: Path, tiny: TinyModel) -> None:
    deriv = tmp_path / "derivatives"
    derivatives(deriv, ["01", "02", "03"])
    out = deriv / "kraken"
    key = "atlas_fs86_sift_invnodevol_radius2_count_connectivity"
    args = ["run", *tiny.model_args(), "--bids", str(deriv), str(out), "-i", f"{FC}=seg-fs86", "-i", f"{SC}={key}"]
    res = invoke(*args, "--json")
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    used = {(d["dataset"], d["what"]): d["used_as"] for d in report["discovery"]}
    assert used[("xcp_d", "seg-fs86")] == f"{FC}={deriv / 'xcp_d'}:seg-fs86"
    assert used[("xcp_d", "seg-Glasser")] is None
    assert used[("qsirecon", "connectivity.mat")].endswith(f"qsirecon:{key}")
    assert report["n_subjects"] == 3
    assert (out / "sub-02" / "dwi" / f"sub-02_atlas-fs86_meas-SCifod2actVN_desc-{FC.replace('_', '')}_relmat.dense.tsv").is_file()
    # a second run leaves the first one's output (inside DERIV_DIR) out of its inputs
    res = invoke(*args, "--participant-label", "01")
    assert res.exit_code == 0, res.output
    assert "skipped" in res.output and "seg-Glasser" in res.output
    # nothing usable without flavor names: an error that says how to name them
    res = invoke("run", *tiny.model_args(), "--bids", str(deriv), str(tmp_path / "o2"))
    assert res.exit_code == 1 and "without a flavor name" in res.output and "FCcorr_fs86_" in res.output
    res = invoke(*args, "-o", str(tmp_path / "x.mat"))
    assert res.exit_code == 2


def test_bids_app_uses_kraken_relmats(tmp_path: Path, tiny: TinyModel) -> None:
    deriv = tmp_path / "d"
    mats = {FC: random_connectomes(2, 86, seed=5), SC: np.abs(random_connectomes(2, 86, seed=6))}
    for flavor, meas in ((FC, "FCcorrHPF"), (SC, "SCifod2actVN")):
        for i, s in enumerate(["a1", "b2"]):
            f = deriv / "collected" / f"sub-{s}" / f"sub-{s}_atlas-fs86_meas-{meas}_relmat.dense.tsv"
            f.parent.mkdir(parents=True, exist_ok=True)
            np.savetxt(f, mats[flavor][i], delimiter="\t")
    res = invoke("run", *tiny.model_args(), "--bids", str(deriv), str(tmp_path / "out"), "--json")
    assert res.exit_code == 0, res.output
    assert sorted(i["flavor"] for i in json.loads(res.stdout)["inputs"]) == sorted([FC, SC])


def test_adapt_reads_xcpd_with_impute(tmp_path: Path, tiny: TinyModel) -> None:
    mats = random_connectomes(3, 86, seed=8)
    mats[0, 7, :] = mats[0, :, 7] = np.nan
    root = tmp_path / "xcp_d"
    for i, m in enumerate(mats):
        names = [f"r{k}" for k in range(86)]
        rows = ["Node\t" + "\t".join(names)] + [n + "\t" + "\t".join("n/a" if np.isnan(v) else f"{v:.6f}" for v in row)
                                             for n, row in zip(names, m)]
        f = root / f"sub-0{i}" / "func" / f"sub-0{i}_seg-fs86_stat-pearsoncorrelation_relmat.tsv"
        f.parent.mkdir(parents=True)
        f.write_text("\n".join(rows) + "\n")
    args = ["adapt", "-c", str(tiny.checkpoint), "-t", str(tiny.transforms_file), "-i", f"{FC}={root}",
            "-o", str(tmp_path / "site.json"), "--mode", "meanshift"]
    res = invoke(*args)
    assert res.exit_code == 1 and "parcels r7 (#8)" in res.output
    res = invoke(*args, "--impute-missing", "mean", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["n_subjects"] == 3
