"""The transform base class: scikit-learn's estimator API, input checks, and the torch adapter."""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import torch

from ..errors import KrakenNotFittedError, TransformError

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

    def __init__(self, transform: Transform, device: torch.device | str | None = None) -> None:
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

    def set_params(self, **params: Any) -> Transform:
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

    def fit(self, X: npt.ArrayLike, y: Any = None) -> Transform:
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

    def as_torch(self, device: torch.device | str | None = None) -> TorchTransform:
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
