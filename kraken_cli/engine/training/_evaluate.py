"""Metrics at display epochs: every trained path on the validation (and training) subjects.

OrigScale metrics invert the predictions to edge space and compare them with the original
edge data; ``avgcorr_resid`` demeans truth and prediction by the *training-set* mean in edge
space, as the original's training does. OptimScale metrics compare in the transformed space.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..losses import LossRecipe
from ..metrics import evaluate_paths_torch
from ..model import Krakencoder
from ._common import Batch, PathPlan, Targets, batch_objective
from .fast import ModuleNet

#: Metrics kept in the training record and shown at display epochs.
DISPLAY_METRICS = ("top1acc", "topNacc", "avgrank", "avgrank_mean", "avgcorr", "avgcorr_other",
                   "avgcorr_resid", "avgcorr_resid_other", "explainedvar",
                   "top1acc_pred2true", "topNacc_pred2true", "avgrank_pred2true")
_OPTIM_METRICS = ("top1acc", "topNacc", "avgrank", "avgrank_mean", "avgcorr", "avgcorr_other", "explainedvar")


@dataclass
class EvalData:
    """One subject set: transformed inputs, edge-space truth (or None) and the demeaning vectors."""

    x: Batch
    raw: list[torch.Tensor] | None
    demean: list[torch.Tensor] | None
    targets: Targets | None = None

    @property
    def n_subjects(self) -> int:
        return self.x.n_subjects


@torch.no_grad()
def predict_paths(model: Krakencoder, plan: PathPlan, x: Batch) -> dict[int, tuple[list[int], torch.Tensor]]:
    """Eval-mode predictions grouped by target flavor: ``j -> (path ids, [P_j, n, F_j])``."""
    model.eval()
    z = [model.encode(xi, i) for i, xi in enumerate(x.xs)]
    out: dict[int, tuple[list[int], torch.Tensor]] = {}
    for j in plan.decoders:
        ids = [k for k, p in enumerate(plan.paths) if p.target == j]
        zin = torch.stack([z[plan.paths[k].source] for k in ids])
        out[j] = (ids, model.decode(zin, j))
    return out


def _store(dst: dict[str, np.ndarray], ids: list[int], vals: dict[str, torch.Tensor]) -> None:
    for name, v in vals.items():
        dst[name][ids] = v.detach().cpu().numpy()


@torch.no_grad()
def evaluate(model: Krakencoder, plan: PathPlan, data: EvalData, transforms: Sequence[Any], *,
             origscale: bool) -> dict[str, np.ndarray]:
    """Per-path metrics ``name -> [P]`` (NaN when the set has fewer than 2 subjects)."""
    names = DISPLAY_METRICS if origscale else _OPTIM_METRICS
    out = {m: np.full(plan.n_paths, np.nan) for m in names}
    if data.n_subjects < 2 or (origscale and data.raw is None):
        return out
    for j, (ids, y) in predict_paths(model, plan, data.x).items():
        if origscale:
            assert data.raw is not None and data.demean is not None
            p, n, f = y.shape
            pred = transforms[j].as_torch().inverse_transform(y.reshape(p * n, f)).reshape(p, n, -1)
            vals = evaluate_paths_torch(data.raw[j], pred.to(data.raw[j].dtype), demean=data.demean[j],
                                        metrics=names)
        else:
            vals = evaluate_paths_torch(data.x.xs[j], y, metrics=names)
        _store(out, ids, vals)
    return out


@torch.no_grad()
def loss_per_path(model: Krakencoder, plan: PathPlan, recipe: LossRecipe, data: EvalData) -> np.ndarray:
    """Eval-mode loss of every path on all subjects of ``data`` as one batch (``loss_val``)."""
    if data.n_subjects < 2:
        return np.full(plan.n_paths, np.nan)
    model.eval()
    _, per_path = batch_objective(ModuleNet(model, plan), data.x, plan, recipe, None, data.targets)
    return per_path.cpu().numpy().astype(np.float64)
