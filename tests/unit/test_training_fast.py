"""The fast trainer: batched objective vs a per-path loop, packed vs generic network, determinism."""

from __future__ import annotations

import pytest
import torch

from kraken_cli.engine.losses import PAPER_RECIPE, latent_loss, output_loss, parse_recipe
from kraken_cli.engine.model import Krakencoder, ModelConfig
from kraken_cli.engine.training._common import (
    STREAM_BATCH,
    STREAM_LATENTSIM,
    Batch,
    Masks,
    PathPlan,
    Targets,
    batch_objective,
    batch_order,
    dropout,
    latentsim_objective,
)
from kraken_cli.engine.training._masks import MaskRate, keep_mask, keep_masks
from kraken_cli.engine.training.fast import FastTrainer, ModuleNet, PackedNet, packable
from kraken_cli.engine.training.paths import TrainPath, resolve_paths

RECIPE = parse_recipe(PAPER_RECIPE)


def _setup(n: int = 3, size: int = 12, latent: int = 5, paths: list[str] | None = None, hidden: list[int] | None = None,
           sizes: list[int] | None = None, seed: int = 0) -> tuple[Krakencoder, Batch, PathPlan]:
    torch.manual_seed(seed)
    sizes = sizes or [size] * n
    model = Krakencoder(ModelConfig(sizes, latentsize=latent, latent_normalize=True, dropout=0.5,
                                    hiddenlayers=hidden or []))
    g = torch.Generator().manual_seed(seed + 1)
    xs = [torch.randn(30, s, generator=g) * 3 for s in sizes]
    names = [f"f{i}" for i in range(len(sizes))]
    plan = PathPlan.build(resolve_paths(paths or ["SCFC"], names), len(sizes), torch.device("cpu"))
    return model, Batch.of(xs, stack=len(set(sizes)) == 1), plan


def _loop_objective(model: Krakencoder, batch: Batch, plan: PathPlan) -> tuple[torch.Tensor, torch.Tensor]:
    """The summed objective path by path, with the model's modules (eval mode: no dropout)."""
    model.eval()
    total, per = torch.zeros(()), []
    for p in plan.paths:
        z = model.encode(batch.xs[p.source], p.source)
        y = model.decode(z, p.target)
        loss = output_loss(RECIPE, batch.xs[p.target], y) + latent_loss(RECIPE, None, z)
        per.append(loss)
        total = total + loss
    return total, torch.stack(per)


@pytest.mark.parametrize("paths", [["SCFC"], ["f0->f1", "f2->f0", "self"]])
def test_packed_objective_matches_per_path_loop(paths: list[str]) -> None:
    model, batch, plan = _setup(paths=paths)
    net = PackedNet(model, plan)
    total, per = batch_objective(net, batch, plan, RECIPE, None)
    ref_total, ref_per = _loop_objective(model, batch, plan)
    assert torch.allclose(total, ref_total, rtol=1e-5)
    assert torch.allclose(per, ref_per, rtol=1e-5)


