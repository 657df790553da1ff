"""Target-encoding training (UPSTREAM 8.1): reading target latents, loose and strict modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.datasets import make_cohort
from kraken_cli.engine.errors import InputDataError, TrainingError
from kraken_cli.engine.training import TrainConfig, read_target_latents, train
from kraken_cli.engine.training.target import select_target_latents

BASE = dict(transformation="pca8", latent_size=4, batch_size=8, display_every=10)


@pytest.fixture(scope="module")
def cohort():  # type: ignore[no-untyped-def]
    return make_cohort(48, n_regions=10, seed=2, flavors=None)


def _latents(n: int, seed: int = 0) -> np.ndarray:
    z = np.random.default_rng(seed).normal(size=(n, 4))
    return (z / np.linalg.norm(z, axis=1, keepdims=True)).astype(np.float32)


def test_read_fusion_latents_by_subject_id(tmp_path: Path) -> None:
    subjects = [f"s{i:02d}" for i in range(6)]
    z = _latents(6)
    order = [5, 3, 1, 0, 2, 4]
    f = tmp_path / "enc.mat"
    scipy.io.savemat(f, {"predicted_alltypes": {"fusion": {"encoded": z[order]}, "other": {"encoded": z * 0}},
                         "subjects": np.array([subjects[i] for i in order], dtype=object)})
    got = read_target_latents(f, "fusion", ["A", "B"], subjects)
    assert set(got) == {"A", "B"} and np.allclose(got["A"], z) and np.allclose(got["B"], z)
    with pytest.raises(InputDataError, match="--target-name"):
        read_target_latents(f, None, ["A"], subjects)
    with pytest.raises(InputDataError, match="no target latent"):
        read_target_latents(f, "fusion", ["A"], subjects + ["new"])


def test_selection_rules() -> None:
    z = np.zeros((3, 2))
    assert select_target_latents({"encoded": z}, None, ["A", "B"])["B"] is z
    one = {"predicted_alltypes": {"whatever": {"encoded": z}}}
    assert select_target_latents(one, "fusion", ["A"])["A"] is z
    per = {"predicted_alltypes": {"A": {"encoded": z}, "B": {"encoded": z + 1}}}
    assert select_target_latents(per, "self", ["A", "B"])["B"][0, 0] == 1
    with pytest.raises(InputDataError, match="no encoded latents"):
        select_target_latents(per, "self", ["A", "C"])
    with pytest.raises(InputDataError):
        select_target_latents({"x": 1}, None, ["A"])


@pytest.mark.parametrize("strict", [False, True])
def test_target_training_moves_latents_towards_targets(cohort, tmp_path: Path, strict: bool) -> None:  # type: ignore[no-untyped-def]
    flavor = "SCifod2act_fs86_volnorm"
    data = {flavor: cohort.data[flavor]}
    proj = np.random.default_rng(1).normal(size=(cohort.latent.shape[1], 4))
    zt = cohort.latent @ proj
    zt = (zt / np.linalg.norm(zt, axis=1, keepdims=True)).astype(np.float32)  # reachable targets
    cfg = TrainConfig(epochs=40, target_encoding="t.mat", target_name="fusion", only_self=True, strict=strict,
                      output=str(tmp_path / "k"), fast_lr=1e-2, dropout=0.0,
                      loss="correye+enceye.w100+encdist.w100+mse", **BASE)
    res = train(data, cfg, subjects=cohort.subjects, target_latents=zt, figures=False)
    assert res.path_names == [f"{flavor}->{flavor}"]
    raw = load_checkpoint(res.checkpoints[-1]).raw
    assert raw["training_params"]["fixed_target_encoding"] is strict
    assert raw["training_params"]["target_encoding"] is (not strict)
    assert ("+fixlatent" if strict else "+targlatent") in res.checkpoints[-1].name
    with torch.no_grad():
        x = res.transforms[flavor].as_torch().transform(data[flavor])
        z = res.model.eval().encode(x, 0).numpy()
    tr = res.split.train
    assert np.mean(np.sum(z[tr] * zt[tr], axis=1)) > 0.3  # mean cosine to the targets (about 0 untrained)


def test_target_latents_are_checked(cohort) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(epochs=1, target_encoding="t.mat", only_self=True, **BASE)
    with pytest.raises(TrainingError, match="needs the target latents"):
        train(cohort.data, cfg, subjects=cohort.subjects, figures=False)
    with pytest.raises(InputDataError, match="expected"):
        train(cohort.data, cfg, subjects=cohort.subjects, target_latents=np.zeros((48, 3)), figures=False)
