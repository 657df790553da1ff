"""Training record files (``*_trainrecord_*.mat``): the field layout, reading and writing.

The record itself is :class:`~kraken_cli.engine.training.record.TrainRecord`; this module turns
its fields into a MATLAB v5 file and back.

The original saves its record with ``scipy.io.savemat`` (MATLAB v5, compressed, long field
names; UPSTREAM 7.6). Lists of strings come back as space-padded char matrices and one-element
lists as plain strings, so :func:`read_record_fields` normalises every field:

* char arrays -> ``str`` (stripped), or ``list[str]`` for list fields (``trainpath_names``,
  ``subjects``, ``input_name_list`` ...) even with one element;
* cells -> lists; structs -> dicts (kraken's ``loss_terms_{train,val}``);
* metric arrays (``loss_*``, ``corrloss*``, ``avgcorr*``, ``avgrank*``, ``explainedvar*``,
  ``latentsim_*`` ending in ``_train``/``_val``) -> 2-D float arrays ``[P x E]`` (``[1 x E]``
  for the per-epoch latent statistics), whatever P and E are;
* 1 x 1 numbers -> Python scalars (``uint8`` flags -> ``bool``); 1 x n numbers -> 1-D arrays
  (always for index lists such as ``subjidx_val``, even with one element).

kraken writes the original's field names plus per-term losses as the structs
``loss_terms_train`` / ``loss_terms_val`` (term name -> ``[P x E]``), so either tool's records
are readable by both. ``NaN`` means "not computed at that epoch".
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.io

from ..errors import InputDataError
from ..io._atomic import atomic_path

__all__ = ["EPOCH_FIELDS", "LIST_FIELDS", "PATH_EPOCH_FIELDS", "VECTOR_FIELDS", "read_record_fields",
           "write_record_fields"]

#: Fields that are lists of strings even when they hold one element.
LIST_FIELDS = frozenset({
    "subjects", "trainpath_names", "trainpath_names_short", "input_name_list", "command_args",
    "inputfiles", "input_transformation_info_list",
})

#: Numeric fields that are 1-D vectors even with one element.
VECTOR_FIELDS = frozenset({
    "subjidx_train", "subjidx_val", "subjidx_test", "trainpath_multiple", "trainpath_encoder_index_list",
    "trainpath_decoder_index_list", "input_size_list", "orig_input_size_list", "dropout_schedule",
    "hiddenlayers", "epoch_timestamp",
})

_METRIC_PREFIXES = ("loss_", "corrloss", "avgcorr", "avgrank", "explainedvar", "latentsim_")


def _metric_bases() -> list[str]:
    """The original's per-path x per-epoch fields (UPSTREAM 7.6) plus the bidir ones, no split."""
    bases = ["loss", "corrloss", "corrlossN", "corrlossRank", "avgrank", "avgcorr", "avgcorr_other",
             "explainedvar", "avgcorr_OrigScale", "avgcorr_OrigScale_other", "avgcorr_resid_OrigScale",
             "avgcorr_resid_OrigScale_other", "corrloss_OrigScale", "corrlossN_OrigScale",
             "corrlossRank_OrigScale", "explainedvar_OrigScale", "corrloss_OrigScale_pred2true",
             "corrlossN_OrigScale_pred2true", "corrlossRank_OrigScale_pred2true",
             "corrloss_bidir_OrigScale", "corrlossN_bidir_OrigScale", "corrlossRank_bidir_OrigScale"]
    return bases


#: Per-path x per-epoch fields ``[P x E]`` a new record allocates (both splits).
PATH_EPOCH_FIELDS: tuple[str, ...] = tuple(f"{b}_{s}" for b in _metric_bases() for s in ("train", "val"))
#: Per-epoch fields ``[1 x E]`` (latent agreement across paths).
EPOCH_FIELDS: tuple[str, ...] = tuple(
    f"latentsim_{m}_{s}" for s in ("train", "val")
    for m in ("mse", "corr", "corr_other", "top1acc", "topNacc", "avgrank"))


