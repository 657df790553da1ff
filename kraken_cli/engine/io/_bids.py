"""BIDS-like folders and zips of ``sub-<id>_atlas-<atlas>_meas-<MEAS>[_desc-x]_relmat.dense.tsv``.

The naming follows the original's ``collect_input_data.py`` (UPSTREAM 9.5): ``MEAS`` is a base
(``FCcorr``, ``FCpcorr``, ``SCifod2act``, ``SCsdstream``), a filter (``HPF``, ``BPF``, ``NF``),
``GSR``, and an SC processing (``VN``, ``Count``, ``SiftCount`` -> ``_sift2``, ``SiftVN`` ->
``_sift2volnorm``). Subject ids come from ``participants.tsv`` (column ``subject``, else
``participant_id`` without ``sub-``), in its order; without it, from the file names, sorted.
Every participant must have every flavor. Files may be ``.tsv``, ``.csv`` or ``.mat`` (field ``data``).
"""

from __future__ import annotations

import csv
import io
import logging
import re
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np
import numpy.typing as npt

from ..connectome import EdgeSource, clean_subject_ids
from ..errors import FlavorError, InputDataError
from ..flavors import Flavor, canonical_name, flavor_sort_key, match_flavor, resolve_flavor
from ._glob import add_matrix, read_matrix_bytes, stacked_source
from ._limits import check_expansion

log = logging.getLogger(__name__)

BIDS_FILE = re.compile(
    r"^sub-(?P<sub>[A-Za-z0-9]+)_(?:[A-Za-z0-9]+-[A-Za-z0-9]+_)*?(?:atlas|seg)-(?P<atlas>[A-Za-z0-9]+)_"
    r"(?:[A-Za-z0-9]+-[A-Za-z0-9]+_)*?meas-(?P<meas>[A-Za-z0-9]+)(?:_desc-(?P<desc>[A-Za-z0-9]+))?"
    r"_relmat\.dense\.(?P<ext>tsv|csv|mat)$")
_MEAS = re.compile(r"^(?P<base>FCcorr|FCcov|FCpcorr|SCifod2act|SCsdstream)(?P<filt>HPF|BPF|NF|NOFILT)?"
                   r"(?P<gsr>GSR)?(?P<proc>SiftCount|Sift2Count|SiftVN|Sift2VN|Sift2|VN|Count)?$", re.IGNORECASE)
_BASES = {"fccorr": "FCcorr", "fccov": "FCcorr", "fcpcorr": "FCpcorr", "scifod2act": "SCifod2act",
          "scsdstream": "SCsdstream"}
_FILTERS = {"hpf": "hpf", "bpf": "bpf", "nf": "nofilt", "nofilt": "nofilt"}
_PROCS = {"vn": "volnorm", "count": "count", "siftcount": "sift2", "sift2count": "sift2", "sift2": "sift2",
          "siftvn": "sift2volnorm", "sift2vn": "sift2volnorm"}
#: Largest member read from a zip (a per-subject matrix is far smaller).
_MAX_MEMBER_BYTES = 2**30


def flavor_from_meas(meas: str, atlas: str) -> tuple[str, str] | None:
    """(flavor name, group) for a BIDS ``meas-`` and ``atlas-`` pair, or None when unknown.

    >>> flavor_from_meas("FCcorrHPFGSR", "fs86"), flavor_from_meas("SCifod2actSiftVN", "fs86")
    (('FCcorr_fs86_hpfgsr', 'FC'), ('SCifod2act_fs86_sift2volnorm', 'SC'))
    """
    m = _MEAS.match(meas)
    if m is None:
        return None
    base = _BASES[m["base"].lower()]
    if base.startswith("FC"):
        if m["filt"] is None or m["proc"] is not None:
            return None
        name = f"{base}_{atlas}_{_FILTERS[m['filt'].lower()]}{'gsr' if m['gsr'] else ''}"
        group = "FC"
    else:
        if m["proc"] is None or m["filt"] is not None or m["gsr"]:
            return None
        name = f"{base}_{atlas}_{_PROCS[m['proc'].lower()]}"
        group = "SC"
    return canonical_name(name) or name, group


