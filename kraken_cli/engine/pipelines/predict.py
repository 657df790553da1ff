"""``kraken run`` as one engine call: load, check, adapt, predict chunk by chunk, write, evaluate."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..adaptation import load_adapter
from ..connectome import Cohort
from ..errors import FlavorError, SpecError
from ..flavors import FlavorSpec, is_latent_name, match_flavor
from ..inference import KrakenModel, PredictPlan, load_model
from ..io._atomic import committed_together, refuse_overwriting
from ..io.writers import FileMeta, OutputFile, check_outputs, expand_template, open_writer, resolve_format
from ..progress import NULL_PROGRESS, Progress
from ..qc import LatentReference, QCResult
from .configs import DEMEAN_CHOICES, PredictConfig

log = logging.getLogger(__name__)

@dataclass
class InputSummary:
    flavor: str
    file: str
    subjects: int
    features: int
    atlas: str | None


@dataclass
class PredictResult:
    """What a run read, fitted, wrote and measured."""

    inputs: list[InputSummary]
    n_subjects: int
    checkpoint: str
    files: list[Path] = field(default_factory=list)
    adaptations: list[dict[str, Any]] = field(default_factory=list)
    metrics: list[dict[str, Any]] = field(default_factory=list)
    plan_sources: list[str] = field(default_factory=list)
    plan_outputs: list[str] = field(default_factory=list)
    discovery: list[dict[str, Any]] = field(default_factory=list)  # --bids: what was found, used, skipped
    qc: QCResult | None = None  # --qc / --report

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of ``kraken run --json`` (paths as strings)."""
        qc, self.qc = self.qc, None
        try:
            d = asdict(self)
        finally:
            self.qc = qc
        d["files"] = [str(f) for f in self.files]
        if qc is not None:
            d["qc"] = qc.to_dict()
        return d


def _resolve(name: str, cache_dir: Path | None) -> str:
    if Path(name).exists():
        return name  # a local file given explicitly always wins
    from .. import registry

    return str(registry.resolve_file(name, cache_dir))


def _registry_transforms(checkpoint_name: str) -> list[str]:
    """Transform files the flavor database pairs with a released checkpoint."""
    from ..flavors import flavor_database

    names = [e["xform"] for e in flavor_database().values() if e.get("checkpoint") == checkpoint_name]
    return list(dict.fromkeys(names))


def resolve_model_files(checkpoints: Sequence[str], transforms: Sequence[str],
                        cache_dir: str | None) -> tuple[list[str], list[str]]:
    """Checkpoint and transform files: explicit ones, registry names, or the published model (DESIGN 3.2)."""
    from ..flavors import flavor_database

    cdir = Path(cache_dir) if cache_dir else None
    if not checkpoints:
        default = flavor_database()["FCcorr_fs86_hpf"]["checkpoint"]
        checkpoints = [default]
    ck = [_resolve(c, cdir) for c in checkpoints]
    tr_names = list(transforms)
    if not tr_names:
        for c in checkpoints:
            tr_names += _registry_transforms(Path(c).name)
    return ck, [_resolve(t, cdir) for t in tr_names]


def select_subjects(cohort: Cohort, subjects: str | None, split_file: str | None, split: str | None) -> Cohort:
    """Apply ``--subjects`` and/or ``--split-file/--split``."""
    from ..io import read_split_file, read_subject_list

    if split and not split_file:
        raise SpecError("--split needs --split-file", hint="add --split-file FILE.mat")
    if split_file:
        chosen = read_split_file(split_file).select(split or "all")
        chosen = [s for s in chosen if s in set(cohort.subjects)] if split in (None, "all") else chosen
        cohort = cohort.subset(chosen)
    if subjects:
        cohort = cohort.subset(read_subject_list(subjects))
    return cohort


def _source_means(specs: Sequence[str], chunk: int, *, impute_missing: str = "none",
                  edge_order: str = "triu") -> dict[str, tuple[npt.NDArray[np.float64], int]]:
    from ..io import load_cohort

    c = load_cohort([FlavorSpec.parse(s) for s in specs], impute_missing=impute_missing, edge_order=edge_order)
    out = {}
    for f in c.flavors:
        total = np.zeros(c.sources[f].n_features)
        for start in range(0, c.n_subjects, chunk):
            total += np.asarray(c.read(f, start, start + chunk), dtype=np.float64).sum(axis=0)
        out[f] = (total / c.n_subjects, c.n_subjects)
    return out


