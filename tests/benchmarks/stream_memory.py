"""Streaming ``kraken run`` on large cohorts: peak memory must not grow with the subject count.

    .venv/bin/python tests/benchmarks/stream_memory.py [--sizes 2000,10000] [--inputs npy,mat73]
                                                      [--workdir DIR] [--keep]

Two shen268 flavors (35,778 edges each) are generated chunk by chunk, never holding the cohort in
memory, into ``.npy`` files (``np.lib.format.open_memmap``, float32) and MATLAB v7.3 files
(``Mat73Writer.create_rows`` / ``write_rows``, with subject ids). A 2-flavor model (untrained, PCA-256
fitted on 300 generated subjects, latent 128) predicts, in a fresh process each time::

    kraken run -q -c bench_chkpt.pt -t bench_ioxfm.npy -i FCcorr_shen268_hpf=f1.npy \\
        -i SCifod2act_shen268_volnorm=f2.npy --fusion --outputs all --format mat73 -o OUT/pred.{input}.mat

with the default ``--chunk-size``, for each size and input format: 3 sources (2 flavors + fusion) x 2
outputs = 6 arrays of [S x 35778] float32 (1.4 GB each for 10,000 subjects). Reported: wall time,
subjects/second and peak RSS, next to a baseline that only reads the same inputs and writes the same
arrays (kraken's reader and v7.3 writer, no model). The check: peak RSS < 2 GB, and the largest cohort's peak within 15%
of the smallest's. When the disk is short, the largest runs write ``--only-fusion`` (2 arrays) and the
report says so. The script exits with status 1 when the check fails.

What is left of the difference between sizes with MATLAB v7.3 inputs is HDF5's: reading a cell array
of subject ids opens one HDF5 object per id, and the library keeps internal free lists for them (about
55 MB after 10,000 ids, the same after 40,000: bounded, not growing with the cohort).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import (
    effective_cores,
    folder_bytes,
    free_bytes,
    machine_line,
    markdown_table,
    random_model,
    timed_kraken,
    timed_python,
)

FLAVORS = ["FCcorr_shen268_hpf", "SCifod2act_shen268_volnorm"]
N_REGIONS = 268
N_EDGES = N_REGIONS * (N_REGIONS - 1) // 2
GEN_CHUNK = 250
RSS_LIMIT_MB = 2048
GROWTH_LIMIT = 1.15


def generate(n: int, folder: Path, *, seed: int = 0) -> dict[str, Path]:
    """``n`` subjects of both flavors into ``FLAVOR.npy`` files, ``GEN_CHUNK`` subjects at a time."""
    from kraken_cli.engine.datasets import make_cohort

    folder.mkdir(parents=True, exist_ok=True)
    paths = {f: folder / f"{f}.npy" for f in FLAVORS}
    arrays = {f: np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(n, N_EDGES))
              for f, p in paths.items()}
    for k, start in enumerate(range(0, n, GEN_CHUNK)):
        stop = min(n, start + GEN_CHUNK)
        part = make_cohort(stop - start, n_regions=N_REGIONS, atlas="shen268", flavors=FLAVORS, seed=seed + k)
        for f in FLAVORS:
            arrays[f][start:stop] = part.data[f]
        for a in arrays.values():
            a.flush()
    del arrays
    return paths


def copy_rows(src: dict[str, Path], n: int, folder: Path, fmt: str) -> dict[str, Path]:
    """The first ``n`` rows of ``.npy`` inputs as ``.npy`` or MATLAB v7.3 (``data``, ``subjects``) files."""
    from kraken_cli.engine.io import Mat73Writer

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    step = 1000
    for f, p in src.items():
        x = np.load(p, mmap_mode="r")
        if fmt == "npy":
            path = folder / f"{f}.npy"
            y = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, x.shape[1]))
            for s in range(0, n, step):
                y[s:s + step] = x[s:min(n, s + step)]
            y.flush()
            del y
        else:
            path = folder / f"{f}.mat"
            with Mat73Writer(path) as w:
                w.write("subjects", [f"sub{i:05d}" for i in range(n)])
                w.create_rows("data", n, x.shape[1], np.float32)
                for s in range(0, n, step):
                    w.write_rows("data", s, np.asarray(x[s:min(n, s + step)]))
        del x
        out[f] = path
    return out


def baseline_worker(spec: dict[str, object]) -> None:
    """Read the inputs chunk by chunk with kraken's reader and write the same MATLAB v7.3 arrays as ``kraken run``.

    The input rows stand in for predictions; no model, no torch.
    """
    from kraken_cli.engine.io import Mat73Writer, load_cohort

    cohort = load_cohort(list(spec["inputs"]))  # type: ignore[arg-type]
    n, step = cohort.n_subjects, int(spec["chunk"])  # type: ignore[call-overload]
    names = list(cohort.flavors)
    writers = []
    for src in list(spec["sources"]):  # type: ignore[call-overload]
        w = Mat73Writer(Path(str(spec["out"])) / f"pred.{src}.mat").__enter__()
        for o in names:
            w.create_rows(f"predicted_alltypes/{src}/{o}", n, N_EDGES, np.float32)
        writers.append((src, w))
    for start in range(0, n, step):
        rows = {f: np.asarray(cohort.read(f, start, start + step), dtype=np.float32) for f in names}
        for src, w in writers:
            for o in names:
                w.write_rows(f"predicted_alltypes/{src}/{o}", start, rows[o])
        del rows
    for _, w in writers:
        w.write("subjects", list(cohort.subjects))
        w.__exit__(None, None, None)


def fit_model(work: Path) -> tuple[Path, Path]:
    from kraken_cli.engine.datasets import make_cohort

    fit = make_cohort(300, n_regions=N_REGIONS, atlas="shen268", flavors=FLAVORS, seed=10_000).data
    return random_model(work / "model", FLAVORS, fit, pca=256, latent=128)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="2000,10000", help="cohort sizes, comma-separated")
    ap.add_argument("--inputs", default="npy,mat73", help="input formats to run: npy, mat73 or both")
    ap.add_argument("--workdir", type=Path, default=None, help="default: a new folder under the temp dir")
    ap.add_argument("--keep", action="store_true", help="keep the generated inputs")
    ap.add_argument("--no-baseline", action="store_true", help="skip the read + write baseline runs")
    ap.add_argument("--baseline-worker", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.baseline_worker:
        baseline_worker(json.loads(args.baseline_worker))
        return
    from kraken_cli.engine.inference import DEFAULT_CHUNK_SIZE

    sizes = sorted(int(s) for s in args.sizes.split(","))
    formats = [s.strip() for s in args.inputs.split(",") if s.strip()]
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kraken-stream-"))
    work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    array_bytes = max(sizes) * N_EDGES * 4  # one [S x E] float32 array of the largest cohort
    copies = 2 if any(f != "npy" for f in formats) else (2 if len(sizes) > 1 else 0)
    need_inputs = (2 + copies) * array_bytes  # generated .npy + one derived input set at a time
    free = free_bytes(work)
    print(f"disk: {free / 2**30:.1f} GB free in {work}; inputs need up to {need_inputs / 2**30:.1f} GB, "
          f"the largest run's outputs {6 * array_bytes / 2**30:.1f} GB", flush=True)
    if need_inputs + 2 * array_bytes > 0.9 * free:
        sys.exit(f"not enough disk space in {work} (need at least {(need_inputs + 2 * array_bytes) / 2**30:.1f} GB)")
    rows = []
    notes = []
    try:
        t0 = time.perf_counter()
        base = generate(max(sizes), work / "gen")
        print(f"generated {max(sizes)} subjects x 2 flavors in {time.perf_counter() - t0:.0f} s", flush=True)
        t0 = time.perf_counter()
        ck, tr = fit_model(work)
        print(f"model (PCA-256 fitted on 300 subjects) in {time.perf_counter() - t0:.0f} s", flush=True)
        results: dict[tuple[str, int], float] = {}
        for fmt in formats:
            for n in sizes:
                t0 = time.perf_counter()
                if fmt == "npy" and n == max(sizes):
                    files = base
                else:
                    files = copy_rows(base, n, work / f"in_{fmt}_{n}", fmt)
                prep = time.perf_counter() - t0
                out = work / "out"
                shutil.rmtree(out, ignore_errors=True)
                out.mkdir()
                outputs = ["--outputs", "all"]
                what = "3 sources x 2 outputs"
                sources = FLAVORS + ["fusion"]
                if 6 * n * N_EDGES * 4 > 0.8 * free_bytes(work):
                    outputs += ["--only-fusion"]
                    sources = ["fusion"]
                    what = "fusion x 2 outputs (--only-fusion: disk short)"
                    notes.append(f"{fmt} {n}: --only-fusion because the disk is short")
                cmd = ["run", "-q", "-c", str(ck), "-t", str(tr)] + \
                      [a for f in FLAVORS for a in ("-i", f"{f}={files[f]}")] + \
                      ["--fusion", *outputs, "--format", "mat73", "-o", str(out / "pred.{input}.mat")]
                cores = effective_cores()
                wall, rss = timed_kraken(cmd)
                written = folder_bytes(out)
                results[(fmt, n)] = rss
                print(f"{fmt} {n}: {wall:.1f} s, {n / wall:.0f} subjects/s, peak RSS {rss:.0f} MB, "
                      f"wrote {written / 2**30:.2f} GB (inputs ready in {prep:.0f} s, {cores:.1f} free cores)",
                      flush=True)
                shutil.rmtree(out, ignore_errors=True)
                base_cells = ["", ""]
                if not args.no_baseline:
                    out.mkdir()
                    spec = {"inputs": [f"{f}={files[f]}" for f in FLAVORS], "out": str(out), "sources": sources,
                            "chunk": DEFAULT_CHUNK_SIZE}
                    b_wall, b_rss, _ = timed_python([__file__, "--baseline-worker", json.dumps(spec)])
                    print(f"  read + write only: {b_wall:.1f} s, peak RSS {b_rss:.0f} MB", flush=True)
                    base_cells = [f"{b_wall:.1f}", f"{wall / b_wall:.2f}"]
                    shutil.rmtree(out, ignore_errors=True)
                rows.append([f"{n:,}", fmt, what, f"{wall:.1f}", f"{n / wall:.0f}", f"{rss:.0f}",
                             f"{written / 2**30:.1f}", *base_cells, f"{cores:.1f}"])
                if files is not base:
                    shutil.rmtree(next(iter(files.values())).parent, ignore_errors=True)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print(f"## kraken run streaming: 2 shen268 flavors ({N_EDGES:,} edges), --fusion, --format mat73, "
          f"default --chunk-size")
    print()
    print(f"Machine: {machine_line()}. Total benchmark time {time.perf_counter() - t_start:.0f} s.")
    print()
    print(markdown_table(["subjects", "inputs", "outputs", "wall s", "subjects/s", "peak RSS MB", "written GB",
                          "read+write s", "kraken / read+write", "free cores"], rows))
    print()
    print("read+write: the same inputs read chunk by chunk with kraken's reader and the same arrays written with "
          "kraken's MATLAB v7.3 writer, without the model. free cores: what a CPU-bound job got just before the run.")
    for note in notes:
        print(f"- {note}")
    ok = True
    for fmt in formats:
        lo, hi = results.get((fmt, sizes[0])), results.get((fmt, sizes[-1]))
        if lo is None or hi is None:
            continue
        grows = hi > GROWTH_LIMIT * lo
        over = max(lo, hi) > RSS_LIMIT_MB
        ok = ok and not grows and not over
        print(f"- {fmt}: peak RSS {lo:.0f} MB at {sizes[0]:,} subjects, {hi:.0f} MB at {sizes[-1]:,} "
              f"({hi / lo:.2f}x): {'FAIL' if grows or over else 'ok'} (limit {RSS_LIMIT_MB} MB, "
              f"no growth beyond {GROWTH_LIMIT:.2f}x)")
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
