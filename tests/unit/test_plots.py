"""Heatmaps, heatmap CSVs and training curves are written as readable PNG/CSV files."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from kraken_cli.engine.plots import (
    _fmt_cell,
    display_sort_key,
    heatmap_from_metrics,
    heatmap_from_record,
    heatmap_tables,
    plot_heatmap,
    plot_training_curves,
    short_flavor_label,
    write_heatmap_csv,
)
from kraken_cli.engine.training.record import TrainRecord, read_record

REF = Path("conformance") / "P" / "reference_trainrecord.mat"  # under the shared_dir fixture

FIVE = ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCsdstream_fs86_volnorm",
        "SCifod2act_fs86_volnorm"]
FIFTEEN = [f"{m}_{a}_{p}" for a in ("fs86", "shen268", "coco439")
           for m, p in (("FCcorr", "hpf"), ("FCcorr", "hpfgsr"), ("FCpcorr", "hpf"),
                        ("SCsdstream", "volnorm"), ("SCifod2act", "volnorm"))]
FUSION = ["fusion", "fusionSC", "fusionFC"]


@pytest.fixture(scope="module")
def ref(shared_dir: Path) -> TrainRecord:
    """The original's training record for conformance/P/model.pt (skipped without ../shared)."""
    if not (shared_dir / REF).is_file():
        pytest.skip(f"{shared_dir / REF} is not available")
    return read_record(shared_dir / REF)


def _png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 0
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".part")]  # atomic write
    return img


def test_labels_and_cell_format() -> None:
    assert short_flavor_label("FCcorr_fs86_hpf") == "fs86_FCcorr_hpf"
    assert short_flavor_label("SCifod2act_fs86_volnorm") == "fs86_SCifod2act_volnorm"
    assert short_flavor_label("FCpcorr_coco439_hpf") == "coco439_FCpcorr_hpf"
    assert short_flavor_label("fusion.noself") == "fusion.noself"
    assert short_flavor_label("myparc_thing") == "myparc_thing"
    assert [_fmt_cell(v) for v in (0.25, 0.254, -0.07, 1.0, 0.0)] == [".25", ".25", "-.07", "1.00", ".00"]


def test_display_order_groups_fc_then_sc_and_fusion_last() -> None:
    order = sorted(FIVE[::-1] + ["fusionSC"], key=display_sort_key)
    assert order == ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCsdstream_fs86_volnorm",
                     "SCifod2act_fs86_volnorm", "fusionSC"]  # as the original's reference heatmap


def test_heatmap_tables_averages_cover_flavor_rows_only() -> None:
    sources = ["SCifod2act_fs86_volnorm", "FCcorr_fs86_hpf", "fusion"]
    targets = ["SCifod2act_fs86_volnorm", "FCcorr_fs86_hpf"]
    vals = np.array([[0.1, 0.2], [0.3, np.nan], [0.9, 0.9]])
    rows, fus, cols, tables = heatmap_tables({"top1acc": vals}, sources, targets)
    assert rows == ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"] and fus == ["fusion"]
    assert cols == ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"]
    t = tables["top1acc"]
    assert t.shape == (4, 3)  # 2 flavor rows + average + 1 fusion row; 2 targets + average
    np.testing.assert_allclose(t[0], [np.nan, 0.3, 0.3])   # FC row (reordered), NaN skipped in the mean
    np.testing.assert_allclose(t[1], [0.2, 0.1, 0.15])
    np.testing.assert_allclose(t[2], [0.2, 0.2, 0.2])      # average row: flavor rows only, not fusion
    np.testing.assert_allclose(t[3], [0.9, 0.9, 0.9])
    # mapping input gives the same table
    mapping = {(s, g): vals[i, j] for i, s in enumerate(sources) for j, g in enumerate(targets)}
    np.testing.assert_allclose(heatmap_tables({"m": mapping}, sources, targets)[3]["m"], t)
    with pytest.raises(ValueError, match="shape"):
        heatmap_tables({"m": vals[:2]}, sources, targets)


