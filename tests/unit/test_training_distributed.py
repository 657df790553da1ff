"""Distributed training without processes: shards add up to the single-process objective.

The split of the paths (and of the latent-similarity terms) across processes must leave the
objective, its gradients and its dropout masks exactly those of one process. These tests check
that in one process: shard by shard, and with two trainers run in lockstep on threads through
an in-memory stand-in for the process group. The real thing (torchrun, gloo) is in
``tests/e2e/test_torchrun.py``.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import pytest
import torch

from kraken_cli.engine.errors import DeviceError, TrainingError
from kraken_cli.engine.losses import PAPER_RECIPE, parse_recipe
from kraken_cli.engine.model import Krakencoder, ModelConfig
from kraken_cli.engine.training._common import (
    STREAM_BATCH,
    STREAM_LATENTSIM,
    Batch,
    Masks,
    PathPlan,
    Shard,
    batch_objective,
    derive_seed,
    derive_seeds,
    keep_mask,
    latentsim_objective,
)
from kraken_cli.engine.training.distributed import Communicator, DistributedSpec, resolve_rank_device
from kraken_cli.engine.training.fast import FastTrainer, ModuleNet, PackedNet
from kraken_cli.engine.training.paths import resolve_paths
from kraken_cli.engine.training.schedule import EpochSchedule

RECIPE = parse_recipe(PAPER_RECIPE)
CPU = torch.device("cpu")


def _setup(n: int = 4, size: int = 12, latent: int = 5, paths: list[str] | None = None,
           hidden: list[int] | None = None, sizes: list[int] | None = None,
           groups: list[str] | None = None) -> tuple[Krakencoder, Batch, PathPlan]:
    torch.manual_seed(0)
    sizes = sizes or [size] * n
    model = Krakencoder(ModelConfig(sizes, latentsize=latent, latent_normalize=True, dropout=0.5,
                                    hiddenlayers=hidden or []))
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(24, s, generator=g) * 3 for s in sizes]
    names = [f"f{i}" for i in range(len(sizes))]
    plan = PathPlan.build(resolve_paths(paths or ["SCFC"], names, groups), len(sizes), CPU)
    return model, Batch.of(xs, stack=len(set(sizes)) == 1), plan


def _net(kind: str, model: Krakencoder, plan: PathPlan, shard: Shard) -> Any:
    return PackedNet(model, plan, shard) if kind == "packed" else ModuleNet(model, plan, shard)


def _grads(net: Any) -> list[torch.Tensor]:
    return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in net.parameters()]


def _zero(net: Any) -> None:
    for p in net.parameters():
        p.grad = None


# -- shards ----------------------------------------------------------------------------------

@pytest.mark.parametrize("world", [1, 2, 3, 5, 40])
@pytest.mark.parametrize("paths", [["SCFC"], ["SC2FC"], ["self"], ["f0->f1", "f3->f1", "f2->f0"]])
def test_shards_cover_every_path_once_in_decoder_order(world: int, paths: list[str]) -> None:
    _, _, plan = _setup(paths=paths, groups=["FC", "FC", "SC", "SC"])
    shards = [Shard.build(plan, r, world) for r in range(world)]
    ids = [int(k) for s in shards for k in s.path_ids]
    assert sorted(ids) == list(range(plan.n_paths))
    keys = [(plan.paths[k].target, plan.paths[k].source) for k in ids]
    assert keys == sorted(keys)  # contiguous runs of the decoder-major order
    sizes = [s.n_paths for s in shards]
    assert max(sizes) - min(sizes) <= 1 or max(sizes) <= 1
    for s in shards:
        assert torch.equal(s.enc_count, torch.bincount(s.enc_rows, minlength=plan.n_flavors).float())
        for seg in s.segments:
            group = sorted(p.source for p in plan.paths if p.target == seg.decoder)
            assert seg.group_size == len(group)
            assert list(seg.sources) == group[seg.offset:seg.offset + len(seg.sources)]
    graded = [i for s in shards for i in s.latentsim]
    assert graded == list(plan.encoders[1:])


def test_shards_balance_by_output_width() -> None:
    _, _, plan = _setup(sizes=[10, 10, 10, 70])
    a, b = (Shard.build(plan, r, 2, widths=[10, 10, 10, 70]) for r in range(2))
    cost = [sum([10, 10, 10, 70][int(j)] for j in s.dec_rows) for s in (a, b)]
    assert abs(cost[0] - cost[1]) <= 70


def test_bad_rank() -> None:
    _, _, plan = _setup()
    with pytest.raises(ValueError):
        Shard.build(plan, 2, 2)


# -- masks -----------------------------------------------------------------------------------

def test_seeds_do_not_depend_on_how_many_are_drawn() -> None:
    assert derive_seeds(5, STREAM_BATCH, 3, 7, 8)[:3] == derive_seeds(5, STREAM_BATCH, 3, 7, 3)
    assert derive_seeds(5, STREAM_BATCH, 3, 7, 1)[0] == derive_seed(5, STREAM_BATCH, 3, 7)
    assert len(set(derive_seeds(5, STREAM_BATCH, 3, 7, 30))) == 30


def test_rows_of_a_block_are_the_rows_of_the_whole_block() -> None:
    like = torch.zeros(())
    whole = keep_mask((6, 4, 3), 0.5, torch.Generator().manual_seed(9), like)
    part = keep_mask((2, 4, 3), 0.5, torch.Generator().manual_seed(9), like, rows=(6, 3))
    assert torch.equal(part, whole[3:5])
    assert set(whole.unique().tolist()) <= {0.0, 2.0}


# -- the objective, shard by shard -----------------------------------------------------------

@pytest.mark.parametrize("kind", ["packed", "module"])
@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("paths", [["SCFC"], ["SC2FC", "f3->f0"]])
def test_shard_objectives_and_gradients_add_up_to_one_process(kind: str, world: int, paths: list[str]) -> None:
    hidden = [7] if kind == "module" else None
    model, batch, plan = _setup(paths=paths, hidden=hidden, groups=["FC", "FC", "SC", "SC"])
    gen = torch.Generator()
    full = _net(kind, model, plan, Shard.build(plan))
    total, per_path = batch_objective(full, batch, plan, RECIPE, Masks(gen, 0, STREAM_BATCH, 2, 1, 4))
    total.backward()
    ref = _grads(full)
    parts, per_parts, grads = [], torch.zeros(plan.n_paths), None
    for r in range(world):
        _zero(full)
        net = _net(kind, model, plan, Shard.build(plan, r, world))
        t, pp = batch_objective(net, batch, plan, RECIPE, Masks(gen, 0, STREAM_BATCH, 2, 1, 4))
        t.backward()
        parts.append(t.detach())
        per_parts += pp
        g = _grads(net)
        grads = g if grads is None else [a + b for a, b in zip(grads, g)]
    assert torch.allclose(sum(parts), total.detach(), rtol=1e-5)
    assert torch.allclose(per_parts, per_path, rtol=1e-5)  # each path from exactly one shard
    assert grads is not None
    for a, b in zip(grads, ref):  # partial sums add in another order: compare to the tensor's scale
        assert (a - b).abs().max() <= 1e-5 * b.abs().max()


@pytest.mark.parametrize("kind", ["packed", "module"])
def test_latentsim_shards_add_up_and_leave_the_anchor_alone(kind: str) -> None:
    model, batch, plan = _setup(hidden=[7] if kind == "module" else None)
    gen = torch.Generator()
    full = _net(kind, model, plan, Shard.build(plan))
    obj = latentsim_objective(full, batch, plan, 100.0, Masks(gen, 0, STREAM_LATENTSIM, 4, 0, 4))
    assert obj is not None
    obj.backward()
    ref = _grads(full)
    if kind == "module":  # the anchor encoder (flavor 0) is not run with gradient
        assert all(p.grad is None for p in model.encoder_list[0].parameters())
    _zero(full)
    total = None
    for r in range(3):
        net = _net(kind, model, plan, Shard.build(plan, r, 3))
        o = latentsim_objective(net, batch, plan, 100.0, Masks(gen, 0, STREAM_LATENTSIM, 4, 0, 4))
        if o is not None:
            o.backward()
        g = _grads(net)
        total = g if total is None else [a + b for a, b in zip(total, g)]
        _zero(net)
    assert total is not None
    for a, b in zip(total, ref):  # each encoder's term lives in one shard: sums are exact
        assert torch.equal(a, b)


def test_shard_without_latentsim_terms() -> None:
    model, batch, plan = _setup(n=2)
    shards = [Shard.build(plan, r, 2) for r in range(2)]
    assert sorted(s.latentsim for s in shards) == [(), (1,)]  # one term: one shard holds it
    idle = next(s for s in shards if not s.latentsim)
    assert latentsim_objective(PackedNet(model, plan, idle), batch, plan, 1.0, None) is None


# -- trainers in lockstep through an in-memory process group ---------------------------------

class _Group:
    def __init__(self, world: int) -> None:
        self.world = world
        self.barrier = threading.Barrier(world, timeout=60)
        self.slots: list[Any] = [None] * world


class ThreadComm(Communicator):
    """A Communicator whose collectives run between threads of this process."""

    def __init__(self, rank: int, group: _Group) -> None:
        super().__init__(DistributedSpec(rank, group.world), CPU, None, None)
        self.g = group

    def _all_reduce(self, t: torch.Tensor, what: str) -> None:
        self.g.slots[self.rank] = t.clone()
        self.g.barrier.wait()
        total = self.g.slots[0].clone()
        for s in self.g.slots[1:]:
            total += s
        self.g.barrier.wait()
        t.copy_(total)

    def _broadcast(self, t: torch.Tensor) -> None:
        if self.rank == 0:
            self.g.slots[0] = t.clone()
        self.g.barrier.wait()
        if self.rank != 0:
            t.copy_(self.g.slots[0])
        self.g.barrier.wait()

    def wait_for_main(self) -> None:
        self.g.barrier.wait()


def _in_threads(world: int, fn: Any) -> list[Any]:
    group = _Group(world)
    out: list[Any] = [None] * world
    errors: list[BaseException] = []

    def run(r: int) -> None:
        try:
            out[r] = fn(ThreadComm(r, group))
        except BaseException as exc:
            errors.append(exc)
            group.barrier.abort()

    threads = [threading.Thread(target=run, args=(r,)) for r in range(world)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return out


def _train(comm: Communicator | None, start: tuple[Krakencoder, Batch, PathPlan],
           epochs: int = 4) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    model, batch, plan = copy.deepcopy(start)  # each process has its own copy (threads share the RNG)
    t = FastTrainer(model, batch, plan, RECIPE, seed=3, batch_size=8, lr=1e-3, weight_decay=0.01,
                    dropout_at=lambda e: 0.5, comm=comm)
    losses = torch.stack([t.run_epoch(e) for e in range(epochs)])
    return {k: v.clone() for k, v in t.sync_model().state_dict().items()}, losses


@pytest.mark.parametrize("kind", ["packed", "module"])
def test_two_lockstep_trainers_match_one_trainer(kind: str) -> None:
    # a latent wider than 5: with 5 units, dropout often leaves a subject's latent one unit, whose
    # gradient through the normalisation is 0 in theory and rounding noise in practice, and
    # Adam's first step turns noise of either sign into a full step
    start = _setup(hidden=[12] if kind == "module" else None, latent=16, paths=["SCFC"])
    ref, ref_loss = _train(None, start)
    (a, loss_a), (b, loss_b) = _in_threads(2, lambda c: _train(c, start))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the replicas never drift apart
    assert torch.equal(loss_a, loss_b)
    for k in ref:
        rel = ((a[k] - ref[k]).abs().max() / ref[k].abs().max()).item()
        assert rel <= 1e-5, (k, rel)
    assert torch.allclose(loss_a, ref_loss, rtol=1e-5)


def test_setup_travels_from_rank_0() -> None:
    header = {"status": "ok", "x": [1, 2]}
    tensors = [torch.arange(6.0).reshape(2, 3), torch.tensor([7], dtype=torch.int64), torch.ones(4)]

    def run(c: Communicator) -> Any:
        if c.rank == 0:
            c.send(header, tensors)
            return None
        return c.receive()

    _, (h, ts) = _in_threads(2, run)
    assert h == header
    assert all(torch.equal(x, y) and x.dtype == y.dtype for x, y in zip(ts, tensors))


def test_a_failed_rank_0_stops_the_others() -> None:
    from kraken_cli.engine.training.distributed import follow

    def run(c: Communicator) -> Any:
        if c.rank == 0:
            c.abort_setup(ValueError("bad input"))
            return None
        follow(c)

    with pytest.raises(TrainingError, match="rank 0 could not start the run.*bad input"):
        _in_threads(2, run)


# -- options ---------------------------------------------------------------------------------

def test_spec_validation_and_devices() -> None:
    with pytest.raises(TrainingError):
        DistributedSpec(rank=2, world_size=2)
    with pytest.raises(TrainingError):
        DistributedSpec(rank=0, world_size=2, timeout=0)
    assert resolve_rank_device("cpu", 3) == CPU
    if not torch.cuda.is_available():
        assert resolve_rank_device("auto", 1) == CPU
        with pytest.raises(DeviceError):
            resolve_rank_device("cuda", 0)


def test_sync_epochs_are_display_and_checkpoint_epochs() -> None:
    from kraken_cli.engine.training import TrainConfig

    cfg = TrainConfig(epochs=10, display_every=4, checkpoint_every=3)
    sched = EpochSchedule.of(cfg)
    assert [e for e in range(10) if sched.syncs(e + 1)] == [2, 3, 5, 7, 8, 9]
    assert [d for d in range(1, 11) if sched.shows(d)] == [4, 8, 10]
    assert [d for d in range(1, 11) if sched.checkpoints(d)] == [3, 6, 9, 10]


def test_cli_reads_torchrun_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from kraken_cli.cli.train import _torchrun_spec

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert _torchrun_spec() is None
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert _torchrun_spec() is None
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setenv("KRAKEN_DIST_TIMEOUT", "15")
    assert _torchrun_spec() == DistributedSpec(rank=3, world_size=4, local_rank=1, timeout=15.0)


def test_a_fine_tuned_run_resumes(tmp_path: Any) -> None:
    """``--resume`` of a run started with ``--start-from`` (its checkpoints carry both)."""
    from kraken_cli.engine.datasets import make_cohort
    from kraken_cli.engine.training import TrainConfig, train

    c = make_cohort(40, n_regions=8, seed=0, flavors=["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"])
    kw: dict[str, Any] = dict(transformation="pca4", latent_size=4, batch_size=8, display_every=0,
                              checkpoint_every=1)
    base = train(c.data, TrainConfig(epochs=1, output=str(tmp_path / "a" / "k"), **kw), subjects=c.subjects,
                 figures=False)
    tuned = train(c.data, TrainConfig(epochs=2, output=str(tmp_path / "b" / "k"), start_from=str(base.checkpoints[-1]),
                                      **kw), subjects=c.subjects, figures=False)
    resumed = train(c.data, TrainConfig(epochs=3, output=str(tmp_path / "c" / "k"), resume=str(tuned.checkpoints[0]),
                                        **kw), subjects=c.subjects, figures=False)
    assert resumed.completed_epochs == 3
    assert resumed.record["starting_point_file"] == str(base.checkpoints[-1])
