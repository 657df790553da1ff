"""File names, checkpoint contents and training-record fields of a training run (UPSTREAM 2.5, 7.6).

Names follow the original: ``<prefix>_<kind>_<suffix>.<ext>`` with the suffix
``{data}_{network}_{train}_{timestamp}``; checkpoints add ``_epNNNNNN`` where NNNNNN counts
*completed* epochs (DESIGN 5), while the ``epoch`` key inside stays 0-based.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io._atomic import atomic_path
from ..model import Krakencoder
from ..naming import RunNames
from .config import TrainConfig

KRAKENCODER_VERSION = "1.0.0 (2024-04-07)"


def kraken_version() -> str:
    from ... import __version__

    return __version__


def output_prefix(output: str | None) -> str | None:
    """``-o`` as a file-name prefix; a folder (existing, or written with a trailing slash) gets ``kraken``."""
    if output is None:
        return None
    if output.endswith(("/", os.sep)) or Path(output).is_dir():
        return str(Path(output) / "kraken")
    return output


def data_string(config: TrainConfig, n_flavors: int, n_subjects: int, xform: str, n_paths: int) -> str:
    """e.g. ``SCFC_5flav_320subj_pc64_25paths``."""
    if config.target_encoding is not None and (config.only_self or config.strict):
        group = "self"
    elif any("->" in p for p in config.paths):
        group = "userpath"
    else:
        group = "+".join(config.paths)
    return f"{group}_{n_flavors}flav_{n_subjects}subj_{xform}_{n_paths}paths"


def train_string(config: TrainConfig) -> str:
    """e.g. ``2000epoch_lr0.0001_correye+...+latentsimloss.w10000_adamw.w0.01``."""
    mode = {"strict": "+fixlatent", "loose": "+targlatent"}.get(config.target_mode or "", "")
    return f"{config.epochs}epoch_lr{config.lr:g}_{config.recipe}{mode}_adamw.w{config.weight_decay:g}"


def make_suffix(data: str, network: str, train: str, timestamp: str | None = None) -> str:
    ts = timestamp or datetime.now().strftime("%Y%m%d_%H%M%S")
    s = f"{data}_{network}_{train}_{ts}"
    if len(s) > 200:  # keep whole file names under 255 characters
        s = f"{data}_{network}_{ts}"
    return s


#: What logs and records say when a run came from Python code rather than the ``kraken`` command.
API_COMMAND = "(Python API: kraken_cli.engine.training; no kraken command line)"


def command_text(command: Sequence[str] | None) -> str:
    """The command line as a shell would take it back (quoted), or :data:`API_COMMAND`."""
    import shlex

    return shlex.join(command) if command else API_COMMAND


def environment_string() -> str:
    return (f"HOME={os.environ.get('HOME', '')}:CWD={os.getcwd()}:PLATFORM={platform.platform()}"
            f":CUDA={torch.cuda.is_available()}")


def training_params(*, config: TrainConfig, model: Krakencoder, flavors: Sequence[str], path_names: Sequence[str],
                    subjects: Sequence[str], train_idx: np.ndarray, val_idx: np.ndarray, names: RunNames,
                    data_str: str, effective_lr: float, command: Sequence[str] | None) -> dict[str, Any]:
    """The ``training_params`` dict of checkpoints (UPSTREAM 2.5) with effective loss weights."""
    recipe = config.recipe
    rec = names.path("trainrecord", "mat")
    xfm = names.files.get("ioxfm")
    cmd = list(command or [])
    return {
        "subjects": np.asarray(list(subjects), dtype=str),
        "subjidx_train": np.asarray(train_idx, dtype=np.int64),
        "subjidx_val": np.asarray(val_idx, dtype=np.int64),
        "numsubjects": len(subjects), "numsubjects_train": int(len(train_idx)), "numsubjects_val": int(len(val_idx)),
        "trainpath_names": list(path_names), "trainpath_names_short": list(path_names),
        "trainpath_multiple": [1] * len(path_names),
        "data_string": data_str, "network_string": model.config.summary(),
        "environment_string": environment_string(), "krakencoder_version": KRAKENCODER_VERSION,
        "trainpath_shuffle": True, "roundtrip": False, "train_string": train_string(config),
        "nbepochs": config.epochs, "learningrate": config.lr, "batchsize": config.batch_size,
        "losstype": str(recipe),
        "latent_inner_loss_weight": 10, "mse_weight": recipe.weight("mse"),
        "latentsim_loss_weight": recipe.latentsim_weight, "latentnorm_loss_weight": recipe.weight("latentnormloss"),
        "latent_maxrad": 1, "latent_maxrad_weight": recipe.weight("latentmaxradloss"),
        "latent_normalize": bool(model.config.latent_normalize), "optimizer_name": "adamw", "zerograd_none": True,
        "model_description": repr(model), "total_parameter_count": int(model.parameter_count()),
        "origscalecorr_epochs": config.display_every, "origscalecorr_inputtype": "original",
        "saved_input_transformer_file": str(xfm.name) if xfm else "",
        "target_encoding": config.target_mode == "loose", "fixed_target_encoding": config.target_mode == "strict",
        "meantarget_latentsim": False, "recordfile": rec.name if rec else "",
        "batches_per_path": 0, "output_file_prefix": names.prefix or "", "output_file_suffix": names.suffix,
        "command": command_text(command), "command_args": cmd, "adam_decay": config.weight_decay,
        "kraken_loss_weights": recipe.as_dict(), "kraken_trainer": "path-steps" if config.path_steps else "fast",
        "kraken_effective_lr": effective_lr,
    }


def network_info(*, config: TrainConfig, model: Krakencoder, transforms: Mapping[str, Any], flavors: Sequence[str],
                 orig_sizes: Sequence[int], paths: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """The checkpoint keys ``train_network`` adds ("networkinfo"), UPSTREAM 2.5."""
    first = transforms[flavors[0]]
    spec = str(getattr(first, "spec", config.transformation))
    kind = str(getattr(first, "kind", ""))
    k = int(getattr(first, "n_components", 0)) if kind in ("pca", "tsvd") else 0
    sched = list(config.dropout_schedule) if config.dropout_schedule else [config.dropout, config.dropout]
    return {
        "reduce_dimension": k, "use_truncated_svd": kind == "tsvd", "input_transformation_info": spec,
        "use_lognorm_for_sc": False, "use_truncated_svd_for_sc": kind == "tsvd",
        "orig_input_size_list": [int(s) for s in orig_sizes], "leave_data_alone": kind == "none",
        "skip_selfs": False,
        "trainpath_encoder_index_list": [int(i) for i, _ in paths],
        "trainpath_decoder_index_list": [int(j) for _, j in paths],
        "dropout_schedule": sched,
    }


def write_config_json(names: RunNames, checkpoints: Sequence[Path], command: Sequence[str] | None) -> Path | None:
    """The original's ``_config_`` JSON listing the run's files."""
    out = names.path("config", "json")
    if out is None:
        return None
    d = {
        "recordfile": str(names.files.get("trainrecord", "")),
        "ioxfm": [str(Path(names.files["ioxfm"]).resolve())] if "ioxfm" in names.files else [],
        "lossfigure": str(names.files.get("loss", "")), "heatmapfigure": str(names.files.get("heatmap", "")),
        "timestamp": names.suffix[-15:], "checkpointbase": str(names.path("chkpt", "pt"))[:-3],
        "checkpointlist": [str(c) for c in checkpoints],
        "checkpoint_final": str(checkpoints[-1]) if checkpoints else "",
        "epoch_suffix_list": [c.stem[c.stem.rfind("_ep"):] for c in checkpoints],
        "epoch_suffix_final": checkpoints[-1].stem[checkpoints[-1].stem.rfind("_ep"):] if checkpoints else "",
        "workdir": os.getcwd(), "command_args": list(command) if command else [],
    }
    with atomic_path(out) as tmp:
        tmp.write_text(json.dumps(d, indent=1))
    return out


#: Fewest validation subjects the stored QC statistics are taken over (else the training subjects).
QC_MIN_HELD_OUT = 10
#: Most subjects the stored QC statistics are taken over (evenly spaced beyond that).
QC_MAX_ROWS = 500


def qc_transform_rows(arrays: Mapping[str, np.ndarray], train_idx: np.ndarray,
                      val_idx: np.ndarray) -> tuple[dict[str, np.ndarray], str, dict[str, np.ndarray]]:
    """Edge rows for the stored QC statistics (``kraken run --qc``): validation subjects if there are enough
    (else training), their split, and training + validation subjects (for the measures free of the fit)."""
    idx, split = (val_idx, "validation") if len(val_idx) >= QC_MIN_HELD_OUT else (train_idx, "training")

    def rows(i: np.ndarray) -> dict[str, np.ndarray]:
        i = np.asarray(i, dtype=np.int64)[:: max(1, len(i) // QC_MAX_ROWS)]  # bounded memory at any scale
        return {f: np.asarray(x)[i] for f, x in arrays.items()}

    return rows(idx), split, rows(np.concatenate([np.asarray(train_idx), np.asarray(val_idx)]))


def qc_entry(model: Krakencoder, flavors: Sequence[str], transforms: Mapping[str, Any],
             rows: Mapping[str, np.ndarray], split: str, train_xs: Sequence[torch.Tensor],
             groups: Mapping[str, str | None] | None = None,
             all_rows: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The checkpoint's ``kraken_qc`` key: what ``kraken run --qc`` compares new subjects against.

    Transform statistics over ``rows`` (see :func:`qc_transform_rows`) and each flavor's training latents
    summarised (mean, per-dimension spread, typical distance); no subject's data is stored.
    """
    from ..qc.reference import qc_statistics

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            latents = {f: model.encode(x, i).float().cpu().numpy() for i, (f, x) in enumerate(zip(flavors, train_xs))}
    finally:
        model.train(was_training)
    return qc_statistics(transforms, rows, split=split, latents=latents, groups=groups, all_rows=all_rows)
