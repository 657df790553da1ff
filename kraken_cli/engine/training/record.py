"""Training records: :class:`TrainRecord`, dict-like field access plus helpers for metrics and epochs.

Records are files ``*_trainrecord_*.mat`` in the original's layout (UPSTREAM 7.6); reading and
writing them, and the field layout, live in :mod:`._record_io`. kraken writes the original's
field names plus per-term losses as the structs ``loss_terms_train`` / ``loss_terms_val`` (term
name -> ``[P x E]``), so either tool's records are readable by both. ``NaN`` means "not computed
at that epoch".
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np
import numpy.typing as npt

from ..metrics import METRIC_NAMES, canonical_metric, record_field
from ._record_io import (
    EPOCH_FIELDS,
    PATH_EPOCH_FIELDS,
    read_record_fields,
    write_record_fields,
)

log = logging.getLogger(__name__)

__all__ = ["EPOCH_FIELDS", "PATH_EPOCH_FIELDS", "TrainRecord", "read_record", "write_record"]

FloatArray = npt.NDArray[np.float64]
#: Rows of the path axis: all (``slice(None)``), one index, or several.
PathIndex = int | slice | Sequence[int] | npt.NDArray[np.integer]


def read_record(path: str | os.PathLike[str]) -> TrainRecord:
    """Read a training record written by the original or by kraken.

    Parameters
    ----------
    path : path-like
        ``*_trainrecord_*.mat`` (or the original's ``run_model --newtrainrecord`` output).

    Returns
    -------
    TrainRecord

    Raises
    ------
    InputDataError
        When the file cannot be read as a MATLAB v5 file or has no ``trainpath_names``.
    """
    return TrainRecord(read_record_fields(path), path=Path(path))


def write_record(record: TrainRecord | Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Write a training record as a MATLAB v5 file with the original's field names, atomically.

    Parameters
    ----------
    record : TrainRecord or mapping
        Field name -> value; ``None`` values are left out.
    path : path-like
        Destination ``.mat`` file.

    Returns
    -------
    Path
        The written file.
    """
    return write_record_fields(record.fields if isinstance(record, TrainRecord) else dict(record), path)


def _interp_nan(row: FloatArray) -> FloatArray:
    """Fill NaNs by linear interpolation over epochs (constant beyond the ends)."""
    ok = np.isfinite(row)
    if ok.all() or not ok.any():
        return row
    e = np.arange(row.size)
    return np.interp(e, e[ok], row[ok])


class TrainRecord(MutableMapping[str, Any]):
    """A training record: dict-like field access plus helpers for metrics and epochs.

    Parameters
    ----------
    fields : mapping
        Field name -> value, normalised as :func:`read_record` does.
    path : Path, optional
        The file the record was read from (shown in figures).

    Examples
    --------
    >>> rec = TrainRecord.empty(["A->A", "A->B"], 3)
    >>> rec.set_metrics(1, {"top1acc": [0.5, 0.25]}, split="val", origscale=True)
    >>> rec.metric("top1acc").shape, rec.best_epoch("top1acc")
    ((2, 3), 1)
    """

    def __init__(self, fields: Mapping[str, Any] | None = None, *, path: Path | None = None) -> None:
        self.fields: dict[str, Any] = dict(fields or {})
        self.path = path

    # -- mapping protocol
    def __getitem__(self, key: str) -> Any:
        return self.fields[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.fields[key] = value

    def __delitem__(self, key: str) -> None:
        del self.fields[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.fields)

    def __len__(self) -> int:
        return len(self.fields)

    def __repr__(self) -> str:
        return (f"TrainRecord({self.n_paths} paths x {self.n_epochs} epochs, "
                f"{len(self.fields)} fields{', ' + str(self.path) if self.path else ''})")

    # -- construction
    @classmethod
    def empty(cls, path_names: Sequence[str], n_epochs: int, *,
              loss_terms: Sequence[str] = (), **fields: Any) -> TrainRecord:
        """A new record with every metric array allocated and filled with NaN.

        Parameters
        ----------
        path_names : sequence of str
            ``"source->target"`` per path, in path order.
        n_epochs : int
            Number of epochs E (columns of the metric arrays).
        loss_terms : sequence of str
            Loss term names for ``loss_terms_{train,val}`` (e.g. ``correye``, ``mse``).
        **fields
            Other fields to store as given (``subjects``, ``subjidx_train``, ``topN``...).
        """
        P, E = len(path_names), int(n_epochs)
        rec: dict[str, Any] = {
            "trainpath_names": list(path_names),
            "trainpath_names_short": list(path_names),
            "nbepochs": E,
            "topN": 2,
        }
        for name in PATH_EPOCH_FIELDS:
            rec[name] = np.full((P, E), np.nan)
        for name in EPOCH_FIELDS:
            rec[name] = np.full((1, E), np.nan)
        rec["epoch_timestamp"] = np.full(E, np.nan)
        for split in ("train", "val"):
            rec[f"loss_terms_{split}"] = {t: np.full((P, E), np.nan) for t in loss_terms}
        rec.update(fields)
        return cls(rec)

    # -- basic facts
    @property
    def path_names(self) -> list[str]:
        """``source->target`` of every path."""
        names = self.fields.get("trainpath_names", [])
        return [names] if isinstance(names, str) else list(names)

    @property
    def paths(self) -> list[tuple[str, str]]:
        """(source, target) of every path."""
        out = []
        for name in self.path_names:
            src, _, tgt = name.partition("->")
            out.append((src.strip(), tgt.strip()))
        return out

    @property
    def n_paths(self) -> int:
        return len(self.path_names)

    @property
    def n_epochs(self) -> int:
        """Number of epoch columns of the metric arrays."""
        for key in ("loss_train", "loss_val", "corrloss_OrigScale_val"):
            v = self.fields.get(key)
            if isinstance(v, np.ndarray) and v.ndim == 2:
                return int(v.shape[1])
        return int(self.fields.get("nbepochs", 0))

    @property
    def epochs(self) -> npt.NDArray[np.int64]:
        """0-based epoch index of every column."""
        return np.arange(self.n_epochs, dtype=np.int64)

    @property
    def final_epoch(self) -> int:
        """0-based index of the last epoch recorded (``current_epoch``)."""
        cur = self.fields.get("current_epoch")
        return int(cur) if cur is not None else self.n_epochs - 1

    def n_subjects(self, split: str = "val") -> int | None:
        """Subjects in a split (``numsubjects_<split>``, else ``len(subjidx_<split>)``)."""
        n = self.fields.get(f"numsubjects_{split}")
        if n is not None and np.size(n) == 1:
            return int(np.asarray(n).ravel()[0])
        idx = self.fields.get(f"subjidx_{split}")
        return None if idx is None else int(np.size(idx))

    def epoch_label(self, epoch: int) -> int:
        """Completed epochs at a 0-based column (``epoch + 1``); for a one-column evaluation
        record (``run --evaluate``) the checkpoint's epoch count."""
        if self.n_epochs == 1 and self.fields.get("current_epoch") is not None:
            return int(self.fields["current_epoch"]) + 1
        return int(epoch) + 1

    # -- metrics
    def field_name(self, name: str, split: str = "val", origscale: bool = True) -> str:
        """The record field of a metric (a kraken metric name, alias, or a field name itself)."""
        if name in self.fields and isinstance(self.fields[name], np.ndarray):
            return name
        metric = canonical_metric(name)
        if metric == "loss":
            return f"loss_{split}"
        return record_field(metric, split, origscale)

    def metric(self, name: str, split: str = "val", origscale: bool = True) -> FloatArray:
        """A metric over paths and epochs, ``[P x E]`` (NaN where not computed).

        Parameters
        ----------
        name : str
            A kraken metric name (:data:`~kraken_cli.engine.metrics.METRIC_NAMES`), a heatmap
            alias (``topnacc``, ``r2``, ``top1accx``...), ``"loss"``, or a raw field name.
        split : {"val", "train"}
        origscale : bool
            Original edge space (``_OrigScale``) rather than the transformed space.

        Notes
        -----
        ``*_bidir`` values are recomputed as the mean of the true->pred and pred->true fields
        when both exist (the original fills its bidir fields only as a side effect of drawing
        the heatmap). ``avgrank_mean`` is derived from ``avgrank`` when absent.

        Raises
        ------
        KeyError
            When the record holds no such field.
        """
        if name in self.fields and isinstance(self.fields[name], np.ndarray):
            return np.atleast_2d(np.asarray(self.fields[name], dtype=np.float64))
        metric = canonical_metric(name)
        if metric.endswith("_bidir"):
            base = metric[: -len("_bidir")]
            a = record_field(base, split, origscale)
            b = record_field(base + "_pred2true", split, origscale)
            if a in self.fields and b in self.fields:
                return (np.atleast_2d(self.fields[a]) + np.atleast_2d(self.fields[b])) / 2.0
        field = self.field_name(metric, split, origscale)
        if field in self.fields:
            return np.atleast_2d(np.asarray(self.fields[field], dtype=np.float64))
        if metric == "avgrank_mean":
            n = self.n_subjects(split)
            pct = record_field("avgrank", split, origscale)
            if pct in self.fields and n:
                return 1.0 + (1.0 - np.atleast_2d(self.fields[pct])) * n
        raise KeyError(f"training record has no field {field!r} for metric {name!r}")

    @overload
    def best_epoch(self, name: str = ..., split: str = ..., origscale: bool = ..., *,
                   per_path: Literal[False] = ..., mode: str | None = ...) -> int | None: ...

    @overload
    def best_epoch(self, name: str = ..., split: str = ..., origscale: bool = ..., *,
                   per_path: Literal[True], mode: str | None = ...) -> npt.NDArray[np.int64]: ...

    def best_epoch(self, name: str = "avgrank", split: str = "val", origscale: bool = True, *,
                   per_path: bool = False, mode: str | None = None) -> int | None | npt.NDArray[np.int64]:
        """The best epoch for a metric: the "Best All-Path Epoch" of the original's heatmap.

        Parameters
        ----------
        name, split, origscale
            As in :meth:`metric`.
        per_path : bool
            Return each path's own best epoch (``ndarray [P]``, -1 where the path has no value)
            instead of one epoch for all paths.
        mode : {"max", "min"}, optional
            Whether larger is better; default ``"min"`` for ``loss`` and ``avgrank_mean`` (and
            the raw ``loss_*`` / ``avgrank_*`` fields), else ``"max"``.

        Returns
        -------
        int or None, or ndarray of int
            0-based epoch maximising the mean over paths after NaNs are interpolated linearly
            over epochs (each path separately; paths with no values are ignored), among the
            epochs where at least one value was computed. None when the metric was never
            computed. Ties go to the earliest epoch.
        """
        values = self.metric(name, split, origscale)
        if mode is None:
            if name in self.fields:  # a raw field: loss_* and the 1-based avgrank_* are lower-better
                lower = name.startswith(("loss_", "avgrank_"))
            else:
                lower = canonical_metric(name) in ("loss", "avgrank_mean")
            mode = "min" if lower else "max"
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        sign = 1.0 if mode == "max" else -1.0
        filled = np.stack([_interp_nan(r) for r in values]) if values.size else values
        if per_path:
            best = np.full(values.shape[0], -1, dtype=np.int64)
            for i, r in enumerate(filled):
                if np.isfinite(r).any():
                    score = np.where(np.isfinite(values[i]), sign * r, -np.inf)
                    best[i] = int(np.argmax(score))
            return best
        has = np.isfinite(filled).any(axis=1)
        if not has.any():
            return None
        with np.errstate(invalid="ignore"):
            score = sign * np.nanmean(filled[has], axis=0)
        # only epochs where something was computed can win (ends are extrapolated flat)
        score[~np.isfinite(values).any(axis=0)] = -np.inf
        return int(np.argmax(score))

    def loss_terms(self, split: str = "train") -> dict[str, FloatArray]:
        """Per-term losses ``term -> [P x E]`` (kraken records only; empty for the original's)."""
        terms = self.fields.get(f"loss_terms_{split}") or {}
        return {k: np.atleast_2d(np.asarray(v, dtype=np.float64)) for k, v in terms.items()}

    # -- filling (training)
    def _column(self, field: str, n_rows: int) -> FloatArray:
        arr = self.fields.get(field)
        if not isinstance(arr, np.ndarray) or arr.ndim != 2:
            arr = np.full((n_rows, self.n_epochs), np.nan)
            self.fields[field] = arr
        return arr

    def set_metrics(self, epoch: int, metrics: Mapping[str, npt.ArrayLike], *, split: str = "val",
                    origscale: bool = False, paths: PathIndex = slice(None)) -> None:
        """Store metric values of every path (or ``paths``) at one epoch.

        Parameters
        ----------
        epoch : int
            0-based epoch column.
        metrics : mapping
            kraken metric name -> values per path (array-like of length P, or of the
            selected ``paths``); e.g. the output of
            :func:`~kraken_cli.engine.metrics.evaluate_paths_torch`.
        split : {"val", "train"}
        origscale : bool
            Store into the ``_OrigScale`` fields.
        paths : index, optional
            Rows to fill (default all).
        """
        for name, vals in metrics.items():
            metric = canonical_metric(name)
            if metric not in METRIC_NAMES:
                continue
            arr = self._column(record_field(metric, split, origscale), self.n_paths)
            arr[paths, epoch] = _numpy(vals)

    def set_loss(self, epoch: int, values: npt.ArrayLike, *, split: str = "train",
                 terms: Mapping[str, npt.ArrayLike] | None = None, paths: PathIndex = slice(None)) -> None:
        """Store the total loss per path (``loss_<split>``) and optionally each term's."""
        self._column(f"loss_{split}", self.n_paths)[paths, epoch] = _numpy(values)
        if terms:
            store = self.fields.setdefault(f"loss_terms_{split}", {})
            for term, vals in terms.items():
                arr = store.get(term)
                if not isinstance(arr, np.ndarray):
                    arr = np.full((self.n_paths, self.n_epochs), np.nan)
                    store[term] = arr
                arr[paths, epoch] = _numpy(vals)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the record (see :func:`write_record`)."""
        return write_record(self, path)


def _numpy(vals: Any) -> FloatArray:
    """Values (numpy, lists, or torch tensors on any device) as float64."""
    if hasattr(vals, "detach"):
        vals = vals.detach().cpu().numpy()
    return np.asarray(vals, dtype=np.float64)
