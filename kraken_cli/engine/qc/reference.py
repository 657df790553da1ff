"""What the measures compare against: the training population as a transform and a model see it.

* :class:`TransformReference`: the typical training subject's PCA residual and score norm, from
  the statistics kraken's trainer stores in the checkpoint (``kraken_qc``), else derived from what
  a legacy transform file carries (UPSTREAM 3.3: the Frobenius norm of the training scores, the
  number of training subjects and the explained variance ratio), else not available.
* :class:`LatentReference`: mean and per-dimension spread of unit-length training latents, from
  the checkpoint's ``kraken_qc`` statistics or from a latents file (``--qc-latents``, e.g. the
  released fusion-latent target file of the published model).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..transforms import PCATransform, Transform, TSVDTransform
from .measures import flavor_measures, standardized_distance, unit_rows

#: Version of the ``kraken_qc`` checkpoint entry.
QC_STATS_VERSION = 1
NA = float("nan")


@dataclass(frozen=True)
class TransformReference:
    """Typical training values of :func:`~.measures.pca_distance` (NaN: not available)."""

    residual: float = NA
    score: float = NA
    source: str = "n/a"


@dataclass(frozen=True)
class LatentReference:
    """Unit-length training latents summarised: per-dimension mean and std, typical distance."""

    mean: npt.NDArray[np.float64]
    std: npt.NDArray[np.float64]
    typical: float
    n_subjects: int
    source: str
    q01: float = NA  #: 1 % and 99 % of the reference's own distance ratios (kraken-trained checkpoints)
    q99: float = NA

    @classmethod
    def from_latents(cls, z: npt.ArrayLike, source: str) -> LatentReference:
        """The reference of latents ``z`` of shape (n_subjects, n_latent)."""
        u = unit_rows(z)
        mean, std = u.mean(axis=0), u.std(axis=0)
        d = standardized_distance(u, mean, std)
        typical = float(np.median(d))
        q01, q99 = (float(q) for q in np.quantile(d / max(typical, 1e-12), [0.01, 0.99]))
        return cls(mean, std, typical, int(u.shape[0]), source, q01, q99)

    def distance(self, z: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Standardised distance of each latent over the training subjects' typical one."""
        return standardized_distance(z, self.mean, self.std) / max(self.typical, 1e-12)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
                "typical": self.typical, "n_subjects": self.n_subjects, "range": [self.q01, self.q99]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> LatentReference:
        lo, hi = (float(v) for v in d.get("range", (NA, NA)))
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64),
                   float(d["typical"]), int(d.get("n_subjects", 0)), source, lo, hi)


def legacy_transform_reference(t: Transform) -> TransformReference:
    """What a transform file without kraken's statistics allows (UPSTREAM 3.3).

    PCA: ``input_normscale`` s is the Frobenius norm of all N training score rows, so a typical
    training score norm is ``s / sqrt(N)``; the training residual energy is ``(1 - evr) / evr``
    times the score energy. N comes from the file's ``train_subjects``, evr from
    ``pca_explained_variance_ratio``; without them the measure is not available.
    """
    n = getattr(t, "n_train_subjects_", None)
    if not isinstance(t, PCATransform) or not n:
        return TransformReference()
    score = float(t.input_normscale_) / math.sqrt(n)
    evr = float(getattr(t, "explained_variance_ratio_", NA))
    residual = score * math.sqrt((1 - evr) / evr) if (not isinstance(t, TSVDTransform) and 0 < evr < 1) else NA
    return TransformReference(residual, score, "transform file")


def stored_ranges(raw: Mapping[str, Any], flavor: str) -> dict[str, tuple[float, float]]:
    """Measure -> held-out 1-99 % range stored for ``flavor`` (what thresholds are widened to)."""
    qc = raw.get("kraken_qc")
    if not isinstance(qc, Mapping) or int(qc.get("version", 0)) != QC_STATS_VERSION:
        return {}
    ranges = dict(dict(qc.get("transforms", {})).get(flavor, {}).get("ranges", {}))
    lat = dict(qc.get("latents", {})).get(flavor)
    if isinstance(lat, Mapping) and "range" in lat:
        ranges["latent"] = lat["range"]
    return {str(k): (float(v[0]), float(v[1])) for k, v in ranges.items()}


def transform_reference(t: Transform, stats: Mapping[str, Any] | None) -> TransformReference:
    """kraken's stored statistics of this flavor when present, else the legacy derivation."""
    if stats:
        return TransformReference(float(stats.get("residual_median", NA)), float(stats.get("score_median", NA)),
                                  "kraken training statistics")
    return legacy_transform_reference(t)


def _median(v: npt.NDArray[np.float64]) -> float:
    finite = v[np.isfinite(v)]
    return float(np.median(finite)) if finite.size else NA


def _range(v: npt.NDArray[np.float64]) -> list[float]:
    finite = v[np.isfinite(v)]
    return [float(q) for q in np.quantile(finite, [0.01, 0.99])] if finite.size else [NA, NA]


#: Measures that do not depend on the fit: their range is taken over every subject the model saw.
FIT_FREE = ("fc_out_of_range", "fc_negative", "sc_negative", "sc_density", "scale", "pattern")


