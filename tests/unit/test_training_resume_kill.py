"""A training process killed with SIGKILL resumes from its last checkpoint to identical weights."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.datasets import make_cohort
from kraken_cli.engine.training import TrainConfig, train

EPOCHS = 120
CFG = dict(transformation="pca8", latent_size=6, batch_size=8, display_every=100, checkpoint_every=5, epochs=EPOCHS)

# TODO: drive `kraken train` (the CLI) instead of the engine once the command is wired.
DRIVER = f"""
import sys
from kraken_cli.engine.datasets import make_cohort
from kraken_cli.engine.training import TrainConfig, train
c = make_cohort(60, n_regions=10, seed=0)
cfg = TrainConfig(output=sys.argv[1], **{CFG!r})
train(c.data, cfg, subjects=c.subjects, threads=1, figures=False,
      on_checkpoint=lambda p: print("CKPT", p, flush=True))
print("DONE", flush=True)
"""


@pytest.mark.slow
def test_kill_then_resume_gives_identical_weights(tmp_path: Path) -> None:
    prefix = tmp_path / "run" / "k"
    proc = subprocess.Popen([sys.executable, "-c", DRIVER, str(prefix)], stdout=subprocess.PIPE, text=True,
                            cwd=tmp_path)
    assert proc.stdout is not None
    seen = 0
    for line in proc.stdout:
        if line.startswith("CKPT"):
            seen += 1
            if seen == 3:
                os.kill(proc.pid, signal.SIGKILL)
                break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    ckpts = sorted((tmp_path / "run").glob("k_chkpt_*_ep*.pt"))
    assert ckpts and not any(c.name.endswith(f"_ep{EPOCHS:06d}.pt") for c in ckpts), "killed too late"
    for c in ckpts:  # every checkpoint on disk is complete (atomic writes)
        load_checkpoint(c)
    last = ckpts[-1]

    c = make_cohort(60, n_regions=10, seed=0)
    resumed = train(c.data, TrainConfig(resume=str(last), **CFG), subjects=c.subjects, threads=1, figures=False)
    reference = train(c.data, TrainConfig(**CFG), subjects=c.subjects, threads=1, figures=False)
    a, b = resumed.model.state_dict(), reference.model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.checkpoints[-1].name.endswith(f"_ep{EPOCHS:06d}.pt")
