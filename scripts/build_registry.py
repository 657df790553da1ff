#!/usr/bin/env python3
"""Build ``kraken_cli/engine/resources/registry.json`` from the original's ``model_data_urls.json``.

Each record of the original list (``filename``, ``url`` mirrors, ``hash``) becomes one entry with
kraken's field names, plus what the original leaves implicit:

* ``kind``: ``checkpoint``, ``transform``, ``split``, ``target`` or ``regtarget`` (from the file name);
* ``flavors``: the flavors the file serves, from ``flavordb.json`` (a checkpoint or transform named
  there; the cfeat transform serves the flavors of the checkpoint it was made for; a regularisation
  target serves its FCpcorr flavor);
* ``default``: true for the published 15-flavor model and its three PCA transforms (UPSTREAM 11.2);
* ``size``: bytes, null where unknown (the original stores no sizes).

Usage (from the repository root)::

    python scripts/build_registry.py            # rewrite the registry
    python scripts/build_registry.py --check    # exit 1 when the committed registry is stale
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "reference"
DEFAULT_URLS = SHARED / "model_data_urls.json"
DEFAULT_FLAVORDB = ROOT / "kraken_cli" / "engine" / "resources" / "flavordb.json"
DEFAULT_OUT = ROOT / "kraken_cli" / "engine" / "resources" / "registry.json"

KIND_ORDER = ("checkpoint", "transform", "split", "target", "regtarget")
#: The published model (UPSTREAM 11.2): the 15-flavor checkpoint and its three PCA transforms.
DEFAULT_FILES = (
    "kraken_chkpt_SCFC_fs86+shen268+coco439_pc256_225paths_latent128_20240413_ep002000.pt",
    "kraken_ioxfm_SCFC_fs86_pc256_710train.npy",
    "kraken_ioxfm_SCFC_shen268_pc256_710train.npy",
    "kraken_ioxfm_SCFC_coco439_pc256_710train.npy",
)


def kind_of(name: str) -> str:
    """The kind of a released file, from its name (kraken's rule), refusing names no rule covers."""
    from kraken_cli.engine.naming import release_kind

    kind = release_kind(name)
    if kind == "target" and not name.startswith("kraken_target_"):
        raise SystemExit(f"cannot tell the kind of released file {name!r}; extend naming.release_kind()")
    return kind


def flavors_of(name: str, kind: str, flavordb: dict[str, dict[str, Any]]) -> list[str]:
    """Flavors a released file serves, in flavordb order."""
    if kind in ("checkpoint", "transform"):
        field = "checkpoint" if kind == "checkpoint" else "xform"
        direct = [f for f, rec in flavordb.items() if rec.get(field) == name]
        if direct:
            return direct
        # e.g. kraken_ioxfm_SCFC_fs86+shen268+coco439_cfeat_710train.npy: the flavors of the
        # checkpoint trained on the same flavor set (kraken_chkpt_SCFC_fs86+shen268+coco439_...).
        m = re.match(r"kraken_ioxfm_(SCFC_[^_]+)_", name)
        if m:
            prefix = f"kraken_chkpt_{m.group(1)}_"
            return [f for f, rec in flavordb.items() if str(rec.get("checkpoint", "")).startswith(prefix)]
        return []
    if kind == "regtarget":
        m = re.match(r"kraken_regtarget_([^_]+_[^_]+_[^_]+)_", name)
        return [m.group(1)] if m and m.group(1) in flavordb else []
    return []


def build(urls_file: Path, flavordb_file: Path) -> dict[str, Any]:
    """The registry document for the given source files."""
    records = json.loads(urls_file.read_text())
    flavordb = json.loads(flavordb_file.read_text())
    entries = []
    for rec in records:
        name = rec["filename"]
        if rec.get("hashtype", "sha256") != "sha256":
            raise SystemExit(f"{name}: only sha256 hashes are supported, got {rec['hashtype']!r}")
        urls = rec["url"] if isinstance(rec["url"], list) else [rec["url"]]
        kind = kind_of(name)
        entries.append({
            "name": name,
            "kind": kind,
            "size": rec.get("size"),
            "sha256": rec["hash"].lower(),
            "urls": urls,
            "flavors": flavors_of(name, kind, flavordb),
            "default": name in DEFAULT_FILES,
        })
    missing = set(DEFAULT_FILES) - {e["name"] for e in entries}
    if missing:
        raise SystemExit(f"default files missing from {urls_file}: {sorted(missing)}")
    entries.sort(key=lambda e: (KIND_ORDER.index(e["kind"]), not e["default"],
                                DEFAULT_FILES.index(e["name"]) if e["default"] else 0, e["name"]))
    return {
        "format": "kraken-registry/1",
        "source": "Krakencoder model_data_urls.json (released files, mirrors and sha256) + flavordb.json",
        "generated_by": "scripts/build_registry.py",
        "files": entries,
    }


def render(doc: dict[str, Any]) -> str:
    """Stable JSON text (2-space indent, one URL or flavor per line)."""
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--urls", type=Path, default=DEFAULT_URLS, help="the original's model_data_urls.json")
    parser.add_argument("--flavordb", type=Path, default=DEFAULT_FLAVORDB, help="flavordb.json")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="registry.json to write")
    parser.add_argument("--check", action="store_true", help="only check that --out is up to date")
    args = parser.parse_args(argv)
    text = render(build(args.urls, args.flavordb))
    if args.check:
        current = args.out.read_text() if args.out.exists() else ""
        if current != text:
            print(f"{args.out} is stale: run python scripts/build_registry.py", file=sys.stderr)
            return 1
        print(f"{args.out} is up to date")
        return 0
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(json.loads(text)['files'])} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
