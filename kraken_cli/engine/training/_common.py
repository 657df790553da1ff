"""Pieces shared by the fast and the legacy trainer: path plans, shards, device data, seeded
randomness, and the per-batch objective as a pure function of (network, batch tensors, masks).

Randomness is stateless: every (seed, stream, epoch, batch) gets its own generator seeds from
``numpy.random.SeedSequence``. Batch order, dropout masks and latent-similarity masks therefore
depend only on those numbers, never on what ran before, which makes resume bit-exact.

Dropout masks come in *blocks*, each drawn from its own seed (:class:`Masks`): block ``i`` holds
encoder ``i``'s masks, block ``n_flavors + j`` the masks of every path decoded into flavor ``j``
(one row per source, in source order). A process that computes only some paths (a
:class:`Shard` of a distributed run, see :mod:`.distributed`) draws whole blocks and keeps its
rows, so it uses exactly the masks a single process uses for those paths.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from .._self_loss import fused_latent_loss
from ..losses import LossRecipe, mse
from ._masks import keep_mask
from .paths import TrainPath


class ProcessLink(Protocol):
    """What training needs of the link between the processes of a ``torchrun`` job.

    :class:`.distributed.Communicator` is the implementation; trainers and the loop only see this
    interface, so none of them imports the distributed module.
    """

    rank: int
    world_size: int
    last_checkpoint: str | None

    def reduce_gradients(self, params: Sequence[torch.Tensor], kind: str) -> bool: ...

    def sum_(self, t: torch.Tensor) -> torch.Tensor: ...

    def wait_for_main(self) -> None: ...

    def abort_setup(self, exc: BaseException) -> None: ...


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


def derive_seeds(seed: int, stream: int, epoch: int, batch: int, n: int) -> list[int]:
    """``n`` 63-bit generator seeds for one (seed, stream, epoch, batch); the first is :func:`derive_seed`'s.

    SeedSequence output words do not depend on how many are asked for, so seed ``k`` is the
    same for every ``n > k``.
    """
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, int(seed) >> 32, stream, epoch, batch])
    words = ss.generate_state(max(1, n), dtype=np.uint64) & np.uint64(0x7FFFFFFFFFFFFFFF)
    return [int(w) for w in words[:n]]


class Masks:
    """Dropout-mask generators of one step, one seed per block (see the module docstring).

    Blocks are drawn one after the other through one reseeded ``torch.Generator``, so a block
    must be fully drawn before the next one is asked for.
    """

    def __init__(self, gen: torch.Generator, seed: int, stream: int, epoch: int, batch: int,
                 n_flavors: int) -> None:
        self.gen = gen
        self.n_flavors = n_flavors
        self.seeds = derive_seeds(seed, stream, epoch, batch, 2 * n_flavors)

    def encoder(self, i: int) -> torch.Generator:
        """The generator of encoder ``i``'s masks."""
        return self.gen.manual_seed(self.seeds[i])

    def decoder(self, j: int) -> torch.Generator:
        """The generator of the masks of every path into flavor ``j``."""
        return self.gen.manual_seed(self.seeds[self.n_flavors + j])


def batch_order(n_train: int, batch_size: int, seed: int, epoch: int,
                device: torch.device | str = "cpu") -> list[torch.Tensor]:
    """The epoch's training batches as index tensors on ``device`` (shuffled, incomplete last
    batch dropped); the permutation is drawn on the device, so no host transfer is needed."""
    g = seeded(torch.Generator(device=device), seed, STREAM_ORDER, epoch)
    perm = torch.randperm(n_train, generator=g, device=device)
    n_batches = n_train // batch_size
    return [perm[b * batch_size:(b + 1) * batch_size] for b in range(n_batches)]


