"""Domain adaptation: move new data toward the training population's mean (UPSTREAM 4).

Applied per flavor in edge space before the input transform. Modes:

* ``meanshift``: ``x - mu_in + mu_tr``
* ``meanfit``: ``a x + b`` with ``mu_tr ~ a mu_in + b`` fitted by least squares over features
* ``meanfit+meanshift``: ``a (x - mu_in) + mu_tr``

``mu_in`` is the mean of the new data over the fitting subjects; ``mu_tr`` the transform's
training mean. Unlike the original, a subject subset can be chosen and the fit saved as an
adapter file (``kraken adapt``) to process single subjects consistently later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .errors import AdapterError, SpecError, TransformError
from .io._atomic import atomic_path
from .transforms import Transform

MODES = ("none", "meanshift", "meanfit", "meanfit+meanshift")
_ALIASES = {"meanfitshift": "meanfit+meanshift"}


def normalize_mode(mode: str) -> str:
    """Lower-case mode with aliases resolved; SpecError for unknown modes."""
    m = _ALIASES.get(mode.strip().lower(), mode.strip().lower())
    if m not in MODES:
        raise SpecError(f"unknown adaptation mode {mode!r}", hint=f"use one of: {', '.join(MODES)}")
    return m


@dataclass(frozen=True)
class FlavorAdaptation:
    """A fitted adaptation of one flavor."""

    flavor: str
    mode: str
    input_mean: npt.NDArray[np.float64]
    target_mean: npt.NDArray[np.float64]
    slope: float = 1.0
    intercept: float = 0.0
    fit_corr: float = float("nan")
    n_subjects: int = 0
    transform_sha256: str = ""
    source_files: tuple[str, ...] = ()

    def apply(self, x: npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """Adapt rows ``x`` of shape (n_subjects, n_edges)."""
        x64 = np.asarray(x, dtype=np.float64)
        if self.mode == "none":
            return x64
        x = x64
        if self.mode == "meanshift":
            return np.asarray(x - self.input_mean + self.target_mean, dtype=np.float64)
        if self.mode == "meanfit":
            return np.asarray(self.slope * x + self.intercept, dtype=np.float64)
        return np.asarray(self.slope * (x - self.input_mean) + self.target_mean, dtype=np.float64)

    def summary(self) -> dict[str, Any]:
        """Small facts for reports: mode, slope, intercept, R^2, subjects."""
        return {"flavor": self.flavor, "mode": self.mode, "slope": self.slope, "intercept": self.intercept,
                "fit_r2": self.fit_corr ** 2, "n_subjects": self.n_subjects}


def transform_checksum(t: Transform) -> str:
    """sha256 of the transform's training mean (identifies the transform an adapter was fitted for)."""
    mean = t.training_mean()
    data = b"" if mean is None else np.ascontiguousarray(mean, dtype=np.float32).tobytes()
    return hashlib.sha256(data).hexdigest()


def fit_adaptation(flavor: str, mode: str, input_mean: npt.NDArray[np.floating], transform: Transform,
                   *, n_subjects: int, source_files: tuple[str, ...] = ()) -> FlavorAdaptation:
    """Fit one flavor's adaptation from the mean of its new data and its transform's training mean."""
    mode = normalize_mode(mode)
    mu_in = np.asarray(input_mean, dtype=np.float64).reshape(-1)
    target = transform.training_mean()
    if target is None:
        raise TransformError(f"cannot adapt {flavor}: its {transform.kind} transform carries no training mean",
                             hint="use --adapt none for this input (latent inputs cannot be adapted)")
    mu_tr = np.asarray(target, dtype=np.float64).reshape(-1)
    if mu_tr.shape != mu_in.shape:
        raise AdapterError(f"{flavor}: data has {mu_in.size} edges but the transform's mean has {mu_tr.size}")
    a, b = 1.0, 0.0
    if mode in ("meanfit", "meanfit+meanshift"):
        design = np.stack([mu_in, np.ones_like(mu_in)], axis=1)
        (a, b), *_ = np.linalg.lstsq(design, mu_tr, rcond=None)
        cc = float(np.corrcoef(a * mu_in + b, mu_tr)[0, 1])
    else:
        cc = float(np.corrcoef(mu_in, mu_tr)[0, 1])
    return FlavorAdaptation(flavor, mode, mu_in, mu_tr, float(a), float(b), cc, n_subjects,
                            transform_checksum(transform), source_files)


