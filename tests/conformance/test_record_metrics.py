"""Metrics recomputed from model.pt match the original's training record (DESIGN 4, UPSTREAM 14).

The cohort is regenerated with ``shared/tools/synth_cohort.py`` exactly as for the reference run;
the validation subjects of ``reference_subjsplit.mat`` are predicted with ``model.pt`` and every
OrigScale validation metric at the final epoch is compared with ``reference_trainrecord.mat`` to
1e-4. In training, ``avgcorr_resid`` demeans by the training-set mean in original space.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
import torch

from kraken_cli.engine.connectome import ArraySource, Cohort, square_to_tri
from kraken_cli.engine.flavors import resolve_flavor
from kraken_cli.engine.metrics import METRIC_NAMES, evaluate_path, evaluate_paths_torch, record_field
from kraken_cli.engine.training.record import TrainRecord, read_record

TOL = 1e-4

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def setup(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    P = shared_dir / "conformance" / "P"
    if not (P / "reference_trainrecord.mat").is_file():
        pytest.skip(f"{P} is not available")
    from kraken_cli.engine.inference import load_model

    out = tmp_path_factory.mktemp("cohortP")
    subprocess.run([sys.executable, str(shared_dir / "tools" / "synth_cohort.py"), "--out", str(out),
                    "--subjects", "320", "--seed", "1", "--base",
                    str(shared_dir / "data" / "hcp_fs86_example" / "exampledata_10subj_fs86_inputs.mat")],
                   check=True, capture_output=True)
    rec = read_record(P / "reference_trainrecord.mat")
    split = scipy.io.loadmat(P / "reference_subjsplit.mat")
    train = split["subjidx_train"].ravel()
    val = split["subjidx_val"].ravel()
    assert np.array_equal(val, rec["subjidx_val"]) and np.array_equal(train, rec["subjidx_train"])
    data = {f: square_to_tri(scipy.io.loadmat(out / f"{f}.mat")["data"]) for f in rec["input_name_list"]}
    ids = [rec["subjects"][i] for i in val]
    cohort = Cohort({f: ArraySource(resolve_flavor(f), x[val], subjects=ids) for f, x in data.items()}, ids)
    model = load_model(P / "model.pt", [P / "model_ioxfm.npy"])
    pred = model.predict(cohort)
    return {"rec": rec, "data": data, "train": train, "val": val, "pred": pred, "model": model}


def _compare(rec: TrainRecord, p: int, metrics: dict[str, float], *, origscale: bool) -> list[str]:
    bad = []
    e = rec.final_epoch
    for k, v in metrics.items():
        field = record_field(k, "val", origscale)
        if field not in rec or "_bidir" in field:
            continue
        ref = rec[field][p, e]
        if np.isfinite(ref) and abs(float(v) - ref) > TOL:
            bad.append(f"{rec.path_names[p]} {field}: {float(v):.6f} vs {ref:.6f}")
    return bad


def test_origscale_validation_metrics_match_record(setup: dict[str, Any]) -> None:
    rec, data, train, val, pred = (setup[k] for k in ("rec", "data", "train", "val", "pred"))
    bad: list[str] = []
    checked = 0
    for p, (src, tgt) in enumerate(rec.paths):
        m = evaluate_path(data[tgt][val], pred[src][tgt], demean=data[tgt][train].mean(axis=0),
                          top_n=int(rec["topN"]))
        bad += _compare(rec, p, m, origscale=True)
        checked += 1
        # bidir = mean of the two directions, which the record also holds
        e = rec.final_epoch
        assert m["top1acc_bidir"] == pytest.approx(rec.metric("top1accx")[p, e], abs=TOL)
    assert checked == 25
    assert not bad, "\n".join(bad[:20])


def test_batched_torch_metrics_match_record(setup: dict[str, Any]) -> None:
    """The training-time batched kernel, fed float32 as training feeds it, over all paths to each target."""
    rec, data, train, val, pred = (setup[k] for k in ("rec", "data", "train", "val", "pred"))
    e = rec.final_epoch
    for tgt in rec["input_name_list"]:
        idx = [p for p, (_, t) in enumerate(rec.paths) if t == tgt]
        stack = torch.stack([torch.as_tensor(pred[rec.paths[p][0]][tgt]) for p in idx]).float()
        out = evaluate_paths_torch(torch.as_tensor(data[tgt][val], dtype=torch.float32), stack,
                                   demean=torch.as_tensor(data[tgt][train].mean(axis=0), dtype=torch.float32))
        for k in METRIC_NAMES:
            field = record_field(k, "val", True)
            if field not in rec or "_bidir" in field:
                continue
            np.testing.assert_allclose(out[k].numpy(), rec[field][idx, e], atol=TOL, err_msg=f"{tgt} {field}")


def test_transformed_space_metrics_match_record(setup: dict[str, Any]) -> None:
    """The non-OrigScale fields: truth and prediction in the PCA space of the transforms."""
    rec, data, val, model = (setup[k] for k in ("rec", "data", "val", "model"))
    flavors = model.flavors
    bad: list[str] = []
    with torch.no_grad():
        xt = {f: model.transform_for(f).as_torch().transform(data[f][val])
              for f in flavors}
        for p, (src, tgt) in enumerate(rec.paths):
            i, j = flavors.index(src), flavors.index(tgt)
            y = model.net.decode(model.net.encode(xt[src], i), j)
            bad += _compare(rec, p, evaluate_path(xt[tgt], y), origscale=False)
    assert not bad, "\n".join(bad[:20])
