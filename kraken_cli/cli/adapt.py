"""``kraken adapt``: fit a domain adaptation on a reference cohort and save it as an adapter file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from kraken_cli.engine.pipelines.configs import AdaptConfig, field_defaults

from . import _complete
from ._common import ReportStyle, with_report_style
from ._console import out
from ._declare import with_options
from ._errors import reporting_errors
from ._options import (
    CacheDirOpt,
    CheckpointOpt,
    DeviceOpt,
    EdgeOrderOpt,
    ImputeMissingOpt,
    InputOpt,
    SubjectsOpt,
    TransformOpt,
    model_and_data,
)

DEFAULT = {**field_defaults(AdaptConfig), "output": Path("adapter.json")}  # the engine's defaults, shown by --help

AdapterFileOpt = Annotated[Path, typer.Option("-o", "--output", help="Adapter file to write (JSON).")]
ModeOpt = Annotated[str, typer.Option("--mode", metavar="meanshift|meanfit|meanfit+meanshift", help="Adaptation to fit.",
                                      autocompletion=_complete.complete_adapt_mode)]


@with_report_style
@with_options(DEFAULT, inputs=InputOpt, output=AdapterFileOpt, mode=ModeOpt, checkpoint=CheckpointOpt,
              transform=TransformOpt, cache_dir=CacheDirOpt, subjects=SubjectsOpt, edge_order=EdgeOrderOpt,
              impute_missing=ImputeMissingOpt, device=DeviceOpt)
def adapt_command(ctx: typer.Context, *, style: ReportStyle) -> None:
    """Fit a domain adaptation on reference subjects and save it; apply it with `kraken run --adapter`.

    Examples:

        kraken adapt -c model.pt -t model_ioxfm.npy -i FCcorr_fs86_hpf=site_b.mat --subjects controls.txt -o siteB.json

        kraken run -c model.pt -t model_ioxfm.npy -i FCcorr_fs86_hpf=new_subject.mat --adapter siteB.json -o out.mat
    """
    with reporting_errors(as_json=style.as_json):
        from kraken_cli.engine.pipelines.adapt import fit_adapter

        p = ctx.params
        result = fit_adapter(AdaptConfig(**model_and_data(p), output=str(p["output"]), mode=p["mode"]))
    style.show(json=result.to_dict, quiet=lambda: [result.file], tables=lambda: _tables(result))


def _tables(result: Any) -> None:
    from ._render import table

    table(f"Adaptation fitted on {result.n_subjects} subjects", ["flavor", "mode", "slope", "intercept", "fit R²"],
          [(a["flavor"], a["mode"], f"{a['slope']:.4g}", f"{a['intercept']:.4g}", f"{a['fit_r2']:.3f}")
           for a in result.flavors])
    out.print(f"Written: {result.file}", highlight=False)
