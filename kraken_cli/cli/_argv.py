"""The command line a user typed, rebuilt from the arguments Click parsed (never the host's ``sys.argv``).

Runs record it in logs, configs and checkpoints. Under ``python -m pytest``, a notebook or
``CliRunner`` the process arguments belong to someone else; the parsed parameters do not.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

import typer

#: Where a value came from when the user gave it (Click's ``ParameterSource`` names; typer vendors Click).
_GIVEN = {"COMMANDLINE", "ENVIRONMENT", "PROMPT"}


def command_line(ctx: typer.Context, prog: str = "kraken") -> list[str]:
    """``[prog, subcommand, options..., arguments...]`` for the command being run, defaults left out."""
    words = [prog, *_subcommands(ctx)]
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.name else None
        if source is None or source.name not in _GIVEN:
            continue
        words += _render(param, ctx.params.get(param.name))
    return words


def given_params(ctx: typer.Context) -> set[str]:
    """Names of the parameters the user gave (on the command line or through the environment)."""
    out = set()
    for param in ctx.command.params:
        source = ctx.get_parameter_source(param.name) if param.name else None
        if source is not None and source.name in _GIVEN:
            out.add(str(param.name))
    return out


def _subcommands(ctx: Any) -> list[str]:
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return names[::-1]


def _render(param: Any, value: Any) -> list[str]:
    if param.param_type_name == "argument":
        return [_word(v) for v in _values(value)]
    if param.is_flag and not param.count:
        if value:
            return [_long(param.opts)]
        return [_long(param.secondary_opts)] if param.secondary_opts else []
    if param.count:
        return [param.opts[0]] * int(value or 0)
    opt = _long(param.opts)
    out: list[str] = []
    for v in (value if param.multiple else [value]):
        if v is None:
            continue
        out += [opt, *(_word(x) for x in _values(v))] if param.nargs != 1 else [opt, _word(v)]
    return out


def _long(opts: list[str]) -> str:
    """The long spelling of an option (``--input`` over ``-i``): a log should be readable."""
    return max(opts, key=len)


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _word(v: Any) -> str:
    return str(v.value) if isinstance(v, Enum) else str(v)
