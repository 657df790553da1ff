"""SIGINT/SIGTERM during train(): the epoch finishes, is checkpointed, and the run stops with the resume command."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.datasets import make_cohort
from kraken_cli.engine.errors import TrainingInterrupted
from kraken_cli.engine.training import TrainConfig, train
from kraken_cli.engine.training.interrupts import stop_on_signals

CFG = dict(transformation="pca8", latent_size=4, batch_size=16, display_every=2, checkpoint_every=1000)


@pytest.fixture(scope="module")
def cohort():  # type: ignore[no-untyped-def]
    return make_cohort(60, n_regions=12, atlas="toy12", flavors=["FCcorr_toy12_hpf", "SCifod2act_toy12_volnorm"],
                       seed=2)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_checkpoints_the_epoch_and_resume_matches(cohort, tmp_path: Path, sig: int) -> None:  # type: ignore[no-untyped-def]
    def signal_at_6(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.epoch == 6:
            os.kill(os.getpid(), sig)

    cfg = TrainConfig(epochs=12, output=str(tmp_path / "a" / "k"), **CFG)
    with pytest.raises(TrainingInterrupted) as info:
        train(cohort.data, cfg, subjects=cohort.subjects, on_display=signal_at_6, figures=False)
    exc = info.value
    assert exc.exit_code == 130 and exc.completed_epochs == 6 and exc.checkpoint
    assert signal.Signals(sig).name in exc.message and "epoch 6 of 12" in exc.message
    assert exc.hint == f"continue with: kraken train --resume {exc.checkpoint}"
    assert Path(exc.checkpoint).name.endswith("_ep000006.pt")
    assert load_checkpoint(exc.checkpoint).raw["kraken_completed_epochs"] == 6
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handlers restored

    resumed = train(cohort.data, TrainConfig(resume=exc.checkpoint, **{**CFG, "epochs": 12}),
                    subjects=cohort.subjects, figures=False)
    straight = train(cohort.data, TrainConfig(epochs=12, **CFG), subjects=cohort.subjects, figures=False)
    for (ka, a), (kb, b) in zip(resumed.model.state_dict().items(), straight.model.state_dict().items()):
        assert ka == kb and np.array_equal(a.numpy(), b.numpy()), ka


def test_without_an_output_prefix_nothing_is_saved_but_the_run_stops(cohort) -> None:  # type: ignore[no-untyped-def]
    def signal_at_2(ev) -> None:  # type: ignore[no-untyped-def]
        if ev.epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(TrainingInterrupted) as info:
        train(cohort.data, TrainConfig(epochs=12, **CFG), subjects=cohort.subjects, on_display=signal_at_2,
              figures=False)
    assert info.value.checkpoint is None and "nothing was saved" in info.value.message


def test_a_second_ctrl_c_stops_at_once() -> None:
    with stop_on_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        assert stop.requested and stop.name == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
