"""``kraken run`` into MATLAB v5 files: one file at a time, each written while the next is predicted.

A v5 file is serialized whole, so its predictions must all be in memory when it is written.
Predicting chunk by chunk into every file at once (what the streaming formats do) kept every
file's predictions until the end of the run. Here the inputs are encoded once (latents are
small), then each file's predictions are decoded for all subjects and handed to a worker thread
that serializes, compresses and writes it (zlib releases the GIL) while the next file is
decoded: at most two files' predictions are alive at a time. The files are still committed
together by the caller's :func:`~kraken_cli.engine.io._atomic.committed_together` block; a
failure waits for the file being written, so its temporary is removed with the others.
"""

from __future__ import annotations

import contextvars
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from ..connectome import Cohort
from ..inference import KrakenModel, PredictOptions, PredictPlan
from ..io.writers import FileMeta, Mat5Writer, OutputFile
from ..progress import Progress


def write_file_by_file(model: KrakenModel, cohort: Cohort, plan: PredictPlan, options: PredictOptions,
                       files: Sequence[OutputFile], meta: FileMeta, progress: Progress,
                       collected: dict[tuple[str, str], list[npt.NDArray[np.float32]]], *,
                       square: bool = False) -> list[Path]:
    """Write every v5 file of ``files`` (and fill ``collected`` for evaluation); returns the paths."""
    n = cohort.n_subjects
    latents = model.encode_all(cohort, plan, options)
    written: list[Path] = []
    pending: Future[Path] | None = None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kraken-mat5")
    progress.start("Predicting", total=n * len(files))
    try:
        for f in files:
            preds = _decode_file(model, latents, plan, options, f.pairs, n)
            for p in collected:
                if p in preds:
                    collected[p].append(preds[p])
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
