"""Merge the encoders/decoders of several checkpoints into one model (UPSTREAM 8.2, DESIGN 5 fixes).

Unlike the original, merging refuses incompatible latent size, normalisation or layer layout,
never touches string fields, warns on flavor-name collisions (first wins unless ``prefer``), and
records which paths were really trained and which file each flavor came from.
"""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Sequence

import torch

from .checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from .errors import CheckpointError, OutputError
from .flavors import canonical_name
from .io._atomic import check_writable_dir

log = logging.getLogger(__name__)

#: Architecture keys that must agree for encoders/decoders to share one latent space.
_MUST_MATCH = ("latentsize", "latent_normalize", "hiddenlayers", "skip_relu", "leakyrelu_negative_slope",
               "relu_tanh_alternate", "latent_activation", "linear_include_bias", "no_bias_for_outer_layers",
               "intergroup")
_PER_INPUT = ("input_size_list", "orig_input_size_list", "adversarial_boolean_list")


def _check_compatible(base: Checkpoint, other: Checkpoint) -> None:
    for key in _MUST_MATCH:
        a, b = getattr(base.config, key), getattr(other.config, key)
        if a != b:
            raise CheckpointError(f"cannot merge {other.file} into {base.file}: {key} differs ({b!r} vs {a!r})",
                                  hint="only checkpoints that share one latent space and layer layout can be merged")
    if (base.config.dropout > 0) != (other.config.dropout > 0):
        raise CheckpointError(f"cannot merge {other.file} into {base.file}: one was built with dropout and one "
                              "without, so their layer numbering differs",
                              hint="merge checkpoints trained with the same dropout setting")
    ta, tb = base.raw.get("input_transformation_info"), other.raw.get("input_transformation_info")
    if ta != tb:
        log.warning("merging checkpoints with different input transforms (%s, %s): give every flavor's "
                    "transform file with -t when running", ta, tb)


