"""Bad input: kraken stays correct, safe and bounded (README.md in this folder holds the table).

One test per row of the table. Every failing case must give exit code 1 (2 for usage errors), a short
``Error:`` message on stderr that names the culprit plus a ``Hint:``, no traceback unless
``KRAKEN_DEBUG=1``, nothing on stdout, and no file left behind (no output, no temporary ``.part``).
"""

from __future__ import annotations

import errno
import io
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from ..helpers import FC, SC, TinyModel, files_in, make_tiny_model, random_connectomes, tri, write_mat

README = Path(__file__).with_name("README.md")
IDS = [f"sub{i:03d}" for i in range(4)]
runner = CliRunner()


# -- fixtures and checks ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> Kit:
    root = tmp_path_factory.mktemp("bad_input_model")
    tiny = make_tiny_model(root / "model")
    return Kit(tiny, tiny.write_inputs(root / "good", 4, subjects=IDS))


class Kit:
    """The tiny model, good inputs beside it (outside each test's folder), and CLI helpers."""

    def __init__(self, tiny: TinyModel, good: dict[str, Path]) -> None:
        self.tiny, self.good = tiny, good

    def invoke(self, args: Sequence[str], *, debug: bool = False) -> Any:
        return runner.invoke(app, list(args), env={"KRAKEN_DEBUG": "1" if debug else None})

    def run(self, *args: str, debug: bool = False) -> Any:
        return self.invoke(["run", *self.tiny.model_args(), *args], debug=debug)

    def good_args(self, *flavors: str) -> list[str]:
        out: list[str] = []
        for f in flavors or (FC, SC):
            out += ["-i", f"{f}={self.good[f]}"]
        return out


def _flat(text: str) -> str:
    return "".join(text.split())


def refused(res: Any, code: int, names: Sequence[str], folder: Path, before: set[str], *,
            usage: bool = False) -> None:
    """The contract of every row: exit code, short message naming the culprit, no traceback, nothing left."""
    assert res.exit_code == code, f"exit {res.exit_code}\n{res.output}"
    err = res.stderr
    if usage:  # reported by Typer itself
        assert "Usage:" in err or "Error:" in err, err
    else:
        assert "Error:" in err and "Hint:" in err, err
        message = err.split("Hint:")[0]
        assert len(message) < 1200, "the message should be one short paragraph"
    for n in names:
        assert _flat(n) in _flat(err), f"{n!r} not named in:\n{err}"
    assert "Traceback" not in res.output
    assert res.stdout == ""
    assert files_in(folder) == before, f"left behind: {files_in(folder) - before}"


def snapshot(folder: Path) -> set[str]:
    return files_in(folder)


def out_args(folder: Path, template: str = "{input}.mat") -> list[str]:
    return ["-o", str(folder / "out" / template)]


# -- run: files that cannot be read ----------------------------------------------------------------------

def test_missing_input_file(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'absent.mat'}", *out_args(tmp_path))
    refused(res, 1, ["absent.mat", "not found"], tmp_path, before)


def test_empty_input_file(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "empty.mat").write_bytes(b"")
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'empty.mat'}", *out_args(tmp_path))
    refused(res, 1, ["empty.mat", "empty"], tmp_path, before)


def test_truncated_mat_v5(kit: Kit, tmp_path: Path) -> None:
    raw = kit.good[FC].read_bytes()
    (tmp_path / "trunc.mat").write_bytes(raw[: len(raw) // 2])
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'trunc.mat'}", *out_args(tmp_path))
    refused(res, 1, ["trunc.mat"], tmp_path, before)


def test_corrupt_mat(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "noise.mat").write_bytes(np.random.default_rng(0).bytes(3000))
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'noise.mat'}", *out_args(tmp_path))
    refused(res, 1, ["noise.mat"], tmp_path, before)


def _mat73(path: Path, data: np.ndarray, subjects: list[str]) -> Path:
    from kraken_cli.engine.io import Mat73Writer

    with Mat73Writer(path) as w:
        w.write("data", np.ascontiguousarray(data))
        w.write("subjects", subjects)
    return path


