"""MATLAB trees: the interpretation shared by v5 (scipy) and v7.3 (HDF5) files.

A loaded file is a *tree*: a mapping of variable names to values, where a struct is a mapping,
a cell array is a list (or a lazy HDF5 cell), text is ``str`` / ``list[str]`` and numbers are
arrays (or lazy HDF5 arrays). :func:`sources_from_tree` finds the connectomes in a tree
(UPSTREAM 9.1 with the fixes of DESIGN 5): a data field, one struct per flavor, or a run output.
Loading lives in :mod:`._mat` (v5) and :mod:`._hdf5` (v7.3); both use this module, which uses
neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..connectome import EdgeSource, clean_subject_ids
from ..errors import FlavorError, InputDataError, SpecError
from ..flavors import (
    Flavor,
    canonical_name,
    is_latent_name,
    match_flavor,
    resolve_flavor,
)
from ._layout import ArrayLike, NumpyArray, plan_layout
from ._source import PlannedSource, finalize

#: Data fields tried in order when none is given (UPSTREAM 9.1).
FIELD_ORDER = ("data", "encoded", "FC", "SC", "C", "volnorm")
#: Subject-id fields, preferred first.
ID_FIELDS = ("subject", "subjects")
#: Variables that never hold data.
SKIP_NAMES = frozenset({"#refs#", "#subsystem#", "name_map", "__header__", "__version__", "__globals__"})

Tree = Mapping[str, Any]


# --------------------------------------------------------------------------- value helpers


def is_cell(value: Any) -> bool:
    """True for cell arrays (lists from v5, lazy cells from HDF5)."""
    return isinstance(value, list) or bool(getattr(value, "is_cell", False))


def is_array(value: Any) -> bool:
    """True for numeric arrays (numpy or lazy :class:`ArrayLike`)."""
    if isinstance(value, np.ndarray):
        return value.dtype.kind in "biuf"
    return hasattr(value, "take") and hasattr(value, "shape")


def to_numpy(value: Any, *, where: str) -> npt.NDArray[np.generic]:
    """A small value fully read as a numpy array."""
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "read"):
        return np.asarray(value.read())
    if isinstance(value, (int, float, bool)):
        return np.asarray(value)
    if is_cell(value):
        return np.asarray([to_numpy(v, where=where) for v in value])
    raise InputDataError(f"{where}: expected numbers, found {type(value).__name__}",
                         hint="check the file's fields")


def to_strings(value: Any) -> list[Any]:
    """Flatten text / numbers / cells into a flat list (strings or numbers)."""
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, bytes):
        return [value.decode("utf-8", "replace")]
    if is_cell(value):
        out: list[Any] = []
        for v in value:
            out.extend(to_strings(v))
        return out
    if hasattr(value, "read") and not isinstance(value, np.ndarray):
        value = value.read()
    arr = np.asarray(value)
    if arr.dtype == object:
        out = []
        for v in arr.ravel(order="F"):
            out.extend(to_strings(v))
        return out
    if arr.dtype.kind in "US":
        return [str(s) for s in arr.ravel()]
    return [x.item() if hasattr(x, "item") else x for x in arr.ravel(order="F")]


def subject_ids(value: Any) -> list[str] | None:
    """Cleaned subject ids from an id field, or None when it is absent or empty."""
    items = to_strings(value)
    if not items:
        return None
    return clean_subject_ids(items)


def as_array(value: Any, *, where: str) -> tuple[ArrayLike, bool]:
    """The :class:`ArrayLike` for a data value and whether axis 0 stacks cells."""
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        return NumpyArray(value), False
    if is_cell(value):
        if hasattr(value, "stack"):
            return value.stack(where=where), True
        if not value:
            raise InputDataError(f"{where}: the cell array is empty", hint="the file holds no connectomes")
        mats = []
        for i, v in enumerate(value):
            if not is_array(v):
                raise InputDataError(f"{where}: cell {i + 1} holds {type(v).__name__}, not a matrix",
                                     hint="each cell must be one subject's R x R matrix")
            m = to_numpy(v, where=where)
            mats.append(m.ravel() if m.ndim == 2 and 1 in m.shape and m.shape != (1, 1) else m)
        shapes = {m.shape for m in mats}
        if len(shapes) > 1:
            raise InputDataError(f"{where}: cells hold matrices of different shapes {sorted(shapes)[:3]}",
                                 hint="every subject's matrix must have the same size")
        return NumpyArray(np.stack(mats)), True
    if is_array(value):
        return value, False
    kind = "text" if isinstance(value, str) or (isinstance(value, list) and value and isinstance(value[0], str)) \
        else type(value).__name__
    raise InputDataError(f"{where}: the data field holds {kind}, not numbers",
                         hint="store the connectomes in the file's 'data' field (or C, SC, FC, volnorm)")


def trimask_pairs(value: Any, *, where: str) -> tuple[npt.NDArray[np.integer], npt.NDArray[np.integer]]:
    """(rows, cols) from a ``trimask``: R x R logical mask, (rows, cols) tuple or [2 x E] array."""
    hint = "trimask must be an R x R logical mask, a (rows, cols) pair or a [2 x E] 0-based index array"
    if is_cell(value) and len(value) == 2:
        rows, cols = (to_numpy(v, where=where) for v in value)
        return rows.ravel().astype(np.int64), cols.ravel().astype(np.int64)
    arr = to_numpy(value, where=where)
    if arr.ndim == 2 and arr.shape[0] == arr.shape[1] and arr.shape[0] > 2:
        uniq = np.unique(arr)
        if arr.dtype == np.bool_ or np.isin(uniq, (0, 1)).all():
            r, c = np.nonzero(arr)
            return r, c
    if arr.ndim == 2 and arr.shape[0] == 2:
        return arr[0].astype(np.int64), arr[1].astype(np.int64)
    if arr.ndim == 2 and arr.shape[1] == 2:
        return arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64)
    raise InputDataError(f"{where}: cannot read trimask of shape {arr.shape}", hint=hint)


# --------------------------------------------------------------------------- interpretation


def pick_field(tree: Tree, field: str | None) -> str | None:
    """The data field of a container: ``field`` if present, else the first of FIELD_ORDER."""
    if field is not None:
        return field if field in tree and not isinstance(tree[field], Mapping) else None
    for name in FIELD_ORDER:
        if name in tree and not isinstance(tree[name], Mapping):
            return name
    return None


def flavor_from_name(stem: str, *, field: str | None, file: str) -> Flavor:
    """Flavor of a single-flavor file given without FLAVOR=, from its file name.

    Raises
    ------
    SpecError
        When the file name is not a flavor name.
    """
    if is_latent_name(stem):
        return Flavor(stem)
    canon = canonical_name(stem, file_name=True)
    if canon is not None:
        return resolve_flavor(canon)
    if field == "encoded":
        return Flavor("encoded")
    raise SpecError(f"cannot tell the flavor of {file} from its name: give it as FLAVOR=PATH",
                    hint=f"name it on the command line: -i FLAVOR=PATH, e.g. -i FCcorr_fs86_hpf={file}")


def _first(tree: Tree, names: tuple[str, ...]) -> Any:
    for n in names:
        if n in tree:
            return tree[n]
    return None


def source_from_container(container: Tree, field: str, flavor: Flavor, *, file: str,
                          top: Tree | None = None, in_memory: bool, owner: object = None) -> EdgeSource:
    """One source from ``container[field]`` with ids, ``ismissing`` and ``trimask`` beside it.

    Ids, ``ismissing`` and ``trimask`` are looked up in ``container`` first, then in ``top``.
    """
    where = f"{file} ({flavor.name})"
    scopes = [container] + ([top] if top is not None and top is not container else [])

    def lookup(names: tuple[str, ...]) -> Any:
        for scope in scopes:
            v = _first(scope, names)
            if v is not None:
                return v
        return None

    subjects = subject_ids(lookup(ID_FIELDS))
    array, cells = as_array(container[field], where=f"{where}, field {field!r}")
    mask = lookup(("trimask",))
    pairs = trimask_pairs(mask, where=where) if mask is not None and not flavor.is_latent else None
    layout = plan_layout(array, where=where, flavor=flavor, n_ids=None if subjects is None else len(subjects),
                         trimask=pairs, cells=cells)
    keep = None
    missing = lookup(("ismissing",))
    if missing is not None:
        flags = np.asarray(to_numpy(missing, where=where), dtype=np.float64).ravel()
        if flags.size != layout.n_subjects:
            raise InputDataError(f"{where}: ismissing has {flags.size} entries for {layout.n_subjects} subjects",
                                 hint="ismissing must flag each subject once")
        dropped = flags > 0
        keep = np.flatnonzero(~dropped).astype(np.intp)
        if subjects is not None and len(subjects) == flags.size:
            subjects = [s for s, d in zip(subjects, dropped) if not d]
    src = PlannedSource(flavor, file, subjects, array, layout, keep=keep, owner=owner)
    return finalize(src, in_memory=in_memory)


def _prediction_source(tree: Tree, spec_flavor: Flavor | None, *, file: str, in_memory: bool,
                       owner: object) -> EdgeSource:
    pred = tree["predicted_alltypes"]
    hint = "give a run output with one input and one output (write one file per pair with -o '{input}_{output}.mat')"
    if not isinstance(pred, Mapping) or len(pred) != 1:
        names = list(pred) if isinstance(pred, Mapping) else []
        raise InputDataError(f"{file}: a run output with several inputs {names[:5]} cannot be one input",
                             hint=hint)
    (inp, outs), = pred.items()
    if not isinstance(outs, Mapping) or not outs:
        raise InputDataError(f"{file}: predicted_alltypes.{inp} holds no outputs", hint=hint)
    out_names = list(outs)
    out = out_names[0]
    if len(out_names) > 1:
        found = match_flavor(spec_flavor.name, out_names) if spec_flavor is not None else None
        if found is None:
            raise InputDataError(f"{file}: a run output with several outputs {out_names[:5]} cannot be one input",
                                 hint=hint)
        out = found
    if spec_flavor is not None:
        flavor = spec_flavor
    elif out == "encoded":
        flavor = Flavor(inp) if is_latent_name(inp) else Flavor("encoded")
    else:
        flavor = resolve_flavor(out)
    container = {"data": outs[out]}
    return source_from_container(container, "data", flavor, file=file, top=tree, in_memory=in_memory,
                                 owner=owner)


def sources_from_tree(tree: Tree, *, file: str, spec_flavor: Flavor | None, field: str | None,
                      in_memory: bool, owner: object = None) -> list[EdgeSource]:
    """Every connectome source in a loaded MATLAB / HDF5 / npz tree.

    Parameters
    ----------
    tree : mapping
        Variables of the file.
    file : str
        The file, for messages and for the flavor of a bare single-flavor file.
    spec_flavor : Flavor or None
        The flavor the user named (FLAVOR=PATH), or None for a bare path.
    field : str or None
        Data field to use (default: the first of ``data, encoded, FC, SC, C, volnorm``).
    in_memory : bool
        True when the tree's arrays are in memory (convert once), False for lazy arrays.
    owner : object
        Kept alive by lazy sources (the open file).
    """
    if "predicted_alltypes" in tree and field in (None, "predicted_alltypes"):
        return [_prediction_source(tree, spec_flavor, file=file, in_memory=in_memory, owner=owner)]
    chosen = pick_field(tree, field)
    if chosen is not None:
        flavor = spec_flavor or flavor_from_name(file_stem(file), field=chosen, file=file)
        return [source_from_container(tree, chosen, flavor, file=file, in_memory=in_memory, owner=owner)]
    structs = {k: v for k, v in tree.items()
               if k not in SKIP_NAMES and isinstance(v, Mapping) and pick_field(v, field) is not None}
    if structs:
        names = list(structs)
        if spec_flavor is not None:
            name = match_flavor(spec_flavor.name, names)
            if name is None:
                raise FlavorError(f"{file} has no struct for flavor {spec_flavor.name}; it holds {names}",
                                  hint=f"give one of {names} as FLAVOR, or the file alone to read them all")
            fld = pick_field(structs[name], field)
            assert fld is not None
            return [source_from_container(structs[name], fld, spec_flavor, file=file, top=tree,
                                          in_memory=in_memory, owner=owner)]
        out = []
        for name, sub in structs.items():
            fld = pick_field(sub, field)
            assert fld is not None
            out.append(source_from_container(sub, fld, resolve_flavor(name), file=file, top=tree,
                                             in_memory=in_memory, owner=owner))
        return out
    found = [k for k in tree if k not in SKIP_NAMES]
    wanted = repr(field) if field is not None else "any of " + ", ".join(FIELD_ORDER)
    raise InputDataError(f"{file}: no usable data field ({wanted}); the file holds {found[:10]}",
                         hint="store the connectomes in a field named data (or C, SC, FC, volnorm, encoded)")


def file_stem(file: str) -> str:
    """File name without its data extension (``a.dense.tsv`` -> ``a``)."""
    name = Path(file).name
    for ext in (".dense.tsv", ".mat", ".h5", ".hdf5", ".npz", ".npy", ".csv", ".tsv", ".txt"):
        if name.lower().endswith(ext):
            return name[: -len(ext)]
    return Path(name).stem


def matrix_from_tree(tree: Tree, *, where: str, field: str | None) -> npt.NDArray[np.generic]:
    """One subject's matrix (or edge vector) from a per-subject .mat file."""
    chosen = pick_field(tree, field)
    if chosen is None:
        found = [k for k in tree if k not in SKIP_NAMES]
        raise InputDataError(f"{where}: no usable data field; the file holds {found[:10]}",
                             hint="save the matrix as 'data' (or C, SC, FC)")
    value = tree[chosen]
    if not is_array(value):
        raise InputDataError(f"{where}: field {chosen!r} holds {type(value).__name__}, not a matrix",
                             hint="each per-subject file must hold one R x R matrix")
    return to_numpy(value, where=where)