def merge_checkpoints(checkpoints: Sequence[Checkpoint], *, prefer: str | None = None,
                      canonical: bool = False) -> Checkpoint:
    """One checkpoint holding every flavor of ``checkpoints`` (first occurrence of a name wins).

    Parameters
    ----------
    prefer : str, optional
        File name (or path) of the checkpoint whose flavors win on a collision.
    canonical : bool
        Canonicalize flavor names before merging.
    """
    if not checkpoints:
        raise CheckpointError("nothing to merge", hint="give two or more checkpoint files")
    order = list(range(len(checkpoints)))
    if prefer is not None:
        match = [i for i, c in enumerate(checkpoints) if c.file == prefer or Path(c.file).name == Path(prefer).name]
        if not match:
            raise CheckpointError(f"--prefer {prefer} is not one of the checkpoints being merged",
                                  hint="give --prefer one of the checkpoint files listed for merging")
        order = match + [i for i in order if i not in match]
    base = checkpoints[0]
    for c in checkpoints[1:]:
        _check_compatible(base, c)

    def names(c: Checkpoint) -> list[str]:
        return [canonical_name(n) or n for n in c.flavors] if canonical else list(c.flavors)

    chosen: dict[str, tuple[int, int]] = {}
    for ci in order:
        for fi, name in enumerate(names(checkpoints[ci])):
            if name in chosen:
                winner = checkpoints[chosen[name][0]].file
                log.warning("flavor %s is in both %s and %s: keeping the one from %s",
                            name, winner, checkpoints[ci].file, winner)
                continue
            chosen[name] = (ci, fi)
    # output order: order of appearance across the checkpoints as given
    flavor_order = [n for ci in range(len(checkpoints)) for n in names(checkpoints[ci])
                    if chosen.get(n, (None,))[0] == ci and n in chosen]
    flavor_order = list(dict.fromkeys(flavor_order))

    raw: dict[str, Any] = {k: copy.deepcopy(v) for k, v in base.raw.items()
                           if k not in ("state_dict", "optimizer") and not k.startswith("kraken_optimizer")
                           and not k.startswith("kraken_rng")}
    state: dict[str, torch.Tensor] = {}
    for key in _PER_INPUT:
        raw[key] = []
    trained_enc: list[int] = []
    trained_dec: list[int] = []
    src_net, src_in, sources = [], [], []
    for new_i, name in enumerate(flavor_order):
        ci, fi = chosen[name]
        c = checkpoints[ci]
        for part in ("encoder_list", "decoder_list"):
            prefix = f"{part}.{fi}."
            for k, v in c.raw["state_dict"].items():
                if k.startswith(prefix):
                    state[f"{part}.{new_i}.{k[len(prefix):]}"] = v.clone()
        raw["input_size_list"].append(int(c.config.input_size_list[fi]))
        orig = c.raw.get("orig_input_size_list") or [None] * len(c.flavors)
        raw["orig_input_size_list"].append(orig[fi])
        adv = c.raw.get("adversarial_boolean_list") or [False] * len(c.flavors)
        raw["adversarial_boolean_list"].append(bool(adv[fi]))
        src_net.append(ci)
        src_in.append(fi)
        sources.append(Path(c.file).name)
    index = {n: i for i, n in enumerate(flavor_order)}
    for ci, c in enumerate(checkpoints):
        nm = names(c)
        for a, b in c.trained_paths:
            a2, b2 = nm[c.flavors.index(a)], nm[c.flavors.index(b)]
            if chosen.get(a2, (None,))[0] == ci and chosen.get(b2, (None,))[0] == ci:
                trained_enc.append(index[a2])
                trained_dec.append(index[b2])
    n = len(flavor_order)
    raw["state_dict"] = state
    raw["input_name_list"] = flavor_order
    # the original's tools expect every pair listed; kraken records the really trained ones separately
    raw["trainpath_encoder_index_list"] = [i for i in range(n) for _ in range(n)]
    raw["trainpath_decoder_index_list"] = [j for _ in range(n) for j in range(n)]
    raw["kraken_trained_encoder_index_list"] = trained_enc
    raw["kraken_trained_decoder_index_list"] = trained_dec
    raw["kraken_flavor_sources"] = sources
    raw["merged_training_params_list"] = [copy.deepcopy(c.training_params) for c in checkpoints]
    raw["merged_checkpoint_info_list"] = [{k: copy.deepcopy(v) for k, v in c.raw.items()
                                           if k not in ("state_dict", "optimizer") and not k.startswith("kraken_")}
                                          for c in checkpoints]
    raw["merged_source_net_idx"] = src_net
    raw["merged_source_input_idx"] = src_in
    raw["merged_checkpointfile_list"] = [Path(c.file).name for c in checkpoints]
    if isinstance(raw.get("training_params"), dict):
        raw["training_params"]["total_parameter_count"] = int(sum(v.numel() for v in state.values()))
    merged = Checkpoint.__new__(Checkpoint)
    from .model import ModelConfig

    merged.__init__(raw, "merged:" + ",".join(c.file for c in checkpoints),  # type: ignore[misc]
                    ModelConfig.from_checkpoint(raw), flavor_order)
    merged.model()  # validates that the weights fit
    return merged


def merge_files(files: Sequence[str | Path], output: str | Path, *, prefer: str | None = None,
                canonical: bool = False) -> Checkpoint:
    """Merge checkpoint files and save the result (atomic)."""
    if len(files) < 2:
        raise CheckpointError(f"merging needs at least two checkpoints, got {len(files)}",
                              hint="kraken merge A.pt B.pt [C.pt ...] -o merged.pt")
    out = Path(output).resolve()
    if any(Path(f).resolve() == out for f in files):
        raise OutputError(f"output {output} is one of the checkpoints being merged",
                          hint="write the merged model to a new file with -o")
    check_writable_dir(output)  # before loading anything
    merged = merge_checkpoints([load_checkpoint(f) for f in files], prefer=prefer, canonical=canonical)
    save_checkpoint(output, merged.raw)
    merged.file = str(output)
    return merged
