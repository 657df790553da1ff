"""Input transforms between edge space and the network's working space (UPSTREAM 3).

Each transform is a scikit-learn transformer: ``__init__`` stores arguments (``get_params`` /
``set_params``), ``fit(X)`` sets attributes ending in ``_`` and returns ``self``, and
``transform`` / ``inverse_transform`` / ``fit_transform`` take and return numpy arrays of shape
``(n_subjects, n_features)`` (float32 stays float32, anything else is computed in float64);
scikit-learn's own estimator checks run on them in the tests. The arithmetic is written once, in
torch: :meth:`Transform.as_torch` gives the adapter the network uses (float32 tensors on a device).
``params()`` / :func:`transform_from_params` convert to and from the original's ``*_ioxfm_*`` dict
layout; files are read and written in :mod:`.transform_files`.
"""

from __future__ import annotations

import inspect
import re
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch

from .errors import KrakenNotFittedError, SpecError, TransformError

ArrayLike = npt.NDArray[np.floating] | torch.Tensor


def _as_tensor(x: ArrayLike, device: torch.device | str | None = None) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.to(device=device if device is not None else x.device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(x), dtype=torch.float32, device=device)


def _np(x: Any) -> npt.NDArray[np.float32]:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def _scalar(x: Any) -> float:
    return float(np.asarray(_np(x)).reshape(-1)[0])


class TransformShapeError(TransformError, ValueError):
    """Data of another width than the transform was fitted on (also a ValueError, as scikit-learn expects)."""


class TransformInputError(TransformError, ValueError):
    """Data a transform cannot take: not a 2-D array of finite real numbers."""


