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
from .measures import pca_distance, standardized_distance, unit_rows

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

    @classmethod
    def from_latents(cls, z: npt.ArrayLike, source: str) -> LatentReference:
        """The reference of latents ``z`` of shape (n_subjects, n_latent)."""
        u = unit_rows(z)
        mean, std = u.mean(axis=0), u.std(axis=0)
        typical = float(np.median(standardized_distance(u, mean, std)))
        return cls(mean, std, typical, int(u.shape[0]), source)

    def distance(self, z: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Standardised distance of each latent over the training subjects' typical one."""
        return standardized_distance(z, self.mean, self.std) / max(self.typical, 1e-12)

    def to_dict(self) -> dict[str, Any]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std],
                "typical": self.typical, "n_subjects": self.n_subjects}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str) -> LatentReference:
        return cls(np.asarray(d["mean"], dtype=np.float64), np.asarray(d["std"], dtype=np.float64),
                   float(d["typical"]), int(d.get("n_subjects", 0)), source)


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


def transform_reference(t: Transform, stats: Mapping[str, Any] | None) -> TransformReference:
    """kraken's stored statistics of this flavor when present, else the legacy derivation."""
    if stats:
        return TransformReference(float(stats.get("residual_median", NA)), float(stats.get("score_median", NA)),
                                  "kraken training statistics")
    return legacy_transform_reference(t)


def transform_statistics(t: Transform, x_train: npt.ArrayLike) -> dict[str, float]:
    """The ``kraken_qc`` entry of one flavor: medians and 99th percentiles over training rows."""
    residual, score = pca_distance(t, x_train)
    out: dict[str, float] = {}
    for name, v in (("residual", residual), ("score", score)):
        finite = v[np.isfinite(v)]
        out[f"{name}_median"] = float(np.median(finite)) if finite.size else NA
        out[f"{name}_q99"] = float(np.quantile(finite, 0.99)) if finite.size else NA
    return out


def qc_statistics(transforms: Mapping[str, Transform], train_rows: Mapping[str, npt.ArrayLike],
                  latents: Mapping[str, npt.ArrayLike] | None = None) -> dict[str, Any]:
    """The ``kraken_qc`` checkpoint entry: per-flavor transform statistics and latent references."""
    first = next(iter(train_rows.values()), np.zeros((0, 0)))
    d: dict[str, Any] = {"version": QC_STATS_VERSION, "n_subjects": int(np.shape(first)[0]),
                         "transforms": {f: transform_statistics(transforms[f], x) for f, x in train_rows.items()}}
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
