"""The ``kraken`` command line: Typer + rich over :mod:`kraken_cli.engine`. Presentation only."""
