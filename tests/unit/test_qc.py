"""engine.qc: each quality measure on small arrays with known answers, thresholds, references (issue 17)."""

from __future__ import annotations

import numpy as np
import pytest

from kraken_cli.engine.qc import agreement, mean_fit, pca_distance, plausibility
from kraken_cli.engine.qc.measures import robust_z
from kraken_cli.engine.qc.reference import (
    LatentReference,
    legacy_transform_reference,
    qc_statistics,
    stored_ranges,
    stored_statistics,
    transform_reference,
)
from kraken_cli.engine.qc.thresholds import BY_NAME, RESIDUAL, SCALE, SUBJECT_THRESHOLDS, Threshold
from kraken_cli.engine.transforms import PCATransform, make_transform


def test_fc_plausibility_counts_out_of_range_and_negative_edges() -> None:
    x = np.array([[0.5, -0.5, 0.2, 0.1], [1.5, 2.0, 0.3, 0.0]])
    m = plausibility(x, "FC")
    assert m["fc_out_of_range"].tolist() == [0.0, 0.5]
    assert m["fc_negative"].tolist() == [0.25, 0.0]
    assert not BY_NAME["fc_negative"].flags(0.25) and BY_NAME["fc_negative"].flags(0.0)
    assert BY_NAME["fc_out_of_range"].flags(0.5) and not BY_NAME["fc_out_of_range"].flags(0.0)


def test_sc_plausibility_counts_negative_and_nonzero_edges() -> None:
    x = np.array([[0.0, 0.0, 3.0, 1.0], [-0.2, 0.4, 0.0, 0.0]])
    m = plausibility(x, "SC")
    assert m["sc_density"].tolist() == [0.5, 0.5] and m["sc_negative"].tolist() == [0.0, 0.25]
    assert BY_NAME["sc_negative"].flags(0.25) and not BY_NAME["sc_density"].flags(0.5)
    assert plausibility(x, None) == {}


def test_mean_fit_recovers_slope_and_pattern() -> None:
    rng = np.random.default_rng(0)
    mu = rng.normal(size=200)
    x = np.stack([3.0 * mu + 0.5, rng.permutation(mu), mu + 0.01 * rng.normal(size=200)])
    slope, corr = mean_fit(x, mu)
    assert slope[0] == pytest.approx(3.0) and corr[0] == pytest.approx(1.0)
    assert abs(corr[1]) < 0.3 and slope[2] == pytest.approx(1.0, abs=0.01)
    assert SCALE.flags(float(slope[0])) and not SCALE.flags(float(slope[2]))
    assert np.isnan(mean_fit(x, None)[0]).all()


def test_pca_distance_separates_the_subspace_from_the_residual() -> None:
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(20, 3)))[0].T  # 3 orthonormal directions in 20 dims
    train = rng.normal(size=(50, 3)) @ basis + 5.0
    t = PCATransform(3).fit(train)
    inside = np.array([2.0, 0.0, 0.0]) @ basis + 5.0
    outside = inside + 4.0 * np.linalg.svd(np.eye(20) - basis.T @ basis)[0][:, 0]
    residual, score = pca_distance(t, np.stack([inside, outside]))
    assert residual[0] == pytest.approx(0.0, abs=1e-3) and residual[1] == pytest.approx(4.0, rel=1e-3)
    assert score[0] == pytest.approx(score[1], rel=1e-3) and score[0] > 1.0
    nonpca = make_transform("cfeat").fit(train)
    r2, s2 = pca_distance(nonpca, train[:2])
    assert np.isnan(r2).all() and np.isfinite(s2).all()


def test_agreement_singles_out_the_flavor_that_disagrees() -> None:
    rng = np.random.default_rng(2)
    z = rng.normal(size=(30, 8))
    lat = {f: z + 0.1 * rng.normal(size=z.shape) for f in ("a", "b", "c")}
    lat["c"][4] = rng.normal(size=8)  # subject 4's "c" input is unrelated to the subject
    out = agreement(lat)
    assert np.median(out["a"]) < 0.5 and np.argmax(out["c"]) == 4
    assert 0.8 < out["c"][4] < 1.3  # as far from its own subject as from any other
    rz = robust_z(np.log(out["c"]))
    assert rz[4] > BY_NAME["agreement"].upper  # type: ignore[operator]
    assert (np.delete(rz, 4) < BY_NAME["agreement"].upper).all()  # type: ignore[operator]
    assert agreement({"a": z}) == {}


def test_threshold_nan_never_flags_and_widening_only_loosens() -> None:
    assert not RESIDUAL.flags(float("nan"))
    assert RESIDUAL.widened(1.0, 2.0) == RESIDUAL  # inside the rule already: unchanged upper 3
    wide = RESIDUAL.widened(1.0, 5.0)
    assert wide.upper == pytest.approx(7.0) and not wide.flags(6.0) and wide.flags(7.5)
    assert SCALE.widened(0.9, 1.1).lower == SCALE.lower
    assert SCALE.widened(float("nan"), float("nan")) is SCALE
    t = Threshold("x", "x", lower=0.1, upper=2.0)
    assert t.rule() == "< 0.1 or > 2"


