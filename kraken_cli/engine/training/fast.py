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

Distributed training (``torchrun``): each process runs a :class:`._common.Shard` of the paths
and of the latent-similarity terms, and a communicator (:mod:`.distributed`) sums the gradients
before every step, so all processes take the same step a single process takes; see
:mod:`.distributed` for why the paths, not the subjects, are split.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn

from .. import fused_loss
from ..errors import TrainingError
from ..losses import LossRecipe, output_loss
from ..model import Krakencoder, Normalize
from ._common import (
    STREAM_BATCH,
    STREAM_LATENTSIM,
    Batch,
    Masks,
    PathPlan,
    ProcessLink,
    Segment,
    Shard,
    Targets,
    TrainerBase,
    batch_objective,
    batch_order,
    latentsim_objective,
    run_sequential,
)
from ._masks import keep_masks
from ._optim import AdamW
from ._packed_decode import decode_stats
from ._packed_encode import PackedEncode

log = logging.getLogger(__name__)

#: Predictions (paths x subjects x features) decoded and scored together. With the fused loss a
#: chunk is read only a few times, so fewer, larger chunks (fewer small tensor operations) win while
#: they stay in the CPU's last-level cache: about 10 MB of float32, one chunk per paper-scale batch
#: (2.4M predictions; 2-3% faster per batch than two chunks on the 2-core test machine).
CHUNK_ELEMENTS = 2_500_000


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
    (normalize); decoder: Linear -> dropout, as the model's modules. Decoding runs the shard's
    segments that share the same sources as one ``einsum`` (all of them, for all-pairs plans).
    """

    def __init__(self, model: Krakencoder, plan: PathPlan, shard: Shard | None = None) -> None:
        super().__init__()
        enc = [_first_linear(seq) for seq in model.encoder_list]
        dec = [_first_linear(seq) for seq in model.decoder_list]
        self.enc_w = nn.Parameter(torch.stack([m.weight.detach() for m in enc]).clone())
        self.enc_b = nn.Parameter(torch.stack([m.bias.detach() for m in enc]).clone())
        self.dec_w = nn.Parameter(torch.stack([m.weight.detach() for m in dec]).clone())
        self.dec_b = nn.Parameter(torch.stack([m.bias.detach() for m in dec]).clone())
        self.normalize = bool(model.config.latent_normalize)
        self.p = float(model.config.dropout)
        self.plan = plan
        self.shard = shard if shard is not None else Shard.build(plan)
        n, dev = plan.n_flavors, plan.enc.device
        self.runs: list[tuple[torch.Tensor | None, torch.Tensor | None, tuple[Segment, ...]]] = []
        segs = self.shard.segments
        k = 0
        while k < len(segs):
            m = k + 1
            while m < len(segs) and segs[m].sources == segs[k].sources:
                m += 1
            run = segs[k:m]
            decs = [s.decoder for s in run]
            dec_t = None if decs == list(range(n)) else torch.tensor(decs, dtype=torch.long, device=dev)
            src_t = None if run[0].sources == tuple(range(n)) else run[0].sources_t
            self.runs.append((dec_t, src_t, run))
            k = m
        self._chunk_cache: dict[int, list[tuple[torch.Tensor | None, torch.Tensor | None, tuple[Segment, ...],
                                               list[int]]]] = {}

    def set_dropout(self, p: float) -> None:
        self.p = float(p)

    def encode(self, xs: Batch, masks: Masks | None, flavors: Sequence[int] | None = None) -> torch.Tensor:
        x = xs.stacked
        assert x is not None
        w: torch.Tensor = self.enc_w
        b: torch.Tensor = self.enc_b
        if flavors is not None:
            idx = torch.tensor(list(flavors), dtype=torch.long, device=x.device)
            x, w, b = x.index_select(0, idx), w.index_select(0, idx), b.index_select(0, idx)
        mask = None
        if masks is not None and self.p > 0:
            fl = range(self.plan.n_flavors) if flavors is None else flavors
            shape = (x.shape[1], w.shape[1])
            mask = keep_masks(shape, self.p, [(partial(masks.encoder, i), None) for i in fl], x, 0)
        return PackedEncode.apply(x, w, b, mask, self.normalize)

    def output_losses(self, z: torch.Tensor, batch: Batch, masks: Masks | None, recipe: LossRecipe) -> torch.Tensor:
        """Output loss of the shard's paths (its row order), chunk by chunk (:data:`CHUNK_ELEMENTS`);
        ``y[j, i] = dropout(z_i W_j^T + b_j)``."""
        x = batch.stacked
        assert x is not None
        fused = fused_loss.supported(recipe)
        out = []
        for dec_t, src_t, run, sizes in self._chunks(z.shape[1]):
            zs = z if src_t is None else z.index_select(0, src_t)
            w: torch.Tensor = self.dec_w
            b: torch.Tensor = self.dec_b
            tgt = x
            if dec_t is not None:
                w, b, tgt = w.index_select(0, dec_t), b.index_select(0, dec_t), x.index_select(0, dec_t)
            lo = 0
            for wc, bc in zip(w.split(sizes), b.split(sizes)):
                part, xc = run[lo:lo + len(wc)], tgt[lo:lo + len(wc)]
                keep = self._masks(part, masks, zs, wc.shape[1])
                if fused:
                    loss = fused_loss.loss_from_stats(recipe, decode_stats(zs, wc, bc, keep, xc))
                else:
                    y = torch.einsum("ibl,jfl->jibf", zs, wc) + bc[:, None, None, :]
                    y = y if keep is None else y * keep.permute(2, 0, 1, 3)
                    loss = output_loss(recipe, xc.unsqueeze(1), y)
                out.append(loss.reshape(-1))
                lo += len(wc)
        return out[0] if len(out) == 1 else torch.cat(out)

    def _masks(self, part: Sequence[Segment], masks: Masks | None, z: torch.Tensor, width: int) -> torch.Tensor | None:
        """Dropout multipliers ``[I, n, J, F]`` of the chunk's decoders (None in eval mode)."""
        if masks is None or self.p <= 0:
            return None
        shape = (z.shape[0], z.shape[1], width)
        return keep_masks(shape, self.p, [(partial(masks.decoder, s.decoder), s.rows) for s in part], z, 2)

    def _chunks(self, n_subjects: int) -> list[tuple[torch.Tensor | None, torch.Tensor | None, tuple[Segment, ...],
                                                      list[int]]]:
        """The runs, each with its cut into chunks of at most about ``CHUNK_ELEMENTS`` predictions
        (decoders per chunk); cached per batch size."""
        got = self._chunk_cache.get(n_subjects)
        if got is not None:
            return got
        out = []
        width = int(self.dec_w.shape[1])
        for dec_t, src_t, run in self.runs:
            per = len(run[0].sources) * n_subjects * width
            k = min(len(run), -(-len(run) // max(1, CHUNK_ELEMENTS // max(1, per))))
            bounds = [round(c * len(run) / k) for c in range(k + 1)]
            out.append((dec_t, src_t, run, [hi - lo for lo, hi in zip(bounds, bounds[1:])]))
        self._chunk_cache[n_subjects] = out
        return out

    @torch.no_grad()
    def export(self, model: Krakencoder) -> None:
        """Copy the packed weights into ``model``'s modules."""
        for i, seq in enumerate(model.encoder_list):
            _first_linear(seq).weight.copy_(self.enc_w[i])
            _first_linear(seq).bias.copy_(self.enc_b[i])
        for i, seq in enumerate(model.decoder_list):
            _first_linear(seq).weight.copy_(self.dec_w[i])
            _first_linear(seq).bias.copy_(self.dec_b[i])


class ModuleNet:
    """The generic network: the model's own modules, one flavor (or decoder segment) at a time."""

    def __init__(self, model: Krakencoder, plan: PathPlan, shard: Shard | None = None) -> None:
        if model.config.intergroup:
            raise TrainingError("intergroup models cannot be trained by kraken",
                                hint="fine-tune a model without intergroup transforms")
        self.model = model
        self.plan = plan
        self.shard = shard if shard is not None else Shard.build(plan)

    def parameters(self) -> Any:
        return self.model.parameters()

    def set_dropout(self, p: float) -> None:
        self.model.set_dropout(p)

    def encode(self, xs: Batch, masks: Masks | None, flavors: Sequence[int] | None = None) -> torch.Tensor:
        fl = range(len(xs.xs)) if flavors is None else flavors
        return torch.stack([run_sequential(self.model.encoder_list[i], xs.xs[i],
                                           None if masks is None else masks.encoder(i)) for i in fl])

    def output_losses(self, z: torch.Tensor, batch: Batch, masks: Masks | None, recipe: LossRecipe) -> torch.Tensor:
        """Output loss of the shard's paths (its row order), one decoder segment at a time."""
        out: list[torch.Tensor] = []
        for s in self.shard.segments:
            j = s.decoder
            zin = self.model.decoder_gradientreversal_list[j](z.index_select(0, s.sources_t))
            y = run_sequential(self.model.decoder_list[j], zin, None if masks is None else masks.decoder(j), s.rows)
            out.append(fused_loss.fused_output_loss(recipe, batch.xs[j].unsqueeze(0), y))
        return torch.cat(out) if out else z.new_zeros(0)

    def export(self, model: Krakencoder) -> None:
        """Nothing to do: the modules are the model's."""


def _first_linear(seq: nn.Module) -> nn.Linear:
    """The linear layer an encoder or decoder (an ``nn.Sequential``) starts with."""
    assert isinstance(seq, nn.Sequential) and isinstance(seq[0], nn.Linear)
    return seq[0]


def _check_normalize(model: Krakencoder) -> None:
    # PackedNet assumes Normalize is the encoder's last module exactly when latent_normalize
    for seq in model.encoder_list:
        assert isinstance(seq, nn.Sequential)
        if isinstance(seq[-1], Normalize) != bool(model.config.latent_normalize):
            raise TrainingError("encoder layout does not match latent_normalize")


class FastTrainer(TrainerBase):
    """Runs epochs of the fast schedule on one device (one process of a distributed run with ``comm``).

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
    comm : ProcessLink, optional
        This process's link to the others of a distributed run: the trainer then computes its
        rank's :class:`._common.Shard` and sums gradients and losses across processes.
    """

    def __init__(self, model: Krakencoder, data: Batch, plan: PathPlan, recipe: LossRecipe, *, seed: int,
                 batch_size: int, lr: float, weight_decay: float, dropout_at: Callable[[int], float],
                 targets: Targets | None = None, comm: ProcessLink | None = None) -> None:
        super().__init__(model, data, plan, recipe, seed=seed, batch_size=batch_size, dropout_at=dropout_at,
                         targets=targets)
        self.comm = comm if comm is not None and comm.world_size > 1 else None
        rank, world = (0, 1) if self.comm is None else (self.comm.rank, self.comm.world_size)
        self.shard = Shard.build(plan, rank, world, widths=list(model.config.input_size_list))
        if packable(model):
            _check_normalize(model)
            if data.stacked is None:
                data = Batch.of(data.xs, stack=True)
            self.net: PackedNet | ModuleNet = PackedNet(model, plan, self.shard)
        else:
            self.net = ModuleNet(model, plan, self.shard)
        self.data = data
        self.params = list(self.net.parameters())
        self.optimizer = AdamW(self.params, lr=lr, weight_decay=weight_decay)
        strict = targets is not None and targets.strict
        self.latentsim_weight = 0.0 if strict or len(plan.encoders) < 2 else recipe.latentsim_weight
        n = data.n_subjects
        if n < batch_size:
            raise TrainingError(f"{n} training subjects are fewer than one batch of {batch_size}",
                                hint=f"use --batch-size {max(2, n)} or fewer")

    @property
    def packed(self) -> bool:
        return isinstance(self.net, PackedNet)

    def _step(self, objective: torch.Tensor | None, kind: str) -> None:
        """Backward, sum the gradients across processes, and one AdamW step if any parameter has one."""
        if objective is not None and objective.requires_grad:
            objective.backward()
        if self.comm is not None:
            if self.comm.reduce_gradients(self.params, kind):
                self.optimizer.step()
        elif objective is not None and objective.requires_grad:
            self.optimizer.step()

    def run_epoch(self, epoch: int) -> torch.Tensor:
        """Train one epoch (0-based ``epoch``); returns the mean training loss per path (on the device)."""
        self.net.set_dropout(self.dropout_at(epoch))
        batches = batch_order(self.data.n_subjects, self.batch_size, self.seed, epoch, self.device)
        acc = torch.zeros(self.plan.n_paths, device=self.device)
        n = self.plan.n_flavors
        for b, idx in enumerate(batches):
            masks = Masks(self.gen, self.seed, STREAM_BATCH, epoch, b, n)
            tgt = None if self.targets is None else self.targets.rows(idx)
            self.optimizer.zero_grad(set_to_none=True)
            loss, per_path = batch_objective(self.net, self.data.rows(idx), self.plan, self.recipe, masks, tgt)
            self._step(loss, "batch")
            acc += per_path
        if self.latentsim_weight > 0:
            masks = Masks(self.gen, self.seed, STREAM_LATENTSIM, epoch, 0, n)
            self.optimizer.zero_grad(set_to_none=True)
            self._step(latentsim_objective(self.net, self.data, self.plan, self.latentsim_weight, masks), "latentsim")
        if self.comm is not None:
            self.comm.sum_(acc)  # each path's loss comes from exactly one process
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
