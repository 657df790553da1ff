"""The Krakencoder network: one encoder and one decoder per flavor around a shared latent space.

State-dict names and shapes are those of the original (UPSTREAM 2.2), so checkpoints move
both ways. Per flavor i, with ``sizes = [n_in_i] + hidden + [latent]``:

* encoder: ``Linear -> Dropout (if dropout > 0) -> activation (hidden layers only)`` per layer,
  then ``Normalize`` when ``latent_normalize``;
* decoder: the mirror, with Dropout after every Linear (the last layer may use its own rate).

Linear indices inside each ``nn.Sequential`` therefore depend on whether dropout > 0 and on
``latent_activation``; :func:`config_from_state_dict` checks that a state dict fits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import CheckpointError


class Normalize(nn.Module):
    """L2-normalise rows (``F.normalize(x, p, dim=1)``, eps 1e-12)."""

    def __init__(self, p: int = 2) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, p=self.p, dim=1)


class _GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, lambda_: float) -> torch.Tensor:
        ctx.lambda_ = lambda_
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return -ctx.lambda_ * grad, None


class GradientReversalLayer(nn.Module):
    """Identity forward, gradient times -lambda backward (adversarial flavors)."""

    def __init__(self, lambda_: float = 1.0) -> None:
        super().__init__()
        self.lambda_ = lambda_

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _GradReverse.apply(x, self.lambda_)


@dataclass
class ModelConfig:
    """Architecture of a Krakencoder, with the checkpoint's key names (UPSTREAM 2.1, 2.5)."""

    input_size_list: list[int]
    latentsize: int = 128
    hiddenlayers: list[int] = field(default_factory=list)
    skip_relu: bool = False
    dropout: float = 0.0
    leakyrelu_negative_slope: float = 0.0
    relu_tanh_alternate: bool = False
    latent_activation: str | None = "none"
    latent_normalize: bool = False
    linear_include_bias: bool = True
    no_bias_for_outer_layers: bool = False
    dropout_final_layer: float | None = None
    dropout_final_layer_list: list[float] | None = None
    intergroup: bool = False
    intergroup_layers: list[int] = field(default_factory=list)
    intergroup_inputgroup_list: list[str] = field(default_factory=list)
    intergroup_transform_index_dict: dict[str, int] = field(default_factory=dict)
    intergroup_relu: bool = True
    intergroup_dropout: float | None = None
    adversarial_boolean_list: list[bool] = field(default_factory=list)

    @classmethod
    def from_checkpoint(cls, ckpt: dict[str, Any]) -> ModelConfig:
        """Defaults + the checkpoint's values (older checkpoints lack some keys)."""
        if "input_size_list" not in ckpt:
            raise CheckpointError("checkpoint has no 'input_size_list': not a Krakencoder checkpoint",
                                  hint="give a .pt file written by kraken train or the original run_training.py")
        kw: dict[str, Any] = {}
        for f in fields(cls):
            if f.name not in ckpt:
                continue
            value = _plain(ckpt[f.name])
            if value is None and f.name in _LIST_FIELDS:
                continue
            kw[f.name] = value
        cfg = cls(**kw)
        cfg.input_size_list = [int(x) for x in cfg.input_size_list]
        cfg.hiddenlayers = [int(x) for x in cfg.hiddenlayers]
        cfg.latentsize = int(cfg.latentsize)
        cfg.dropout = float(cfg.dropout)
        return cfg

    def to_checkpoint(self) -> dict[str, Any]:
        """The architecture keys as the original writes them."""
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        if d["intergroup_dropout"] is None:
            d["intergroup_dropout"] = self.dropout
        if not d["adversarial_boolean_list"]:
            d["adversarial_boolean_list"] = [False] * len(self.input_size_list)
        return d

    def summary(self) -> str:
        """Short architecture string, like the original's ``prettystring()``."""
        s = f"latent{self.latentsize}_{len(self.hiddenlayers)}layer"
        if self.hiddenlayers:
            s = f"latent{self.latentsize}_" + "+".join(f"layer{i + 1}.{h}" for i, h in enumerate(self.hiddenlayers))
        if self.leakyrelu_negative_slope:
            s += f"_leakyrelu{self.leakyrelu_negative_slope:g}"
        if self.skip_relu:
            s += "_norelu"
        if self.latent_normalize:
            s += "_latentunit"
        if self.latent_activation not in (None, "none"):
            s += f"_latent.{self.latent_activation}"
        if self.dropout:
            s += f"_drop{self.dropout:g}"
        return s


_LIST_FIELDS = ("hiddenlayers", "intergroup_layers", "intergroup_inputgroup_list",
                "intergroup_transform_index_dict", "adversarial_boolean_list")


