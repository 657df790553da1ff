"""What ``kraken train --resume CKPT`` takes from the checkpoint, and what the caller may change.

A kraken checkpoint stores the run's options (``kraken_train_config``) and inputs
(``kraken_inputs``), so ``--resume CKPT`` alone continues the run as it was started. Options given
explicitly override the stored ones, except those that define the model and its data
(:data:`FIXED_ON_RESUME`): changing those is a usage error, since the weights could not follow.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import SpecError, TrainingError
from .config import TrainConfig

#: Options a resumed run takes from the call when the caller does not say which it gave (the Python API).
RESUME_OVERRIDES = ("epochs", "display_every", "checkpoint_every", "output", "resume")

#: Options that define a run's model, data split and trainer; a resumed run keeps them.
FIXED_ON_RESUME = ("paths", "transformation", "transform_files", "latent_size", "latent_unit", "hidden",
                   "leaky_relu", "dropout", "dropout_schedule", "split_file", "trainval_frac", "val_frac",
                   "target_encoding", "target_name", "only_self", "strict", "path_steps")

_OPTION = {"transform_files": "--transform", "latent_unit": "--latent-unit/--no-latent-unit"}


def option_name(field: str) -> str:
    """The ``kraken train`` option of a :class:`TrainConfig` field (``latent_size`` -> ``--latent-size``)."""
    return _OPTION.get(field, "--" + field.replace("_", "-"))


@dataclass(frozen=True)
class ResumedRun:
    """A resumed run's options and inputs, and which stored options the caller changed."""

    config: TrainConfig
    inputs: list[str]
    changed: dict[str, tuple[Any, Any]]  # field -> (stored, now)
    completed_epochs: int


def default_overrides(config: TrainConfig) -> list[str]:
    """What a resumed run takes from ``config`` when the caller does not say: :data:`RESUME_OVERRIDES` that are set."""
    return [f for f in RESUME_OVERRIDES if getattr(config, f) is not None]


def stored_config(raw: dict[str, Any], where: str) -> TrainConfig:
    if "kraken_train_config" not in raw or "kraken_optimizer_state" not in raw:
        raise TrainingError(f"{where} was not written by kraken train, so it cannot be resumed",
                            hint="use --start-from to fine-tune from it instead")
    return TrainConfig.from_dict(dict(raw["kraken_train_config"]))


def resume_config(stored: TrainConfig, config: TrainConfig,
                  given: Collection[str]) -> tuple[TrainConfig, dict[str, tuple[Any, Any]]]:
    """``stored`` with the fields named in ``given`` taken from ``config``; fixed fields may not change."""
    changed: dict[str, tuple[Any, Any]] = {}
    for f in given:
        old, new = getattr(stored, f, None), getattr(config, f)
        if f in FIXED_ON_RESUME and old != new:
            raise SpecError(f"{option_name(f)} cannot change when resuming: the run has {_show(old)}, "
                            f"this call gives {_show(new)}",
                            hint=f"drop {option_name(f)}, or start a new run from these weights with --start-from")
        if f not in ("resume", "start_from", "output") and old != new:
            changed[f] = (old, new)
    merged = stored.replace(start_from=None, resume=config.resume,
                            **{f: getattr(config, f) for f in given if f not in ("resume", "start_from")})
    return merged, changed


def resolve_resume(config: TrainConfig, inputs: Sequence[str], given: Collection[str] | None) -> ResumedRun:
    """The options and inputs of ``config.resume``'s run, with what the caller ``given`` explicitly.

    ``inputs`` empty means the stored ones. Raises before any input is read: a checkpoint that
    cannot be resumed, a changed fixed option, or a run that already holds ``--epochs``.
    """
    from ..checkpoint import load_checkpoint

    assert config.resume is not None
    raw = load_checkpoint(config.resume).raw
    stored = stored_config(raw, config.resume)
    cfg, changed = resume_config(stored, config, default_overrides(config) if given is None else given)
    start = int(raw["kraken_completed_epochs"])
    if cfg.epochs <= start:
        raise TrainingError(f"{config.resume} already holds {start} epochs; --epochs {cfg.epochs} leaves nothing to do",
                            hint=f"give --epochs larger than {start}")
    if not inputs:
        inputs = [str(s) for s in raw.get("kraken_inputs", [])]
        if not inputs:
            raise SpecError(f"{config.resume} does not record its inputs (written by an older kraken)",
                            hint="give the run's inputs again with -i FLAVOR=PATH")
    return ResumedRun(config=cfg, inputs=list(inputs), changed=changed, completed_epochs=start)


def absolute_inputs(inputs: Sequence[str]) -> list[str]:
    """``FLAVOR[@GROUP]=PATH`` specs with absolute paths, as a checkpoint records them for ``--resume``."""
    from ..flavors import FlavorSpec

    out = []
    for text in inputs:
        text = text.strip()
        path = FlavorSpec.parse(text).path
        out.append(text[: len(text) - len(path)] + os.path.abspath(os.path.expanduser(path)))
    return out


def _show(v: Any) -> str:
    if isinstance(v, (tuple, list)):
        return " ".join(str(x) for x in v) or "none"
    return "none" if v is None else str(v)


__all__ = ["FIXED_ON_RESUME", "RESUME_OVERRIDES", "ResumedRun", "absolute_inputs", "default_overrides", "option_name",
           "resolve_resume", "resume_config", "stored_config"]
