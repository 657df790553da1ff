"""The figure helper processes of ``kraken train`` (training/_figures): same files as drawn in-process, failures reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from kraken_cli.engine.plots import heatmap_from_record, plot_training_curves
from kraken_cli.engine.training._figures import FigureWorker

REF = Path("conformance") / "P" / "reference_trainrecord.mat"


@pytest.mark.parametrize("kind", ["heatmap", "loss"])
def test_the_helper_draws_the_figure_the_training_process_would(shared_dir: Path, tmp_path: Path, kind: str) -> None:
    record = shared_dir / REF
    if not record.is_file():
        pytest.skip(f"{record} is not available")
    worker = FigureWorker()
    worker.submit(kind, record, tmp_path / "helper.png", "a title")
    assert worker.result() == tmp_path / "helper.png"
    here = (heatmap_from_record(record, tmp_path / "here.png") if kind == "heatmap"
            else plot_training_curves(record, tmp_path / "here.png", title="a title"))
    assert (tmp_path / "helper.png").read_bytes() == here.read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_a_failing_helper_says_why(tmp_path: Path) -> None:
    worker = FigureWorker()
    worker.submit("loss", tmp_path / "no_such_record.mat", tmp_path / "h.png")
    with pytest.raises(RuntimeError, match="figure helper failed"):
        worker.result()
    assert not (tmp_path / "h.png").exists()


def test_an_unused_helper_is_stopped() -> None:
    worker = FigureWorker()
    proc = worker.proc
    assert proc is not None
    worker.close()
    assert proc.poll() is not None and worker.proc is None


def test_helpers_only_for_trainings_long_enough_to_hide_their_start() -> None:
    from kraken_cli.engine.training._figures import helpers_pay_off

    assert helpers_pay_off(300, 25, 230, 64)  # recipe P
    assert not helpers_pay_off(1, 25, 230, 64)  # one epoch: over before a helper has imported matplotlib
    assert not helpers_pay_off(10, 4, 20, 8)  # a test-sized run


def test_the_figure_code_does_not_import_torch() -> None:
    """The helpers run beside the training: importing torch there (1 s of CPU each) slowed its first epochs."""
    import subprocess
    import sys

    code = ("import sys, kraken_cli.engine.plots, kraken_cli.engine.training._figures, kraken_cli.engine.training.record; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
