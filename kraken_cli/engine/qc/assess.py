"""Per-subject quality control of a ``kraken run`` cohort: every measure, every input flavor, flags.

:func:`assess` streams the cohort chunk by chunk like prediction does (memory bounded by the chunk
size plus one latent row per subject and flavor), then scores cross-flavor agreement and applies
the thresholds of :mod:`.thresholds`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import torch

from ..flavors import group_of
from .measures import agreement, flavor_measures, robust_z
from .reference import LatentReference, TransformReference, stored_ranges, stored_statistics, transform_reference
from .thresholds import ADAPT_R2, BY_NAME, SUBJECT_THRESHOLDS, Threshold

if TYPE_CHECKING:
    from ..connectome import Cohort
    from ..inference import KrakenModel, PredictPlan

FloatArray = npt.NDArray[np.float64]

#: The measures that say "this looks like the other group", per declared group.
_GROUP_SIGNS = {"FC": (("fc_negative", "SC"), ("fc_out_of_range", "SC or Fisher-z values")),
                "SC": (("sc_negative", "FC"),)}


@dataclass
class FlavorQC:
    """The measures of one input flavor: measure -> (n_subjects,) values (NaN: not measured)."""

    flavor: str
    group: str | None
    values: dict[str, FloatArray] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  #: measures not available, and why
    thresholds: dict[str, Threshold] = field(default_factory=dict)  #: widened rules (default: the documented ones)

    def rule(self, measure: str) -> Threshold:
        """The rule this flavor's ``measure`` is held to."""
        return self.thresholds.get(measure, BY_NAME[measure])

    def flags(self, i: int) -> list[str]:
        """Names of the measures subject ``i`` breaks."""
        return [m for m, v in self.values.items() if m in BY_NAME and self.rule(m).flags(float(v[i]))]


@dataclass
class QCResult:
    """Quality control of a cohort: per-flavor measures, flags, adaptation fit quality."""

    subjects: list[str]
    flavors: list[FlavorQC]
    adaptation: list[dict[str, Any]] = field(default_factory=list)
    latent_source: str = "n/a"

    def subject_flags(self, i: int) -> list[str]:
        """``flavor: measure`` for every flag of subject ``i`` (adaptation flags count for all)."""
        out = [f"{fq.flavor}: {m}" for fq in self.flavors for m in fq.flags(i)]
        return out + [f"{a['flavor']}: adapt_r2" for a in self.adaptation if a.get("flagged")]

    def grouped_flags(self, i: int) -> str:
        """Subject ``i``'s flags as ``flavor: measure, measure; flavor: ...`` (empty when none)."""
        by: dict[str, list[str]] = {}
        for flag in self.subject_flags(i):
            flavor, _, measure = flag.partition(": ")
            by.setdefault(flavor, []).append(measure)
        return "; ".join(f"{f}: {', '.join(ms)}" for f, ms in by.items())

    def file_flags(self) -> list[str]:
        """Input files whose statistics look like the other group for most subjects (a mislabelled flavor)."""
        out = []
        n = max(1, len(self.subjects))
        for fq in self.flavors:
            for measure, other in _GROUP_SIGNS.get(fq.group or "", ()):
                k = sum(fq.rule(measure).flags(float(v)) for v in fq.values.get(measure, ()))
                if k > n / 2:
                    out.append(f"{fq.flavor}: {k} of {n} subjects look like {other} ({BY_NAME[measure].label} "
                               f"{fq.rule(measure).rule()}); is the flavor name right?")
        return out

    @property
    def flagged(self) -> list[int]:
        """Rows of the flagged subjects."""
        return [i for i in range(len(self.subjects)) if self.subject_flags(i)]

    def rows(self) -> list[dict[str, Any]]:
        """One row per subject and flavor: subject, flavor, every measure, flags."""
        out = []
        for i, s in enumerate(self.subjects):
            for fq in self.flavors:
                row: dict[str, Any] = {"subject": s, "flavor": fq.flavor}
                row.update({m: _num(v[i]) for m, v in fq.values.items()})
                row["flags"] = fq.flags(i)
                out.append(row)
        return out

    def to_dict(self) -> dict[str, Any]:
        """The ``qc`` entry of ``kraken run --json``."""
        return {"subjects": len(self.subjects), "flagged_subjects": [self.subjects[i] for i in self.flagged],
                "file_flags": self.file_flags(),
                "thresholds": {t.measure: t.rule() for t in (*SUBJECT_THRESHOLDS, ADAPT_R2)},
                "widened_thresholds": {fq.flavor: {m: t.rule() for m, t in fq.thresholds.items()}
                                       for fq in self.flavors if fq.thresholds},
                "latent_reference": self.latent_source,
                "notes": {fq.flavor: fq.notes for fq in self.flavors if fq.notes},
                "adaptation": self.adaptation, "rows": self.rows()}


def _num(v: Any) -> float | None:
    f = float(v)
    return None if f != f else round(f, 6)


