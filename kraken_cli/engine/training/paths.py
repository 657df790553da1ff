"""Which paths (encoder -> decoder pairs) a model trains (UPSTREAM 7.1).

Path sets, for flavors with groups ``g(x)`` (``SC``/``FC``; a flavor without a group is kept
by every set):

=============  ====================================================
``SCFC``/all   every pair, self paths included
``self``       only ``x->x``
``SC``, ``FC`` pairs whose source and target are both in the group
``SC2FC``      all except ``FC->SC``
``FC2SC``      all except ``SC->FC``
``A->B``       one explicit path (names matched exactly)
=============  ====================================================

Several entries are united into one model (the original trained one model per entry). Paths
are in row-major order over the flavors: the encoder is the outer loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import FlavorError, SpecError

PATH_SETS = ("SCFC", "all", "self", "SC", "FC", "SC2FC", "FC2SC")


@dataclass(frozen=True, slots=True)
class TrainPath:
    """One trained path: encoder and decoder flavor indices."""

    source: int
    target: int

    def name(self, flavors: Sequence[str]) -> str:
        """``source->target`` with flavor names."""
        return f"{flavors[self.source]}->{flavors[self.target]}"


def _keep(spec: str, gs: str | None, gt: str | None, same: bool) -> bool:
    key = spec.upper()
    if key == "SELF":
        return same
    if key in ("SCFC", "ALL"):
        return True
    if gs is None or gt is None:
        return True
    if key in ("SC", "FC"):
        return gs.upper() == key and gt.upper() == key
    if key == "SC2FC":
        return not (gs.upper() == "FC" and gt.upper() == "SC")
    if key == "FC2SC":
        return not (gs.upper() == "SC" and gt.upper() == "FC")
    raise AssertionError(key)


def check_path_specs(specs: Sequence[str]) -> None:
    """Raise SpecError for an unknown set name or a malformed ``A->B`` (no flavors needed: before any input is read)."""
    for raw in specs:
        spec = raw.strip()
        if "->" in spec:
            src, _, dst = spec.partition("->")
            if not src.strip() or not dst.strip():
                raise SpecError(f"malformed path {raw!r}", hint="write explicit paths as SOURCE->TARGET")
        elif spec.upper() not in {s.upper() for s in PATH_SETS}:
            raise SpecError(f"unknown path set {raw!r}",
                            hint="use one of " + ", ".join(PATH_SETS) + ", or SOURCE->TARGET")


def resolve_paths(specs: Sequence[str], flavors: Sequence[str],
                  groups: Sequence[str | None] | None = None) -> list[TrainPath]:
    """The union of path specs as :class:`TrainPath` s, in row-major flavor order.

    Parameters
    ----------
    specs : sequence of str
        Path-set names (case-insensitive) or explicit ``A->B`` paths.
    flavors : sequence of str
        Flavor names in model order.
    groups : sequence of str or None, optional
        Group (``SC``/``FC``) of every flavor; None entries are kept by every set.

    Returns
    -------
    list of TrainPath

    Raises
    ------
    SpecError
        For an unknown set name or a malformed ``A->B``.
    FlavorError
        When an explicit path names a flavor that is not an input, or nothing is selected.

    Examples
    --------
    >>> fl = ["FCa", "SCb"]
    >>> [p.name(fl) for p in resolve_paths(["SC2FC"], fl, ["FC", "SC"])]
    ['FCa->FCa', 'SCb->FCa', 'SCb->SCb']
    """
    check_path_specs(specs)
    n = len(flavors)
    grp: list[str | None] = list(groups) if groups is not None else [None] * n
    chosen: set[tuple[int, int]] = set()
    index = {f: i for i, f in enumerate(flavors)}
    for raw in specs:
        spec = raw.strip()
        if "->" in spec:
            src, _, dst = spec.partition("->")
            src, dst = src.strip(), dst.strip()
            if not src or not dst:
                raise SpecError(f"malformed path {raw!r}", hint="write explicit paths as SOURCE->TARGET")
            for name in (src, dst):
                if name not in index:
                    raise FlavorError(f"path {raw!r} names {name!r}, which is not an input flavor",
                                      hint="input flavors: " + ", ".join(flavors))
            chosen.add((index[src], index[dst]))
            continue
        if spec.upper() not in {s.upper() for s in PATH_SETS}:
            raise SpecError(f"unknown path set {raw!r}",
                            hint="use one of " + ", ".join(PATH_SETS) + ", or SOURCE->TARGET")
        for i in range(n):
            for j in range(n):
                if _keep(spec, grp[i], grp[j], i == j):
                    chosen.add((i, j))
    if not chosen:
        raise FlavorError(f"the path sets {list(specs)} select no path for the flavors {list(flavors)}",
                          hint="check the flavor groups (@SC/@FC) or give explicit A->B paths")
    return [TrainPath(i, j) for i, j in sorted(chosen)]
