"""``kraken merge``: combine the flavors of several checkpoints into one model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ._console import out, print_json, print_path
from ._errors import reporting_errors, setup_logging
from ._options import JsonOpt, QuietOpt, VerboseOpt


def merge_command(
    checkpoints: Annotated[list[Path], typer.Argument(metavar="CKPT", help="Checkpoint .pt files to merge (two or more).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Merged checkpoint to write.")],
    prefer: Annotated[Optional[Path], typer.Option("--prefer", help="On a flavor-name collision, keep this checkpoint's flavor.")] = None,
    canonical: Annotated[bool, typer.Option("--canonical", help="Canonicalize flavor names before merging.")] = False,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Merge encoders and decoders of checkpoints that share a latent space.

    Examples:

        kraken merge model.pt newflavor_model.pt -o merged.pt
    """
    setup_logging(verbose, quiet)
    with reporting_errors(as_json=as_json):
        from kraken_cli.engine.merge import merge_to_file

        merged = merge_to_file(checkpoints, output, prefer=str(prefer) if prefer else None, canonical=canonical)
    if as_json:
        print_json(merged.to_dict())
        return
    if not quiet:
        from ._render import table

        table(f"Merged {len(merged.flavors)} flavors", ["#", "flavor", "from"],
              [(i + 1, f, s) for i, (f, s) in enumerate(zip(merged.flavors, merged.sources))])
        out.print(f"{len(merged.trained_paths)} trained paths of {len(merged.flavors) ** 2}. Written: {output}",
                  highlight=False)
    else:
        print_path(output)
