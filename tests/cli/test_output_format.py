"""``kraken run --format`` and the ``-o`` extension; mat73 square outputs and Octave-readable text."""

from __future__ import annotations

import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app
from kraken_cli.engine.errors import SpecError
from kraken_cli.engine.io.writers import resolve_format

from ..helpers import FC, SC, TinyModel, files_in, make_tiny_model, n_regions_of

runner = CliRunner()
SUBJECTS = ["sub-01", "sub-0002", "s3"]  # ids of different lengths: padded rows of a char matrix


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    return make_tiny_model(tmp_path_factory.mktemp("fmtcli"))


@pytest.fixture
def inputs(tmp_path: Path, tiny: TinyModel) -> dict[str, Path]:
    return tiny.write_inputs(tmp_path / "in", subjects=SUBJECTS)


def _run(tiny: TinyModel, inputs: dict[str, Path], *extra: str) -> Any:
    return runner.invoke(app, ["run", *tiny.model_args(), *tiny.input_args(inputs), "-q", *extra],
                         catch_exceptions=False)


def _kind(path: Path) -> str:
    head = path.read_bytes()[:1024]
    if zipfile.is_zipfile(path):
        return "npz"
    if head.startswith(b"MATLAB 7.3") and head[512:520] == b"\x89HDF\r\n\x1a\n":
        return "mat73"
    if head.startswith(b"MATLAB 5.0"):
        return "mat"
    return "?"


@pytest.mark.parametrize(("fmt", "output", "expected"), [
    (None, "x.npz", "npz"), (None, "x.NPZ", "npz"), (None, "x.mat", "mat"), (None, "x", "mat"),
    (None, None, "mat"), (None, "o/{input}.h5", "mat73"), ("mat73", "x.mat", "mat73"),
    ("npz", "x", "npz"), ("mat", "x.mat", "mat"), ("mat73", "x.hdf5", "mat73"),
])
def test_resolve_format(fmt: str | None, output: str | None, expected: str) -> None:
    assert resolve_format(fmt, output) == expected


@pytest.mark.parametrize(("fmt", "output"), [("npz", "x.mat"), ("mat", "x.npz"), ("mat73", "x.npz"),
                                             ("mat", "x.h5"), ("npz", "x.h5")])
def test_resolve_format_contradiction(fmt: str, output: str) -> None:
    with pytest.raises(SpecError, match="does not match"):
        resolve_format(fmt, output)


@pytest.mark.parametrize(("name", "expected"), [("p.npz", "npz"), ("p.mat", "mat"), ("p.{input}.npz", "npz")])
def test_extension_picks_the_format(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path],
                                    name: str, expected: str) -> None:
    res = _run(tiny, inputs, "--outputs", SC, "-o", str(tmp_path / "out" / name))
    assert res.exit_code == 0, res.output
    written = [Path(p) for p in res.stdout.splitlines()]
    assert written and all(_kind(p) == expected for p in written)


@pytest.mark.parametrize(("fmt", "name"), [("npz", "x.mat"), ("mat", "x.npz"), ("mat73", "x.npz")])
def test_contradicting_extension_is_a_usage_error_before_reading(tmp_path: Path, tiny: TinyModel,
                                                                 fmt: str, name: str) -> None:
    missing = tmp_path / "missing.mat"  # never read: the error comes first
    out = tmp_path / "out"
    res = runner.invoke(app, ["run", *tiny.model_args(), "-i", f"{FC}={missing}", "--format", fmt,
                              "-o", str(out / name)])
    assert res.exit_code == 2, res.output
    assert f"--format {fmt} does not match" in res.stderr and "missing.mat" not in res.stderr
    assert "hint" in res.stderr.lower()
    assert not out.exists()


