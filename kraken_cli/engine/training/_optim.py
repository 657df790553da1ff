"""AdamW with the exact update of ``torch.optim.AdamW(fused=True)``, without its import cost.

Constructing a ``torch.optim`` optimizer imports ``torch._dynamo`` (about 1 s on a small CPU),
a tenth of the whole training budget of recipe P. This class calls the kernel of torch's fused
AdamW (one pass over each parameter, its gradient and moments: 0.36 ms per paper-scale step on 2
cores, 1.7 ms for the eight ``torch._foreach_*`` passes of the single-tensor arithmetic, which it
falls back to where torch has no fused kernel, e.g. torch < 2.4 on CPU). It keeps per-parameter
step counts as Python ints (no device synchronisation), and skips parameters whose gradient is
``None`` (``zero_grad(set_to_none=True)``), so a step touches neither the Adam moments nor the
weight decay of parameters outside the current loss.
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
        """One update of every parameter with a gradient: the single-tensor arithmetic, applied to all of
        them by ``torch._foreach_*`` calls (a few calls per step instead of nine per parameter)."""
        beta1, beta2 = self.betas
        lr, wd, eps = self.lr, self.weight_decay, self.eps
        live = [k for k, p in enumerate(self.params) if p.grad is not None]
        if not live:
            return
        for k in live:
            if self.exp_avg[k] is None:
                self.exp_avg[k] = torch.zeros_like(self.params[k], memory_format=torch.preserve_format)
                self.exp_avg_sq[k] = torch.zeros_like(self.params[k], memory_format=torch.preserve_format)
            self.steps[k] += 1
        ps = [self.params[k] for k in live]
        gs, ms, vs = _present([p.grad for p in ps]), _present(self.exp_avg, live), _present(self.exp_avg_sq, live)
        if _fused(ps):
            steps = [torch.tensor(float(self.steps[k]), device=self.params[k].device) for k in live]
            torch._fused_adamw_(ps, gs, ms, vs, [], steps, lr=lr, beta1=beta1, beta2=beta2, weight_decay=wd,
                                eps=eps, amsgrad=False, maximize=False)
            return
        torch._foreach_mul_(ps, 1 - lr * wd)
        torch._foreach_lerp_(ms, gs, 1 - beta1)
        torch._foreach_mul_(vs, beta2)
        torch._foreach_addcmul_(vs, gs, gs, value=1 - beta2)
        denom = torch._foreach_sqrt(vs)
        torch._foreach_div_(denom, [math.sqrt(1 - beta2 ** self.steps[k]) for k in live])
        torch._foreach_add_(denom, eps)
        torch._foreach_addcdiv_(ps, ms, denom, [-(lr / (1 - beta1 ** self.steps[k])) for k in live])

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


def _fused(params: list[torch.Tensor]) -> bool:
    """Whether torch's fused AdamW kernel takes these parameters (CUDA; CPU from torch 2.4)."""
    first = params[0]
    if not hasattr(torch, "_fused_adamw_") or any(p.device != first.device or p.dtype != first.dtype for p in params):
        return False
    return first.is_floating_point() and (first.device.type == "cuda"
                                          or (first.device.type == "cpu" and torch.__version__ >= "2.4"))


def _present(tensors: list[torch.Tensor | None], keep: list[int] | None = None) -> list[torch.Tensor]:
    """``tensors`` (those at ``keep``), none of them None."""
    out = [tensors[k] for k in keep] if keep is not None else list(tensors)
    assert all(t is not None for t in out)
    return out  # type: ignore[return-value]
