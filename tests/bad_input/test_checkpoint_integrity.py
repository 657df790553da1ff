"""A checkpoint whose bytes changed after it was written is refused (torch's zip reader checks no CRC)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from kraken_cli.cli.app import app
from kraken_cli.engine.checkpoint import torch_load_safe
from kraken_cli.engine.errors import CheckpointError


def _flip_a_weight_byte(src: Path, dst: Path) -> str:
    """Copy ``src`` to ``dst`` with one byte inside its largest tensor inverted; the tensor's member name."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
    header = data[info.header_offset: info.header_offset + 30]
    start = info.header_offset + 30 + int.from_bytes(header[26:28], "little") + int.from_bytes(header[28:30], "little")
    data[start + info.file_size // 2] ^= 0xFF
    dst.write_bytes(bytes(data))
    return info.filename


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "good.pt"
    torch.save({"state_dict": torch.nn.Linear(64, 32).state_dict()}, path)
    return path


def test_a_flipped_byte_in_a_weight_is_refused(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    member = _flip_a_weight_byte(good, bad)
    torch_load_safe(good)  # the intact file loads
    with pytest.raises(CheckpointError, match="damaged") as info:
        torch_load_safe(bad)
    assert member in info.value.message and str(bad) in info.value.message


def test_the_cli_says_which_file_is_damaged(good: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.pt"
    _flip_a_weight_byte(good, bad)
    res = CliRunner().invoke(app, ["describe", str(bad)])
    assert res.exit_code == 1, res.output
    assert "damaged" in res.stderr and "bad.pt" in res.stderr and "Traceback" not in res.output
