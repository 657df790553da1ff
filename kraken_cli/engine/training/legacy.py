"""The original's training schedule (``kraken train --path-steps``), UPSTREAM 7.2.

Per epoch: the paths in a shuffled order; for each path every training batch, with one AdamW
step per batch and ``zero_grad(set_to_none=True)``, so parameters outside the path get neither
an Adam update nor weight decay. All paths see the same batches within an epoch. After all
paths, one latent-similarity step (UPSTREAM 7.3). Each path re-encodes its batch with its own
dropout mask.

Randomness is kraken's (seeded per epoch, path and batch; see :mod:`._common`), so the numbers
are reproducible but not those of the original's global RNG.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..errors import TrainingError
from ..losses import LossRecipe, latent_loss, mse, output_loss
from ..model import Krakencoder
from ._common import (
    STREAM_BATCH,
    STREAM_LATENTSIM,
    STREAM_PATHS,
    Batch,
    PathPlan,
    Targets,
    TrainerBase,
    batch_order,
    derive_seed,
    run_sequential,
    seeded,
)
from ._optim import AdamW
from .fast import ModuleNet


def path_step_loss(model: Krakencoder, x_src: torch.Tensor, x_dst: torch.Tensor, source: int, target: int,
                   recipe: LossRecipe, gen: torch.Generator | None,
                   z_target: torch.Tensor | None = None, target_mse_weight: float = 0.0) -> torch.Tensor:
    """The loss of one path on one batch (the original's ``compute_path_loss``), dropout from ``gen``.

    Parameters
    ----------
    model : Krakencoder
    x_src, x_dst : Tensor of shape (n_subjects, n_features)
        Transformed inputs of the source and target flavors.
    source, target : int
        Encoder and decoder indices.
    recipe : LossRecipe
    gen : torch.Generator or None
        Dropout masks; None = eval mode.
    z_target : Tensor of shape (n_subjects, n_latent), optional
        Target latents (loose target encoding).
    target_mse_weight : float
        Weight of ``MSE(z, z_target)``.
    """
    z = run_sequential(model.encoder_list[source], x_src, gen)
    y = run_sequential(model.decoder_list[target], model.decoder_gradientreversal_list[target](z), gen)
    loss = output_loss(recipe, x_dst, y) + latent_loss(recipe, z_target, z)
    if z_target is not None and target_mse_weight > 0:
        loss = loss + target_mse_weight * mse(z_target, z)
    return loss


class LegacyTrainer(TrainerBase):
    """Runs epochs of the original's per-path schedule (same interface as :class:`.fast.FastTrainer`)."""

    def __init__(self, model: Krakencoder, data: Batch, plan: PathPlan, recipe: LossRecipe, *, seed: int,
                 batch_size: int, lr: float, weight_decay: float, dropout_at: Callable[[int], float],
                 targets: Targets | None = None) -> None:
        if targets is not None and targets.strict:
            raise TrainingError("--strict target encoding is not available with --path-steps")
        if model.config.intergroup:
            raise TrainingError("intergroup models cannot be trained by kraken")
        super().__init__(model, data, plan, recipe, seed=seed, batch_size=batch_size, dropout_at=dropout_at,
                         targets=targets)
        self.net = ModuleNet(model, plan)
        self.optimizer = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
        self.latentsim_weight = 0.0 if plan.n_paths < 2 or len(plan.encoders) < 2 else recipe.latentsim_weight
        if data.n_subjects < batch_size:
            raise TrainingError(f"{data.n_subjects} training subjects are fewer than one batch of {batch_size}",
                                hint=f"use --batch-size {max(2, data.n_subjects)} or fewer")

    packed = False

    def path_order(self, epoch: int) -> list[int]:
        """The epoch's shuffled path order."""
        rng = np.random.default_rng(derive_seed(self.seed, STREAM_PATHS, epoch))
        return [int(i) for i in rng.permutation(self.plan.n_paths)]

    def run_epoch(self, epoch: int) -> torch.Tensor:
        """Train one epoch; returns the mean training loss per path (on the device)."""
        self.model.train()
        self.model.set_dropout(self.dropout_at(epoch))
        batches = batch_order(self.data.n_subjects, self.batch_size, self.seed, epoch, self.device)
        n_paths = self.plan.n_paths
        acc = torch.zeros(n_paths, device=self.device)
        tw = 0.0 if self.targets is None else self.targets.mse_weight
        for p in self.path_order(epoch):
            path = self.plan.paths[p]
            for b, idx in enumerate(batches):
                gen = seeded(self.gen, self.seed, STREAM_BATCH, epoch, b * n_paths + p)
                zt = None if self.targets is None else self.targets.z[path.source].index_select(0, idx)
                self.optimizer.zero_grad(set_to_none=True)
                loss = path_step_loss(self.model, self.data.xs[path.source].index_select(0, idx),
                                      self.data.xs[path.target].index_select(0, idx), path.source, path.target,
                                      self.recipe, gen, zt, tw)
                if loss.requires_grad:
                    loss.backward()
                    self.optimizer.step()
                acc[p] += loss.detach()
        if self.latentsim_weight > 0:
            gen = seeded(self.gen, self.seed, STREAM_LATENTSIM, epoch)
            self.optimizer.zero_grad(set_to_none=True)
            self.latentsim_loss(gen).backward()
            self.optimizer.step()
        return acc / max(1, len(batches))

    def latentsim_loss(self, gen: torch.Generator | None) -> torch.Tensor:
        """``W * sum_i sum_{j<i} 2 MSE(z_i, sg(zhat_j))`` over the encoders in use (UPSTREAM 7.3).

        Only the encoders that receive gradient are run with it, so the anchor (the first
        encoder) keeps a ``None`` gradient: no update and no weight decay, as in the original.
        """
        enc = self.plan.encoders
        xs = self.data.xs
        with torch.no_grad():
            z_hat = [run_sequential(self.model.encoder_list[j], xs[j], None) for j in enc[:-1]]
        total = xs[0].new_zeros(())
        for a, i in enumerate(enc[1:], start=1):
            z = run_sequential(self.model.encoder_list[i], xs[i], gen)
            for b in range(a):
                total = total + 2 * mse(z_hat[b], z)
        return self.latentsim_weight * total

    def sync_model(self) -> Krakencoder:
        return self.model

    def state_dict(self) -> dict[str, Any]:
        return {"optimizer": self.optimizer.state_dict(), "packed": False}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("packed"):
            raise TrainingError("the checkpoint was written by the fast trainer; resume it without --path-steps")
        self.optimizer.load_state_dict(state["optimizer"])
