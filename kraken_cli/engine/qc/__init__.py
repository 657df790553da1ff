"""Quality control of predictions: can these inputs be trusted? (``kraken run --qc``, issue 17)

* :mod:`.measures`: plausibility for the flavor, PCA residual and score norm, latent distance,
  cross-flavor agreement (small numpy functions);
* :mod:`.reference`: what the measures compare against (kraken's stored training statistics, the
  transform file's parameters, or a latents file);
* :mod:`.thresholds`: the documented flag rules;
* :mod:`.assess`: :func:`assess`, every measure over a cohort, and :class:`QCResult`.
"""

from __future__ import annotations

from .assess import FlavorQC, QCResult, adaptation_quality, assess
from .measures import agreement, mean_fit, pca_distance, plausibility
from .reference import LatentReference, TransformReference, qc_statistics, stored_statistics, transform_reference
from .thresholds import ALL_THRESHOLDS, SUBJECT_THRESHOLDS, Threshold

__all__ = ["ALL_THRESHOLDS", "SUBJECT_THRESHOLDS", "FlavorQC", "LatentReference", "QCResult", "Threshold",
           "TransformReference", "adaptation_quality", "agreement", "assess", "mean_fit", "pca_distance",
           "plausibility", "qc_statistics", "stored_statistics", "transform_reference"]
