"""kraken's AdamW equals torch.optim.AdamW (fused where torch has the kernel) and skips parameters without gradient."""

from __future__ import annotations

import pytest
import torch

from kraken_cli.engine.training import _optim as optim
from kraken_cli.engine.training._optim import AdamW


@pytest.mark.parametrize("kernel", ["fused", "foreach"])
def test_matches_torch_adamw_bit_for_bit(kernel: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if kernel == "foreach":  # torch without the fused kernel (< 2.4 on CPU): the single-tensor arithmetic
        monkeypatch.setattr(optim, "_fused", lambda params: False)
    torch.manual_seed(0)
    a = torch.nn.Linear(6, 4)
    b = torch.nn.Linear(6, 4)
    b.load_state_dict(a.state_dict())
    fused = optim._fused(list(b.parameters()))  # torch 2.4+ on CPU: its fused kernel, else the single-tensor path
    oa = torch.optim.AdamW(a.parameters(), lr=3e-3, weight_decay=0.05, fused=fused or None)
    ob = AdamW(b.parameters(), lr=3e-3, weight_decay=0.05)
    g = torch.Generator().manual_seed(1)
    for _ in range(30):
        x = torch.randn(5, 6, generator=g)
        for m, o in ((a, oa), (b, ob)):
            o.zero_grad(set_to_none=True)
            (m(x) ** 2).sum().backward()
            o.step()
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_none_gradients_get_no_update_or_decay() -> None:
    p1 = torch.nn.Parameter(torch.ones(3))
    p2 = torch.nn.Parameter(torch.ones(3))
    opt = AdamW([p1, p2], lr=0.1, weight_decay=0.5)
    opt.zero_grad(set_to_none=True)
    (p1 * 2).sum().backward()
    opt.step()
    assert torch.equal(p2, torch.ones(3)) and opt.steps == [1, 0]
    assert not torch.equal(p1, torch.ones(3))


def test_state_round_trip() -> None:
    p = torch.nn.Parameter(torch.randn(4))
    opt = AdamW([p], lr=0.01)
    for _ in range(3):
        opt.zero_grad()
        (p**2).sum().backward()
        opt.step()
    q = torch.nn.Parameter(p.detach().clone())
    opt2 = AdamW([q], lr=0.01)
    opt2.load_state_dict(opt.state_dict())
    for o, t in ((opt, p), (opt2, q)):
        o.zero_grad()
        (t**2).sum().backward()
        o.step()
    assert torch.equal(p, q)
