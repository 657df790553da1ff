"""Hostile files and faults, round 2: no data lost, no crash on a full disk, no silent wrong result.

Each test builds its crafted file or fault itself (no network, nothing from ``../shared``) and checks the
contract of ``test_bad_input.py``: the exit code, a short ``Error:``/``Hint:`` naming the culprit, no
traceback, nothing new left behind, and files that existed before the command unchanged.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from ..helpers import FC, SC, TinyModel, files_in, make_tiny_model, write_mat
from .test_bad_input import refused

IDS = [f"sub{i:03d}" for i in range(4)]
runner = CliRunner()


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("round2_model") / "model")


@pytest.fixture(scope="module")
def good(tiny: TinyModel, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return tiny.write_inputs(tmp_path_factory.mktemp("round2_good"), 4, subjects=IDS)


def run(tiny: TinyModel, *args: str) -> Any:
    return runner.invoke(app, ["run", *tiny.model_args(), *args])


def inputs(good: dict[str, Path]) -> list[str]:
    return ["-i", f"{FC}={good[FC]}", "-i", f"{SC}={good[SC]}"]


def digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


# -- outputs are committed together -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["mat", "mat73", "npz"])
def test_interrupt_during_the_third_output_keeps_the_previous_runs_files(
        tiny: TinyModel, good: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """Three outputs ({output} template); Ctrl-C while the third is closed: the earlier run's three stay."""
    out = tmp_path / "out"
    template = str(out / f"{{output}}.{'npz' if fmt == 'npz' else 'mat'}")
    first = run(tiny, "-i", f"{FC}={good[FC]}", "--outputs", "all", "--outputs", "encoded", "-o", template,
                "--format", fmt)
    assert first.exit_code == 0, first.output
    before = digests(out)
    assert len(before) == 3  # FC, SC and the latent

    from kraken_cli.engine.io import writers

    cls = {"mat": writers.Mat5Writer, "mat73": writers.Mat73Writer, "npz": writers.NpzWriter}[fmt]
    real_close = cls.close
    closed: list[int] = []

    def close_then_interrupt(self: Any) -> Path:
        closed.append(1)
        if len(closed) == 3:
            raise KeyboardInterrupt
        return real_close(self)

    monkeypatch.setattr(cls, "close", close_then_interrupt)
    # other inputs this time, so a mixed set of files could not pass for the old one
    second_in = tiny.write_inputs(tmp_path / "other", 4, subjects=IDS, seed=7)
    res = run(tiny, "-i", f"{FC}={second_in[FC]}", "--outputs", "all", "--outputs", "encoded", "-o", template,
              "--format", fmt)
    assert res.exit_code == 130, res.output
    assert "Interrupted" in res.stderr
    assert digests(out) == before, "an earlier run's output changed"
    assert sorted(p.name for p in out.iterdir()) == sorted(before), "a temporary file was left"


