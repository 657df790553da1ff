"""``kraken merge``: combine the flavors of several checkpoints into one model."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from ._common import ReportStyle, with_report_style
from ._console import out
from ._errors import reporting_errors


@with_report_style
def merge_command(
    checkpoints: Annotated[list[Path], typer.Argument(metavar="CKPT", help="Checkpoint .pt files to merge (two or more).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Merged checkpoint to write.")],
    prefer: Annotated[Optional[Path], typer.Option("--prefer", help="On a flavor-name collision, keep this checkpoint's flavor.")] = None,
    canonical: Annotated[bool, typer.Option("--canonical", help="Canonicalize flavor names before merging.")] = False,
    *,
    style: ReportStyle,
) -> None:
    """Merge encoders and decoders of checkpoints that share a latent space.

    Examples:

        kraken merge model.pt newflavor_model.pt -o merged.pt
    """
    with reporting_errors(as_json=style.as_json):
        from kraken_cli.engine.merge import merge_to_file

        merged = merge_to_file(checkpoints, output, prefer=str(prefer) if prefer else None, canonical=canonical)
    style.show(json=merged.to_dict, quiet=lambda: [output], tables=lambda: _tables(merged, output))


def _tables(merged: Any, output: Path) -> None:
    from ._render import table

    table(f"Merged {len(merged.flavors)} flavors", ["#", "flavor", "from"],
          [(i + 1, f, s) for i, (f, s) in enumerate(zip(merged.flavors, merged.sources))])
    out.print(f"{len(merged.trained_paths)} trained paths of {len(merged.flavors) ** 2}. Written: {output}",
              highlight=False)
