"""The docs are complete and generated from ``--help`` (STYLE rules 7 and 14; sqlite-utils ``test_docs.py``).

* README's "Command reference" section equals what ``scripts/gen_cli_reference.py`` renders now;
* every command and every option and argument has help text, and that text survives rich markup;
* every command's docstring has an ``Examples:`` block of ``kraken <cmd> ...`` lines;
* every command has an example in the README outside the generated section.
"""

from __future__ import annotations

import importlib.util
import inspect
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest
from rich.markup import render

from kraken_cli.cli.app import app

from .test_options_consistency import COMMAND_INFOS, COMMANDS, PARAMS

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_cli_reference", ROOT / "scripts" / "gen_cli_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("gen_cli_reference", module)
    spec.loader.exec_module(module)
    return module


gen = _load_script()


def readme_outside_reference() -> str:
    """README.md without the generated section (whose help output would satisfy any example check)."""
    before, _, after = gen._split(README.read_text(encoding="utf-8"))
    return before + after


def readme_examples(text: str, command: str) -> list[str]:
    """Lines that run ``kraken <command>``: in fenced code blocks, or as a code span in a table row."""
    found, in_fence = [], False
    start = re.compile(rf"kraken {re.escape(command)}(\s|$)")
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_fence = not in_fence
            continue
        if in_fence and start.match(stripped):
            found.append(stripped)
        elif not in_fence and stripped.startswith("|"):
            # `kraken fetch` alone in a table is the command's name; an example has arguments.
            found += re.findall(rf"`(kraken {re.escape(command)}\s[^`]+)`", stripped)
    return found


# --------------------------------------------------------------------------- generated reference


def test_readme_command_reference_is_fresh() -> None:
    assert gen.is_fresh(README), (
        "README.md's command reference is stale; run: python scripts/gen_cli_reference.py\n" + gen.diff(README))


def test_reference_covers_every_command() -> None:
    section = gen.current_section(README)
    assert "### kraken\n" in section
    for command in COMMANDS:
        assert f"### kraken {command}\n" in section
    assert gen.command_names()[:7] == ["run", "train", "merge", "describe", "fetch", "adapt", "example"]


def test_reference_is_plain_text_at_fixed_width() -> None:
    section = gen.current_section(README)
    assert "\x1b" not in section
    assert max(len(line) for line in section.splitlines() if line.startswith(("│", "╭", "╰"))) == gen.WIDTH


def test_check_mode_fails_on_a_stale_readme(tmp_path: Path) -> None:
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text(encoding="utf-8").replace("Show the version and exit.", "Old text."),
                     encoding="utf-8")
    assert gen.main(["--check", "--readme", str(stale)]) == 1
    assert gen.main(["--readme", str(stale)]) == 0
    assert gen.main(["--check", "--readme", str(stale)]) == 0
    assert stale.read_text(encoding="utf-8") == README.read_text(encoding="utf-8")


def test_missing_markers_are_an_error(tmp_path: Path) -> None:
    bare = tmp_path / "README.md"
    bare.write_text("# kraken\n", encoding="utf-8")
    assert gen.main(["--check", "--readme", str(bare)]) == 2


# --------------------------------------------------------------------------- help text


@pytest.mark.parametrize("command", COMMANDS)
def test_command_has_help(command: str) -> None:
    info = COMMAND_INFOS[command]
    text = info.help or inspect.getdoc(info.callback) or ""
    summary = text.strip().splitlines()[0] if text.strip() else ""
    assert summary.endswith("."), f"kraken {command} needs a one-line summary ending with '.'"
    assert summary[0].isupper(), f"kraken {command}: the summary starts a sentence ({summary!r})"


def test_app_has_help() -> None:
    assert (app.info.help or "").strip()


@pytest.mark.parametrize(("command", "param"), [(c, p.name) for c in COMMANDS for p in PARAMS[c]])
def test_every_option_and_argument_has_help(command: str, param: str) -> None:
    p = next(p for p in PARAMS[command] if p.name == param)
    assert p.help, f"kraken {command}: {p.long} has no help text"
    assert p.help[0].isupper() and p.help.endswith((".", ")")), f"kraken {command}: {p.long}: {p.help!r}"


@pytest.mark.parametrize(("command", "param"), [(c, p.name) for c in COMMANDS for p in PARAMS[c]])
def test_help_survives_rich_markup(command: str, param: str) -> None:
    """The app renders help as rich markup: ``[x]`` that is meant literally must be written ``\\[x]``."""
    p = next(p for p in PARAMS[command] if p.name == param)
    assert render(p.help).plain == p.help.replace("\\[", "["), (
        f"kraken {command}: rich eats part of the help of {p.long}; escape '[' as '\\\\['")


@pytest.mark.parametrize("command", COMMANDS)
def test_docstring_has_examples(command: str) -> None:
    doc = inspect.getdoc(COMMAND_INFOS[command].callback) or ""
    lines = doc.splitlines()
    assert "Examples:" in [ln.strip() for ln in lines], f"kraken {command}: the docstring needs an 'Examples:' block"
    block = lines[[ln.strip() for ln in lines].index("Examples:") + 1:]
    assert any(ln.strip().startswith(f"kraken {command}") for ln in block), (
        f"kraken {command}: the Examples block shows no `kraken {command} ...` line")


@pytest.mark.parametrize("command", COMMANDS)
def test_help_shows_examples(command: str) -> None:
    help_text = gen.help_text([command])
    assert "Examples:" in help_text
    assert re.search(rf"^\s*kraken {command}\b", help_text, re.MULTILINE)


# --------------------------------------------------------------------------- README examples


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_has_an_example(command: str) -> None:
    assert readme_examples(readme_outside_reference(), command), (
        f"README.md shows no `kraken {command} ...` example (a code block line or a table cell)")


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_examples_use_existing_options(command: str) -> None:
    """Each ``--long`` option in a README example exists on that command (renames break docs too)."""
    known = {d for p in PARAMS[command] for d in p.decls} | {"--help"}
    for line in readme_examples(readme_outside_reference(), command):
        code = line.split("#", 1)[0]
        for opt in re.findall(r"(?<![\w/.-])(--[a-z][a-z0-9-]*)", code):
            assert opt in known, f"README: `{line}` uses {opt}, which kraken {command} does not have"
