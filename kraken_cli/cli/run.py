"""``kraken run``: predict connectomes and latents from a checkpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import _complete
from ._console import err, print_json, print_path
from ._errors import reporting_errors, setup_logging
from ._options import (AdaptModeOpt, CacheDirOpt, CheckpointOpt, Device, DeviceOpt, EdgeOrder, EdgeOrderOpt,
                       FormatOpt, HeatmapOpt, ImputeMissing, ImputeMissingOpt, InputOpt, JsonOpt,
                       OutFormat, ParticipantLabelOpt, QuietOpt, SplitFileOpt, SplitOpt, SubjectsOpt, TransformOpt, VerboseOpt)
from ._options import cache_dir_for


def run_command(
    inputs: InputOpt = [],  # noqa: B006  (typer needs a literal default)
    checkpoint: CheckpointOpt = [],  # noqa: B006
    transform: TransformOpt = [],  # noqa: B006
    adapt: AdaptModeOpt = "none",
    adapt_source: Annotated[list[str], typer.Option("--adapt-source", metavar="FLAVOR=PATH",
                                                    help="Fit --adapt on this data's mean instead of the inputs'.")] = [],  # noqa: B006
    adapter: Annotated[Optional[Path], typer.Option("--adapter", help="Apply a saved adapter file (from kraken adapt).")] = None,
    fusion: Annotated[bool, typer.Option("--fusion", help="Also predict from fused latents (mean over inputs).")] = False,
    fusion_include: Annotated[list[str], typer.Option("--fusion-include", metavar="NAME=SEL[,SEL...]",
                                                      help="Fusion group: SEL is all, SC, FC or flavor names (repeatable).")] = [],  # noqa: B006
    fusion_noself: Annotated[bool, typer.Option("--fusion-noself", help="Add NAME.noself groups that leave out the target flavor.")] = False,
    fusion_noatlas: Annotated[bool, typer.Option("--fusion-noatlas", help="Add NAME.noatlas groups that leave out the target's atlas.")] = False,
    fusion_norm: Annotated[bool, typer.Option("--fusion-norm", help="L2-normalise fused latents (the published model does not).")] = False,
    only_fusion: Annotated[bool, typer.Option("--only-fusion", help="Write predictions from fusion groups only.")] = False,
    outputs: Annotated[list[str], typer.Option("--outputs", metavar="all|encoded|FLAVOR",
                                               help="What to predict (repeatable): all flavors, the latent, or flavors.",
                                               autocompletion=_complete.complete_flavor)] = [],  # noqa: B006
    output: Annotated[Optional[str], typer.Option("-o", "--output", metavar="TEMPLATE",
                                                  help="Output file; {input} and {output} make one file per input/output.")] = None,
    square: Annotated[bool, typer.Option("--square", help="Write R x R matrices (NaN diagonal) instead of edge vectors.")] = False,
    fmt: FormatOpt = None,
    edge_order: EdgeOrderOpt = EdgeOrder.triu,
    impute_missing: ImputeMissingOpt = ImputeMissing.none,
    participant_label: ParticipantLabelOpt = [],  # noqa: B006
    bids: Annotated[Optional[tuple[str, str]], typer.Option(
        "--bids", metavar="DERIV_DIR OUTDIR",
        help="BIDS App mode: read the XCP-D / QSIRecon / kraken outputs found in DERIV_DIR (-i FLAVOR=SELECTOR "
             "names the others) and write BIDS derivatives to OUTDIR.")] = None,
    evaluate: Annotated[bool, typer.Option("--evaluate", help="Score predictions against inputs of the same flavor (needed by --metrics-csv and --heatmap).")] = False,
    metrics_csv: Annotated[Optional[Path], typer.Option("--metrics-csv", help="Write --evaluate metrics to this CSV.")] = None,
    heatmap: HeatmapOpt = None,
    subjects: SubjectsOpt = None,
    split_file: SplitFileOpt = None,
    split: SplitOpt = None,
    demean: Annotated[str, typer.Option("--demean", metavar="test|train",
                                        help="Mean removed for the demeaned correlation: evaluated truth's or training's.")] = "test",
    chunk_size: Annotated[int, typer.Option("--chunk-size", min=1, help="Subjects per chunk (bounds memory).")] = 256,
    cache_dir: CacheDirOpt = None,
    device: DeviceOpt = Device.auto,
    verbose: VerboseOpt = False,
    quiet: QuietOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Predict connectomes of every flavor (and latents) from your inputs.

    Examples:

        kraken run -c model.pt -t model_ioxfm.npy -i FCcorr_fs86_hpf=fc.mat --fusion -o 'out/{input}.mat'

        kraken run -i data.zip --fusion --only-fusion --outputs encoded -o latents.mat
    """
    setup_logging(verbose, quiet)
    with reporting_errors(as_json=as_json, interrupted="This run wrote no output: its files appear together at "
                          "the end, and files from earlier runs are unchanged."):
        from kraken_cli.engine.fusion import parse_fusion_include
        from kraken_cli.engine.predict import RunOptions
        from kraken_cli.engine.run import RunConfig, run

        from ._progress import make_progress

        if (metrics_csv or heatmap) and not evaluate:
            raise typer.BadParameter("--metrics-csv and --heatmap need --evaluate")
        if bids is not None:
            if output is not None or (fmt is not None and fmt.value != "bids"):
                raise typer.BadParameter("--bids DERIV_DIR OUTDIR names the output: drop -o and --format")
            output, fmt = bids[1], OutFormat.bids
        options = RunOptions(
            outputs=tuple(outputs) or ("all",), fusion=fusion or bool(fusion_include),
            fusion_include=parse_fusion_include(fusion_include) if fusion_include else None,
            fusion_noself=fusion_noself, fusion_noatlas=fusion_noatlas, fusion_norm=fusion_norm,
            only_fusion=only_fusion, adapt=adapt, chunk_size=chunk_size)
        config = RunConfig(
            inputs=tuple(inputs), checkpoints=tuple(checkpoint), transforms=tuple(transform), options=options,
            output=output, square=square, fmt=fmt.value if fmt else None, adapter=str(adapter) if adapter else None,
            adapt_source=tuple(adapt_source), subjects=subjects, split_file=str(split_file) if split_file else None,
            split=split, evaluate=evaluate, metrics_csv=str(metrics_csv) if metrics_csv else None,
            heatmap=str(heatmap) if heatmap else None, demean=demean, device=device.value,
            cache_dir=cache_dir_for(cache_dir), edge_order=edge_order.value,
            impute_missing=impute_missing.value, participant_labels=tuple(participant_label),
            bids_dir=bids[0] if bids is not None else None)
        result = run(config, progress=make_progress(quiet, as_json))
    from ._render import render_run

    if as_json:
        print_json(result_to_json(result))
    elif not quiet:
        render_run(result)
    else:
        for f in result.files:
            print_path(f)


def result_to_json(result: object) -> dict[str, object]:
    from dataclasses import asdict

    d = asdict(result)  # type: ignore[call-overload]
    d["files"] = [str(f) for f in d["files"]]
    return d


_ = err