def prepare_adaptation(model: KrakenModel, cohort: Cohort, plan: PredictPlan, config: PredictConfig) -> None:
    """Fit (or load) the adaptation of each connectome input into ``plan.adaptations``."""
    from ..adaptation import fit_adaptation, normalize_mode

    mode = normalize_mode(config.options.adapt)
    if config.adapter:
        if mode != "none":
            raise SpecError("--adapter and --adapt cannot be used together",
                            hint="the adapter file already holds the fitted adaptation")
        model.use_adapter(plan, load_adapter(config.adapter), file=config.adapter)
        return
    if mode == "none":
        return
    if config.adapt_source:
        means = _source_means(config.adapt_source, config.options.chunk_size,
                              impute_missing=config.impute_missing, edge_order=config.edge_order)
        for name, idx in plan.model_index.items():
            key = name if name in means else match_flavor(name, list(means))
            if key is None:
                raise FlavorError(f"--adapt-source gives no data for {name}",
                                  hint="give --adapt-source FLAVOR=PATH for every adapted input")
            mu, n = means[key]
            plan.adaptations[name] = fit_adaptation(name, mode, mu, model.transform_for(model.flavors[idx]),
                                                    n_subjects=n)
        return
    plan.adaptations = model.fit_adaptation(cohort, plan, mode, chunk_size=config.options.chunk_size)


def predict(config: PredictConfig, progress: Progress = NULL_PROGRESS) -> PredictResult:
    """Run a checkpoint on connectome inputs; see ``kraken run --help``."""
    from .._malloc import map_big_blocks
    from ..io import load_cohort

    map_big_blocks()  # freed inputs and predictions go back to the OS: peak memory is what is alive

    fmt = resolve_format(config.fmt, config.output)  # a usage error before any file is read
    inputs, discovery = _plan_inputs(config)
    if not inputs:
        raise SpecError("no inputs given", hint="give -i FLAVOR=PATH (repeatable)")
    specs = [FlavorSpec.parse(s) for s in inputs]
    extra_outputs = {"--metrics-csv": config.metrics_csv, "--heatmap": config.heatmap, "--report": config.report}
    given_inputs = _given_inputs(config, specs)
    refuse_overwriting(extra_outputs, given_inputs)
    ck, tr = resolve_model_files(config.checkpoints, config.transforms, config.cache_dir)
    model = load_model(ck, tr, device=config.device)
    qc_ref = _qc_reference(model, config)  # a bad --qc-latents file stops the run before the inputs are read
    cohort = load_cohort(specs, impute_missing=config.impute_missing, edge_order=config.edge_order)
    cohort = select_subjects(_participants(cohort, config.participant_labels), config.subjects,
                             config.split_file, config.split)
    plan = model.plan(cohort, config.options)
    widths = {o: (model.checkpoint.config.latentsize if o == "encoded"
                  else model.transform_for(o).n_features_in_) for o in plan.outputs}
    checkpoint_label = ck[0] if len(ck) == 1 else "merged:" + ",".join(ck)
    files = _output_files(config, fmt, plan, cohort, widths)
    refuse_overwriting([*(("-o", str(f.path)) for f in files), *extra_outputs.items()],
                       [*given_inputs, *ck, *tr, *(cohort.sources[f].file for f in cohort.flavors)])
    _check_report_dir(config.report)
    prepare_adaptation(model, cohort, plan, config)
    qc = _quality_control(model, cohort, plan, config, qc_ref)
    truth_of, eval_pairs = _evaluation_pairs(cohort, plan, config.evaluate)
    collected: dict[tuple[str, str], list[npt.NDArray[np.float32]]] = {p: [] for p in eval_pairs}
    samples: dict[tuple[str, str], Any] = dict.fromkeys(_report_pairs(cohort, plan) if config.report else [])

    meta = FileMeta(subjects=cohort.subjects, checkpoint=checkpoint_label, recordfile="",
                    inputfiles=[cohort.sources[f].file for f in cohort.flavors],
                    fusion_members={g.name: list(g.members) for g in plan.groups})
    with committed_together():  # every output of the run appears at the end, or none does
        written = _write_predictions(model, cohort, plan, config, fmt, files, meta, widths, progress, collected,
                                     checkpoints=ck, samples=samples)
        result = PredictResult(
            inputs=[InputSummary(f, cohort.sources[f].file, cohort.n_subjects, cohort.sources[f].n_features,
                                 cohort.sources[f].flavor.atlas) for f in cohort.flavors],
            n_subjects=cohort.n_subjects, checkpoint=checkpoint_label, files=written,
            adaptations=[a.summary() for a in plan.adaptations.values()],
            plan_sources=plan.sources, plan_outputs=plan.outputs, discovery=discovery, qc=qc)
        if eval_pairs:
            result.metrics = evaluate(model, cohort, truth_of, collected, config.demean)
            from .evaluation import write_evaluation

            result.files += write_evaluation(result.metrics, config.metrics_csv, config.heatmap,
                                             title=Path(checkpoint_label).name)
        if config.report:
            from .report import write_run_report

            result.files.append(write_run_report(config.report, result, model=model, plan=plan, cohort=cohort,
                                                 checkpoints=ck, samples=samples, truth_of=truth_of))
    return result


