"""Synthetic paired SC/FC cohorts (scikit-learn style ``make_*``), for ``kraken example``, tests and benchmarks.

Every flavor of a subject is driven by one shared subject latent, so translating between
flavors is learnable but imperfect, as with real data.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .connectome import square_to_tri

#: flavor suffix -> (group, scale of the subject effect)
_KINDS = {"FCcorr_{a}_hpf": ("FC", 1.0), "FCcorr_{a}_hpfgsr": ("FC", 0.9), "FCpcorr_{a}_hpf": ("FC", 0.6),
          "SCifod2act_{a}_volnorm": ("SC", 0.7), "SCsdstream_{a}_volnorm": ("SC", 0.6)}


@dataclass(frozen=True)
class SyntheticCohort:
    """Edge vectors per flavor, shape (n_subjects, n_edges), and subject ids."""

    data: dict[str, npt.NDArray[np.float64]]
    subjects: list[str]
    latent: npt.NDArray[np.float64]
    n_regions: int

    def write(self, folder: str | Path) -> dict[str, Path]:
        """One MATLAB v5 file per flavor (``data`` [S x R x R], ``subjects``); returns flavor -> file."""
        import scipy.io

        from .connectome import tri_to_square
        from .io._atomic import atomic_path

        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        files = {}
        for flavor, x in self.data.items():
            path = out / f"{flavor}.mat"
            sq = tri_to_square(x.astype(np.float32), diagonal=0.0)
            with atomic_path(path) as tmp, open(tmp, "wb") as fh:
                scipy.io.savemat(fh, {"data": sq, "subjects": np.array(self.subjects, dtype=object)},
                                 do_compression=True)
            files[flavor] = path
        return files


def _sym(a: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    u = np.triu(a, 1)
    return u + np.swapaxes(u, -1, -2)


def make_cohort(n_subjects: int = 200, *, n_regions: int = 86, atlas: str = "fs86", n_latent: int = 12,
                noise: float = 0.5, flavors: list[str] | None = None,
                seed: int | np.random.Generator = 0) -> SyntheticCohort:
    """A synthetic paired cohort: 5 flavors (3 FC, 2 SC) of one atlas by default.

    Parameters
    ----------
    n_subjects : int
    n_regions : int
        Regions of the atlas (edges are R(R-1)/2).
    atlas : str
        Atlas name used in flavor names (``FCcorr_<atlas>_hpf``...).
    n_latent : int
        Dimension of the subject latent shared by all flavors.
    noise : float
        Subject-specific noise relative to the shared signal.
    flavors : list of str, optional
        Subset of the default flavor names.
    seed : int or numpy Generator

    Examples
    --------
    >>> c = make_cohort(10, n_regions=8, seed=1)
    >>> sorted(c.data)[0], c.data["FCcorr_fs86_hpf"].shape
    ('FCcorr_fs86_hpf', (10, 28))
    """
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    r = n_regions
    names = {k.format(a=atlas): v for k, v in _KINDS.items()}
    if flavors is not None:
        names = {f: names[f] for f in flavors}
    z = rng.normal(size=(n_subjects, n_latent))
    coords = rng.normal(size=(r, 3))
    dist = np.linalg.norm(coords[:, None] - coords[None], axis=2)
    loadings = rng.normal(size=(n_latent, r, 2)) / np.sqrt(r)
    modes = _sym(np.einsum("kra,kqa->krq", loadings, loadings) * r)
    data = {}
    for flavor, (group, scale) in names.items():
        if group == "FC":
            base = np.tanh(0.6 * _sym(np.exp(-dist / 1.5)) + 0.05)
        else:
            base = _sym(np.exp(-dist) * (rng.random((r, r)) < 0.5))
        mix = np.eye(n_latent) + 0.3 * rng.normal(size=(n_latent, n_latent))
        dev = np.einsum("sk,kij->sij", z @ mix * scale, modes) * 0.1
        eps = _sym(rng.normal(size=(n_subjects, r, r))) * 0.1 * noise
        x = base[None] + dev + eps
        if group == "SC":
            x = np.abs(x)
        data[flavor] = np.asarray(square_to_tri(x), dtype=np.float64)
    subjects = [f"sub{i:04d}" for i in range(n_subjects)]
    return SyntheticCohort(data, subjects, z, r)
