"""Merge the encoders/decoders of several checkpoints into one model (UPSTREAM 8.2, DESIGN 5 fixes).

Unlike the original, merging refuses incompatible latent size, normalisation or layer layout,
never touches string fields, warns on flavor-name collisions (first wins unless ``prefer``), and
records which paths were really trained and which file each flavor came from.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def _merge_order(checkpoints: Sequence[Checkpoint], prefer: str | None) -> list[int]:
    """Indices of ``checkpoints`` in the order their flavors are claimed (``prefer`` first)."""
    order = list(range(len(checkpoints)))
    if prefer is None:
        return order
    match = [i for i, c in enumerate(checkpoints) if c.file == prefer or Path(c.file).name == Path(prefer).name]
    if not match:
        raise CheckpointError(f"--prefer {prefer} is not one of the checkpoints being merged",
                              hint="give --prefer one of the checkpoint files listed for merging")
    return match + [i for i in order if i not in match]


def _flavor_names(c: Checkpoint, canonical: bool) -> list[str]:
    return [canonical_name(n) or n for n in c.flavors] if canonical else list(c.flavors)


def _choose_flavors(checkpoints: Sequence[Checkpoint], order: list[int], canonical: bool,
                    ) -> tuple[dict[str, tuple[int, int]], list[str]]:
    """Flavor -> (checkpoint, encoder index) of its winner, and the merged flavor order.

    The first checkpoint in ``order`` holding a name wins; the output order is the order of
    appearance across the checkpoints as given.
    """
    chosen: dict[str, tuple[int, int]] = {}
    for ci in order:
        for fi, name in enumerate(_flavor_names(checkpoints[ci], canonical)):
            if name in chosen:
                winner = checkpoints[chosen[name][0]].file
                log.warning("flavor %s is in both %s and %s: keeping the one from %s",
                            name, winner, checkpoints[ci].file, winner)
                continue
            chosen[name] = (ci, fi)
    flavor_order = [n for ci in range(len(checkpoints)) for n in _flavor_names(checkpoints[ci], canonical)
                    if chosen.get(n, (None,))[0] == ci and n in chosen]
    return chosen, list(dict.fromkeys(flavor_order))


def _plain_keys(raw: dict[str, Any], drop_prefixes: tuple[str, ...]) -> dict[str, Any]:
    """A deep copy of ``raw`` without weights, optimizer state and keys with ``drop_prefixes``."""
    return {k: copy.deepcopy(v) for k, v in raw.items()
            if k not in ("state_dict", "optimizer") and not k.startswith(drop_prefixes)}


def _copy_flavor(raw: dict[str, Any], state: dict[str, torch.Tensor], c: Checkpoint, fi: int, new_i: int) -> None:
    """Encoder/decoder weights and per-input entries of flavor ``fi`` of ``c`` as flavor ``new_i``."""
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


def _trained_paths(checkpoints: Sequence[Checkpoint], chosen: dict[str, tuple[int, int]],
                   flavor_order: list[str], canonical: bool) -> tuple[list[int], list[int]]:
    """Merged encoder/decoder indices of the paths really trained (both ends kept from one file)."""
    index = {n: i for i, n in enumerate(flavor_order)}
    enc: list[int] = []
    dec: list[int] = []
    for ci, c in enumerate(checkpoints):
        nm = _flavor_names(c, canonical)
        for a, b in c.trained_paths:
            a2, b2 = nm[c.flavors.index(a)], nm[c.flavors.index(b)]
            if chosen.get(a2, (None,))[0] == ci and chosen.get(b2, (None,))[0] == ci:
                enc.append(index[a2])
                dec.append(index[b2])
    return enc, dec


def _record_provenance(raw: dict[str, Any], checkpoints: Sequence[Checkpoint], sources: list[tuple[int, int]],
                       trained: tuple[list[int], list[int]]) -> None:
    """Path lists and the original's ``merged_*`` keys: where each flavor came from."""
    n = len(sources)
    # the original's tools expect every pair listed; kraken records the really trained ones separately
    raw["trainpath_encoder_index_list"] = [i for i in range(n) for _ in range(n)]
    raw["trainpath_decoder_index_list"] = [j for _ in range(n) for j in range(n)]
    raw["kraken_trained_encoder_index_list"], raw["kraken_trained_decoder_index_list"] = trained
    raw["kraken_flavor_sources"] = [Path(checkpoints[ci].file).name for ci, _ in sources]
    raw["merged_training_params_list"] = [copy.deepcopy(c.training_params) for c in checkpoints]
    raw["merged_checkpoint_info_list"] = [_plain_keys(c.raw, ("kraken_",)) for c in checkpoints]
    raw["merged_source_net_idx"] = [ci for ci, _ in sources]
    raw["merged_source_input_idx"] = [fi for _, fi in sources]
    raw["merged_checkpointfile_list"] = [Path(c.file).name for c in checkpoints]


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
    order = _merge_order(checkpoints, prefer)
    base = checkpoints[0]
    for c in checkpoints[1:]:
        _check_compatible(base, c)
    chosen, flavor_order = _choose_flavors(checkpoints, order, canonical)
    raw = _plain_keys(base.raw, ("kraken_optimizer", "kraken_rng"))
    state: dict[str, torch.Tensor] = {}
    for key in _PER_INPUT:
        raw[key] = []
    for new_i, name in enumerate(flavor_order):
        ci, fi = chosen[name]
        _copy_flavor(raw, state, checkpoints[ci], fi, new_i)
    raw["state_dict"] = state
    raw["input_name_list"] = flavor_order
    _record_provenance(raw, checkpoints, [chosen[name] for name in flavor_order],
                       _trained_paths(checkpoints, chosen, flavor_order, canonical))
    if isinstance(raw.get("training_params"), dict):
        raw["training_params"]["total_parameter_count"] = int(sum(v.numel() for v in state.values()))
    merged = Checkpoint.from_raw(raw, "merged:" + ",".join(c.file for c in checkpoints), flavor_order)
    merged.model()  # validates that the weights fit
    return merged


@dataclass(frozen=True)
class MergeResult:
    """What ``kraken merge`` wrote: the merged checkpoint's flavors, where each came from, its trained paths."""

    output: str
    flavors: list[str]
    sources: list[str]
    trained_paths: list[tuple[str, str]]

    @classmethod
    def of(cls, merged: Checkpoint) -> MergeResult:
        return cls(str(merged.file), list(merged.flavors), list(merged.raw.get("kraken_flavor_sources", [])),
                   [(a, b) for a, b in merged.trained_paths])

    def to_dict(self) -> dict[str, Any]:
        """``kraken merge --json``."""
        return {"output": self.output, "flavors": self.flavors, "sources": self.sources,
                "trained_paths": [f"{a}->{b}" for a, b in self.trained_paths]}


def merge_to_file(files: Sequence[str | Path], output: str | Path, *, prefer: str | None = None,
                  canonical: bool = False) -> MergeResult:
    """``kraken merge``: :func:`merge_files` and what it wrote."""
    return MergeResult.of(merge_files(files, output, prefer=prefer, canonical=canonical))


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
