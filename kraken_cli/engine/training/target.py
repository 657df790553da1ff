"""Target latents for target-encoding training (UPSTREAM 8.1): reading and selecting them.

The file is a ``.mat`` (v5 or v7.3) with ``subjects`` and latents in one of these places, tried
in order: a top-level ``encoded`` [subjects x latent]; ``predicted_alltypes`` with a single
input that has ``encoded``; with ``name == "self"``, each flavor's own
``predicted_alltypes.<flavor>.encoded``; ``predicted_alltypes.<name>.encoded``. The file
written by ``kraken run --fusion --outputs encoded`` qualifies.

Unlike the original, subjects are matched by id (the file may list them in another order or
hold more of them); a cohort subject missing from the file is an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from ..connectome import clean_subject_ids
from ..errors import InputDataError

FloatArray = npt.NDArray[np.float32]


def select_target_latents(tree: Mapping[str, Any], name: str | None, flavors: Sequence[str],
                          *, where: str = "target file") -> dict[str, Any]:
    """Pick the latents for each flavor from a loaded file tree (see module docstring).

    Returns
    -------
    dict of str to array-like
        flavor -> latents of every subject of the file, shape (n_subjects, n_latent).
    """
    if "encoded" in tree and not isinstance(tree["encoded"], Mapping):
        return {f: tree["encoded"] for f in flavors}
    pa = tree.get("predicted_alltypes")
    if not isinstance(pa, Mapping):
        raise InputDataError(f"{where}: no 'encoded' and no 'predicted_alltypes' field",
                             hint="give the output of `kraken run ... --outputs encoded`")
    with_enc = {k: v for k, v in pa.items() if isinstance(v, Mapping) and "encoded" in v}
    if len(with_enc) == 1:
        only = next(iter(with_enc.values()))
        return {f: only["encoded"] for f in flavors}
    if name == "self":
        missing = [f for f in flavors if f not in with_enc]
        if missing:
            raise InputDataError(f"{where}: no encoded latents for {missing}",
                                 hint=f"the file has latents for: {', '.join(with_enc) or 'nothing'}")
        return {f: with_enc[f]["encoded"] for f in flavors}
    if name is None or name not in with_enc:
        why = "no --target-name given" if name is None else f"{name!r} not found"
        raise InputDataError(f"{where}: cannot tell which latents to use ({why})",
                             hint=f"use --target-name with one of: {', '.join(with_enc)}, or self")
    return {f: with_enc[name]["encoded"] for f in flavors}


def align_target_latents(latents: Mapping[str, Any], file_subjects: Sequence[str], subjects: Sequence[str],
                         *, where: str = "target file") -> dict[str, FloatArray]:
    """Reorder each flavor's latents from the file's subject order to ``subjects``."""
    from ..io._mat import to_numpy

    fsub = clean_subject_ids(list(file_subjects))
    pos = {s: i for i, s in enumerate(fsub)}
    missing = [s for s in subjects if s not in pos]
    if missing:
        raise InputDataError(f"{where}: {len(missing)} training subjects have no target latent, e.g. {missing[:5]}",
                             hint="compute the target latents for every subject of the inputs")
    rows = np.array([pos[s] for s in subjects], dtype=np.intp)
    out: dict[str, FloatArray] = {}
    for f, v in latents.items():
        arr = np.asarray(to_numpy(v, where=where), dtype=np.float32)
        if arr.ndim != 2 or arr.shape[0] != len(fsub):
            if arr.ndim == 2 and arr.shape[1] == len(fsub):
                arr = arr.T
            else:
                raise InputDataError(f"{where}: latents for {f} have shape {arr.shape}, "
                                     f"expected ({len(fsub)} subjects, latent size)")
        out[f] = np.ascontiguousarray(arr[rows])
    return out


def read_target_latents(file: str | Path, name: str | None, flavors: Sequence[str],
                        subjects: Sequence[str]) -> dict[str, FloatArray]:
    """Target latents of ``subjects`` for each flavor, from a ``.mat`` file (UPSTREAM 8.1).

    Parameters
    ----------
    file : path
    name : str or None
        ``fusion``, a flavor name, ``self`` or None (a file with a single latent).
    flavors : sequence of str
        The flavors being trained.
    subjects : sequence of str
        Cohort subject ids, in cohort order.

    Returns
    -------
    dict of str to ndarray of shape (n_subjects, n_latent)

    Raises
    ------
    InputDataError
        Unreadable file, no ``subjects``, latents not found, or subjects missing.
    """
    from ..io.subjects import mat_with_subjects

    with mat_with_subjects(file, what="target encoding file", option="--target-encoding",
                           hint="target files must list their subjects") as (tree, fsub):
        chosen = select_target_latents(tree, name, flavors, where=str(file))
        return align_target_latents(chosen, fsub, subjects, where=str(file))
