"""kraken_cli.engine.registry: the shipped registry, cache folder, name resolution, verified resumable downloads.

Every download test talks to a real HTTP server on 127.0.0.1 (pytest-httpserver); nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from kraken_cli.engine import registry as reg_mod
from kraken_cli.engine.errors import FetchError, FlavorError
from kraken_cli.engine.registry import (
    DIGEST_FILE,
    PARTIAL_SUFFIX,
    Registry,
    RegistryEntry,
    default_cache_dir,
    default_model_files,
    download,
    fetch,
    files_for_flavors,
    list_files,
    load_registry,
    resolve_file,
    select_files,
    verify_file,
)
from kraken_cli.engine.registry import digests as _download

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
MAIN_CKPT = "kraken_chkpt_SCFC_fs86+shen268+coco439_pc256_225paths_latent128_20240413_ep002000.pt"
PCA = [f"kraken_ioxfm_SCFC_{a}_pc256_710train.npy" for a in ("fs86", "shen268", "coco439")]

DATA = bytes((i * 7 + i // 251) % 256 for i in range(300_000))
SHA = hashlib.sha256(DATA).hexdigest()


def entry(name: str = "model.pt", urls: tuple[str, ...] = (), data: bytes = DATA, **kw: object) -> RegistryEntry:
    return RegistryEntry(name=name, kind=str(kw.pop("kind", "checkpoint")), urls=urls,
                         sha256=hashlib.sha256(data).hexdigest(), **kw)  # type: ignore[arg-type]


class Recorder:
    """A Progress that records what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, object]] = []

    def start(self, label: str, total: int | None = None) -> None:
        self.events.append(("start", total))

    def advance(self, n: int = 1) -> None:
        self.events.append(("advance", n))

    def done(self) -> None:
        self.events.append(("done", None))

    @property
    def advanced(self) -> int:
        return sum(int(n) for kind, n in self.events if kind == "advance")  # type: ignore[call-overload]


class FileServer:
    """A scripted handler: serves ``data`` with Range support, optionally dropping or ignoring Range."""

    def __init__(self, data: bytes, *, honor_range: bool = True, drop_first_after: int | None = None,
                 status: int = 200, delay: float = 0.0) -> None:
        self.data = data
        self.honor_range = honor_range
        self.drop_first_after = drop_first_after
        self.status = status
        self.delay = delay
        self.requests: list[str | None] = []  # the Range header of each request
        self.bytes_sent = 0

    def __call__(self, request: Request) -> Response:
        rng = request.headers.get("Range")
        self.requests.append(rng)
        if self.delay:
            time.sleep(self.delay)
        if self.status != 200:
            return Response(b"nope", status=self.status)
        start = 0
        if rng and self.honor_range:
            start = int(rng.removeprefix("bytes=").split("-")[0])
            if start >= len(self.data):
                return Response(b"", status=416, headers={"Content-Range": f"bytes */{len(self.data)}"})
        body = self.data[start:]
        headers = {"Content-Length": str(len(body))}
        status = 200
        if start:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"
        if self.drop_first_after is not None and len(self.requests) == 1:
            cut = body[: self.drop_first_after]
            self.bytes_sent += len(cut)
            return Response(iter([cut]), status=status, headers=headers)  # then the connection closes
        self.bytes_sent += len(body)
        return Response(body, status=status, headers=headers)


@pytest.fixture
def client() -> httpx.Client:
    with httpx.Client(timeout=5.0, follow_redirects=True) as c:
        yield c


def serve(httpserver, path: str, handler: FileServer) -> str:  # type: ignore[no-untyped-def]
    httpserver.expect_request(path).respond_with_handler(handler)
    return httpserver.url_for(path)


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/model.pt"


# --------------------------------------------------------------------------- the shipped registry


def test_shipped_registry_matches_the_spec() -> None:
    reg = load_registry()
    assert len(reg) == 64
    assert [e.name for e in default_model_files()] == [MAIN_CKPT, *PCA]
    assert {e.kind for e in reg} == {"checkpoint", "transform", "split", "target", "regtarget"}
    main = reg.entry(MAIN_CKPT)
    assert len(main.flavors) == 15 and "FCcorr_fs86_hpf" in main.flavors
    assert all(len(e.urls) == 2 and e.size is None for e in reg)
    cfeat = reg.entry("kraken_ioxfm_SCFC_fs86+shen268+coco439_cfeat_710train.npy")
    assert set(cfeat.flavors) == set(main.flavors)
    assert reg.entry("kraken_regtarget_FCpcorr_fs86_hpf_HCPYA710train.mat").flavors == ("FCpcorr_fs86_hpf",)