def test_an_error_after_the_predictions_keeps_earlier_outputs(
        tiny: TinyModel, good: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The heatmap (written last) fails: the prediction files of this run are not committed either."""
    out = tmp_path / "out"
    args = [*inputs(good), "-o", str(out / "{input}.mat"), "--evaluate", "--metrics-csv", str(out / "m.csv")]
    assert run(tiny, *args).exit_code == 0
    before = digests(out)

    import kraken_cli.engine.pipelines.evaluation as evaluation

    def broken(*a: Any, **k: Any) -> Path:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(evaluation, "write_metrics_csv", broken)
    res = run(tiny, *args)
    assert res.exit_code != 0
    assert digests(out) == before


# -- every file argument against every input ----------------------------------------------------------------------

@pytest.mark.parametrize("option", ["--metrics-csv", "--heatmap"])
def test_evaluation_outputs_may_not_overwrite_an_input(
        tiny: TinyModel, tmp_path: Path, option: str) -> None:
    files = tiny.write_inputs(tmp_path / "d", 4, subjects=IDS)
    before_bytes = files[FC].read_bytes()
    before = files_in(tmp_path)
    res = run(tiny, *inputs(files), "--evaluate", option, str(files[FC]))
    refused(res, 1, [option, str(files[FC].name), "would overwrite"], tmp_path, before)
    assert files[FC].read_bytes() == before_bytes


def test_metrics_csv_may_not_be_the_checkpoint(tiny: TinyModel, good: dict[str, Path], tmp_path: Path) -> None:
    ck_bytes = tiny.checkpoint.read_bytes()
    res = run(tiny, *inputs(good), "--evaluate", "--metrics-csv", str(tiny.checkpoint))
    assert res.exit_code == 1
    assert "would overwrite" in res.stderr
    assert tiny.checkpoint.read_bytes() == ck_bytes


def test_heatmap_and_metrics_csv_may_not_be_one_file(tiny: TinyModel, good: dict[str, Path], tmp_path: Path) -> None:
    before = files_in(tmp_path)
    same = str(tmp_path / "x.csv")
    res = run(tiny, *inputs(good), "--evaluate", "--metrics-csv", same, "--heatmap", same)
    refused(res, 1, ["--heatmap", "--metrics-csv"], tmp_path, before)


# -- a full disk ------------------------------------------------------------------------------------------------

def _statvfs_with_free(monkeypatch: pytest.MonkeyPatch, free_bytes: int) -> None:
    real = os.statvfs

    class Fake:
        def __init__(self, st: Any) -> None:
            self.f_frsize, self.f_bavail = 4096, free_bytes // 4096

    monkeypatch.setattr(os, "statvfs", lambda p: Fake(real(p)))


@pytest.mark.parametrize("fmt", ["mat", "mat73", "npz"])
def test_too_little_free_space_is_refused_before_compute(
        tiny: TinyModel, good: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    _statvfs_with_free(monkeypatch, 8192)
    before = files_in(tmp_path)
    res = run(tiny, *inputs(good), "--format", fmt, "-o", str(tmp_path / "p.out"))
    refused(res, 1, ["p.out", "No space left on device", "MiB are free"], tmp_path, before)


@pytest.mark.parametrize("fmt", ["mat73", "npz"])
def test_disk_filling_during_the_run_is_an_error_not_a_crash(
        tiny: TinyModel, good: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    """HDF5 and memory maps cannot survive ENOSPC mid-write: their space is reserved first, so it fails there."""
    if not hasattr(os, "posix_fallocate"):
        pytest.skip("no posix_fallocate on this platform")

    def full(fd: int, offset: int, length: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "posix_fallocate", full)
    before = files_in(tmp_path)
    res = run(tiny, *inputs(good), "--format", fmt, "-o", str(tmp_path / "p.out"))
    refused(res, 1, ["p.out", "No space left on device"], tmp_path, before)


def test_reserved_mat73_file_is_trimmed_and_readable(tmp_path: Path) -> None:
    """The reservation does not stay in the file: HDF5 trims it on close, and the data read back."""
    import h5py

    from kraken_cli.engine.io._mat73_write import Mat73Writer

    path = tmp_path / "r.mat"
    with Mat73Writer(path, reserve_bytes=8 << 20) as w:
        w.create_rows("x", 10, 3655, np.float32)
        w.write_rows("x", 0, np.arange(36550, dtype=np.float32).reshape(10, 3655))
    assert path.stat().st_size < 1 << 20
    with h5py.File(path, "r") as h:
        assert np.array_equal(h["x"][()].T, np.arange(36550, dtype=np.float32).reshape(10, 3655))


def test_many_v5_files_held_in_memory_are_refused_with_the_mat73_hint(
        tiny: TinyModel, good: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kraken_cli.engine.io import writers

    monkeypatch.setattr(writers, "MAT5_LIMIT_BYTES", 4 * 3655 * 4 * 3)  # each file fits, all together do not
    before = files_in(tmp_path)
    res = run(tiny, *inputs(good), "-o", str(tmp_path / "{input}.mat"))
    refused(res, 1, ["MATLAB v5", "in memory"], tmp_path, before)
    assert "mat73" in res.stderr


# -- silent wrong results -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name,near", [("FCcorrzz_fs86_hpf", "FCcorr_fs86_hpf"),
                                       ("FCcorr_fs86_hpf_gsr_typo", "FCcorr_fs86_hpfgsr")])
def test_flavor_typo_is_an_error_with_did_you_mean(
        tiny: TinyModel, good: dict[str, Path], tmp_path: Path, name: str, near: str) -> None:
    before = files_in(tmp_path)
    res = run(tiny, "-i", f"{name}={good[FC]}", "-o", str(tmp_path / "p.mat"))
    refused(res, 1, [name, "did you mean", near], tmp_path, before)


def test_complex_input_is_refused(tiny: TinyModel, good: dict[str, Path], tmp_path: Path) -> None:
    from scipy.io import loadmat

    data = loadmat(good[FC])["data"]
    np.save(tmp_path / "cplx.npy", data + 1j * data)
    before = files_in(tmp_path)
    res = run(tiny, "-i", f"{FC}={tmp_path / 'cplx.npy'}", "-o", str(tmp_path / "p.mat"))
    refused(res, 1, ["cplx.npy", "complex"], tmp_path, before)


def _adapter(tiny: TinyModel, good: dict[str, Path], folder: Path) -> dict[str, Any]:
    res = runner.invoke(app, ["adapt", *tiny.model_args(), *inputs(good), "-o", str(folder / "site.json")])
    assert res.exit_code == 0, res.output
    payload = json.loads((folder / "site.json").read_text())
    (folder / "site.json").unlink()
    return payload


@pytest.mark.parametrize("case", ["nan", "inf_slope", "short", "nested", "not_an_object"])
def test_broken_adapter_files_are_refused(tiny: TinyModel, good: dict[str, Path], tmp_path: Path, case: str) -> None:
    payload = _adapter(tiny, good, tmp_path)
    entry = payload["flavors"][FC]
    bad = tmp_path / f"{case}.json"
    if case == "nan":
        entry["input_mean"] = [float("nan")] * len(entry["input_mean"])
        bad.write_text(json.dumps(payload))
    elif case == "inf_slope":
        entry["slope"] = float("inf")
        bad.write_text(json.dumps(payload))
    elif case == "short":  # both means shortened consistently: the transform's size is what refuses it
        entry["input_mean"] = entry["input_mean"][:-5]
        entry["target_mean"] = entry["target_mean"][:-5]
        bad.write_text(json.dumps(payload))
    elif case == "nested":
        bad.write_text('{"format": "kraken-adapter", "version": 1, "flavors": ' + "[" * 100_000 + "]" * 100_000 + "}")
    else:
        bad.write_text('{"format": "kraken-adapter", "version": 1, "flavors": {"x": 3}}')
    before = files_in(tmp_path)
    res = run(tiny, *inputs(good), "--adapter", str(bad), "-o", str(tmp_path / "p.mat"))
    refused(res, 1, [bad.name], tmp_path, before)


def test_transform_with_nan_is_refused(tiny: TinyModel, good: dict[str, Path], tmp_path: Path) -> None:
    from kraken_cli.engine.transforms.files import read_transform_params

    params = read_transform_params(tiny.transforms_file)
    flavor = params[FC]
    key = next(k for k, v in flavor.items() if isinstance(v, np.ndarray) and v.dtype.kind == "f" and v.size > 1)
    flavor[key] = flavor[key].copy()
    flavor[key].flat[3] = np.nan
    bad = tmp_path / "nan_ioxfm.npy"
    with open(bad, "wb") as fh:  # the original's layout: one pickled dict (written here by the test itself)
        np.lib.format.write_array(fh, np.asarray(params, dtype=object), allow_pickle=True)
    before = files_in(tmp_path)
    res = runner.invoke(app, ["run", "-c", str(tiny.checkpoint), "-t", str(bad), "--device", "cpu",
                              *inputs(good), "-o", str(tmp_path / "p.mat")])
    refused(res, 1, [bad.name, "NaN or Inf"], tmp_path, before)


def test_train_outputs_may_not_overwrite_what_it_reads(tmp_path: Path) -> None:
    """A --split-file (or -i input) named like a file the run writes is refused before anything is written."""
    from kraken_cli.engine.errors import OutputError
    from kraken_cli.engine.training._outputs import RunNames
    from kraken_cli.engine.training._setup import _refuse_overwriting_inputs
    from kraken_cli.engine.training.config import TrainConfig

    names = RunNames(str(tmp_path / "x"), "sfx")
    split = names.path("subjsplit", "mat")
    cfg = TrainConfig(output=str(tmp_path / "x"), split_file=str(split))
    with pytest.raises(OutputError, match="would overwrite the input"):
        _refuse_overwriting_inputs(names, cfg, [f"{FC}={tmp_path / 'fc.mat'}"])
    with pytest.raises(OutputError, match="would overwrite the input"):
        _refuse_overwriting_inputs(names, TrainConfig(output=str(tmp_path / "x")),
                                   [f"{FC}={names.path('trainrecord', 'mat')}"])
    _refuse_overwriting_inputs(names, TrainConfig(output=str(tmp_path / "x")), [f"{FC}={tmp_path / 'fc.mat'}"])


def test_sigterm_is_handled_like_ctrl_c() -> None:
    """The console script turns SIGTERM into the same unwinding as Ctrl-C (the tests above use Ctrl-C)."""
    from kraken_cli.cli.app import _terminate

    with pytest.raises(KeyboardInterrupt):
        _terminate(signal.SIGTERM, None)


def test_a_huge_subject_id_gives_a_short_message(tiny: TinyModel, good: dict[str, Path], tmp_path: Path) -> None:
    """Messages are cut: a crafted id of 300,000 characters (twice, so it is a duplicate) is not echoed whole."""
    from scipy.io import loadmat

    data = loadmat(good[FC])["data"]
    long_id = "x" * 300_000
    write_mat(tmp_path / "ids.mat", data=data, subjects=[long_id, long_id, "c", "d"])
    before = files_in(tmp_path)
    res = run(tiny, "-i", f"{FC}={tmp_path / 'ids.mat'}", "-o", str(tmp_path / "p.mat"))
    refused(res, 1, ["ids.mat", "more characters"], tmp_path, before)
    assert len(res.stderr) < 10_000


def test_square_mat73_reserves_the_matrices_it_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With --square the file holds R x R per subject, about twice the edge vector: the reservation covers it."""
    from kraken_cli.engine.io import _mat73_write, writers

    asked: list[int] = []
    real = _mat73_write.reserve_space
    monkeypatch.setattr(_mat73_write, "reserve_space",
                        lambda path, n, *, target: asked.append(n) or real(path, n, target=target))
    meta = writers.FileMeta(subjects=["a", "b"], checkpoint="c", recordfile="", inputfiles=[])
    spec = writers.OutputFile(tmp_path / "sq.mat", ["FC"], ["SC"])
    w = writers.open_writer("mat73", spec, meta, 2, {"SC": 3655}, square=True)
    w.abort()
    edges_only = writers.estimate_file_bytes("mat73", 2, {"SC": 3655}, spec, meta)
    assert asked == [writers.estimate_file_bytes("mat73", 2, {"SC": 3655}, spec, meta, square=True)]
    assert asked[0] - edges_only >= 2 * (86 * 86 - 3655) * 4
