"""Flavor names: canonical forms, groups (SC/FC), atlases, and ``FLAVOR[@GROUP]=PATH`` specs.

A *flavor* is one connectivity type such as ``FCcorr_fs86_hpf``. Canonicalization follows the
original's rules (UPSTREAM 9.2) with kraken's fixes (DESIGN 4, 5): every name in the flavor
database is a fixed point (``SCifod2act_fs86_sift2`` stays as it is), the ``coco*`` atlases are
known, and an unknown flavor is accepted only when its group is given (``myflavor@SC``).
The rules read whole ``_``-separated parts, never substrings: a part that is not an atlas,
measure, filter, processing step or group makes the name unknown (a typo such as
``FCcorrzz_fs86_hpf`` is an error with a "did you mean" hint, not ``FCcorr_fs86_hpf``); only
file names may carry leading labels and an extension (``mydata_shen268_FCpcorr_hpf.mat``).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ValidationError, field_validator

from .errors import FlavorError, SpecError

GROUPS = ("SC", "FC")
#: Atlas order used to sort flavors in tables and heatmaps.
ATLAS_ORDER = (
    "fs86", "cocoyeo143", "cocolaus157", "cocoyeo243", "cocolaus262",
    "shen268", "cocoyeo443", "coco439", "cocolaus491",
)
_ATLAS_SIZES = {"fs86": 86, "shen268": 268, "coco439": 439, "cocoyeo243": 243}


@dataclass(frozen=True, slots=True)
class Flavor:
    """One connectivity flavor.

    Attributes
    ----------
    name : str
        Canonical name, e.g. ``FCcorr_fs86_hpf``.
    group : str or None
        ``"SC"`` or ``"FC"`` (None for latents such as ``encoded`` or ``fusion``).
    atlas : str or None
        Parcellation, e.g. ``fs86``; None when unknown.
    n_regions : int or None
        Number of regions R of the atlas when known (edges are R(R-1)/2).
    """

    name: str
    group: str | None = None
    atlas: str | None = None
    n_regions: int | None = None

    @property
    def is_latent(self) -> bool:
        """True for ``encoded`` and ``fusion*`` inputs, which are latents, not connectomes."""
        return is_latent_name(self.name)

    @property
    def n_edges(self) -> int | None:
        """Edges of the strict upper triangle, when the atlas size is known."""
        return None if self.n_regions is None else self.n_regions * (self.n_regions - 1) // 2


@lru_cache(maxsize=1)
def flavor_database() -> dict[str, dict[str, Any]]:
    """The original's flavor database (``flavordb.json``): flavor -> group, atlas, matrixsize, files."""
    text = resources.files("kraken_cli.engine.resources").joinpath("flavordb.json").read_text()
    data: dict[str, dict[str, Any]] = json.loads(text)
    return data


def is_latent_name(name: str) -> bool:
    """``encoded``, ``fusion...`` and ``mean`` name latent inputs rather than connectomes."""
    return name == "encoded" or name == "mean" or name.startswith("fusion")


def atlas_of(name: str) -> str | None:
    """The atlas a flavor name mentions (case-insensitive), or None.

    >>> atlas_of("FCcorr_fs86_hpf"), atlas_of("SCifod2act_cocommpsuit439_volnorm")
    ('fs86', 'coco439')
    """
    low = name.lower()
    if "fs86" in low:
        return "fs86"
    if "shen268" in low:
        return "shen268"
    if "coco439" in low or "cocommpsuit439" in low:
        return "coco439"
    m = re.search(r"(coco[a-z]*\d+)", low)
    if m:
        return m.group(1)
    return None


def group_of(name: str) -> str | None:
    """SC/FC group guessed from a name (``FC...`` is FC; ``SC...``/sdstream/ifod2act is SC)."""
    if name in flavor_database():
        return str(flavor_database()[name]["group"])
    if name.startswith("FC"):
        return "FC"
    low = name.lower()
    if name.startswith("SC") or "sdstream" in low or "ifod2act" in low:
        return "SC"
    if "fccorr" in low or "fccov" in low or "pcorr" in low:
        return "FC"
    return None


