"""The engine's public API (STYLE rule 3, httpx ``test_exported_members``): sorted, complete, importable."""

from __future__ import annotations

import importlib

import pytest

import kraken_cli.engine as engine


def test_all_is_sorted_and_unique() -> None:
    assert list(engine.__all__) == sorted(set(engine.__all__))


@pytest.mark.parametrize("name", list(engine.__all__))
def test_every_lazy_export_is_what_type_checkers_are_told(name: str) -> None:
    """The lazy map and the ``TYPE_CHECKING`` imports of ``engine/__init__.py`` name the same object."""
    import ast
    from pathlib import Path

    tree = ast.parse(Path(engine.__file__).read_text(encoding="utf-8"))
    static = {a.asname or a.name: f"kraken_cli.engine{'.' + n.module if n.module else ''}"
              for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 1 for a in n.names
              if a.name != "lazy_exports"}
    assert set(static) == set(engine.__all__)
    assert getattr(engine, name) is getattr(importlib.import_module(static[name]), name)


def test_documented_entry_points_are_exported() -> None:
    for name in ("load_model", "load_cohort", "KrakenError", "Cohort", "Flavor", "FlavorSpec", "KrakenModel"):
        assert name in engine.__all__


def test_dir_and_unknown_attribute() -> None:
    assert sorted(dir(engine)) == sorted(engine.__all__)
    with pytest.raises(AttributeError):
        engine.no_such_thing  # noqa: B018


@pytest.mark.parametrize("module", ["kraken_cli.engine.errors", "kraken_cli.engine.io"])
def test_submodule_all_sorted_and_importable(module: str) -> None:
    mod = importlib.import_module(module)
    names = list(mod.__all__)
    assert names == sorted(names)
    for n in names:
        assert getattr(mod, n) is not None


def test_type_checkers_see_the_lazy_exports_typed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``kraken_cli.engine.load_model`` resolves to the real function for mypy, not ``Any`` (issue 14)."""
    import subprocess
    import sys

    import pytest

    pytest.importorskip("mypy")
    probe = tmp_path / "probe.py"
    probe.write_text("from kraken_cli.engine import load_model, train\nreveal_type(load_model)\nreveal_type(train)\n")
    out = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--ignore-missing-imports", str(probe)],
                         capture_output=True, text=True, timeout=300).stdout
    assert "KrakenModel" in out and "TrainResult" in out, out
