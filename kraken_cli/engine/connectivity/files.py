"""Files of ``kraken connectivity``: the target it reads and the results it writes.

* Targets (UPSTREAM 13 step 5): a ``.mat`` / ``.h5`` / ``.npz`` whose ``C`` or ``FC`` holds one R x R
  precision matrix (the released ``kraken_regtarget_FCpcorr_<atlas>_hpf_HCPYA710train.mat`` files and
  ``--output-mean`` files), a registry name, or an atlas shorthand (``fs86``) / flavor
  (``FCpcorr_fs86_hpf``) resolved through the cache like checkpoints.
* Results: the original's layout (``C`` an N x 1 cell of R x R matrices, ``lambda``, ``lambda_raw``,
  ``conntype``, ``subjects``) as MATLAB v5, or v7.3 / ``.npz`` with ``C`` an ``[N x R x R]`` array (see
  :mod:`.sinks` for the streamed ``-o`` files), and the lambda-search table as CSV (``lambda,reg_err``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..errors import FetchError, InputDataError

F64 = npt.NDArray[np.float64]

#: Atlases with a released regularization target.
REGTARGET_ATLASES = ("fs86", "shen268", "coco439")


@dataclass(frozen=True)
class Target:
    """A target precision matrix and where it came from (a file, or ``"mean of inputs"``)."""

    matrix: F64
    source: str


def _regtarget_name(text: str) -> str | None:
    """The released regtarget for an atlas shorthand or FCpcorr flavor name, else None."""
    from ..registry import load_registry

    low = text.strip()
    for entry in load_registry():
        if entry.kind != "regtarget":
            continue
        if low in entry.flavors or f"_{low}_" in entry.name or low == entry.name:
            return entry.name
    return None


def resolve_target(text: str, cache_dir: str | None) -> str:
    """The target file for ``--target``: a local file, or a registry file from the cache.

    Raises
    ------
    FetchError
        For a released target not in the cache (hint: ``kraken fetch NAME``) or an unknown name.
    """
    from ..registry import resolve_file

    if Path(text).expanduser().is_file():
        return str(Path(text).expanduser())
    name = _regtarget_name(text)
    if name is None and "/" not in text and "." not in text:
        raise FetchError(f"--target {text!r} is neither a file nor a released regularization target",
                         hint=f"give a target file, or one of {', '.join(REGTARGET_ATLASES)}")
    return str(resolve_file(name or text, cache_dir))


def _load_tree(path: Path) -> tuple[Any, Any]:
    from .inputs import _sniff

    where = str(path)
    kind = _sniff(path)
    if kind == "hdf5":
        from ..io._hdf5 import open_tree

        return open_tree(path, where=where)
    if kind == "npz":
        from ..io._numpy import _npz_tree

        try:
            with np.load(path, allow_pickle=False) as npz:
                return None, _npz_tree(npz, where=where)
        except (ValueError, OSError) as exc:
            raise InputDataError(f"{where}: not a readable .npz file ({exc})", hint="re-create the file") from exc
    if kind == "mat":
        from ..io._mat import load_mat_v5

        return None, load_mat_v5(path, where=where)
    raise InputDataError(f"{where}: a target must be a .mat, .h5 or .npz file",
                         hint="give the file --output-mean wrote")


def read_target(file: str) -> Target:
    """The R x R target matrix held in ``C`` (or ``FC``, ``data``) of ``file``.

    Raises
    ------
    InputDataError
        For unreadable files, a field holding several matrices, non-square or non-finite targets.
    """
    from ..io._mat import is_cell, to_numpy

    path = Path(file)
    if path.stat().st_size == 0:
        raise InputDataError(f"{file}: the target file is empty", hint="re-create or re-fetch it")
    owner, tree = _load_tree(path)
    try:
        name = next((n for n in ("C", "FC", "data") if n in tree), None)
        if name is None:
            raise InputDataError(f"{file}: no target field C or FC", hint="a target holds one R x R matrix in C")
        value = tree[name]
        if is_cell(value):
            items = list(value)
            if len(items) != 1:
                raise InputDataError(f"{file}: {name} holds {len(items)} matrices, a target is one",
                                     hint="make the target with --output-mean")
            value = items[0]
        m = np.asarray(to_numpy(value, where=file), dtype=np.float64)
    finally:
        if owner is not None:
            owner.close()
    m = np.squeeze(m) if m.ndim == 3 and m.shape[0] == 1 else m
    if m.ndim != 2 or m.shape[0] != m.shape[1]:
        raise InputDataError(f"{file}: the target must be one square matrix, got shape {m.shape}",
                             hint="make the target with --output-mean")
    if not np.all(np.isfinite(m)):
        raise InputDataError(f"{file}: the target holds NaN or Inf", hint="re-create the target")
    return Target(m, file)


# ------------------------------------------------------------------------------------ writing


@dataclass(frozen=True)
class ResultData:
    """What one output file holds."""

    matrices: F64  # (n, R, R), or (R, R) for a mean
    subjects: list[str]
    conntype: str
    lam: float | None
    lam_raw: float | None


def _cell(mats: F64) -> npt.NDArray[np.object_]:
    cell = np.empty((mats.shape[0], 1), dtype=object)
    for i in range(mats.shape[0]):
        cell[i, 0] = mats[i]
    return cell


def write_result(file: str, fmt: str, data: ResultData) -> Path:
    """Write ``data`` atomically in ``fmt`` (``mat``, ``mat73`` or ``npz``)."""
    from ..io._atomic import atomic_path

    mats = data.matrices
    subjects = list(data.subjects)
    extra: dict[str, Any] = {"conntype": data.conntype}
    if data.lam is not None:
        extra["lambda"] = float(data.lam)
        extra["lambda_raw"] = float(data.lam_raw if data.lam_raw is not None else data.lam)
    if fmt == "npz":
        arrays: dict[str, Any] = {"C": mats, "subjects": np.asarray(subjects, dtype=str),
                                  "conntype": np.asarray(data.conntype)}
        if data.lam is not None:
            arrays["lambda"] = np.asarray(extra["lambda"])
            arrays["lambda_raw"] = np.asarray(extra["lambda_raw"])
        with atomic_path(file) as tmp, open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
        return Path(file)
    if fmt == "mat73":
        from ..io._mat73_write import Mat73Writer

        with Mat73Writer(file) as w:
            w.write("C", np.asarray(mats))  # [N x R x R] as MATLAB sees it, as the streamed -o files
            w.write("subjects", subjects)
            for k, v in extra.items():
                w.write(k, v)
        return Path(file)
    from ..io._mat5_write import savemat_fast

    subj = np.empty((len(subjects), 1), dtype=object)
    for i, s in enumerate(subjects):
        subj[i, 0] = s
    variables: dict[str, Any] = {"C": mats if mats.ndim == 2 else _cell(mats), "subjects": subj, **extra}
    with atomic_path(file) as tmp, open(tmp, "wb") as fh:
        savemat_fast(fh, variables, long_field_names=True, oned_as="row")
    return Path(file)


def write_search_csv(file: str, lambdas: F64, errors: F64) -> Path:
    """The search table, sorted by lambda, columns ``lambda,reg_err`` (full precision)."""
    from ..io._atomic import atomic_path

    lines = ["lambda,reg_err"] + [f"{float(a)!r},{float(b)!r}" for a, b in zip(lambdas, errors)]
    with atomic_path(file) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return Path(file)


def plot_search(file: str, lambdas: F64, errors: F64, best: float, *, applied: float,
                target: str, n_subjects: int) -> Path:
    """Mean error against lambda with the optimum circled, as a PNG."""
    from ..plots._render import new_figure, save_png

    fig = new_figure((7, 4.5), 120)
    ax = fig.subplots()
    ax.plot(lambdas, errors, "-", color="#1f4e9c", marker=".", markersize=5, label="evaluated λ")
    i = int(np.argmin(errors))
    ax.plot([best], [errors[i]], "o", markersize=14, markerfacecolor="none", markeredgecolor="#c0392b",
            markeredgewidth=2, label=f"optimum λ = {best:.6g} (applied {applied:g})")
    ax.set_xlabel("λ (regularization)", fontsize=11)
    ax.set_ylabel("mean ‖triu(P(λ)) − triu(target)‖₂", fontsize=11)
    ax.set_title(f"Lambda search over {n_subjects} subjects\ntarget: {Path(target).name}", fontsize=11)
    if float(np.min(errors)) > 0 and float(np.max(errors)) / float(np.min(errors)) > 10:
        ax.set_yscale("log")  # an unregularized (lambda 0) error far above the rest would flatten the curve
    ax.tick_params(labelsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=9)
    return save_png(fig, file, dpi=120)


def output_files(paths: Sequence[str | None]) -> list[str]:
    return [p for p in paths if p]
