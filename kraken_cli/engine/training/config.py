"""The options of one training run (``kraken train``), as a frozen dataclass.

Defaults are the paper's recipe (UPSTREAM 6.4): latent 128 with unit norm, dropout 0.5, the
loss ``correye+enceye.w10+neidist+encdist.w10+mse.w1000+latentsimloss.w10000``, AdamW with
learning rate 1e-4 and weight decay 0.01, batch 41, 2000 epochs, seed 0, PCA-256 inputs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from ..errors import SpecError
from ..recipe import PAPER_RECIPE, LossRecipe, parse_recipe


@dataclass(frozen=True, slots=True)
class TrainConfig:
    """Every option of ``kraken train`` (DESIGN 3) with the paper's defaults.

    Attributes
    ----------
    paths : tuple of str
        Path sets (``SCFC``/``all``, ``SC``, ``FC``, ``SC2FC``, ``FC2SC``, ``self``) or explicit
        ``A->B`` paths; several entries are united into one model (see :mod:`.paths`).
    transformation : str
        Input transform fitted on the training subjects (``pcaN``, ``tsvdN``, ``cfeat``, ...);
        ignored for flavors whose transform is given precomputed.
    transform_files : tuple of str
        Precomputed ``*_ioxfm_*`` files (recorded; the caller loads them).
    latent_size, latent_unit, hidden, leaky_relu, dropout
        Architecture: latent dimension, L2-normalised latent, hidden layer sizes, LeakyReLU
        slope (0 = ReLU), dropout rate.
    dropout_schedule : tuple of float, optional
        Dropout values spread linearly over the epochs (e.g. ``(0.5, 0.0)``); overrides ``dropout``.
    loss : str
        The loss recipe (:func:`~kraken_cli.engine.recipe.parse_recipe`); it means exactly what it says.
    epochs, batch_size : int
        Total epochs (a resumed run continues up to this count) and training batch size
        (incomplete last batches are dropped, as in the original).
    lr, weight_decay : float
        AdamW learning rate and decoupled weight decay of the original's per-path schedule.
    fast_lr : float, optional
        Learning rate of the fast trainer (one step per batch for all paths). Default: ``lr``
        times the number of AdamW steps the busiest parameter gets per batch in the original
        schedule (the number of trained paths sharing one encoder or decoder), so training
        progresses per epoch as the original does.
    seed : int
        Seed of initial weights, batch order, dropout masks and random splits.
    split_file : str, optional
        Subject split file (recorded; the caller reads it). Otherwise ``trainval_frac`` and
        ``val_frac`` give the original's seed-0 random split.
    checkpoint_every, display_every : int
        Cadences in completed epochs (0 = only at the end). The final epoch always displays
        and checkpoints.
    output : str, optional
        Folder and file-name prefix of everything written; None writes nothing.
    target_encoding, target_name, only_self, strict, target_mse_weight
        Target-encoding training (UPSTREAM 8.1): the latent file, which latent inside it, train
        only ``A->A`` paths, the fixed-target mode, and the weight of ``MSE(z, z_target)``
        (the original's ``--mseweight``, default 1).
    path_steps : bool
        Use the original's schedule: one AdamW step per path per batch (legacy mode).
    resume : str, optional
        Continue a run from its checkpoint (weights, optimizer, history), bit-exactly.
    start_from : str, optional
        Fine-tune: architecture and weights from this checkpoint, a fresh optimizer.
    """

    paths: tuple[str, ...] = ("SCFC",)
    transformation: str = "pca256"
    transform_files: tuple[str, ...] = ()
    latent_size: int = 128
    latent_unit: bool = True
    hidden: tuple[int, ...] = ()
    leaky_relu: float = 0.0
    dropout: float = 0.5
    dropout_schedule: tuple[float, ...] | None = None
    loss: str = PAPER_RECIPE
    epochs: int = 2000
    batch_size: int = 41
    lr: float = 1e-4
    weight_decay: float = 0.01
    fast_lr: float | None = None
    seed: int = 0
    split_file: str | None = None
    trainval_frac: float = 0.8
    val_frac: float = 0.1
    checkpoint_every: int = 1000
    display_every: int = 100
    output: str | None = None
    target_encoding: str | None = None
    target_name: str | None = None
    only_self: bool = False
    strict: bool = False
    target_mse_weight: float = 1.0
    path_steps: bool = False
    resume: str | None = None
    start_from: str | None = None
    _recipe: LossRecipe | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "paths", tuple(self.paths))
        object.__setattr__(self, "hidden", tuple(int(h) for h in self.hidden))
        object.__setattr__(self, "transform_files", tuple(self.transform_files))
        if self.dropout_schedule is not None:
            object.__setattr__(self, "dropout_schedule", tuple(float(d) for d in self.dropout_schedule))
        self._validate()
        object.__setattr__(self, "_recipe", parse_recipe(self.loss))

    @property
    def recipe(self) -> LossRecipe:
        """The parsed loss recipe."""
        assert self._recipe is not None
        return self._recipe

    @property
    def target_mode(self) -> str | None:
        """``"loose"``, ``"strict"`` or None (no target encoding)."""
        if self.target_encoding is None:
            return None
        return "strict" if self.strict else "loose"

    def dropout_at(self, epoch: int) -> float:
        """Dropout rate of 0-based ``epoch`` (linear interpolation of the schedule)."""
        sched = self.dropout_schedule
        if not sched:
            return self.dropout
        if len(sched) == 1 or self.epochs <= 1:
            return float(sched[0])
        import numpy as np

        xp = np.linspace(0, self.epochs - 1, len(sched))
        return float(np.interp(epoch, xp, sched))

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some options changed (validated again)."""
        return replace(self, _recipe=None, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain-type dict of every option (stored in checkpoints under ``kraken_train_config``)."""
        d = asdict(self)
        d.pop("_recipe", None)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = list(v)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (unknown keys are ignored)."""
        names = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        kw: dict[str, Any] = {k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items() if k in names}
        return cls(**kw)

    def _validate(self) -> None:
        def bad(msg: str, hint: str | None = None) -> SpecError:
            return SpecError(msg, hint=hint)

        if not self.paths:
            raise bad("no training paths given", "use --paths SCFC, or A->B for explicit paths")
        from ..transforms import make_transform
        from .paths import check_path_specs

        check_path_specs(self.paths)
        make_transform(self.transformation)  # an unknown --transformation fails here, before any input is read
        if self.latent_size < 1:
            raise bad(f"--latent-size must be >= 1, got {self.latent_size}")
        if any(h < 1 for h in self.hidden):
            raise bad(f"--hidden sizes must be >= 1, got {list(self.hidden)}")
        for name, v in (("--dropout", self.dropout), *(("--dropout-schedule", d) for d in self.dropout_schedule or ())):
            if not 0.0 <= v < 1.0:
                raise bad(f"{name} must be in [0, 1), got {v}")
        if self.leaky_relu < 0 or not math.isfinite(self.leaky_relu):
            raise bad(f"--leaky-relu must be >= 0, got {self.leaky_relu}")
        if self.epochs < 1:
            raise bad(f"--epochs must be >= 1, got {self.epochs}",
                      "to evaluate a checkpoint without training, use kraken run --evaluate")
        if self.batch_size < 2:
            raise bad(f"--batch-size must be >= 2 (the losses compare subjects), got {self.batch_size}")
        rates: tuple[tuple[str, float | None], ...] = (("--lr", self.lr), ("--fast-lr", self.fast_lr))
        for name, rate in rates:
            if rate is not None and (not math.isfinite(rate) or rate <= 0):
                raise bad(f"{name} must be > 0, got {rate}")
        if self.weight_decay < 0 or not math.isfinite(self.weight_decay):
            raise bad(f"--weight-decay must be >= 0, got {self.weight_decay}")
        if not 0 < self.trainval_frac <= 1:
            raise bad(f"--trainval-frac must be in (0, 1], got {self.trainval_frac}")
        if not 0 <= self.val_frac < 1:
            raise bad(f"--val-frac must be in [0, 1), got {self.val_frac}")
        if self.checkpoint_every < 0 or self.display_every < 0:
            raise bad("--checkpoint-every and --display-every must be >= 0")
        if self.target_mse_weight < 0:
            raise bad(f"target MSE weight must be >= 0, got {self.target_mse_weight}")
        if (self.target_name or self.strict) and self.target_encoding is None:
            raise bad("--target-name/--strict need --target-encoding FILE")
        if self.resume and self.start_from:
            raise bad("--resume and --start-from cannot be combined",
                      "--resume continues a run; --start-from fine-tunes a model in a new run")
        if self.strict and self.path_steps:
            raise bad("--strict target encoding is not available with --path-steps")
