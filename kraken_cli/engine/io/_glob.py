"""Per-subject files: a quoted glob such as ``'data/sub-*_fc.tsv'``, one subject's matrix per file.

Subject ids come from the ``sub-<label>`` entity of each file name, else from the part the
``*`` matched. Each file is a CSV/TSV/text matrix, a ``.npy`` array or a ``.mat`` file.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt

from ..connectome import EdgeSource, clean_subject_ids
from ..errors import InputDataError, SpecError
from ..flavors import Flavor, canonical_name, is_latent_name, resolve_flavor
from ._layout import NumpyArray, plan_layout
from ._mat import load_mat_bytes, matrix_from_tree
from ._source import PlannedSource, finalize
from ._text import read_text_bytes

_SUB_ENTITY = re.compile(r"(?:^|[_/\\.-])sub-([A-Za-z0-9]+)")
def read_matrix_bytes(data: bytes, name: str, *, where: str, field: str | None = None) -> npt.NDArray[np.generic]:
    """One subject's matrix (or edge vector) from the bytes of a file called ``name``."""
    low = name.lower()
    if not data:
        raise InputDataError(f"{where}: the file is empty", hint="re-create the file")
    if low.endswith(".mat"):
        return matrix_from_tree(load_mat_bytes(data, where=where), where=where, field=field)
    if low.endswith(".npy"):
        import io

        from ._numpy import read_npy_header

        fh = io.BytesIO(data)
        shape, dtype, offset = read_npy_header(fh, where=where)
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize
        if offset + need > len(data):
            raise InputDataError(f"{where}: header declares shape {shape} but the file is shorter",
                                 hint="the file is truncated or crafted; re-create it")
        fh.seek(0)
        try:
            arr: npt.NDArray[np.generic] = np.load(fh, allow_pickle=False)
            return arr
        except (ValueError, OSError, EOFError) as exc:
            raise InputDataError(f"{where}: not a readable .npy file ({exc})", hint="re-create the file") from exc
    table = read_text_bytes(data, suffix=Path(name).suffix, where=where, single=True)
    if table.square:
        return table.values
    if table.values.shape[0] == 1:
        return np.asarray(table.values[0])
    raise InputDataError(f"{where}: expected one subject's R x R matrix, got {table.values.shape[0]} rows "
                         f"of {table.values.shape[1]} values", hint="each per-subject file holds one square matrix")


def fix_stack(stack: npt.NDArray[np.generic], *, flavor: Flavor, where: str,
              subjects: list[str]) -> npt.NDArray[np.generic]:
    """Pipeline conventions (triangular, unassigned node, missing parcels) of stacked square matrices."""
    if stack.ndim != 3 or stack.shape[1] != stack.shape[2] or flavor.is_latent:
        return stack
    from ._pipelines import fix_matrices

    return fix_matrices(np.asarray(stack, dtype=np.float64), flavor=flavor, where=where, subjects=subjects)


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            while i + 1 < len(pattern) and pattern[i + 1] == "*":
                i += 1
            out.append(r"(.*?)")
        elif c == "?":
            out.append(r"(.)")
        elif c == "[":
            j = pattern.find("]", i + 2)
            if j < 0:
                out.append(re.escape(c))
            else:
                cls = pattern[i + 1:j]
                if cls.startswith("!"):
                    cls = "^" + cls[1:]
                out.append("([" + cls.replace("\\", "\\\\") + "])")
                i = j
        else:
            out.append(re.escape(c))
        i += 1
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def subject_from_file(file: str, regex: re.Pattern[str]) -> str:
    """``sub-<label>`` of the file name, else what the pattern's wildcards matched."""
    m = _SUB_ENTITY.search(os.path.basename(file))
    if m:
        return m.group(1)
    mm = regex.match(file)
    if mm is None:
        return Path(file).stem
    parts = [g for g in mm.groups() if g]
    return "_".join(parts) if parts else Path(file).stem


def _flavor_from_pattern(pattern: str) -> Flavor:
    base = os.path.basename(pattern)
    plain = re.sub(r"[*?]|\[[^\]]*\]", "", base)
    stem = plain.split(".")[0] if "." in plain else plain
    if is_latent_name(stem):
        return Flavor(stem)
    canon = canonical_name(plain, file_name=True) or canonical_name(stem, file_name=True)
    if canon is None:
        raise SpecError(f"cannot tell the flavor of the files {pattern!r} from their names: "
                        "give it as 'FLAVOR=PATTERN'",
                        hint=f"name it on the command line: -i 'FLAVOR={pattern}', e.g. -i 'FCcorr_fs86_hpf={pattern}'")
    return resolve_flavor(canon)


def read_glob(pattern: str, *, spec_flavor: Flavor | None, field: str | None) -> list[EdgeSource]:
    """One source from the per-subject files matching ``pattern`` (sorted by file name).

    Raises
    ------
    InputDataError
        When nothing matches, a file is unreadable, or matrices differ in shape.
    """
    expanded = os.path.expanduser(pattern)
    files = sorted(f for f in glob.glob(expanded, recursive=True) if os.path.isfile(f))
    if not files:
        raise InputDataError(f"no files match {pattern!r}",
                             hint="check the pattern; quote it so the shell passes it to kraken unexpanded")
    flavor = spec_flavor or _flavor_from_pattern(pattern)
    regex = _pattern_regex(expanded)
    ids = clean_subject_ids([subject_from_file(f, regex) for f in files])
    mats: list[npt.NDArray[np.generic]] = []
    for f in files:
        where = f"{f} ({flavor.name})"
        try:
            data = Path(f).read_bytes()
        except OSError as exc:
            raise InputDataError(f"{where}: cannot read ({exc.strerror})", hint="check permissions") from exc
        m = read_matrix_bytes(data, f, where=where, field=field)
        if m.ndim == 2 and 1 in m.shape and m.shape[0] != m.shape[1]:
            m = m.ravel()
        add_matrix(mats, m, where=where, first=files[0])
    return [stacked_source(mats, flavor=flavor, file=pattern, subjects=ids)]


def add_matrix(mats: list[npt.NDArray[np.generic]], m: npt.NDArray[np.generic], *, where: str, first: str) -> None:
    """Append one subject's matrix, refusing one of another shape than the first (``first``)."""
    if mats and m.shape != mats[0].shape:
        raise InputDataError(f"{where}: shape {m.shape} differs from {first} ({mats[0].shape})",
                             hint="every subject's matrix must have the same size")
    mats.append(m)


def stacked_source(mats: list[npt.NDArray[np.generic]], *, flavor: Flavor, file: str,
                   subjects: list[str]) -> EdgeSource:
    """One in-memory source of per-subject matrices (in subject order), after the pipeline conventions."""
    where = f"{file} ({flavor.name})"
    array = NumpyArray(fix_stack(np.stack(mats), flavor=flavor, where=where, subjects=subjects))
    layout = plan_layout(array, where=where, flavor=flavor, n_ids=len(subjects), cells=True)
    return finalize(PlannedSource(flavor, file, subjects, array, layout), in_memory=True)
