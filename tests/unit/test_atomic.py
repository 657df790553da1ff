"""The atomic writer: umask modes, folder fsync, and removal of the ``.part`` files a killed writer left."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kraken_cli.engine.io import _atomic
from kraken_cli.engine.io._atomic import STALE_PART_SECONDS, atomic_path, scratch_dir


def parts(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_mode_is_what_open_would_give(tmp_path: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        with atomic_path(tmp_path / "out.txt") as tmp:
            tmp.write_text("x")
        with open(tmp_path / "plain.txt", "w") as fh:
            fh.write("x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == stat.S_IMODE((tmp_path / "plain.txt").stat().st_mode)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o666 & ~umask


def test_a_dead_local_writers_parts_go_at_once_a_live_ones_stay(tmp_path: Path) -> None:
    tag = _atomic._writer_tag().rsplit("-", 1)[0]
    dead = tmp_path / f".out.mat.{tag}-{dead_pid()}.abc123.part"
    alive = tmp_path / f".out.mat.{tag}-{os.getpid()}.def456.part"
    other_target = tmp_path / f".other.mat.{tag}-{dead_pid()}.abc123.part"
    for p in (dead, alive, other_target):
        p.write_bytes(b"partial")
    (tmp_path / f".out.mat.{tag}-{dead_pid()}.dir.part").mkdir()  # a scratch folder of the npz writer
    with atomic_path(tmp_path / "out.mat") as tmp:
        tmp.write_bytes(b"done")
    assert parts(tmp_path) == sorted([alive.name, other_target.name])
    assert (tmp_path / "out.mat").read_bytes() == b"done"


def test_parts_of_other_hosts_go_only_when_old(tmp_path: Path) -> None:
    young = tmp_path / ".out.mat.otherhost-1.aaa.part"
    old = tmp_path / ".out.mat.otherhost-2.bbb.part"
    untagged = tmp_path / ".out.mat.q1w2e3.part"  # an older kraken's name
    for p in (young, old, untagged):
        p.write_bytes(b"partial")
    past = time.time() - STALE_PART_SECONDS - 60
    os.utime(old, (past, past))
    os.utime(untagged, (past, past))
    scratch = scratch_dir(tmp_path / "out.mat")
    assert parts(tmp_path) == sorted([young.name, scratch.name])
    scratch.rmdir()


def test_after_kill_9_the_next_run_leaves_no_part(tmp_path: Path) -> None:
    """A writer killed while three large outputs are half written; the next writer of them cleans up."""
    script = f"""
import sys, time
from pathlib import Path
from kraken_cli.engine.io._atomic import atomic_path
outs = [Path({str(tmp_path)!r}) / f"out{{i}}.mat" for i in range(3)]
with atomic_path(outs[0]) as a, atomic_path(outs[1]) as b, atomic_path(outs[2]) as c:
    for t in (a, b, c):
        t.write_bytes(b"x" * 3_000_000)
    print("written", flush=True)
    time.sleep(60)
"""
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "written"
    assert len(parts(tmp_path)) == 3
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    for i in range(3):
        with atomic_path(tmp_path / f"out{i}.mat") as tmp:
            tmp.write_bytes(b"new")
    assert parts(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out0.mat", "out1.mat", "out2.mat"]


def test_the_folder_is_fsynced_after_the_rename(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[str] = []
    monkeypatch.setattr(_atomic, "_fsync_dir", lambda folder: synced.append(str(folder)))
    with atomic_path(tmp_path / "out.txt") as tmp:
        tmp.write_text("x")
    assert synced == [str(tmp_path)]
