"""``kraken train`` killed with SIGKILL, then ``kraken train ... --resume``: the same weights as a run never killed.

tests/unit/test_training_resume_kill.py checks this through the engine; this test goes through the installed
console script, as a user on a cluster would after a pre-emption.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from kraken_cli.cli.app import app
from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.datasets import make_cohort

from ._installed import clean_env, kraken_script, run_kraken

pytestmark = pytest.mark.slow

GROUPS = {"FCcorr_toy12_hpf": "FC", "FCpcorr_toy12_hpf": "FC", "SCifod2act_toy12_volnorm": "SC"}
EPOCHS = 40
#: Batches of 2 make an epoch slow enough (tens of ms) to kill the run between two checkpoints.
OPTIONS = ["--transformation", "pca8", "--latent-size", "4", "--batch-size", "2", "--checkpoint-every", "5",
           "--display-every", "0", "--epochs", str(EPOCHS), "--device", "cpu"]


def _checkpoints(folder: Path) -> list[Path]:
    return sorted(folder.glob("k_chkpt_*_ep*.pt"))


def test_kill_9_then_resume_gives_the_uninterrupted_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    script = kraken_script()
    data = tmp_path / "data"
    make_cohort(60, n_regions=12, atlas="toy12", flavors=list(GROUPS), seed=5).write(data)
    inputs: list[str] = []
    for f, g in GROUPS.items():
        inputs += ["-i", f"{f}@{g}={data / f'{f}.mat'}"]
    env = clean_env(tmp_path)
    run = tmp_path / "run"

    proc = subprocess.Popen([str(script), "train", *inputs, *OPTIONS, "-o", str(run / "k")], cwd=tmp_path, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        # kill once the first checkpoint and the log written right after it are in place, between two writes
        while time.monotonic() < deadline and proc.poll() is None:
            if _checkpoints(run) and list(run.glob("k_log_*.txt")) and not list(run.glob(".*.part")):
                os.kill(proc.pid, signal.SIGKILL)
                break
            time.sleep(0.005)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL, f"not killed (exit {proc.returncode}):\n{proc.stderr.read()}"
    if proc.stderr is not None:
        proc.stderr.close()

    ckpts = _checkpoints(run)
    assert ckpts and not any(c.name.endswith(f"_ep{EPOCHS:06d}.pt") for c in ckpts), "killed too late"
    assert not list(tmp_path.rglob("*.part")), "a write was torn"
    for c in ckpts:  # every checkpoint on disk is complete (written atomically)
        load_checkpoint(c)
    last = ckpts[-1]

    resumed = run_kraken(["train", *inputs, *OPTIONS, "--resume", str(last), "-q"], cwd=tmp_path, env=env,
                         script=script)
    final = Path(resumed.stdout.splitlines()[-1])
    assert final.parent == run and final.name.endswith(f"_ep{EPOCHS:06d}.pt")  # beside the killed run's files

    monkeypatch.setattr("kraken_cli.engine.training.loop._figures", lambda setup: {})  # not needed here
    res = CliRunner().invoke(app, ["train", *inputs, *OPTIONS, "-o", str(tmp_path / "straight" / "k"), "-q"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    reference = Path(res.stdout.splitlines()[-1])

    a, b = load_checkpoint(final).raw, load_checkpoint(reference).raw
    assert a["kraken_completed_epochs"] == b["kraken_completed_epochs"] == EPOCHS and a["epoch"] == EPOCHS - 1
    for k in b["state_dict"]:
        assert torch.equal(a["state_dict"][k], b["state_dict"][k]), k
    torch.testing.assert_close(a["kraken_history"]["loss_train"], b["kraken_history"]["loss_train"], rtol=0, atol=0)
    assert not list(tmp_path.rglob("*.part"))
