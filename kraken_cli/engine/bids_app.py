"""``kraken run --bids DERIV_DIR OUTDIR``: find pipeline outputs in a derivatives folder and name the inputs.

A derivatives folder holds one dataset per pipeline (``xcp_d/``, ``qsirecon/``, ...; or is one
itself, with ``sub-*`` folders at its top). :func:`discover` lists what kraken can read there:

* kraken / ``collect_input_data`` relmats (``meas-`` names a flavor): used as they are;
* XCP-D relmats and QSIRecon ``*_connectivity.mat``: used only when ``-i FLAVOR=SELECTOR`` names
  their flavor (kraken never maps an atlas onto a flavor by itself); otherwise reported as skipped
  with the ``-i`` that would use them.

In ``--bids`` mode ``-i FLAVOR=X`` may name a dataset folder under DERIV_DIR (``xcp_d:seg-fs86``)
or only a selector (``seg-fs86_task-rest``, a ``.mat`` key), which picks the one dataset that has
matching files.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from .errors import InputDataError, SpecError
from .flavors import FlavorSpec, atlas_of

log = logging.getLogger(__name__)


@dataclass
class Found:
    """One kind of file found in a dataset of the derivatives folder."""

    dataset: str  # folder, relative to DERIV_DIR ("." for DERIV_DIR itself)
    pipeline: str  # kraken, XCP-D or QSIRecon
    what: str  # entities or keys that tell this kind apart
    n_files: int
    used_as: str | None = None  # the -i spec that reads it, when used
    suggestion: str = ""  # the -i option that would read it
    flavor: str = ""  # the flavor a kraken relmat's meas- names

    def summary(self) -> dict[str, Any]:
        return {"dataset": self.dataset, "pipeline": self.pipeline, "what": self.what, "files": self.n_files,
                "used_as": self.used_as, "suggestion": self.suggestion, "flavor": self.flavor}


@dataclass
class Discovery:
    """Datasets found and the inputs chosen."""

    found: list[Found] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)


def _dataset_of(rel: str) -> str:
    top = rel.split("/", 1)[0]
    return "." if top.startswith("sub-") or "/" not in rel else top


def _files(deriv: Path, outdir: Path) -> dict[str, list[str]]:
    """Relative file names per dataset, leaving out OUTDIR and hidden folders."""
    out_real = os.path.realpath(outdir)
    per: dict[str, list[str]] = {}
    for dirpath, dirnames, filenames in os.walk(deriv):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".")
                             and os.path.realpath(os.path.join(dirpath, d)) != out_real)
        for fn in sorted(filenames):
            rel = PurePosixPath(Path(dirpath, fn).relative_to(deriv).as_posix()).as_posix()
            per.setdefault(_dataset_of(rel), []).append(rel)
    return per


def discover(deriv: Path, outdir: Path) -> list[Found]:
    """What kraken can read in ``deriv`` (OUTDIR left out)."""
    from .io._bids import BIDS_FILE, flavor_from_meas
    from .io._pipelines_dir import PIPELINE_FILE, entities

    found: dict[tuple[str, str, str], Found] = {}

    def add(dataset: str, pipeline: str, what: str, suggestion: str = "", flavor: str = "") -> None:
        key = (dataset, pipeline, what)
        if key not in found:
            found[key] = Found(dataset, pipeline, what, 0, suggestion=suggestion, flavor=flavor)
        found[key].n_files += 1

    for dataset, names in _files(deriv, outdir).items():
        for rel in names:
            name = PurePosixPath(rel).name
            m = BIDS_FILE.match(name)
            if m is not None:
                fl = flavor_from_meas(m["meas"], m["atlas"])
                what = f"atlas-{m['atlas']}_meas-{m['meas']}" + (f"_desc-{m['desc']}" if m["desc"] else "")
                add(dataset, "kraken", what, f"-i {fl[0] if fl else 'FLAVOR'}={dataset}:{what}", fl[0] if fl else "")
                continue
            p = PIPELINE_FILE.match(name)
            if p is None:
                continue
            ents = entities(name)
            if p["ext"] == ".mat":
                add(dataset, "QSIRecon", "connectivity.mat", _mat_suggestion(deriv / rel, dataset))
            else:
                atlas = ents.get("seg") or ents.get("atlas") or "?"
                ent = "seg" if "seg" in ents else "atlas"
                known = atlas_of(f"FCcorr_{atlas}_hpf") is not None
                add(dataset, "XCP-D", f"{ent}-{atlas}",
                    f"-i {f'FCcorr_{atlas}_<hpf|hpfgsr|...>' if known else 'FLAVOR'}={dataset}:{ent}-{atlas}")
    return sorted(found.values(), key=lambda f: (f.dataset, f.pipeline, f.what))


def _fits(f: Found, sel: str) -> bool:
    """Whether files of kind ``f`` can match the selector (entities, or a .mat key)."""
    from .io._pipelines_dir import parse_selector

    wanted, key = parse_selector(sel)
    if key is not None:
        return f.pipeline == "QSIRecon"
    if f.pipeline == "QSIRecon":
        return not wanted
    norm = {"seg": "atlas"}
    have = {norm.get(k, k): v.lower() for k, _, v in (t.partition("-") for t in f.what.split("_")) if v}
    return all(have.get(norm.get(k, k), v.lower()) == v.lower() for k, v in wanted.items())


def _mat_suggestion(path: Path, dataset: str) -> str:
    """``-i`` for a QSIRecon file, naming its first variable (listed without loading the data)."""
    try:
        import scipy.io

        keys = [k for k, _, _ in scipy.io.whosmat(path) if k.endswith("_connectivity")]
    except Exception:
        keys = []
    return f"-i SCifod2act_<atlas>_<count|sift2|volnorm>={dataset}:{keys[0] if keys else 'KEY'}"


def _resolve_input(text: str, deriv: Path, found: list[Found]) -> str:
    """``FLAVOR=X`` with X a dataset folder under DERIV_DIR, a selector, or an ordinary path."""
    spec = FlavorSpec.parse(text)
    path, _, sel = spec.path.partition(":")
    if (deriv / path).is_dir() and path not in ("", "."):
        dataset, target = path.strip("/"), f"{deriv / path}" + (f":{sel}" if sel else "")
    elif Path(os.path.expanduser(path)).exists():
        return text
    else:
        sel = spec.path
        cands = sorted({f.dataset for f in found if _fits(f, sel)})
        if len(cands) != 1:
            raise SpecError(f"--bids: {'no' if not cands else 'several'} datasets in {deriv} match {sel!r}"
                            + (f" ({', '.join(cands)})" if cands else ""),
                            hint="name the dataset folder: -i FLAVOR=FOLDER:SELECTOR, e.g. -i FLAVOR=xcp_d:seg-fs86")
        dataset = cands[0]
        target = f"{deriv if dataset == '.' else deriv / dataset}:{sel}"
    head = spec.flavor + (f"@{spec.group}" if spec.group else "") if spec.flavor else None
    resolved = f"{head}={target}" if head else target
    for f in found:
        if f.dataset == dataset and f.used_as is None and _fits(f, sel):
            f.used_as = resolved
    return resolved


def plan_bids_inputs(deriv: str, outdir: str, inputs: tuple[str, ...]) -> Discovery:
    """The ``-i`` specs of a ``--bids`` run, and what was found, used and skipped.

    Raises
    ------
    InputDataError
        When DERIV_DIR is not a folder or holds nothing kraken can use.
    SpecError
        When an ``-i`` selector matches no dataset or several.
    """
    root = Path(os.path.expanduser(deriv))
    if not root.is_dir():
        raise InputDataError(f"--bids: {deriv} is not a folder", hint="give the derivatives folder of your pipelines")
    found = discover(root, Path(os.path.expanduser(outdir)))
    disc = Discovery(found)
    if inputs:
        disc.inputs = [_resolve_input(i, root, found) for i in inputs]
        return disc
    for f in found:
        if f.pipeline == "kraken" and f.flavor and "_desc-" not in f.what:
            folder = root if f.dataset == "." else root / f.dataset
            f.used_as = f"{f.flavor}={folder}:{f.what}"
            disc.inputs.append(f.used_as)
    if not disc.inputs:
        tips = "; ".join(f"{f.pipeline} {f.dataset}/{f.what}: {f.suggestion}" for f in found[:4])
        raise InputDataError(f"--bids: {deriv} holds no input kraken can use without a flavor name"
                             + (f" (found {len(found)} kinds of pipeline output)" if found else ""),
                             hint=("name each input's flavor: " + tips) if found
                             else "expected XCP-D relmats, QSIRecon *_connectivity.mat or kraken relmat files")
    return disc
