"""How many CPU threads kraken's torch work uses: never more than the cores it may use and finds free.

torch starts with one intra-op thread per physical core of the machine, whatever the process may
use (``taskset``, a Slurm allocation, a container's CPU quota) and whoever else is computing. On a
shared machine that oversubscribes: with one other CPU-bound job on 2 cores, a paper-scale epoch went
from 1.4 s to 27-67 s as two threads spun against it, while one thread took 2.0 s. So the choice is:

1. ``--threads N`` when given;
2. 1 when the work per step is small (synchronising threads costs more than it saves);
3. else the usable cores (affinity, cgroup quota; shared among the machine's ``torchrun`` processes)
   less those other processes keep busy (measured from ``/proc/stat`` over a fifth of a second while
   kraken waits; elsewhere the 1-minute load average), at least 1.

The choice and its reason are reported (:attr:`ThreadChoice.reason`) in the training log.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ThreadChoice:
    """The threads chosen (None: leave torch's setting, e.g. on a GPU) and why."""

    threads: int | None
    reason: str


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup CPU quota."""
    cores = len(_affinity())
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota)) if quota is not None else cores)


@contextlib.contextmanager
def blas_threads(n: int | None) -> Iterator[None]:
    """numpy's and scipy's BLAS/LAPACK on ``n`` threads inside the block (None: unchanged).

    The limit is process-wide: code that runs its own threads (one single-threaded BLAS call each, the
    steady choice for small matrices on a shared machine) sets it once around them all.
    """
    if n is None:
        yield
        return
    from threadpoolctl import threadpool_limits  # a dependency; imported when a limit is asked for

    with threadpool_limits(limits=n, user_api="blas"):
        yield


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup (v2 ``cpu.max``, v1 ``cfs_quota_us``/``cfs_period_us``), None if unlimited."""
    try:
        text = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if text and text[0] != "max":
            return int(text[0]) / int(text[1])
        return None
    except (OSError, ValueError, IndexError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return quota / period if quota > 0 and period > 0 else None
    except (OSError, ValueError):
        return None


def _affinity() -> list[int]:
    try:
        return sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return list(range(os.cpu_count() or 1))


def free_cores(window: float = 0.2) -> float:
    """Cores of this process's CPU set left idle by other processes, measured over ``window`` seconds.

    Reads the per-CPU counters of ``/proc/stat`` for the CPUs this process may use, sleeping in
    between so its own work does not count; where there are none, the CPU set less the 1-minute
    load average (which also counts this process's recent work).
    """
    cpus = _affinity()
    first = _cpu_times(cpus)
    if first is not None:
        time.sleep(window)
        second = _cpu_times(cpus)
        if second is not None and second[1] > first[1]:
            idle, total = second[0] - first[0], second[1] - first[1]
            return len(cpus) * idle / total
    try:
        return max(0.0, len(cpus) - os.getloadavg()[0])
    except (AttributeError, OSError):
        return float(len(cpus))


def _cpu_times(cpus: list[int]) -> tuple[int, int] | None:
    """(idle, total) clock ticks since boot summed over ``cpus``, from ``/proc/stat``."""
    wanted = {f"cpu{c}" for c in cpus}
    idle = total = 0
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            for line in fh:
                parts = line.split()
                if parts and parts[0] in wanted:
                    v = [int(x) for x in parts[1:9]]
                    idle += v[3] + (v[4] if len(v) > 4 else 0)  # idle + iowait
                    total += sum(v)
    except (OSError, ValueError, IndexError):
        return None
    return (idle, total) if total > 0 else None


def choose_threads(requested: int | None, *, device_type: str = "cpu", small_work: bool = False) -> ThreadChoice:
    """The intra-op threads for a CPU job (see the module docstring for the policy)."""
    if requested is not None:
        return ThreadChoice(int(requested), f"{requested} (--threads)")
    if device_type != "cpu":
        return ThreadChoice(None, f"torch's default (computing on {device_type})")
    if small_work:
        return ThreadChoice(1, "1 (small steps: more threads would only add synchronisation)")
    ranks = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1))  # torchrun's processes on this machine
    cores, free = max(1, usable_cores() // ranks), free_cores() / ranks
    n = max(1, min(cores, round(free)))
    return ThreadChoice(n, f"{n} ({cores} usable cores, {free:.1f} free of other work)")
