"""``kraken run`` into MATLAB v5 files: one file at a time, each written while the next is predicted.

A v5 file is serialized whole, so its predictions must all be in memory when it is written.
Predicting chunk by chunk into every file at once (what the streaming formats do) kept every
file's predictions until the end of the run. Here the inputs are encoded once (latents are
small), then each file's predictions are decoded for all subjects and handed to a worker thread
that serializes and writes it (compressed only with ``KRAKEN_MAT_COMPRESS=1``; zlib releases the
GIL) while the next file is decoded: at most two files' predictions are alive at a time. The files
are still committed together by the caller's :func:`~kraken_cli.engine.io._atomic.committed_together` block; a
failure waits for the file being written, so its temporary is removed with the others.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ..connectome import Cohort, EdgeSource, FloatArray
from ..flavors import Flavor
from ..inference import KrakenModel, PredictPlan
from ..io.writers import FileMeta, Mat5Writer, OutputFile
from ..progress import Progress
from .configs import PredictOptions


def write_file_by_file(model: KrakenModel, cohort: Cohort, plan: PredictPlan, options: PredictOptions,
                       files: Sequence[OutputFile], meta: FileMeta, progress: Progress,
                       collected: dict[tuple[str, str], list[npt.NDArray[np.float32]]], *,
                       square: bool = False, samples: dict[tuple[str, str], Any] | None = None,
                       n_samples: int = 0) -> list[Path]:
    """Write every v5 file of ``files`` (and fill ``collected`` for evaluation, ``samples`` with the
    first ``n_samples`` subjects' predictions for the report); returns the paths.

    Without evaluation or report the cohort's sources are replaced by ones that keep only their
    description (flavor, file, sizes) once the inputs are encoded.
    """
    n = cohort.n_subjects
    latents = model.encode_all(cohort, plan, options)
    if not collected and not samples:  # nothing reads the inputs again: their rows are freed while writing
        for name in list(cohort.sources):
            cohort.sources[name] = _Released(cohort.sources[name])
    written: list[Path] = []
    pending: Future[Path] | None = None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kraken-mat5")
    progress.start("Predicting", total=n * len(files))
    # One torch thread while files are written (and compressed) beside it: torch's spinning worker
    # threads and the writing threads fought over the cores (decoding took 8x longer on 2 cores).
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for f in files:
            preds = _decode_file(model, latents, plan, options, f.pairs, n)
            for p in collected:
                if p in preds:
                    collected[p].append(preds[p])
            if samples is not None:
                samples.update({p: preds[p][:n_samples].copy() for p in samples if p in preds})
            writer = Mat5Writer(f, meta, square=square, n_subjects=n)
            writer.write_rows(0, preds)
            del preds
            if pending is not None:  # one file written while this one was decoded
                written.append(pending.result())
                pending = None
            # the writer's atomic_path joins the caller's committed_together batch (a context variable)
            pending = pool.submit(contextvars.copy_context().run, writer.close)
            del writer
            progress.advance(n)
        if pending is not None:
            written.append(pending.result())
            pending = None
    finally:
        pool.shutdown(wait=True)  # on an error, the file in flight finishes before the batch is discarded
        torch.set_num_threads(torch_threads)
        progress.done()
    return written


def _decode_file(model: KrakenModel, latents: dict[str, torch.Tensor], plan: PredictPlan, options: PredictOptions,
                 pairs: Sequence[tuple[str, str]], n: int) -> dict[tuple[str, str], npt.NDArray[np.float32]]:
    """Every subject's predictions of ``pairs``, decoded chunk by chunk into column-major arrays.

    Column-major is MATLAB's order: the v5 serializer passes that memory on without a copy, and the
    chunks' temporaries are reused instead of one cohort-sized temporary per pair.
    """
    out: dict[tuple[str, str], npt.NDArray[np.float32]] = {}
    step = max(1, options.chunk_size)
    for start in range(0, n, step):
        part = {k: z[start:start + step] for k, z in latents.items()}
        for p, x in model.decode_latents(part, plan, options, pairs).items():
            if p not in out:
                out[p] = np.empty((x.shape[1], n), dtype=np.float32).T
            out[p][start:start + x.shape[0]] = x
    return out


class _Released:
    """An :class:`~kraken_cli.engine.connectome.EdgeSource` whose rows were freed after encoding."""

    def __init__(self, src: EdgeSource) -> None:
        self.flavor: Flavor = src.flavor
        self.file: str = src.file
        self.subjects: list[str] | None = src.subjects
        self._shape = (src.n_subjects, src.n_features)

    @property
    def n_subjects(self) -> int:
        return self._shape[0]

    @property
    def n_features(self) -> int:
        return self._shape[1]

    def read(self, start: int, stop: int) -> FloatArray:
        raise RuntimeError(f"{self.file}: the inputs were released after encoding")  # a bug in the caller
