"""The fast trainer: one AdamW step per batch for the summed objective of all paths.

Per batch, every flavor is encoded once and every trained path is decoded from those latents;
the recipe's loss of all paths comes from a few batched tensor ops (UPSTREAM 7.10). When all
flavors have the same input size and no hidden layers, the encoders and decoders are packed
into stacked parameters ``[n_flavors, out, in]`` and run with ``torch.baddbmm``/``einsum``;
otherwise a generic network loops over flavors with the model's own modules.

The latent-similarity term (UPSTREAM 7.3) runs once per epoch after the batches, as in the
original: eval-mode detached targets, train-mode latents, one AdamW step.

Schedule: ``config.fast_lr`` or ``config.lr`` times the number of AdamW steps the busiest
parameter gets per batch in the original (paths per encoder). Weight decay is decoupled
(AdamW), so the decay per epoch matches the original's.

Distributed training (later): the per-batch math is :func:`._common.batch_objective`, a pure
function of (network, batch tensors, generator). A DDP version wraps :class:`PackedNet` (an
``nn.Module``) in ``DistributedDataParallel``, gives each process a slice of every batch's
subjects and all-gathers the latents before the batch-level losses; dropout masks are drawn for
the whole batch from the same seeded generator on every process, so results do not depend on
the number of processes.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import TrainingError
from ..losses import LossRecipe
from ..model import Krakencoder, Normalize
from ._optim import AdamW
from ._common import (STREAM_BATCH, STREAM_LATENTSIM, Batch, PathPlan, Targets, batch_objective, batch_order,
                      dropout, latentsim_objective, run_sequential, seeded)

log = logging.getLogger(__name__)


def packable(model: Krakencoder) -> bool:
    """Whether the model is one Linear per encoder/decoder with equal sizes (the packed fast path)."""
    c = model.config
    return (not c.hiddenlayers and len(set(c.input_size_list)) == 1 and not c.intergroup
            and not any(c.adversarial_boolean_list) and c.latent_activation in (None, "none")
            and c.linear_include_bias and not c.no_bias_for_outer_layers
            and c.dropout_final_layer is None and c.dropout_final_layer_list is None)


class PackedNet(nn.Module):
    """All flavors' single-Linear encoders and decoders as stacked parameters.

    Parameters ``enc_w [N, L, F]``, ``enc_b [N, L]``, ``dec_w [N, F, L]``, ``dec_b [N, F]`` are
    copies of the model's; :meth:`export` writes them back. Encoder: Linear -> dropout ->
    (normalize); decoder: Linear -> dropout, as the model's modules.
    """

    def __init__(self, model: Krakencoder, plan: PathPlan) -> None:
        super().__init__()
        enc = [seq[0] for seq in model.encoder_list]
        dec = [seq[0] for seq in model.decoder_list]
        self.enc_w = nn.Parameter(torch.stack([m.weight.detach() for m in enc]).clone())
        self.enc_b = nn.Parameter(torch.stack([m.bias.detach() for m in enc]).clone())
        self.dec_w = nn.Parameter(torch.stack([m.weight.detach() for m in dec]).clone())
        self.dec_b = nn.Parameter(torch.stack([m.bias.detach() for m in dec]).clone())
        self.normalize = bool(model.config.latent_normalize)
        self.p = float(model.config.dropout)
        self.plan = plan
        n = plan.n_flavors
        self.all_pairs = [(p.source, p.target) for p in plan.paths] == [(i, j) for i in range(n) for j in range(n)]

    def set_dropout(self, p: float) -> None:
        self.p = float(p)

    def encode(self, xs: Batch, gen: torch.Generator | None) -> torch.Tensor:
        x = xs.stacked
        assert x is not None
        h = torch.baddbmm(self.enc_b.unsqueeze(1), x, self.enc_w.transpose(1, 2))
        h = dropout(h, self.p, gen)
        return F.normalize(h, p=2.0, dim=-1) if self.normalize else h

    def decode(self, z: torch.Tensor, batch: Batch, gen: torch.Generator | None
               ) -> list[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]]:
        x = batch.stacked
        assert x is not None
        if self.all_pairs:  # y[i, j] = z_i W_j^T + b_j
            y = torch.einsum("ibl,jfl->ijbf", z, self.dec_w) + self.dec_b[None, :, None, :]
            return [(None, dropout(y, self.p, gen), x.unsqueeze(0))]
        plan = self.plan
        y = torch.baddbmm(self.dec_b.index_select(0, plan.dec).unsqueeze(1), z.index_select(0, plan.enc),
                          self.dec_w.index_select(0, plan.dec).transpose(1, 2))
        return [(None, dropout(y, self.p, gen), x.index_select(0, plan.dec))]

    @torch.no_grad()
    def export(self, model: Krakencoder) -> None:
        """Copy the packed weights into ``model``'s modules."""
        for i, seq in enumerate(model.encoder_list):
            seq[0].weight.copy_(self.enc_w[i])
            seq[0].bias.copy_(self.enc_b[i])
        for i, seq in enumerate(model.decoder_list):
            seq[0].weight.copy_(self.dec_w[i])
            seq[0].bias.copy_(self.dec_b[i])