def transform_statistics(t: Transform, x: npt.ArrayLike, group: str | None = None,
                         x_all: npt.ArrayLike | None = None) -> dict[str, Any]:
    """The ``kraken_qc`` entry of one flavor over held-out reference rows ``x``.

    ``residual_median`` and ``score_median``: the typical subject the model saw, over ``x_all``
    (training and validation subjects; default ``x``), in edge units: what the residual and score
    ratios divide by, as the legacy derivation divides by the typical training subject. ``ranges``:
    the 1-99 % range over ``x`` of every measure as :func:`~.assess.assess` reports it, and of the
    measures free of the fit (:data:`FIT_FREE`) over ``x_all``.
    """
    m = flavor_measures(t, x, group)
    every = flavor_measures(t, x_all, group) if x_all is not None else m
    out: dict[str, Any] = {"residual_median": _median(every["residual"]), "score_median": _median(every["score"])}
    m["residual"] = m["residual"] / out["residual_median"]
    m["score"] = m["score"] / out["score_median"]
    m.update({k: v for k, v in every.items() if k in FIT_FREE})
    out["ranges"] = {k: _range(v) for k, v in m.items()}
    return out


def qc_statistics(transforms: Mapping[str, Transform], rows: Mapping[str, npt.ArrayLike], *, split: str,
                  latents: Mapping[str, npt.ArrayLike] | None = None,
                  groups: Mapping[str, str | None] | None = None,
                  all_rows: Mapping[str, npt.ArrayLike] | None = None) -> dict[str, Any]:
    """The ``kraken_qc`` checkpoint entry: per-flavor transform statistics and latent references.

    Parameters
    ----------
    transforms : mapping of str to Transform
    rows : mapping of str to array-like of shape (n_subjects, n_edges)
        Edge rows the transform statistics are taken over: held-out (validation) subjects when
        there are enough, since new data are held-out data (training rows fit the PCA better).
    split : str
        Which subjects ``rows`` holds (recorded).
    latents : mapping of str to array-like of shape (n_subjects, n_latent), optional
        Training subjects' latents per flavor.
    groups : mapping of str to {"SC", "FC", None}, optional
        Each flavor's group (default: from its name).
    all_rows : mapping of str to array-like, optional
        Every subject the model saw (training and validation), for the ranges of :data:`FIT_FREE`.
    """
    from ..flavors import group_of

    first = next(iter(rows.values()), np.zeros((0, 0)))
    g = dict(groups or {})
    d: dict[str, Any] = {"version": QC_STATS_VERSION, "split": split, "n_subjects": int(np.shape(first)[0]),
                         "transforms": {f: transform_statistics(transforms[f], x, g.get(f) or group_of(f),
                                                                (all_rows or {}).get(f))
                                        for f, x in rows.items()}}
    if latents:
        d["latents"] = {f: LatentReference.from_latents(z, "training").to_dict() for f, z in latents.items()}
    return d


def stored_statistics(raw: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, LatentReference]]:
    """The transform statistics and latent references of a checkpoint dict (empty for the original's)."""
    qc = raw.get("kraken_qc")
    if not isinstance(qc, Mapping) or int(qc.get("version", 0)) != QC_STATS_VERSION:
        return {}, {}
    lat = {str(f): LatentReference.from_dict(d, "kraken training statistics")
           for f, d in dict(qc.get("latents", {})).items()}
    return dict(qc.get("transforms", {})), lat


def pooled_reference(latents: Sequence[npt.ArrayLike], source: str) -> LatentReference:
    """One reference from several latent arrays stacked (e.g. a file with several fields)."""
    return LatentReference.from_latents(np.concatenate([np.asarray(z, dtype=np.float64) for z in latents]), source)


def read_reference_latents(file: str, *, latent_size: int) -> LatentReference:
    """A :class:`LatentReference` from a latents ``.mat`` file (``--qc-latents``).

    Accepts what ``kraken run --outputs encoded`` writes and the released fusion-latent target
    file: a top-level ``encoded``, else ``predicted_alltypes.fusion.encoded``, else the only
    ``predicted_alltypes.<name>.encoded``, else all of them pooled.
    """
    from ..errors import InputDataError
    from ..io._mat import to_numpy
    from ..io.subjects import mat_with_subjects

    with mat_with_subjects(file, what="latents file", option="--qc-latents",
                           hint="give the output of `kraken run ... --outputs encoded` on training subjects") as (t, _):
        if "encoded" in t and not isinstance(t["encoded"], Mapping):
            found = [t["encoded"]]
        else:
            pa = t.get("predicted_alltypes")
            enc = {k: v["encoded"] for k, v in (pa.items() if isinstance(pa, Mapping) else ())
                   if isinstance(v, Mapping) and "encoded" in v}
            found = [enc["fusion"]] if "fusion" in enc else list(enc.values())
        arrays = [np.asarray(to_numpy(a, where=file), dtype=np.float64) for a in found]
    if not arrays or any(a.ndim != 2 or a.shape[1] != latent_size or not np.isfinite(a).all() for a in arrays):
        raise InputDataError(f"{file}: no finite [subjects x {latent_size}] latents found",
                             hint="give latents of this model (kraken run --outputs encoded), not another model's")
    return pooled_reference(arrays, f"{Path(file).name}")
