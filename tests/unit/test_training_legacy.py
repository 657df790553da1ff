"""--path-steps: the original's one-AdamW-step-per-path-per-batch schedule."""

from __future__ import annotations

import torch

from kraken_cli.engine.losses import PAPER_RECIPE, parse_recipe
from kraken_cli.engine.model import Krakencoder, ModelConfig
from kraken_cli.engine.training._common import Batch, PathPlan
from kraken_cli.engine.training.legacy import LegacyTrainer
from kraken_cli.engine.training.paths import TrainPath, resolve_paths


def _setup(paths: list[TrainPath] | None = None, recipe: str = PAPER_RECIPE, wd: float = 0.01, batch: int = 8,
           n_subjects: int = 24) -> LegacyTrainer:
    torch.manual_seed(0)
    model = Krakencoder(ModelConfig([6, 6, 6], latentsize=4, latent_normalize=True, dropout=0.5))
    g = torch.Generator().manual_seed(1)
    xs = Batch.of([torch.randn(n_subjects, 6, generator=g) for _ in range(3)], stack=True)
    plan = PathPlan.build(paths or resolve_paths(["SCFC"], ["a", "b", "c"]), 3, torch.device("cpu"))
    return LegacyTrainer(model, xs, plan, parse_recipe(recipe), seed=0, batch_size=batch, lr=1e-3,
                         weight_decay=wd, dropout_at=lambda e: 0.5)


def _params(t: LegacyTrainer) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in t.model.state_dict().items()}


def test_runs_and_learns() -> None:
    t = _setup()
    first = t.run_epoch(0)
    for e in range(1, 15):
        last = t.run_epoch(e)
    assert first.shape == (9,) and torch.isfinite(last).all() and last.mean() < first.mean()
    # 9 paths x 3 batches, plus one latent-similarity step: encoder 1 got 9 + 1 steps
    assert max(t.optimizer.steps) == 15 * (3 * 3 + 1)


def test_untouched_parameters_get_no_weight_decay() -> None:
    t = _setup(paths=[TrainPath(0, 1)], recipe="correye+mse", wd=0.5, batch=24)
    before = _params(t)
    t.run_epoch(0)  # one path, one batch: exactly one AdamW step
    after = _params(t)
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed == {"encoder_list.0.0.weight", "encoder_list.0.0.bias",
                       "decoder_list.1.0.weight", "decoder_list.1.0.bias"}


def test_latentsim_anchor_encoder_gets_no_gradient() -> None:
    t = _setup()
    t.optimizer.zero_grad(set_to_none=True)
    t.latentsim_loss(torch.Generator().manual_seed(0)).backward()
    grads = {k: p.grad for k, p in t.model.named_parameters()}
    assert grads["encoder_list.0.0.weight"] is None  # the anchor: no update, no decay
    assert grads["encoder_list.1.0.weight"] is not None and grads["encoder_list.2.0.weight"] is not None
    assert grads["decoder_list.0.0.weight"] is None


def test_path_order_shuffled_per_epoch_and_reproducible() -> None:
    t = _setup()
    assert t.path_order(3) == _setup().path_order(3)
    assert sorted(t.path_order(3)) == list(range(9))
    assert any(t.path_order(e) != t.path_order(0) for e in range(1, 5))


def test_deterministic() -> None:
    a, b = _setup(), _setup()
    for e in range(3):
        a.run_epoch(e)
        b.run_epoch(e)
    pa, pb = _params(a), _params(b)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
