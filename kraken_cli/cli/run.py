"""``kraken run``: predict connectomes and latents from a checkpoint."""

from __future__ import annotations

from typing import Any

import typer

from ._common import ReportStyle, with_report_style
from ._errors import reporting_errors
from ._options import (
    AdaptModeOpt,
    CacheDirOpt,
    CheckpointOpt,
    DeviceOpt,
    EdgeOrderOpt,
    FormatOpt,
    HeatmapOpt,
    ImputeMissingOpt,
    InputOpt,
    ParticipantLabelOpt,
    ReportOpt,
    SplitFileOpt,
    SplitOpt,
    SubjectsOpt,
    TransformOpt,
    model_and_data,
)
from ._run_options import (
    DEFAULT,
    AdapterOpt,
    AdaptSourceOpt,
    BidsAppOpt,
    ChunkSizeOpt,
    DemeanOpt,
    EvaluateOpt,
    FusionIncludeOpt,
    FusionNoatlasOpt,
    FusionNormOpt,
    FusionNoselfOpt,
    FusionOpt,
    MetricsCsvOpt,
    OnlyFusionOpt,
    OutputsOpt,
    OutputTemplateOpt,
    QcLatentsOpt,
    QcOpt,
    SquareOpt,
)


@with_report_style
def run_command(
    ctx: typer.Context,
    inputs: InputOpt = [],  # noqa: B006  (typer needs a literal default)
    checkpoint: CheckpointOpt = [],  # noqa: B006
    transform: TransformOpt = [],  # noqa: B006
    adapt: AdaptModeOpt = DEFAULT["adapt"],
    adapt_source: AdaptSourceOpt = [],  # noqa: B006
    adapter: AdapterOpt = DEFAULT["adapter"],
    fusion: FusionOpt = DEFAULT["fusion"],
    fusion_include: FusionIncludeOpt = [],  # noqa: B006
    fusion_noself: FusionNoselfOpt = DEFAULT["fusion_noself"],
    fusion_noatlas: FusionNoatlasOpt = DEFAULT["fusion_noatlas"],
    fusion_norm: FusionNormOpt = DEFAULT["fusion_norm"],
    only_fusion: OnlyFusionOpt = DEFAULT["only_fusion"],
    outputs: OutputsOpt = [],  # noqa: B006
    output: OutputTemplateOpt = DEFAULT["output"],
    square: SquareOpt = DEFAULT["square"],
    fmt: FormatOpt = DEFAULT["fmt"],
    edge_order: EdgeOrderOpt = DEFAULT["edge_order"],
    impute_missing: ImputeMissingOpt = DEFAULT["impute_missing"],
    participant_label: ParticipantLabelOpt = [],  # noqa: B006
    bids: BidsAppOpt = None,
    evaluate: EvaluateOpt = DEFAULT["evaluate"],
    metrics_csv: MetricsCsvOpt = DEFAULT["metrics_csv"],
    heatmap: HeatmapOpt = DEFAULT["heatmap"],
    qc: QcOpt = DEFAULT["qc"],
    qc_latents: QcLatentsOpt = DEFAULT["qc_latents"],
    report: ReportOpt = DEFAULT["report"],
    subjects: SubjectsOpt = DEFAULT["subjects"],
    split_file: SplitFileOpt = DEFAULT["split_file"],
    split: SplitOpt = DEFAULT["split"],
    demean: DemeanOpt = DEFAULT["demean"],
    chunk_size: ChunkSizeOpt = DEFAULT["chunk_size"],
    cache_dir: CacheDirOpt = DEFAULT["cache_dir"],
    device: DeviceOpt = DEFAULT["device"],
    *,
    style: ReportStyle,
) -> None:
    """Predict connectomes of every flavor (and latents) from your inputs.

    Examples:

        kraken run -c model.pt -t model_ioxfm.npy -i FCcorr_fs86_hpf=fc.mat --fusion -o 'out/{input}.mat'

        kraken run -i data.zip --fusion --only-fusion --outputs encoded -o latents.mat

        kraken run -i data.zip --fusion --evaluate --qc --report report.html
    """
    with reporting_errors(as_json=style.as_json, interrupted=_INTERRUPTED):
        from kraken_cli.engine.pipelines.predict import predict

        from ._progress import make_progress

        result = predict(_run_config(ctx.params), progress=make_progress(style.quiet, style.as_json))
    from ._render import render_run

    style.show(json=result.to_dict, quiet=lambda: result.files, tables=lambda: render_run(result))


_INTERRUPTED = ("This run wrote no output: its files appear together at the end, and files from earlier runs are "
                "unchanged.")


def _run_config(p: dict[str, Any]) -> Any:
    """The engine's PredictConfig from the parsed options (usage errors raised here, before any input is read)."""
    from kraken_cli.engine.fusion import parse_fusion_include
    from kraken_cli.engine.pipelines.configs import PredictConfig, PredictOptions

    if (p["metrics_csv"] or p["heatmap"]) and not p["evaluate"]:
        raise typer.BadParameter("--metrics-csv and --heatmap need --evaluate")
    output, fmt, bids = p["output"], p["fmt"], p["bids"]
    if bids is not None:
        if output is not None or (fmt is not None and fmt != "bids"):
            raise typer.BadParameter("--bids DERIV_DIR OUTDIR names the output: drop -o and --format")
        output, fmt = bids[1], "bids"
    include = p["fusion_include"]
    options = PredictOptions(
        outputs=tuple(p["outputs"]) or ("all",), fusion=p["fusion"] or bool(include),
        fusion_include=parse_fusion_include(include) if include else None, fusion_noself=p["fusion_noself"],
        fusion_noatlas=p["fusion_noatlas"], fusion_norm=p["fusion_norm"], only_fusion=p["only_fusion"],
        adapt=p["adapt"], chunk_size=p["chunk_size"])

    def text(key: str) -> str | None:
        return str(p[key]) if p[key] else None

    return PredictConfig(
        **model_and_data(p), options=options, output=output, square=p["square"], fmt=fmt,
        adapter=text("adapter"), adapt_source=tuple(p["adapt_source"]), split_file=text("split_file"),
        split=p["split"], evaluate=p["evaluate"], metrics_csv=text("metrics_csv"), heatmap=text("heatmap"),
        demean=p["demean"], participant_labels=tuple(p["participant_label"]),
        bids_dir=bids[0] if bids is not None else None, qc=p["qc"], qc_latents=text("qc_latents"),
        report=text("report"))

