"""Domain adaptation (UPSTREAM 4) and fusion groups (UPSTREAM 5, DESIGN 5): formulas checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from kraken_cli.engine.adaptation import (
    check_adapter,
    fit_adaptation,
    load_adapter,
    normalize_mode,
    save_adapter,
    transform_checksum,
)
from kraken_cli.engine.errors import AdapterError, FlavorError, SpecError, TransformError
from kraken_cli.engine.fusion import FusionGroup, check_variants, fuse, parse_fusion_include, resolve_groups
from kraken_cli.engine.transforms import make_transform

RNG = np.random.default_rng(7)
TRAIN = RNG.normal(loc=2.0, size=(10, 8))
NEW = 1.7 * RNG.normal(loc=2.0, size=(6, 8)) + 0.4       # another site: scaled and shifted
MU_TR = TRAIN.mean(axis=0)
MU_IN = NEW.mean(axis=0)


@pytest.fixture
def cfeat():  # type: ignore[no-untyped-def]
    return make_transform("cfeat").fit(TRAIN)


def _hand_fit() -> tuple[float, float]:
    """Least squares mu_tr ~ a mu_in + b, closed form."""
    xm, ym = MU_IN.mean(), MU_TR.mean()
    a = np.sum((MU_IN - xm) * (MU_TR - ym)) / np.sum((MU_IN - xm) ** 2)
    return a, ym - a * xm


def test_meanshift(cfeat) -> None:  # type: ignore[no-untyped-def]
    a = fit_adaptation("F", "meanshift", MU_IN, cfeat, n_subjects=6)
    np.testing.assert_allclose(a.apply(NEW), NEW - MU_IN + MU_TR, rtol=1e-5)
    np.testing.assert_allclose(a.apply(NEW).mean(axis=0), MU_TR, rtol=1e-5)
    assert a.fit_corr == pytest.approx(np.corrcoef(MU_IN, MU_TR)[0, 1], rel=1e-5)
    assert a.n_subjects == 6


def test_meanfit(cfeat) -> None:  # type: ignore[no-untyped-def]
    slope, icpt = _hand_fit()
    a = fit_adaptation("F", "meanfit", MU_IN, cfeat, n_subjects=6)
    assert a.slope == pytest.approx(slope, rel=1e-5) and a.intercept == pytest.approx(icpt, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(a.apply(NEW), slope * NEW + icpt, rtol=1e-5)
    assert a.fit_corr == pytest.approx(np.corrcoef(slope * MU_IN + icpt, MU_TR)[0, 1], rel=1e-5)
    assert a.summary()["fit_r2"] == pytest.approx(a.fit_corr ** 2)


def test_meanfit_meanshift_and_alias(cfeat) -> None:  # type: ignore[no-untyped-def]
    slope, _ = _hand_fit()
    a = fit_adaptation("F", "meanfitshift", MU_IN, cfeat, n_subjects=6)
    assert a.mode == "meanfit+meanshift"
    np.testing.assert_allclose(a.apply(NEW), slope * (NEW - MU_IN) + MU_TR, rtol=1e-5)


def test_pca_training_mean_is_the_target() -> None:
    pca = make_transform("pca3").fit(TRAIN)
    a = fit_adaptation("F", "meanshift", MU_IN, pca, n_subjects=6)
    np.testing.assert_allclose(a.target_mean, MU_TR, rtol=1e-5)


def test_modes() -> None:
    assert normalize_mode(" MeanShift ") == "meanshift"
    with pytest.raises(SpecError) as ei:
        normalize_mode("meanwarp")
    assert "meanwarp" in ei.value.message and "meanfit" in (ei.value.hint or "")


def test_cannot_adapt_without_training_mean_or_with_wrong_width(cfeat) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TransformError, match="no training mean"):
        fit_adaptation("F", "meanshift", MU_IN, make_transform("zscore").fit(TRAIN), n_subjects=6)
    with pytest.raises(AdapterError, match="7 edges"):
        fit_adaptation("F", "meanshift", MU_IN[:7], cfeat, n_subjects=6)


def test_adapter_file_round_trip(tmp_path: Path, cfeat) -> None:  # type: ignore[no-untyped-def]
    a = fit_adaptation("FCcorr_fs86_hpf", "meanfit", MU_IN, cfeat, n_subjects=6, source_files=("x.mat",))
    f = save_adapter(tmp_path / "site.json", {"FCcorr_fs86_hpf": a})
    payload = json.loads(f.read_text())
    assert payload["format"] == "kraken-adapter"
    back = load_adapter(f)["FCcorr_fs86_hpf"]
    np.testing.assert_array_equal(back.apply(NEW), a.apply(NEW))
    assert back.transform_sha256 == transform_checksum(cfeat) and back.source_files == ("x.mat",)
    check_adapter(back, cfeat, file=str(f))
    other = make_transform("cfeat").fit(TRAIN + 1)
    with pytest.raises(AdapterError, match="another transform") as ei:
        check_adapter(back, other, file=str(f))
    assert "kraken adapt" in (ei.value.hint or "")


@pytest.mark.parametrize("content", ["", "{not json", json.dumps({"format": "other"}),
                                     json.dumps({"format": "kraken-adapter", "flavors": {"F": {"mode": "x"}}})])
def test_unreadable_adapter(tmp_path: Path, content: str) -> None:
    f = tmp_path / "a.json"
    f.write_text(content)
    with pytest.raises(AdapterError) as ei:
        load_adapter(f)
    assert str(f) in ei.value.message
    with pytest.raises(AdapterError):
        load_adapter(tmp_path / "missing.json")


# -- fusion -------------------------------------------------------------------------------------------------

INPUTS = ["FCcorr_fs86_hpf", "FCpcorr_fs86_hpf", "SCifod2act_fs86_volnorm", "FCcorr_shen268_hpf"]


def test_parse_fusion_include() -> None:
    assert parse_fusion_include(["fusion=all", "fusionSC=SC", "fusionFC=FC,FCpcorr_fs86_hpf"]) == {
        "fusion": ["all"], "fusionSC": ["SC"], "fusionFC": ["FC", "FCpcorr_fs86_hpf"]}
    assert parse_fusion_include(["SC,FCcorr_fs86_hpf", "FC"]) == {"fusion": ["SC", "FCcorr_fs86_hpf", "FC"]}
    with pytest.raises(SpecError, match="must start with 'fusion'"):
        parse_fusion_include(["mygroup=SC"])
    with pytest.raises(SpecError, match="selects nothing"):
        parse_fusion_include(["fusionX="])


def test_resolve_groups_selectors() -> None:
    groups = resolve_groups({"fusion": ["all"], "fusionSC": ["SC"], "fusionFC": ["FC"],
                             "fusionX": ["fs86_hpf_FCcov", "SC", "FCcorr_fs86_hpf"]}, INPUTS)
    by = {g.name: g.members for g in groups}
    assert by["fusion"] == tuple(INPUTS)
    assert by["fusionSC"] == ("SCifod2act_fs86_volnorm",)
    assert by["fusionFC"] == ("FCcorr_fs86_hpf", "FCpcorr_fs86_hpf", "FCcorr_shen268_hpf")
    assert by["fusionX"] == ("FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm")  # canonical match, duplicates dropped
    assert resolve_groups(None, INPUTS)[0].members == tuple(INPUTS)


def test_resolve_groups_errors() -> None:
    with pytest.raises(FlavorError, match="FCcorr"):
        resolve_groups({"fusion": ["FCcorr"]}, INPUTS)  # no substring matching
    with pytest.raises(FlavorError, match="fusionFC selects no input") as ei:
        resolve_groups({"fusionFC": ["FC"]}, ["SCifod2act_fs86_volnorm"])
    assert ei.value.hint


def test_variants_members() -> None:
    groups = resolve_groups({"fusion": ["all"]}, INPUTS, noself=True, noatlas=True)
    assert [g.name for g in groups] == ["fusion", "fusion.noself", "fusion.noatlas"]
    noself, noatlas = groups[1], groups[2]
    assert noself.variant == "noself" and noself.base == "fusion"
    assert noself.members_for("FCpcorr_fs86_hpf") == ("FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm",
                                                      "FCcorr_shen268_hpf")
    assert noself.members_for("SCsdstream_fs86_volnorm") == tuple(INPUTS)  # target not in the group
    assert noatlas.members_for("FCpcorr_fs86_hpf") == ("FCcorr_shen268_hpf",)
    assert noatlas.members_for("FCcorr_shen268_hpf") == tuple(INPUTS[:3])


@pytest.mark.parametrize(("inputs", "noself", "noatlas", "target"), [
    (["FCcorr_fs86_hpf"], True, False, "FCcorr_fs86_hpf"),                       # single-member noself
    (["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"], False, True, "FCpcorr_fs86_hpf"),  # one atlas, noatlas
])
def test_exclusion_leaving_nothing_is_a_flavor_error(inputs: list[str], noself: bool, noatlas: bool,
                                                     target: str) -> None:
    groups = resolve_groups(None, inputs, noself=noself, noatlas=noatlas)
    with pytest.raises(FlavorError, match="no flavor left") as ei:
        check_variants(groups, [target])
    assert ei.value.hint and "--fusion-no" in ei.value.hint


def test_fuse_is_a_plain_mean() -> None:
    g = torch.Generator().manual_seed(0)
    lat = {k: torch.nn.functional.normalize(torch.randn(3, 4, generator=g), dim=1) for k in "abc"}
    z = fuse(lat, ["a", "c"])
    for i in range(3):
        for j in range(4):
            assert float(z[i, j]) == pytest.approx((float(lat["a"][i, j]) + float(lat["c"][i, j])) / 2, abs=1e-6)
    assert float(z.norm(dim=1).max()) < 1.0  # not renormalised
    zn = fuse(lat, ["a", "c"], normalize=True)
    np.testing.assert_allclose(zn.norm(dim=1).numpy(), 1.0, rtol=1e-6)
    assert torch.allclose(zn, z / z.norm(dim=1, keepdim=True), atol=1e-6)


def test_fusion_group_plain_members() -> None:
    g = FusionGroup("fusion", ("a", "b"))
    assert g.members_for("a") == ("a", "b")
