"""Every option and combination is checked before any input is read or any output written.

The inputs named here do not exist: had kraken read them first, the error would be about a missing file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

runner = CliRunner()
NO_DEBUG = {"KRAKEN_DEBUG": ""}
GHOST = ["-i", "FCcorr_fs86_hpf=does-not-exist.mat", "-c", "does-not-exist.pt"]


@pytest.mark.parametrize(("args", "named"), [
    (["--evaluate", "--demean", "bogus"], "--demean"),
    (["--split", "nonsense", "--split-file", "s.mat"], "--split"),
    (["--split", "test"], "--split-file"),
    (["--adapt", "warp"], "warp"),
    (["--adapter", "a.json", "--adapt", "meanshift"], "--adapter"),
    (["--adapt-source", "FCcorr_fs86_hpf=ref.mat"], "--adapt-source"),
    (["--format", "npz"], "--format"),  # -o out.mat below: the extension contradicts it
    (["--chunk-size", "0"], "chunk"),
])
def test_run_refuses_bad_options_before_reading(tmp_path: Path, args: list[str], named: str) -> None:
    out = tmp_path / "out.mat"
    res = runner.invoke(app, ["run", *GHOST, *args, "-o", str(out)], env=NO_DEBUG)
    assert res.exit_code == 2, res.output
    assert named in res.stderr and "does-not-exist" not in res.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("args", "named"), [
    (["--transformation", "pca"], "transformation"), (["--transformation", "bogus"], "transformation"),
    (["--paths", "SCFX"], "SCFX"), (["--loss", "nonsense"], "nonsense"),
])
def test_train_refuses_bad_options_before_reading(tmp_path: Path, args: list[str], named: str) -> None:
    res = runner.invoke(app, ["train", "-i", "FCcorr_fs86_hpf=does-not-exist.mat", *args,
                              "-o", str(tmp_path / "k")], env=NO_DEBUG)
    assert res.exit_code == 2, res.output
    assert named in res.stderr and "does-not-exist" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_adapt_refuses_a_bad_mode_before_reading(tmp_path: Path) -> None:
    res = runner.invoke(app, ["adapt", *GHOST, "--mode", "warp", "-o", str(tmp_path / "a.json")], env=NO_DEBUG)
    assert res.exit_code == 2, res.output
    assert "warp" in res.stderr and "does-not-exist" not in res.stderr
    assert list(tmp_path.iterdir()) == []


def test_adapt_output_never_overwrites_an_input(tmp_path: Path) -> None:
    from ..helpers import make_tiny_model

    tiny = make_tiny_model(tmp_path / "m")
    inputs = tiny.write_inputs(tmp_path / "in", 8)
    target = next(iter(inputs.values()))
    before = target.read_bytes()
    res = runner.invoke(app, ["adapt", *tiny.model_args(), *tiny.input_args(inputs), "-o", str(target)],
                        env=NO_DEBUG)
    assert res.exit_code == 1, res.output
    assert "would overwrite the input" in res.stderr and target.read_bytes() == before
    ck = Path(tiny.model_args()[1])
    res = runner.invoke(app, ["adapt", *tiny.model_args(), *tiny.input_args(inputs), "-o", str(ck)], env=NO_DEBUG)
    assert res.exit_code == 1 and "would overwrite the input" in res.stderr
