"""Read and write ``*_ioxfm_*`` transform files (UPSTREAM 3.3): ``.npy``, ``.npz`` and ``.h5``.

``.npy``/``.npz`` files hold a pickled ``{flavor: params}`` dict; they are read with a restricted
unpickler (numpy pickle loading is never enabled). Older files may hold torch tensors instead of numpy
arrays inside the dict; both load.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._safe_pickle import load_pickled_npy
from ..errors import InputDataError, TransformError
from ..io._atomic import atomic_path
from ..io._limits import check_expansion
from . import Transform, transform_from_params


def read_transform_params(file: str | Path) -> dict[str, dict[str, Any]]:
    """The raw ``{flavor: params}`` dict of one transform file."""
    path = Path(file)
    if not path.exists():
        raise TransformError(f"transform file {path} does not exist",
                             hint="give the *_ioxfm_* file written with the checkpoint via -t")
    suffix = path.suffix.lower()
    try:
        if suffix == ".npy":
            obj = load_pickled_npy(path.read_bytes(), source=str(path), error=TransformError)
        elif suffix == ".npz":
            with zipfile.ZipFile(path) as zf:
                names = [n for n in zf.namelist() if n.endswith(".npy")]
                name = "transform_params.npy" if "transform_params.npy" in names else (names[0] if names else None)
                if name is None:
                    raise TransformError(f"{path} holds no arrays")
                info = zf.getinfo(name)
                check_expansion(info.compress_size, info.file_size, what=f"member {name}", where=str(path),
                                error=TransformError)
                obj = load_pickled_npy(zf.read(name), source=f"{path}:{name}", error=TransformError)
        elif suffix in (".h5", ".hdf5"):
            obj = _read_h5(path)
        else:
            raise TransformError(f"{path}: unknown transform file type {suffix!r}",
                                 hint="transform files end in .npy, .npz or .h5")
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise TransformError(f"{path} cannot be read as a transform file ({exc})",
                             hint="the file may be truncated or corrupt") from exc
    if isinstance(obj, np.ndarray) and obj.dtype == object and obj.shape == ():
        obj = obj.item()
    if not isinstance(obj, Mapping) or not all(isinstance(v, Mapping) for v in obj.values()):
        raise TransformError(f"{path} does not hold a {{flavor: parameters}} dict",
                             hint="give a *_ioxfm_* file written by kraken train or the original tool")
    return {str(k): dict(v) for k, v in obj.items()}


def _read_h5(path: Path) -> dict[str, dict[str, Any]]:
    import h5py

    from ..io._hdf5 import check_declared_size, check_link

    out: dict[str, dict[str, Any]] = {}
    with h5py.File(path, "r") as f:
        for name in list(f.keys()):
            check_link(f, name, where=str(path))
            grp = f[name]
            d: dict[str, Any] = {}
            for k, v in grp.attrs.items():
                d[k] = v.decode() if isinstance(v, bytes) else (v.item() if np.ndim(v) == 0 and hasattr(v, "item")
                                                              else v)
            for k in list(grp.keys()):
                check_link(grp, k, where=str(path))
                ds = grp[k]
                if isinstance(ds, h5py.Dataset):
                    try:
                        check_declared_size(ds, where=str(path))
                    except InputDataError as exc:
                        raise TransformError(exc.message, hint=exc.hint) from exc
                d[k] = ds[()]
            if isinstance(d.get("type"), np.ndarray):
                d["type"] = str(d["type"])
            out[name] = d
    return out


def load_transforms(files: Sequence[str | Path]) -> dict[str, Transform]:
    """All transforms of several files, merged by flavor (a later file may not redefine a flavor)."""
    out: dict[str, Transform] = {}
    origin: dict[str, str] = {}
    for f in files:
        for flavor, params in read_transform_params(f).items():
            if flavor in out:
                raise TransformError(f"flavor {flavor} has transforms in both {origin[flavor]} and {f}",
                                     hint="give each flavor's transform once")
            t = transform_from_params(params, source=f"{f} ({flavor})")
            t.source_file = str(f)  # type: ignore[attr-defined]
            out[flavor] = t
            origin[flavor] = str(f)
    return out


def save_transforms(file: str | Path, transforms: Mapping[str, Transform],
                    train_subjects: Sequence[str] | None = None) -> Path:
    """Write ``{flavor: params}`` in the original's ``.npy`` layout (atomic)."""
    d: dict[str, dict[str, Any]] = {}
    for flavor, t in transforms.items():
        p = t.params()
        if train_subjects is not None:
            p["train_subjects"] = np.asarray(list(train_subjects), dtype=str)
        d[flavor] = p
    path = Path(file)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            buf = io.BytesIO()
            np.save(buf, np.array(d, dtype=object))  # writing a pickled dict; reading is restricted
            fh.write(buf.getvalue())
    return path
