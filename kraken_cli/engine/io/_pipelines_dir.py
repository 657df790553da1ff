"""Derivatives folders (and zips) of XCP-D and QSIRecon/QSIPrep: one matrix file per subject.

* XCP-D: ``sub-<id>[_ses-<s>]_..._seg-<atlas>_stat-pearsoncorrelation_relmat.tsv`` (0.8 and later),
  the ``atlas-<atlas>`` variant, and the older ``..._atlas-<atlas>_measure-<m>_conmat.tsv``;
  labelled square TSVs (:mod:`._pipelines`).
* QSIRecon / QSIPrep: ``sub-<id>_..._connectivity.mat`` with one variable per atlas and measure.

The flavor is always named (``-i FLAVOR=DIR``). Files are narrowed by a selector after the path,
``-i FLAVOR=DIR:seg-4S156Parcels_task-rest`` (BIDS entities that must all be in the file name) or
``-i FLAVOR=DIR:KEY`` (the ``.mat`` variable). Without ``seg-``/``atlas-`` in the selector, only
files of the flavor's own atlas are used: kraken never maps an atlas onto a flavor silently.
Subject ids are the ``sub-`` labels, with ``_ses-<label>`` when files have sessions.
"""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from ..connectome import EdgeSource, clean_subject_ids
from ..errors import InputDataError, SpecError
from ..flavors import Flavor
from ._pipelines import connectivity_keys, matrices_source, region_labels, suggest_flavor

if TYPE_CHECKING:
    from ._bids import _Container

log = logging.getLogger(__name__)

PIPELINE_FILE = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)_(?:.*_)?(?P<suffix>relmat|conmat|connectivity)(?P<ext>\.dense\.tsv|\.tsv|\.csv|\.mat)$")
ENTITY = re.compile(r"^[A-Za-z0-9]+-[A-Za-z0-9]+$")


def entities(name: str) -> dict[str, str]:
    """BIDS ``key-value`` entities of a file name.

    >>> entities("sub-01_ses-2_seg-fs86_stat-pearsoncorrelation_relmat.tsv")["seg"]
    'fs86'
    """
    out: dict[str, str] = {}
    for tok in PurePosixPath(name).name.split(".")[0].split("_"):
        if ENTITY.match(tok):
            k, _, v = tok.partition("-")
            out.setdefault(k, v)
    return out


def parse_selector(select: str | None) -> tuple[dict[str, str], str | None]:
    """``seg-x_task-y`` -> ({seg: x, task: y}, None); anything else is a ``.mat`` key."""
    if not select:
        return {}, None
    toks = select.split("_")
    if all(ENTITY.match(t) for t in toks):
        return {k: v for k, v in (t.split("-", 1) for t in toks)}, None
    return {}, select


def matches(name: str, wanted: dict[str, str]) -> bool:
    ents = entities(name)
    return all(ents.get(k, "").lower() == v.lower() for k, v in wanted.items())


def _atlas(ents: dict[str, str]) -> str | None:
    return ents.get("seg") or ents.get("atlas")


def _subject(name: str) -> str:
    ents = entities(name)
    return ents["sub"] + (f"_ses-{ents['ses']}" if "ses" in ents else "")


def pipeline_files(names: list[str]) -> list[str]:
    """Names of XCP-D / QSIRecon per-subject matrix files."""
    return [n for n in names if PIPELINE_FILE.match(PurePosixPath(n).name)]


def read_pipeline_files(box: _Container, names: list[str], *, spec_flavor: Flavor | None,
                        select: str | None) -> EdgeSource:
    """One source from the XCP-D / QSIRecon files of a folder or zip (already narrowed by entities).

    Raises
    ------
    InputDataError
        When no file fits, a subject has several files, or a file is unreadable.
    SpecError
        When the flavor is not named.
    """
    _, key = parse_selector(select)
    wanted, _ = parse_selector(select)
    cands = pipeline_files(names)
    if not cands:
        raise InputDataError(f"{box.root}: no sub-<id>_atlas-<atlas>_meas-<MEAS>_relmat.dense.tsv files found, "
                             "nor XCP-D relmats or QSIRecon connectivity files"
                             + (f" matching {select!r}" if select else ""),
                             hint="give a BIDS-like folder or zip, or -i FLAVOR=FILE for a single file")
    if spec_flavor is None:
        atl = sorted({_atlas(entities(n)) or "?" for n in cands})
        raise SpecError(f"{box.root}: pipeline outputs (atlases {atl}) need a flavor name; kraken never guesses one",
                        hint=f"e.g. -i FCcorr_{atl[0]}_hpf={box.root}:seg-{atl[0]} for XCP-D relmats, or "
                             f"-i SCifod2act_fs86_sift2={box.root}:KEY for QSIRecon .mat files")
    mats = [n for n in cands if n.endswith(".mat")]
    tables = [n for n in cands if not n.endswith(".mat")]
    if key is not None or (mats and (not tables or spec_flavor.group == "SC")):
        return _mat_source(box, mats, flavor=spec_flavor, key=key)
    return _table_source(box, tables, flavor=spec_flavor, wanted=wanted)


