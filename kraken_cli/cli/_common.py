"""The options every command has (``-v/--verbose``, ``-q/--quiet``, ``--json``), added by one decorator.

A command declares a keyword-only ``style: ReportStyle`` instead of the three options and is wrapped in
:func:`with_report_style`, which puts the options last in the signature Typer reads (so last in ``--help``),
routes logging by them, and hands the command their values; :meth:`ReportStyle.show` prints the result
the way they ask::

    @with_report_style
    def merge_command(checkpoints: ..., output: ..., *, style: ReportStyle) -> None:
        with reporting_errors(as_json=style.as_json):
            merged = merge_to_file(...)
        style.show(json=merged.to_dict, quiet=lambda: [output], tables=lambda: _tables(merged, output))
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ._console import print_json, print_path
from ._errors import setup_logging
from ._options import JsonOpt, QuietOpt, VerboseOpt


@dataclass(frozen=True)
class ReportStyle:
    """How a command reports: the values of its ``-v``, ``-q`` and ``--json``."""

    verbose: bool = False
    quiet: bool = False
    as_json: bool = False

    def show(self, *, json: Callable[[], object], quiet: Callable[[], Iterable[object]],
             tables: Callable[[], None]) -> None:
        """Print a command's result on stdout the way the user asked; only the way asked for is evaluated.

        ``--json``: what ``json()`` returns, as JSON; ``-q``: what ``quiet()`` lists (the files written, for
        scripts), one per line as it is; else ``tables()``, the view for people.
        """
        if self.as_json:
            print_json(json())
        elif self.quiet:
            for line in quiet():
                print_path(line)
        else:
            tables()


#: The parameters :func:`with_report_style` adds, in ``--help`` order.
_REPORT_OPTIONS = tuple(
    inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=False, annotation=alias)
    for name, alias in (("verbose", VerboseOpt), ("quiet", QuietOpt), ("as_json", JsonOpt)))


def with_report_style(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with the options ``-v``, ``-q`` and ``--json`` in place of its ``style`` parameter.

    The wrapper sets up logging (:func:`~._errors.setup_logging`) before the command runs.
    """
    signature = inspect.signature(command, eval_str=True)  # Typer reads this one, so annotations evaluated
    own = [p for p in signature.parameters.values() if p.name != "style"]

    @functools.wraps(command)
    def wrapper(*args: Any, verbose: bool = False, quiet: bool = False, as_json: bool = False, **kwargs: Any) -> None:
        setup_logging(verbose, quiet)
        command(*args, style=ReportStyle(verbose=verbose, quiet=quiet, as_json=as_json), **kwargs)

    wrapper.__signature__ = signature.replace(parameters=[*own, *_REPORT_OPTIONS])  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in [*own, *_REPORT_OPTIONS]}
    wrapper.__annotations__["return"] = signature.return_annotation
    return wrapper