def test_every_flavordb_file_is_in_the_registry() -> None:
    from kraken_cli.engine.flavors import flavor_database

    reg = load_registry()
    for flavor, rec in flavor_database().items():
        assert flavor in reg.entry(rec["checkpoint"]).flavors
        assert flavor in reg.entry(rec["xform"]).flavors


@pytest.mark.skipif(not (SHARED / "reference" / "model_data_urls.json").exists(), reason="needs ../shared")
def test_registry_json_is_fresh() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "build_registry.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_registry_accepts_the_original_format() -> None:
    text = json.dumps([{"filename": "kraken_ioxfm_x_pc256.npy", "url": ["http://a/1", "http://b/2"],
                        "hash": SHA.upper(), "hashtype": "sha256"}])
    e = Registry.from_json(text).entry("kraken_ioxfm_x_pc256.npy")
    assert e.kind == "transform" and e.urls == ("http://a/1", "http://b/2") and e.sha256 == SHA


@pytest.mark.parametrize("bad", [{"name": "../evil.pt"}, {"name": "a/b.pt"}, {"sha256": "abc"}, {"kind": "weights"}])
def test_registry_entry_validation(bad: dict[str, str]) -> None:
    fields = {"name": "ok.pt", "kind": "checkpoint", "urls": (), "sha256": SHA, **bad}
    with pytest.raises(ValueError):
        RegistryEntry(**fields)  # type: ignore[arg-type]


def test_registry_rejects_duplicates_and_bad_json() -> None:
    with pytest.raises(ValueError, match="twice"):
        Registry([entry("a.pt"), entry("a.pt")])
    with pytest.raises(FetchError, match="cannot read the file registry"):
        Registry.from_json('{"files": [{"name": "x"}]}')


def test_unknown_name_suggests_a_close_one() -> None:
    with pytest.raises(FetchError) as info:
        load_registry().entry(MAIN_CKPT[:-4])
    assert "no released file" in info.value.message
    assert MAIN_CKPT in (info.value.hint or "")


# --------------------------------------------------------------------------- cache folder


def test_cache_dir_precedence(tmp_path: Path) -> None:
    env = {"KRAKEN_DATA": str(tmp_path / "k"), "KRAKENCODER_DATA": str(tmp_path / "kc")}
    assert default_cache_dir(tmp_path / "x", env) == tmp_path / "x"
    assert default_cache_dir(None, env) == tmp_path / "k"
    assert default_cache_dir(None, {"KRAKEN_DATA": "", "KRAKENCODER_DATA": str(tmp_path / "kc")}) == tmp_path / "kc"
    import platformdirs

    assert default_cache_dir(None, {}) == Path(platformdirs.user_cache_dir("kraken", appauthor=False)).absolute()
    assert default_cache_dir("~/kc", {}) == Path.home() / "kc"
    assert default_cache_dir("rel", {}).is_absolute()


# --------------------------------------------------------------------------- selection


def test_files_for_flavors_follow_flavordb() -> None:
    names = [e.name for e in files_for_flavors(["FCcorr_fs86_hpf", "fs86_hpf_FCcov", "SCifod2act_fs86_sift2"])]
    assert names == [MAIN_CKPT, PCA[0],
                     "kraken_chkpt_SCifod2act_fs86_sift2_pc256_latent128_targlatent_20241029_ep000500.pt",
                     "kraken_ioxfm_SCifod2act_fs86_sift2_pc256_710train.npy"]
    with pytest.raises(FlavorError, match="no released model files"):
        files_for_flavors(["FCcorr_fs87_hpf"])


def test_select_files() -> None:
    assert [e.name for e in select_files()] == [MAIN_CKPT, *PCA]
    assert len(select_files(all_files=True)) == 64
    assert [e.name for e in select_files([PCA[1], PCA[1]], flavors=["FCcorr_shen268_hpf"])] == [PCA[1], MAIN_CKPT]


# --------------------------------------------------------------------------- downloads