def adaptation_quality(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each ``--adapt`` fit with its R² and whether it is flagged (``adapt_r2`` threshold)."""
    return [{"flavor": a["flavor"], "mode": a["mode"], "fit_r2": float(a["fit_r2"]), "slope": float(a["slope"]),
             "flagged": ADAPT_R2.flags(float(a["fit_r2"]))} for a in summaries]


def _latent_refs(model: KrakenModel, qc_latents: LatentReference | None) -> dict[str, LatentReference]:
    _, stored = stored_statistics(model.checkpoint.raw)
    if qc_latents is not None:  # the user's reference wins over what the checkpoint stores
        return {f: qc_latents for f in model.flavors}
    return stored


@torch.no_grad()
def _encode_chunk(model: KrakenModel, plan: PredictPlan, arrays: Mapping[str, Any],
                  acc: dict[str, dict[str, list[FloatArray]]], latents: dict[str, list[FloatArray]]) -> None:
    """Measures and latents of one chunk of subjects, appended to ``acc`` and ``latents``."""
    for name, idx in plan.model_index.items():
        x = np.asarray(arrays[name], dtype=np.float64)
        t = model.transform_for(model.flavors[idx])
        xa = plan.adaptations[name].apply(x) if name in plan.adaptations else x
        for m, v in flavor_measures(t, x, _group(name, model.flavors[idx]), xa).items():
            acc[name].setdefault(m, []).append(v)
        z = model.net.encode(t.as_torch(model.device).transform(xa), idx)
        latents[name].append(z.float().cpu().numpy().astype(np.float64))


def _widened(ranges: Mapping[str, tuple[float, float]], lat: LatentReference | None) -> dict[str, Threshold]:
    """Documented rules widened to a stored held-out range (kraken-trained checkpoints; see thresholds)."""
    r = dict(ranges)
    if lat is not None:
        r["latent"] = (lat.q01, lat.q99)  # the reference in use: the checkpoint's, or --qc-latents' own
    return {m: BY_NAME[m].widened(*r[m]) for m in r if m in BY_NAME and BY_NAME[m].widened(*r[m]) != BY_NAME[m]}


def _group(name: str, model_flavor: str) -> str | None:
    return group_of(name) or group_of(model_flavor)


def _notes(ref: TransformReference, lat: LatentReference | None, n_flavors: int) -> list[str]:
    notes = []
    if ref.residual != ref.residual:
        notes.append("residual n/a: the transform is not PCA or its file lacks train_subjects/explained variance")
    if ref.score != ref.score:
        notes.append("score n/a: the transform file lacks train_subjects (kraken-trained checkpoints store it)")
    if lat is None:
        notes.append("latent n/a: no training latents (train with kraken, or give --qc-latents FILE)")
    if n_flavors < 2:
        notes.append("agreement n/a: needs two or more connectome inputs (and 8 or more subjects)")
    return notes


def assess(model: KrakenModel, cohort: Cohort, plan: PredictPlan, *, qc_latents: LatentReference | None = None,
           chunk_size: int = 256) -> QCResult:
    """Every quality measure of every connectome input of ``plan`` (see README "Quality control")."""
    names = list(plan.model_index)
    acc: dict[str, dict[str, list[FloatArray]]] = {n: {} for n in names}
    latents: dict[str, list[FloatArray]] = {n: [] for n in names}
    for start in range(0, cohort.n_subjects, max(1, chunk_size)):
        _encode_chunk(model, plan, {n: cohort.read(n, start, start + chunk_size) for n in names}, acc, latents)
    z = {n: np.concatenate(latents[n]) for n in names}
    agree = agreement(z)
    stats, _ = stored_statistics(model.checkpoint.raw)
    lat_refs = _latent_refs(model, qc_latents)
    out = []
    for n in names:
        mf = model.flavors[plan.model_index[n]]
        ref = transform_reference(model.transform_for(mf), stats.get(mf))
        vals = {m: np.concatenate(v) for m, v in acc[n].items()}
        vals["residual"] = vals["residual"] / ref.residual
        vals["score"] = vals["score"] / ref.score
        lat = lat_refs.get(mf)
        vals["latent"] = lat.distance(z[n]) if lat is not None else np.full(cohort.n_subjects, np.nan)
        vals["agreement_ratio"] = agree.get(n, np.full(cohort.n_subjects, np.nan))
        vals["agreement"] = robust_z(np.log(np.maximum(vals["agreement_ratio"], 1e-12)))
        fq = FlavorQC(n, _group(n, mf), vals, _notes(ref, lat, len(names)))
        fq.thresholds = _widened(stored_ranges(model.checkpoint.raw, mf), lat)
        out.append(fq)
    source = next(iter(lat_refs.values())).source if lat_refs else "n/a"
    return QCResult(list(cohort.subjects), out,
                    adaptation_quality([a.summary() for a in plan.adaptations.values()]), source)