_ATLAS_TOKEN = re.compile(r"fs86|shen268|coco[a-z]*\d+")
_MEASURES = {"fccorr": ("FCcorr", False), "fccov": ("FCcorr", False), "fccorrgsr": ("FCcorr", True),
             "fccovgsr": ("FCcorr", True), "pcorr": ("FCpcorr", False), "fcpcorr": ("FCpcorr", False),
             "sdstream": ("SCsdstream", False), "scsdstream": ("SCsdstream", False),
             "ifod2act": ("SCifod2act", False), "scifod2act": ("SCifod2act", False)}
_FILTER_TOKEN = re.compile(r"(hpf|bpf|nofilt)(gsr)?")
_PROC_TOKENS = ("sift2", "count", "volnorm", "icv", "sift2count", "sift2volnorm", "volnormicv", "sift2volnormicv")
#: joined processing parts -> canonical processing (kraken fix: sift2count is the database's sift2)
_PROCS = {"count": "count", "sift2": "sift2", "sift2count": "sift2", "volnorm": "volnorm",
          "sift2volnorm": "sift2volnorm", "volnormicv": "volnormicv", "sift2volnormicv": "sift2volnormicv"}
_FILE_EXT = re.compile(r"\.(mat|npy|npz|h5|hdf5|tsv|csv|txt|pt)$|\.$", re.IGNORECASE)


@dataclass
class _Parts:
    """The parts of a flavor name, sorted by what they are."""

    atlas: set[str] = field(default_factory=set)
    measure: set[str] = field(default_factory=set)
    filt: set[str] = field(default_factory=set)
    gsr: bool = False
    procs: list[str] = field(default_factory=list)
    groups: set[str] = field(default_factory=set)

    def take(self, low: str) -> bool:
        """Record one lower-case part; False when it is no part kraken knows."""
        if _ATLAS_TOKEN.fullmatch(low):
            self.atlas.add(atlas_of(low) or low)
        elif low in _MEASURES:
            meas, g = _MEASURES[low]
            self.measure.add(meas)
            self.gsr = self.gsr or g
        elif (fm := _FILTER_TOKEN.fullmatch(low)) is not None:
            self.filt.add(fm.group(1))
            self.gsr = self.gsr or fm.group(2) is not None
        elif low == "gsr":
            self.gsr = True
        elif low in _PROC_TOKENS:
            self.procs.append(low)
        elif low in ("fc", "sc"):
            self.groups.add(low.upper())
        else:
            return False
        return True


def _split_parts(name: str, *, file_name: bool) -> tuple[_Parts | None, str]:
    """Sort the ``_``-separated parts of ``name``; (None, the problem) at the first unknown part.

    In a file name (implied by a data-file extension), leading labels before the first flavor part
    (``mydata_``, ``sub-01_``) and the extension are allowed.
    """
    m = _FILE_EXT.search(name)
    if m is not None:
        file_name = True
        name = name[:m.start()]
    parts = _Parts()
    started = False
    for part in (p for p in re.split(r"[_.]" if file_name else r"_", name) if p):
        if parts.take(part.lower()):
            started = True
        elif not (file_name and not started):  # a leading label of a file name is skipped
            return None, f"part {part!r} is not an atlas, measure, filter or processing step kraken knows"
    return parts, ""


def _parse_parts(name: str, *, file_name: bool) -> tuple[str | None, str]:
    """Canonical name from the ``_``-separated parts of ``name``, or (None, the problem).

    Every part must be an atlas, a measure, an FC filter (with ``gsr``), an SC processing step or a
    group (``FC``/``SC``), each at most once; a part with anything else in it (``FCcorrzz``,
    ``typo``) makes the name unknown instead of being dropped.
    """
    parts, problem = _split_parts(name, file_name=file_name)
    if parts is None:
        return None, problem
    if len(parts.atlas) != 1:
        return None, ("it names no known atlas" if not parts.atlas
                      else f"it names several atlases {sorted(parts.atlas)}")
    if len(parts.measure) != 1:
        return None, ("it names no known measure" if not parts.measure
                      else f"it names several measures {sorted(parts.measure)}")
    (meas,), (atl,) = parts.measure, parts.atlas
    if parts.groups and parts.groups != {meas[:2]}:
        return None, f"its group {'/'.join(sorted(parts.groups))} contradicts the measure {meas}"
    return _fc_name(parts, meas, atl) if meas.startswith("FC") else _sc_name(parts, meas, atl)