def test_packed_and_module_nets_agree_in_value_and_gradient() -> None:
    model, batch, plan = _setup()
    packed = PackedNet(model, plan)
    t1, _ = batch_objective(packed, batch, plan, RECIPE, None)
    t1.backward()
    t2, _ = batch_objective(ModuleNet(model, plan), batch, plan, RECIPE, None)
    t2.backward()
    assert torch.allclose(t1, t2, rtol=1e-5)
    assert packed.enc_w.grad is not None and packed.dec_b.grad is not None
    for i in range(3):
        assert torch.allclose(packed.enc_w.grad[i], model.encoder_list[i][0].weight.grad, rtol=1e-4, atol=1e-5)
        assert torch.allclose(packed.dec_b.grad[i], model.decoder_list[i][0].bias.grad, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("recipe", [PAPER_RECIPE, "corrtrace+var+mse.w100"])  # fused and reference loss
def test_packed_and_module_nets_agree_with_dropout(recipe: str) -> None:
    # train mode: both nets draw the same masks, so objective and gradients must agree
    model, batch, plan = _setup(n=4)
    rec = parse_recipe(recipe)
    packed = PackedNet(model, plan)
    gen = torch.Generator()
    t1, p1 = batch_objective(packed, batch, plan, rec, Masks(gen, 0, STREAM_BATCH, 3, 2, 4))
    t1.backward()
    t2, p2 = batch_objective(ModuleNet(model, plan), batch, plan, rec, Masks(gen, 0, STREAM_BATCH, 3, 2, 4))
    t2.backward()
    torch.testing.assert_close(t1, t2, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(p1, p2, rtol=1e-5, atol=1e-5)
    assert packed.dec_w.grad is not None and packed.enc_w.grad is not None
    for i in range(4):
        torch.testing.assert_close(packed.dec_w.grad[i], model.decoder_list[i][0].weight.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(packed.enc_b.grad[i], model.encoder_list[i][0].bias.grad, rtol=1e-4, atol=1e-5)


def test_latentsim_objective_is_the_pairwise_sum() -> None:
    # UPSTREAM 7.3: weight * sum_i 2 sum_{j<i} MSE(z_i, zhat_j), zhat eval-mode and detached
    model, batch, plan = _setup(n=5)
    net = PackedNet(model, plan)
    gen = torch.Generator()
    got = latentsim_objective(net, batch, plan, 7.0, Masks(gen, 0, STREAM_LATENTSIM, 1, 0, 5))
    got.backward()
    g_got = net.enc_w.grad.clone()
    net.enc_w.grad = None
    with torch.no_grad():
        z_hat = net.encode(batch, None)
    z = net.encode(batch, Masks(gen, 0, STREAM_LATENTSIM, 1, 0, 5), range(1, 5))
    want = 7.0 * sum(2 * ((z[i - 1] - z_hat[j]) ** 2).mean() for i in range(1, 5) for j in range(i))
    want.backward()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g_got, net.enc_w.grad, rtol=1e-4, atol=1e-6)
    assert float(g_got[0].abs().sum()) == 0  # the anchor gets no gradient


def test_generic_network_handles_hidden_layers_and_sizes() -> None:
    model, batch, plan = _setup(sizes=[10, 14, 8], hidden=[7])
    assert not packable(model)
    total, per = batch_objective(ModuleNet(model, plan), batch, plan, RECIPE, None)
    ref_total, ref_per = _loop_objective(model, batch, plan)
    assert torch.allclose(total, ref_total, rtol=1e-5) and torch.allclose(per, ref_per, rtol=1e-5)


def test_export_round_trip() -> None:
    model, _, plan = _setup()
    net = PackedNet(model, plan)
    with torch.no_grad():
        net.enc_w.add_(1.0)
    net.export(model)
    assert torch.equal(model.encoder_list[1][0].weight, net.enc_w[1])


def test_dropout_masks_are_seeded_and_scaled() -> None:
    x = torch.ones(1000)
    a = dropout(x, 0.5, torch.Generator().manual_seed(3))
    b = dropout(x, 0.5, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    assert set(a.unique().tolist()) <= {0.0, 2.0} and 300 < int((a == 0).sum()) < 700
    assert torch.equal(dropout(x, 0.5, None), x)


@pytest.mark.parametrize("p", [0.5, 0.25, 0.3])
@pytest.mark.parametrize("dim", [0, 1, 3])
@pytest.mark.parametrize("cut", [False, True])  # blocks of equal size (one strided copy), or parts of blocks
def test_stacked_masks_are_the_single_masks_stacked(p: float, dim: int, cut: bool) -> None:
    gen = torch.Generator()
    like = torch.empty(0)
    rows = ((None, None, None) if not cut else (None, (5, 1), (3, 0)))
    draws = [(lambda k=k: gen.manual_seed(k), r) for k, r in zip((3, 4, 9), rows)]
    got = keep_masks((3, 5, 7), p, draws, like, dim)
    want = torch.stack([keep_mask((3, 5, 7), p, g(), like, r) for g, r in draws], dim=dim)
    assert torch.equal(got, want)


@pytest.mark.parametrize(("p", "bits"), [(0.5, 1), (0.25, 2), (0.125, 4), (3 / 256, 8), (0.1, 16), (0.3, 16),
                                        (0.9, 16)])
def test_dropout_masks_keep_the_rate_and_the_mean(p: float, bits: int) -> None:
    # the fewest bits per element that hold p (16 for any other p: the rate is then p to 1e-5);
    # kept elements are scaled so the mean is kept
    assert MaskRate.of(p).bits == bits
    a = dropout(torch.ones(400_000), p, torch.Generator().manual_seed(5))
    kept = a[a != 0]
    assert abs(float((a == 0).double().mean()) - p) < 0.005
    assert torch.all(kept == kept[0]) and abs(float(kept[0]) - 1 / (1 - p)) < 1e-3
    assert abs(float(a.double().mean()) - 1) < 0.01


def test_batch_order_depends_only_on_seed_and_epoch() -> None:
    a = batch_order(50, 8, seed=1, epoch=4)
    b = batch_order(50, 8, seed=1, epoch=4)
    assert len(a) == 6 and all(torch.equal(p, q) for p, q in zip(a, b))
    c = batch_order(50, 8, seed=1, epoch=5)
    assert not all(torch.equal(p, q) for p, q in zip(a, c))


def _trainer(model: Krakencoder, batch: Batch, plan: PathPlan, **kw: object) -> FastTrainer:
    return FastTrainer(model, batch, plan, RECIPE, seed=0, batch_size=8, lr=1e-3, weight_decay=0.01,
                       dropout_at=lambda e: 0.5, **kw)  # type: ignore[arg-type]


def test_training_is_deterministic_and_reduces_the_loss() -> None:
    runs = []
    for _ in range(2):
        model, batch, plan = _setup()
        t = _trainer(model, batch, plan)
        first = t.run_epoch(0)
        for e in range(1, 30):
            last = t.run_epoch(e)
        runs.append(t.sync_model().state_dict())
        assert last.mean() < first.mean()
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])


def test_epoch_result_independent_of_history() -> None:
    # epoch e's randomness comes from (seed, e) only: restarting at e gives the same step
    model, batch, plan = _setup()
    t = _trainer(model, batch, plan)
    t.run_epoch(0)
    snap = {k: v.clone() for k, v in t.sync_model().state_dict().items()}
    state = t.state_dict()
    t.run_epoch(7)
    a = t.sync_model().state_dict()
    model2, _, _ = _setup()
    model2.load_state_dict(snap)
    t2 = _trainer(model2, batch, plan)
    t2.load_state_dict(state)
    t2.run_epoch(7)
    b = t2.sync_model().state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_latentsim_step_runs_once_per_epoch_and_anchor_is_encoder_0() -> None:
    model, batch, plan = _setup()
    t = _trainer(model, batch, plan)
    assert t.latentsim_weight == 10000
    single = PathPlan.build([TrainPath(0, 1)], 3, torch.device("cpu"))
    assert _trainer(model, batch, single).latentsim_weight == 0  # one encoder: nothing to align


def test_target_encoding_strict_decodes_targets() -> None:
    model, batch, plan = _setup(paths=["self"])
    zt = torch.nn.functional.normalize(torch.randn(3, 30, 5), dim=-1)
    t = _trainer(model, batch, plan, targets=Targets(zt, strict=True, mse_weight=1.0))
    assert t.latentsim_weight == 0
    before = t.run_epoch(0).mean()
    for e in range(1, 40):
        after = t.run_epoch(e).mean()
    assert after < before


def test_too_few_subjects() -> None:
    from kraken_cli.engine.errors import TrainingError

    model, batch, plan = _setup()
    with pytest.raises(TrainingError, match="fewer than one batch"):
        FastTrainer(model, batch, plan, RECIPE, seed=0, batch_size=64, lr=1e-3, weight_decay=0.0,
                    dropout_at=lambda e: 0.0)


def test_chunked_decoding_gives_the_same_objective(monkeypatch: pytest.MonkeyPatch) -> None:
    # a batch's paths are decoded in chunks of decoders (fast.CHUNK_ELEMENTS): any cut gives the same loss
    import kraken_cli.engine.training.fast as fast

    model, batch, plan = _setup(n=4)
    rec = parse_recipe(PAPER_RECIPE)
    whole = batch_objective(PackedNet(model, plan), batch, plan, rec, Masks(torch.Generator(), 0, STREAM_BATCH, 1, 0, 4))
    monkeypatch.setattr(fast, "CHUNK_ELEMENTS", 1)  # one decoder per chunk
    net = PackedNet(model, plan)
    assert len(net._chunks(batch.n_subjects)[0][3]) == 4
    cut = batch_objective(net, batch, plan, rec, Masks(torch.Generator(), 0, STREAM_BATCH, 1, 0, 4))
    torch.testing.assert_close(cut[0], whole[0], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cut[1], whole[1], rtol=1e-5, atol=1e-5)
