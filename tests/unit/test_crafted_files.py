"""DESIGN 6: a crafted model or transform file never runs code; corrupt files are refused cleanly.

Each payload would create a marker file when unpickled by ``pickle.load`` / ``torch.load(weights_only=False)``
/ ``np.load(allow_pickle=True)``. kraken must refuse it with a clear error, and the marker must not exist.
"""

from __future__ import annotations

import builtins
import io
import os
import shlex
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kraken_cli.cli.app import app
from kraken_cli.engine.checkpoint import load_checkpoint, torch_load_safe
from kraken_cli.engine.errors import CheckpointError, TransformError
from kraken_cli.engine.transforms.files import load_transforms, read_transform_params

from ..helpers import FC, TinyModel, files_in, make_tiny_model


class SystemPayload:
    """``os.system("touch MARKER")`` on unpickling."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {shlex.quote(str(self.marker))}",))


class ExecPayload:
    """``builtins.exec`` writing MARKER on unpickling."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


PAYLOADS = {"os.system": SystemPayload, "exec": ExecPayload}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("crafted"))


def test_payloads_really_run_when_unpickled_unsafely(tmp_path: Path) -> None:
    """Sanity check of the payloads themselves, so the refusals below mean something."""
    import pickle

    for name, cls in PAYLOADS.items():
        marker = tmp_path / f"m_{name}"
        pickle.loads(pickle.dumps(cls(marker)))
        assert marker.exists()


def _evil_checkpoint(tiny: TinyModel, path: Path, payload: Any, *, legacy: bool = False) -> Path:
    d = torch_load_safe(tiny.checkpoint)
    d["training_params"] = {"note": payload}
    torch.save(d, path, _use_new_zipfile_serialization=not legacy)
    return path


def _evil_npy(path: Path, payload: Any) -> Path:
    buf = io.BytesIO()
    np.save(buf, np.array({FC: {"type": "cfeat", "input_mean": payload}}, dtype=object), allow_pickle=True)
    path.write_bytes(buf.getvalue())
    return path


def _evil_npz(path: Path, payload: Any) -> Path:
    np.savez_compressed(path, transform_params={FC: {"type": "cfeat", "input_mean": payload}})
    return path


# -- engine -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_crafted_checkpoint_is_refused(tmp_path: Path, tiny: TinyModel, payload: str, legacy: bool) -> None:
    marker = tmp_path / "MARKER"
    f = _evil_checkpoint(tiny, tmp_path / "evil.pt", PAYLOADS[payload](marker), legacy=legacy)
    with pytest.raises(CheckpointError) as ei:
        load_checkpoint(f)
    assert "would run when loaded" in ei.value.message and str(f) in ei.value.message
    assert ei.value.hint
    assert not marker.exists()


@pytest.mark.parametrize("writer", [_evil_npy, _evil_npz], ids=["npy", "npz"])
@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_crafted_transform_file_is_refused(tmp_path: Path, payload: str, writer: Any) -> None:
    marker = tmp_path / "MARKER"
    f = writer(tmp_path / f"evil_ioxfm.{writer.__name__[-3:]}", PAYLOADS[payload](marker))
    with pytest.raises(TransformError) as ei:
        load_transforms([f])
    assert "would run when loaded" in ei.value.message
    assert not marker.exists()


