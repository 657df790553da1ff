"""``kraken run`` time and peak memory for 5 fs86 flavors x 1000 subjects with fusion, beside the original's.

    .venv/bin/python tests/benchmarks/run_speed.py [--subjects 1000] [--repeat 3] [--original DIR] [--busy]
        [--floor] [--workdir DIR] [--keep]

What it does:

1. generates a synthetic cohort (``make_cohort``: 5 fs86 flavors) and writes one MATLAB v5 input
   file per flavor (``data`` [S x 86 x 86], ``subjects``);
2. runs, each in a fresh process (wall time and peak RSS of that process)::

       kraken run -q -c model.pt -t model_ioxfm.npy -i FLAVOR=FLAVOR.mat (x5) --fusion --outputs all \\
           -o OUT/{input}.mat

   with ``../shared/conformance/P/model.pt`` when present (else an untrained model with PCA-256);
3. with ``--original DIR`` (a checkout of the original Krakencoder), the same run with its script and
   this Python (UPSTREAM 1.2)::

       python DIR/run_model.py --checkpoint model.pt --inputxform model_ioxfm.npy \\
           --inputdata FLAVOR=FLAVOR.mat (x5) --fusion --outputname all --output OUT/{input}.mat

   alternating with kraken's runs (kraken, original, kraken, original, ...; ``--repeat`` rounds), and
   the speed-up and memory ratio computed from those measurements. Without ``--original`` only
   kraken's numbers are printed (no figure of the original is built in);
4. ``--floor``: also a process that only reads the same inputs with kraken's reader and writes files
   of the same count, layout and size with ``scipy.io.savemat`` (uncompressed): the I/O floor.

``--busy`` runs one competing CPU-bound process during every run (a shared machine). The machine
(cores, CPU model) and the load average at the start and the end are printed with the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _util import (
    NOT_RUN,
    SHARED,
    busy,
    check_original,
    folder_bytes,
    interleave,
    load_text,
    machine_line,
    markdown_table,
    random_model,
    timed_script,
)

FLAVORS = ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCifod2act_fs86_volnorm",
           "SCsdstream_fs86_volnorm"]
P = SHARED / "conformance" / "P"
ORIGINAL_SCRIPTS = ("run_model.py",)
KRAKEN = Path(sys.executable).with_name("kraken")


def floor_worker(spec: dict[str, object]) -> None:
    """Read every input with kraken's reader, then write one uncompressed v5 file per source like ``kraken run``."""
    import scipy.io

    from kraken_cli.engine.io import load_cohort

    cohort = load_cohort(list(spec["inputs"]))  # type: ignore[arg-type]
    rows = {f: np.asarray(cohort.read(f), dtype=np.float32) for f in cohort.flavors}
    for src in list(cohort.flavors) + ["fusion"]:
        data = {"checkpoint": "floor", "recordfile": "", "inputfiles": list(cohort.flavors),
                "subjects": list(cohort.subjects), "inputtypes": [src], "outputtypes": list(cohort.flavors),
                "predicted_alltypes": {src: {o: rows[o] for o in sorted(cohort.flavors)}},
                "fusionmode_inputtypes": {"fusion": list(cohort.flavors)}}
        scipy.io.savemat(Path(str(spec["out"])) / f"{src}.mat", data, format="5", long_field_names=True,
                         oned_as="row")


def kraken_args(ck: Path, tr: Path, files: dict[str, Path], out: Path) -> list[str]:
    return ["run", "-q", "-c", str(ck), "-t", str(tr), *[a for f in FLAVORS for a in ("-i", f"{f}={files[f]}")],
            "--fusion", "--outputs", "all", "-o", str(out / "{input}.mat")]


def original_args(root: Path, ck: Path, tr: Path, files: dict[str, Path], out: Path) -> list[str]:
    """``run_model.py`` options for the same run (UPSTREAM 1.2; conformance/P/COMMANDS.md)."""
    return [str(root / "run_model.py"), "--checkpoint", str(ck), "--inputxform", str(tr),
            "--inputdata", *[f"{f}={files[f]}" for f in FLAVORS], "--fusion", "--outputname", "all",
            "--output", str(out / "{input}.mat")]


def expected_outputs(out: Path) -> list[Path]:
    return [out / f"{name}.mat" for name in [*FLAVORS, "fusion"]]


def _model(work: Path, n_subjects: int, files: dict[str, Path]) -> tuple[Path, Path, str]:
    ck, tr = P / "model.pt", P / "model_ioxfm.npy"
    if ck.is_file() and tr.is_file():
        return ck, tr, "conformance/P model.pt (PCA-64, latent 32)"
    from kraken_cli.engine.io import load_cohort

    cohort = load_cohort([f"{f}={p}" for f, p in files.items()])
    fit = {f: np.asarray(cohort.read(f, 0, min(n_subjects, 500)), dtype=np.float64) for f in FLAVORS}
    pca = min(256, min(len(v) for v in fit.values()) - 1)
    ck, tr = random_model(work / "model", FLAVORS, fit, pca=pca)
    return ck, tr, f"untrained random model (PCA-{pca}, latent 128)"