def _given_inputs(config: PredictConfig, specs: Sequence[FlavorSpec]) -> list[Any]:
    """Every file the run reads as the user named it (no output may be one of them)."""
    return [*(s.path for s in specs), *(FlavorSpec.parse(a).path for a in config.adapt_source),
            *config.checkpoints, *config.transforms, config.adapter, config.subjects, config.split_file,
            config.qc_latents]


def _report_pairs(cohort: Cohort, plan: PredictPlan) -> list[tuple[str, str]]:
    from ..report.content import sample_pairs

    return sample_pairs(cohort, plan)


def _sample_subjects() -> int:
    from ..report.content import REPORT_SAMPLE_SUBJECTS

    return REPORT_SAMPLE_SUBJECTS


def _check_report_dir(report: str | None) -> None:
    """The ``--report`` folder must be writable before any compute, like ``-o``'s."""
    if report:
        from ..io._atomic import check_writable_dir

        check_writable_dir(report)


def _qc_reference(model: KrakenModel, config: PredictConfig) -> LatentReference | None:
    """``--qc-latents``: the training latents (a file, or a registry name such as the fusion-latent target file)."""
    if not config.qc_latents:
        return None
    from ..qc.reference import read_reference_latents

    return read_reference_latents(_resolve(config.qc_latents, Path(config.cache_dir) if config.cache_dir else None),
                                  latent_size=model.checkpoint.config.latentsize)


def _quality_control(model: KrakenModel, cohort: Cohort, plan: PredictPlan, config: PredictConfig,
                     reference: LatentReference | None) -> QCResult | None:
    """``--qc``: every quality measure of the inputs (one extra pass over the cohort, before prediction)."""
    if not (config.qc or config.report):
        return None
    from ..qc import assess

    return assess(model, cohort, plan, qc_latents=reference, chunk_size=config.options.chunk_size)




def _output_files(config: PredictConfig, fmt: str, plan: PredictPlan, cohort: Cohort,
                  widths: Mapping[str, int]) -> list[OutputFile]:
    """The files ``-o`` names, checked before any compute (writable, room, no input overwritten)."""
    if not config.output:
        if not (config.evaluate or config.qc or config.report):
            log.warning("no -o/--output given: predictions are computed but not saved")
        return []
    files = expand_template(config.output, plan.sources, plan.outputs)
    input_files = [cohort.sources[f].file for f in cohort.flavors]
    check_outputs(files, fmt, cohort.n_subjects, widths, input_files, square=config.square)
    if fmt == "bids":
        from ..io._bids_out import check_bids_plan

        check_bids_plan(Path(config.output), plan.sources, plan.outputs, widths, cohort.subjects)
    return files


def _evaluation_pairs(cohort: Cohort, plan: PredictPlan,
                      evaluate: bool) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """Output flavor -> input holding its truth, and the (source, output) pairs ``--evaluate`` scores."""
    truth_of = {o: f for o in plan.outputs if o != "encoded"
                for f in cohort.flavors if not is_latent_name(f) and match_flavor(f, [o]) is not None}
    pairs = [(s, o) for (s, o) in plan.pairs if o in truth_of] if evaluate else []
    if evaluate and not pairs:
        raise FlavorError("--evaluate needs the true data of an output flavor among the inputs",
                          hint="give the flavors you predict as inputs too (-i FLAVOR=PATH)")
    return truth_of, pairs


