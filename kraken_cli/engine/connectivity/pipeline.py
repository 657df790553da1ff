"""``kraken connectivity`` as one engine call: inputs -> covariance -> (regularized) FC flavor -> files.

The steps of UPSTREAM 13 in order: read and validate each subject (time series become
``numpy.cov(X, rowvar=False)``), symmetrise (``force_symmetry``), normalise to correlation (unless
``keep_unnormalized``), choose the search subjects (``split``) and the written ones (``output_split``),
build or read the target, search lambda (or take ``lambda_value``), then write
``inv(X + lam * trace(X)/n * I)`` as precision or partial correlation, and the mean (``output_mean``).

Memory: see :mod:`.passes` (the search) and :mod:`.sinks` (outputs streamed to npz / v7.3 files).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..choices import InputKind, Measure
from ..errors import InputDataError, SpecError
from ..progress import NULL_PROGRESS, Progress
from ..threads import blas_threads
from . import regularize as reg
from ._parallel import split_map
from .inputs import F64, Subject, load_matrix, open_inputs
from .passes import LambdaSearch, RunningMean, prepared_chunks
from .sinks import Meta, Sink, open_sink

log = logging.getLogger(__name__)

CONNTYPES = {"cov": "covariance", "corr": "correlation", "pcorr": "partialcorr", "precision": "precision"}
_SEARCH_ONLY = ("target", "lambda_range", "lambda_grid", "lambda_loops", "search_csv",
                "search_figure")
_OPTION = {"target": "--target", "geometric_mean": "--geometric-mean", "lambda_range": "--lambda-range",
           "lambda_grid": "--lambda-grid", "lambda_loops": "--lambda-loops", "search_csv": "--search-csv",
           "search_figure": "--search-figure", "lambda_value": "--lambda", "lambda_round": "--lambda-round",
           "keep_unnormalized": "--keep-unnormalized", "output_mean": "--output-mean"}


class ConnectivityConfig(BaseModel):
    """Everything ``kraken connectivity`` was asked to do (validated before any input is read)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inputs: tuple[str, ...] = Field(min_length=1)
    output: Optional[str] = None
    measure: Measure = "pcorr"
    input_kind: InputKind = "auto"
    keep_unnormalized: bool = False
    force_symmetry: bool = False
    target: Optional[str] = None
    geometric_mean: bool = False
    lambda_range: tuple[float, float] = (0.0, 1.0)
    lambda_grid: int = Field(10, ge=2)
    lambda_loops: int = Field(3, ge=1)
    lambda_round: int = Field(2, ge=0, le=15)
    lambda_value: Optional[float] = Field(None, ge=0)
    split_file: Optional[str] = None
    split: Optional[str] = None
    output_split: Optional[str] = None
    output_mean: Optional[str] = None
    search_csv: Optional[str] = None
    search_figure: Optional[str] = None
    fmt: Optional[str] = None
    chunk_size: int = Field(64, ge=1)
    cache_dir: Optional[str] = None

    @model_validator(mode="after")
    def _combinations(self) -> ConnectivityConfig:
        from ..io.subjects import SPLIT_NAMES
        from ..io.writers import resolve_format

        defaults = {k: f.default for k, f in type(self).model_fields.items()}

        def changed(names: Sequence[str]) -> list[str]:
            return [_OPTION[k] for k in names if getattr(self, k) != defaults[k]]

        if not self.output and not self.output_mean:
            raise ValueError("give -o FILE and/or --output-mean FILE")
        regularized = self.measure in ("pcorr", "precision")
        if not regularized:
            bad = changed((*_SEARCH_ONLY, "lambda_value", "lambda_round", "keep_unnormalized"))
            if bad:
                raise ValueError(f"{', '.join(bad)} only apply to --measure pcorr or precision")
        if self.lambda_value is not None:
            bad = changed(_SEARCH_ONLY)
            if bad:
                raise ValueError(f"--lambda skips the search: {', '.join(bad)} cannot be used with it")
        lo, hi = self.lambda_range
        if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi < lo:
            raise ValueError(f"--lambda-range needs 0 <= A <= B, got {lo:g} {hi:g}")
        for name in ("split", "output_split"):
            value = getattr(self, name)
            if value is not None and value not in SPLIT_NAMES:
                raise ValueError(f"unknown --{name.replace('_', '-')} {value!r}: "
                                 f"choose one of {', '.join(SPLIT_NAMES)}")
            if value is not None and not self.split_file:
                raise ValueError(f"--{name.replace('_', '-')} needs --split-file")
        for out in (self.output, self.output_mean):
            if out:
                resolve_format(self.fmt, out)
        return self

    @classmethod
    def build(cls, **kwargs: object) -> ConnectivityConfig:
        """Validate, turning pydantic's errors into one SpecError (a usage error)."""
        try:
            return cls(**kwargs)  # type: ignore[arg-type]
        except ValidationError as exc:
            msgs = "; ".join((f"{'.'.join(map(str, e['loc']))}: " if e["loc"] else "")
                             + str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            raise SpecError(f"invalid options: {msgs}", hint="see kraken connectivity --help") from None
        except SpecError:
            raise


@dataclass
class ConnectivityResult:
    """What was computed and written."""

    measure: str
    conntype: str
    n_regions: int
    subjects: list[str]
    n_search_subjects: int = 0
    lam: float | None = None
    lam_raw: float | None = None
    target_source: str | None = None
    files: list[Path] = field(default_factory=list)
    search: list[tuple[float, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of ``kraken connectivity --json``."""
        return {"measure": self.measure, "conntype": self.conntype, "n_regions": self.n_regions,
                "lambda": self.lam, "lambda_raw": self.lam_raw, "target": self.target_source,
                "n_search_subjects": self.n_search_subjects, "subjects": self.subjects,
                "files": [str(f) for f in self.files]}


# ------------------------------------------------------------------------------------ helpers


def _check_outputs(cfg: ConnectivityConfig) -> None:
    from ..io._atomic import check_writable_dir, refuse_overwriting

    outs = {"-o": cfg.output, "--output-mean": cfg.output_mean, "--search-csv": cfg.search_csv,
            "--search-figure": cfg.search_figure}
    refuse_overwriting(outs, [*cfg.inputs, cfg.split_file, cfg.target])
    for p in outs.values():
        if p:
            check_writable_dir(p)


def _select(subjects: list[Subject], cfg: ConnectivityConfig) -> tuple[list[int], list[int]]:
    """Indices of the search subjects and of the written subjects."""
    if not cfg.split_file:
        every = list(range(len(subjects)))
        return every, every
    from ..io import read_split_file

    split = read_split_file(cfg.split_file)

    def pick(name: str) -> list[int]:
        wanted = set(split.select(name))
        idx = [i for i, s in enumerate(subjects) if s.subject in wanted]
        missing = len(wanted) - len(idx)
        if not idx:
            raise InputDataError(f"none of the {len(wanted)} subjects of split {name!r} ({cfg.split_file}) is in "
                                 "the inputs", hint="check that the inputs carry the split file's subject ids")
        if missing:
            log.warning("%d subjects of split %r are not in the inputs", missing, name)
        return idx

    search = pick(cfg.split or "all")
    return search, pick(cfg.output_split or cfg.split or "all")


# ------------------------------------------------------------------------------------ main


def _first_regions(subjects: list[Subject], cfg: ConnectivityConfig) -> int:
    if not subjects:
        raise InputDataError("the inputs hold no subjects", hint="check the input files")
    return int(load_matrix(subjects[0], force_symmetry=cfg.force_symmetry).shape[0])


def _apply(subjects: list[Subject], idx: list[int], r: int, cfg: ConnectivityConfig, lam: float | None,
           progress: Progress, out: Sink | None) -> F64 | None:
    """Write the matrices to ``out`` (when given) and return their mean (when ``output_mean`` is asked)."""
    mean = RunningMean(cfg.geometric_mean, CONNTYPES[cfg.measure]) if cfg.output_mean else None
    label = "Computing " + CONNTYPES[cfg.measure] + (f" (λ = {lam:g})" if lam is not None else "")
    for start, x in prepared_chunks(subjects, idx, r, cfg, progress, label):
        part = [subjects[i] for i in idx[start:start + x.shape[0]]]
        if lam is not None:
            def singular(i: int, part: Sequence[Subject] = part) -> None:
                raise InputDataError(f"{part[i].where}: the regularized matrix cannot be inverted",
                                     hint="use a larger --lambda or drop --keep-unnormalized")
            x = split_map(lambda off, xx: reg.apply_lambda(xx, lam, lambda k: singular(k + off)), x)
            if cfg.measure == "pcorr":
                x = reg.precision_to_partial_correlation(x)
        if not np.all(np.isfinite(x)):
            bad = int(np.flatnonzero(~np.isfinite(x).reshape(x.shape[0], -1).all(axis=1))[0])
            raise InputDataError(f"{part[bad].where}: the {CONNTYPES[cfg.measure]} holds NaN or Inf",
                                 hint="a region may have zero variance; check the input")
        if out is not None:
            out.write(start, x)
        if mean is not None:
            mean.add(x, part)
    return mean.result() if mean is not None else None


def _check_size(cfg: ConnectivityConfig, n: int, r: int) -> None:
    from ..errors import OutputError
    from ..io.writers import MAT5_LIMIT_BYTES, resolve_format

    if cfg.output and resolve_format(cfg.fmt, cfg.output) == "mat" and n * r * r * 8 > MAT5_LIMIT_BYTES:
        raise OutputError(f"{cfg.output} would hold {n * r * r * 8 / 2**30:.1f} GB, above MATLAB v5's 2 GB limit",
                          hint="use --format mat73 or an .npz output")


def _lambda(subjects: list[Subject], search_idx: list[int], r: int, cfg: ConnectivityConfig,
            progress: Progress, result: ConnectivityResult) -> tuple[float, reg.SearchResult | None]:
    from .files import read_target, resolve_target

    if cfg.lambda_value is not None:
        result.lam_raw = float(cfg.lambda_value)
        return reg.round_lambda(cfg.lambda_value, cfg.lambda_round), None
    search = LambdaSearch(subjects, search_idx, r, cfg, progress)
    if cfg.target:
        target = read_target(resolve_target(cfg.target, cfg.cache_dir))
        if target.matrix.shape[0] != r:
            raise InputDataError(f"{target.source}: the target is {target.matrix.shape[0]} x "
                                 f"{target.matrix.shape[0]}, the inputs have {r} regions",
                                 hint="use the target of the inputs' atlas")
        matrix, result.target_source = target.matrix, target.source
    else:
        matrix = search.mean_target()
        kind = "geometric" if cfg.geometric_mean else "arithmetic"
        result.target_source = f"{kind} mean of the unregularized inverses of {len(search_idx)} subjects"
    found = search.run(matrix)
    result.lam_raw = found.best
    lo, hi = cfg.lambda_range
    if hi > lo and (found.best == hi or (found.best == lo and lo > 0)):
        log.warning("the best lambda %g lies on the edge of --lambda-range %g %g; a wider range may fit the "
                    "target better", found.best, lo, hi)
    return reg.round_lambda(found.best, cfg.lambda_round), found


def run_connectivity(cfg: ConnectivityConfig, progress: Progress = NULL_PROGRESS) -> ConnectivityResult:
    """Compute the FC flavor ``cfg.measure`` of every subject and write the files asked for.

    Raises
    ------
    InputDataError, FetchError, OutputError
        Bad inputs or targets (named by file and subject), missing released targets, unwritable
        outputs; nothing is written then.
    """
    with blas_threads(1):
        return _run(cfg, progress)


def _run(cfg: ConnectivityConfig, progress: Progress) -> ConnectivityResult:
    from ..io.writers import resolve_format
    from .files import ResultData, plot_search, resolve_target, write_result, write_search_csv

    _check_outputs(cfg)
    if cfg.target and cfg.lambda_value is None:
        resolve_target(cfg.target, cfg.cache_dir)  # a missing released target fails before any input is read
    subjects = open_inputs(cfg.inputs, kind=cfg.input_kind)
    search_idx, out_idx = _select(subjects, cfg)
    r = _first_regions(subjects, cfg)
    _check_size(cfg, len(out_idx), r)
    result = ConnectivityResult(cfg.measure, CONNTYPES[cfg.measure], r, [subjects[i].subject for i in out_idx],
                                n_search_subjects=len(search_idx))
    found = None
    if cfg.measure in ("pcorr", "precision"):
        result.lam, found = _lambda(subjects, search_idx, r, cfg, progress, result)
        if cfg.keep_unnormalized and found is not None:
            log.warning("with --keep-unnormalized the search adds λ but the output adds λ·trace(X)/n "
                        "(as the original does)")
    sink = open_sink(cfg.output, resolve_format(cfg.fmt, cfg.output), len(out_idx), r) if cfg.output else None
    try:
        mean = _apply(subjects, out_idx, r, cfg, result.lam, progress, sink)
    except BaseException:
        if sink is not None:
            sink.abort()
        raise
    if sink is not None:
        result.files.append(sink.close(Meta(result.subjects, result.conntype, result.lam, result.lam_raw)))
    if cfg.output_mean and mean is not None:
        data = ResultData(mean, result.subjects, result.conntype, result.lam, result.lam_raw)
        result.files.append(write_result(cfg.output_mean, resolve_format(cfg.fmt, cfg.output_mean), data))
    if found is not None:
        lams, errs = found.table()
        result.search = [(float(a), float(b)) for a, b in zip(lams, errs)]
        if cfg.search_csv:
            result.files.append(write_search_csv(cfg.search_csv, lams, errs))
        if cfg.search_figure:
            result.files.append(plot_search(cfg.search_figure, lams, errs, found.best, applied=result.lam or 0.0,
                                            target=result.target_source or "", n_subjects=len(search_idx)))
    return result
