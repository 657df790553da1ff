"""Declare a command's options as one list of aliases, with the engine's defaults.

``kraken run``, ``train`` and ``adapt`` build an engine config from ``ctx.params``, so their options
are declarations for Typer and nothing else. Written as signature lines (``fusion: FusionOpt =
DEFAULT["fusion"]``) each option's name stood three times and its default was one more thing to
keep equal to the engine's. :func:`with_options` takes the list instead, in ``--help`` order::

    @with_report_style
    @with_options(DEFAULT, inputs=InputOpt, checkpoint=CheckpointOpt, fusion=FusionOpt, ...)
    def run_command(ctx: typer.Context, *, style: ReportStyle) -> None:
        config = _run_config(ctx.params)

and gives Typer the signature it reads: one keyword-only parameter per option, annotated with its
alias (so the options-consistency test sees the very same ``OptionInfo`` as before), its default
taken from ``defaults`` under the same name (the engine config's field defaults), or ``()`` for a
repeatable option the engine names differently (``--checkpoint`` fills ``checkpoints``). An option
with neither fails at import, so ``--help`` can never show a default the engine does not use.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

Command = TypeVar("Command", bound=Callable[..., None])


def with_options(defaults: Mapping[str, Any], /, **aliases: Any) -> Callable[[Command], Command]:
    """The command with ``aliases`` (``name=XOpt``, in ``--help`` order) as its options.

    The command keeps its own parameters (``ctx`` first, keyword-only ones such as ``style`` last) and
    reads the options' values from ``ctx.params``; they are not passed to it.
    """
    options = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=alias,
                                 default=_default(name, alias, defaults)) for name, alias in aliases.items()]

    def declare(command: Command) -> Command:
        signature = inspect.signature(command, eval_str=True)  # Typer reads this one, so annotations evaluated
        own = list(signature.parameters.values())
        positional = [p for p in own if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        keyword = [p for p in own if p.kind is inspect.Parameter.KEYWORD_ONLY]
        clash = sorted(set(aliases) & {p.name for p in own})
        if clash:
            raise TypeError(f"{command.__name__}: {clash} declared both as options and as parameters")

        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            command(*args, **{k: v for k, v in kwargs.items() if k not in aliases})

        parameters = [*positional, *options, *keyword]
        wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
        wrapper.__annotations__["return"] = signature.return_annotation
        return typing.cast(Command, wrapper)

    return declare


def _default(name: str, alias: Any, defaults: Mapping[str, Any]) -> Any:
    if name in defaults:
        return defaults[name]
    if typing.get_origin(typing.get_args(alias)[0]) is list:
        return ()  # a repeatable option given no value: none
    raise TypeError(f"option {name!r} has no default: add it to the engine config (or to the command's defaults)")