def test_download_verifies_and_records_the_digest(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    progress = Recorder()
    path = download(e, tmp_path / "cache", progress=progress, client=client)
    assert path == tmp_path / "cache" / "model.pt" and path.read_bytes() == DATA
    assert not (tmp_path / "cache" / ("model.pt" + PARTIAL_SUFFIX)).exists()
    assert ("start", len(DATA)) in progress.events and progress.advanced == len(DATA)
    assert progress.events[-1] == ("done", None)
    digests = json.loads((tmp_path / "cache" / DIGEST_FILE).read_text())
    assert digests["model.pt"]["sha256"] == SHA and digests["model.pt"]["size"] == len(DATA)


def test_wrong_hash_mirror_then_good_mirror(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    bad = FileServer(DATA[:-1] + b"X")
    good = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/bad/model.pt", bad), serve(httpserver, "/good/model.pt", good)))
    path = download(e, tmp_path, client=client)
    assert path.read_bytes() == DATA
    assert len(bad.requests) == 1 and len(good.requests) == 1


def test_404_on_first_mirror(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    missing = FileServer(DATA, status=404)
    good = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/gone/model.pt", missing), serve(httpserver, "/ok/model.pt", good)))
    assert download(e, tmp_path, client=client).read_bytes() == DATA
    assert missing.requests == [None]


def test_404_on_every_mirror(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = entry(urls=(serve(httpserver, "/a/model.pt", FileServer(DATA, status=404)),
                    serve(httpserver, "/b/model.pt", FileServer(DATA, status=404))))
    with pytest.raises(FetchError) as info:
        download(e, tmp_path, client=client)
    assert "not found on any mirror" in info.value.message and "/a/model.pt" in info.value.message
    assert "--mirror" in (info.value.hint or "")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []


def test_wrong_hash_everywhere_deletes_the_file(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = entry(urls=(serve(httpserver, "/bad/model.pt", FileServer(b"x" * 1000)),))
    with pytest.raises(FetchError, match="does not match its published sha256"):
        download(e, tmp_path, client=client)
    assert not (tmp_path / "model.pt").exists()
    assert not (tmp_path / ("model.pt" + PARTIAL_SUFFIX)).exists()


def test_dropped_connection_resumes_with_range(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = FileServer(DATA, drop_first_after=100_000)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    assert download(e, tmp_path, client=client).read_bytes() == DATA
    assert server.requests == [None, "bytes=100000-"]
    assert server.bytes_sent == len(DATA)


def test_server_ignoring_range_restarts(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ("model.pt" + PARTIAL_SUFFIX)).write_bytes(DATA[:50_000])
    server = FileServer(DATA, honor_range=False)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    assert download(e, tmp_path, client=client).read_bytes() == DATA
    assert server.requests == ["bytes=50000-"]


def test_resume_from_an_existing_incomplete_file(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ("model.pt" + PARTIAL_SUFFIX)).write_bytes(DATA[:123_456])
    server = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    progress = Recorder()
    assert download(e, tmp_path, client=client, progress=progress).read_bytes() == DATA
    assert server.requests == ["bytes=123456-"] and server.bytes_sent == len(DATA) - 123_456
    assert progress.advanced == len(DATA)  # the resumed part counts, the bar ends full


def test_corrupt_incomplete_file_is_restarted(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ("model.pt" + PARTIAL_SUFFIX)).write_bytes(b"\0" * 1000)
    server = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    assert download(e, tmp_path, client=client).read_bytes() == DATA
    assert server.requests == ["bytes=1000-", None]


def test_complete_incomplete_file_answered_416(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / ("model.pt" + PARTIAL_SUFFIX)).write_bytes(DATA)
    server = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    assert download(e, tmp_path, client=client).read_bytes() == DATA
    assert server.requests == [f"bytes={len(DATA)}-"] and server.bytes_sent == 0


def test_cached_file_is_hashed_once(httpserver, client: httpx.Client, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    server = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    path = download(e, tmp_path, client=client)
    calls: list[Path] = []
    real = _download.file_sha256
    monkeypatch.setattr(_download, "file_sha256", lambda p: calls.append(Path(p)) or real(p))
    for _ in range(3):
        assert verify_file(e, path)
        assert download(e, tmp_path, client=client) == path
        assert resolve_file("model.pt", tmp_path, registry=Registry([e])) == path
    assert calls == [] and len(server.requests) == 1  # verified by the download itself; no new request
    os.utime(path, ns=(time.time_ns(), time.time_ns() + 10**9))  # touched: verified once more, then cached
    assert verify_file(e, path) and verify_file(e, path)
    assert calls == [path]


def test_corrupt_cached_file_is_downloaded_again(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    (tmp_path / "model.pt").write_bytes(DATA[:-1] + b"!")
    assert not verify_file(e, tmp_path / "model.pt")
    assert download(e, tmp_path, client=client).read_bytes() == DATA
    assert verify_file(e, tmp_path / "model.pt")


def test_force_downloads_again(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/m/model.pt", server),))
    download(e, tmp_path, client=client)
    (tmp_path / ("model.pt" + PARTIAL_SUFFIX)).write_bytes(b"stale")
    download(e, tmp_path, client=client, force=True)
    assert server.requests == [None, None]


def test_mirror_option_is_tried_first(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    official = FileServer(DATA)
    mine = FileServer(DATA)
    e = entry(urls=(serve(httpserver, "/official/model.pt", official),))
    serve(httpserver, "/lab/files/model.pt", mine)
    download(e, tmp_path, client=client, mirrors_first=[httpserver.url_for("/lab/files/")])
    assert mine.requests == [None] and official.requests == []


def test_no_network(tmp_path: Path, client: httpx.Client) -> None:
    e = entry(urls=(closed_port_url(),))
    with pytest.raises(FetchError) as info:
        download(e, tmp_path, client=client)
    assert "no connection to any mirror" in info.value.message
    assert "network" in (info.value.hint or "")


def test_timeout(httpserver, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    e = entry(urls=(serve(httpserver, "/slow/model.pt", FileServer(DATA, delay=1.0)),))
    with httpx.Client(timeout=0.2) as slow, pytest.raises(FetchError, match="every mirror timed out"):
        download(e, tmp_path, client=slow)


def test_unwritable_cache_dir(tmp_path: Path, client: httpx.Client) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(FetchError, match="cannot create the cache folder"):
        download(entry(urls=(closed_port_url(),)), blocker / "cache", client=client)


def test_fetch_keeps_going_and_reports_failures(httpserver, client: httpx.Client, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    good = entry("a.pt", urls=(serve(httpserver, "/a.pt", FileServer(DATA)),), default=True)
    bad = entry("b.pt", urls=(serve(httpserver, "/b.pt", FileServer(DATA, status=404)),), default=True)
    reg = Registry([good, bad])
    with pytest.raises(FetchError, match="1 of 2 files could not be downloaded: b.pt"):
        fetch(cache_dir=tmp_path, client=client, registry=reg)
    assert (tmp_path / "a.pt").read_bytes() == DATA
    fetched = fetch(["a.pt"], cache_dir=tmp_path, client=client, registry=reg)
    assert [(f.entry.name, f.downloaded) for f in fetched] == [("a.pt", False)]
    assert [(s.entry.name, s.cached) for s in list_files(tmp_path, registry=reg)] == [("a.pt", True), ("b.pt", False)]


# --------------------------------------------------------------------------- resolve_file


def test_resolve_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    e = entry("model.pt")
    reg = Registry([e])
    with pytest.raises(FetchError) as info:
        resolve_file("model.pt", cache, registry=reg)
    assert "not in the cache folder" in info.value.message and info.value.hint == "kraken fetch model.pt"

    (cache / "model.pt").write_bytes(DATA)
    assert resolve_file("model.pt", cache, registry=reg) == cache / "model.pt"
    assert resolve_file("{FETCH}/model.pt", cache, registry=reg) == cache / "model.pt"
    assert resolve_file(cache / "model.pt", cache, registry=reg) == cache / "model.pt"

    local = tmp_path / "work"
    local.mkdir()
    (local / "model.pt").write_bytes(b"my own model")  # a local file given explicitly wins, unverified
    assert resolve_file(local / "model.pt", cache, registry=reg) == local / "model.pt"
    monkeypatch.chdir(local)
    assert resolve_file("model.pt", cache, registry=reg) == Path("model.pt")

    with pytest.raises(FetchError, match="file not found") as info:
        resolve_file(tmp_path / "nowhere" / "model.pt", cache, registry=reg)
    assert "model.pt" in (info.value.hint or "")
    with pytest.raises(FetchError, match="neither an existing file nor a released file name"):
        resolve_file("modle.pt", cache, registry=reg)
    with pytest.raises(FetchError, match="is a folder"):
        resolve_file(local, cache, registry=reg)


def test_resolve_file_refuses_a_corrupt_cached_file(tmp_path: Path) -> None:
    e = entry("model.pt")
    (tmp_path / "model.pt").write_bytes(b"truncated")
    with pytest.raises(FetchError) as info:
        resolve_file("model.pt", tmp_path, registry=Registry([e]))
    assert "does not match its published sha256" in info.value.message
    assert info.value.hint == "kraken fetch --force model.pt"
    assert resolve_file("model.pt", tmp_path, registry=Registry([e]), verify=False) == tmp_path / "model.pt"


def test_resolve_file_uses_the_patched_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reg_mod.catalog, "load_registry", lambda: Registry([entry("x.pt")]))
    with pytest.raises(FetchError, match="x.pt is not in the cache"):
        resolve_file("x.pt", tmp_path)


def test_resolve_file_without_cache_dir_uses_the_platform_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda *a, **k: str(tmp_path / "platform"))
    with pytest.raises(FetchError) as info:
        resolve_file("model.pt", None, registry=Registry([entry("model.pt")]))
    assert str(tmp_path / "platform") in info.value.message