def test_truncated_mat73(kit: Kit, tmp_path: Path) -> None:
    good = _mat73(tmp_path / "v73.mat", random_connectomes(4, 86), IDS)
    raw = good.read_bytes()
    good.unlink()
    (tmp_path / "trunc73.mat").write_bytes(raw[: len(raw) // 2])
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'trunc73.mat'}", *out_args(tmp_path))
    refused(res, 1, ["trunc73.mat"], tmp_path, before)


def test_truncated_h5(kit: Kit, tmp_path: Path) -> None:
    import h5py

    with h5py.File(tmp_path / "ok.h5", "w") as h:
        h["data"] = random_connectomes(4, 86)
    raw = (tmp_path / "ok.h5").read_bytes()
    (tmp_path / "ok.h5").unlink()
    (tmp_path / "trunc.h5").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "noise.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + np.random.default_rng(1).bytes(2000))
    for name in ("trunc.h5", "noise.h5"):
        before = snapshot(tmp_path)
        res = kit.run("-i", f"{FC}={tmp_path / name}", *out_args(tmp_path))
        refused(res, 1, [name], tmp_path, before)


def test_truncated_npy(kit: Kit, tmp_path: Path) -> None:
    np.save(tmp_path / "ok.npy", random_connectomes(4, 86))
    raw = (tmp_path / "ok.npy").read_bytes()
    (tmp_path / "ok.npy").unlink()
    (tmp_path / "trunc.npy").write_bytes(raw[: len(raw) // 2])
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'trunc.npy'}", *out_args(tmp_path))
    refused(res, 1, ["trunc.npy"], tmp_path, before)


def test_npy_declaring_an_absurd_shape(kit: Kit, tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 86, 86)})
    (tmp_path / "absurd.npy").write_bytes(buf.getvalue() + b"\0" * 64)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'absurd.npy'}", *out_args(tmp_path))
    refused(res, 1, ["absurd.npy", "(1000000, 86, 86)"], tmp_path, before)


def test_truncated_checkpoint(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "trunc.pt").write_bytes(kit.tiny.checkpoint.read_bytes()[:700])
    before = snapshot(tmp_path)
    res = kit.invoke(["run", "-c", str(tmp_path / "trunc.pt"), "-t", str(kit.tiny.transforms_file),
                      *kit.good_args(), *out_args(tmp_path), "--device", "cpu"])
    refused(res, 1, ["trunc.pt", "not a readable checkpoint"], tmp_path, before)


def test_missing_checkpoint(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["run", "-c", str(tmp_path / "none.pt"), "-t", str(kit.tiny.transforms_file),
                      *kit.good_args(), *out_args(tmp_path), "--device", "cpu"])
    refused(res, 1, ["none.pt"], tmp_path, before)


