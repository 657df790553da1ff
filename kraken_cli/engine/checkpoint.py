"""Checkpoints in the original's ``.pt`` layout (UPSTREAM 2.5), loaded safely.

Loading uses ``torch.load(weights_only=True)`` with an explicit allow-list of the numpy globals
the original stored (arrays, scalars, dtypes), so a crafted file cannot run code. kraken's own
metadata lives under extra ``kraken_*`` keys that the original ignores.
"""

from __future__ import annotations

import logging
import pickle
import re
import struct
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .errors import CheckpointError, OutputError
from .flavors import canonical_name, flavor_database
from .io._atomic import atomic_path, check_writable_dir
from .model import (
    Krakencoder,
    ModelConfig,
    check_state_shapes,
    config_from_state_dict_check,
)

log = logging.getLogger(__name__)

#: Keys the original writes; anything else in a file is reported by ``describe`` as not understood.
KNOWN_KEYS = frozenset({
    "state_dict", "krakencoder_version", "input_size_list", "latentsize", "hiddenlayers", "skip_relu", "dropout",
    "leakyrelu_negative_slope", "relu_tanh_alternate", "latent_activation", "latent_normalize",
    "linear_include_bias", "no_bias_for_outer_layers", "dropout_final_layer", "dropout_final_layer_list",
    "intergroup", "intergroup_layers", "intergroup_inputgroup_list", "intergroup_transform_index_dict",
    "intergroup_relu", "intergroup_dropout", "adversarial_boolean_list", "epoch", "reduce_dimension",
    "use_truncated_svd", "input_transformation_info", "use_lognorm_for_sc", "use_truncated_svd_for_sc",
    "orig_input_size_list", "leave_data_alone", "skip_selfs", "input_name_list",
    "trainpath_encoder_index_list", "trainpath_decoder_index_list", "dropout_schedule", "training_params",
    "optimizer", "merged_training_params_list", "merged_checkpoint_info_list", "merged_source_net_idx",
    "merged_source_input_idx", "merged_checkpointfile_list",
})


def _safe_globals() -> list[Any]:
    import numpy._core.multiarray as ma
    from numpy import dtypes

    allowed: list[Any] = [ma.scalar, ma._reconstruct, np.ndarray, np.dtype]
    allowed += [getattr(dtypes, n) for n in dir(dtypes) if n.endswith("DType")]
    # files written with numpy < 2 name numpy.core.multiarray: register the same objects under that name
    return allowed + [(ma.scalar, "numpy.core.multiarray.scalar"),
                      (ma._reconstruct, "numpy.core.multiarray._reconstruct")]


def _check_zip_integrity(p: Path, what: str) -> None:
    """Check the CRC-32 of every member of a zip-format ``.pt`` (torch's own reader does not).

    A flipped byte inside a weight tensor would otherwise load as a slightly different model.
    Legacy (pre-zip) files carry no checksums; they are loaded as they are.
    """
    try:
        if not zipfile.is_zipfile(p):
            return
        with zipfile.ZipFile(p) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise CheckpointError(f"{what} {p} is damaged ({type(exc).__name__}: {str(exc)[:200]})",
                              hint="the file may be truncated or corrupt; copy or fetch it again") from exc
    if bad is not None:
        raise CheckpointError(f"{what} {p} is damaged: the checksum of its part {bad!r} does not match",
                              hint="the file changed after it was written (disk or copy error); copy or fetch it again")