def test_the_threshold_table_is_complete() -> None:
    """``resources/qc_thresholds.json``: one entry per measure, each with a bound, a label and a meaning."""
    from kraken_cli.engine.qc.thresholds import ALL_THRESHOLDS

    assert [t.measure for t in SUBJECT_THRESHOLDS] == ["fc_out_of_range", "fc_negative", "sc_negative", "sc_density",
                                                       "scale", "pattern", "residual", "score", "latent", "agreement"]
    assert len(BY_NAME) == len(ALL_THRESHOLDS) == len(SUBJECT_THRESHOLDS) + 1
    for t in ALL_THRESHOLDS:
        assert t.rule() and t.label and t.meaning, t
        assert all(isinstance(v, float) for v in (t.lower, t.upper) if v is not None), t


def test_every_threshold_is_stated_in_the_run_help() -> None:
    """--qc's help repeats the thresholds by hand (the CLI must not import the engine); keep them equal."""
    from kraken_cli.cli._run_options import QcOpt

    text = QcOpt.__metadata__[0].help
    for t in SUBJECT_THRESHOLDS:
        for v in (t.lower, t.upper):
            if v is None or t.measure in ("fc_out_of_range",):
                continue
            shown = f"{v * 100:g}%" if t.measure in ("fc_negative", "sc_negative", "sc_density") else f"{v:.3g}"
            assert shown in text, (t.measure, shown)


def test_legacy_reference_matches_the_training_subjects() -> None:
    """From the file alone (normscale, N, explained variance), the typical training subject has ratio ~1."""
    rng = np.random.default_rng(3)
    train = rng.normal(size=(200, 40)) * np.linspace(3, 0.1, 40) + 1.0
    t = PCATransform(5).fit(train)
    t.n_train_subjects_ = 200  # type: ignore[attr-defined]  # as read from the file's train_subjects
    ref = legacy_transform_reference(t)
    residual, score = pca_distance(t, train)
    assert np.sqrt(np.mean(score ** 2)) / ref.score == pytest.approx(1.0, rel=1e-3)
    assert np.sqrt(np.mean(residual ** 2)) / ref.residual == pytest.approx(1.0, rel=0.05)
    assert ref.source == "transform file"
    del t.n_train_subjects_  # type: ignore[attr-defined]
    assert np.isnan(legacy_transform_reference(t).score)  # no subject count in the file: n/a, never a flag


def test_stored_statistics_round_trip_and_widen_to_the_held_out_range() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 30)) + np.linspace(-1, 1, 30)
    t = PCATransform(4).fit(x)
    lat = {"FCcorr_fs86_hpf": rng.normal(size=(40, 6)), "SCifod2act_fs86_volnorm": rng.normal(size=(40, 6))}
    qc = qc_statistics({f: t for f in lat}, {f: x for f in lat}, split="validation", latents=lat)
    raw = {"kraken_qc": qc}
    stats, refs = stored_statistics(raw)
    ref = transform_reference(t, stats["FCcorr_fs86_hpf"])
    assert ref.source == "kraken training statistics"
    residual, _ = pca_distance(t, x)
    assert np.median(residual / ref.residual) == pytest.approx(1.0)
    ranges = stored_ranges(raw, "FCcorr_fs86_hpf")
    assert {"fc_negative", "fc_out_of_range", "scale", "pattern", "residual", "score", "latent"} <= set(ranges)
    assert ranges["residual"][0] < 1.0 < ranges["residual"][1]
    back = refs["SCifod2act_fs86_volnorm"]
    assert np.median(back.distance(lat["SCifod2act_fs86_volnorm"])) == pytest.approx(1.0)
    assert stored_statistics({}) == ({}, {}) and stored_ranges({"kraken_qc": {"version": 99}}, "x") == {}


def test_latent_reference_scores_far_latents_high() -> None:
    rng = np.random.default_rng(5)
    ref = LatentReference.from_latents(rng.normal(size=(100, 8)) + np.array([3.0] + [0.0] * 7), "test")
    near = ref.distance(np.array([[3.0] + [0.0] * 7]))
    far = ref.distance(np.array([[-3.0] + [0.0] * 7]))
    assert near[0] < 1.0 < BY_NAME["latent"].upper < far[0]  # type: ignore[operator]
    again = LatentReference.from_dict(ref.to_dict(), "copy")
    assert again.distance(np.ones((1, 8)))[0] == pytest.approx(ref.distance(np.ones((1, 8)))[0])
