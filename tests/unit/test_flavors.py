"""Flavor names: canonical forms (UPSTREAM 9.2 with DESIGN 4 fixes), matching, FLAVOR[@GROUP]=PATH specs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kraken_cli.engine.errors import FlavorError, SpecError
from kraken_cli.engine.flavors import (
    FlavorSpec,
    atlas_of,
    canonical_name,
    flavor_database,
    group_of,
    is_latent_name,
    match_flavor,
    resolve_flavor,
)

# UPSTREAM 9.2's verified examples, except the sift2 rule that DESIGN 4 changes.
CANONICAL = [
    ("fs86_hpf_FCcov", "FCcorr_fs86_hpf"),
    ("FCcov_fs86_hpf_FC", "FCcorr_fs86_hpf"),
    ("mydata_shen268_FCpcorr_hpf.mat", "FCpcorr_shen268_hpf"),
    ("cocommpsuit439_ifod2act_volnorm", "SCifod2act_coco439_volnorm"),
    ("coco439_FCcorr_nofilt_gsr", "FCcorr_coco439_nofiltgsr"),
    ("fs86_ifod2act_volnorm", "SCifod2act_fs86_volnorm"),
    ("fs86_sdstream_volnorm", "SCsdstream_fs86_volnorm"),
    ("FCcov_fs86_hpfgsr_FC", "FCcorr_fs86_hpfgsr"),
    ("[FCcorr_fs86_hpf]", "FCcorr_fs86_hpf"),
    # kraken fix: *_sift2 stays sift2 (the flavor database's spelling), not sift2count
    ("SCifod2act_fs86_sift2", "SCifod2act_fs86_sift2"),
    ("fs86_ifod2act_sift2", "SCifod2act_fs86_sift2"),
]


@pytest.mark.parametrize(("name", "expected"), CANONICAL)
def test_canonical_name_examples(name: str, expected: str) -> None:
    assert canonical_name(name) == expected


@pytest.mark.parametrize("name", ["SCifod2act_cc200_count", "myweird", "FCcorr_fs86", "fs86_volnorm"])
def test_canonical_name_unknown_parts_give_none(name: str) -> None:
    assert canonical_name(name) is None


@pytest.mark.parametrize("name", sorted(flavor_database()))
def test_every_database_flavor_is_a_fixed_point(name: str) -> None:
    assert canonical_name(name) == name
    f = resolve_flavor(name)
    assert f.name == name
    assert f.group == flavor_database()[name]["group"]
    r = int(flavor_database()[name]["matrixsize"][0])
    assert f.n_regions == r and f.n_edges == r * (r - 1) // 2


@pytest.mark.parametrize("name", ["encoded", "fusion", "fusionSC", "fusion.noself", "mean"])
def test_latent_names_are_fixed_points(name: str) -> None:
    assert is_latent_name(name)
    assert canonical_name(name) == name
    f = resolve_flavor(name)
    assert f.is_latent and f.group is None and f.n_edges is None


def test_atlas_and_group_guesses() -> None:
    assert atlas_of("FCcorr_fs86_hpf") == "fs86"
    assert atlas_of("SCifod2act_cocommpsuit439_volnorm") == "coco439"
    assert atlas_of("FCcorr_cocoyeo243_hpf") == "cocoyeo243"
    assert atlas_of("myflavor") is None
    assert group_of("FCpcorr_shen268_hpf") == "FC"
    assert group_of("fs86_sdstream_volnorm") == "SC"
    assert group_of("myweird") is None  # the original guessed SC here


def test_unknown_flavor_needs_a_group() -> None:
    with pytest.raises(FlavorError) as ei:
        resolve_flavor("myparc_thing")
    assert "myparc_thing" in ei.value.message
    assert ei.value.hint and "@SC" in ei.value.hint
    f = resolve_flavor("myparc_thing", "sc")
    assert (f.name, f.group, f.n_regions) == ("myparc_thing", "SC", None)


def test_bad_group_is_a_spec_error() -> None:
    with pytest.raises(SpecError):
        resolve_flavor("FCcorr_fs86_hpf", "XY")


def test_group_overrides_guess() -> None:
    assert resolve_flavor("FCcorr_fs86_hpf", "SC").group == "SC"


def test_match_flavor_exact_then_canonical_never_substring() -> None:
    cands = ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"]
    assert match_flavor("FCcorr_fs86_hpf", cands) == "FCcorr_fs86_hpf"
    assert match_flavor("fs86_hpf_FCcov", cands) == "FCcorr_fs86_hpf"
    assert match_flavor("fs86_ifod2act_volnorm", cands) == "SCifod2act_fs86_volnorm"
    # the original fell back to substring matching: "FCcorr" would have matched the first candidate
    assert match_flavor("FCcorr", cands) is None
    assert match_flavor("fs86", cands) is None
    assert match_flavor("FCcorr_fs86_hpfgsr", cands) is None


# -- specs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "flavor", "group", "path"), [
    ("FCcorr_fs86_hpf=fc.mat", "FCcorr_fs86_hpf", None, "fc.mat"),
    ("FCcorr_fs86_hpf@fc=fc.mat", "FCcorr_fs86_hpf", "FC", "fc.mat"),
    ("[FCcorr_fs86_hpf]@SC=dir/x.mat", "FCcorr_fs86_hpf", "SC", "dir/x.mat"),
    ("FCcorr_fs86_hpf=dir/a=b.mat", "FCcorr_fs86_hpf", None, "dir/a=b.mat"),
    ("data/run=1/fc.mat", None, None, "data/run=1/fc.mat"),
    ("some/where/multi.mat", None, None, "some/where/multi.mat"),
    ("encoded=latents.mat", "encoded", None, "latents.mat"),
    ("fusion.noself=f.mat", "fusion.noself", None, "f.mat"),
])
def test_flavor_spec_parse(text: str, flavor: str | None, group: str | None, path: str) -> None:
    s = FlavorSpec.parse(text)
    assert (s.flavor, s.group, s.path) == (flavor, group, path)


@pytest.mark.parametrize("text", ["", "   ", "FCcorr_fs86_hpf=", "FCcorr_fs86_hpf@XY=fc.mat"])
def test_malformed_specs_are_spec_errors(text: str) -> None:
    with pytest.raises(SpecError) as ei:
        FlavorSpec.parse(text)
    assert ei.value.exit_code == 2
    assert ei.value.hint


def test_spec_to_flavor() -> None:
    assert FlavorSpec.parse("fs86_hpf_FCcov=x.mat").to_flavor().name == "FCcorr_fs86_hpf"  # type: ignore[union-attr]
    assert FlavorSpec.parse("x.mat").to_flavor() is None
    with pytest.raises(FlavorError):
        FlavorSpec.parse("nonsense_flavor=x.mat").to_flavor()


@settings(max_examples=60, deadline=None)
@given(path=st.text(alphabet="abc/=._-1", min_size=1, max_size=20).filter(lambda p: p.strip() == p and p.strip()))
def test_spec_path_round_trips(path: str) -> None:
    """Whatever the path (including '='), FLAVOR=PATH gives back exactly that path."""
    s = FlavorSpec.parse(f"FCcorr_fs86_hpf={path}")
    assert s.flavor == "FCcorr_fs86_hpf"
    assert s.path == path


@pytest.mark.parametrize("typo", ["FCcorrzz_fs86_hpf", "FCcorr_fs86_hpf_gsr_typo", "FCcorr_fs86_hpfx",
                                  "SCifod2act_fs86_volnorm_extra", "FCcorr_fs86_shen268_hpf", "FCcorr_fs86_hpf_sift2"])
def test_a_name_with_an_unknown_or_contradicting_part_is_not_canonicalized(typo: str) -> None:
    """Rules read whole parts: dropping an unknown part must not reach another flavor (issue 13)."""
    from kraken_cli.engine.errors import FlavorError
    from kraken_cli.engine.flavors import canonical_name, resolve_flavor

    assert canonical_name(typo) is None
    with pytest.raises(FlavorError, match="unknown flavor"):
        resolve_flavor(typo)


@pytest.mark.parametrize("name,canon", [("fs86_hpf_FCcov", "FCcorr_fs86_hpf"), ("FCcorr_fs86_hpf_gsr", "FCcorr_fs86_hpfgsr"),
                                        ("SCifod2act_fs86_sift2_count", "SCifod2act_fs86_sift2"),
                                        ("SCsdstream_coco439_volnorm_icv", "SCsdstream_coco439_volnormicv")])
def test_names_of_known_parts_in_any_order_still_canonicalize(name: str, canon: str) -> None:
    from kraken_cli.engine.flavors import canonical_name

    assert canonical_name(name) == canon


def test_file_names_may_carry_labels_and_extension() -> None:
    from kraken_cli.engine.flavors import canonical_name

    assert canonical_name("mydata_shen268_FCpcorr_hpf.mat") == "FCpcorr_shen268_hpf"
    assert canonical_name("sub-01_fs86_FCcorr_hpf.npy", file_name=True) == "FCcorr_fs86_hpf"
