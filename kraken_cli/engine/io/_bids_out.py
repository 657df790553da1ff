"""BIDS derivatives output (``--format bids -o OUTDIR``): one dense relmat TSV per subject and prediction.

Layout (BEP017 connectivity derivatives; read back by :mod:`._bids`)::

    OUTDIR/dataset_description.json          DatasetType derivative, GeneratedBy kraken
    OUTDIR/participants.tsv                  participant_id, subject (the ids as kraken read them)
    OUTDIR/sub-<id>[/ses-<s>]/<func|dwi>/sub-<id>[_ses-<s>]_atlas-<a>_meas-<M>_desc-<source>_relmat.dense.tsv
    ... and beside each TSV its ``_relmat.json`` sidecar

``<M>`` is the original's BIDS measure name (``FCcorrHPF``, ``SCifod2actVN``, UPSTREAM 9.5);
``<source>`` is the input flavor or fusion group the prediction came from, letters and digits only.
Matrices are R x R, tab-separated, with NaN on the (invalid) diagonal. Files are written to a
private folder beside OUTDIR while predicting, and moved into OUTDIR (each atomically) at the end.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..connectome import n_regions_from_edges, tri_to_square
from ..digest import file_sha256
from ..errors import OutputError, SpecError
from ..flavors import atlas_of, canonical_name, group_of
from ._atomic import atomic_path, scratch_dir

log = logging.getLogger(__name__)

_FC = re.compile(r"^(?P<base>FCcorr|FCpcorr|FCcov)_(?P<atlas>[A-Za-z0-9]+)_(?P<filt>hpf|bpf|nofilt)(?P<gsr>gsr)?$")
_SC = re.compile(r"^(?P<base>SCifod2act|SCsdstream)_(?P<atlas>[A-Za-z0-9]+)_"
                 r"(?P<proc>volnorm|count|sift2|sift2volnorm)$")
_FILT = {"hpf": "HPF", "bpf": "BPF", "nofilt": "NF"}
_PROC = {"volnorm": "VN", "count": "Count", "sift2": "SiftCount", "sift2volnorm": "SiftVN"}
_SES_ID = re.compile(r"^(?:sub-)?(?P<sub>[A-Za-z0-9]+)_ses-(?P<ses>[A-Za-z0-9]+)$")


def meas_of(flavor: str) -> tuple[str, str] | None:
    """``(meas, atlas)`` of a connectome flavor in the original's BIDS naming, or None.

    >>> meas_of("FCcorr_fs86_hpfgsr"), meas_of("SCifod2act_shen268_sift2volnorm"), meas_of("encoded")
    (('FCcorrHPFGSR', 'fs86'), ('SCifod2actSiftVN', 'shen268'), None)
    """
    name = canonical_name(flavor) or flavor
    m = _FC.match(name)
    if m:
        return f"{m['base']}{_FILT[m['filt']]}{'GSR' if m['gsr'] else ''}", m["atlas"]
    m = _SC.match(name)
    if m:
        return f"{m['base']}{_PROC[m['proc']]}", m["atlas"]
    return None


def desc_of(source: str) -> str:
    """``desc-`` label of a source: ``FCcorr_fs86_hpf`` -> ``FCcorrfs86hpf``, ``fusion.noself`` -> ``fusionnoself``."""
    return re.sub(r"[^A-Za-z0-9]", "", source)


@dataclass
class Provenance:
    """What the sidecars record besides the flavor: model, fused sources, adaptation."""

    checkpoints: list[str]
    adaptations: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    fusion_members: Mapping[str, Sequence[str]] = field(default_factory=dict)
    inputs: Sequence[str] = ()
    sha256: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.sha256:
            self.sha256 = [file_sha256(c) if Path(c).is_file() else "" for c in self.checkpoints]


def subject_path(subject: str) -> tuple[str, str | None]:
    """``(sub label, ses label or None)`` of a subject id (letters and digits only)."""
    m = _SES_ID.match(subject)
    if m:
        return m["sub"], m["ses"]
    return re.sub(r"[^A-Za-z0-9]", "", subject.removeprefix("sub-")), None


def check_bids_plan(outdir: Path, sources: Sequence[str], outputs: Sequence[str], widths: Mapping[str, int],
                    subjects: Sequence[str]) -> None:
    """Everything that would stop a BIDS output, checked before any compute.

    Raises
    ------
    SpecError
        For latent outputs, flavors without a BIDS measure name, or clashing labels.
    OutputError
        When OUTDIR is a file or another pipeline's derivatives folder.
    """
    for o in outputs:
        if o == "encoded" or meas_of(o) is None:
            raise SpecError(f"--format bids cannot write {o}: it has no BIDS relmat measure name",
                            hint="BIDS output holds connectome flavors; write latents with --format npz or mat")
        if n_regions_from_edges(widths[o]) is None:
            raise SpecError(f"--format bids: {o} has {widths[o]} values, not a square matrix's edges")
    descs = [desc_of(s) for s in sources]
    if len(set(descs)) != len(descs) or "" in descs:
        raise SpecError(f"--format bids: sources {list(sources)} give clashing desc- labels {descs}",
                        hint="rename the fusion groups (--fusion-include NAME=...) with letters and digits")
    labels = [subject_path(s) for s in subjects]
    if len(set(labels)) != len(labels) or any(not sub for sub, _ in labels):
        raise SpecError("--format bids: subject ids do not give distinct sub- labels (letters and digits only)",
                        hint="give subject ids made of letters and digits")
    if outdir.exists() and not outdir.is_dir():
        raise OutputError(f"-o {outdir} is a file; --format bids writes a folder", hint="name a folder with -o")
    desc = outdir / "dataset_description.json"
    if desc.is_file():
        try:
            gen = json.loads(desc.read_text()).get("GeneratedBy") or [{}]
            names = {str(g.get("Name", "")) for g in gen if isinstance(g, dict)}
        except (OSError, ValueError, AttributeError):
            names = set()
        if "kraken" not in names:
            raise OutputError(f"{outdir} is another pipeline's derivatives folder (dataset_description.json)",
                              hint="write kraken's predictions to a folder of their own, e.g. derivatives/kraken")


class BidsWriter:
    """Writes predictions as BIDS derivatives, chunk by chunk (see module docstring)."""

    def __init__(self, outdir: Path, sources: Sequence[str], outputs: Sequence[str], subjects: Sequence[str],
                 provenance: Provenance) -> None:
        self.outdir = Path(outdir)
        self.pairs = [(s, o) for s in sources for o in outputs]
        self.subjects = list(subjects)
        self.prov = provenance
        self.stage = scratch_dir(self.outdir)
        self.written: list[Path] = []
        self.rows = 0

    def _name(self, subject: str, source: str, output: str) -> Path:
        sub, ses = subject_path(subject)
        meas, atlas = meas_of(output) or ("", "")
        datatype = "dwi" if (group_of(output) or "").upper() == "SC" else "func"
        folder = Path(f"sub-{sub}") / (f"ses-{ses}" if ses else "") / datatype
        ses_ent = f"_ses-{ses}" if ses else ""
        return folder / f"sub-{sub}{ses_ent}_atlas-{atlas}_meas-{meas}_desc-{desc_of(source)}_relmat.dense.tsv"

    def sidecar(self, subject: str, source: str, output: str) -> dict[str, Any]:
        from kraken_cli import __version__

        meas, atlas = meas_of(output) or ("", "")
        members = list(self.prov.fusion_members.get(source, [source]))
        adapted = {m: dict(self.prov.adaptations[m]) for m in members if m in self.prov.adaptations}
        return {
            "Measure": meas, "Flavor": output, "Atlas": atlas or atlas_of(output),
            "Description": f"{output} connectome predicted by Krakencoder from {source}",
            "Weighted": True, "Directed": False, "ValidDiagonal": False, "StorageFormat": "Full",
            "Source": source, "SourcesFused": members,
            "Subject": subject,
            "Checkpoint": [Path(c).name for c in self.prov.checkpoints],
            "CheckpointSHA256": list(self.prov.sha256),
            "Adaptation": adapted or None,
            "KrakenVersion": __version__,
        }

    def write_rows(self, start: int, chunk: Mapping[tuple[str, str], npt.NDArray[np.float32]]) -> None:
        n = 0
        for s, o in self.pairs:
            x = np.asarray(chunk[(s, o)], dtype=np.float32)
            n = x.shape[0]
            mats = tri_to_square(x, diagonal=np.nan)
            for i in range(n):
                subject = self.subjects[start + i]
                rel = self._name(subject, s, o)
                path = self.stage / rel
                path.parent.mkdir(parents=True, exist_ok=True)
                np.savetxt(path, mats[i], fmt="%.9g", delimiter="\t")
                side = path.with_name(path.name.replace("_relmat.dense.tsv", "_relmat.json"))
                side.write_text(json.dumps(self.sidecar(subject, s, o), indent=1) + "\n")
        self.rows += n

    def _dataset_files(self) -> None:
        from kraken_cli import __version__

        desc = {"Name": "kraken predicted connectomes", "BIDSVersion": "1.9.0", "DatasetType": "derivative",
                "GeneratedBy": [{"Name": "kraken", "Version": __version__,
                                 "Description": "Krakencoder connectome predictions (kraken run --format bids)"}],
                "SourceDatasets": [{"URL": Path(p).resolve().as_uri()} for p in self.prov.inputs
                                   if "*" not in p and Path(p).exists()]}
        (self.stage / "dataset_description.json").write_text(json.dumps(desc, indent=1) + "\n")
        if not any(subject_path(s)[1] for s in self.subjects):
            lines = ["participant_id\tsubject"] + [f"sub-{subject_path(s)[0]}\t{s}" for s in self.subjects]
            (self.stage / "participants.tsv").write_text("\n".join(lines) + "\n")

    def close(self) -> Path:
        if self.rows != len(self.subjects):
            raise OutputError(f"{self.outdir}: {self.rows} of {len(self.subjects)} subjects were written",
                              hint="this is a bug in the caller; the output was not saved")
        try:
            self._dataset_files()
            for src in sorted(p for p in self.stage.rglob("*") if p.is_file()):
                final = self.outdir / src.relative_to(self.stage)
                final.parent.mkdir(parents=True, exist_ok=True)
                with atomic_path(final) as tmp:
                    os.replace(src, tmp)
                self.written.append(final)
        except OSError as exc:
            raise OutputError(f"could not write {self.outdir}: {exc.strerror or exc}",
                              hint="check free disk space and permissions") from exc
        finally:
            shutil.rmtree(self.stage, ignore_errors=True)
        return self.outdir

    def abort(self) -> None:
        shutil.rmtree(self.stage, ignore_errors=True)


def check_bids_options(output: str | None, outputs: Sequence[str]) -> None:
    """Usage errors of ``--format bids`` (before any input is read)."""
    if not output:
        raise SpecError("--format bids needs -o OUTDIR",
                        hint="name the derivatives folder to write, e.g. -o derivatives/kraken")
    if "{" in output:
        raise SpecError(f"--format bids writes one folder; -o {output} has a placeholder",
                        hint="give a folder name without {input}/{output}")
    if "encoded" in outputs:
        raise SpecError("--format bids cannot write encoded latents", hint="write latents with --format npz or mat")
