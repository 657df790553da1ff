"""Every option kraken offers, defined once so one name means one thing on every command."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from kraken_cli.engine.choices import Device, EdgeOrder, FileFormat, ImputeMode

from . import _complete


def flag(decls: str, help: str) -> Any:
    """A boolean option, ``--x`` (off unless given) or ``--x/--no-x``, as an ``Annotated`` alias."""
    return Annotated[bool, typer.Option(decls, help=help)]


# -- common to every command ------------------------------------------------------------------
VerboseOpt = Annotated[bool, typer.Option("-v", "--verbose", help="Show more detail (info messages).")]
QuietOpt = Annotated[bool, typer.Option("-q", "--quiet", help="No progress bars and no tables; errors only.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print a machine-readable JSON report on stdout instead of tables.")]
DeviceOpt = Annotated[Device, typer.Option("--device", help="Where compute happens: auto (CUDA when available), cpu or cuda.")]

# -- data and models --------------------------------------------------------------------------
InputOpt = Annotated[
    list[str],
    typer.Option("-i", "--input", metavar="FLAVOR[@GROUP]=PATH",
                 help="Input connectomes: FLAVOR\\[@SC|@FC]=PATH, repeatable. A multi-flavor .mat, BIDS folder or "
                      "zip may be given as a bare PATH; a quoted glob reads per-subject files. PATH:KEY picks a "
                      ".mat variable (QSIRecon); DIR:ENTITIES narrows a folder's files (XCP-D: DIR:seg-fs86).",
                 autocompletion=_complete.complete_flavor_spec),
]
CheckpointOpt = Annotated[
    list[str],
    typer.Option("-c", "--checkpoint", metavar="PATH|NAME",
                 help="Checkpoint .pt file or registry name, repeatable (several are merged on the fly).",
                 autocompletion=_complete.complete_checkpoint_name),
]
TransformOpt = Annotated[
    list[str],
    typer.Option("-t", "--transform", metavar="PATH|NAME",
                 help="Input transform file(s) (*_ioxfm_*.npy/.npz/.h5), repeatable. Default: found from the checkpoint.",
                 autocompletion=_complete.complete_transform_name),
]
SubjectsOpt = Annotated[
    Optional[str],
    typer.Option("--subjects", metavar="FILE|ID,...",
                 help="Only these subjects: a text file with one id per line, a .mat with 'subjects', or ids separated by commas."),
]
SplitFileOpt = Annotated[Optional[Path], typer.Option("--split-file", help="Subject split .mat (subjects, subjidx_train/val/test).")]
SplitOpt = Annotated[Optional[str], typer.Option("--split", help="Which split of --split-file to use: train, val, test or all.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Random seed (written into the outputs).")]
ThreadsOpt = Annotated[Optional[int], typer.Option("--threads", min=1, metavar="N",
                                                  help="CPU threads (default: the usable cores other work leaves free).")]
EpochsOpt = Annotated[int, typer.Option("--epochs", min=1, help="Total training epochs (a resumed run continues up to this count).")]
ReportOpt = Annotated[
    Optional[Path],
    typer.Option("--report", metavar="HTML",
                 help="Write one self-contained HTML report (model summary, quality-control table with flags, "
                      "evaluation figures with chance levels) to this file."),
]
HeatmapOpt = Annotated[
    Optional[Path],
    typer.Option("--heatmap", metavar="PNG",
                 help="Draw the identifiability heatmap (per metric, source x target flavor) to this PNG."),
]
FormatOpt = Annotated[Optional[FileFormat], typer.Option(
    "--format", help="Output file format: mat (MATLAB v5), mat73 (MATLAB v7.3/HDF5), npz, or bids "
                     "(a derivatives folder of relmat TSVs with JSON sidecars). "
                     "Default: from the -o extension (.npz, .mat, .h5), else mat.")]
EdgeOrderOpt = Annotated[EdgeOrder, typer.Option(
    "--edge-order", help="Order of \\[subjects x edges] inputs: triu (kraken, numpy.triu_indices) or nilearn "
                         "(ConnectivityMeasure(vectorize=True), with or without the diagonal).")]
ImputeMissingOpt = Annotated[ImputeMode, typer.Option(
    "--impute-missing", help="Missing parcels (NaN rows/columns, e.g. XCP-D low coverage): none (an error) or "
                             "mean (each missing edge gets its mean over the other subjects; reported).")]
ParticipantLabelOpt = Annotated[list[str], typer.Option(
    "--participant-label", metavar="LABEL",
    help="Only these participants (sub- labels, sub- optional; repeatable).")]
CacheDirOpt = Annotated[
    Optional[Path],
    typer.Option("--cache-dir", help="Folder of downloaded model files (default: $KRAKEN_DATA, $KRAKENCODER_DATA, or the user cache)."),
]
AdaptModeOpt = Annotated[
    str,
    typer.Option("--adapt", metavar="none|meanshift|meanfit|meanfit+meanshift",
                 help="Domain adaptation of inputs to the training population (fitted on the input subjects).",
                 autocompletion=_complete.complete_adapt_mode),
]


def model_and_data(p: Mapping[str, Any]) -> dict[str, Any]:
    """The engine config fields of the model and input options that ``run`` and ``adapt`` share.

    ``p`` is the command's parsed options (``ctx.params``).
    """
    return {"inputs": tuple(p["inputs"]), "checkpoints": tuple(p["checkpoint"]), "transforms": tuple(p["transform"]),
            "subjects": p["subjects"], "device": p["device"], "cache_dir": cache_dir_for(p["cache_dir"]),
            "edge_order": p["edge_order"], "impute_missing": p["impute_missing"]}


def cache_dir_for(cache_dir: Optional[Path]) -> str:
    """The cache folder: --cache-dir, else $KRAKEN_DATA, else $KRAKENCODER_DATA, else the user cache."""
    import os

    from kraken_cli.engine.registry import default_cache_dir

    return str(default_cache_dir(cache_dir, os.environ))