def test_truncated_transform_file(kit: Kit, tmp_path: Path) -> None:
    raw = kit.tiny.transforms_file.read_bytes()
    (tmp_path / "x_ioxfm.npy").write_bytes(raw[: len(raw) // 3])
    before = snapshot(tmp_path)
    res = kit.invoke(["run", "-c", str(kit.tiny.checkpoint), "-t", str(tmp_path / "x_ioxfm.npy"),
                      *kit.good_args(), *out_args(tmp_path), "--device", "cpu"])
    refused(res, 1, ["x_ioxfm.npy"], tmp_path, before)


def test_no_transform_for_checkpoint(kit: Kit, tmp_path: Path) -> None:
    ck = tmp_path / "lonely.pt"
    shutil.copy(kit.tiny.checkpoint, ck)
    before = snapshot(tmp_path)
    res = kit.invoke(["run", "-c", str(ck), *kit.good_args(), *out_args(tmp_path), "--device", "cpu"])
    refused(res, 1, ["lonely.pt", "no transform file"], tmp_path, before)


# -- run: data that is not a valid cohort ---------------------------------------------------------------------

def test_wrong_field_name(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "field.mat", connectivity=random_connectomes(4, 86), subjects=IDS)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'field.mat'}", *out_args(tmp_path))
    refused(res, 1, ["field.mat", "connectivity", "data"], tmp_path, before)


def test_matlab_rrs_layout_is_read_correctly(kit: Kit, tmp_path: Path) -> None:
    """Not an error: MATLAB's [R x R x S] gives the same predictions as [S x R x R]."""
    import scipy.io

    mats = random_connectomes(4, 86, seed=9)
    write_mat(tmp_path / "srr.mat", data=mats, subjects=IDS)
    write_mat(tmp_path / "rrs.mat", data=np.moveaxis(mats, 0, 2), subjects=IDS)
    for name in ("srr", "rrs"):
        res = kit.run("-i", f"{FC}={tmp_path / (name + '.mat')}", "--outputs", SC, "-q",
                      "-o", str(tmp_path / f"pred_{name}.mat"))
        assert res.exit_code == 0, res.output
    a = scipy.io.loadmat(tmp_path / "pred_srr.mat", simplify_cells=True)["predicted_alltypes"][FC][SC]
    b = scipy.io.loadmat(tmp_path / "pred_rrs.mat", simplify_cells=True)["predicted_alltypes"][FC][SC]
    np.testing.assert_array_equal(a, b)


def test_cube_not_symmetric_either_way(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "cube.mat", data=np.random.default_rng(1).normal(size=(86, 86, 86)))
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'cube.mat'}", *out_args(tmp_path))
    refused(res, 1, ["cube.mat", "(86, 86, 86)", "first", "last axis"], tmp_path, before)


