"""Fusion: latents averaged over groups of flavors (UPSTREAM 5, with DESIGN 5's fixes).

A fused latent is the plain mean of its flavors' latents (no re-normalization unless asked).
``NAME.noself`` leaves out the target flavor, ``NAME.noatlas`` every flavor of the target's atlas.
Empty groups and exclusions that leave nothing are errors, never NaNs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .errors import FlavorError, SpecError
from .flavors import atlas_of, group_of, match_flavor


@dataclass(frozen=True)
class FusionGroup:
    """A fusion input: its name, member flavors, and variant (``""``, ``"noself"`` or ``"noatlas"``)."""

    name: str
    members: tuple[str, ...]
    variant: str = ""

    @property
    def base(self) -> str:
        return self.name.split(".", 1)[0]

    def members_for(self, target: str) -> tuple[str, ...]:
        """Flavors averaged when decoding to ``target``."""
        if self.variant == "noself":
            return tuple(m for m in self.members if m != target)
        if self.variant == "noatlas":
            a = atlas_of(target)
            return tuple(m for m in self.members if atlas_of(m) != a)
        return self.members


def parse_fusion_include(items: Sequence[str]) -> dict[str, list[str]]:
    """``NAME=SEL[,SEL...]`` items -> ``{name: selectors}``; bare selectors go into ``fusion``."""
    groups: dict[str, list[str]] = {}
    for item in items:
        if "=" in item:
            name, _, sels = item.partition("=")
            name = name.strip()
            if not name.startswith("fusion"):
                raise SpecError(f"fusion group name {name!r} must start with 'fusion' (e.g. fusionSC=SC)",
                                hint="write --fusion-include fusionSC=SC")
        else:
            name, sels = "fusion", item
        parts = [s.strip() for s in sels.split(",") if s.strip()]
        if not parts:
            raise SpecError(f"fusion group {item!r} selects nothing",
                            hint="write NAME=all, NAME=SC, NAME=FC or flavors")
        groups.setdefault(name, []).extend(parts)
    return groups


def resolve_groups(spec: Mapping[str, Sequence[str]] | None, inputs: Sequence[str], *,
                   noself: bool = False, noatlas: bool = False) -> list[FusionGroup]:
    """Fusion groups over the connectome ``inputs`` (``all``, ``SC``, ``FC`` or flavor names)."""
    spec = spec or {"fusion": ["all"]}
    out: list[FusionGroup] = []
    for name, selectors in spec.items():
        members: list[str] = []
        for sel in selectors:
            if sel.lower() == "all":
                found = list(inputs)
            elif sel.upper() in ("SC", "FC"):
                found = [f for f in inputs if group_of(f) == sel.upper()]
            else:
                m = match_flavor(sel, list(inputs))
                if m is None:
                    raise FlavorError(f"fusion group {name}: {sel!r} is not one of the inputs {list(inputs)}",
                                      hint="select all, SC, FC or exact input flavor names")
                found = [m]
            members += [f for f in found if f not in members]
        if not members:
            raise FlavorError(f"fusion group {name} selects no input ({', '.join(selectors)} among {list(inputs)})",
                              hint="give inputs of that group, or drop the group from --fusion-include")
        out.append(FusionGroup(name, tuple(members)))
    variants = []
    for g in out:
        if noself:
            variants.append(FusionGroup(g.name + ".noself", g.members, "noself"))
        if noatlas:
            variants.append(FusionGroup(g.name + ".noatlas", g.members, "noatlas"))
    return out + variants


def check_variants(groups: Sequence[FusionGroup], targets: Sequence[str]) -> None:
    """Raise FlavorError when a ``.noself``/``.noatlas`` exclusion leaves nothing for some target."""
    for g in groups:
        for t in targets:
            if not g.members_for(t):
                raise FlavorError(
                    f"{g.name} has no flavor left when predicting {t} (its only members {list(g.members)} "
                    f"are excluded)", hint=f"add other inputs to {g.base}, or drop --fusion-{g.variant}")


def fuse(latents: Mapping[str, torch.Tensor], members: Sequence[str], *, normalize: bool = False) -> torch.Tensor:
    """Mean of the members' latents, optionally L2-normalised per row."""
    z = torch.stack([latents[m] for m in members]).mean(dim=0)
    return F.normalize(z, p=2, dim=1) if normalize else z