def _runner(label: str, args: Sequence[str], out: Path, *, what: str):  # type: ignore[no-untyped-def]
    def once() -> tuple[float, float, int]:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        wall, rss = timed_script(args, what=what)
        missing = [p.name for p in expected_outputs(out) if not p.is_file()]
        if missing:
            raise SystemExit(f"{label} did not write {', '.join(missing)} in {out}")
        return wall, rss, folder_bytes(out)
    return once


def main(argv: Sequence[str] | None = None) -> dict[str, list[tuple[float, float, int]]]:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--subjects", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3, help="rounds; each round runs every command once")
    ap.add_argument("--original", type=Path, default=None, help="checkout of the original Krakencoder")
    ap.add_argument("--busy", action="store_true", help="one competing CPU-bound process during every run")
    ap.add_argument("--floor", action="store_true", help="also time reading + writing the same bytes alone")
    ap.add_argument("--workdir", type=Path, default=None, help="default: a new folder under the temp dir")
    ap.add_argument("--keep", action="store_true", help="keep the generated files")
    ap.add_argument("--floor-worker", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.floor_worker:
        floor_worker(json.loads(args.floor_worker))
        return {}
    original = check_original(args.original, ORIGINAL_SCRIPTS)  # before minutes of work
    from kraken_cli.engine.datasets import make_cohort

    print(f"Machine: {machine_line()}", flush=True)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="kraken-run-speed-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        t0 = time.perf_counter()
        files = make_cohort(args.subjects, seed=0).write(work / "inputs")
        print(f"generated {args.subjects} subjects x {len(files)} flavors in {time.perf_counter() - t0:.1f} s "
              f"({folder_bytes(work / 'inputs') / 2**20:.0f} MB of .mat v5 inputs)", flush=True)
        ck, tr, model_label = _model(work, args.subjects, files)
        commands = [("kraken run", _runner("kraken run", [str(KRAKEN), *kraken_args(ck, tr, files, work / "k")],
                                            work / "k", what="kraken run"))]
        if original is not None:
            commands.append(("original run_model.py", _runner(
                "original run_model.py", original_args(original, ck, tr, files, work / "o"), work / "o",
                what="the original's run_model.py")))
        if args.floor:
            spec = json.dumps({"inputs": [f"{f}={files[f]}" for f in FLAVORS], "out": str(work / "f")})
            commands.append(("floor: read + scipy savemat (uncompressed)", _floor(spec, work / "f")))
        start_load = load_text()
        with busy(args.busy):
            measured = interleave(commands, args.repeat, show=lambda m: f"{m[0]:.2f} s, {m[1]:.0f} MB")
        report(measured, args, model_label, start_load, original is not None)
        return measured
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def _floor(spec: str, out: Path):  # type: ignore[no-untyped-def]
    def once() -> tuple[float, float, int]:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        wall, rss = timed_script([__file__, "--floor-worker", spec], what="the floor")
        return wall, rss, folder_bytes(out)
    return once


def report(measured: dict[str, list[tuple[float, float, int]]], args: argparse.Namespace, model_label: str,
           start_load: str, with_original: bool) -> None:
    """The table, the ratios computed from the runs, the machine and the load."""
    rows = []
    for label, runs in measured.items():
        best = min(runs, key=lambda m: m[0])
        rows.append([label, f"{best[0]:.2f}", f"{statistics.median(m[0] for m in runs):.2f}",
                     f"{max(m[1] for m in runs):.0f}", f"{best[2] / 2**20:.0f}", " ".join(f"{m[0]:.2f}" for m in runs)])
    print(f"\n## kraken run: {args.subjects} subjects x 5 fs86 flavors, --fusion --outputs all, 6 files (.mat v5)\n")
    print(f"Model: {model_label}. Machine: {machine_line()}. {args.repeat} alternating rounds"
          f"{', one competing CPU-bound process' if args.busy else ''}; {start_load} at the start.\n")
    print(markdown_table(["command", "best wall s", "median s", "peak RSS MB", "output MB", "all runs s"], rows))
    print()
    if with_original:
        k, o = measured["kraken run"], measured["original run_model.py"]
        kb, ob = min(m[0] for m in k), min(m[0] for m in o)
        km, om = max(m[1] for m in k), max(m[1] for m in o)
        med = statistics.median(m[0] for m in o) / statistics.median(m[0] for m in k)
        print(f"Speed-up (original best / kraken best): {ob / kb:.2f}x; medians: {med:.2f}x. Peak memory: "
              f"kraken {km:.0f} MB, original {om:.0f} MB ({om / km:.2f}x).")
    else:
        print(NOT_RUN + ".")


if __name__ == "__main__":
    main()