def _fc_name(parts: _Parts, meas: str, atl: str) -> tuple[str | None, str]:
    if parts.procs:
        return None, f"the SC processing {'_'.join(parts.procs)!r} does not apply to the FC measure {meas}"
    if len(parts.filt) != 1:
        return None, ("it names no FC filter (hpf, bpf or nofilt)" if not parts.filt
                      else f"it names several filters {sorted(parts.filt)}")
    return f"{meas}_{atl}_{next(iter(parts.filt))}{'gsr' if parts.gsr else ''}", ""


def _sc_name(parts: _Parts, meas: str, atl: str) -> tuple[str | None, str]:
    if parts.filt or parts.gsr:
        return None, f"an FC filter or gsr does not apply to the SC measure {meas}"
    proc = _PROCS.get("".join(parts.procs))
    if proc is None:
        return None, ("it names no SC processing (count, sift2, volnorm, sift2volnorm)" if not parts.procs
                      else f"the SC processing {'_'.join(parts.procs)!r} is not one kraken knows")
    return f"{meas}_{atl}_{proc}", ""


def _strip_brackets(name: str) -> str:
    name = name.strip()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    return name


def canonical_name(name: str, *, file_name: bool = False) -> str | None:
    """Canonical flavor name, or None when the name cannot be canonicalized.

    Names in the flavor database and latent names are fixed points. A name with an unknown part
    (``FCcorrzz_fs86_hpf``, ``FCcorr_fs86_hpf_gsr_typo``) is None rather than the flavor its
    known parts spell. ``file_name=True`` (implied by a data-file extension such as ``.mat``)
    also allows leading labels, as in ``mydata_shen268_FCpcorr_hpf.mat``.

    >>> canonical_name("fs86_hpf_FCcov"), canonical_name("SCifod2act_fs86_sift2")
    ('FCcorr_fs86_hpf', 'SCifod2act_fs86_sift2')
    >>> canonical_name("FCcorrzz_fs86_hpf") is None
    True
    """
    name = _strip_brackets(name)
    if name in flavor_database() or is_latent_name(name):
        return name
    return _parse_parts(name, file_name=file_name)[0]


def unknown_flavor_error(name: str) -> FlavorError:
    """The :class:`FlavorError` for a name that is no known flavor: what is wrong, and the nearest names."""
    raw = _strip_brackets(name)
    problem = _parse_parts(raw, file_name=False)[1] or "it is not a flavor kraken knows"
    close = difflib.get_close_matches(raw, list(flavor_database()), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]}? Or, f" if close else "F"
    return FlavorError(
        f"unknown flavor {raw!r}: {problem}",
        hint=hint + f"or a custom parcellation give its group, e.g. -i {raw}@SC=PATH or {raw}@FC=PATH",
    )


def resolve_flavor(name: str, group: str | None = None) -> Flavor:
    """Turn a user-given name (and optional ``@GROUP``) into a :class:`Flavor`.

    Raises
    ------
    FlavorError
        When the name is not a known or canonicalizable flavor and no group was given.
    """
    raw = name.strip()
    if raw.startswith("[") and raw.endswith("]"):
        raw = raw[1:-1]
    if group is not None:
        group = group.upper()
        if group not in GROUPS:
            raise SpecError(f"group {group!r} of flavor {raw!r} must be SC or FC",
                            hint="write FLAVOR@SC=PATH or FLAVOR@FC=PATH")
    if is_latent_name(raw):
        return Flavor(raw)
    canon = canonical_name(raw)
    if canon is None:
        if group is None:
            raise unknown_flavor_error(raw)
        return Flavor(raw, group, atlas_of(raw), None)
    db = flavor_database().get(canon)
    atlas = db["atlas"] if db else atlas_of(canon)
    n_regions = int(db["matrixsize"][0]) if db else _ATLAS_SIZES.get(atlas or "")
    return Flavor(canon, group or group_of(canon), atlas, n_regions)