def test_heatmap_five_flavors(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vals = {m: rng.uniform(size=(5, 5)) for m in ("top1acc", "topNacc", "avgrank", "avgcorr_resid")}
    vals["top1acc"][1, 2] = np.nan
    out = plot_heatmap(vals, FIVE, FIVE, tmp_path / "h.png", title="OrigScale, Validation(n=26)",
                       subtitle="Final epoch: 40", footer="x.mat", epoch_labels={"top1acc": "ep40"}, dpi=50)
    img = _png(out)
    assert img.shape[:2] == (600, 900)  # 18 x 12 inches


def test_heatmap_fifteen_flavors_with_fusion(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    sources = FIFTEEN + FUSION
    vals = {m: rng.uniform(size=(len(sources), 15)) for m in ("top1acc", "r2")}  # 2 panels: keep it fast
    _png(plot_heatmap(vals, sources, FIFTEEN, tmp_path / "h15.png", title="t", dpi=30))


def test_heatmap_single_metric_and_bad_colormap(tmp_path: Path) -> None:
    _png(plot_heatmap({"avgcorr": np.eye(2)}, FIVE[:2], FIVE[:2], tmp_path / "one.png", dpi=40))
    with pytest.raises(ValueError, match="colormap"):
        plot_heatmap({"avgcorr": np.eye(2)}, FIVE[:2], FIVE[:2], tmp_path / "bad.png", cmap="nope", dpi=40)
    assert not (tmp_path / "bad.png").exists()


def test_heatmap_from_reference_record(ref: TrainRecord, tmp_path: Path) -> None:
    out = heatmap_from_record(ref, tmp_path / "ref.png", csv_file=tmp_path / "ref.csv", dpi=40)
    _png(out)
    lines = (tmp_path / "ref.csv").read_text().splitlines()
    assert lines[0] == '"OrigScale corr top1acc SRC(row)xTARG(col), ep40"'
    assert lines[1].startswith(',"target:FCcorr_fs86_hpf","target:FCcorr_fs86_hpfgsr"')
    assert lines[1].endswith(',"average"')
    first = lines[2].split(",")
    assert first[0] == '"source:FCcorr_fs86_hpf"'
    assert float(first[1]) == pytest.approx(ref["corrloss_OrigScale_val"][0, 39])
    assert lines[7].startswith('"average",')
    assert sum(1 for ln in lines if ln.startswith('"OrigScale')) == 4
    # the reference heatmap's numbers: average top-1 over all paths at ep40 is .22
    assert float(lines[7].split(",")[-1]) == pytest.approx(np.mean(ref["corrloss_OrigScale_val"][:, 39]))


def test_heatmap_from_record_options(ref: TrainRecord, tmp_path: Path) -> None:
    _png(heatmap_from_record(ref, tmp_path / "e.png", metrics=["top1accx", "r2"], epoch=10, dpi=30))
    _png(heatmap_from_record(ref, tmp_path / "p.png", metrics=["avgrank"], per_path=True, dpi=30))
    _png(heatmap_from_record(ref, tmp_path / "t.png", metrics=["avgcorr_resid"], split="train", dpi=30))  # all NaN
    with pytest.raises(ValueError, match="outside"):
        heatmap_from_record(ref, tmp_path / "x.png", epoch=99, dpi=30)


def test_heatmap_from_metrics_rows(tmp_path: Path) -> None:
    rows = [{"source": s, "target": t, "top1acc": 0.5, "topNacc": 0.7, "avgrank": 0.9, "avgcorr_resid": 0.1}
            for s in FIVE[:3] + ["fusion"] for t in FIVE[:3]]
    out = heatmap_from_metrics(rows, tmp_path / "m.png", n_subjects=12, csv_file=tmp_path / "m.csv", dpi=40)
    _png(out)
    text = (tmp_path / "m.csv").read_text()
    assert '"source:fusion",0.5,0.5,0.5,0.5' in text


def test_write_heatmap_csv_layout(tmp_path: Path) -> None:
    vals = {"top1acc": np.array([[1.0, 0.5], [0.25, np.nan]])}
    write_heatmap_csv(vals, ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"],
                      ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"], tmp_path / "c.csv")
    assert (tmp_path / "c.csv").read_text().splitlines() == [
        '"top1acc"',
        ',"target:FCcorr_fs86_hpf","target:SCifod2act_fs86_volnorm","average"',
        '"source:FCcorr_fs86_hpf",1.0,0.5,0.75',
        '"source:SCifod2act_fs86_volnorm",0.25,,0.25',
        '"average",0.625,0.5,0.5833333333333334',
    ]


def _synthetic_record(paths: list[str], n_epochs: int) -> TrainRecord:
    rng = np.random.default_rng(2)
    P, E = len(paths), n_epochs
    rec = TrainRecord.empty(paths, E)
    t = np.arange(E) / E
    for split in ("train", "val"):
        rec[f"loss_{split}"][:] = 800 * np.exp(-3 * t)[None] + rng.normal(0, 5, (P, E))
        for field, top in (("corrloss", 0.6), ("corrlossN", 0.8), ("corrlossRank", 0.95), ("explainedvar", 0.5)):
            rec[f"{field}_{split}"][:] = np.clip(top * t[None] * rng.uniform(0.5, 1, (P, 1))
                                                 + rng.normal(0, 0.02, (P, E)), -1, 1)
    for e in list(range(0, E, 10)) + [E - 1]:
        rec.set_metrics(e, {m: rng.uniform(0, 1, P) * e / E for m in
                            ("top1acc", "topNacc", "avgrank", "avgcorr_resid", "explainedvar")},
                        split="val", origscale=True)
    return rec


def test_training_curves_225_paths(tmp_path: Path) -> None:
    paths = [f"{a}->{b}" for a in FIFTEEN for b in FIFTEEN]
    _png(plot_training_curves(_synthetic_record(paths, 60), tmp_path / "curves.png", dpi=40))


def test_training_curves_reference_and_sparse_records(ref: TrainRecord, tmp_path: Path) -> None:
    assert ref.path is not None
    _png(plot_training_curves(ref.path, tmp_path / "ref_curves.png", dpi=40))  # from the file name
    empty = TrainRecord.empty(["A->A"], 3)  # nothing recorded yet: panels say so, no crash
    _png(plot_training_curves(empty, tmp_path / "empty.png", dpi=30))
