"""``kraken connectivity`` time and peak memory: 1,000 subjects x 268 regions, lambda search and apply.

    .venv/bin/python tests/benchmarks/connectivity_speed.py [--subjects 1000] [--regions 268] [--workdir DIR]
        [--input-format mat|npy] [--output-format mat|npz] [--runs target,search,searchtarget,apply]
        [--original DIR] [--keep]

What it does:

1. writes synthetic covariances (``C``, a 1 x S cell of R x R matrices from ``T = 1.5 R`` time points, and
   ``subjects``) as one MATLAB v5 file, the original's input layout (``--input-format npy``: one
   ``[S x R x R]`` ``.npy``, written subject by subject, for cohorts past v5's 2 GB limit);
2. runs, each in a fresh process (wall time and peak RSS of that process):

   * ``search``: ``kraken connectivity cov.mat -o pcorr.mat`` (target = the mean unregularized inverse,
     3 loops x 10 grid points, then apply);
   * ``target``: ``kraken connectivity cov.mat --measure precision --lambda 0 --output-mean target.mat``;
   * ``search vs target``: ``kraken connectivity cov.mat --target target.mat -o pcorr.mat``;
   * ``apply``: ``kraken connectivity cov.mat --lambda 0.5 -o pcorr.mat`` (no search);

3. with ``--original DIR`` (a checkout of the original Krakencoder), runs the same four with
   ``DIR/regularize_fc_precision.py`` for comparison. The original's script is not part of this project, so
   without ``--original`` only kraken's numbers are reported.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import machine_line, markdown_table, timed_kraken, timed_python


def _covariances(n_subjects: int, n_regions: int, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(n_regions, n_regions)) / np.sqrt(n_regions)
    t = int(1.5 * n_regions)
    for _ in range(n_subjects):
        x = rng.normal(size=(t, n_regions)) @ mix + 0.3 * rng.normal(size=(t, n_regions))
        yield np.cov(x, rowvar=False)


def write_inputs(folder: Path, n_subjects: int, n_regions: int, fmt: str = "mat") -> Path:
    if fmt == "npy":
        path = folder / "cov.npy"
        arr = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(n_subjects, n_regions, n_regions))
        for i, c in enumerate(_covariances(n_subjects, n_regions)):
            arr[i] = c
        arr.flush()
        del arr
        return path
    import scipy.io

    cell = np.empty((1, n_subjects), dtype=object)
    subjects = np.empty((1, n_subjects), dtype=object)
    for i, c in enumerate(_covariances(n_subjects, n_regions)):
        cell[0, i] = c
        subjects[0, i] = f"{100000 + i}"
    path = folder / "cov.mat"
    scipy.io.savemat(path, {"C": cell, "subjects": subjects}, do_compression=False)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--regions", type=int, default=268)
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--original", type=Path, default=None, help="checkout of the original Krakencoder")
    ap.add_argument("--input-format", choices=("mat", "npy"), default="mat")
    ap.add_argument("--output-format", choices=("mat", "npz"), default="mat")
    ap.add_argument("--runs", default="target,search,searchtarget,apply")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kraken_conn_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    print(machine_line())
    cov = write_inputs(work, args.subjects, args.regions, args.input_format)
    ext = args.output_format
    target = work / "target.mat"
    runs = [
        ("target", "target (--lambda 0 --output-mean)",
         ["--measure", "precision", "--lambda", "0", "--output-mean", str(target)],
         ["--applylambda", "0", "--outputmean", str(target)]),
        ("search", "search (mean-inverse target) + apply", ["-o", str(work / f"p1.{ext}")],
         ["--partialcorr", "--output", str(work / "o1.mat")]),
        ("searchtarget", "search against --target + apply", ["--target", str(target), "-o", str(work / f"p2.{ext}")],
         ["--partialcorr", "--target", str(target), "--output", str(work / "o2.mat")]),
        ("apply", "apply only (--lambda 0.5)", ["--lambda", "0.5", "-o", str(work / f"p3.{ext}")],
         ["--partialcorr", "--applylambda", "0.5", "--output", str(work / "o3.mat")]),
    ]
    rows = []
    wanted = set(args.runs.split(","))
    for key, label, ours, theirs in runs:
        if key not in wanted:
            continue
        wall, rss = timed_kraken(["connectivity", str(cov), "-q", *ours])
        row = [label, f"{wall:.1f} s", f"{rss:.0f} MB"]
        if args.original is not None:
            script = args.original / "regularize_fc_precision.py"
            owall, orss, _ = timed_python([str(script), "--input", str(cov), *theirs])
            row += [f"{owall:.1f} s", f"{orss:.0f} MB", f"{owall / wall:.1f}x"]
        rows.append(row)
        print(row, flush=True)
    headers = ["run", "kraken time", "kraken peak RSS"]
    if args.original is not None:
        headers += ["original time", "original peak RSS", "speed-up"]
    print(f"\n{args.subjects} subjects x {args.regions} regions, {args.input_format} in, {ext} out\n")
    print(markdown_table(headers, rows))
    if not args.keep and args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