class _Container:
    """Files of a folder or a zip, by relative POSIX name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.zip: zipfile.ZipFile | None = None
        if root.is_dir():
            self.names = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
        else:
            try:
                self.zip = zipfile.ZipFile(root)
            except (zipfile.BadZipFile, OSError, ValueError) as exc:
                raise InputDataError(f"{root}: not a readable zip file ({exc})",
                                     hint="check that the archive is complete") from exc
            self.names = sorted(i.filename for i in self.zip.infolist() if not i.is_dir())

    def where(self, name: str) -> str:
        return f"{self.root}:{name}" if self.zip is not None else str(self.root / name)

    def read(self, name: str) -> bytes:
        try:
            if self.zip is None:
                return (self.root / name).read_bytes()
            info = self.zip.getinfo(name)
            if info.file_size > _MAX_MEMBER_BYTES:
                raise InputDataError(f"{self.where(name)}: {info.file_size:,} bytes is too large for one matrix",
                                     hint="the archive may be crafted")
            check_expansion(info.compress_size, info.file_size, what="the member", where=self.where(name))
            return self.zip.read(info)
        except (OSError, zipfile.BadZipFile, KeyError, EOFError) as exc:
            raise InputDataError(f"{self.where(name)}: cannot read ({exc})",
                                 hint="the folder or archive may be incomplete") from exc

    def close(self) -> None:
        if self.zip is not None:
            self.zip.close()


def _participants(box: _Container) -> tuple[list[str], dict[str, str]] | None:
    """(labels in order, label -> subject id) from the shallowest participants.tsv, if any."""
    cands = [n for n in box.names if PurePosixPath(n).name == "participants.tsv"]
    if not cands:
        return None
    name = min(cands, key=lambda n: (n.count("/"), n))
    where = box.where(name)
    try:
        text = box.read(name).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputDataError(f"{where}: not a text file", hint="participants.tsv must be tab-separated text") from exc
    rows = list(csv.DictReader(io.StringIO(text), delimiter="\t"))
    if not rows:
        raise InputDataError(f"{where}: lists no participants", hint="add one row per subject")
    cols = rows[0].keys()
    if "participant_id" not in cols and "subject" not in cols:
        raise InputDataError(f"{where}: needs a participant_id or subject column, found {list(cols)}",
                             hint="participants.tsv columns: participant_id, subject, ...")
    labels, ids = [], {}
    for row in rows:
        pid = (row.get("participant_id") or "").strip()
        sid = (row.get("subject") or "").strip()
        label = pid[4:] if pid.startswith("sub-") else (pid or sid)
        if label.startswith("sub-"):
            label = label[4:]
        labels.append(label)
        ids[label] = sid or label
    return labels, ids


def read_bids(root: Path, *, spec_flavor: Flavor | None, field: str | None,
              select: str | None = None) -> list[EdgeSource]:
    """One source per flavor found in a BIDS-like folder or zip.

    ``select`` (``-i FLAVOR=DIR:SELECTOR``) keeps the files with these entities (``desc-fusion``,
    ``seg-fs86_task-rest``) or names the ``.mat`` variable of QSIRecon files. A folder without kraken
    relmats is read as XCP-D / QSIRecon derivatives (:mod:`._pipelines_dir`).

    Raises
    ------
    InputDataError
        When no relmat files are found, a participant lacks a flavor, or a file is unreadable.
    FlavorError
        When the requested flavor is not in the folder.
    """
    box = _Container(root)
    try:
        return _read_bids(box, spec_flavor=spec_flavor, field=field, select=select)
    finally:
        box.close()


def _read_bids(box: _Container, *, spec_flavor: Flavor | None, field: str | None,
               select: str | None) -> list[EdgeSource]:
    from ._pipelines_dir import matches, parse_selector, read_pipeline_files

    wanted, _ = parse_selector(select)
    names = [n for n in box.names if matches(n, wanted)]
    files, groups, sessions = _relmat_files(box, names)
    if not files:
        return [read_pipeline_files(box, names, spec_flavor=spec_flavor, select=select)]
    flavors = sorted(files, key=flavor_sort_key)
    if spec_flavor is not None:
        found = match_flavor(spec_flavor.name, flavors)
        if found is None:
            raise FlavorError(f"{box.root} has no files for flavor {spec_flavor.name}; it holds {sorted(flavors)}",
                              hint="give one of those flavor names, or the folder alone to read them all")
        flavors = [found]
    labels, id_of = _subject_labels(box, files, flavors, sessions)
    subjects = clean_subject_ids([id_of[lab] for lab in labels])
    out: list[EdgeSource] = []
    for flav in flavors:
        flavor = spec_flavor if spec_flavor is not None else _resolve(flav, groups[flav])
        out.append(_flavor_source(box, flavor, [files[flav][lab] for lab in labels], subjects, field))
    return out


def _relmat_files(box: _Container, names: list[str]) -> tuple[dict[str, dict[str, str]], dict[str, str], bool]:
    """flavor -> subject label -> member, flavor -> SC/FC group, and whether labels carry sessions."""
    from ._pipelines_dir import entities

    files: dict[str, dict[str, str]] = {}
    groups: dict[str, str] = {}
    sessions = False
    for name in names:
        m = BIDS_FILE.match(PurePosixPath(name).name)
        if m is None:
            continue
        ses = entities(name).get("ses")
        label = m["sub"] if ses is None else f"{m['sub']}_ses-{ses}"
        sessions = sessions or ses is not None
        fl = flavor_from_meas(m["meas"], m["atlas"])
        if fl is None:
            raise InputDataError(f"{box.where(name)}: unknown measure meas-{m['meas']}",
                                 hint="meas- must be like FCcorrHPF, FCcorrHPFGSR, FCpcorrHPF, SCifod2actVN, "
                                      "SCsdstreamCount, SCifod2actSiftCount or SCifod2actSiftVN")
        flav, group = fl
        groups[flav] = group
        per = files.setdefault(flav, {})
        if label in per:
            raise InputDataError(f"{box.root}: two files for subject {label} and flavor {flav}: "
                                 f"{per[label]} and {name}",
                                 hint="keep one relmat file per subject and measure, or choose with entities "
                                      f"after the path, e.g. -i {box.root}:desc-{m['desc'] or 'NAME'}")
        per[label] = name
    return files, groups, sessions


def _subject_labels(box: _Container, files: dict[str, dict[str, str]], flavors: list[str],
                    sessions: bool) -> tuple[list[str], dict[str, str]]:
    """Subject labels in order (participants.tsv's when there is one) and their ids; every flavor for each."""
    part = None if sessions else _participants(box)
    if part is not None:
        labels, id_of = part
        for flav in flavors:
            extra = sorted(set(files[flav]) - set(labels))
            if extra:
                log.warning("%s: %d %s files belong to no participant in participants.tsv (e.g. %s); ignored",
                            box.root, len(extra), flav, extra[:3])
    else:
        labels = sorted({lab for flav in flavors for lab in files[flav]})
        id_of = {lab: lab for lab in labels}
    missing = [(lab, flav) for flav in flavors for lab in labels if lab not in files[flav]]
    if missing:
        ex = ", ".join(f"sub-{lab} {flav}" for lab, flav in missing[:5])
        raise InputDataError(f"{box.root}: {len(missing)} participant/flavor files are missing, e.g. {ex}",
                             hint="every participant needs every flavor; drop incomplete participants "
                                  "from participants.tsv")
    return list(labels), dict(id_of)


def _resolve(name: str, group: str) -> Flavor:
    try:
        return resolve_flavor(name)
    except FlavorError:
        return resolve_flavor(name, group)


def _flavor_source(box: _Container, flavor: Flavor, members: list[str], subjects: list[str],
                   field: str | None) -> EdgeSource:
    mats: list[npt.NDArray[np.generic]] = []
    reader: Callable[[str], bytes] = box.read
    for name in members:
        where = f"{box.where(name)} ({flavor.name})"
        add_matrix(mats, read_matrix_bytes(reader(name), name, where=where, field=field), where=where,
                   first=members[0])
    return stacked_source(mats, flavor=flavor, file=str(box.root), subjects=subjects)