def dropout(x: torch.Tensor, p: float, gen: torch.Generator | None,
            rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Inverted dropout with a mask from ``gen``; identity when ``gen`` is None (eval) or p == 0.

    ``rows``: see :func:`keep_mask`.
    """
    if gen is None or p <= 0:
        return x
    if p >= 1:
        return torch.zeros_like(x)
    return x * keep_mask(x.shape, p, gen, x, rows)


def run_sequential(seq: nn.Module, x: torch.Tensor, gen: torch.Generator | None,
                   rows: tuple[int, int] | None = None) -> torch.Tensor:
    """Run an ``nn.Sequential`` with every ``nn.Dropout`` drawing its mask from ``gen``
    (``rows``: see :func:`keep_mask`)."""
    for m in seq:  # type: ignore[attr-defined]
        if isinstance(m, nn.Dropout):
            x = dropout(x, float(m.p), gen, rows)
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
    def build(cls, paths: Sequence[TrainPath], n_flavors: int, device: torch.device) -> PathPlan:
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


def _split_points(costs: Sequence[float], parts: int) -> list[int]:
    """Boundaries ``b_0 = 0 <= b_1 <= ... <= b_parts = len(costs)`` cutting ``costs`` into
    ``parts`` contiguous runs of about equal total cost."""
    cum = np.concatenate([[0.0], np.cumsum(np.asarray(costs, dtype=np.float64))])
    total = float(cum[-1])
    bounds = [0]
    for r in range(1, parts):
        b = int(np.argmin(np.abs(cum - r * total / parts))) if total > 0 else 0
        bounds.append(max(b, bounds[-1]))
    bounds.append(len(costs))
    return bounds


@dataclass(frozen=True)
class Segment:
    """Consecutive paths into one decoder, in source order: rows ``offset .. offset + len(sources)``
    of that decoder's mask block, which has ``group_size`` rows (every path into the decoder)."""

    decoder: int
    sources: tuple[int, ...]
    group_size: int
    offset: int
    path_ids: tuple[int, ...]
    sources_t: torch.Tensor

    @property
    def rows(self) -> tuple[int, int]:
        """``(group_size, offset)``, the ``rows`` argument of :func:`keep_mask`."""
        return (self.group_size, self.offset)


@dataclass(frozen=True)
class Shard:
    """The part of the objective one process computes: part ``rank`` of ``world_size``.

    The paths, ordered decoder by decoder (sources increasing within a decoder), are cut into
    ``world_size`` contiguous runs of about equal cost (paths weighted by their output width);
    the latent-similarity terms of the encoders that receive its gradient (all but the first)
    are cut the same way. ``Shard.build(plan)`` is everything, for one process.
    """

    rank: int
    world_size: int
    segments: tuple[Segment, ...]
    path_ids: torch.Tensor          # [P_local] long: global path index of each local row
    enc_rows: torch.Tensor          # [P_local] long: encoder of each local row
    dec_rows: torch.Tensor          # [P_local] long: decoder of each local row
    enc_count: torch.Tensor         # [N] float: local paths per encoder (weights of the latent losses)
    latentsim: tuple[int, ...]      # encoders whose latent-similarity term this part computes

    @classmethod
    def build(cls, plan: PathPlan, rank: int = 0, world_size: int = 1,
              widths: Sequence[int] | None = None) -> Shard:
        """Part ``rank`` of ``world_size`` of ``plan``; ``widths`` are the flavors' feature counts."""
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        dev = plan.enc.device
        w = list(widths) if widths is not None else [1] * plan.n_flavors
        order = sorted(range(plan.n_paths), key=lambda k: (plan.paths[k].target, plan.paths[k].source))
        bounds = _split_points([w[plan.paths[k].target] for k in order], world_size)
        mine = order[bounds[rank]:bounds[rank + 1]]
        group_rows: dict[int, list[int]] = {}
        for k in order:
            group_rows.setdefault(plan.paths[k].target, []).append(k)
        segments: list[Segment] = []
        run: list[int] = []
        for k in [*mine, -1]:  # -1 closes the last segment
            if run and (k < 0 or plan.paths[k].target != plan.paths[run[0]].target):
                j = plan.paths[run[0]].target
                srcs = tuple(plan.paths[q].source for q in run)
                segments.append(Segment(j, srcs, len(group_rows[j]), group_rows[j].index(run[0]), tuple(run),
                                        torch.tensor(srcs, dtype=torch.long, device=dev)))
                run = []
            if k >= 0:
                run.append(k)
        count = torch.zeros(plan.n_flavors, dtype=torch.float32, device=dev)
        for k in mine:
            count[plan.paths[k].source] += 1
        graded = plan.encoders[1:]
        lb = _split_points([w[i] for i in graded], world_size)

        def t(v: list[int]) -> torch.Tensor:
            return torch.tensor(v, dtype=torch.long, device=dev)

        return cls(rank, world_size, tuple(segments), t(mine), t([plan.paths[k].source for k in mine]),
                   t([plan.paths[k].target for k in mine]), count, tuple(graded[lb[rank]:lb[rank + 1]]))

    @property
    def n_paths(self) -> int:
        return int(self.path_ids.numel())


class Net(Protocol):
    """What the objective needs from a network (packed or module-based)."""

    shard: Shard

    def encode(self, xs: Batch, masks: Masks | None, flavors: Sequence[int] | None = None) -> torch.Tensor:
        """Latents of ``flavors`` (default all), shape (n_flavors, n_subjects, n_latent);
        ``masks=None`` is eval mode (no dropout)."""

    def output_losses(self, z: torch.Tensor, batch: Batch, masks: Masks | None, recipe: LossRecipe) -> torch.Tensor:
        """Output loss ``[P_local]`` of the shard's paths (in its row order), decoded from the
        latents ``z`` of every flavor."""


class Batch:
    """Transformed inputs of a set of subjects: a stacked tensor (equal sizes) or one per flavor."""

    def __init__(self, xs: Sequence[torch.Tensor], stacked: torch.Tensor | None = None) -> None:
        self.xs = list(xs)
        self.stacked = stacked

    @classmethod
    def of(cls, xs: Sequence[torch.Tensor], stack: bool) -> Batch:
        return cls(xs, torch.stack(list(xs)) if stack else None)

    def rows(self, idx: torch.Tensor) -> Batch:
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

    def rows(self, idx: torch.Tensor) -> Targets:
        return Targets(self.z.index_select(1, idx), self.strict, self.mse_weight)


def batch_objective(net: Net, batch: Batch, plan: PathPlan, recipe: LossRecipe, masks: Masks | None,
                    targets: Targets | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The summed training objective of one batch over the net's shard of paths (paths weighted equally).

    Latent terms depend only on the encoder, so each encoder's latent loss counts once per path
    that uses it. Returns ``(objective, per-path loss [P] detached)``; the per-path loss is the
    path's output loss plus its encoder's latent loss, as the original records it (0 for paths
    outside the shard). Summed over the shards of a distributed run, the objectives are the
    objective of one process.
    """
    shard = net.shard
    z = net.encode(batch, masks)
    zt = None if targets is None else targets.z
    lat = fused_latent_loss(recipe, zt, z)
    if targets is not None and targets.mse_weight > 0:
        lat = lat + targets.mse_weight * mse(targets.z, z)
    source = targets.z if targets is not None and targets.strict else z
    out = net.output_losses(source, batch, masks, recipe)
    total = out.sum() + (lat * shard.enc_count).sum()
    per_path = (out + lat.index_select(0, shard.enc_rows)).detach()
    if shard.world_size == 1 and shard.n_paths == plan.n_paths:
        return total, torch.empty_like(per_path).index_copy_(0, shard.path_ids, per_path)
    return total, lat.new_zeros(plan.n_paths).index_copy_(0, shard.path_ids, per_path)


def latentsim_objective(net: Net, batch: Batch, plan: PathPlan, weight: float,
                        masks: Masks | None) -> torch.Tensor | None:
    """``weight * latentsimloss`` (UPSTREAM 7.3) for the encoders of the net's shard.

    For each encoder ``i`` but the first in use: ``2 * sum_{j<i} MSE(z_i, sg(zhat_j))`` with
    ``zhat`` eval-mode latents and ``z_i`` a train-mode latent with encoder ``i``'s masks. Only
    those encoders run with gradient, so the first (the anchor) gets none, as in the original.
    Returns None when the shard holds no term.
    """
    local = net.shard.latentsim
    if not local:
        return None
    pos = {f: a for a, f in enumerate(plan.encoders)}
    with torch.no_grad():
        z_hat = net.encode(batch, None, plan.encoders[:max(pos[i] for i in local)])
        # sum_{j<i} |z - zhat_j|^2 = k |z - m|^2 + sum_j |zhat_j|^2 - k |m|^2, m the mean of the k
        # anchors: one pass per encoder instead of one per pair; the gradient is exact
        sums = z_hat.cumsum(dim=0)
        norms = z_hat.double().square().sum(dim=(-2, -1)).cumsum(dim=0)
    z = net.encode(batch, masks, local)
    total = z.new_zeros(())
    for row, i in enumerate(local):
        k = pos[i]
        m = sums[k - 1] / k
        spread = (norms[k - 1] - k * m.double().square().sum()).to(z.dtype)
        total = total + 2 * (k * (z[row] - m).square().sum() + spread) / z[row].numel()
    return weight * total


@dataclass(eq=False, repr=False)
class TrainerBase:
    """What both trainers hold: the network, its data and path plan, the recipe, and the randomness
    (a generator on the data's device, reseeded for every draw)."""

    model: Any
    data: Batch
    plan: PathPlan
    recipe: LossRecipe
    seed: int = field(kw_only=True)
    batch_size: int = field(kw_only=True)
    dropout_at: Callable[[int], float] = field(kw_only=True)
    targets: Targets | None = field(kw_only=True)
    device: torch.device = field(init=False)
    gen: torch.Generator = field(init=False)

    def __post_init__(self) -> None:
        self.device = self.data.xs[0].device
        self.gen = torch.Generator(device=self.device)