def _check_array(X: Any, est: object, *, minimum_rows: int = 1) -> npt.NDArray[np.floating]:
    """``X`` as a 2-D float array (float32 kept, else float64), refusing what scikit-learn refuses."""
    name = type(est).__name__
    if hasattr(X, "toarray") or hasattr(X, "tocsr"):
        raise TypeError(f"{name} does not take sparse data; convert it with X.toarray()")
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.dtype.kind == "c":
        raise TransformInputError(f"Complex data not supported by {name}")
    arr = arr if arr.dtype == np.float32 else np.asarray(arr, dtype=np.float64)
    if arr.ndim != 2:
        raise TransformInputError(f"Expected 2D array, got {arr.ndim}D array instead (shape {arr.shape}); "
                                  "Reshape your data to (n_subjects, n_features)")
    if arr.shape[1] == 0:
        raise TransformInputError(f"0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if arr.shape[0] < minimum_rows:
        raise TransformInputError(f"{name} needs at least {minimum_rows} samples, got {arr.shape[0]} sample(s) "
                                  f"(shape={arr.shape})")
    if not np.isfinite(arr).all():
        raise TransformInputError(f"Input contains NaN or inf: {name} needs finite values")
    return np.ascontiguousarray(arr)


class TorchTransform:
    """A fitted :class:`Transform` on torch tensors: float32 in and out, on one device (the network's side)."""

    def __init__(self, transform: "Transform", device: torch.device | str | None = None) -> None:
        self.base = transform
        self.device = device

    def transform(self, X: ArrayLike) -> torch.Tensor:
        """Edge space -> working space."""
        t = self.base
        t._check()
        x = _as_tensor(X, self.device)
        if x.shape[-1] != t.n_features_in_:
            raise TransformShapeError(f"{t.kind} transform expects {t.n_features_in_} features, got {x.shape[-1]}",
                                      hint="the transform file does not match this flavor's data")
        return t._forward(x)

    def inverse_transform(self, Y: ArrayLike) -> torch.Tensor:
        """Working space -> edge space."""
        self.base._check()
        return self.base._inverse(_as_tensor(Y, self.device))


class Transform:
    """Base class: identity (type ``none``)."""

    kind: ClassVar[str] = "none"

    def __init__(self) -> None:
        self._cache: dict[tuple[str, str, torch.dtype], torch.Tensor] = {}

    # -- scikit-learn's estimator API -------------------------------------------------------------
    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind == p.POSITIONAL_OR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The ``__init__`` arguments, as scikit-learn's ``clone`` and grid searches use them."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> "Transform":
        for name, value in params.items():
            if name not in self._get_param_names():
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}")
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(estimator_type=None, target_tags=TargetTags(required=False),
                    transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
                    input_tags=InputTags())

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "n_features_in_")

    def fit(self, X: npt.ArrayLike, y: Any = None) -> "Transform":
        """Fit on training rows ``X`` of shape (n_subjects, n_features)."""
        X = _check_array(X, self, minimum_rows=self._min_rows())
        self._cache = {}
        self.n_features_in_ = int(X.shape[1])
        self._fit(np.asarray(X, dtype=np.float64))
        self.n_features_out_ = self._out_dim()
        return self

    def fit_transform(self, X: npt.ArrayLike, y: Any = None) -> npt.NDArray[np.floating]:
        return self.fit(X).transform(X)

    def transform(self, X: npt.ArrayLike) -> npt.NDArray[np.floating]:
        """Edge space -> working space (numpy in and out)."""
        self._check()
        X = self._checked(X)
        return self._forward(torch.from_numpy(X)).numpy()

    def inverse_transform(self, X: npt.ArrayLike) -> npt.NDArray[np.floating]:
        """Working space -> edge space (numpy in and out)."""
        self._check()
        Y = _check_array(X, self)
        if Y.shape[1] != self.n_features_out_:
            raise TransformShapeError(f"X has {Y.shape[1]} features, but {type(self).__name__} is expecting "
                                      f"{self.n_features_out_} features as input")
        return self._inverse(torch.from_numpy(Y)).numpy()

    def as_torch(self, device: torch.device | str | None = None) -> "TorchTransform":
        """The same transform on float32 tensors on ``device`` (None: where the data already is)."""
        return TorchTransform(self, device)

    # -- the arithmetic, in torch ------------------------------------------------------------------
    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        pass

    def _min_rows(self) -> int:
        return 1

    def _out_dim(self) -> int:
        return self.n_features_in_

    def _check(self) -> None:
        if not hasattr(self, "n_features_in_"):
            raise KrakenNotFittedError(f"{type(self).__name__} is not fitted yet; call fit first")

    def _checked(self, X: npt.ArrayLike) -> npt.NDArray[np.floating]:
        X = _check_array(X, self)
        if X.shape[1] != self.n_features_in_:
            raise TransformShapeError(f"X has {X.shape[1]} features, but {type(self).__name__} is expecting "
                                      f"{self.n_features_in_} features as input",
                                      hint="the transform file does not match this flavor's data")
        return X

    def _t(self, name: str, device: torch.device, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        key = (name, str(device), dtype)
        if key not in self._cache:
            self._cache[key] = torch.as_tensor(np.asarray(getattr(self, name)), dtype=dtype, device=device)
        return self._cache[key]

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y

    # -- properties shared by adaptation and evaluation ------------------------------------------
    def training_mean(self) -> npt.NDArray[np.float32] | None:
        """Per-feature mean of the training data in edge space, when the transform carries one."""
        for name in ("mean_", "pca_mean_"):
            if hasattr(self, name) and np.ndim(getattr(self, name)) >= 1:
                return np.asarray(getattr(self, name), dtype=np.float32).reshape(-1)
        return None

    @property
    def spec(self) -> str:
        """The short form used in names, e.g. ``pc64`` or ``cfeat``."""
        return self.kind

    # -- legacy dict layout -------------------------------------------------------------------------
    def params(self) -> dict[str, Any]:
        """The original's ``params`` dict for this transform (UPSTREAM 3.3)."""
        self._check()
        p: dict[str, Any] = {"type": self.kind, "input_dimension": self.n_features_in_,
                             "output_dimension": self.n_features_out_}
        p.update(self._params())
        return p

    def _params(self) -> dict[str, Any]:
        return {}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        pass

    def __repr__(self) -> str:
        fitted = f", {self.n_features_in_}->{self.n_features_out_}" if hasattr(self, "n_features_in_") else ""
        return f"{type(self).__name__}({self.spec!r}{fitted})"


class PCATransform(Transform):
    """``100 * (x - mean) V^T / ||train scores||_F`` with V from ``sklearn.PCA(k, random_state=0)``."""

    kind = "pca"

    def __init__(self, n_components: int = 256) -> None:
        super().__init__()
        self.n_components = n_components

    @property
    def spec(self) -> str:
        return f"pc{self.n_components}"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        from sklearn.decomposition import PCA

        k = min(self.n_components, X.shape[0], X.shape[1])
        if k < self.n_components:
            raise TransformInputError(
                f"pca{self.n_components} needs at least {self.n_components} training subjects and features, got "
                f"{X.shape[0]} sample(s) x {X.shape[1]} feature(s)",
                hint=f"use a smaller PCA, e.g. --transformation pca{max(1, min(X.shape) - 1)}")
        pca = PCA(n_components=k, random_state=0).fit(X)
        self.pca_mean_ = pca.mean_.astype(np.float32)
        self.components_ = pca.components_.astype(np.float32)
        scores = (X - pca.mean_) @ pca.components_.T
        self.input_normscale_ = np.float32(np.linalg.norm(scores))
        self.output_normscale_ = np.float32(100.0)
        self.explained_variance_ratio_ = float(np.sum(pca.explained_variance_ratio_))

    def _out_dim(self) -> int:
        return int(self.components_.shape[0])

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        d, dt = x.device, x.dtype
        return self.output_normscale_ * ((x - self._t("pca_mean_", d, dt)) @ self._t("components_", d, dt).T) \
            / self.input_normscale_

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        d, dt = y.device, y.dtype
        return ((y / self.output_normscale_) * self.input_normscale_) @ self._t("components_", d, dt) \
            + self._t("pca_mean_", d, dt)

    def _params(self) -> dict[str, Any]:
        return {"reduce_dimension": int(self.n_components),
                "input_normscale": np.array([self.input_normscale_], dtype=np.float32),
                "output_normscale": np.array([self.output_normscale_], dtype=np.float32),
                "pca_explained_variance_ratio": getattr(self, "explained_variance_ratio_", float("nan")),
                "pca_input_mean": self.pca_mean_.reshape(-1), "pca_components": self.components_}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        self.components_ = _np(p["pca_components"])
        self.pca_mean_ = _np(p["pca_input_mean"]).reshape(-1)
        self.input_normscale_ = np.float32(_scalar(p["input_normscale"]))
        self.output_normscale_ = np.float32(_scalar(p["output_normscale"]))
        self.explained_variance_ratio_ = float(np.nan_to_num(_scalar(p.get("pca_explained_variance_ratio", np.nan)),
                                                             nan=np.nan))
        self.n_components = int(self.components_.shape[0])


class TSVDTransform(PCATransform):
    """``100 * x V^T / ||train scores||_F`` with V from ``TruncatedSVD(k, random_state=0)`` (no centring)."""

    kind = "tsvd"

    @property
    def spec(self) -> str:
        return f"tsvd{self.n_components}"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        from sklearn.decomposition import TruncatedSVD

        svd = TruncatedSVD(n_components=self.n_components, random_state=0).fit(X)
        self.components_ = svd.components_.astype(np.float32)
        self.pca_mean_ = np.zeros(X.shape[1], dtype=np.float32)
        self.input_normscale_ = np.float32(np.linalg.norm(X @ svd.components_.T))
        self.output_normscale_ = np.float32(100.0)

    def training_mean(self) -> npt.NDArray[np.float32] | None:
        return None

    def _params(self) -> dict[str, Any]:
        return {"reduce_dimension": int(self.n_components),
                "input_normscale": np.array([self.input_normscale_], dtype=np.float32),
                "output_normscale": np.array([self.output_normscale_], dtype=np.float32),
                "tsvd_components": self.components_}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        self.components_ = _np(p["tsvd_components"])
        self.pca_mean_ = np.zeros(self.components_.shape[1], dtype=np.float32)
        self.input_normscale_ = np.float32(_scalar(p["input_normscale"]))
        self.output_normscale_ = np.float32(_scalar(p["output_normscale"]))
        self.n_components = int(self.components_.shape[0])


class _Affine(Transform):
    """``(x - shift) / scale`` with per-feature or scalar shift and scale (the non-PCA types)."""

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[torch.Tensor | float, torch.Tensor | float]:
        raise NotImplementedError

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        shift, scale = self._shift_scale(x.device, x.dtype)
        return (x - shift) / scale

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        shift, scale = self._shift_scale(y.device, y.dtype)
        return y * scale + shift


class NormTransform(_Affine):
    """``100 x / rms(X_train)``."""

    kind = "norm"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.input_normscale_ = np.float32(np.linalg.norm(X) / np.sqrt(X.size))
        self.output_normscale_ = np.float32(100.0)

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[float, float]:
        return 0.0, float(self.input_normscale_ / self.output_normscale_)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_normscale_ * x / self.input_normscale_

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y / self.output_normscale_ * self.input_normscale_

    def _params(self) -> dict[str, Any]:
        return {"input_normscale": np.array([self.input_normscale_], np.float32),
                "output_normscale": np.array([self.output_normscale_], np.float32)}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        self.input_normscale_ = np.float32(_scalar(p["input_normscale"]))
        self.output_normscale_ = np.float32(_scalar(p["output_normscale"]))


class VarNormTransform(_Affine):
    """``x / v`` with v the summed per-feature variance of the training data."""

    kind = "varnorm"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.variance_ = np.float32(np.sum(np.var(X, axis=0)))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[float, float]:
        return 0.0, float(self.variance_)

    def _params(self) -> dict[str, Any]:
        return {"input_variance": np.float32(self.variance_)}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        self.variance_ = np.float32(_scalar(p["input_variance"]))


class ZScoreTransform(_Affine):
    """``(x - m) / s`` with the scalar mean and std of all training values."""

    kind = "zscore"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.scalar_mean_ = np.float32(np.mean(X))
        self.scalar_std_ = np.float32(np.std(X))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[float, float]:
        return float(self.scalar_mean_), float(self.scalar_std_)

    def _params(self) -> dict[str, Any]:
        return {"input_mean": np.float32(self.scalar_mean_), "input_stdev": np.float32(self.scalar_std_)}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        self.scalar_mean_ = np.float32(_scalar(p["input_mean"]))
        self.scalar_std_ = np.float32(_scalar(p["input_stdev"]))


class ZFeatTransform(_Affine):
    """Per-feature z-score (``nanmean``/``nanstd``; zero std replaced by 1)."""

    kind = "zfeat"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.mean_ = np.nanmean(X, axis=0, keepdims=True).astype(np.float32)
        sd = np.nanstd(X, axis=0, keepdims=True)
        sd[sd == 0] = 1
        self.std_ = sd.astype(np.float32)

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return self._t("mean_", d, dt), self._t("std_", d, dt)

    def _params(self) -> dict[str, Any]:
        return {"input_mean": self.mean_, "input_stdev": self.std_}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        self.mean_ = _np(p["input_mean"]).reshape(1, -1)
        self.std_ = _np(p["input_stdev"]).reshape(1, -1)


class CFeatTransform(_Affine):
    """Per-feature centring: ``x - mean``."""

    kind = "cfeat"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.mean_ = np.nanmean(X, axis=0, keepdims=True).astype(np.float32)

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, float]:
        return self._t("mean_", d, dt), 1.0

    def _params(self) -> dict[str, Any]:
        return {"input_mean": self.mean_}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        self.mean_ = _np(p["input_mean"]).reshape(1, -1)