def _plain(v: Any) -> Any:
    """numpy scalars -> python scalars (checkpoints may hold np.float64)."""
    if hasattr(v, "item") and not isinstance(v, torch.Tensor) and getattr(v, "ndim", 1) == 0:
        return v.item()
    return v


class Krakencoder(nn.Module):
    """Encoders and decoders of every flavor; index i is ``input_name_list[i]``."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = c = config
        n = len(c.input_size_list)
        adversarial = list(c.adversarial_boolean_list) or [False] * n
        if len(adversarial) != n:
            raise CheckpointError(f"adversarial_boolean_list has {len(adversarial)} entries for {n} flavors")
        self.encoder_list = nn.ModuleList([self._encoder(size) for size in c.input_size_list])
        self.decoder_list = nn.ModuleList([self._decoder(size, i) for i, size in enumerate(c.input_size_list)])
        self.decoder_gradientreversal_list = nn.ModuleList(
            [GradientReversalLayer() if a else nn.Identity() for a in adversarial])
        self.intergroup_transform_list: nn.ModuleList | None = None
        self.intergroup_index: dict[str, int] = {}
        if c.intergroup:
            self._build_intergroup()

    # -- construction -----------------------------------------------------------------------
    def _activation(self, layer: int) -> nn.Module:
        c = self.config
        if c.relu_tanh_alternate and layer % 2 == 1:
            return nn.Tanh()
        if c.leakyrelu_negative_slope > 0:
            return nn.LeakyReLU(c.leakyrelu_negative_slope)
        return nn.ReLU()

    def _encoder(self, n_in: int) -> nn.Sequential:
        c = self.config
        sizes = [n_in, *c.hiddenlayers, c.latentsize]
        layers: list[nn.Module] = []
        for j in range(len(sizes) - 1):
            bias = c.linear_include_bias and not (c.no_bias_for_outer_layers and j == 0)
            layers.append(nn.Linear(sizes[j], sizes[j + 1], bias=bias))
            if c.dropout > 0:
                layers.append(nn.Dropout(c.dropout))
            if j < len(sizes) - 2 and not c.skip_relu:
                layers.append(self._activation(j))
            if c.latent_activation == "tanh":
                layers.append(nn.Tanh())
            elif c.latent_activation == "sigmoid":
                layers.append(nn.Sigmoid())
        if c.latent_normalize:
            layers.append(Normalize())
        return nn.Sequential(*layers)

    def _decoder(self, n_out: int, index: int) -> nn.Sequential:
        c = self.config
        sizes = [c.latentsize, *reversed(c.hiddenlayers), n_out]
        layers: list[nn.Module] = []
        last = len(sizes) - 2
        for j in range(len(sizes) - 1):
            bias = c.linear_include_bias and not (c.no_bias_for_outer_layers and j == last)
            layers.append(nn.Linear(sizes[j], sizes[j + 1], bias=bias))
            if c.dropout > 0:
                p = c.dropout
                if j == last and c.dropout_final_layer_list is not None:
                    p = float(c.dropout_final_layer_list[index])
                elif j == last and c.dropout_final_layer is not None:
                    p = float(c.dropout_final_layer)
                layers.append(nn.Dropout(p))
            if j < last and not c.skip_relu:
                layers.append(self._activation(j))
        return nn.Sequential(*layers)

    def _build_intergroup(self) -> None:
        c = self.config
        groups = [g.lower() for g in c.intergroup_inputgroup_list]
        index = dict(c.intergroup_transform_index_dict)
        for a in dict.fromkeys(groups):
            for b in dict.fromkeys(groups):
                if a != b and f"{a}->{b}" not in index:
                    index[f"{a}->{b}"] = len(index)
        self.intergroup_index = index
        p = c.dropout if c.intergroup_dropout is None else float(c.intergroup_dropout)
        mods = []
        for _ in range(len(index)):
            sizes = [c.latentsize, *c.intergroup_layers, c.latentsize]
            layers: list[nn.Module] = []
            for j in range(len(sizes) - 1):
                layers.append(nn.Linear(sizes[j], sizes[j + 1], bias=c.linear_include_bias))
                if p > 0:
                    layers.append(nn.Dropout(p))
                if c.intergroup_relu:
                    layers.append(nn.LeakyReLU(c.leakyrelu_negative_slope) if c.leakyrelu_negative_slope > 0
                                  else nn.ReLU())
            if c.latent_normalize:
                layers.append(Normalize())
            mods.append(nn.Sequential(*layers))
        self.intergroup_transform_list = nn.ModuleList(mods)

    # -- use ----------------------------------------------------------------------------------
    @property
    def n_flavors(self) -> int:
        return len(self.encoder_list)

    def encode(self, x: torch.Tensor, i: int) -> torch.Tensor:
        """Latent of flavor ``i``'s transformed input, shape (n_subjects, latent)."""
        return self.encoder_list[i](x)

    def intergroup_transform(self, z: torch.Tensor, i: int, j: int) -> torch.Tensor:
        """Intergroup latent map from flavor i's group to flavor j's (identity when absent)."""
        if self.intergroup_transform_list is None:
            return z
        groups = self.config.intergroup_inputgroup_list
        key = f"{groups[i].lower()}->{groups[j].lower()}"
        k = self.intergroup_index.get(key)
        return z if k is None else self.intergroup_transform_list[k](z)

    def decode(self, z: torch.Tensor, j: int) -> torch.Tensor:
        """Flavor ``j``'s transformed output from a latent (decoded exactly as given)."""
        return self.decoder_list[j](self.decoder_gradientreversal_list[j](z))

    def forward(self, x: torch.Tensor, encoder_index: int, decoder_index: int
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """The original's call convention: ``enc < 0`` means x is a latent; ``dec < 0`` returns z only."""
        z = x if encoder_index < 0 else self.encode(x, encoder_index)
        if decoder_index < 0:
            return z
        zin = z if encoder_index < 0 else self.intergroup_transform(z, encoder_index, decoder_index)
        return z, self.decode(zin, decoder_index)

    def set_dropout(self, p: float) -> None:
        """Set every Dropout's rate (the final-layer overrides stay)."""
        c = self.config
        for dec in self.decoder_list:
            mods = list(dec.children())
            for k, m in enumerate(mods):
                if isinstance(m, nn.Dropout):
                    final = k == len(mods) - 1
                    if final and c.dropout_final_layer_list is not None:
                        continue
                    if final and c.dropout_final_layer is not None:
                        continue
                    m.p = p
        for enc in self.encoder_list:
            for m in enc.children():
                if isinstance(m, nn.Dropout):
                    m.p = p

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())


