"""The ``kraken`` Typer app: registers one module per subcommand."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from kraken_cli import __version__

app = typer.Typer(
    name="kraken",
    help="Translate brain connectomes between structural and functional flavors with Krakencoder models.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_show_locals=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"kraken {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[Optional[bool], typer.Option("--version", callback=_version, is_eager=True,
                                                    help="Show the version and exit.")] = None,
) -> None:
    """kraken: run, train, merge, describe, fetch and adapt Krakencoder models."""


def _register() -> None:
    """One module per subcommand, each a thin layer over one engine call; registered here, in help order."""
    from . import adapt, connectivity, describe, example, fetch, merge, run, train

    app.command("run")(run.run_command)
    app.command("train")(train.train_command)
    app.command("merge")(merge.merge_command)
    app.command("describe")(describe.describe_command)
    app.command("fetch")(fetch.fetch_command)
    app.command("adapt")(adapt.adapt_command)
    app.command("connectivity")(connectivity.connectivity_command)
    app.command("example")(example.example_command)


def _terminate(signum: int, frame: object) -> None:
    # SIGTERM (kill, job schedulers, torchrun's agent) unwinds like Ctrl-C: temporary files are
    # removed and no output is left half-written.
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    """Console-script entry point."""
    import signal

    signal.signal(signal.SIGTERM, _terminate)
    try:
        app()
    finally:
        _before_exit()


def _before_exit() -> None:
    """The command is done: exempt its objects from the garbage collector's passes at interpreter exit
    (``gc.freeze``), which spent 0.4-0.5 s of every command that imported torch walking objects that the
    process's exit frees anyway. Finalizers and ``atexit`` handlers run as before."""
    import gc

    gc.freeze()


_register()
