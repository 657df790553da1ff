"""Passes over the subjects: prepared chunks, running means, and the lambda search with its cache.

Memory: subjects are processed in chunks of ``chunk_size``; the per-subject search terms (O(R^2) each)
are kept between grid loops while they fit in ``EIGEN_CACHE_BYTES``, else recomputed per loop.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import numpy as np

from ..errors import InputDataError
from ..progress import Progress
from . import regularize as reg
from ._parallel import split_map
from .inputs import F64, Subject, read_block

if TYPE_CHECKING:
    from .pipeline import ConnectivityConfig

#: Bytes of per-subject search terms kept in memory between the grid loops (else recomputed).
EIGEN_CACHE_BYTES = 1 << 30


def prepared_chunks(subjects: list[Subject], idx: Sequence[int], n_regions: int, cfg: ConnectivityConfig,
            progress: Progress, label: str) -> Iterator[tuple[int, F64]]:
    """(start, prepared matrices) chunk by chunk: symmetrised and normalised as configured."""
    progress.start(label, total=len(idx))
    try:
        for start in range(0, len(idx), cfg.chunk_size):
            part = [subjects[i] for i in idx[start:start + cfg.chunk_size]]
            x = read_block(part, n_regions, force_symmetry=cfg.force_symmetry)
            if cfg.force_symmetry:
                x = reg.symmetrize(x)
            if cfg.measure == "corr" or (cfg.measure != "cov" and not cfg.keep_unnormalized):
                _check_diagonal(x, part)
                x = reg.normalize_to_correlation(x)
            yield start, x
            progress.advance(len(part))
    finally:
        progress.done()


def _check_diagonal(x: F64, part: Sequence[Subject]) -> None:
    d = np.diagonal(x, axis1=-2, axis2=-1)
    bad = np.flatnonzero(np.any(d < -reg.DIAG_EPS, axis=1))
    if bad.size:
        raise InputDataError(f"{part[int(bad[0])].where}: negative diagonal values, so not a covariance",
                             hint="give covariance or correlation matrices (or time series)")


class RunningMean:
    """Arithmetic or geometric (expm of the mean logm) mean of matrices, accumulated chunk by chunk."""

    def __init__(self, geometric: bool, what: str) -> None:
        self.geometric, self.what = geometric, what
        self.total: F64 | None = None
        self.n = 0

    def add(self, mats: F64, part: Sequence[Subject]) -> None:
        if self.geometric:
            low = reg.min_sym_eigenvalue(mats)
            bad = np.flatnonzero(low <= 0)
            if bad.size:
                raise InputDataError(f"{part[int(bad[0])].where}: the {self.what} is not positive definite, so "
                                     "it has no matrix logarithm for the geometric mean",
                                     hint="drop --geometric-mean, or exclude subjects with singular matrices")
            mats = reg.sym_logm(mats)
        s = mats.sum(axis=0)
        self.total = s if self.total is None else self.total + s
        self.n += mats.shape[0]

    def result(self) -> F64:
        assert self.total is not None and self.n > 0
        m = self.total / self.n
        return reg.sym_expm(m) if self.geometric else m


class LambdaSearch:
    """The lambda search over the search subjects, with the per-subject terms cached when they fit."""

    def __init__(self, subjects: list[Subject], idx: list[int], n_regions: int, cfg: ConnectivityConfig,
                 progress: Progress) -> None:
        self.subjects, self.idx, self.r, self.cfg, self.progress = subjects, idx, n_regions, cfg, progress
        per_subject = (n_regions * n_regions + 2 * n_regions) * 8
        self.cache_ok = per_subject * len(idx) <= EIGEN_CACHE_BYTES
        self.eig: list[tuple[F64, F64]] = []
        self.terms: list[reg.SearchTerms] = []

    def _eigen(self, label: str) -> Iterator[tuple[int, F64, F64]]:
        if self.eig:  # consumed as it is read: the search terms replace the eigenvectors
            start = 0
            while self.eig:
                e, v = self.eig.pop(0)
                yield start, e, v
                start += e.shape[0]
            return
        for start, x in prepared_chunks(self.subjects, self.idx, self.r, self.cfg, self.progress, label):
            e, v = split_map(lambda _, xx: reg.eigh(xx), x)
            if self.cache_ok:
                self.eig.append((e, v))
            yield start, e, v

    def mean_target(self) -> F64:
        """Mean (arithmetic or geometric) of the unregularized eigen-mode inverses."""
        mean = RunningMean(self.cfg.geometric_mean, "unregularized inverse")
        for start, e, v in self._eigen("Target: mean unregularized inverse"):
            part = [self.subjects[i] for i in self.idx[start:start + e.shape[0]]]
            mean.add(split_map(lambda _, ee, vv: reg.eig_inverse(ee, vv, 0.0), e, v), part)
        return mean.result()

    def _all_terms(self, target: F64, label: str) -> Iterator[reg.SearchTerms]:
        if self.terms:
            yield from self.terms
            return
        for _, e, v in self._eigen(label):
            t = reg.SearchTerms(*split_map(lambda _, ee, vv: reg.search_terms(ee, vv, target).as_tuple(), e, v))
            if self.cache_ok:
                self.terms.append(t)
            yield t

    def run(self, target: F64) -> reg.SearchResult:
        cfg = self.cfg
        loop = [0]

        def objective(grid: F64) -> F64:
            total = np.zeros(len(grid))
            label = f"Lambda search, loop {loop[0] + 1} of {cfg.lambda_loops}"
            for t in self._all_terms(target, label):
                total += reg.search_errors(t, target, grid).sum(axis=0)
            loop[0] += 1
            return total / len(self.idx)

        lo, hi = cfg.lambda_range
        return reg.grid_search(objective, lo, hi, cfg.lambda_grid, cfg.lambda_loops)
