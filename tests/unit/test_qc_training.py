"""What kraken's trainer stores for ``kraken run --qc`` (the checkpoint's ``kraken_qc``), and ``train --report``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.connectome import tri_to_square
from kraken_cli.engine.datasets import make_cohort
from kraken_cli.engine.training import TrainConfig, train

from ..helpers import write_mat

BASE = dict(transformation="pca8", latent_size=6, batch_size=8, display_every=5)


@pytest.fixture(scope="module")
def cohort():  # type: ignore[no-untyped-def]
    return make_cohort(80, n_regions=10, atlas="my10", seed=0)


def _files(folder: Path, data: dict[str, np.ndarray], subjects: list[str]) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for f, x in data.items():
        write_mat(folder / f"{f}.mat", data=tri_to_square(np.asarray(x)), subjects=subjects)
        specs.append(f"{f}@{f[:2]}={folder / f'{f}.mat'}")  # an atlas kraken does not know: say the group
    return specs


def test_checkpoint_stores_held_out_statistics_that_run_qc_uses(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kraken_cli.engine.flavors import FlavorSpec
    from kraken_cli.engine.inference import KrakenModel, PredictOptions
    from kraken_cli.engine.io import load_cohort
    from kraken_cli.engine.qc import assess

    res = train(cohort.data, TrainConfig(epochs=3, val_frac=0.2, output=str(tmp_path / "k"), **BASE),
                subjects=cohort.subjects, figures=False)
    ck = load_checkpoint(res.checkpoints[-1])  # weights_only loading accepts the entry
    qc = ck.raw["kraken_qc"]
    assert (qc["version"], qc["split"], qc["n_subjects"]) == (1, "validation", len(res.split.val))
    assert set(qc["transforms"]) == set(cohort.data) == set(qc["latents"])
    assert all(len(v["mean"]) == 6 for v in qc["latents"].values())
    test_ids = [cohort.subjects[i] for i in res.split.test]
    data = {f: np.asarray(x)[res.split.test] for f, x in cohort.data.items()}
    sc = next(f for f in data if f.startswith("SC"))
    data[sc] = data[sc].copy()
    data[sc][0] *= 8.0  # the first test subject's SC in other units
    specs = _files(tmp_path / "in", data, test_ids)
    test = load_cohort([FlavorSpec.parse(s) for s in specs])
    model = KrakenModel(ck, res.transforms)
    result = assess(model, test, model.plan(test, PredictOptions(outputs=("encoded",))))
    assert result.latent_source == "kraken training statistics"
    assert all(fq.notes == [] for fq in result.flavors)  # every measure available from the stored statistics
    assert 0 in result.flagged and any(f.startswith(sc) for f in result.subject_flags(0))
    assert len(result.flagged) - 1 <= 0.05 * len(test_ids) + 1, [result.grouped_flags(i) for i in result.flagged]


def test_train_report(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kraken_cli.engine.training.session import train_from_inputs

    specs = _files(tmp_path / "in", cohort.data, cohort.subjects)
    out = tmp_path / "report.html"
    res = train_from_inputs(specs, TrainConfig(epochs=5, val_frac=0.2, output=str(tmp_path / "run" / "k"), **BASE),
                            report=str(out), figures=False)
    assert res is not None and res.files["report"] == out
    page = out.read_text()
    assert 'id="qc-table"' in page and f"validation subjects, n={len(res.split.val)})" in page and "chance" in page
    assert "sha256" in page and page.count("data:image/png;base64,") >= 3


def test_train_report_needs_html_and_a_checkpoint(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from kraken_cli.engine.errors import SpecError
    from kraken_cli.engine.training.session import train_from_inputs

    specs = _files(tmp_path / "in", cohort.data, cohort.subjects)
    with pytest.raises(SpecError, match="HTML"):
        train_from_inputs(specs, TrainConfig(epochs=1, output=str(tmp_path / "run" / "k"), **BASE),
                          report=str(tmp_path / "r.pdf"))
    with pytest.raises(SpecError, match="-o"):
        train_from_inputs(specs, TrainConfig(epochs=1, **BASE), report=str(tmp_path / "r.html"))
    assert not (tmp_path / "run").exists() and not (tmp_path / "r.html").exists()  # refused before any work