def _is_metric_field(name: str) -> bool:
    return name.startswith(_METRIC_PREFIXES) and name.endswith(("_train", "_val"))


# --------------------------------------------------------------------------- reading


def _strings(arr: npt.NDArray[Any]) -> list[str]:
    return [str(s).strip() for s in arr.ravel()]


def _normalize(name: str, value: Any) -> Any:
    """One loadmat value -> plain Python / numpy (see module docstring)."""
    if not isinstance(value, np.ndarray):
        return value
    if value.dtype.names:  # struct
        if value.size == 0:
            return {}
        item = value.ravel()[0]
        return {k: _normalize(k, item[k]) for k in value.dtype.names}
    kind = value.dtype.kind
    if kind == "U" or kind == "S":
        items = _strings(value.astype(str))
        if name in LIST_FIELDS:
            return [s for s in items] if value.size else []
        if value.size == 0:
            return ""
        return items[0] if len(items) == 1 else items
    if kind == "O":  # cell array
        items = [_normalize(name + "[]", v) for v in value.ravel()]
        return items
    if _is_metric_field(name):
        return np.atleast_2d(np.asarray(value, dtype=np.float64))
    if name == "epoch_timestamp":
        return np.asarray(value, dtype=np.float64).ravel()
    if name in VECTOR_FIELDS:
        return value.ravel()
    if name.endswith("[]"):  # element of a cell
        if value.size == 1:
            return value.ravel()[0].item()
        return value.squeeze()
    if value.size == 1 and value.ndim <= 2:
        v = value.ravel()[0]
        if value.dtype == np.uint8:
            return bool(v)
        return v.item()
    if value.ndim == 2 and (value.shape[0] == 1 or value.size == 0):
        return value.ravel()
    return value


def read_record_fields(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The normalised fields (see the module docstring) of a record file, for
    :func:`~kraken_cli.engine.training.record.read_record`, which documents the errors."""
    p = Path(path)
    try:
        raw = scipy.io.loadmat(str(p), squeeze_me=False, chars_as_strings=True)
    except FileNotFoundError as exc:
        raise InputDataError(f"training record {p} does not exist",
                             hint="give the *_trainrecord_*.mat file written by training") from exc
    except (OSError, ValueError, TypeError, NotImplementedError, zlib.error) as exc:
        raise InputDataError(f"cannot read training record {p}: {exc}",
                             hint="training records are MATLAB v5 .mat files (*_trainrecord_*.mat)") from exc
    fields = {k: _normalize(k, v) for k, v in raw.items() if not k.startswith("__")}
    if "trainpath_names" not in fields:
        raise InputDataError(f"{p} is not a training record: it has no trainpath_names field",
                             hint="give the *_trainrecord_*.mat file written by training")
    return fields


# --------------------------------------------------------------------------- writing


def _to_mat(name: str, value: Any) -> Any:
    """A plain value -> something ``savemat`` writes the way the original did."""
    if isinstance(value, Mapping):
        return {str(k): _to_mat(str(k), v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        if value and all(isinstance(v, str) for v in value):
            if name == "command_args":  # a cell of strings, as the original
                cell = np.empty((1, len(value)), dtype=object)
                for i, v in enumerate(value):
                    cell[0, i] = v
                return cell
            return np.array(list(value), dtype=str)
        if not value:
            return np.zeros((0, 0))
        if all(isinstance(v, (int, float, bool, np.number)) for v in value):
            return np.asarray(value)
        cell = np.empty((1, len(value)), dtype=object)
        for i, v in enumerate(value):
            cell[0, i] = _to_mat(name + "[]", v)
        return cell
    if isinstance(value, Path):
        return str(value)
    return value


def write_record_fields(fields: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write record fields (``None`` left out) as a MATLAB v5 file, atomically; see
    :func:`~kraken_cli.engine.training.record.write_record`."""
    out = {k: _to_mat(k, v) for k, v in fields.items() if v is not None}
    final = Path(path)
    with atomic_path(final) as tmp, open(tmp, "wb") as fh:
        scipy.io.savemat(fh, out, format="5", do_compression=True, long_field_names=True, oned_as="row")
    return final
