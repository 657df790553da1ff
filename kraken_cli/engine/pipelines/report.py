"""The HTML reports of ``kraken run``, ``kraken train`` and ``kraken describe`` (``--report FILE.html``).

Each assembles :class:`~kraken_cli.engine.report.Section` objects (inputs and model summary, the
QC table with flags, evaluation heatmaps with chance levels, observed vs predicted matrices of a
few subjects) and writes one self-contained page atomically.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from ..report import Image, Section, Table
from ..report.content import checkpoint_facts, evaluation_section, metric_values, qc_sections, write_report
from ..report.figures import matrices_png

if TYPE_CHECKING:
    from ..connectome import Cohort
    from ..inference import KrakenModel, PredictPlan
    from ..training.loop import TrainResult
    from .predict import PredictResult


def _model_section(model: KrakenModel, checkpoints: Sequence[str], plan: PredictPlan | None = None) -> Section:
    ck = model.checkpoint
    facts = [*checkpoint_facts(checkpoints), ("flavors", ", ".join(model.flavors)),
             ("latent size", str(ck.config.latentsize)),
             ("input transforms", ", ".join(sorted({t.spec for t in model.transforms.values()})))]
    if plan is not None and plan.groups:
        facts += [("fusion group " + g.name, ", ".join(g.members)) for g in plan.groups]
    return Section("Model", facts=facts)


def _inputs_section(result: PredictResult) -> Section:
    s = Section("Inputs", [f"{result.n_subjects} subjects, {len(result.inputs)} input flavors."])
    s.tables.append(Table("Input files", ["flavor", "file", "subjects", "edges", "atlas"],
                          [(i.flavor, i.file, i.subjects, i.features, i.atlas or "") for i in result.inputs]))
    if result.adaptations:
        s.tables.append(Table("Adaptation", ["flavor", "mode", "slope", "intercept", "fit R²", "subjects"],
                              [(a["flavor"], a["mode"], f"{a['slope']:.4g}", f"{a['intercept']:.4g}",
                                f"{a['fit_r2']:.3f}", a["n_subjects"]) for a in result.adaptations]))
    else:
        s.paragraphs.append("Adaptation: none.")
    return s


def _samples_section(cohort: Cohort, samples: Mapping[tuple[str, str], Any], truth_of: Mapping[str, str]) -> Section:
    s = Section("Observed vs predicted")
    for (src, out), pred in samples.items():
        if pred is None or out not in truth_of:
            continue
        n = int(np.shape(pred)[0])
        truth = np.asarray(cohort.read(truth_of[out], 0, n))
        s.images.append(Image(f"{out} predicted from {src}, subjects {', '.join(cohort.subjects[:n])}",
                              matrices_png(truth, pred, cohort.subjects[:n], flavor=out, source=src)))
    if not s.images:
        s.paragraphs.append("No output flavor has its observed data among the inputs.")
    return s


def write_run_report(path: str | Path, result: PredictResult, *, model: KrakenModel, plan: PredictPlan,
                     cohort: Cohort, checkpoints: Sequence[str],
                     samples: Mapping[tuple[str, str], npt.NDArray[np.float32] | None],
                     truth_of: Mapping[str, str]) -> Path:
    """The ``kraken run --report`` page."""
    sections = [_inputs_section(result), _model_section(model, checkpoints, plan)]
    if result.qc is not None:
        sections += qc_sections(result.qc)
    if result.metrics:
        sections.append(evaluation_section(metric_values(result.metrics), result.n_subjects, "all input subjects",
                                           "Rows: the input (or fusion group) predicted from; columns: the "
                                           "predicted flavor."))
    sections.append(_samples_section(cohort, samples, truth_of))
    return write_report(path, "kraken run report", sections,
                        subtitle=f"{result.n_subjects} subjects, checkpoint {Path(result.checkpoint).name}")


def _record_section(record_file: str | Path | None, record: Any = None) -> Section | None:
    """The validation heatmap of a training record, chance marked (None: no record)."""
    from ..plots import record_heatmap_values
    from ..training.record import read_record

    if record is None:
        if record_file is None or not Path(record_file).is_file():
            return None
        record = read_record(record_file)
    metrics = ("top1acc", "topNacc", "avgrank", "avgcorr_resid")
    values, labels = record_heatmap_values(record, metrics)
    n = record.n_subjects("val") or 0
    epochs = ", ".join(sorted({v for v in labels.values() if v}))
    return evaluation_section(values, n, "validation split", f"Each metric at its best epoch over all paths "
                                                            f"({epochs or 'no epoch evaluated'}).")


def _stored_qc_section(raw: Mapping[str, Any]) -> Section:
    """The training statistics a kraken checkpoint stores for ``kraken run --qc``."""
    from ..qc import stored_statistics

    stats, latents = stored_statistics(raw)
    s = Section("Quality-control reference (stored in the checkpoint)")
    if not stats:
        s.paragraphs.append("This checkpoint stores no training statistics (it was not written by kraken's "
                            "trainer): kraken run --qc derives what it can from the transform file.")
        return s
    qc = raw["kraken_qc"]
    s.paragraphs.append(f"Typical residual and score norm over the subjects the model saw; ranges (1-99 %) over "
                        f"{qc.get('n_subjects', '?')} {qc.get('split', '')} subjects, as ratios to the typical one. "
                        "kraken run --qc divides by the typical values and widens its thresholds to these ranges.")

    def rng(d: Mapping[str, Any], m: str) -> str:
        lo, hi = d.get("ranges", {}).get(m, (float("nan"), float("nan")))
        return f"{lo:.3g}-{hi:.3g}"

    s.tables.append(Table("Stored reference per flavor", ["flavor", "typical residual", "residual range",
                                                          "typical score", "score range", "scale range",
                                                          "latent reference"],
                          [(f, f"{d.get('residual_median', float('nan')):.4g}", rng(d, "residual"),
                            f"{d.get('score_median', float('nan')):.4g}", rng(d, "score"), rng(d, "scale"),
                            f"{latents[f].n_subjects} training subjects" if f in latents else "n/a")
                           for f, d in stats.items()]))
    return s


def write_describe_report(path: str | Path, checkpoint: str | Path, record: str | Path | None, *,
                          record_given: bool = False) -> Path:
    """The ``kraken describe --report`` page: checkpoint summary, stored QC reference, record heatmap.

    ``record`` None: no training record is shown; ``record_given``: a missing ``record`` is an error.
    """
    from ..checkpoint import load_checkpoint
    from ..describe import describe_checkpoint
    from ..errors import InputDataError
    from ..io._atomic import refuse_overwriting

    if record is not None and record_given and not Path(record).is_file():
        raise InputDataError(f"no training record found at {record}", hint="name it with --record FILE.mat")
    if not str(path).lower().endswith((".html", ".htm")):
        from ..errors import SpecError

        raise SpecError(f"--report writes HTML, got {str(path)!r}", hint="name the report FILE.html")
    refuse_overwriting({"--report": str(path)}, [checkpoint, record])

    desc = describe_checkpoint(checkpoint)
    ck = load_checkpoint(checkpoint)
    facts = [*checkpoint_facts([str(checkpoint)]), ("flavors", ", ".join(ck.flavors)),
             ("architecture", str(desc.architecture)), ("input transform", str(desc.transform)),
             ("epochs", str(desc.completed_epochs)), ("trained paths", str(len(desc.paths)))]
    sections = [Section("Model", facts=facts), _stored_qc_section(ck.raw)]
    rec = _record_section(record)
    sections.append(rec if rec is not None else Section("Evaluation", ["No training record given (--record)."]))
    return write_report(path, "kraken describe report", sections, subtitle=Path(checkpoint).name)


def _validation_qc(result: TrainResult, cohort: Cohort) -> tuple[list[Section], KrakenModel, Cohort]:
    """QC of the validation subjects under the trained model, and observed vs predicted of a few of them."""
    from ..checkpoint import load_checkpoint
    from ..inference import KrakenModel
    from ..qc import assess
    from ..report.content import sample_pairs
    from .configs import PredictOptions

    model = KrakenModel(load_checkpoint(result.checkpoints[-1]), result.transforms)
    ids = [result.split.subjects[i] for i in result.split.val] or list(result.split.subjects)
    val = cohort.subset(ids)
    options = PredictOptions(outputs=("all",), fusion=len(model.flavors) > 1, fusion_noself=len(model.flavors) > 1)
    plan = model.plan(val, options)
    sections = qc_sections(assess(model, val, plan))
    few = val.subset(val.subjects[:3])
    pairs = sample_pairs(few, plan)
    _, chunk = next(model.iter_predictions(few, plan, options))
    truth = {o: f for o in plan.outputs for f in few.flavors if f == o}
    sections.append(_samples_section(few, {p: chunk[p] for p in pairs}, truth))
    return sections, model, val


def write_train_report(path: str | Path, result: TrainResult, cohort: Cohort) -> Path:
    """The ``kraken train --report`` page: model, validation heatmap, QC reference and validation QC."""
    final = str(result.checkpoints[-1])
    facts = [*checkpoint_facts([final]), ("flavors", ", ".join(result.flavors)),
             ("trained paths", str(len(result.path_names))), ("epochs", str(result.completed_epochs)),
             ("subjects", f"{len(result.split.subjects)} ({len(result.split.train)} training, "
                          f"{len(result.split.val)} validation, {len(result.split.test)} test)"),
             ("input transforms", ", ".join(sorted({str(getattr(t, 'spec', t)) for t in result.transforms.values()})))]
    from ..checkpoint import load_checkpoint

    sections = [Section("Model", facts=facts), _stored_qc_section(load_checkpoint(final).raw)]
    rec = _record_section(None, result.record)
    if rec is not None:
        sections.append(rec)
    qc, _, val = _validation_qc(result, cohort)
    for s in qc:
        s.title += f" (validation subjects, n={val.n_subjects})"
    sections += qc
    return write_report(path, "kraken train report", sections, subtitle=Path(final).name)
