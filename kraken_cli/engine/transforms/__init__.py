"""Input transforms between edge space and the network's working space (UPSTREAM 3).

Each transform is a scikit-learn transformer: ``__init__`` stores arguments (``get_params`` /
``set_params``), ``fit(X)`` sets attributes ending in ``_`` and returns ``self``, and
``transform`` / ``inverse_transform`` / ``fit_transform`` take and return numpy arrays of shape
``(n_subjects, n_features)`` (float32 stays float32, anything else is computed in float64);
scikit-learn's own estimator checks run on them in the tests. The arithmetic is written once, in
torch: :meth:`Transform.as_torch` gives the adapter the network uses (float32 tensors on a device).
``params()`` / :func:`transform_from_params` convert to and from the original's ``*_ioxfm_*`` dict
layout; files are read and written in :mod:`.files`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import torch

from ..errors import SpecError, TransformError
from .base import ArrayLike, TorchTransform, Transform, TransformInputError, TransformShapeError
from .kinds import (
    CFeatNormTransform,
    CFeatTransform,
    CFeatVarNormTransform,
    NormTransform,
    PCATransform,
    TSVDTransform,
    VarNormTransform,
    ZFeatTransform,
    ZScoreRowNormTransform,
    ZScoreTransform,
)

__all__ = ["ArrayLike", "CFeatNormTransform", "CFeatTransform", "CFeatVarNormTransform", "NormTransform",
           "PCATransform", "TSVDTransform", "TorchTransform", "Transform", "TransformInputError",
           "TransformShapeError", "VarNormTransform", "ZFeatTransform", "ZScoreRowNormTransform", "ZScoreTransform",
           "make_transform", "transform_from_params"]

_TYPES: dict[str, type[Transform]] = {t.kind: t for t in (
    Transform, PCATransform, TSVDTransform, NormTransform, VarNormTransform, ZScoreTransform,
    ZFeatTransform, CFeatTransform, CFeatNormTransform, CFeatVarNormTransform, ZScoreRowNormTransform)}
_ALIASES = {"cfeatnorm": "cfeat+norm", "cfeatvarnorm": "cfeat+varnorm", "zrownorm": "zscore+rownorm",
            "identity": "none"}


def make_transform(spec: str) -> Transform:
    """An unfitted transform from a CLI string: ``pcaN``/``pcN``, ``tsvdN``, ``cfeat``, ``zfeat``, ...

    Raises
    ------
    SpecError
        For an unknown string (the original silently fell back to PCA-256).
    """
    s = spec.strip().lower()
    m = re.fullmatch(r"pca?(\d+)", s)
    if m:
        return PCATransform(int(m.group(1)))
    m = re.fullmatch(r"tsvd(\d+)", s)
    if m:
        return TSVDTransform(int(m.group(1)))
    s = _ALIASES.get(s, s)
    if s in _TYPES and s not in ("pca", "tsvd"):  # those need a size: pca256, tsvd128
        return _TYPES[s]()
    raise SpecError(f"unknown transformation {spec!r}",
                    hint="use pcaN (e.g. pca256), tsvdN, cfeat, zfeat, varnorm, cfeat+norm, cfeat+varnorm, "
                         "zscore+rownorm, zscore, norm or none")


def transform_from_params(params: dict[str, Any], *, source: str = "<params>") -> Transform:
    """Rebuild a fitted transform from the original's params dict."""
    kind = str(params.get("type", "")).lower()
    if kind == "lognorm":
        raise TransformError(f"{source}: lognorm transforms cannot be rebuilt (the original saves them "
                             "without the parameters needed)", hint="refit with kraken train")
    cls = _TYPES.get(kind)
    if cls is None:
        raise TransformError(f"{source}: unknown transform type {kind!r}",
                             hint=f"known types: {', '.join(sorted(_TYPES))}")
    t = cls.__new__(cls)
    Transform.__init__(t)
    try:
        t._load(params, None)
    except KeyError as exc:
        raise TransformError(f"{source}: {kind} transform lacks the field {exc.args[0]!r}",
                             hint="the transform file is incomplete") from exc
    except (TypeError, ValueError, IndexError) as exc:
        raise TransformError(f"{source}: {kind} transform has a malformed field ({exc})",
                             hint="the transform file is corrupt") from exc
    n_in = params.get("input_dimension")
    n_out = params.get("output_dimension")
    if isinstance(t, PCATransform):
        n_in, n_out = t.components_.shape[1], t.components_.shape[0]
    elif hasattr(t, "mean_"):
        n_in = n_out = int(np.size(t.mean_))
    if n_in is None:
        raise TransformError(f"{source}: {kind} transform does not record its input dimension")
    try:
        t.n_features_in_ = int(n_in)
        t.n_features_out_ = int(n_out if n_out is not None else n_in)
    except (TypeError, ValueError) as exc:
        raise TransformError(f"{source}: {kind} transform has a malformed dimension ({exc})",
                             hint="the transform file is corrupt") from exc
    _check_finite_params(t, source=source, kind=kind)
    subjects = params.get("train_subjects")
    if subjects is not None and np.ndim(subjects) == 1 and np.size(subjects) > 0:
        t.n_train_subjects_ = int(np.size(subjects))  # type: ignore[attr-defined]  # quality control (UPSTREAM 3.3)
    return t


def _check_finite_params(t: Transform, *, source: str, kind: str) -> None:
    """Refuse parameters holding NaN or Inf: every prediction through them would be NaN.

    Informational numbers (the explained variance, NaN when the file does not record it) are not checked.
    """
    for name, value in vars(t).items():
        if name.startswith("explained_variance"):
            continue
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        if isinstance(value, (np.ndarray, np.generic, float)) and np.asarray(value).dtype.kind in "fc":
            if not np.isfinite(value).all():
                raise TransformError(f"{source}: the {kind} transform's {name.strip('_')} holds NaN or Inf values",
                                     hint="the transform file is corrupt; refit it with kraken train")
