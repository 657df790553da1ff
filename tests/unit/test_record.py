"""Training records: reading the original's trainrecord .mat, best epochs, and writing our own."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.errors import InputDataError
from kraken_cli.engine.training.record import EPOCH_FIELDS, PATH_EPOCH_FIELDS, TrainRecord, read_record, write_record

REF = Path("conformance") / "P" / "reference_trainrecord.mat"  # under the shared_dir fixture


@pytest.fixture(scope="module")
def ref(shared_dir: Path) -> TrainRecord:
    """The original's training record for conformance/P/model.pt (skipped without ../shared)."""
    if not (shared_dir / REF).is_file():
        pytest.skip(f"{shared_dir / REF} is not available")
    return read_record(shared_dir / REF)


def _same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a), np.asarray(b)
        return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


# --------------------------------------------------------------------------- the original's record


def test_reference_fields_and_shapes(ref: TrainRecord) -> None:
    assert ref.n_paths == 25 and ref.n_epochs == 40
    assert ref.path_names[0] == "FCcorr_fs86_hpf->FCcorr_fs86_hpf"  # stripped of the char-matrix padding
    assert ref.paths[1] == ("FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr")
    assert ref["input_name_list"] == ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf",
                                      "SCsdstream_fs86_volnorm", "SCifod2act_fs86_volnorm"]
    assert len(ref["subjects"]) == 320 and ref["subjects"][0] == "sub0000"
    assert ref["subjidx_val"].shape == (26,) and ref["subjidx_train"].shape == (230,)
    assert ref.n_subjects("val") == 26 and ref.n_subjects("train") == 230
    assert ref["nbepochs"] == 40 and ref["topN"] == 2 and ref.final_epoch == 39
    assert ref["trainpath_shuffle"] is True and ref["roundtrip"] is False
    assert ref["data_string"] == "SCFC_5flav_320subj_pc64_25paths"
    assert ref["command_args"][:2] == ["run_training.py", "--inputdata"]
    assert ref["hiddenlayers"].size == 0
    assert ref["epoch_timestamp"].shape == (40,)
    for name in ("loss_train", "corrloss_OrigScale_val", "avgcorr_resid_OrigScale_other_val",
                 "corrlossRank_OrigScale_pred2true_val", "corrloss_bidir_OrigScale_val"):
        assert ref[name].shape == (25, 40), name
    assert ref["latentsim_mse_val"].shape == (1, 40)
    assert dict(ref.items()).keys() == set(ref)  # mapping protocol


def test_reference_metric_access(ref: TrainRecord) -> None:
    top1 = ref.metric("top1acc")
    assert top1.shape == (25, 40)
    assert np.isfinite(top1).any(axis=0).nonzero()[0].tolist() == [0, 10, 20, 30, 39]  # OrigScale epochs
    assert top1[0, 39] == pytest.approx(8 / 26)
    assert np.isfinite(ref.metric("top1acc", origscale=False)).all()
    assert np.array_equal(ref.metric("topnacc"), ref["corrlossN_OrigScale_val"], equal_nan=True)
    assert np.array_equal(ref.metric("r2", "val"), ref["explainedvar_OrigScale_val"], equal_nan=True)
    assert np.array_equal(ref.metric("loss", "train"), ref["loss_train"])
    # the 1-based mean rank is 1 + (1 - percentile) * n
    np.testing.assert_allclose(ref.metric("avgrank_mean", origscale=False),
                               1 + (1 - ref["corrlossRank_val"]) * 26)
    np.testing.assert_allclose(ref.metric("avgrank_mean")[:, 39], 1 + (1 - ref["corrlossRank_OrigScale_val"][:, 39]) * 26)
    # bidir is recomputed from both directions (the original's field misses the final epoch)
    bidir = ref.metric("top1accx")
    np.testing.assert_allclose(bidir, (ref["corrloss_OrigScale_val"] + ref["corrloss_OrigScale_pred2true_val"]) / 2)
    filled = np.isfinite(ref["corrloss_bidir_OrigScale_val"])
    np.testing.assert_allclose(bidir[filled], ref["corrloss_bidir_OrigScale_val"][filled])
    assert np.isfinite(bidir[:, 39]).all()
    with pytest.raises(KeyError):
        ref.metric("avgcorr_resid", origscale=False)  # never recorded in transformed space


def test_reference_best_epochs(ref: TrainRecord) -> None:
    for metric in ("top1acc", "topNacc", "avgrank", "avgcorr_resid"):
        assert ref.best_epoch(metric) == 39, metric  # the heatmap's "ep40"
    assert ref.best_epoch("loss") == int(np.argmin(ref["loss_val"].mean(axis=0)))
    assert ref.best_epoch("avgrank_mean", origscale=False) == int(np.argmin(ref["avgrank_val"].mean(axis=0)))
    per = ref.best_epoch("avgrank", per_path=True)
    assert per.shape == (25,) and set(per.tolist()) <= {0, 10, 20, 30, 39}


