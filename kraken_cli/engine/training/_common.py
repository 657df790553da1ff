"""Pieces shared by the fast and the legacy trainer: path plans, device data, seeded randomness,
and the per-batch objective as a pure function of (network, batch tensors, generator).

Randomness is stateless: every (seed, stream, epoch, batch) gets its own generator seed from
``numpy.random.SeedSequence``. Batch order, dropout masks and latent-similarity masks therefore
depend only on those numbers, never on what ran before, which makes resume bit-exact and lets a
distributed version draw the full batch's masks identically on every process and keep its slice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

import numpy as np
import torch
from torch import nn

from ..losses import LossRecipe, latent_loss, latentsimloss, mse, output_loss
from .paths import TrainPath

#: Random streams (part of the seed derivation).
STREAM_ORDER, STREAM_BATCH, STREAM_LATENTSIM, STREAM_PATHS = 0, 1, 2, 3


def derive_seed(seed: int, stream: int, epoch: int, batch: int = 0) -> int:
    """A 63-bit generator seed for one (seed, stream, epoch, batch)."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, stream, epoch, batch])
    return int(ss.generate_state(2, dtype=np.uint64)[0] & np.uint64(0x7FFFFFFFFFFFFFFF))


def seeded(gen: torch.Generator, seed: int, stream: int, epoch: int, batch: int = 0) -> torch.Generator:
    """Reseed ``gen`` for one (seed, stream, epoch, batch) and return it."""
    gen.manual_seed(derive_seed(seed, stream, epoch, batch))
    return gen


