"""`kraken fetch`: options, stdout/stderr, exit codes; downloads from a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app
from kraken_cli.engine import registry as reg_mod
from kraken_cli.engine.registry import Registry, RegistryEntry

runner = CliRunner()

FILES = {
    "kraken_chkpt_tiny.pt": b"checkpoint bytes " * 1000,
    "kraken_ioxfm_tiny.npy": b"transform bytes " * 500,
    "subject_splits_tiny.mat": b"split bytes",
}
KINDS = {"kraken_chkpt_tiny.pt": "checkpoint", "kraken_ioxfm_tiny.npy": "transform",
         "subject_splits_tiny.mat": "split"}


@pytest.fixture
def fake_registry(httpserver, monkeypatch: pytest.MonkeyPatch) -> Registry:  # type: ignore[no-untyped-def]
    """Three small files served on 127.0.0.1; the first two are the default model."""
    entries = []
    for name, data in FILES.items():
        httpserver.expect_request(f"/files/{name}").respond_with_data(data)
        entries.append(RegistryEntry(name=name, kind=KINDS[name], urls=(httpserver.url_for(f"/files/{name}"),),
                                     sha256=hashlib.sha256(data).hexdigest(), flavors=("FCcorr_fs86_hpf",),
                                     default=name != "subject_splits_tiny.mat"))
    reg = Registry(entries)
    monkeypatch.setattr(reg_mod.catalog, "load_registry", lambda: reg)
    for var in ("KRAKEN_DATA", "KRAKENCODER_DATA"):
        monkeypatch.delenv(var, raising=False)
    return reg


def n_requests(httpserver) -> int:  # type: ignore[no-untyped-def]
    return len(httpserver.log)


def test_fetch_default_files(fake_registry: Registry, tmp_path: Path, httpserver) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["fetch", "--cache-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [str(tmp_path / "kraken_chkpt_tiny.pt"), str(tmp_path / "kraken_ioxfm_tiny.npy")]
    assert "2 downloaded" in result.stderr
    assert (tmp_path / "kraken_chkpt_tiny.pt").read_bytes() == FILES["kraken_chkpt_tiny.pt"]
    assert not (tmp_path / "subject_splits_tiny.mat").exists()


def test_fetch_names_json_and_cache_from_env(fake_registry: Registry, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAKEN_DATA", str(tmp_path / "env"))
    result = runner.invoke(app, ["fetch", "subject_splits_tiny.mat", "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["cache_dir"] == str(tmp_path / "env")
    assert [(f["name"], f["downloaded"], f["size"]) for f in report["files"]] == [
        ("subject_splits_tiny.mat", True, len(FILES["subject_splits_tiny.mat"]))]


def test_cached_files_are_not_downloaded_again_unless_forced(fake_registry: Registry, tmp_path: Path,
                                                             httpserver) -> None:  # type: ignore[no-untyped-def]
    args = ["fetch", "kraken_chkpt_tiny.pt", "--cache-dir", str(tmp_path)]
    assert runner.invoke(app, args, catch_exceptions=False).exit_code == 0
    assert n_requests(httpserver) == 1
    again = runner.invoke(app, args, catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert "0 downloaded, 1 already cached" in again.stderr and n_requests(httpserver) == 1
    forced = runner.invoke(app, [*args, "--force", "-q"], catch_exceptions=False)
    assert forced.exit_code == 0, forced.output
    assert n_requests(httpserver) == 2 and forced.stderr == ""
    assert forced.stdout.strip() == str(tmp_path / "kraken_chkpt_tiny.pt")


def test_list_json(fake_registry: Registry, tmp_path: Path) -> None:
    runner.invoke(app, ["fetch", "kraken_ioxfm_tiny.npy", "--cache-dir", str(tmp_path)], catch_exceptions=False)
    result = runner.invoke(app, ["fetch", "--list", "--json", "--cache-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    rows = {f["name"]: f for f in report["files"]}
    assert list(rows) == list(FILES)
    assert rows["kraken_ioxfm_tiny.npy"]["cached"] is True
    assert rows["kraken_ioxfm_tiny.npy"]["size"] == len(FILES["kraken_ioxfm_tiny.npy"])
    assert rows["kraken_chkpt_tiny.pt"]["cached"] is False and rows["kraken_chkpt_tiny.pt"]["size"] is None
    assert rows["kraken_chkpt_tiny.pt"]["kind"] == "checkpoint"
    assert rows["kraken_chkpt_tiny.pt"]["flavors"] == ["FCcorr_fs86_hpf"]
    assert rows["kraken_chkpt_tiny.pt"]["path"] == str(tmp_path / "kraken_chkpt_tiny.pt")


def test_list_table(fake_registry: Registry, tmp_path: Path, httpserver) -> None:  # type: ignore[no-untyped-def]
    result = runner.invoke(app, ["fetch", "--list", "--cache-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name, kind in KINDS.items():
        assert name in result.stdout and kind in result.stdout
    assert "0 of 3 cached" in result.stderr
    assert n_requests(httpserver) == 0  # --list downloads nothing


def test_unknown_name(fake_registry: Registry, tmp_path: Path) -> None:
    result = runner.invoke(app, ["fetch", "kraken_chkpt_tiny.ptt", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert "Error: no released file is called 'kraken_chkpt_tiny.ptt'" in result.stderr
    assert "Hint: did you mean kraken_chkpt_tiny.pt?" in result.stderr


def test_download_failure_is_an_error_with_a_hint(fake_registry: Registry, tmp_path: Path, httpserver) -> None:  # type: ignore[no-untyped-def]
    httpserver.clear_all_handlers()
    result = runner.invoke(app, ["fetch", "kraken_chkpt_tiny.pt", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "Error: could not download kraken_chkpt_tiny.pt" in result.stderr and "Hint:" in result.stderr
    assert not (tmp_path / "kraken_chkpt_tiny.pt").exists()


def test_cache_files_follow_the_umask_and_no_lock_files_stay(fake_registry: Registry, tmp_path: Path,
                                                             httpserver) -> None:  # type: ignore[no-untyped-def]
    import os
    import stat

    old = os.umask(0o027)
    try:
        ok = runner.invoke(app, ["fetch", "--cache-dir", str(tmp_path / "ok")], catch_exceptions=False)
        httpserver.clear_all_handlers()  # as offline: every request fails
        failed = runner.invoke(app, ["fetch", "kraken_chkpt_tiny.pt", "--cache-dir", str(tmp_path / "off")])
    finally:
        os.umask(old)
    assert ok.exit_code == 0 and failed.exit_code == 1, (ok.output, failed.output)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert {p.name for p in written} >= {"kraken_chkpt_tiny.pt", "kraken_ioxfm_tiny.npy"}
    assert not [p for p in written if p.name.endswith((".lock", ".part"))]
    assert {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in written} == {p.name: "0o640" for p in written}


def test_mirror_is_tried_first(fake_registry: Registry, tmp_path: Path, httpserver) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/lab/kraken_ioxfm_tiny.npy").respond_with_data(FILES["kraken_ioxfm_tiny.npy"])
    result = runner.invoke(app, ["fetch", "kraken_ioxfm_tiny.npy", "--cache-dir", str(tmp_path),
                                 "--mirror", httpserver.url_for("/lab")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [req.path for req, _ in httpserver.log] == ["/lab/kraken_ioxfm_tiny.npy"]


def test_all_with_names_is_a_usage_error(fake_registry: Registry, tmp_path: Path) -> None:
    result = runner.invoke(app, ["fetch", "--all", "kraken_chkpt_tiny.pt", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 2


def test_options_reach_the_engine(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls: list[dict[str, Any]] = []

    def fake_fetch(names: list[str], **kwargs: Any) -> list[Any]:
        calls.append({"names": names, **kwargs})
        return []

    monkeypatch.setattr(reg_mod, "fetch", fake_fetch)
    result = runner.invoke(app, ["fetch", "--flavors", "FCcorr_fs86_hpf,SCifod2act_fs86_sift2", "--flavors",
                                 "FCcorr_shen268_hpf", "--mirror", "http://127.0.0.1:9/a", "--force",
                                 "--cache-dir", str(tmp_path), "-q"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert call["names"] == [] and call["all_files"] is False and call["force"] is True
    assert call["flavors"] == ["FCcorr_fs86_hpf", "SCifod2act_fs86_sift2", "FCcorr_shen268_hpf"]
    assert call["mirrors_first"] == ["http://127.0.0.1:9/a"]
    assert call["cache_dir"] == tmp_path.absolute()


def test_fetch_all(fake_registry: Registry, tmp_path: Path) -> None:
    result = runner.invoke(app, ["fetch", "--all", "--cache-dir", str(tmp_path), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert [f["name"] for f in json.loads(result.stdout)["files"]] == list(FILES)


def test_help_has_examples() -> None:
    result = runner.invoke(app, ["fetch", "--help"])
    assert result.exit_code == 0
    for text in ("Examples", "kraken fetch --list", "--flavors", "--mirror", "--cache-dir", "--force", "--all"):
        assert text in result.stdout


def test_quiet_list_prints_names_only(fake_registry: Registry, tmp_path: Path) -> None:
    result = runner.invoke(app, ["fetch", "--list", "-q", "--cache-dir", str(tmp_path)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == list(FILES) and result.stderr == ""