def check_state_shapes(config: ModelConfig, state: Mapping[str, Any], *, source: str) -> None:
    """Raise CheckpointError unless ``state`` has exactly the tensors ``config`` declares, by name and shape.

    Nothing is allocated: the model is laid out on torch's ``meta`` device, so a checkpoint that
    declares giant or negative layer sizes is refused from its numbers alone.
    """
    sizes = [*config.input_size_list, config.latentsize, *config.hiddenlayers]
    bad = [s for s in sizes if not isinstance(s, (int, np.integer)) or int(s) < 1]
    if bad:
        raise CheckpointError(f"{source}: layer sizes must be positive integers, got {bad[0]!r}",
                              hint="the checkpoint is corrupt or crafted")
    try:
        with torch.device("meta"):
            own = {k: tuple(v.shape) for k, v in Krakencoder(config).state_dict().items()}
    except (RuntimeError, ValueError, TypeError, OverflowError) as exc:
        raise CheckpointError(f"{source}: its architecture keys describe no valid network ({exc})",
                              hint="the checkpoint is corrupt or crafted") from exc
    for k, shape in own.items():
        v = state.get(k)
        if isinstance(v, torch.Tensor) and tuple(v.shape) != shape:
            raise CheckpointError(f"{source}: {k} has shape {tuple(v.shape)}, expected {shape}",
                                  hint="the checkpoint's input_size_list/latentsize disagree with its weights")
    missing = [k for k in own if k not in state]
    if missing:
        raise CheckpointError(f"{source}: weights do not fit the architecture it declares (missing {missing[:3]})",
                              hint="the checkpoint may be corrupt, or was written by an incompatible tool")


def config_from_state_dict_check(model: Krakencoder, state: dict[str, torch.Tensor], *, source: str) -> None:
    """Load ``state`` into ``model`` or raise CheckpointError naming the mismatch."""
    own = model.state_dict()
    bad = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{source}: state_dict entry {bad[0]} is a {type(state[bad[0]]).__name__}, not a tensor",
                              hint="the checkpoint may be corrupt, or was written by an incompatible tool")
    missing = [k for k in own if k not in state]
    extra = [k for k in state if k not in own]
    if missing or extra:
        raise CheckpointError(
            f"{source}: weights do not fit the architecture it declares "
            f"(missing {missing[:3]}, unexpected {extra[:3]})",
            hint="the checkpoint may be corrupt, or was written by an incompatible tool")
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise CheckpointError(f"{source}: {k} has shape {tuple(v.shape)}, expected {tuple(own[k].shape)}",
                                  hint="the checkpoint's input_size_list/latentsize disagree with its weights")
    model.load_state_dict(state)
