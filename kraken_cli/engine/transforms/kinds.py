"""Every transformation type of the original (UPSTREAM 3.2): PCA, truncated SVD and the affine ones."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

import numpy as np
import numpy.typing as npt
import torch

from .base import Transform, TransformInputError, _np, _scalar


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
        from ._pca import fit_pca  # scikit-learn's PCA, without importing scikit-learn

        k = min(self.n_components, X.shape[0], X.shape[1])
        if k < self.n_components:
            raise TransformInputError(
                f"pca{self.n_components} needs at least {self.n_components} training subjects and features, got "
                f"{X.shape[0]} sample(s) x {X.shape[1]} feature(s)",
                hint=f"use a smaller PCA, e.g. --transformation pca{max(1, min(X.shape) - 1)}")
        mean, components, ratio = fit_pca(X, k)
        self.pca_mean_ = mean.astype(np.float32)
        self.components_ = components.astype(np.float32)
        scores = (X - mean) @ components.T
        self.input_normscale_ = np.float32(np.linalg.norm(scores))
        self.output_normscale_ = np.float32(100.0)
        self.explained_variance_ratio_ = ratio

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


#: How an affine transform's fitted attribute is stored in the original's params dict: ``"scalar"`` a float32
#: number, ``"scalar[1]"`` a float32 array of one number (as the PCA types store their norm scales), ``"row"``
#: the per-feature array as it is (read back as shape ``(1, n_features)``).
Stored = Literal["scalar", "scalar[1]", "row"]
#: ``(key in the params dict, fitted attribute, how it is stored)`` for each stored attribute, in the dict's order.
StoredFields = tuple[tuple[str, str, Stored], ...]


def _store(value: Any, how: Stored) -> Any:
    if how == "row":
        return value
    return np.array([value], np.float32) if how == "scalar[1]" else np.float32(value)


class _Affine(Transform):
    """``(x - shift) / scale`` with per-feature or scalar shift and scale (the non-PCA types).

    Each subclass names in :attr:`stored` what the original's params dict holds for it; ``_params`` and
    ``_load`` here write and read those fields.
    """

    stored: ClassVar[StoredFields] = ()

    def _params(self) -> dict[str, Any]:
        return {key: _store(getattr(self, attr), how) for key, attr, how in self.stored}

    def _load(self, p: dict[str, Any], n_in: int | None) -> None:
        for key, attr, how in self.stored:
            setattr(self, attr, _np(p[key]).reshape(1, -1) if how == "row" else np.float32(_scalar(p[key])))

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
    stored: ClassVar[StoredFields] = (("input_normscale", "input_normscale_", "scalar[1]"),
                                      ("output_normscale", "output_normscale_", "scalar[1]"))

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.input_normscale_ = np.float32(np.linalg.norm(X) / np.sqrt(X.size))
        self.output_normscale_ = np.float32(100.0)

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[float, float]:
        return 0.0, float(self.input_normscale_ / self.output_normscale_)

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_normscale_ * x / self.input_normscale_

    def _inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y / self.output_normscale_ * self.input_normscale_


class VarNormTransform(_Affine):
    """``x / v`` with v the summed per-feature variance of the training data."""

    kind = "varnorm"
    stored: ClassVar[StoredFields] = (("input_variance", "variance_", "scalar"),)

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.variance_ = np.float32(np.sum(np.var(X, axis=0)))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[float, float]:
        return 0.0, float(self.variance_)


class ZScoreTransform(_Affine):
    """``(x - m) / s`` with the scalar mean and std of all training values."""

    kind = "zscore"
    stored: ClassVar[StoredFields] = (("input_mean", "scalar_mean_", "scalar"),
                                      ("input_stdev", "scalar_std_", "scalar"))

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.scalar_mean_ = np.float32(np.mean(X))
        self.scalar_std_ = np.float32(np.std(X))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[float, float]:
        return float(self.scalar_mean_), float(self.scalar_std_)


class ZFeatTransform(_Affine):
    """Per-feature z-score (``nanmean``/``nanstd``; zero std replaced by 1)."""

    kind = "zfeat"
    stored: ClassVar[StoredFields] = (("input_mean", "mean_", "row"), ("input_stdev", "std_", "row"))

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.mean_ = np.nanmean(X, axis=0, keepdims=True).astype(np.float32)
        sd = np.nanstd(X, axis=0, keepdims=True)
        sd[sd == 0] = 1
        self.std_ = sd.astype(np.float32)

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        return self._t("mean_", d, dt), self._t("std_", d, dt)


class CFeatTransform(_Affine):
    """Per-feature centring: ``x - mean``."""

    kind = "cfeat"
    stored: ClassVar[StoredFields] = (("input_mean", "mean_", "row"),)

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        self.mean_ = np.nanmean(X, axis=0, keepdims=True).astype(np.float32)

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, float]:
        return self._t("mean_", d, dt), 1.0


class _CFeatScaled(CFeatTransform):
    """``(x - mean) / scale_`` with ``scale_`` a statistic of the centred training data (stored as a scalar)."""

    @staticmethod
    def _scale_of(centred: npt.NDArray[np.float64]) -> float:
        raise NotImplementedError

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        super()._fit(X)
        self.scale_ = np.float32(self._scale_of(X - self.mean_))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[torch.Tensor, float]:
        return self._t("mean_", d, dt), float(self.scale_)


class CFeatNormTransform(_CFeatScaled):
    """``(x - mean) / r`` with r the mean row norm of the centred training data."""

    kind = "cfeat+norm"
    stored: ClassVar[StoredFields] = (*CFeatTransform.stored, ("input_rownorm_mean", "scale_", "scalar"))

    @staticmethod
    def _scale_of(centred: npt.NDArray[np.float64]) -> float:
        return float(np.mean(np.linalg.norm(centred, axis=1)))


class CFeatVarNormTransform(_CFeatScaled):
    """``(x - mean) / v`` with v the summed variance of the centred training data."""

    kind = "cfeat+varnorm"
    stored: ClassVar[StoredFields] = (*CFeatTransform.stored, ("input_variance", "scale_", "scalar"))

    @staticmethod
    def _scale_of(centred: npt.NDArray[np.float64]) -> float:
        return float(np.sum(np.var(centred, axis=0)))


class ZScoreRowNormTransform(ZScoreTransform):
    """``(x - m) / (s r)``: scalar z-score, then divide by the mean row norm."""

    kind = "zscore+rownorm"
    stored: ClassVar[StoredFields] = (*ZScoreTransform.stored, ("input_rownorm_mean", "rownorm_", "scalar"))

    def _fit(self, X: npt.NDArray[np.float64]) -> None:
        super()._fit(X)
        self.rownorm_ = np.float32(np.mean(np.linalg.norm((X - self.scalar_mean_) / self.scalar_std_, axis=1)))

    def _shift_scale(self, d: torch.device, dt: torch.dtype) -> tuple[float, float]:
        return float(self.scalar_mean_), float(self.scalar_std_ * self.rownorm_)
