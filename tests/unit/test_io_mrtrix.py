"""A real ``tck2connectome`` (Debian's mrtrix3) makes the CSV kraken reads; skipped where MRtrix is absent."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from kraken_cli.engine.io import read_input

R = 86
SC = "SCifod2act_fs86_count"
pytestmark = pytest.mark.skipif(shutil.which("tck2connectome") is None,
                                reason="MRtrix3 tck2connectome is not installed (apt-get install mrtrix3)")


def write_mif(path: Path, labels: np.ndarray) -> None:
    """An MRtrix .mif image (text header, then UInt32 voxels), identity transform, 1 mm voxels."""
    text = ("mrtrix image\ndim: " + ",".join(map(str, labels.shape)) + "\nvox: 1,1,1\nlayout: +0,+1,+2\n"
            "datatype: UInt32LE\ntransform: 1,0,0,0\ntransform: 0,1,0,0\ntransform: 0,0,1,0\nfile: . {off}\nEND\n")
    off = len(text.format(off=0)) + 16
    off += -off % 16
    head = text.format(off=off).encode()
    path.write_bytes(head + b"\0" * (off - len(head)) + np.asarray(labels, "<u4").tobytes(order="F"))


def write_tck(path: Path, lines: list[list[tuple[float, float, float]]]) -> None:
    """An MRtrix .tck tractogram: float32 points, NaN between streamlines, Inf at the end."""
    pts: list[tuple[float, float, float]] = []
    for line in lines:
        pts += line + [(np.nan,) * 3]
    pts.append((np.inf,) * 3)
    text = f"mrtrix tracks\ndatatype: Float32LE\ncount: {len(lines)}\nfile: . {{off}}\nEND\n"
    off = len(text.format(off=0)) + 8
    head = text.format(off=off).encode()
    path.write_bytes(head + b"\0" * (off - len(head)) + np.asarray(pts, "<f4").tobytes())


@pytest.fixture
def tractogram(tmp_path: Path) -> tuple[Path, Path, np.ndarray]:
    """Parcel i + 1 is the voxel column x = i; streamlines join random parcel pairs (and one leaves the atlas)."""
    labels = np.zeros((R, 2, 2))
    for i in range(R):
        labels[i] = i + 1
    rng = np.random.default_rng(0)
    want = np.zeros((R, R))
    lines = []
    for _ in range(400):
        a, b = rng.choice(R, 2, replace=False)
        want[a, b] += 1
        want[b, a] += 1
        lines.append([(float(a), 0.0, 0.0), (float(b), 1.0, 1.0)])
    lines.append([(3.0, 0.0, 0.0), (300.0, 0.0, 0.0)])  # ends outside every parcel
    write_mif(tmp_path / "parc.mif", labels)
    write_tck(tmp_path / "tracks.tck", lines)
    return tmp_path / "tracks.tck", tmp_path / "parc.mif", want


def _connectome(tmp_path: Path, tck: Path, parc: Path, *extra: str) -> Path:
    out = tmp_path / f"connectome{len(extra)}.csv"
    subprocess.run(["tck2connectome", str(tck), str(parc), str(out), "-assignment_end_voxels", "-quiet",
                    "-force", *extra], check=True, timeout=120)
    return out


def test_tck2connectome_upper_triangular(tmp_path: Path, tractogram: tuple[Path, Path, np.ndarray]) -> None:
    tck, parc, want = tractogram
    out = _connectome(tmp_path, tck, parc)
    raw = np.loadtxt(out, delimiter=",")
    assert np.all(np.tril(raw, -1) == 0)  # MRtrix writes the upper triangle only
    (src,) = read_input(f"{SC}={out}")
    np.testing.assert_array_equal(src.read(0, 1)[0], want[np.triu_indices(R, 1)])


def test_tck2connectome_symmetric_and_keep_unassigned(tmp_path: Path,
                                                      tractogram: tuple[Path, Path, np.ndarray]) -> None:
    tck, parc, want = tractogram
    sym = _connectome(tmp_path, tck, parc, "-symmetric")
    (src,) = read_input(f"{SC}={sym}")
    np.testing.assert_array_equal(src.read(0, 1)[0], want[np.triu_indices(R, 1)])
    keep = _connectome(tmp_path, tck, parc, "-keep_unassigned", "-symmetric")
    assert np.loadtxt(keep, delimiter=",").shape == (R + 1, R + 1)
    (src,) = read_input(f"{SC}={keep}")
    np.testing.assert_array_equal(src.read(0, 1)[0], want[np.triu_indices(R, 1)])
