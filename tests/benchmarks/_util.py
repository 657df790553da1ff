"""Helpers shared by the benchmark scripts (not collected by pytest)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def random_model(folder: Path, flavors: Sequence[str], fit_data: dict[str, np.ndarray], *, latent: int = 128,
                 pca: int = 256, seed: int = 0) -> tuple[Path, Path]:
    """An untrained Krakencoder with PCA transforms fitted on ``fit_data``: (checkpoint, ioxfm)."""
    import torch

    from kraken_cli.engine.checkpoint import checkpoint_dict, save_checkpoint
    from kraken_cli.engine.model import Krakencoder, ModelConfig
    from kraken_cli.engine.transforms import make_transform
    from kraken_cli.engine.transforms.files import save_transforms

    torch.manual_seed(seed)
    transforms = {f: make_transform(f"pca{pca}").fit(fit_data[f]) for f in flavors}
    cfg = ModelConfig(input_size_list=[pca] * len(flavors), latentsize=latent, latent_normalize=True, dropout=0.5)
    net = Krakencoder(cfg)
    extra = {"epoch": 0, "orig_input_size_list": [fit_data[f].shape[1] for f in flavors],
             "input_transformation_info": f"pc{pca}", "reduce_dimension": pca,
             "trainpath_encoder_index_list": [], "trainpath_decoder_index_list": []}
    folder.mkdir(parents=True, exist_ok=True)
    ck = save_checkpoint(folder / "bench_chkpt.pt", checkpoint_dict(net, list(flavors), extra))
    tr = save_transforms(folder / "bench_ioxfm.npy", transforms)
    return ck, tr


_WRAP = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")


def timed_kraken(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run the installed ``kraken`` command; return (wall seconds, peak RSS of that run in MB).

    Each run goes through a fresh wrapper process so its peak RSS is its own.
    """
    exe = Path(sys.executable).with_name("kraken")
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _WRAP, str(exe), *args], check=True, capture_output=True, text=True,
                         env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    return wall, int(res.stdout.strip().splitlines()[-1]) / 1024


def timed_python(args: Sequence[str], env: dict[str, str] | None = None) -> tuple[float, float, str]:
    """Run ``python ARGS`` (this interpreter) like :func:`timed_kraken`: (wall s, peak RSS MB, its stdout)."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _WRAP, sys.executable, *args], check=True, capture_output=True,
                         text=True, env={**os.environ, **(env or {})})
    wall = time.perf_counter() - t0
    lines = res.stdout.strip().splitlines()
    return wall, int(lines[-1]) / 1024, "\n".join(lines[:-1])


def folder_bytes(folder: Path) -> int:
    """Total size of the files under ``folder``."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def free_bytes(folder: Path) -> int:
    """Free disk space where ``folder`` lives."""
    import shutil

    return shutil.disk_usage(folder).free


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A GitHub-flavoured markdown table."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    line = lambda r: "| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |"  # noqa: E731
    return "\n".join([line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
                     + [line(r) for r in cells[1:]])


def machine_line() -> str:
    """CPU count, RAM and load, for the record."""
    import platform

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        load = ", load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except (ValueError, OSError, AttributeError):
        mem, load = float("nan"), ""
    return f"{platform.machine()} {cpus} CPUs, {mem:.0f} GB RAM, Python {platform.python_version()}{load}"


def _spin(n: int) -> float:
    t0 = time.perf_counter()
    s = 0
    for i in range(n):
        s += i
    return time.perf_counter() - t0


def effective_cores(n: int = 3_000_000) -> float:
    """How many cores a CPU-bound job gets right now (other jobs on a shared machine take some)."""
    import multiprocessing as mp

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    one = min(_spin(n) for _ in range(3))
    with mp.get_context("fork").Pool(cpus) as pool:
        many = min(max(pool.map(_spin, [n] * cpus)) for _ in range(3))
    return min(float(cpus), cpus * one / many)