class CFeatNormTransform(CFeatTransform):
    """``(x - mean) / r`` with r the mean row norm of the centred training data."""

    kind = "cfeat+norm"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        super()._fit(X)
        self.rownorm_ = np.float32(np.mean(np.linalg.norm(X - self.mean_, axis=1)))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, float]:
        return self._t("mean_", d, dt), float(self.rownorm_)

    def _params(self) -> dict[str, Any]:
        return {"input_mean": self.mean_, "input_rownorm_mean": np.float32(self.rownorm_)}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        super()._load(p, n_in)
        self.rownorm_ = np.float32(_scalar(p["input_rownorm_mean"]))


class CFeatVarNormTransform(CFeatTransform):
    """``(x - mean) / v`` with v the summed variance of the centred training data."""

    kind = "cfeat+varnorm"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        super()._fit(X)
        self.variance_ = np.float32(np.sum(np.var(X - self.mean_, axis=0)))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, float]:
        return self._t("mean_", d, dt), float(self.variance_)

    def _params(self) -> dict[str, Any]:
        return {"input_mean": self.mean_, "input_variance": np.float32(self.variance_)}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        super()._load(p, n_in)
        self.variance_ = np.float32(_scalar(p["input_variance"]))


class ZScoreRowNormTransform(ZScoreTransform):
    """``(x - m) / (s r)``: scalar z-score, then divide by the mean row norm."""

    kind = "zscore+rownorm"

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        super()._fit(X)
        self.rownorm_ = np.float32(np.mean(np.linalg.norm((X - self.scalar_mean_) / self.scalar_std_, axis=1)))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[float, float]:
        return float(self.scalar_mean_), float(self.scalar_std_ * self.rownorm_)

    def _params(self) -> dict[str, Any]:
        return {**super()._params(), "input_rownorm_mean": np.float32(self.rownorm_)}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        super()._load(p, n_in)
        self.rownorm_ = np.float32(_scalar(p["input_rownorm_mean"]))


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
