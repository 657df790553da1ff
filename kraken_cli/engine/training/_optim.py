"""AdamW with the exact update of ``torch.optim.AdamW`` (single-tensor path), without its import cost.

Constructing a ``torch.optim`` optimizer imports ``torch._dynamo`` (about 1 s on a small CPU),
a tenth of the whole training budget of recipe P. This class performs the same arithmetic in
the same order, keeps per-parameter step counts as Python ints (no device synchronisation), and
skips parameters whose gradient is ``None`` (``zero_grad(set_to_none=True)``), so a step
touches neither the Adam moments nor the weight decay of parameters outside the current loss.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class AdamW:
    """Decoupled-weight-decay Adam (Loshchilov & Hutter), defaults as ``torch.optim.AdamW``."""

    def __init__(self, params: Iterable[torch.Tensor], lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2) -> None:
        self.params = list(params)
        self.lr = float(lr)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.weight_decay = float(weight_decay)
        self.steps = [0] * len(self.params)
        self.exp_avg: list[torch.Tensor | None] = [None] * len(self.params)
        self.exp_avg_sq: list[torch.Tensor | None] = [None] * len(self.params)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        beta1, beta2 = self.betas
        lr, wd, eps = self.lr, self.weight_decay, self.eps
        for k, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            if self.exp_avg[k] is None:
                self.exp_avg[k] = torch.zeros_like(p, memory_format=torch.preserve_format)
                self.exp_avg_sq[k] = torch.zeros_like(p, memory_format=torch.preserve_format)
            m, v = self.exp_avg[k], self.exp_avg_sq[k]
            assert m is not None and v is not None
            self.steps[k] += 1
            step = self.steps[k]
            p.mul_(1 - lr * wd)
            m.lerp_(g, 1 - beta1)
            v.mul_(beta2).addcmul_(g, g, value=1 - beta2)
            bias1 = 1 - beta1 ** step
            bias2 = 1 - beta2 ** step
            denom = (v.sqrt() / math.sqrt(bias2)).add_(eps)
            p.addcdiv_(m, denom, value=-(lr / bias1))

    def state_dict(self) -> dict[str, Any]:
        """Moments and step counts (tensors on their device; loadable with ``weights_only``)."""
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "steps": list(self.steps),
                "exp_avg": [None if m is None else m.detach().clone() for m in self.exp_avg],
                "exp_avg_sq": [None if v is None else v.detach().clone() for v in self.exp_avg_sq]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        n = len(self.params)
        if len(state["steps"]) != n:
            raise ValueError(f"optimizer state holds {len(state['steps'])} parameters, this model has {n}")
        for k, p in enumerate(self.params):
            for name, store in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
                t = state[name][k]
                if t is not None and tuple(t.shape) != tuple(p.shape):
                    raise ValueError(f"optimizer state for parameter {k} has shape {tuple(t.shape)}, "
                                     f"expected {tuple(p.shape)}")
                store[k] = None if t is None else t.to(device=p.device, dtype=p.dtype).clone()
        self.steps = [int(s) for s in state["steps"]]