class ModuleNet:
    """The generic network: the model's own modules, one flavor at a time, seeded dropout."""

    def __init__(self, model: Krakencoder, plan: PathPlan) -> None:
        if model.config.intergroup:
            raise TrainingError("intergroup models cannot be trained by kraken",
                                hint="fine-tune a model without intergroup transforms")
        self.model = model
        self.plan = plan
        self.groups: list[tuple[int, torch.Tensor, torch.Tensor]] = []
        dev = plan.enc.device
        for j in plan.decoders:
            ids = [k for k, p in enumerate(plan.paths) if p.target == j]
            srcs = [plan.paths[k].source for k in ids]
            self.groups.append((j, torch.tensor(ids, dtype=torch.long, device=dev),
                                torch.tensor(srcs, dtype=torch.long, device=dev)))

    def parameters(self) -> Any:
        return self.model.parameters()

    def set_dropout(self, p: float) -> None:
        self.model.set_dropout(p)

    def encode(self, xs: Batch, gen: torch.Generator | None) -> torch.Tensor:
        return torch.stack([run_sequential(enc, x, gen) for enc, x in zip(self.model.encoder_list, xs.xs)])

    def decode(self, z: torch.Tensor, batch: Batch, gen: torch.Generator | None
               ) -> list[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]]:
        out: list[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]] = []
        for j, ids, srcs in self.groups:
            zin = self.model.decoder_gradientreversal_list[j](z.index_select(0, srcs))
            y = run_sequential(self.model.decoder_list[j], zin, gen)
            out.append((ids, y, batch.xs[j].unsqueeze(0)))
        return out

    def export(self, model: Krakencoder) -> None:
        """Nothing to do: the modules are the model's."""


def _check_normalize(model: Krakencoder) -> None:
    # PackedNet assumes Normalize is the encoder's last module exactly when latent_normalize
    for seq in model.encoder_list:
        if isinstance(seq[-1], Normalize) != bool(model.config.latent_normalize):
            raise TrainingError("encoder layout does not match latent_normalize")


class FastTrainer:
    """Runs epochs of the fast schedule on one device.

    Parameters
    ----------
    model : Krakencoder
        Trained in place (packed copies are written back by :meth:`sync_model`).
    data : Batch
        Transformed training inputs of every flavor, on the device.
    plan : PathPlan
    recipe : LossRecipe
    seed, batch_size : int
    lr, weight_decay : float
    dropout_at : callable
        0-based epoch -> dropout rate.
    targets : Targets, optional
        Target latents of the training subjects (target-encoding training).
    """

    def __init__(self, model: Krakencoder, data: Batch, plan: PathPlan, recipe: LossRecipe, *, seed: int,
                 batch_size: int, lr: float, weight_decay: float, dropout_at: Callable[[int], float],
                 targets: Targets | None = None) -> None:
        self.model = model
        self.plan = plan
        self.recipe = recipe
        self.seed = seed
        self.batch_size = batch_size
        self.dropout_at = dropout_at
        self.targets = targets
        self.device = data.xs[0].device
        if packable(model):
            _check_normalize(model)
            if data.stacked is None:
                data = Batch.of(data.xs, stack=True)
            self.net: PackedNet | ModuleNet = PackedNet(model, plan)
        else:
            self.net = ModuleNet(model, plan)
        self.data = data
        self.optimizer = AdamW(list(self.net.parameters()), lr=lr, weight_decay=weight_decay)
        self.gen = torch.Generator(device=self.device)
        strict = targets is not None and targets.strict
        self.latentsim_weight = 0.0 if strict or len(plan.encoders) < 2 else recipe.latentsim_weight
        n = data.n_subjects
        if n < batch_size:
            raise TrainingError(f"{n} training subjects are fewer than one batch of {batch_size}",
                                hint=f"use --batch-size {max(2, n)} or fewer")

    @property
    def packed(self) -> bool:
        return isinstance(self.net, PackedNet)

    def run_epoch(self, epoch: int) -> torch.Tensor:
        """Train one epoch (0-based ``epoch``); returns the mean training loss per path (on the device)."""
        self.net.set_dropout(self.dropout_at(epoch))
        batches = batch_order(self.data.n_subjects, self.batch_size, self.seed, epoch, self.device)
        acc = torch.zeros(self.plan.n_paths, device=self.device)
        for b, idx in enumerate(batches):
            gen = seeded(self.gen, self.seed, STREAM_BATCH, epoch, b)
            tgt = None if self.targets is None else self.targets.rows(idx)
            self.optimizer.zero_grad(set_to_none=True)
            loss, per_path = batch_objective(self.net, self.data.rows(idx), self.plan, self.recipe, gen, tgt)
            if loss.requires_grad:  # a recipe of latentsimloss alone has nothing per batch
                loss.backward()
                self.optimizer.step()
            acc += per_path
        if self.latentsim_weight > 0:
            gen = seeded(self.gen, self.seed, STREAM_LATENTSIM, epoch)
            self.optimizer.zero_grad(set_to_none=True)
            latentsim_objective(self.net, self.data, self.plan, self.latentsim_weight, gen).backward()
            self.optimizer.step()
        return acc / max(1, len(batches))

    def sync_model(self) -> Krakencoder:
        """Write the trained weights into the model and return it."""
        self.net.export(self.model)
        return self.model

    def state_dict(self) -> dict[str, Any]:
        """Optimizer state (the weights live in the model after :meth:`sync_model`)."""
        return {"optimizer": self.optimizer.state_dict(), "packed": self.packed}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the optimizer of a run with the same model layout."""
        if bool(state.get("packed")) != self.packed:
            raise TrainingError("the checkpoint's optimizer state belongs to another trainer layout",
                                hint="resume with the same kraken version and options")
        self.optimizer.load_state_dict(state["optimizer"])
