"""``kraken adapt`` as one engine call: fit a domain adaptation on a reference cohort and save it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..adaptation import normalize_mode, save_adapter
from ..errors import SpecError
from ..flavors import FlavorSpec
from ..progress import NULL_PROGRESS, Progress
from .configs import AdaptConfig, PredictOptions


@dataclass
class AdaptResult:
    """The adapter file written, the subjects it was fitted on, and each flavor's fit."""

    file: Path
    n_subjects: int
    flavors: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of ``kraken adapt --json``."""
        return {"file": str(self.file), "n_subjects": self.n_subjects, "flavors": self.flavors}


def fit_adapter(config: AdaptConfig, progress: Progress = NULL_PROGRESS) -> AdaptResult:
    """Fit ``config.mode`` per input flavor on (a subset of) the inputs' subjects and save an adapter file."""
    from ..inference import load_model
    from ..io import load_cohort
    from ..io._atomic import check_writable_dir, refuse_overwriting
    from .predict import resolve_model_files, select_subjects

    mode = normalize_mode(config.mode)
    if mode == "none":
        raise SpecError("--mode none fits nothing", hint="use meanshift, meanfit or meanfit+meanshift")
    from ..io._edge_order import check_edge_order
    from ..io._pipelines import check_impute

    check_edge_order(config.edge_order)
    check_impute(config.impute_missing)
    specs = [FlavorSpec.parse(s) for s in config.inputs]
    out = {"-o": config.output}
    refuse_overwriting(out, [s.path for s in specs] + [*config.checkpoints, *config.transforms, config.subjects])
    check_writable_dir(config.output)
    ck, tr = resolve_model_files(config.checkpoints, config.transforms, config.cache_dir)
    model = load_model(ck, tr, device=config.device)
    cohort = load_cohort(specs, impute_missing=config.impute_missing, edge_order=config.edge_order)
    refuse_overwriting(out, [*ck, *tr, *(cohort.sources[f].file for f in cohort.flavors)])
    cohort = select_subjects(cohort, config.subjects, None, None)
    plan = model.plan(cohort, PredictOptions(outputs=("encoded",)))
    fitted = model.fit_adaptation(cohort, plan, mode, progress)
    file = save_adapter(config.output, fitted)
    return AdaptResult(file, cohort.n_subjects, [a.summary() for a in fitted.values()])
