"""The thread policy: never more threads than usable cores that other work leaves free (issue 18 item 1)."""

from __future__ import annotations

import os

import pytest

from kraken_cli.engine import threads


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch):
    """A fake machine: its CPU set, cgroup quota and the cores other processes keep busy."""
    state = {"cpus": [0, 1, 2, 3], "quota": None, "busy": 0.0}
    monkeypatch.setattr(threads, "_affinity", lambda: list(state["cpus"]))
    monkeypatch.setattr(threads, "_cgroup_quota", lambda: state["quota"])
    monkeypatch.setattr(threads, "free_cores", lambda window=0.2: len(state["cpus"]) - state["busy"])
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    return state


def test_quiet_machine_uses_every_usable_core(machine) -> None:
    assert threads.choose_threads(None).threads == 4


def test_one_competing_job_leaves_one_core_fewer(machine) -> None:
    machine["busy"] = 1.0
    choice = threads.choose_threads(None)
    assert choice.threads == 3
    assert "4 usable cores" in choice.reason and "3.0 free" in choice.reason


def test_a_saturated_machine_still_gets_one_thread(machine) -> None:
    machine["busy"] = 9.0
    assert threads.choose_threads(None).threads == 1


def test_cgroup_quota_caps_the_cores(machine) -> None:
    machine["quota"] = 1.5
    assert threads.usable_cores() == 2
    assert threads.choose_threads(None).threads == 2


def test_torchrun_processes_share_the_cores(machine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    assert threads.choose_threads(None).threads == 2


def test_explicit_small_and_gpu_choices(machine) -> None:
    assert threads.choose_threads(7).threads == 7
    assert threads.choose_threads(None, small_work=True).threads == 1
    assert threads.choose_threads(None, device_type="cuda").threads is None


def test_free_cores_is_measured_within_the_cpu_set() -> None:
    free = threads.free_cores(window=0.05)
    assert 0.0 <= free <= len(os.sched_getaffinity(0)) + 1e-9 if hasattr(os, "sched_getaffinity") else free >= 0


def test_the_training_log_names_the_thread_choice(tmp_path) -> None:
    from kraken_cli.engine.training.session import TrainLog

    class Ev:
        epoch, epochs, seconds_per_epoch, threads = 1, 2, 0.1, "1 (small steps)"
        import numpy as _np
        loss_train = loss_val = _np.zeros(2)
        metrics: dict = {}

        def mean(self, k: str) -> float:
            return 0.0

    log = TrainLog(["kraken", "train"])
    log.add(Ev())  # type: ignore[arg-type]
    log.add(Ev())  # type: ignore[arg-type]
    assert log.lines.count("threads: 1 (small steps)") == 1
