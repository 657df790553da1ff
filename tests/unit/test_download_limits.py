"""Download bounds (size cap, total deadline) and authenticated digest records; servers on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner
from werkzeug import Request, Response

from kraken_cli.cli.app import app
from kraken_cli.engine import registry as reg_mod
from kraken_cli.engine.errors import FetchError
from kraken_cli.engine.registry import DIGEST_FILE, Registry, RegistryEntry, download, verify_file

DATA = b"released bytes " * 2000
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def _key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KRAKEN_DIGEST_KEY_FILE", str(tmp_path / "key" / "digest-key"))


@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client(timeout=5.0) as c:
        yield c


def entry(url: str = "http://127.0.0.1:9/x", size: int | None = None) -> RegistryEntry:
    return RegistryEntry(name="model.pt", kind="checkpoint", urls=(url,), sha256=SHA, size=size)


def test_endless_body_stops_at_the_cap_and_leaves_nothing(httpserver, client, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KRAKEN_MAX_DOWNLOAD_BYTES", "100000")
    httpserver.expect_request("/m").respond_with_handler(
        lambda req: Response(itertools.repeat(b"z" * 4096), status=200))
    with pytest.raises(FetchError) as info:
        download(entry(httpserver.url_for("/m")), tmp_path, client=client)
    assert "more data than the file has" in info.value.message and "KRAKEN_MAX_DOWNLOAD_BYTES" in info.value.hint
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_body_longer_than_the_registry_size_is_refused(httpserver, client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    httpserver.expect_request("/m").respond_with_handler(
        lambda req: Response(iter([DATA, b"extra" * 1000]), status=200))
    with pytest.raises(FetchError, match="more data"):
        download(entry(httpserver.url_for("/m"), size=len(DATA)), tmp_path, client=client)
    assert not list(tmp_path.glob("model.pt*"))


def test_slow_server_hits_the_total_deadline(httpserver, client, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("KRAKEN_DOWNLOAD_DEADLINE", "0.5")

    def trickle(req: Request) -> Response:
        def body():  # type: ignore[no-untyped-def]
            for b in DATA[:20]:
                time.sleep(0.2)
                yield bytes([b])
        return Response(body(), status=200)

    httpserver.expect_request("/m").respond_with_handler(trickle)
    with pytest.raises(FetchError) as info:
        download(entry(httpserver.url_for("/m")), tmp_path, client=client)
    assert "took too long" in info.value.message and "KRAKEN_DOWNLOAD_DEADLINE" in info.value.hint
    assert not (tmp_path / "model.pt").exists()


def test_forged_digest_record_is_not_trusted(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(DATA[:-1] + b"!")  # rotted, same size
    st = path.stat()
    forged = {"model.pt": {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": SHA, "mac": "0" * 64}}
    (tmp_path / DIGEST_FILE).write_text(json.dumps(forged))
    assert not verify_file(entry(), path)
    del forged["model.pt"]["mac"]
    (tmp_path / DIGEST_FILE).write_text(json.dumps(forged))
    assert not verify_file(entry(), path)
    path.write_bytes(DATA)
    assert verify_file(entry(), path)
    assert oct(os.stat(Path(os.environ["KRAKEN_DIGEST_KEY_FILE"])).st_mode & 0o777) == "0o600"


def test_fetch_verify_reports_and_exits_1_on_mismatch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    other = b"other file"
    reg = Registry([entry(), RegistryEntry(name="kraken_ioxfm_a.npy", kind="transform", urls=("http://127.0.0.1:9/a",),
                                           sha256=hashlib.sha256(other).hexdigest())])
    monkeypatch.setattr(reg_mod.catalog, "load_registry", lambda: reg)
    path = tmp_path / "model.pt"
    path.write_bytes(DATA)
    assert verify_file(entry(), path)  # authentic record now
    runner = CliRunner()
    ok = runner.invoke(app, ["fetch", "--verify", "--json", "--cache-dir", str(tmp_path)], catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert [(r["name"], r["status"]) for r in json.loads(ok.stdout)] == [("model.pt", "ok")]
    st = path.stat()
    with open(path, "r+b") as fh:  # rot one byte, keep size and mtime
        fh.write(b"!")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert verify_file(entry(), path)  # the record still vouches for it...
    bad = runner.invoke(app, ["fetch", "--verify", "--all", "--cache-dir", str(tmp_path)], catch_exceptions=False)
    assert bad.exit_code == 1, bad.output  # ...the rehash does not
    assert "mismatch" in bad.stdout and "missing" in bad.stdout and path.exists()
    assert "1 mismatch" in bad.stderr
    assert not verify_file(entry(), path)  # the record now holds the real digest
    usage = runner.invoke(app, ["fetch", "--verify", "--list", "--cache-dir", str(tmp_path)])
    assert usage.exit_code == 2
