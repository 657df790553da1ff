"""Helpers shared by the benchmark scripts (not collected by pytest)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
T = TypeVar("T")


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


#: Like _WRAP, passing the command's exit status on (its peak RSS is the last line of stdout either way).
_WRAP_RC = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")


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


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what ``platform`` knows."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_text() -> str:
    """``load average 1.23 / 1.10 / 0.98`` (1, 5 and 15 minutes), or that it is unknown."""
    try:
        return "load average {:.2f} / {:.2f} / {:.2f}".format(*os.getloadavg())
    except (OSError, AttributeError):
        return "load average unknown"


def machine_line() -> str:
    """Cores, CPU model, RAM, Python and the load right now, for the record."""
    import platform

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        mem = float("nan")
    return (f"{cpus} CPU cores ({cpu_model()}, {platform.machine()}), {mem:.0f} GB RAM, "
            f"Python {platform.python_version()}; {load_text()}")


def check_original(root: Path | None, scripts: Sequence[str]) -> Path | None:
    """``--original DIR``: the checkout's folder when it holds every script, else SystemExit saying what is missing."""
    if root is None:
        return None
    root = Path(root).expanduser()
    missing = [s for s in scripts if not (root / s).is_file()]
    if not root.is_dir() or missing:
        raise SystemExit(f"--original {root}: {'not a folder' if not root.is_dir() else 'no ' + ', '.join(missing)} "
                         f"(give a checkout of the original Krakencoder, with {', '.join(scripts)} at its top level)")
    return root


NOT_RUN = ("original Krakencoder: not run (give --original DIR, a checkout of it, to run it side by side "
           "with the same Python)")


def timed_script(args: Sequence[str], *, cwd: Path | None = None, what: str = "command") -> tuple[float, float]:
    """Run ``python ARGS`` (this interpreter; wall s, peak RSS MB), SystemExit with its output's end when it fails."""
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", _WRAP_RC, sys.executable, *args], capture_output=True, text=True,
                         cwd=cwd)
    wall = time.perf_counter() - t0
    lines = res.stdout.rstrip().splitlines()
    if res.returncode != 0:
        tail = ("\n".join(lines[:-1]) + "\n" + res.stderr).strip()[-2000:]
        raise SystemExit(f"{what} failed (exit {res.returncode}): {' '.join(args[:3])} ...\n{tail}")
    return wall, int(lines[-1]) / 1024


@contextlib.contextmanager
def busy(enabled: bool) -> Iterator[None]:
    """With ``enabled``, one competing CPU-bound process runs inside the block (a shared machine)."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if enabled else None
    try:
        yield
    finally:
        if hog is not None:
            hog.kill()
            hog.wait()


def interleave(commands: Sequence[tuple[str, Callable[[], T]]], repeat: int,
               show: Callable[[T], str] = str) -> dict[str, list[T]]:
    """Run the commands in turn (a, b, a, b, ...) ``repeat`` times, so that each sees the same load."""
    out: dict[str, list[T]] = {label: [] for label, _ in commands}
    for r in range(max(1, repeat)):
        for label, fn in commands:
            out[label].append(fn())
            print(f"round {r + 1}: {label}: {show(out[label][-1])}", flush=True)
    return out


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
