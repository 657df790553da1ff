"""What each pipeline is asked to do (``PredictConfig``, ``PredictOptions``, ``AdaptConfig``), without torch.

The CLI reads these classes' field defaults for its options (:func:`field_defaults`), so ``--help``
shows the engine's own defaults and the two cannot drift apart; building a config checks every option
(its ``__post_init__``) before any input is read. ``TrainConfig`` lives in
:mod:`kraken_cli.engine.training.config` for the same reason.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, get_args

from ..choices import Device
from ..errors import SpecError

#: Subjects predicted per chunk unless ``--chunk-size`` says otherwise (bounds a run's memory).
DEFAULT_CHUNK_SIZE = 256


def field_defaults(*classes: type) -> dict[str, Any]:
    """The field defaults of these dataclasses by field name, read without building one (first class wins)."""
    out: dict[str, Any] = {}
    for cls in reversed(classes):
        out.update({f.name: f.default for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING})
    return out


@dataclass(frozen=True)
class PredictOptions:
    """What to compute in a run (DESIGN 3 ``kraken run``)."""

    outputs: tuple[str, ...] = ("all",)
    fusion: bool = False
    fusion_include: Mapping[str, Sequence[str]] | None = None
    fusion_noself: bool = False
    fusion_noatlas: bool = False
    fusion_norm: bool = False
    only_fusion: bool = False
    adapt: str = "none"
    chunk_size: int = DEFAULT_CHUNK_SIZE


#: What ``--demean`` accepts: the evaluated subjects' own mean, or the transform's training mean.
DEMEAN_CHOICES = ("test", "train")


@dataclass(frozen=True)
class PredictConfig:
    """Everything ``kraken run`` was asked to do."""

    inputs: tuple[str, ...]
    checkpoints: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()
    options: PredictOptions = PredictOptions()
    output: str | None = None
    square: bool = False
    fmt: str | None = None  # None: from the -o extension (.npz, .mat, .h5), else mat
    adapter: str | None = None
    adapt_source: tuple[str, ...] = ()
    subjects: str | None = None
    split_file: str | None = None
    split: str | None = None
    evaluate: bool = False
    metrics_csv: str | None = None
    heatmap: str | None = None
    demean: str = "test"
    device: str = "auto"
    cache_dir: str | None = None
    edge_order: str = "triu"  # order of [subjects x edges] inputs: triu (kraken) or nilearn
    impute_missing: str = "none"  # missing parcels: an error, or "mean" over the other subjects
    participant_labels: tuple[str, ...] = ()  # --participant-label: only these sub- labels
    bids_dir: str | None = None  # --bids DERIV_DIR OUTDIR: inputs found in DERIV_DIR (bids_app)
    qc: bool = False  # --qc: per-subject quality measures and flags (engine.qc)
    qc_latents: str | None = None  # --qc-latents: training latents the latent distance compares against
    report: str | None = None  # --report: one self-contained HTML file (implies --qc)

    def __post_init__(self) -> None:
        """Every option and combination is checked here, before any input is read (usage errors)."""
        from ..adaptation import normalize_mode
        from ..io._edge_order import check_edge_order
        from ..io._pipelines import check_impute
        from ..io.subjects import SPLIT_NAMES
        from ..io.writers import resolve_format

        if self.demean not in DEMEAN_CHOICES:
            raise SpecError(f"--demean must be test or train, got {self.demean!r}",
                            hint="test: demean by the evaluated subjects' mean; train: by the transform's mean")
        if self.split is not None and self.split not in SPLIT_NAMES:
            raise SpecError(f"unknown --split {self.split!r}", hint=f"choose one of {', '.join(SPLIT_NAMES)}")
        if self.split and not self.split_file:
            raise SpecError("--split needs --split-file", hint="add --split-file FILE.mat")
        if self.device not in get_args(Device) and not self.device.startswith("cuda:"):
            raise SpecError(f"unknown --device {self.device!r}", hint="use auto, cpu or cuda")
        if self.options.chunk_size < 1:
            raise SpecError(f"--chunk-size must be >= 1, got {self.options.chunk_size}")
        mode = normalize_mode(self.options.adapt)
        if self.adapter and mode != "none":
            raise SpecError("--adapter and --adapt cannot be used together",
                            hint="the adapter file already holds the fitted adaptation")
        if self.adapt_source and mode == "none":
            raise SpecError("--adapt-source needs --adapt MODE", hint="add --adapt meanfit+meanshift, for example")
        fmt = resolve_format(self.fmt, self.output)
        check_edge_order(self.edge_order)
        check_impute(self.impute_missing)
        if self.qc_latents and not (self.qc or self.report):
            raise SpecError("--qc-latents needs --qc or --report", hint="add --qc")
        if self.report and not str(self.report).lower().endswith((".html", ".htm")):
            raise SpecError(f"--report writes HTML, got {self.report!r}", hint="name the report FILE.html")
        if self.bids_dir is not None and fmt != "bids":
            raise SpecError("--bids writes BIDS derivatives to its OUTDIR", hint="drop -o and --format")
        if fmt == "bids":
            from ..io._bids_out import check_bids_options

            check_bids_options(self.output, self.options.outputs)


@dataclass(frozen=True)
class AdaptConfig:
    """What ``kraken adapt`` was asked to fit."""

    inputs: tuple[str, ...]
    output: str
    mode: str = "meanfit+meanshift"
    checkpoints: tuple[str, ...] = ()
    transforms: tuple[str, ...] = ()
    subjects: str | None = None
    device: str = "cpu"
    cache_dir: str | None = None
    edge_order: str = "triu"  # order of [subjects x edges] inputs (as kraken run --edge-order)
    impute_missing: str = "none"  # missing parcels (as kraken run --impute-missing)