def test_mat73_with_mat_extension_is_fine(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    res = _run(tiny, inputs, "--outputs", SC, "--format", "mat73", "-o", str(tmp_path / "x.mat"))
    assert res.exit_code == 0, res.output
    assert _kind(tmp_path / "x.mat") == "mat73" and files_in(tmp_path) >= {"x.mat"}


def _square_outputs(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> tuple[Path, Path]:
    v5, v73 = tmp_path / "sq5.mat", tmp_path / "sq73.mat"
    for fmt, path in (("mat", v5), ("mat73", v73)):
        res = _run(tiny, inputs, "--square", "--fusion", "--format", fmt, "-o", str(path))
        assert res.exit_code == 0, res.output
    return v5, v73


def test_mat73_square_matches_v5(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    import h5py

    from kraken_cli.engine.io._hdf5 import open_tree
    from kraken_cli.engine.io._mat import load_mat_v5, subject_ids

    v5, v73 = _square_outputs(tmp_path, tiny, inputs)
    t5 = load_mat_v5(v5, where="v5")
    h5file, t73 = open_tree(v73, where="v73")
    try:
        assert t73["subjects"] == SUBJECTS  # the reader strips the char matrix padding
        assert subject_ids(t5["subjects"]) == subject_ids(t73["subjects"]) == SUBJECTS
        assert list(t73["inputtypes"]) == [FC, SC, "fusion"] and list(t73["outputtypes"]) == [FC, SC]
        n_compared = 0
        for src in (FC, SC, "fusion"):
            for out in (FC, SC):
                r = n_regions_of(out)
                a5 = np.stack([np.asarray(m) for m in t5["predicted_alltypes"][src][out]])
                a73 = t73["predicted_alltypes"][src][out].read()
                assert a5.shape == a73.shape == (len(SUBJECTS), r, r)
                # same float32 values up to rounding (v5 decodes file by file, the streaming formats batch every
                # source of an output, and BLAS may round a row differently in a longer batch), NaN diagonal
                np.testing.assert_allclose(a73, a5, rtol=1e-6, atol=1e-7)
                assert np.isnan(np.diagonal(a73, axis1=1, axis2=2)).all()
                n_compared += 1
        assert n_compared == 6
        # stored as MATLAB does: HDF5 (R, R, S), char matrices as uint16 [L x n], no cell references
        ds = h5file["predicted_alltypes"][FC][SC]
        assert ds.shape == (n_regions_of(SC), n_regions_of(SC), len(SUBJECTS))
        subj = h5file["subjects"]
        assert subj.dtype == np.uint16 and subj.shape == (max(map(len, SUBJECTS)), len(SUBJECTS))
        assert subj.attrs["MATLAB_class"] == b"char" and int(subj.attrs["MATLAB_int_decode"]) == 2
        assert "#refs#" not in h5file
        assert not any(isinstance(o, h5py.Dataset) and o.dtype == h5py.ref_dtype
                       for o in _all_objects(h5file))
    finally:
        h5file.close()


def _all_objects(group: Any) -> list[Any]:
    found: list[Any] = []
    group.visititems(lambda _name, obj: found.append(obj))
    return found


@pytest.mark.skipif(shutil.which("octave-cli") is None,
                    reason="octave-cli is not on PATH (apt-get install --no-install-recommends octave)")
def test_octave_loads_mat73_output(tmp_path: Path, tiny: TinyModel, inputs: dict[str, Path]) -> None:
    _, v73 = _square_outputs(tmp_path, tiny, inputs)
    r = n_regions_of(SC)
    script = (f"x = load('{v73}'); "
              "ids = cellstr(char(x.subjects)); printf('ID:%s\\n', ids{:}); "
              "printf('IN:%s\\n', cellstr(char(x.inputtypes)){:}); "
              "printf('OUT:%s\\n', cellstr(char(x.outputtypes)){:}); "
              f"p = x.predicted_alltypes.{FC}.{SC}; printf('SIZE:%s\\n', mat2str(size(p))); "
              "printf('NANDIAG:%d\\n', all(isnan(squeeze(p(1, 1, 1)))));")
    proc = subprocess.run(["octave-cli", "--no-gui", "--norc", "--eval", script], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "unknown datatype" not in proc.stderr and "can't read" not in proc.stderr, proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln[3:] for ln in lines if ln.startswith("ID:")] == SUBJECTS
    assert [ln[3:] for ln in lines if ln.startswith("IN:")] == [FC, SC, "fusion"]
    assert [ln[4:] for ln in lines if ln.startswith("OUT:")] == [FC, SC]
    assert f"SIZE:[{len(SUBJECTS)} {r} {r}]" in lines
    assert "NANDIAG:1" in lines
