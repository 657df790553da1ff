"""Ctrl-C during ``kraken train`` keeps the work: a checkpoint of the last completed epoch, the exact resume
command, and ``kraken train --resume CKPT`` with no other option ends with the weights of a run never interrupted.
"""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch

from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.datasets import make_cohort

from ._installed import clean_env, kraken_script, run_kraken

pytestmark = pytest.mark.slow

GROUPS = {"FCcorr_toy12_hpf": "FC", "FCpcorr_toy12_hpf": "FC", "SCifod2act_toy12_volnorm": "SC"}
EPOCHS = 300
#: Batches of 4 make an epoch take milliseconds, so the run is still going when the signal lands.
#: The default --checkpoint-every (1000) means no checkpoint before the end: only the interrupt writes one.
OPTIONS = ["--transformation", "pca8", "--latent-size", "4", "--batch-size", "4", "--display-every", "50",
           "--epochs", str(EPOCHS), "--device", "cpu"]


def _state(ckpt: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(ckpt).raw["state_dict"]


def test_ctrl_c_then_resume_alone_gives_the_uninterrupted_weights(tmp_path: Path) -> None:
    """SIGTERM (a scheduler's pre-emption) takes the same route: tests/unit/test_training_interrupts.py."""
    script = kraken_script()
    data = tmp_path / "data"
    make_cohort(60, n_regions=12, atlas="toy12", flavors=list(GROUPS), seed=5).write(data)
    inputs: list[str] = []
    for f, g in GROUPS.items():
        inputs += ["-i", f"{f}@{g}={data / f'{f}.mat'}"]
    env = {**clean_env(tmp_path), "PYTHONUNBUFFERED": "1"}

    proc = subprocess.Popen([str(script), "train", *inputs, *OPTIONS, "-o", str(tmp_path / "run" / "k"), "-v"],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen = []
    try:
        assert proc.stderr is not None
        deadline = time.monotonic() + 240
        for line in proc.stderr:  # the display at epoch 150 (-v logs it), then the signal
            seen.append(line)
            if "epoch 150/300" in line:
                proc.send_signal(signal.SIGINT)
                break
            assert time.monotonic() < deadline, "".join(seen)
        seen += proc.stderr.readlines()
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = "".join(seen)
    assert proc.returncode == 130, stderr
    hint = re.search(r"continue with: (kraken train --resume \S+)", stderr)
    assert hint, stderr
    ckpt = Path(shlex.split(hint.group(1))[-1])
    stopped = load_checkpoint(ckpt).raw["kraken_completed_epochs"]
    assert 150 <= stopped < EPOCHS and ckpt.name.endswith(f"_ep{stopped:06d}.pt")
    assert not list(tmp_path.rglob("*.part"))

    # the printed command, word for word (from another folder: the checkpoint knows where its inputs are)
    (tmp_path / "elsewhere").mkdir()
    resumed = run_kraken([*shlex.split(hint.group(1))[1:], "-q"], cwd=tmp_path / "elsewhere", env=env,
                         script=script, timeout=240)
    final = Path(resumed.stdout.splitlines()[-1])
    assert final.parent == ckpt.parent and final.name.endswith(f"_ep{EPOCHS:06d}.pt")

    straight = run_kraken(["train", *inputs, *OPTIONS, "-o", str(tmp_path / "straight" / "k"), "-q"],
                          cwd=tmp_path, env=env, script=script, timeout=240)
    a, b = _state(final), _state(Path(straight.stdout.splitlines()[-1]))
    assert list(a) == list(b)
    for k in a:
        assert float((a[k] - b[k]).abs().max()) == 0.0, k

    logs = list((tmp_path / "run").glob("k_log_*.txt"))
    assert len(logs) == 1
    lines = logs[0].read_text().splitlines()
    epochs = [int(ln.split()[1].split("/")[0]) for ln in lines if ln.startswith("epoch ")]
    assert epochs == list(range(50, EPOCHS + 1, 50))  # every display epoch once, in order
    assert lines[0].startswith("kraken train ") and any(ln.startswith(f"resumed at epoch {stopped}: kraken train")
                                                          for ln in lines)
