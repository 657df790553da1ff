"""Path sets (UPSTREAM 7.1): SCFC/all, self, SC, FC, SC2FC, FC2SC and explicit A->B, united."""

from __future__ import annotations

import pytest

from kraken_cli.engine.errors import FlavorError, SpecError
from kraken_cli.engine.training.paths import TrainPath, resolve_paths

FL = ["FC1", "FC2", "SC1"]
GR = ["FC", "FC", "SC"]


def names(specs: list[str], groups: list[str | None] | None = GR) -> list[str]:
    return [p.name(FL) for p in resolve_paths(specs, FL, groups)]


def test_all_pairs_row_major() -> None:
    assert names(["SCFC"]) == [f"{a}->{b}" for a in FL for b in FL]
    assert names(["all"]) == names(["SCFC"])


def test_self_sc_fc() -> None:
    assert names(["self"]) == ["FC1->FC1", "FC2->FC2", "SC1->SC1"]
    assert names(["SC"]) == ["SC1->SC1"]
    assert names(["fc"]) == ["FC1->FC1", "FC1->FC2", "FC2->FC1", "FC2->FC2"]


def test_directional_sets() -> None:
    assert "SC1->FC1" not in names(["FC2SC"]) and "FC1->SC1" in names(["FC2SC"])
    assert "FC1->SC1" not in names(["SC2FC"]) and "SC1->FC2" in names(["SC2FC"])
    assert len(names(["SC2FC"])) == 9 - 2


def test_union_and_explicit_paths() -> None:
    got = names(["SC1->FC2", "self", "FC1->SC1"])
    assert got == ["FC1->FC1", "FC1->SC1", "FC2->FC2", "SC1->FC2", "SC1->SC1"]
    assert resolve_paths(["FC1->FC2"], FL) == [TrainPath(0, 1)]


def test_flavors_without_group_are_kept() -> None:
    assert len(names(["SC"], [None, None, None])) == 9


def test_errors() -> None:
    with pytest.raises(SpecError, match="unknown path set"):
        resolve_paths(["SCX"], FL, GR)
    with pytest.raises(FlavorError, match="not an input flavor"):
        resolve_paths(["FC1->XX"], FL, GR)
    with pytest.raises(SpecError, match="malformed"):
        resolve_paths(["FC1->"], FL, GR)
    with pytest.raises(FlavorError, match="select no path"):
        resolve_paths(["SC"], ["FC1"], ["FC"])