# -- adapter files ---------------------------------------------------------------------------------

def save_adapter(file: str | Path, adaptations: Mapping[str, FlavorAdaptation]) -> Path:
    """Write a human-readable JSON adapter file (atomic)."""
    payload = {"format": "kraken-adapter", "version": 1, "flavors": {}}
    for name, a in adaptations.items():
        d = asdict(a)
        d["input_mean"] = a.input_mean.tolist()
        d["target_mean"] = a.target_mean.tolist()
        d["source_files"] = list(a.source_files)
        d["fit_r2"] = a.fit_corr ** 2
        payload["flavors"][name] = d  # type: ignore[index]
    path = Path(file)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(payload, indent=1))
    return path


def _adaptation_from(name: str, d: Any) -> FlavorAdaptation:
    """One flavor's entry of an adapter file, checked: known mode, finite 1-D means of one length."""
    if not isinstance(d, dict):
        raise ValueError(f"the entry of {name} is not an object")
    d = dict(d)
    d.pop("fit_r2", None)
    d["mode"] = normalize_mode(str(d.get("mode", "")))
    for key in ("input_mean", "target_mean"):
        arr = np.asarray(d[key], dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"{name}: {key} is not a list of numbers")
        d[key] = arr
    if d["input_mean"].shape != d["target_mean"].shape:
        raise ValueError(f"{name}: input_mean has {d['input_mean'].size} values, target_mean "
                         f"{d['target_mean'].size}")
    numbers = [d["input_mean"], d["target_mean"], np.asarray([d.get("slope", 1.0), d.get("intercept", 0.0)],
                                                              dtype=np.float64)]
    if not all(np.isfinite(x).all() for x in numbers):
        raise ValueError(f"{name}: the adaptation holds NaN or Inf values")
    d["source_files"] = tuple(str(f) for f in d.get("source_files", ()))
    return FlavorAdaptation(**d)


def load_adapter(file: str | Path) -> dict[str, FlavorAdaptation]:
    """Read an adapter file written by :func:`save_adapter`, refusing anything it could not have written."""
    from .io._limits import MAX_TEXT_BYTES

    path = Path(file)
    try:
        if path.stat().st_size > MAX_TEXT_BYTES:
            raise ValueError(f"{path.stat().st_size:,} bytes, more than an adapter file holds")
        payload = json.loads(path.read_text())
        if not isinstance(payload, dict) or payload.get("format") != "kraken-adapter":
            raise ValueError("not a kraken adapter file")
        return {str(name): _adaptation_from(str(name), d) for name, d in payload["flavors"].items()}
    except RecursionError as exc:
        raise AdapterError(f"{path} is not a readable adapter file (its JSON is nested too deeply)",
                           hint="write one with `kraken adapt ... -o ADAPTER.json`") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError, SpecError) as exc:
        raise AdapterError(f"{path} is not a readable adapter file ({exc})",
                           hint="write one with `kraken adapt ... -o ADAPTER.json`") from exc


def check_adapter(adapt: FlavorAdaptation, transform: Transform, *, file: str) -> None:
    """Refuse an adapter fitted against another transform, or for another number of edges."""
    n = getattr(transform, "n_features_in_", None)
    if n is not None and adapt.input_mean.size != n:
        raise AdapterError(f"{file}: the adaptation of {adapt.flavor} has {adapt.input_mean.size} values, "
                           f"its transform takes {n}",
                           hint="refit it with `kraken adapt` using this checkpoint's transform")
    if adapt.transform_sha256 and adapt.transform_sha256 != transform_checksum(transform):
        raise AdapterError(f"{file}: the adaptation of {adapt.flavor} was fitted for another transform",
                           hint="refit it with `kraken adapt` using this checkpoint's transform")