def torch_load_safe(path: str | Path, *, what: str = "checkpoint") -> dict[str, Any]:
    """``torch.load(weights_only=True)`` with the numpy allow-list; errors become CheckpointError."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"{what} {p} does not exist",
                              hint="check the path, or run `kraken fetch` for released models")
    if p.stat().st_size == 0:
        raise CheckpointError(f"{what} {p} is empty (0 bytes)",
                              hint="the download or copy did not finish; fetch it again")
    _check_zip_integrity(p, what)
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        text = str(exc)
        named = re.search(r"GLOBAL ([\w.]+)", text)
        if named:
            raise CheckpointError(
                f"{p} contains code or objects that would run when loaded ({named.group(1)}); it was not loaded",
                hint="only load checkpoints from people you trust; kraken never executes code from model files",
            ) from exc
        detail = next((ln.strip() for ln in text.splitlines() if ln.strip().startswith("Unsupported")), text[:200])
        raise CheckpointError(f"{p} is not a readable checkpoint ({detail})",
                              hint="the file may be truncated or corrupt") from exc
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError, AttributeError, KeyError, IndexError,
            TypeError, OverflowError, MemoryError, struct.error) as exc:  # a corrupt pickle inside the zip
        raise CheckpointError(f"{p} is not a readable checkpoint ({type(exc).__name__}: {str(exc)[:200]})",
                              hint="the file may be truncated or corrupt") from exc
    if not isinstance(obj, dict):
        raise CheckpointError(f"{p} holds a {type(obj).__name__}, not a checkpoint dict",
                              hint="give a .pt file written by kraken train or the original tool")
    return obj


@dataclass
class Checkpoint:
    """A loaded checkpoint: the raw dict plus the parsed architecture and flavor names."""

    raw: dict[str, Any]
    file: str
    config: ModelConfig
    flavors: list[str]
    _model: Krakencoder | None = field(default=None, repr=False)

    @classmethod
    def from_raw(cls, raw: dict[str, Any], file: str, flavors: list[str]) -> Checkpoint:
        """A checkpoint built in memory (e.g. merged): the architecture is parsed from ``raw``."""
        return cls(raw, file, ModelConfig.from_checkpoint(raw), flavors)

    @property
    def epoch(self) -> int:
        """The 0-based ``epoch`` key (-1 if absent)."""
        return int(self.raw.get("epoch", -1))

    @property
    def completed_epochs(self) -> int | None:
        """Epochs of training the weights hold (kraken key, else epoch + 1)."""
        if "kraken_completed_epochs" in self.raw:
            return int(self.raw["kraken_completed_epochs"])
        return None if "epoch" not in self.raw else self.epoch + 1

    @property
    def training_params(self) -> dict[str, Any]:
        tp = self.raw.get("training_params")
        return tp if isinstance(tp, dict) else {}

    @property
    def trained_paths(self) -> list[tuple[str, str]]:
        """``(source, target)`` flavor names of the trained paths."""
        enc = self.raw.get("kraken_trained_encoder_index_list", self.raw.get("trainpath_encoder_index_list", []))
        dec = self.raw.get("kraken_trained_decoder_index_list", self.raw.get("trainpath_decoder_index_list", []))
        return [(self.flavors[int(i)], self.flavors[int(j)]) for i, j in zip(enc, dec)]

    def model(self) -> Krakencoder:
        """The network with this checkpoint's weights (built once, in eval mode, on CPU)."""
        if self._model is None:
            m = Krakencoder(self.config)
            config_from_state_dict_check(m, self.raw["state_dict"], source=self.file)
            m.eval()
            self._model = m
        return self._model

    def unknown_keys(self) -> list[str]:
        """Top-level keys neither the original nor kraken defines."""
        return sorted(k for k in self.raw if k not in KNOWN_KEYS and not k.startswith("kraken_"))


def _upgrade_old_names(names: list[str]) -> list[str]:
    """Old-style flavor names (``FCcov_fs86_hpf_FC``...) become new-style when all of them convert."""
    db = flavor_database()
    if all(n in db for n in names):
        return names
    new = [canonical_name(n) for n in names]
    if all(c is not None and c in db for c in new) and any(c != n for c, n in zip(new, names)):
        log.info("converted old-style flavor names %s -> %s", names, new)
        return [str(c) for c in new]
    return names


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Load and validate a Krakencoder checkpoint (weights are checked when the model is built)."""
    raw = torch_load_safe(path)
    if "state_dict" not in raw or not isinstance(raw["state_dict"], Mapping):
        raise CheckpointError(f"{path} has no 'state_dict': not a Krakencoder checkpoint",
                              hint="give a .pt file written by kraken train or the original tool")
    try:
        config = ModelConfig.from_checkpoint(raw)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: the architecture keys are malformed ({exc})",
                              hint="the checkpoint is incomplete or corrupt") from exc
    check_state_shapes(config, raw["state_dict"], source=str(path))
    names = raw.get("input_name_list")
    if not isinstance(names, list) or len(names) != len(config.input_size_list):
        raise CheckpointError(f"{path}: input_name_list does not list one flavor per encoder",
                              hint="the checkpoint is incomplete or corrupt")
    return Checkpoint(raw, str(path), config, _upgrade_old_names([str(n) for n in names]))


def save_checkpoint(path: str | Path, content: Mapping[str, Any]) -> Path:
    """Write a checkpoint dict atomically (temp file, fsync, rename)."""
    p = Path(path)
    check_writable_dir(p)
    with atomic_path(p) as tmp:
        try:
            torch.save(dict(content), tmp)
        except RuntimeError as exc:  # torch's C++ writer reports a full disk as RuntimeError
            raise OutputError(f"could not write {p} ({str(exc)[:200]})",
                              hint="check free disk space and permissions") from exc
    return p


def checkpoint_dict(model: Krakencoder, flavors: list[str], extra: Mapping[str, Any]) -> dict[str, Any]:
    """The original's checkpoint layout for ``model`` plus ``extra`` keys (``epoch``, ``training_params``...)."""
    d: dict[str, Any] = {"state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
                         "krakencoder_version": "1.0.0 (2024-04-07)"}
    d.update(model.config.to_checkpoint())
    d["input_name_list"] = list(flavors)
    d.update(extra)
    return d