def test_cube_ambiguous(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A large [R x R x R] array symmetric both ways is not guessed (threshold lowered in-process)."""
    import kraken_cli.engine.io._layout as layout

    monkeypatch.setattr(layout, "EAGER_CHECK_BYTES", 0)
    v = np.random.default_rng(2).normal(size=86)
    cube = v[:, None, None] + v[None, :, None] + v[None, None, :]  # symmetric under every axis swap
    write_mat(tmp_path / "cube.mat", data=cube)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'cube.mat'}", *out_args(tmp_path))
    refused(res, 1, ["cube.mat", "ambiguous"], tmp_path, before)


def test_square_2d_ambiguous(kit: Kit, tmp_path: Path) -> None:
    """A symmetric 6 x 6 array with 6 ids: one matrix, or 6 subjects x 6 edges (R = 4)?"""
    m = random_connectomes(1, 6)[0]
    write_mat(tmp_path / "six.mat", data=m, subjects=[f"s{i}" for i in range(6)])
    before = snapshot(tmp_path)
    res = kit.run("-i", f"myparc@SC={tmp_path / 'six.mat'}", *out_args(tmp_path))
    refused(res, 1, ["six.mat", "6 x 6"], tmp_path, before)


def test_non_square_matrices(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "nonsq.mat", data=np.zeros((4, 86, 80)), subjects=IDS)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'nonsq.mat'}", *out_args(tmp_path))
    refused(res, 1, ["nonsq.mat", "(4, 86, 80)"], tmp_path, before)


def test_asymmetric_matrices(kit: Kit, tmp_path: Path) -> None:
    m = random_connectomes(4, 86)
    m[1, 3, 5] += 5.0
    write_mat(tmp_path / "asym.mat", data=m, subjects=IDS)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'asym.mat'}", *out_args(tmp_path))
    refused(res, 1, ["asym.mat", "not symmetric"], tmp_path, before)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_inf(kit: Kit, tmp_path: Path, bad: float) -> None:
    m = tri(random_connectomes(4, 86))
    m[2, 17] = bad
    write_mat(tmp_path / "nan.mat", data=m, subjects=IDS)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'nan.mat'}", *out_args(tmp_path))
    refused(res, 1, ["nan.mat", "NaN or Inf"], tmp_path, before)


def test_wrong_edge_count(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "edges.mat", data=np.zeros((4, 3654)), subjects=IDS)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'edges.mat'}", *out_args(tmp_path))
    refused(res, 1, ["edges.mat", "3655", "3654", "fs86"], tmp_path, before)


def test_wrong_region_count_for_atlas(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "r90.mat", data=random_connectomes(4, 90), subjects=IDS)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'r90.mat'}", *out_args(tmp_path))
    refused(res, 1, ["r90.mat", "86 regions", "90 regions"], tmp_path, before)


def test_flavor_not_in_checkpoint(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run("-i", f"FCpcorr_fs86_hpf={kit.good[FC]}", *out_args(tmp_path))
    refused(res, 1, ["FCpcorr_fs86_hpf", "not in the checkpoint"], tmp_path, before)


def test_atlas_mismatch_with_checkpoint(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "shen.mat", data=random_connectomes(2, 268), subjects=IDS[:2])
    before = snapshot(tmp_path)
    res = kit.run("-i", f"FCcorr_shen268_hpf={tmp_path / 'shen.mat'}", *out_args(tmp_path))
    refused(res, 1, ["FCcorr_shen268_hpf", "not in the checkpoint"], tmp_path, before)


def test_subjects_differ_across_flavors(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "other.mat", data=random_connectomes(4, 86), subjects=["a", "b", "c", "d"])
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={kit.good[FC]}", "-i", f"{SC}={tmp_path / 'other.mat'}", *out_args(tmp_path))
    refused(res, 1, ["other.mat", "subjects differ", "sub000", "'a'"], tmp_path, before)


def test_duplicate_subject_ids(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "dup.mat", data=random_connectomes(4, 86), subjects=["a", "b", "a", "d"])
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={tmp_path / 'dup.mat'}", *out_args(tmp_path))
    refused(res, 1, ["dup.mat", "duplicate", "'a'"], tmp_path, before)


def test_requested_subjects_not_in_inputs(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--subjects", "sub000,sub999", *out_args(tmp_path))
    refused(res, 1, ["sub999"], tmp_path, before)


def test_latent_input_of_wrong_width(kit: Kit, tmp_path: Path) -> None:
    """Detected while predicting, after the writers are open: they must be cleaned up."""
    write_mat(tmp_path / "z.mat", encoded=np.ones((4, kit.tiny.latent + 1)), subjects=IDS)
    before = snapshot(tmp_path)
    res = kit.run("-i", f"encoded={tmp_path / 'z.mat'}", "--chunk-size", "2", *out_args(tmp_path))
    refused(res, 1, ["encoded", str(kit.tiny.latent + 1)], tmp_path, before)


# -- run: specs and options -------------------------------------------------------------------------------------

def test_unknown_flavor_without_group(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run("-i", f"myflavor={kit.good[FC]}", *out_args(tmp_path))
    refused(res, 1, ["myflavor", "@SC"], tmp_path, before)


@pytest.mark.parametrize("spec", [f"{FC}=", f"{FC}@XY=fc.mat", "   "])
def test_malformed_input_spec(kit: Kit, tmp_path: Path, spec: str) -> None:
    before = snapshot(tmp_path)
    res = kit.run("-i", spec, *out_args(tmp_path))
    refused(res, 2, ["malformed input spec" if spec.strip() else "empty input spec"], tmp_path, before)


def test_path_containing_equals_is_fine(kit: Kit, tmp_path: Path) -> None:
    folder = tmp_path / "run=1" / "a=b"
    folder.mkdir(parents=True)
    shutil.copy(kit.good[FC], folder / "fc=x.mat")
    res = kit.run("-i", f"{FC}={folder / 'fc=x.mat'}", "-q", "-o", str(tmp_path / "p.mat"))
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [str(tmp_path / "p.mat")]


def test_bad_adapt_mode(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--adapt", "warp", *out_args(tmp_path))
    refused(res, 2, ["warp", "meanshift"], tmp_path, before)


def test_adapter_together_with_adapt(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text("{}")
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--adapt", "meanshift", "--adapter", str(tmp_path / "a.json"), *out_args(tmp_path))
    refused(res, 2, ["--adapter", "--adapt"], tmp_path, before)


def test_metrics_csv_without_evaluate(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--metrics-csv", str(tmp_path / "m.csv"), *out_args(tmp_path))
    refused(res, 2, ["--evaluate"], tmp_path, before, usage=True)


def test_unknown_option(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--frobnicate", *out_args(tmp_path))
    refused(res, 2, ["--frobnicate"], tmp_path, before, usage=True)


def test_fusion_exclusion_leaves_nothing(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(FC), "--fusion", "--fusion-noself", *out_args(tmp_path))
    refused(res, 1, ["fusion.noself", "no flavor left", "--fusion-noself"], tmp_path, before)


def test_empty_fusion_group(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(SC), "--fusion-include", "fusionFC=FC", *out_args(tmp_path))
    refused(res, 1, ["fusionFC", "selects no input"], tmp_path, before)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_cuda_without_cuda(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["run", "-c", str(kit.tiny.checkpoint), "-t", str(kit.tiny.transforms_file), *kit.good_args(),
                      *out_args(tmp_path), "--device", "cuda"])
    refused(res, 1, ["CUDA", "--device cpu"], tmp_path, before)


def test_debug_shows_traceback(kit: Kit, tmp_path: Path) -> None:
    res = kit.run("-i", f"{FC}={tmp_path / 'absent.mat'}", *out_args(tmp_path), debug=True)
    assert res.exit_code == 1
    assert "Traceback" in res.stderr and "InputDataError" in res.stderr and "absent.mat" in _flat(res.stderr)


# -- run: where the outputs go ------------------------------------------------------------------------------------

def test_output_would_overwrite_input(kit: Kit, tmp_path: Path) -> None:
    inp = tmp_path / f"{FC}.mat"
    shutil.copy(kit.good[FC], inp)
    content = inp.read_bytes()
    before = snapshot(tmp_path)
    res = kit.run("-i", f"{FC}={inp}", "-o", str(tmp_path / "{input}.mat"))
    refused(res, 1, [f"{FC}.mat", "would overwrite an input"], tmp_path, before)
    assert inp.read_bytes() == content


def test_output_folder_under_a_file(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "-o", str(tmp_path / "afile" / "p.mat"))
    refused(res, 1, ["afile"], tmp_path, before)


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root ignores folder permissions")
def test_output_folder_read_only(kit: Kit, tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        before = snapshot(tmp_path)
        res = kit.run(*kit.good_args(), "-o", str(ro / "p.mat"))
        refused(res, 1, ["ro", "not writable"], tmp_path, before)
    finally:
        ro.chmod(0o700)


def _enospc() -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class _FullDisk:
    """A file object that accepts ``room`` bytes and then fails like a full disk."""

    def __init__(self, fh: Any, room: int = 100) -> None:
        self._fh, self._room = fh, room

    def write(self, data: Any) -> int:
        n = len(memoryview(data).cast("B"))
        if n > self._room:
            self._fh.write(bytes(memoryview(data).cast("B")[: self._room]))
            self._room = 0
            raise _enospc()
        self._room -= n
        return int(self._fh.write(data))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._fh.close()


def _fill_disk_on_open(monkeypatch: pytest.MonkeyPatch, module: Any, *, after: int = 0) -> list[str]:
    """Make ``open(..., "wb")`` inside ``module`` return a full-disk file (after ``after`` good files)."""
    import builtins

    opened: list[str] = []

    def fake_open(file: Any, mode: str = "r", *a: Any, **kw: Any) -> Any:
        fh = builtins.open(file, mode, *a, **kw)
        if "w" not in mode:
            return fh
        opened.append(str(file))
        return fh if len(opened) <= after else _FullDisk(fh)

    monkeypatch.setattr(module, "open", fake_open, raising=False)
    return opened


def test_disk_full_mat(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kraken_cli.engine.io.writers as writers

    opened = _fill_disk_on_open(monkeypatch, writers)
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), *out_args(tmp_path))
    assert opened, "the v5 writer no longer opens its file with open(): update this simulation"
    refused(res, 1, ["could not write", "No space left on device"], tmp_path, before)


def test_disk_full_npz(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    def full(self: Any, *a: Any, **kw: Any) -> None:
        raise _enospc()

    monkeypatch.setattr(zipfile.ZipFile, "write", full)
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--format", "npz", *out_args(tmp_path, "{input}.npz"))
    refused(res, 1, ["No space left on device"], tmp_path, before)


def test_disk_full_mat73(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import h5py

    def full(self: Any, key: Any, value: Any) -> None:
        raise _enospc()

    monkeypatch.setattr(h5py.Dataset, "__setitem__", full)
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--format", "mat73", "--chunk-size", "2", *out_args(tmp_path))
    refused(res, 1, ["No space left on device"], tmp_path, before)


def test_disk_full_on_the_second_file(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first file was complete when the disk filled up: no partial set of outputs is left either."""
    import kraken_cli.engine.io.writers as writers

    opened = _fill_disk_on_open(monkeypatch, writers, after=1)
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), *out_args(tmp_path))
    assert len(opened) == 2
    refused(res, 1, ["No space left on device"], tmp_path, before)