def match_flavor(name: str, candidates: list[str] | tuple[str, ...]) -> str | None:
    """Find ``name`` among ``candidates`` exactly, else by canonical form (never by substring)."""
    if name in candidates:
        return name
    canon = canonical_name(name)
    if canon is None:
        return None
    for c in candidates:
        if canonical_name(c) == canon:
            return c
    return None


def flavor_sort_key(name: str) -> tuple[int, int, int, int, str]:
    """Sort key for display: flavors first (FC before SC, pcorr last within FC), fusion last."""
    fusion = 1 if is_latent_name(name) else 0
    variant = 1 if (".noatlas" in name or ".noself" in name) else 0
    grp = group_of(name)
    sc = 1 if grp == "SC" else 0
    atlas = atlas_of(name)
    a = ATLAS_ORDER.index(atlas) if atlas in ATLAS_ORDER else len(ATLAS_ORDER)
    pcorr = 1 if "pcorr" in name.lower() else 0
    return (fusion, variant, sc * 10 + pcorr, a, name)


# --------------------------------------------------------------------------- specs

_FLAVOR_TOKEN = re.compile(r"^\[?[A-Za-z0-9_.+\-]+\]?(@[A-Za-z0-9_]+)?$")


class FlavorSpec(BaseModel):
    """A user's ``FLAVOR[@GROUP]=PATH`` (or a bare ``PATH`` to a multi-flavor file).

    Split at the first ``=`` whose left side parses as a flavor spec, so paths may contain ``=``.
    """

    flavor: str | None = None
    group: str | None = None
    path: str

    @field_validator("path")
    @classmethod
    def _path_not_empty(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("the path after '=' is empty")
        return v

    @field_validator("group")
    @classmethod
    def _group_known(cls, v: str | None) -> str | None:
        if v is not None and v.upper() not in GROUPS:
            raise ValueError(f"group must be SC or FC, got {v!r}")
        return None if v is None else v.upper()

    @classmethod
    def parse(cls, text: str) -> FlavorSpec:
        """Parse ``FLAVOR[@GROUP]=PATH`` or ``PATH``.

        Raises
        ------
        SpecError
            For an empty spec, an empty path, or a bad group.

        >>> FlavorSpec.parse("FCcorr_fs86_hpf@FC=dir/a=b.mat").path
        'dir/a=b.mat'
        """
        text = text.strip()
        if not text:
            raise SpecError("empty input spec", hint="write -i FLAVOR=PATH, e.g. -i FCcorr_fs86_hpf=fc.mat")
        flavor = group = None
        path = text
        start = 0
        while True:
            i = text.find("=", start)
            if i < 0:
                break
            left = text[:i]
            if _FLAVOR_TOKEN.match(left):
                name, _, grp = left.partition("@")
                flavor, group, path = name, (grp or None), text[i + 1:]
                break
            start = i + 1
        if flavor is not None and flavor.startswith("[") and flavor.endswith("]"):
            flavor = flavor[1:-1]
        try:
            return cls(flavor=flavor, group=group, path=path)
        except ValidationError as exc:
            msgs = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SpecError(f"malformed input spec {text!r}: {msgs}",
                            hint="write FLAVOR[@SC|@FC]=PATH, e.g. FCcorr_fs86_hpf=fc.mat") from None

    def to_flavor(self) -> Flavor | None:
        """The resolved flavor, or None for a bare multi-flavor path."""
        return None if self.flavor is None else resolve_flavor(self.flavor, self.group)
