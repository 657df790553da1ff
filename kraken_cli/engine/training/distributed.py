"""Training one model across processes, GPUs and machines with ``torchrun`` (PyTorch distributed).

Launch::

    torchrun --nproc_per_node=2 -m kraken_cli train -i ... -o runs/demo           # one machine
    torchrun --nnodes=2 --nproc_per_node=4 --rdzv-backend=c10d \\
             --rdzv-endpoint=HOST:29500 -m kraken_cli train -i ... -o runs/demo    # on every machine

The CLI reads ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` (and ``KRAKEN_DIST_TIMEOUT``) and passes
them down as a :class:`DistributedSpec`; nothing in the engine reads the environment. Each
process uses ``cuda:LOCAL_RANK`` on GPUs (backend ``nccl``) or the CPU (backend ``gloo``).

Why the paths are split, not the subjects
-----------------------------------------
The paper's losses are batch-global: ``correye`` and ``enceye`` compare every subject of a batch
with every other (correlation matrices), ``neidist`` and ``encdist`` use all pairwise distances.
Plain data parallelism (each process a slice of the batch's subjects, gradients averaged)
would replace each B x B matrix by smaller blocks and change the objective. Gathering the
slices' predictions to rebuild the full matrices would work, but every prediction
(paths x subjects x features, the bulk of the computation) would then travel between processes
at every step.

The objective of a batch, however, is a *sum over paths*: each path's output loss on the full
batch, plus its encoder's latent loss. kraken therefore splits the paths: each process encodes
every flavor for the whole batch (cheap: one encoder per flavor), decodes only its share of the
paths (the expensive part: paths x subjects x features), and computes their losses on the full
batch. The objectives of the processes add up to the single-process objective, so their
gradients are summed (``all_reduce`` with ``SUM``, one flat buffer per step) and every process
takes the same AdamW step on its full copy of the weights. The once-per-epoch latent-similarity
term is split the same way, by encoder (``sum_i sum_{j<i} MSE(z_i, sg(zhat_j))`` is a sum over
the encoders ``i`` that receive gradient). See :class:`._common.Shard` for the split: paths
ordered decoder by decoder, cut into contiguous runs of equal cost.

The gradients are summed with ``torch.distributed.all_reduce`` rather than through the
``DistributedDataParallel`` wrapper: DDP assumes every process runs the same forward graph on
other data and *averages* the gradients; here the processes run different parts of one
objective (a split of the model's work, not of the data), whose gradients must be *summed*, and
a process leaves the decoders of other processes' paths untouched.

On CPUs, run one process per core: torchrun sets ``OMP_NUM_THREADS=1`` for each process.

Exactness
---------
* Batches: the order of subjects comes from (seed, epoch) only, identical in every process.
* Dropout: masks come in blocks with their own seeds from (seed, stream, epoch, batch, block)
  (:class:`._common.Masks`): one block per encoder and one per decoder (every path into it). A
  process draws the whole block of each decoder it uses and keeps its rows, so it applies exactly
  the masks one process applies, whatever the number of processes.
* Gradients: a parameter has a gradient when any process gives it one (flags travel with the
  summed gradients), so AdamW's skip of ``None`` gradients and its weight decay behave as in one
  process. The only difference left is the order of floating-point additions of partial
  gradients: after 20 epochs the weights match one process to about 1e-7 relative (the tests
  require 1e-4). Adam can turn rounding noise into a full step where a gradient is zero in
  theory (e.g. a latent of very few units, all but one dropped out for a subject), so tiny toy
  models may differ more.
* The processes hold identical weights at every step (each applies the same summed gradient).
* The per-path training losses are summed across processes once per epoch for the record.

Roles and files
---------------
Rank 0 does everything a single process does: reads the inputs, fits the transforms, builds or
resumes the model, writes the split and transform files, the records, the figures and the
checkpoints, and logs. It then sends the other ranks what they need and nothing more: the
options, the architecture and weights, the optimizer state of a resumed run, and the
transformed training inputs (the other ranks never read the input files, so machines other
than rank 0's need no copy of the data). Checkpoints are ordinary checkpoints (the weights and
optimizer state are the same in every process), so ``kraken run``, ``describe``, ``merge`` and
``--resume`` work on them, and a run may be resumed with any number of processes.

Failures
--------
Training collectives have a timeout (:attr:`DistributedSpec.timeout`, default 60 s;
``KRAKEN_DIST_TIMEOUT`` on the command line). Waiting for rank 0's own work (loading and
fitting before the first epoch, metrics and checkpoints at display epochs) runs on a separate
``gloo`` group with a long timeout. When a process dies, ``torchrun``'s agent stops the
others on its machine, and ``gloo`` peers see the closed connection at once; the survivors stop
with a :class:`~kraken_cli.engine.errors.TrainingError` that names the last checkpoint, from
which ``--resume`` continues (with the same or another number of processes).

``--path-steps`` (the original's sequential schedule, one step per path) cannot be split and
is refused under ``torchrun``. Randomness on GPUs depends on the device model, so use the same
GPU model in every process for runs that must reproduce one another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import torch

from ..errors import DeviceError, TrainingError

log = logging.getLogger(__name__)

__all__ = ["Communicator", "DistributedSpec", "follow", "start"]


@dataclass(frozen=True, slots=True)
class DistributedSpec:
    """Where this process sits in a ``torchrun`` job (the CLI fills it from the environment).

    Attributes
    ----------
    rank, world_size, local_rank : int
        ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` of torchrun.
    timeout : float
        Seconds a training collective may wait for a missing process before the run fails.
    wait_timeout : float
        Seconds the other ranks may wait for rank 0's own work (loading, transform fitting,
        metrics, checkpoints).
    backend : str, optional
        ``nccl`` or ``gloo``; default ``nccl`` on CUDA devices, ``gloo`` on the CPU.
    """

    rank: int
    world_size: int
    local_rank: int = 0
    timeout: float = 60.0
    wait_timeout: float = 7200.0
    backend: str | None = None

    def __post_init__(self) -> None:
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise TrainingError(f"rank {self.rank} does not fit a world of {self.world_size} processes",
                                hint="launch distributed training with torchrun")
        if self.local_rank < 0:
            raise TrainingError(f"local rank must be >= 0, got {self.local_rank}")
        if self.timeout <= 0 or self.wait_timeout <= 0:
            raise TrainingError("distributed timeouts must be > 0 seconds")


def _lost(exc: BaseException, what: str, last_checkpoint: str | None) -> TrainingError:
    detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    resume = f"kraken train --resume {last_checkpoint}" if last_checkpoint else "kraken train --resume LAST_CHECKPOINT"
    return TrainingError(f"lost contact with another training process while {what} ({detail})",
                         hint=f"another process failed or was stopped (see its message); continue with {resume} "
                              "and the same inputs, with any number of processes")


class Communicator:
    """This process's link to the others of a distributed run (process groups and collectives).

    Create it with :func:`start`. ``comm.device`` is the device of this process.
    """

    def __init__(self, spec: DistributedSpec, device: torch.device, group: Any, wait_group: Any) -> None:
        self.spec = spec
        self.rank = spec.rank
        self.world_size = spec.world_size
        self.device = device
        self.group = group
        self.wait_group = wait_group
        self.setup_sent = False
        self.last_checkpoint: str | None = None  # named in the hint when a process is lost (rank 0)
        self._present: dict[str, tuple[tuple[bool, ...], list[bool]]] = {}

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    # -- collectives of the training steps ---------------------------------------------------------
    def _all_reduce(self, t: torch.Tensor, what: str) -> None:
        import torch.distributed as dist

        try:
            dist.all_reduce(t, op=dist.ReduceOp.SUM, group=self.group)
        except RuntimeError as exc:  # DistBackendError and friends
            raise _lost(exc, what, self.last_checkpoint) from exc

    def sum_(self, t: torch.Tensor) -> torch.Tensor:
        """Sum ``t`` over the processes, in place."""
        self._all_reduce(t, "summing losses")
        return t

    def reduce_gradients(self, params: Sequence[torch.Tensor], kind: str) -> bool:
        """Sum every parameter's gradient over the processes (missing ones count as 0).

        A parameter keeps a gradient when any process gave it one, else ``None``, exactly as a
        single process computing the whole objective would leave it. Returns whether any
        parameter has a gradient (whether to step). One flat buffer travels: the gradients and
        one presence flag per parameter. Which parameters have a gradient is fixed per ``kind``
        of objective, so on a GPU the flags are read back (a host synchronisation) only the
        first time, or when this process's own pattern changes.
        """
        local = tuple(p.grad is not None for p in params)
        sizes = [p.numel() for p in params]
        total = sum(sizes)
        like = params[0]
        buf = torch.zeros(total + len(params), dtype=like.dtype, device=like.device)
        off = 0
        for p, n in zip(params, sizes):
            if p.grad is not None:
                buf[off:off + n].copy_(p.grad.reshape(-1))
            off += n
        flags = buf[total:]
        for k, has in enumerate(local):
            if has:
                flags[k] = 1.0
        self._all_reduce(buf, "summing gradients")
        known = self._present.get(kind)
        if known is None or known[0] != local or buf.device.type == "cpu":
            present = [v > 0 for v in flags.tolist()]
            self._present[kind] = (local, present)
        else:
            present = known[1]
        off = 0
        for p, n, has in zip(params, sizes, present):
            p.grad = buf[off:off + n].view_as(p) if has else None
            off += n
        return any(present)

    # -- waiting for rank 0 -----------------------------------------------------------------------
    def wait_for_main(self) -> None:
        """Block until every process gets here (rank 0 arrives after its metrics and checkpoints)."""
        import torch.distributed as dist

        try:
            dist.barrier(group=self.wait_group)
        except RuntimeError as exc:
            raise _lost(exc, "waiting for rank 0", self.last_checkpoint) from exc

    # -- the run's setup, from rank 0 to the others ----------------------------------------------
    def _broadcast(self, t: torch.Tensor) -> None:
        import torch.distributed as dist

        try:
            dist.broadcast(t, src=0, group=self.wait_group)
        except RuntimeError as exc:
            raise _lost(exc, "starting the run", self.last_checkpoint) from exc

    def send(self, header: dict[str, Any], tensors: Sequence[torch.Tensor]) -> None:
        """Rank 0: send a JSON header and tensors (described in the header) to the other ranks."""
        specs: list[tuple[str, list[int]]] = [(str(t.dtype).removeprefix("torch."), list(t.shape)) for t in tensors]
        raw = json.dumps({**header, "_tensors": specs}).encode()
        self._broadcast(torch.tensor([len(raw)], dtype=torch.int64))
        self._broadcast(torch.frombuffer(bytearray(raw), dtype=torch.uint8))
        for dtype in sorted({s[0] for s in specs}):
            flat = [t.detach().to("cpu").reshape(-1) for t, s in zip(tensors, specs) if s[0] == dtype]
            self._broadcast(torch.cat(flat) if flat else torch.zeros(0, dtype=getattr(torch, dtype)))
        self.setup_sent = True

    def receive(self) -> tuple[dict[str, Any], list[torch.Tensor]]:
        """Other ranks: the header and tensors rank 0 sent (tensors on the CPU)."""
        n = torch.zeros(1, dtype=torch.int64)
        self._broadcast(n)
        raw = torch.zeros(int(n.item()), dtype=torch.uint8)
        self._broadcast(raw)
        header = json.loads(raw.numpy().tobytes().decode())
        specs = header.pop("_tensors")
        out: list[torch.Tensor | None] = [None] * len(specs)
        for dtype in sorted({s[0] for s in specs}):
            idx = [k for k, s in enumerate(specs) if s[0] == dtype]
            sizes = [int(torch.Size(specs[k][1]).numel()) for k in idx]
            flat = torch.zeros(sum(sizes), dtype=getattr(torch, dtype))
            self._broadcast(flat)
            for k, part in zip(idx, flat.split(sizes)):
                out[k] = part.reshape(specs[k][1])
        return header, [t for t in out if t is not None]

    def abort_setup(self, exc: BaseException) -> None:
        """Rank 0, failing before the setup went out: tell the others, so they stop at once."""
        if self.setup_sent or not self.is_main:
            return
        self.setup_sent = True  # once, even if sending fails
        try:
            self.send({"status": "error", "message": f"{type(exc).__name__}: {exc}"}, [])
        except Exception:
            log.debug("could not tell the other processes that rank 0 failed", exc_info=True)

    def close(self) -> None:
        """Leave the process groups (after a successful run)."""
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def resolve_rank_device(device: str, local_rank: int) -> torch.device:
    """The device of one process: ``cuda:LOCAL_RANK`` for ``cuda`` (and ``auto`` with CUDA), else the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError("--device cuda was asked for but no CUDA device is available",
                              hint="use --device cpu (or auto)")
        n = torch.cuda.device_count()
        if local_rank >= n:
            raise DeviceError(f"process with local rank {local_rank} has no GPU: this machine has {n}",
                              hint=f"use torchrun --nproc_per_node={n} (or fewer)")
        return torch.device("cuda", local_rank)
    if device != "cpu":
        raise DeviceError(f"unknown device {device!r}", hint="use --device auto, cpu or cuda")
    return torch.device("cpu")


def start(spec: DistributedSpec, device: str = "auto") -> Communicator:
    """Join the torchrun job: pick this process's device and create the process groups.

    Uses ``init_method="env://"`` (torchrun's rendezvous), backend ``nccl`` on CUDA and
    ``gloo`` on the CPU, with ``spec.timeout`` for training collectives, plus a ``gloo`` group
    with ``spec.wait_timeout`` for the setup and for waiting on rank 0.

    Raises
    ------
    DeviceError
        When the device cannot be used.
    TrainingError
        When the process group cannot be created.
    """
    import torch.distributed as dist

    dev = resolve_rank_device(device, spec.local_rank)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
    backend = spec.backend or ("nccl" if dev.type == "cuda" else "gloo")
    try:
        if not dist.is_initialized():
            dist.init_process_group(backend=backend, init_method="env://", rank=spec.rank,
                                    world_size=spec.world_size, timeout=timedelta(seconds=spec.timeout))
        wait_group = dist.new_group(backend="gloo", timeout=timedelta(seconds=spec.wait_timeout))
    except (RuntimeError, ValueError) as exc:
        raise TrainingError(f"could not join the distributed run (rank {spec.rank} of {spec.world_size}, "
                            f"backend {backend}): {exc}",
                            hint="launch with torchrun; on CPU-only machines use --device cpu") from exc
    log.info("rank %d of %d on %s (%s)", spec.rank, spec.world_size, dev, backend)
    return Communicator(spec, dev, dist.group.WORLD, wait_group)


# --------------------------------------------------------------------------- the run's setup

def send_setup(comm: Communicator, trainer: Any, *, config: Any, start_epoch: int, effective_lr: float,
               flavors: Sequence[str]) -> None:
    """Rank 0: send the other ranks everything their trainer needs (see the module docstring)."""
    model = trainer.model
    if trainer.packed:
        trainer.sync_model()
    state = model.state_dict()
    opt = trainer.optimizer.state_dict()
    moments = [t for name in ("exp_avg", "exp_avg_sq") for t in opt[name] if t is not None]
    targets = trainer.targets
    header = {
        "status": "ok", "config": config.to_dict(), "model": asdict(model.config), "flavors": list(flavors),
        "paths": [[p.source, p.target] for p in trainer.plan.paths], "start_epoch": int(start_epoch),
        "effective_lr": float(effective_lr), "state_keys": list(state), "n_inputs": len(trainer.data.xs),
        "targets": None if targets is None else {"strict": bool(targets.strict),
                                                 "mse_weight": float(targets.mse_weight)},
        "opt_steps": list(opt["steps"]),
        "opt_present": [[m is not None for m in opt[name]] for name in ("exp_avg", "exp_avg_sq")],
    }
    tensors = [*state.values(), *trainer.data.xs, *([] if targets is None else [targets.z]), *moments]
    comm.send(header, tensors)


def follow(comm: Communicator, *, threads: int | None = None) -> None:
    """Ranks other than 0: receive the run from rank 0 and train their share of it to the end.

    ``threads``: CPU threads while training (default as :func:`~.loop.train` chooses them). The
    trainer and the epochs at which to wait for rank 0 come from :mod:`.schedule`, as on rank 0.

    Raises
    ------
    TrainingError
        When rank 0 failed before training, or a process is lost during training.
    """
    from .config import TrainConfig
    from .schedule import EpochSchedule, make_trainer, thread_choice, training_threads

    header, tensors = comm.receive()
    if header.get("status") != "ok":
        raise TrainingError(f"rank 0 could not start the run ({header.get('message', 'no reason given')})",
                            hint="see rank 0's message")
    cfg = TrainConfig.from_dict(header["config"])
    it = iter(tensors)
    model, data, plan, targets = _received_run(header, it, comm.device)
    trainer = make_trainer(model, data, plan, cfg, lr=header["effective_lr"], targets=targets, comm=comm)
    _load_optimizer(trainer.optimizer, header, it)
    width = max(x.shape[1] for x in data.xs)
    sched = EpochSchedule.of(cfg)
    with training_threads(thread_choice(threads, plan.n_paths, cfg.batch_size, width, comm.device).threads):
        for e in range(int(header["start_epoch"]), cfg.epochs):
            trainer.run_epoch(e)
            if sched.syncs(e + 1):
                comm.wait_for_main()


def _received_run(header: dict[str, Any], it: Iterator[torch.Tensor], dev: torch.device) -> tuple[Any, ...]:
    """Model, data, path plan and targets as rank 0 sent them (:func:`send_setup`)."""
    from ..model import Krakencoder, ModelConfig
    from ._common import Batch, PathPlan, Targets
    from .paths import TrainPath

    with torch.random.fork_rng(devices=[]):  # the initial weights are replaced below
        model = Krakencoder(ModelConfig(**header["model"]))
    model.load_state_dict({k: next(it) for k in header["state_keys"]})
    model = model.to(dev)
    xs = [next(it).to(dev) for _ in range(header["n_inputs"])]
    t = header["targets"]
    targets = None if t is None else Targets(next(it).to(dev), strict=t["strict"], mse_weight=t["mse_weight"])
    paths = [TrainPath(int(i), int(j)) for i, j in header["paths"]]
    plan = PathPlan.build(paths, len(header["flavors"]), dev)
    data = Batch.of(xs, stack=len({x.shape[1] for x in xs}) == 1)
    return model, data, plan, targets


def _load_optimizer(optimizer: Any, header: dict[str, Any], it: Iterator[torch.Tensor]) -> None:
    present = header["opt_present"]
    if any(any(v) for v in present):
        moments = {name: [next(it) if has else None for has in present[k]]
                   for k, name in enumerate(("exp_avg", "exp_avg_sq"))}
        optimizer.load_state_dict({"steps": header["opt_steps"], **moments})
    else:
        optimizer.steps = [int(s) for s in header["opt_steps"]]