def _write_predictions(model: KrakenModel, cohort: Cohort, plan: PredictPlan, config: PredictConfig, fmt: str,
                       files: Sequence[OutputFile], meta: FileMeta, widths: Mapping[str, int], progress: Progress,
                       collected: dict[tuple[str, str], list[npt.NDArray[np.float32]]], *,
                       checkpoints: Sequence[str], samples: dict[tuple[str, str], Any] | None = None) -> list[Path]:
    """Predict chunk by chunk into every output file (and ``collected`` for evaluation)."""
    if fmt == "mat" and files:
        from ._mat5_run import write_file_by_file

        return write_file_by_file(model, cohort, plan, config.options, files, meta, progress, collected,
                                  square=config.square, samples=samples, n_samples=_sample_subjects())
    writers: list[Any] = []
    try:
        for f in files:
            writers.append(_bids_writer(f, meta, checkpoints, plan) if fmt == "bids"
                           else open_writer(fmt, f, meta, cohort.n_subjects, widths, square=config.square))
        for start, chunk in model.iter_predictions(cohort, plan, config.options, progress):
            for w in writers:
                w.write_rows(start, chunk)
            for p in collected:
                collected[p].append(chunk[p])
            if start == 0 and samples is not None:
                for p in samples:
                    samples[p] = chunk[p][:_sample_subjects()].copy()
            del chunk  # before the next chunk is computed: one chunk in memory at a time
        return [w.close() for w in writers]
    except BaseException:
        for w in writers:
            w.abort()
        raise


def _plan_inputs(config: PredictConfig) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    """The ``-i`` specs, and with ``--bids`` what was found in DERIV_DIR (used and skipped)."""
    if config.bids_dir is None:
        return config.inputs, []
    from ..bids_app import plan_bids_inputs

    found = plan_bids_inputs(config.bids_dir, config.output or "", config.inputs)
    return tuple(found.inputs), [f.summary() for f in found.found]


def _participants(cohort: Cohort, labels: Sequence[str]) -> Cohort:
    """Only the subjects of ``--participant-label`` (``sub-`` optional; sessions of a subject kept)."""
    if not labels:
        return cohort
    want = {lab.removeprefix("sub-") for lab in labels}
    keep = [s for s in cohort.subjects if s.removeprefix("sub-").split("_ses-")[0] in want]
    if not keep:
        raise SpecError(f"--participant-label {' '.join(labels)} matches none of the {cohort.n_subjects} subjects",
                        hint=f"subjects found: {', '.join(cohort.subjects[:8])}")
    return cohort.subset(keep)


def _bids_writer(f: Any, meta: Any, checkpoints: Sequence[str], plan: PredictPlan) -> Any:
    from ..io._bids_out import BidsWriter, Provenance

    prov = Provenance(checkpoints=list(checkpoints), fusion_members=meta.fusion_members, inputs=meta.inputfiles,
                      adaptations={k: a.summary() for k, a in plan.adaptations.items()})
    return BidsWriter(f.path, f.sources, f.outputs, meta.subjects, prov)


def evaluate(model: KrakenModel, cohort: Cohort, truth_of: Mapping[str, str],
             collected: Mapping[tuple[str, str], list[npt.NDArray[np.float32]]], demean: str) -> list[dict[str, Any]]:
    """Identifiability metrics of every (source, output) pair that has ground truth (UPSTREAM 14)."""
    from ..metrics import evaluate_path

    if demean not in DEMEAN_CHOICES:
        raise SpecError(f"--demean must be test or train, got {demean!r}")
    rows = []
    truths = {o: np.asarray(cohort.read(f), dtype=np.float64) for o, f in truth_of.items()}
    for (s, o), parts in collected.items():
        pred = np.concatenate(parts)
        mu = None
        if demean == "train":
            mu = model.transform_for(o).training_mean()
            if mu is None:
                raise SpecError(f"--demean train: the transform of {o} carries no training mean",
                                hint="use --demean test")
        m = evaluate_path(truths[o], pred, demean=mu)
        rows.append({"source": s, "target": o, "n_subjects": int(pred.shape[0]), **m})
    return rows
