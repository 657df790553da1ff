"""Files kraken writes get the mode ``open()`` gives them (``0666 & ~umask``), so colleagues can read them.

Every command's writer goes through one atomic writer; these runs cover example (data, train, run),
merge, adapt, fetch and the npz/mat73 writers, under two umasks.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

runner = CliRunner()


@pytest.fixture(params=[0o022, 0o027], ids=["umask022", "umask027"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def modes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.stat().st_mode) for p in root.rglob("*") if p.is_file()}


def invoke(*args: str) -> None:
    res = runner.invoke(app, list(args), catch_exceptions=False)
    assert res.exit_code == 0, res.output


def test_every_command_writes_files_others_can_read(umask: int, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    invoke("example", "demo", "--n-subjects", "60", "--epochs", "10")
    demo = tmp_path / "demo"
    ckpt = next((demo / "model").glob("kraken_chkpt_*.pt"))
    xfm = next((demo / "model").glob("kraken_ioxfm_*.npy"))
    data = demo / "data" / "FCcorr_fs86_hpf.mat"
    invoke("merge", str(ckpt), str(ckpt), "-o", "merged.pt")
    invoke("adapt", "-c", str(ckpt), "-t", str(xfm), "-i", f"FCcorr_fs86_hpf={data}", "-o", "site.json")
    for fmt in ("npz", "mat73"):
        invoke("run", "-c", str(ckpt), "-t", str(xfm), "-i", f"FCcorr_fs86_hpf={data}", "--format", fmt,
               "-o", f"pred_{fmt}.{'npz' if fmt == 'npz' else 'mat'}")
    found = modes(tmp_path)
    assert {"merged.pt", "site.json", "pred_npz.npz", "pred_mat73.mat"} <= set(found)
    assert any(name.startswith("demo/model/") for name in found) and any(".part" in n for n in found) is False
    expected = 0o666 & ~umask
    assert {n: oct(m) for n, m in found.items() if m != expected} == {}, f"want {oct(expected)}"
