"""STYLE rule 1 / DESIGN 2: the engine never imports typer, rich, click or kraken_cli.cli."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import kraken_cli.engine

ENGINE_DIR = Path(kraken_cli.engine.__file__).parent
FORBIDDEN = ("typer", "rich", "click", "kraken_cli.cli")
ENGINE_MODULES = sorted(
    ".".join(("kraken_cli", "engine", *p.relative_to(ENGINE_DIR).with_suffix("").parts)).removesuffix(".__init__")
    for p in ENGINE_DIR.rglob("*.py"))


def _loaded_after(code: str) -> list[str]:
    probe = (f"import sys\n{code}\nimport json\n"
             f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'rich', 'click') "
             f"or m.startswith('kraken_cli.cli'))))")
    res = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_importing_the_engine_loads_no_cli_library() -> None:
    assert _loaded_after("import kraken_cli.engine") == []


def test_importing_every_engine_module_loads_no_cli_library() -> None:
    """One subprocess imports all engine modules (and the public API) and checks sys.modules."""
    code = "import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in ENGINE_MODULES)
    code += "import kraken_cli.engine as e\n[getattr(e, n) for n in e.__all__]\n"
    assert _loaded_after(code) == []


@pytest.mark.parametrize("module", ENGINE_MODULES)
def test_no_forbidden_import_statements(module: str) -> None:
    """Also catches imports inside functions, which a module-level import check would miss."""
    rel = module.removeprefix("kraken_cli.engine").lstrip(".").replace(".", "/")
    path = ENGINE_DIR / (rel + ".py") if rel and (ENGINE_DIR / (rel + ".py")).exists() else ENGINE_DIR / rel / "__init__.py"
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            depth = module.count(".") + (1 if path.name == "__init__.py" else 0)
            base = module.split(".")[: depth + 1 - node.level]
            names = ([".".join([*base, node.module])] if node.module
                     else [".".join([*base, a.name]) for a in node.names])
        for n in names:
            assert not any(n == f or n.startswith(f + ".") for f in FORBIDDEN), f"{path.name}:{node.lineno} imports {n}"