def batch_order(n_train: int, batch_size: int, seed: int, epoch: int,
                device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """The epoch's training batches as index tensors on ``device`` (shuffled, incomplete last
    batch dropped); the permutation is drawn on the device, so no host transfer is needed."""
    g = seeded(torch.Generator(device=device), seed, STREAM_ORDER, epoch)
    perm = torch.randperm(n_train, generator=g, device=device)
    n_batches = n_train // batch_size
    return [perm[b * batch_size:(b + 1) * batch_size] for b in range(n_batches)]


def dropout(x: torch.Tensor, p: float, gen: torch.Generator | None) -> torch.Tensor:
    """Inverted dropout with a mask from ``gen``; identity when ``gen`` is None (eval) or p == 0."""
    if gen is None or p <= 0:
        return x
    if p >= 1:
        return torch.zeros_like(x)
    keep = torch.rand(x.shape, generator=gen, device=x.device, dtype=x.dtype) >= p
    return x * keep.to(x.dtype) * (1.0 / (1.0 - p))


def run_sequential(seq: nn.Module, x: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Run an ``nn.Sequential`` with every ``nn.Dropout`` drawing its mask from ``gen``."""
    for m in seq:  # type: ignore[attr-defined]
        if isinstance(m, nn.Dropout):
            x = dropout(x, float(m.p), gen)
        else:
            x = m(x)
    return x


@dataclass(frozen=True)
class PathPlan:
    """The trained paths as index tensors on the device."""

    paths: tuple[TrainPath, ...]
    n_flavors: int
    enc: torch.Tensor          # [P] long
    dec: torch.Tensor          # [P] long
    enc_count: torch.Tensor    # [N] float: paths per encoder
    encoders: tuple[int, ...]  # flavors used as an encoder, increasing
    decoders: tuple[int, ...]  # flavors used as a decoder, increasing
    encoders_t: torch.Tensor   # [len(encoders)] long

    @classmethod
    def build(cls, paths: Sequence[TrainPath], n_flavors: int, device: torch.device) -> "PathPlan":
        enc = torch.tensor([p.source for p in paths], dtype=torch.long, device=device)
        dec = torch.tensor([p.target for p in paths], dtype=torch.long, device=device)
        count = torch.zeros(n_flavors, dtype=torch.float32, device=device)
        for p in paths:
            count[p.source] += 1
        encoders = tuple(sorted({p.source for p in paths}))
        decoders = tuple(sorted({p.target for p in paths}))
        return cls(tuple(paths), n_flavors, enc, dec, count, encoders, decoders,
                   torch.tensor(encoders, dtype=torch.long, device=device))

    @property
    def n_paths(self) -> int:
        return len(self.paths)

    @property
    def max_share(self) -> int:
        """Most paths sharing one encoder or one decoder (AdamW steps per batch in the original)."""
        c: dict[tuple[str, int], int] = {}
        for p in self.paths:
            c[("e", p.source)] = c.get(("e", p.source), 0) + 1
            c[("d", p.target)] = c.get(("d", p.target), 0) + 1
        return max(c.values())


class Net(Protocol):
    """What the objective needs from a network (packed or module-based)."""

    def encode(self, xs: "Batch", gen: torch.Generator | None) -> torch.Tensor:
        """Latents of every flavor, shape (n_flavors, n_subjects, n_latent)."""

    def decode(self, z: torch.Tensor, batch: "Batch", gen: torch.Generator | None
               ) -> list[tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]]:
        """Decode ``z[enc[p]]`` with decoder ``dec[p]`` for every path of the net's plan.

        Returns groups ``(path_ids, predictions [..., B, F_g], targets broadcastable to them)``;
        the group's losses, flattened, belong to paths ``path_ids`` (None: all paths in order).
        """


class Batch:
    """Transformed inputs of a set of subjects: a stacked tensor (equal sizes) or one per flavor."""

    def __init__(self, xs: Sequence[torch.Tensor], stacked: torch.Tensor | None = None) -> None:
        self.xs = list(xs)
        self.stacked = stacked

    @classmethod
    def of(cls, xs: Sequence[torch.Tensor], stack: bool) -> "Batch":
        return cls(xs, torch.stack(list(xs)) if stack else None)

    def rows(self, idx: torch.Tensor) -> "Batch":
        if self.stacked is not None:
            st = self.stacked.index_select(1, idx)
            return Batch(list(st.unbind(0)), st)
        return Batch([x.index_select(0, idx) for x in self.xs])

    @property
    def n_subjects(self) -> int:
        return int(self.xs[0].shape[0])


@dataclass
class Targets:
    """Target latents for target-encoding training, per flavor: (n_flavors, n_subjects, n_latent)."""

    z: torch.Tensor
    strict: bool
    mse_weight: float

    def rows(self, idx: torch.Tensor) -> "Targets":
        return Targets(self.z.index_select(1, idx), self.strict, self.mse_weight)


def batch_objective(net: Net, batch: Batch, plan: PathPlan, recipe: LossRecipe, gen: torch.Generator | None,
                    targets: Targets | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The summed training objective of one batch over all paths (paths weighted equally).

    Latent terms depend only on the encoder, so each encoder's latent loss counts once per path
    that uses it. Returns ``(objective, per-path loss [P] detached)``; the per-path loss is the
    path's output loss plus its encoder's latent loss, as the original records it.
    """
    z = net.encode(batch, gen)
    zt = None if targets is None else targets.z
    lat = latent_loss(recipe, zt, z)
    if targets is not None and targets.mse_weight > 0:
        lat = lat + targets.mse_weight * mse(targets.z, z)
    source = targets.z if targets is not None and targets.strict else z
    groups = net.decode(source, batch, gen)
    outs, ids = [], []
    for pid, y, tgt in groups:
        outs.append(output_loss(recipe, tgt, y).reshape(-1))
        if pid is not None:
            ids.append(pid)
    out = outs[0] if len(outs) == 1 and not ids else torch.cat(outs)
    if ids:
        order = torch.cat(ids)
        out = torch.empty_like(out).index_copy_(0, order, out)
    lat_paths = lat.index_select(0, plan.enc)
    total = out.sum() + (lat * plan.enc_count).sum()
    return total, (out + lat_paths).detach()


def latentsim_objective(net: Net, batch: Batch, plan: PathPlan, weight: float,
                        gen: torch.Generator | None) -> torch.Tensor:
    """``weight * latentsimloss`` over the encoders in use: eval-mode detached targets,
    train-mode latents with dropout from ``gen`` (UPSTREAM 7.3)."""
    with torch.no_grad():
        z_hat = net.encode(batch, None).index_select(0, plan.encoders_t)
    z = net.encode(batch, gen).index_select(0, plan.encoders_t)
    return weight * latentsimloss(z, z_hat)
