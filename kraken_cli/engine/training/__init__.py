"""Training: data splits, path sets, the fast and the legacy trainer, records, resume.

Public API (imported lazily, so ``import kraken_cli.engine.training.record`` stays light)::

    from kraken_cli.engine.training import TrainConfig, train
    result = train({"FCcorr_fs86_hpf": fc, "SCifod2act_fs86_volnorm": sc},
                   TrainConfig(transformation="pca64", latent_size=32, epochs=300),
                   subjects=ids, device="cpu")
    result.model, result.record, result.checkpoints

* :func:`train` (:mod:`.loop`) runs a whole training run; :class:`TrainConfig` (:mod:`.config`)
  holds its options; :class:`TrainResult` and :class:`DisplayEvent` are what it reports.
* :func:`random_split` / :func:`random_split_indices` (:mod:`.splits`): the original's split.
* :func:`resolve_paths` (:mod:`.paths`): path sets such as ``SCFC`` or ``A->B``.
* :func:`read_target_latents` (:mod:`.target`): target encodings for ``--target-encoding``.
* :class:`FastTrainer` (:mod:`.fast`) and :class:`LegacyTrainer` (:mod:`.legacy`, ``--path-steps``).
* :class:`DistributedSpec` (:mod:`.distributed`): one process of a ``torchrun`` job, for
  ``train_from_inputs(..., distributed=...)``; the design of multi-process training is there.
"""

from __future__ import annotations

from .._lazy import lazy_exports

# typed imports are the submodules' (``from .config import TrainConfig``); the package itself
# stays cheap to import (no torch) because the CLI reads TrainConfig's defaults at start-up
_EXPORTS: dict[str, str] = {
    "DisplayEvent": "loop",
    "DistributedSpec": "distributed",
    "FastTrainer": "fast",
    "LegacyTrainer": "legacy",
    "TrainConfig": "config",
    "TrainPath": "paths",
    "TrainRecord": "record",
    "TrainResult": "loop",
    "align_split": "splits",
    "random_split": "splits",
    "random_split_indices": "splits",
    "read_record": "record",
    "read_target_latents": "target",
    "resolve_paths": "paths",
    "train": "loop",
    "train_from_inputs": "session",
    "write_record": "record",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