def _by_subject(box: _Container, files: list[str]) -> dict[str, str]:
    per: dict[str, list[str]] = {}
    for n in files:
        per.setdefault(_subject(n), []).append(n)
    dup = {s: fs for s, fs in per.items() if len(fs) > 1}
    if dup:
        s, fs = next(iter(dup.items()))
        varying = sorted({f"{k}-{v}" for f in fs for k, v in entities(f).items()
                          if any(entities(g).get(k) != v for g in fs)})
        raise InputDataError(f"{box.root}: subject {s} has {len(fs)} matching files (they differ in "
                             f"{', '.join(varying[:8])})",
                             hint="narrow the files with entities after the path, e.g. "
                                  f"-i FLAVOR={box.root}:{'_'.join(varying[:1]) or 'task-rest'}")
    return {s: fs[0] for s, fs in sorted(per.items())}


def _table_source(box: _Container, files: list[str], *, flavor: Flavor, wanted: dict[str, str]) -> EdgeSource:
    from ._text import read_text_bytes

    if "seg" not in wanted and "atlas" not in wanted and flavor.atlas is not None:
        found = sorted({_atlas(entities(n)) or "?" for n in files})
        files = [n for n in files if (_atlas(entities(n)) or "").lower() == flavor.atlas.lower()]
        if not files:
            raise InputDataError(f"{box.root}: no relmat files of atlas {flavor.atlas} (seg-/atlas- entity); "
                                 f"the folder has atlases {found}",
                                 hint=f"to read another atlas as {flavor.name}, name it: "
                                      f"-i {flavor.name}={box.root}:seg-{found[0]}")
    chosen = _by_subject(box, files)
    stack: list[Any] = []
    labels = None
    for name in chosen.values():
        where = f"{box.where(name)} ({flavor.name})"
        table = read_text_bytes(box.read(name), suffix=".tsv" if ".tsv" in name else ".csv", where=where)
        if not table.square:
            raise InputDataError(f"{where}: not a square matrix", hint="relmat files hold one R x R matrix")
        if stack and table.values.shape != stack[0].shape:
            raise InputDataError(f"{where}: shape {table.values.shape} differs from {stack[0].shape}",
                                 hint="every subject's matrix must come from the same atlas")
        if labels is not None and table.labels is not None and table.labels != labels:
            raise InputDataError(f"{where}: node labels differ from the first subject's",
                                 hint="every subject's matrix must come from the same atlas")
        labels = labels or table.labels
        stack.append(table.values)
    log.info("%s: read %d %s files as %s", box.root, len(chosen), "relmat", flavor.name)
    return matrices_source(np.stack(stack), flavor=flavor, file=str(box.root),
                           subjects=clean_subject_ids(list(chosen)), labels=labels)


def _choose_key(tree: dict[str, Any], *, where: str, flavor: Flavor, key: str | None) -> str:
    keys = connectivity_keys(tree)
    if key is not None:
        if key not in tree:
            raise InputDataError(f"{where}: no variable {key!r}; its connectivity matrices are {keys[:8]}",
                                 hint="choose one of those keys after the path: -i FLAVOR=DIR:KEY")
        return key
    own = [k for k in keys if flavor.atlas is not None and f"{flavor.atlas.lower()}_" in k.lower()]
    if len(own) == 1:
        return own[0]
    shown = own or keys
    raise SpecError(f"{where}: choose one of the connectivity matrices {shown[:8]}",
                    hint=f"-i {flavor.name}=DIR:KEY, e.g. :{shown[0] if shown else 'KEY'}"
                         + ("" if shown else f" (none found; {suggest_flavor('atlas_x_count_connectivity')})"))


def _mat_source(box: _Container, files: list[str], *, flavor: Flavor, key: str | None) -> EdgeSource:
    from ._mat import load_mat_bytes, to_numpy

    if not files:
        raise InputDataError(f"{box.root}: no *_connectivity.mat files", hint="give the QSIRecon output folder")
    chosen = _by_subject(box, files)
    stack: list[Any] = []
    labels = None
    for name in chosen.values():
        where = box.where(name)
        tree = dict(load_mat_bytes(box.read(name), where=where))
        k = _choose_key(tree, where=where, flavor=flavor, key=key)
        key = k
        mat = np.asarray(to_numpy(tree[k], where=where), dtype=np.float64)
        if mat.ndim != 2 or mat.shape[0] != mat.shape[1] or (stack and mat.shape != stack[0].shape):
            raise InputDataError(f"{where}: {k} has shape {mat.shape}",
                                 hint="every subject's matrix must be R x R from the same atlas")
        labels = labels or region_labels(tree, k)
        stack.append(mat)
    if labels is not None and len(labels) != stack[0].shape[0]:
        labels = None
    log.info("%s: read %s from %d QSIRecon files as %s", box.root, key, len(chosen), flavor.name)
    return matrices_source(np.stack(stack), flavor=flavor, file=str(box.root),
                           subjects=clean_subject_ids(list(chosen)), labels=labels)
