"""``kraken adapt``: fit a domain adaptation on a reference cohort and save it as an adapter file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from . import _complete
from ._console import out, print_json, print_path
from ._errors import reporting_errors, setup_logging
from ._options import (
    CacheDirOpt,
    CheckpointOpt,
    Device,
    DeviceOpt,
    EdgeOrder,
    EdgeOrderOpt,
    ImputeMissing,
    ImputeMissingOpt,
    InputOpt,
    JsonOpt,
    QuietOpt,
    SubjectsOpt,
    TransformOpt,
    VerboseOpt,
    cache_dir_for,
)


def adapt_command(
    inputs: InputOpt = [],  # noqa: B006
    output: Annotated[Path, typer.Option("-o", "--output", help="Adapter file to write (JSON).")] = Path("adapter.json"),
    mode: Annotated[str, typer.Option("--mode", metavar="meanshift|meanfit|meanfit+meanshift",
                                      help="Adaptation to fit.", autocompletion=_complete.complete_adapt_mode)] = "meanfit+meanshift",
    checkpoint: CheckpointOpt = [],  # noqa: B006
    transform: TransformOpt = [],  # noqa: B006
    cache_dir: CacheDirOpt = None,
    subjects: SubjectsOpt = None,
    edge_order: EdgeOrderOpt = EdgeOrder.triu,
    impute_missing: ImputeMissingOpt = ImputeMissing.none,
    device: DeviceOpt = Device.cpu,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Fit a domain adaptation on reference subjects and save it; apply it with `kraken run --adapter`.

    Examples:

        kraken adapt -c model.pt -t model_ioxfm.npy -i FCcorr_fs86_hpf=site_b.mat --subjects controls.txt -o siteB.json

        kraken run -c model.pt -t model_ioxfm.npy -i FCcorr_fs86_hpf=new_subject.mat --adapter siteB.json -o out.mat
    """
    setup_logging(verbose, quiet)
    with reporting_errors(as_json=as_json):
        from kraken_cli.engine.pipelines.adapt import AdaptConfig, fit_adapter

        result = fit_adapter(AdaptConfig(
            inputs=tuple(inputs), output=str(output), mode=mode, checkpoints=tuple(checkpoint),
            transforms=tuple(transform), subjects=subjects, device=device.value,
            cache_dir=cache_dir_for(cache_dir), edge_order=edge_order.value,
            impute_missing=impute_missing.value))
    if as_json:
        print_json(result.to_dict())
    elif quiet:
        print_path(result.file)
    else:
        from ._render import table

        table(f"Adaptation fitted on {result.n_subjects} subjects", ["flavor", "mode", "slope", "intercept", "fit R²"],
              [(a["flavor"], a["mode"], f"{a['slope']:.4g}", f"{a['intercept']:.4g}", f"{a['fit_r2']:.3f}")
               for a in result.flavors])
        out.print(f"Written: {result.file}", highlight=False)
