"""STYLE rule 3 / DESIGN 2: every module under 500 lines, every function under 60 (split by responsibility)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import kraken_cli

PACKAGE = Path(kraken_cli.__file__).parent
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_FILE_LINES = 500
MAX_FUNCTION_LINES = 60


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_and_function_sizes(path: Path) -> None:
    src = path.read_text(encoding="utf-8")
    assert src.count("\n") <= MAX_FILE_LINES, f"{path.name}: {src.count(chr(10))} lines"
    long = [(n.name, n.end_lineno - n.lineno + 1) for n in ast.walk(ast.parse(src))
            if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)) and n.end_lineno is not None
            and n.end_lineno - n.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == [], f"{path.name}: functions over {MAX_FUNCTION_LINES} lines: {long}"


def test_the_check_sees_a_long_function(tmp_path: Path) -> None:
    f = tmp_path / "long.py"
    f.write_text("def f():\n" + "    x = 1\n" * 70)
    tree = ast.parse(f.read_text())
    fn = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef))
    assert fn.end_lineno is not None and fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES
