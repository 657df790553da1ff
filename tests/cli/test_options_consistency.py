"""One option name means one thing on every command (STYLE rule 19, DESIGN section 3).

sqlite-utils shows the drift this guards against: ``--silent`` is ``-s/--silent`` with one help
text on some commands and has no ``-s`` and another text on others. kraken defines shared options
once, as ``Annotated`` aliases in ``kraken_cli/cli/_options.py``; these tests read every command's
signature (``typing.get_type_hints(..., include_extras=True)``, the ``typer.models.OptionInfo``
inside ``Annotated``) from ``app.registered_commands``, without going through Click.
"""

from __future__ import annotations

import re
import types
import typing
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import pytest
import typer
from typer.models import ArgumentInfo, OptionInfo

from kraken_cli.cli import _options
from kraken_cli.cli.app import app


@dataclass(frozen=True)
class Param:
    """One declared parameter of a command, as its signature states it."""

    command: str
    name: str  # the Python parameter name
    info: OptionInfo | ArgumentInfo
    type: Any  # the annotated type, without Optional[...]
    decls: tuple[str, ...]  # e.g. ("-o", "--output") or ("--latent-unit", "--no-latent-unit")

    @property
    def is_option(self) -> bool:
        return isinstance(self.info, OptionInfo)

    @property
    def long(self) -> str:
        """The primary long name (``--x``), or the Python name for an argument."""
        return next((d for d in self.decls if d.startswith("--")), self.name)

    @property
    def shorts(self) -> tuple[str, ...]:
        return tuple(sorted(d for d in self.decls if re.fullmatch(r"-[^-]", d)))

    @property
    def secondary(self) -> tuple[str, ...]:
        """Negative names of a boolean flag (``--no-x``)."""
        return tuple(d for d in self.decls if d.startswith("--") and d != self.long)

    @property
    def help(self) -> str:
        return (self.info.help or "").strip()


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return tp


def _decls(info: OptionInfo | ArgumentInfo) -> tuple[str, ...]:
    # In ``Annotated[..., typer.Option("-o", "--output")]`` Typer stores the first name as the default.
    raw = [info.default] if isinstance(info.default, str) else []
    raw += list(info.param_decls or ())
    return tuple(part for d in raw for part in d.split("/") if part)


def command_params(command: str) -> list[Param]:
    """The parameters of ``kraken <command>`` in signature order."""
    info = COMMAND_INFOS[command]
    assert info.callback is not None
    hints = typing.get_type_hints(info.callback, include_extras=True)
    params = []
    for name, hint in hints.items():
        if name == "return" or hint is typer.Context:  # the Click context typer injects, not an option
            continue
        metas = [m for m in getattr(hint, "__metadata__", ()) if isinstance(m, (OptionInfo, ArgumentInfo))]
        assert metas, f"kraken {command}: parameter {name!r} is not declared with Annotated[..., typer.Option/Argument]"
        params.append(Param(command, name, metas[0], _strip_optional(typing.get_args(hint)[0]), _decls(metas[0])))
    return params


COMMAND_INFOS = {c.name: c for c in app.registered_commands if c.name}
COMMANDS = sorted(COMMAND_INFOS)
#: Every command's parameters, computed once.
PARAMS = {cmd: command_params(cmd) for cmd in COMMANDS}


def options_by_long_name() -> dict[str, list[Param]]:
    by_name: dict[str, list[Param]] = defaultdict(list)
    for params in PARAMS.values():
        for p in params:
            if p.is_option:
                by_name[p.long].append(p)
    return dict(by_name)


BY_NAME = options_by_long_name()
SHARED = sorted(name for name, ps in BY_NAME.items() if len(ps) > 1)

#: Long names that DESIGN section 3 gives a per-command meaning. Each keeps one short flag; its help
#: and type may differ. An entry that stops being needed fails ``test_exemptions_are_still_needed``.
PER_COMMAND_MEANING = {
    "--output": "where the command writes: a TEMPLATE (run), a PREFIX (train), a FILE (merge, adapt, connectivity)",
    "--paths": "train selects the paths to train (SCFC, A->B, ...); describe lists the trained paths",
}

#: Commands that compute (models on a device) and so take --device (DESIGN 3: "where compute happens").
COMPUTE_COMMANDS = {"run", "train", "adapt"}
#: Every other command, with the reason it has no --device. A new command must be put in one of the two.
NO_DEVICE = {
    "merge": "combines state dicts; nothing runs on a device",
    "describe": "reads checkpoint metadata without building the model",
    "fetch": "downloads files",
    "example": "the offline demo always runs on CPU (kraken_cli.engine.example passes device='cpu')",
    "connectivity": "float64 LAPACK eigendecompositions and inverses in numpy, batched over subjects, on the CPU "
                    "(what reproduces the original to 1e-6)",
}
#: Values ``--format`` may take: file formats only, never the style of a report (DESIGN 3).
#: ``bids`` is a file layout too: a BIDS derivatives folder of relmat TSVs and JSON sidecars.
FILE_FORMATS = {"mat", "mat73", "npz", "npy", "h5", "hdf5", "csv", "tsv", "json", "png", "pdf", "svg", "bids"}
KEBAB = re.compile(r"--[a-z0-9]+(-[a-z0-9]+)*")


def _differ(ps: list[Param], what: str) -> dict[str, list[str]]:
    seen: dict[str, list[str]] = defaultdict(list)
    for p in ps:
        seen[repr(getattr(p, what))].append(p.command)
    return dict(seen)


def test_app_has_the_designed_commands() -> None:
    assert set(COMMANDS) == {"run", "train", "merge", "describe", "fetch", "adapt", "example", "connectivity"}


@pytest.mark.parametrize("long_name", [n for n in SHARED if n not in PER_COMMAND_MEANING])
def test_shared_option_means_one_thing(long_name: str) -> None:
    ps = BY_NAME[long_name]
    for what in ("shorts", "help", "type", "secondary"):
        seen = _differ(ps, what)
        assert len(seen) == 1, (f"{long_name} has a different {what} on different commands: {seen}; "
                                "define it once in kraken_cli/cli/_options.py and reuse the alias")


@pytest.mark.parametrize("long_name", [n for n in SHARED if n not in PER_COMMAND_MEANING])
def test_shared_option_is_declared_once(long_name: str) -> None:
    """Reusing one ``Annotated`` alias means every command holds the very same OptionInfo."""
    infos = {id(p.info): p.command for p in BY_NAME[long_name]}
    assert len(infos) == 1, (f"{long_name} is declared separately on {sorted(infos.values())}; "
                             "move it to kraken_cli/cli/_options.py as a shared Annotated alias")


@pytest.mark.parametrize("long_name", sorted(PER_COMMAND_MEANING))
def test_per_command_options_keep_their_short_flag(long_name: str) -> None:
    seen = _differ(BY_NAME.get(long_name, []), "shorts")
    assert len(seen) == 1, f"{long_name} has different short flags: {seen}"


@pytest.mark.parametrize("long_name", sorted(PER_COMMAND_MEANING))
def test_exemptions_are_still_needed(long_name: str) -> None:
    ps = BY_NAME.get(long_name, [])
    assert len(ps) > 1 and (len(_differ(ps, "help")) > 1 or len(_differ(ps, "type")) > 1), (
        f"{long_name} is now consistent (or used once): drop it from PER_COMMAND_MEANING")


def test_a_short_flag_always_stands_for_the_same_long_name() -> None:
    longs: dict[str, set[str]] = defaultdict(set)
    for params in PARAMS.values():
        for p in params:
            for s in p.shorts:
                longs[s].add(p.long)
    assert {s: ls for s, ls in longs.items() if len(ls) > 1} == {}


@pytest.mark.parametrize("command", COMMANDS)
def test_common_options_on_every_command(command: str) -> None:
    by_long = {p.long: p for p in PARAMS[command] if p.is_option}
    for long_name, shorts, alias in (("--verbose", ("-v",), _options.VerboseOpt),
                                     ("--quiet", ("-q",), _options.QuietOpt),
                                     ("--json", (), _options.JsonOpt)):
        assert long_name in by_long, f"kraken {command} lacks {long_name}"
        assert by_long[long_name].shorts == shorts, f"kraken {command}: {long_name} short flags"
        assert by_long[long_name].info is alias.__metadata__[0], (
            f"kraken {command}: {long_name} must reuse _options.{alias!r}")


@pytest.mark.parametrize("command", COMMANDS)
def test_device_where_compute_happens(command: str) -> None:
    assert (command in COMPUTE_COMMANDS) != (command in NO_DEVICE), (
        f"classify kraken {command} in COMPUTE_COMMANDS or NO_DEVICE")
    device = next((p for p in PARAMS[command] if p.long == "--device"), None)
    if command in COMPUTE_COMMANDS:
        assert device is not None, f"kraken {command} computes but has no --device"
        assert device.info is _options.DeviceOpt.__metadata__[0]
        assert set(typing.get_args(device.type)) == {"auto", "cpu", "cuda"}
    else:
        assert device is None, f"kraken {command} has --device: move it to COMPUTE_COMMANDS"


def test_format_is_only_a_file_format() -> None:
    for p in BY_NAME.get("--format", []):
        assert typing.get_origin(p.type) is Literal, f"kraken {p.command}: --format is free text"
        values = {str(v) for v in typing.get_args(p.type)}
        assert values <= FILE_FORMATS, f"kraken {p.command}: --format takes {values - FILE_FORMATS}, not file formats"
        assert "file format" in p.help.lower()


def test_no_report_style_option_under_another_name() -> None:
    """The report style is --json / -q, never an option such as --output-format or --style.

    ``--report FILE.html`` (issue 17) is allowed because it names an output file, not a style of what is
    printed: it must take a path, with the HTML metavar, on every command that has it.
    """
    names = {p.long for ps in PARAMS.values() for p in ps if p.is_option}
    assert not names & {"--output-format", "--style", "--fmt", "--report-format"}
    report = [p for ps in PARAMS.values() for p in ps if p.is_option and p.long == "--report"]
    assert report and all(p.type is Path and p.info.metavar == "HTML" for p in report)


@pytest.mark.parametrize("command", COMMANDS)
def test_names_are_kebab_case(command: str) -> None:
    for p in PARAMS[command]:
        if not p.is_option:
            continue
        for d in p.decls:
            assert KEBAB.fullmatch(d) or re.fullmatch(r"-[a-zA-Z]", d), f"kraken {command}: {d!r} is not kebab-case"


@pytest.mark.parametrize("command", COMMANDS)
def test_negative_flags_are_no_x(command: str) -> None:
    for p in PARAMS[command]:
        for neg in p.secondary:
            assert p.type is bool and neg == "--no-" + p.long.removeprefix("--"), (
                f"kraken {command}: {p.long}/{neg} should be --x/--no-x")