def test_best_epoch_interpolates_nans_over_epochs() -> None:
    rec = TrainRecord.empty(["A->A", "A->B"], 3)
    # path 0 only at epochs 0 and 2: interpolated to [0, .5, 1] -> means [.25, .7, .8] -> epoch 2;
    # without interpolation epoch 1 would win (mean of path 1 alone, .9)
    rec["corrloss_OrigScale_val"][:] = [[0.0, np.nan, 1.0], [0.5, 0.9, 0.6]]
    assert rec.best_epoch("top1acc") == 2
    assert rec.best_epoch("top1acc", per_path=True).tolist() == [2, 1]
    assert rec.best_epoch("top1acc", mode="min") == 0


def test_best_epoch_edge_cases() -> None:
    rec = TrainRecord.empty(["A->A", "A->B"], 4)
    assert rec.best_epoch("top1acc") is None
    rec.set_metrics(1, {"top1acc": [0.5, np.nan]}, origscale=True)
    # epochs 0, 2, 3 are extrapolated flat but were never computed: only epoch 1 can win
    assert rec.best_epoch("top1acc") == 1
    assert rec.best_epoch("top1acc", per_path=True).tolist() == [1, -1]
    with pytest.raises(ValueError):
        rec.best_epoch("top1acc", mode="middle")


# --------------------------------------------------------------------------- writing


def test_new_record_round_trip(tmp_path: Path) -> None:
    names = ["FCcorr_fs86_hpf->FCcorr_fs86_hpf", "FCcorr_fs86_hpf->SCifod2act_fs86_volnorm"]
    rec = TrainRecord.empty(names, 5, loss_terms=["correye", "mse"], subjects=["s1", "s2", "s3"],
                            subjidx_train=np.array([0, 1]), subjidx_val=np.array([2]), numsubjects_val=1,
                            data_string="SCFC_2flav", latent_normalize=True, learningrate=1e-4)
    rec.set_loss(0, [10.0, 11.0], split="train", terms={"correye": [1.0, 2.0], "mse": [9.0, 9.0]})
    rec.set_loss(0, [12.0, 13.0], split="val")
    rec.set_metrics(0, {"top1acc": [0.5, 1.0], "avgrank_mean": [1.5, 1.0], "avgcorr_other": [0.1, 0.2]},
                    split="train")
    rec.set_metrics(4, {"top1acc": [0.25, 0.75], "avgcorr_resid": [0.3, 0.4], "top1acc_bidir": [0.3, 0.8]},
                    split="val", origscale=True)
    rec["current_epoch"] = 4
    out = write_record(rec, tmp_path / "k_trainrecord_x.mat")
    assert out.is_file() and [p.name for p in tmp_path.iterdir()] == ["k_trainrecord_x.mat"]  # no temp left

    back = read_record(out)
    assert set(back) == set(rec)
    for k in rec:
        assert _same(back[k], rec[k]), k
    assert back.loss_terms("train")["correye"][:, 0].tolist() == [1.0, 2.0]
    assert back.metric("top1acc")[:, 4].tolist() == [0.25, 0.75]
    assert back["corrloss_train"][:, 0].tolist() == [0.5, 1.0]
    assert back["avgrank_train"][:, 0].tolist() == [1.5, 1.0]
    assert back["avgcorr_other_train"][:, 0].tolist() == pytest.approx([0.1, 0.2])

    # the original's layout: char matrices, [P x E] doubles, structs for the loss terms
    raw = scipy.io.loadmat(out)
    assert raw["trainpath_names"].dtype.kind == "U" and raw["trainpath_names"].shape == (2,)
    assert raw["loss_train"].shape == (2, 5) and raw["latentsim_mse_val"].shape == (1, 5)
    assert raw["loss_terms_train"].dtype.names == ("correye", "mse")
    for name in PATH_EPOCH_FIELDS:
        assert raw[name].shape == (2, 5), name
    for name in EPOCH_FIELDS:
        assert raw[name].shape == (1, 5), name


def test_single_path_single_epoch_keeps_2d_shapes(tmp_path: Path) -> None:
    rec = TrainRecord.empty(["A->A"], 1)
    rec.set_metrics(0, {"top1acc": [1.0]}, origscale=True)
    back = read_record(write_record(rec, tmp_path / "r.mat"))
    assert back.path_names == ["A->A"]
    assert back["corrloss_OrigScale_val"].shape == (1, 1)
    assert back.metric("top1acc").tolist() == [[1.0]]


def test_reference_record_round_trip(ref: TrainRecord, tmp_path: Path) -> None:
    back = read_record(ref.save(tmp_path / "copy.mat"))
    assert set(back) == set(ref)
    for k in ref:
        assert _same(back[k], ref[k]), k


def test_unreadable_records(tmp_path: Path) -> None:
    with pytest.raises(InputDataError, match="does not exist"):
        read_record(tmp_path / "missing.mat")
    bad = tmp_path / "bad.mat"
    bad.write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(InputDataError) as exc:
        read_record(bad)
    assert exc.value.hint
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"data": np.zeros(3)})
    with pytest.raises(InputDataError, match="not a training record"):
        read_record(other)