def test_truncated_zip_checkpoint(tmp_path: Path, tiny: TinyModel) -> None:
    raw = tiny.checkpoint.read_bytes()
    for cut in (len(raw) // 2, len(raw) - 30, 100):
        f = tmp_path / f"trunc{cut}.pt"
        f.write_bytes(raw[:cut])
        with pytest.raises(CheckpointError, match="not a readable checkpoint") as ei:
            load_checkpoint(f)
        assert "truncated or corrupt" in (ei.value.hint or "")


def test_corrupt_pickle_inside_a_valid_zip(tmp_path: Path, tiny: TinyModel) -> None:
    """A zip whose data.pkl is damaged (torch's unpickler raises KeyError/IndexError on bad memo ids)."""
    src = zipfile.ZipFile(tiny.checkpoint)
    f = tmp_path / "bad.pt"
    with zipfile.ZipFile(f, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data.pkl"):
                data = data[:2] + b"h\xff" + data[2:]  # BINGET of an unknown memo id
            dst.writestr(info, data)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(f)


def test_random_bytes_are_corrupt_not_code(tmp_path: Path) -> None:
    f = tmp_path / "noise.pt"
    f.write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(CheckpointError) as ei:
        load_checkpoint(f)
    assert "not a readable checkpoint" in ei.value.message


def test_empty_checkpoint(tmp_path: Path) -> None:
    f = tmp_path / "empty.pt"
    f.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_checkpoint(f)


def test_state_dict_with_non_tensors(tmp_path: Path, tiny: TinyModel) -> None:
    d = torch_load_safe(tiny.checkpoint)
    d["state_dict"] = {k: 1.0 for k in d["state_dict"]}
    torch.save(d, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="not a tensor"):
        load_checkpoint(tmp_path / "x.pt").model()


def test_malformed_architecture_keys(tmp_path: Path, tiny: TinyModel) -> None:
    d = torch_load_safe(tiny.checkpoint)
    d["latentsize"] = "large"
    torch.save(d, tmp_path / "x.pt")
    with pytest.raises(CheckpointError, match="malformed"):
        load_checkpoint(tmp_path / "x.pt")


def _npy_with_header(path: Path, shape: tuple[int, ...], descr: str = "<f8", payload: bytes = b"\0" * 64) -> Path:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": descr, "fortran_order": False, "shape": shape})
    path.write_bytes(buf.getvalue() + payload)
    return path


@pytest.mark.parametrize("shape", [(10**6, 10**6), (10**12, 10**12), (10**5, 10**5)])
def test_npy_declaring_an_absurd_shape(tmp_path: Path, shape: tuple[int, ...]) -> None:
    """Refused from the header alone: numpy must not try to allocate terabytes first."""
    f = _npy_with_header(tmp_path / "absurd_ioxfm.npy", shape)
    with pytest.raises(TransformError, match="declares an array of shape"):
        read_transform_params(f)


def test_npy_object_array_of_absurd_shape(tmp_path: Path) -> None:
    f = _npy_with_header(tmp_path / "absurd_ioxfm.npy", (10**12,), descr="|O")
    with pytest.raises(TransformError, match="object array"):
        read_transform_params(f)


@pytest.mark.parametrize("content", [b"", b"\x93NUMPY", b"\x93NUMPY\x01\x00garbage", b"PK\x03\x04broken"])
def test_broken_transform_files(tmp_path: Path, content: bytes) -> None:
    f = tmp_path / "broken_ioxfm.npy"
    f.write_bytes(content)
    with pytest.raises(TransformError):
        read_transform_params(f)
    g = tmp_path / "broken_ioxfm.npz"
    g.write_bytes(content)
    with pytest.raises(TransformError):
        read_transform_params(g)


# -- through the CLI --------------------------------------------------------------------------------------

def _flat(text: str) -> str:
    """Output without any whitespace: robust to rich folding long paths at the console width."""
    return "".join(text.split())


def _invoke(args: list[str]) -> Any:
    return CliRunner().invoke(app, args, env={"KRAKEN_DEBUG": None})


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_cli_refuses_crafted_checkpoint(tmp_path: Path, tiny: TinyModel, payload: str) -> None:
    marker = tmp_path / "MARKER"
    evil = _evil_checkpoint(tiny, tmp_path / "evil.pt", PAYLOADS[payload](marker))
    inputs = tiny.write_inputs(tmp_path / "in", 3)
    out_dir = tmp_path / "out"
    for args in (["run", "-c", str(evil), "-t", str(tiny.transforms_file), *tiny.input_args(inputs),
                  "-o", str(out_dir / "{input}.mat"), "--device", "cpu"],
                 ["describe", str(evil)],
                 ["merge", str(evil), str(tiny.checkpoint), "-o", str(out_dir / "m.pt")]):
        res = _invoke(args)
        assert res.exit_code == 1, res.output
        assert "Error:" in res.stderr and "Hint:" in res.stderr
        assert "wouldrunwhenloaded" in _flat(res.stderr)
        assert "Traceback" not in res.output
        assert not marker.exists()
    assert not out_dir.exists() or files_in(out_dir) == set()


@pytest.mark.parametrize("writer", [_evil_npy, _evil_npz], ids=["npy", "npz"])
def test_cli_refuses_crafted_transform(tmp_path: Path, tiny: TinyModel, writer: Any) -> None:
    marker = tmp_path / "MARKER"
    evil = writer(tmp_path / f"evil_ioxfm.{writer.__name__[-3:]}", ExecPayload(marker))
    inputs = tiny.write_inputs(tmp_path / "in", 3)
    res = _invoke(["run", "-c", str(tiny.checkpoint), "-t", str(evil), *tiny.input_args(inputs),
                   "-o", str(tmp_path / "out" / "p.mat"), "--device", "cpu"])
    assert res.exit_code == 1, res.output
    assert "Error:" in res.stderr and "wouldrunwhenloaded" in _flat(res.stderr)
    assert not marker.exists()
    assert not (tmp_path / "out").exists() or files_in(tmp_path / "out") == set()


def test_cli_truncated_and_empty_checkpoints(tmp_path: Path, tiny: TinyModel) -> None:
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(tiny.checkpoint.read_bytes()[:500])
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    for f, words in ((trunc, "notareadablecheckpoint"), (empty, "isempty")):
        res = _invoke(["describe", str(f)])
        assert res.exit_code == 1, res.output
        assert words in _flat(res.stderr) and "Hint:" in res.stderr
        assert res.stdout == ""
