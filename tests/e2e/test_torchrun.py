"""``torchrun -m kraken_cli train`` on CPU (gloo over 127.0.0.1): one model, exact to one process.

Each test runs real processes: ``python -m torch.distributed.run --standalone`` (torchrun) with
two workers, and ``python -m kraken_cli train`` for one process, on a tiny synthetic cohort of a
custom 20-region atlas. Weights are compared tensor by tensor as ``max|a - b| / max|b|``.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.datasets import make_cohort

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not sys.platform.startswith("linux"),
                                                    reason="torchrun workers are found through /proc")]

FLAVORS = {"FCcorr_toy20_hpf": "FC", "FCpcorr_toy20_hpf": "FC", "SCifod2act_toy20_volnorm": "SC"}
TOL = 1e-4
KRAKEN = Path(sys.executable).with_name("kraken")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    folder = tmp_path_factory.mktemp("toy20")
    files = make_cohort(60, n_regions=20, atlas="toy20", seed=0, flavors=list(FLAVORS)).write(folder)
    args = []
    for f, group in FLAVORS.items():
        args += ["-i", f"{f}@{group}={files[f]}"]
    return args


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env["OMP_NUM_THREADS"] = "1"
    return env


def _command(procs: int, inputs: list[str], out: Path, *extra: str, epochs: int = 20) -> list[str]:
    launcher = [sys.executable, "-m", "kraken_cli"] if procs == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
        "-m", "kraken_cli"]
    return [*launcher, "train", *inputs, "--transformation", "pca8", "--latent-size", "8", "--batch-size", "10",
            "--epochs", str(epochs), "--display-every", "10", "--checkpoint-every", "10", "--seed", "3",
            "--device", "cpu", "-o", str(out / "k"), "-q", *extra]


def _train(procs: int, inputs: list[str], out: Path, *extra: str, epochs: int = 20) -> dict[int, Path]:
    res = subprocess.run(_command(procs, inputs, out, *extra, epochs=epochs), capture_output=True, text=True,
                         env=_env(), timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    return _checkpoints(out)


def _checkpoints(out: Path) -> dict[int, Path]:
    found = {}
    for p in out.glob("k_chkpt_*_ep*.pt"):
        m = re.search(r"_ep(\d+)\.pt$", p.name)
        assert m is not None
        found[int(m.group(1))] = p
    return found


def _max_rel_diff(a: Path, b: Path) -> float:
    sa, sb = load_checkpoint(a).raw["state_dict"], load_checkpoint(b).raw["state_dict"]
    assert sa.keys() == sb.keys()
    return max(float((sa[k] - sb[k]).abs().max() / sb[k].abs().max()) for k in sb)


@pytest.fixture(scope="module")
def runs(inputs: list[str], tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[int, Path]]:
    """The same 20-epoch run with one and with two processes (checkpoints at 10 and 20 epochs)."""
    return {procs: _train(procs, inputs, tmp_path_factory.mktemp(f"procs{procs}")) for procs in (1, 2)}


@pytest.mark.timeout(300)
def test_two_processes_train_the_model_one_process_trains(runs: dict[int, dict[int, Path]]) -> None:
    one, two = runs[1], runs[2]
    assert sorted(one) == sorted(two) == [10, 20]
    assert _max_rel_diff(two[20], one[20]) <= TOL
    folder = two[20].parent  # rank 0 alone wrote: one set of files
    assert len(list(folder.glob("k_trainrecord_*.mat"))) == 1 and len(list(folder.glob("k_ioxfm_*"))) == 1
    a, b = load_checkpoint(two[20]).raw, load_checkpoint(one[20]).raw
    assert a["kraken_completed_epochs"] == b["kraken_completed_epochs"] == 20
    la, lb = a["kraken_history"]["loss_train"], b["kraken_history"]["loss_train"]
    assert torch.allclose(la, lb, rtol=1e-4)  # every path's loss, summed across processes


@pytest.mark.timeout(300)
def test_resume_with_another_number_of_processes(runs: dict[int, dict[int, Path]], inputs: list[str],
                                                 tmp_path: Path) -> None:
    one, two = runs[1], runs[2]
    two_to_one = _train(1, inputs, tmp_path / "2to1", "--resume", str(two[10]))
    one_to_two = _train(2, inputs, tmp_path / "1to2", "--resume", str(one[10]))
    assert _max_rel_diff(two_to_one[20], one[20]) <= TOL
    assert _max_rel_diff(one_to_two[20], one[20]) <= TOL


@pytest.mark.timeout(300)
def test_distributed_checkpoints_are_ordinary_checkpoints(runs: dict[int, dict[int, Path]], inputs: list[str],
                                                          tmp_path: Path) -> None:
    ckpt = runs[2][20]
    for args in (["describe", str(ckpt)],
                 ["run", "-c", str(ckpt), *inputs, "-o", str(tmp_path / "{input}.mat"), "-q"],
                 ["merge", str(ckpt), str(runs[1][10]), "-o", str(tmp_path / "merged.pt"), "-q"]):
        res = subprocess.run([str(KRAKEN), *args], capture_output=True, text=True, env=_env(), timeout=120)
        assert res.returncode == 0, (args, res.stdout + res.stderr)
    assert len(list(tmp_path.glob("*.mat"))) == len(FLAVORS)
    assert (tmp_path / "merged.pt").is_file()


def _workers(torchrun: int) -> dict[int, int]:
    """rank -> pid of torchrun's worker processes (children whose environment has RANK)."""
    found = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = Path(f"/proc/{d}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) != torchrun:
                continue
            env = Path(f"/proc/{d}/environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        ranks = [e[5:] for e in env if e.startswith(b"RANK=")]
        if ranks:
            found[int(ranks[0])] = int(d)
    return found


@pytest.fixture
def killable(inputs: list[str], tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    cmd = _command(2, inputs, tmp_path / "killed", epochs=5000)
    cmd[cmd.index("--display-every") + 1] = "0"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env())
    yield proc
    if proc.poll() is None:
        proc.kill()
        proc.communicate()


@pytest.mark.timeout(300)
def test_a_killed_process_fails_the_run_fast_and_resume_continues(killable: subprocess.Popen[str],
                                                                  inputs: list[str], tmp_path: Path) -> None:
    killed = tmp_path / "killed"
    deadline = time.monotonic() + 180
    while not _checkpoints(killed):
        assert killable.poll() is None, killable.communicate()
        assert time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.05)
    workers = _workers(killable.pid)
    assert sorted(workers) == [0, 1], workers
    os.kill(workers[1], signal.SIGKILL)
    t0 = time.monotonic()
    try:
        _, err = killable.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("torchrun did not stop within 60 s after a worker was killed")
    assert time.monotonic() - t0 < 60
    assert killable.returncode != 0
    # rank 0 either saw the lost peer itself or was stopped by torchrun first (while writing, say)
    assert "lost contact with another training process" in err or "Signal 9" in err, err[-2000:]
    done = _checkpoints(killed)
    last = max(done)
    assert last < 5000
    for p in done.values():  # atomic writes: every checkpoint on disk is complete
        load_checkpoint(p)

    total = last + 20
    resumed = _train(1, inputs, tmp_path / "resumed", "--resume", str(done[last]), epochs=total)
    reference = _train(1, inputs, tmp_path / "reference", epochs=total)
    assert _max_rel_diff(resumed[total], reference[total]) <= TOL
