"""``kraken describe``: the facts a checkpoint holds, read without running it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .checkpoint import load_checkpoint

_SKIP = {"state_dict", "trainpath_encoder_index_list", "trainpath_decoder_index_list", "optimizer",
         "training_params", "merged_training_params_list", "merged_checkpoint_info_list"}


@dataclass
class FlavorRow:
    index: int
    name: str
    edges: int | None
    input_size: int
    source: str | None = None


@dataclass
class Description:
    """Everything ``describe`` shows: model keys, training parameters, flavors, paths."""

    file: str
    flavors: list[FlavorRow]
    model_info: dict[str, Any]
    training: dict[str, Any]
    paths: list[tuple[str, str]]
    epoch_key: int
    completed_epochs: int | None
    architecture: str
    parameter_count: int
    transform: str
    unknown_keys: list[str] = field(default_factory=list)
    kraken: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of ``kraken describe --json``."""
        return asdict(self)


def _plain(v: Any) -> Any:
    """A printable, JSON-friendly value: small arrays as lists, large ones (and tensors) as their shape."""
    import torch

    if isinstance(v, torch.Tensor):
        v = v.detach().cpu().numpy()
    if isinstance(v, np.ndarray):
        return v.tolist() if v.size <= 50 else f"array{v.shape}"
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def describe_checkpoint(file: str | Path) -> Description:
    """Read a checkpoint's facts (flavors, sizes, architecture, training parameters, paths)."""
    ck = load_checkpoint(file)
    raw = ck.raw
    info = {k: _plain(v) for k, v in raw.items() if k not in _SKIP and not k.startswith("kraken_")}
    tp = {k: _plain(v) for k, v in ck.training_params.items()
          if isinstance(v, (bool, int, float, np.number, np.bool_)) or k in ("losstype", "optimizer_name")}
    orig = raw.get("orig_input_size_list") or [None] * len(ck.flavors)
    merged_from = raw.get("merged_checkpointfile_list")
    src_idx = raw.get("merged_source_net_idx")
    prov = raw.get("kraken_flavor_sources")
    rows = []
    for i, name in enumerate(ck.flavors):
        source = None
        if isinstance(prov, (list, tuple)) and i < len(prov):
            source = str(prov[i])
        elif merged_from is not None and src_idx is not None:
            source = str(merged_from[int(src_idx[i])])
        rows.append(FlavorRow(i + 1, name, None if orig[i] is None else int(orig[i]),
                              int(ck.config.input_size_list[i]), source))
    kraken = {k: _plain(v) for k, v in raw.items() if k.startswith("kraken_")
              and k not in ("kraken_optimizer_state", "kraken_rng_state")}
    return Description(
        file=str(file), flavors=rows, model_info=info, training=tp, paths=ck.trained_paths,
        epoch_key=ck.epoch, completed_epochs=ck.completed_epochs, architecture=ck.config.summary(),
        parameter_count=sum(int(np.prod(v.shape)) for v in raw["state_dict"].values()),
        transform=str(raw.get("input_transformation_info", "")), unknown_keys=ck.unknown_keys(), kraken=kraken)