def test_interrupted_run_leaves_nothing(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from kraken_cli.engine.inference import KrakenModel

    real = KrakenModel.predict_chunk
    calls: list[int] = []

    def interrupt(self: Any, *a: Any, **kw: Any) -> Any:
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    monkeypatch.setattr(KrakenModel, "predict_chunk", interrupt)
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--chunk-size", "1", "--format", "mat73", *out_args(tmp_path))
    assert res.exit_code == 130, res.output
    assert "Interrupted" in res.stderr and "Traceback" not in res.output
    assert files_in(tmp_path) == before


# -- run: adapters -------------------------------------------------------------------------------------------------

def test_adapter_for_another_transform(kit: Kit, tmp_path: Path) -> None:
    other = make_tiny_model(tmp_path / "other", seed=7, name="other")
    adapter = tmp_path / "site.json"
    res = kit.invoke(["adapt", "-c", str(other.checkpoint), "-t", str(other.transforms_file), *kit.good_args(),
                      "--mode", "meanshift", "-o", str(adapter), "-q"])
    assert res.exit_code == 0, res.output
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--adapter", str(adapter), *out_args(tmp_path))
    refused(res, 1, ["site.json", "another transform", "kraken adapt"], tmp_path, before)


def test_unreadable_adapter(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"format": "kraken-adapter", "flavors": {"x": ')
    before = snapshot(tmp_path)
    res = kit.run(*kit.good_args(), "--adapter", str(tmp_path / "bad.json"), *out_args(tmp_path))
    refused(res, 1, ["bad.json", "not a readable adapter file"], tmp_path, before)


# -- merge ---------------------------------------------------------------------------------------------------------

def test_merge_missing_checkpoint(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["merge", str(kit.tiny.checkpoint), str(tmp_path / "gone.pt"), "-o", str(tmp_path / "m.pt")])
    refused(res, 1, ["gone.pt", "does not exist"], tmp_path, before)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04broken", b"not a checkpoint at all"])
def test_merge_unreadable_checkpoint(kit: Kit, tmp_path: Path, content: bytes) -> None:
    (tmp_path / "bad.pt").write_bytes(content)
    before = snapshot(tmp_path)
    res = kit.invoke(["merge", str(kit.tiny.checkpoint), str(tmp_path / "bad.pt"), "-o", str(tmp_path / "m.pt")])
    refused(res, 1, ["bad.pt"], tmp_path, before)


@pytest.mark.parametrize(("kwargs", "names"), [
    (dict(latent=6), ["latentsize", "6", "4"]),
    (dict(latent_normalize=False), ["latent_normalize"]),
    (dict(dropout=0.5), ["dropout", "layer numbering"]),
])
def test_merge_incompatible_checkpoints(kit: Kit, tmp_path: Path, kwargs: dict, names: list[str]) -> None:
    other = make_tiny_model(tmp_path / "other", ("FCpcorr_fs86_hpf",), name="other", **kwargs)
    before = snapshot(tmp_path)
    res = kit.invoke(["merge", str(kit.tiny.checkpoint), str(other.checkpoint), "-o", str(tmp_path / "m.pt")])
    refused(res, 1, ["cannot merge", *names], tmp_path, before)


def test_merge_single_checkpoint(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["merge", str(kit.tiny.checkpoint), "-o", str(tmp_path / "m.pt")])
    refused(res, 1, ["at least two"], tmp_path, before)


def test_merge_output_is_an_input(kit: Kit, tmp_path: Path) -> None:
    a = tmp_path / "a.pt"
    shutil.copy(kit.tiny.checkpoint, a)
    other = make_tiny_model(tmp_path / "other", ("FCpcorr_fs86_hpf",), name="other")
    content = a.read_bytes()
    before = snapshot(tmp_path)
    res = kit.invoke(["merge", str(a), str(other.checkpoint), "-o", str(a)])
    refused(res, 1, ["a.pt", "one of the checkpoints"], tmp_path, before)
    assert a.read_bytes() == content


def test_merge_output_under_a_file(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    other = make_tiny_model(tmp_path / "other", ("FCpcorr_fs86_hpf",), name="other")
    before = snapshot(tmp_path)
    res = kit.invoke(["merge", str(kit.tiny.checkpoint), str(other.checkpoint), "-o", str(tmp_path / "afile" / "m.pt")])
    refused(res, 1, ["afile"], tmp_path, before)


def test_merge_disk_full(kit: Kit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = make_tiny_model(tmp_path / "other", ("FCpcorr_fs86_hpf",), name="other")

    def full(obj: Any, f: Any, *a: Any, **kw: Any) -> None:
        Path(f).write_bytes(b"PK\x03\x04partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")

    monkeypatch.setattr(torch, "save", full)
    before = snapshot(tmp_path)
    res = kit.invoke(["merge", str(kit.tiny.checkpoint), str(other.checkpoint), "-o", str(tmp_path / "m.pt")])
    refused(res, 1, ["m.pt", "could not write"], tmp_path, before)


# -- describe -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "names"), [
    (None, ["does not exist"]),
    (b"", ["empty"]),
    ("truncated", ["not a readable checkpoint"]),
    (b"MATLAB 5.0 MAT-file" + b"\0" * 200, ["not a readable checkpoint"]),
])
def test_describe_unreadable(kit: Kit, tmp_path: Path, content: Any, names: list[str]) -> None:
    f = tmp_path / "x.pt"
    if content == "truncated":
        f.write_bytes(kit.tiny.checkpoint.read_bytes()[:900])
    elif content is not None:
        f.write_bytes(content)
    before = snapshot(tmp_path)
    res = kit.invoke(["describe", str(f)])
    refused(res, 1, ["x.pt", *names], tmp_path, before)


def test_describe_not_a_krakencoder(kit: Kit, tmp_path: Path) -> None:
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    before = snapshot(tmp_path)
    res = kit.invoke(["describe", str(tmp_path / "other.pt")])
    refused(res, 1, ["other.pt", "state_dict"], tmp_path, before)


def test_describe_heatmap_without_record(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["describe", str(kit.tiny.checkpoint), "--heatmap", str(tmp_path / "h.png")])
    refused(res, 1, ["no training record"], tmp_path, before)


# -- adapt -----------------------------------------------------------------------------------------------------------

def test_adapt_missing_input(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["adapt", "-c", str(kit.tiny.checkpoint), "-t", str(kit.tiny.transforms_file),
                      "-i", f"{FC}={tmp_path / 'absent.mat'}", "-o", str(tmp_path / "a.json")])
    refused(res, 1, ["absent.mat"], tmp_path, before)


@pytest.mark.parametrize("mode", ["none", "warp"])
def test_adapt_bad_mode(kit: Kit, tmp_path: Path, mode: str) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["adapt", "-c", str(kit.tiny.checkpoint), "-t", str(kit.tiny.transforms_file),
                      *kit.good_args(), "--mode", mode, "-o", str(tmp_path / "a.json")])
    refused(res, 2, [mode], tmp_path, before)


def test_adapt_output_under_a_file(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    before = snapshot(tmp_path)
    res = kit.invoke(["adapt", "-c", str(kit.tiny.checkpoint), "-t", str(kit.tiny.transforms_file),
                      *kit.good_args(), "-o", str(tmp_path / "afile" / "a.json")])
    refused(res, 1, ["afile"], tmp_path, before)


# -- train ----------------------------------------------------------------------------------------------------------

def _train_out(folder: Path) -> list[str]:
    return ["-o", str(folder / "run" / "x")]


def test_train_missing_input(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["train", "-i", f"{FC}={tmp_path / 'absent.mat'}", *_train_out(tmp_path)])
    refused(res, 1, ["absent.mat"], tmp_path, before)


def test_train_malformed_input_spec(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["train", "-i", f"{FC}=", *_train_out(tmp_path)])
    refused(res, 2, ["malformed input spec"], tmp_path, before)


def test_train_subjects_differ(kit: Kit, tmp_path: Path) -> None:
    write_mat(tmp_path / "other.mat", data=random_connectomes(4, 86), subjects=["a", "b", "c", "d"])
    before = snapshot(tmp_path)
    res = kit.invoke(["train", "-i", f"{FC}={kit.good[FC]}", "-i", f"{SC}={tmp_path / 'other.mat'}",
                      *_train_out(tmp_path)])
    refused(res, 1, ["subjects differ"], tmp_path, before)


def test_train_no_inputs(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["train", *_train_out(tmp_path)])
    refused(res, 2, ["no inputs", "-i FLAVOR=PATH"], tmp_path, before)


def test_train_unknown_loss_term(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["train", *kit.good_args(), "--loss", "correye+bogus.w3", *_train_out(tmp_path)])
    refused(res, 2, ["bogus", "valid names", "correye", "latentsimloss"], tmp_path, before)


def test_train_resume_with_start_from(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    ck = str(kit.tiny.checkpoint)
    res = kit.invoke(["train", *kit.good_args(), "--resume", ck, "--start-from", ck, *_train_out(tmp_path)])
    refused(res, 2, ["--resume", "--start-from"], tmp_path, before, usage=True)


def test_train_resume_not_a_kraken_run(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["train", *kit.good_args(), "--resume", str(kit.tiny.checkpoint), *_train_out(tmp_path)])
    refused(res, 1, [kit.tiny.checkpoint.name, "cannot be resumed", "--start-from"], tmp_path, before)


def test_train_fewer_subjects_than_a_batch(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["train", *kit.good_args(), *_train_out(tmp_path)])  # 4 subjects: 2 train, batch 41
    refused(res, 1, ["fewer than one batch of 41", "--batch-size"], tmp_path, before)


def test_train_pca_larger_than_the_training_set(kit: Kit, tmp_path: Path) -> None:
    before = snapshot(tmp_path)
    res = kit.invoke(["train", *kit.good_args(), "--batch-size", "2", "--transformation", "pca64",
                      *_train_out(tmp_path)])
    refused(res, 1, ["pca64", "64 training subjects"], tmp_path, before)


def test_train_output_under_a_file(kit: Kit, tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    before = snapshot(tmp_path)
    res = kit.invoke(["train", *kit.good_args(), "-o", str(tmp_path / "afile" / "x")])
    refused(res, 1, ["afile"], tmp_path, before)


# -- the table and the tests agree ---------------------------------------------------------------------------------

def test_readme_table_matches_tests() -> None:
    rows = re.findall(r"^\| `([a-z0-9_]+)` \|", README.read_text(), flags=re.M)
    assert rows, "no rows found in README.md"
    assert len(rows) == len(set(rows))
    tests = {n[len("test_"):] for n in globals() if n.startswith("test_") and n != "test_readme_table_matches_tests"}
    assert set(rows) == tests, (set(rows) - tests, tests - set(rows))
