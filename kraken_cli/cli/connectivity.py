"""``kraken connectivity``: FC flavors (cov, corr, the paper's regularized pcorr) from time series or covariances."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from kraken_cli.engine.choices import InputKind, Measure

from . import _complete
from ._common import ReportStyle, with_report_style
from ._console import out
from ._errors import reporting_errors
from ._options import CacheDirOpt, FormatOpt, SplitFileOpt, SplitOpt


@with_report_style
def connectivity_command(
    ctx: typer.Context,
    inputs: Annotated[list[str], typer.Argument(metavar="INPUT", help="Time series (T x R per subject: .tsv/.csv with an optional header of region labels, .npy, a .mat cell with subjects) or covariance/correlation matrices (.mat field C or FC, .h5, .npz, .npy, .csv); a quoted glob reads one subject per file.")],
    output: Annotated[Optional[Path], typer.Option("-o", "--output", help="File to write: C (an N x 1 cell of R x R matrices), lambda, lambda_raw, conntype, subjects.")] = None,
    measure: Annotated[Measure, typer.Option("--measure", help="What to compute: cov, corr (Pearson), pcorr (regularized partial correlation, the paper's FCpcorr) or precision.")] = "pcorr",
    input_kind: Annotated[InputKind, typer.Option("--input-kind", help="What the inputs hold; auto: square arrays are matrices, others T x R time series.")] = "auto",
    target: Annotated[Optional[str], typer.Option("--target", metavar="FILE|NAME|ATLAS", help="Target precision matrix for the lambda search: a file (C or FC), a registry name, or fs86/shen268/coco439 for the released HCP-YA target. Default: the mean unregularized inverse of the search subjects.", autocompletion=_complete.complete_regtarget)] = None,
    geometric_mean: Annotated[bool, typer.Option("--geometric-mean", help="Geometric (expm of mean logm) instead of arithmetic means, for the target and --output-mean.")] = False,
    keep_unnormalized: Annotated[bool, typer.Option("--keep-unnormalized", help="Do not normalise inputs to correlation first (the search then adds λ, the output λ·trace/n).")] = False,
    force_symmetry: Annotated[bool, typer.Option("--force-symmetry", help="Use (A + A^T) / 2 instead of refusing asymmetric matrices.")] = False,
    lambda_range: Annotated[tuple[float, float], typer.Option("--lambda-range", metavar="A B", help="Range of the lambda grid search.")] = (0.0, 1.0),
    lambda_grid: Annotated[int, typer.Option("--lambda-grid", min=2, help="Grid points per search loop.")] = 10,
    lambda_loops: Annotated[int, typer.Option("--lambda-loops", min=1, help="Refinement loops of the search.")] = 3,
    lambda_round: Annotated[int, typer.Option("--lambda-round", min=0, max=15, help="Decimals kept of the lambda found.")] = 2,
    lambda_value: Annotated[Optional[float], typer.Option("--lambda", min=0.0, help="Apply this lambda; no search.")] = None,
    split_file: SplitFileOpt = None,
    split: SplitOpt = None,
    output_split: Annotated[Optional[str], typer.Option("--output-split", help="Split of --split-file written to the outputs (default: --split).")] = None,
    output_mean: Annotated[Optional[Path], typer.Option("--output-mean", help="Also write the mean over the written subjects (this is how a target is made).")] = None,
    search_csv: Annotated[Optional[Path], typer.Option("--search-csv", help="Write the lambda search as CSV (columns lambda,reg_err).")] = None,
    search_figure: Annotated[Optional[Path], typer.Option("--search-figure", metavar="PNG", help="Plot the search error against lambda, optimum circled.")] = None,
    fmt: FormatOpt = None,
    cache_dir: CacheDirOpt = None,
    *,
    style: ReportStyle,
) -> None:
    """Compute FC flavors from ROI time series or covariances, as the original's regularize_fc_precision.py.

    Examples:

        kraken connectivity 'ts/sub-*_timeseries.tsv' --target fs86 -o FCpcorr_fs86_hpf.mat

        kraken connectivity train_cov.mat --split-file split.mat --split train --measure precision --lambda 0 --output-mean target.mat

        kraken connectivity new_cov.mat --target target.mat --search-csv search.csv -o pcorr.mat
    """
    with reporting_errors(as_json=style.as_json):
        from kraken_cli.engine.connectivity import run_connectivity

        from ._progress import make_progress

        result = run_connectivity(_config(ctx.params), progress=make_progress(style.quiet, style.as_json))
    style.show(json=result.to_dict, quiet=lambda: result.files, tables=lambda: _tables(result))


def _config(p: dict[str, Any]) -> Any:
    """The engine's ConnectivityConfig from the parsed options (usage errors before any input is read)."""
    from kraken_cli.engine.connectivity import ConnectivityConfig

    from ._options import cache_dir_for

    def text(key: str) -> Optional[str]:
        return str(p[key]) if p[key] is not None else None

    same = ("measure", "input_kind", "keep_unnormalized", "force_symmetry", "target", "geometric_mean", "lambda_value",
            "split", "output_split", "lambda_grid", "lambda_loops", "lambda_round")
    return ConnectivityConfig.build(
        **{k: p[k] for k in same}, inputs=tuple(p["inputs"]), output=text("output"),
        split_file=text("split_file"), output_mean=text("output_mean"),
        search_csv=text("search_csv"), search_figure=text("search_figure"),
        fmt=p["fmt"], cache_dir=cache_dir_for(p["cache_dir"]),
        lambda_range=tuple(p["lambda_range"]))


def _tables(result: Any) -> None:
    from ._render import table

    rows = [("measure", result.conntype), ("regions", result.n_regions), ("subjects written", len(result.subjects))]
    if result.lam is not None:
        rows += [("lambda (applied)", f"{result.lam:g}"), ("lambda (found)", f"{result.lam_raw:.6g}"),
                 ("search subjects", result.n_search_subjects), ("target", result.target_source or "")]
    table("Connectivity", ["", ""], rows)
    for f in result.files:
        out.print(f"Written: {f}", highlight=False)
