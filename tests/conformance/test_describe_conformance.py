"""`kraken describe` reports the facts the original's describe_checkpoint.py printed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app


def _parse_expected(text: str) -> tuple[dict[str, str], dict[str, str], list[tuple[str, int]], list[tuple[str, str]]]:
    info: dict[str, str] = {}
    params: dict[str, str] = {}
    flavors: list[tuple[str, int]] = []
    paths: list[tuple[str, str]] = []
    for line in text.splitlines():
        if m := re.match(r"training_params\['(\w+)'\]: (.*)$", line):
            params[m.group(1)] = m.group(2)
        elif m := re.match(r"\d+\) (\S+)\s+\(Sx(\d+)\)", line):
            flavors.append((m.group(1), int(m.group(2))))
        elif m := re.match(r"\d+\) (\S+) -> (\S+)$", line):
            paths.append((m.group(1), m.group(2)))
        elif m := re.match(r"(\w+): (.*)$", line):
            info[m.group(1)] = m.group(2)
    return info, params, flavors, paths


@pytest.mark.parametrize("ckpt,expected,with_paths", [
    ("model.pt", "describe_model.txt", True),
    ("expected/merged_model.pt", "describe_merged.txt", False),
])
def test_describe_reports_original_facts(conf_dir: Path, ckpt: str, expected: str, with_paths: bool) -> None:
    args = ["describe", ckpt, "--json"] + (["--paths"] if with_paths else [])
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    desc = json.loads(result.stdout)
    info, params, flavors, paths = _parse_expected((conf_dir / "expected" / expected).read_text())
    assert [(f["name"], f["edges"]) for f in desc["flavors"]] == flavors
    for key, value in info.items():
        assert key in desc["model_info"], key
        assert str(desc["model_info"][key]) == value, (key, desc["model_info"][key], value)
    for key, value in params.items():
        assert str(desc["training"][key]) == value, key
    if with_paths:
        assert [tuple(p) for p in desc["paths"]] == paths
    if "merged" in ckpt:
        froms = re.findall(r"from: (\S+)", (conf_dir / "expected" / expected).read_text())
        assert [f["source"] for f in desc["flavors"]] == froms


def test_describe_text_output_lists_flavors_and_epochs(conf_dir: Path) -> None:
    result = CliRunner().invoke(app, ["describe", "model.pt", "--paths"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "SCifod2act_fs86_volnorm" in result.stdout
    assert "40 completed" in result.stdout and "epoch key 39" in result.stdout
    assert "Training paths (25)" in result.stdout
