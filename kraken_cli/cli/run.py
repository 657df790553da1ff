"""``kraken run``: predict connectomes and latents from a checkpoint."""

from __future__ import annotations

from typing import Any

import typer

from . import _options as shared
from . import _run_options as own
from ._common import ReportStyle, with_report_style
from ._declare import with_options
from ._errors import reporting_errors
from ._options import model_and_data


@with_report_style
@with_options(
    own.DEFAULT, inputs=shared.InputOpt, checkpoint=shared.CheckpointOpt, transform=shared.TransformOpt,
    adapt=shared.AdaptModeOpt, adapt_source=own.AdaptSourceOpt, adapter=own.AdapterOpt, fusion=own.FusionOpt,
    fusion_include=own.FusionIncludeOpt, fusion_noself=own.FusionNoselfOpt, fusion_noatlas=own.FusionNoatlasOpt,
    fusion_norm=own.FusionNormOpt, only_fusion=own.OnlyFusionOpt, outputs=own.OutputsOpt,
    output=own.OutputTemplateOpt, square=own.SquareOpt, fmt=shared.FormatOpt, edge_order=shared.EdgeOrderOpt,
    impute_missing=shared.ImputeMissingOpt, participant_label=shared.ParticipantLabelOpt, bids=own.BidsAppOpt,
    evaluate=own.EvaluateOpt, metrics_csv=own.MetricsCsvOpt, heatmap=shared.HeatmapOpt, qc=own.QcOpt,
    qc_latents=own.QcLatentsOpt, report=shared.ReportOpt, subjects=shared.SubjectsOpt,
    split_file=shared.SplitFileOpt, split=shared.SplitOpt, demean=own.DemeanOpt, chunk_size=own.ChunkSizeOpt,
    cache_dir=shared.CacheDirOpt, device=shared.DeviceOpt)
def run_command(ctx: typer.Context, *, style: ReportStyle) -> None:
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

