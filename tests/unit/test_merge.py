"""Merging checkpoints (UPSTREAM 8.2 with DESIGN 5's fixes): weights by index, validation, collisions."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from kraken_cli.engine.checkpoint import load_checkpoint, torch_load_safe
from kraken_cli.engine.errors import CheckpointError
from kraken_cli.engine.merge import merge_checkpoints, merge_files

from ..helpers import FC, SC, LogRecorder, TinyModel, make_tiny_model

PC = "FCpcorr_fs86_hpf"
SD = "SCsdstream_fs86_volnorm"


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, TinyModel]:
    d = tmp_path_factory.mktemp("merge")
    return {
        "a": make_tiny_model(d, (FC, SC), name="a", seed=1),
        "b": make_tiny_model(d, (PC, SC, SD), name="b", seed=2,
                             extra={"trainpath_encoder_index_list": [0, 1], "trainpath_decoder_index_list": [0, 2]}),
    }


def _sd(path: Path) -> dict[str, torch.Tensor]:
    return torch_load_safe(path)["state_dict"]


def test_weights_land_at_the_right_index(models: dict[str, TinyModel]) -> None:
    a, b = models["a"], models["b"]
    merged = merge_checkpoints([load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint)])
    # order of appearance; SC collides and the first checkpoint wins
    assert merged.flavors == [FC, SC, PC, SD]
    sa, sb, sm = _sd(a.checkpoint), _sd(b.checkpoint), merged.raw["state_dict"]
    expected_source = {0: (sa, 0), 1: (sa, 1), 2: (sb, 0), 3: (sb, 2)}
    for new_i, (src, old_i) in expected_source.items():
        for part in ("encoder_list", "decoder_list"):
            for leaf in ("0.weight", "0.bias"):
                assert torch.equal(sm[f"{part}.{new_i}.{leaf}"], src[f"{part}.{old_i}.{leaf}"]), (new_i, part, leaf)
    assert len(sm) == 4 * 4
    assert merged.raw["merged_source_net_idx"] == [0, 0, 1, 1]
    assert merged.raw["merged_source_input_idx"] == [0, 1, 0, 2]
    assert merged.raw["kraken_flavor_sources"] == [a.checkpoint.name] * 2 + [b.checkpoint.name] * 2
    assert merged.raw["input_size_list"] == [3, 3, 3, 3]
    assert merged.raw["orig_input_size_list"] == [3655] * 4


def test_strings_stay_intact_and_paths_are_recorded(models: dict[str, TinyModel]) -> None:
    a, b = models["a"], models["b"]
    merged = merge_checkpoints([load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint)])
    # the original turned 4-character strings into lists with a 4-flavor base
    assert merged.raw["latent_activation"] == "none"
    assert merged.raw["input_transformation_info"] == "pca3"
    assert merged.raw["krakencoder_version"] == "1.0.0 (2024-04-07)"
    # the original's lists claim every pair; kraken records what was really trained
    assert len(merged.raw["trainpath_encoder_index_list"]) == 16
    trained = set(merged.trained_paths)
    assert {(FC, FC), (FC, SC), (SC, FC), (SC, SC)} <= trained        # a trained all its pairs
    assert (PC, PC) in trained                                          # b's PC->PC
    assert (SC, SD) not in trained                                      # b's SC was dropped (collision)
    assert (PC, SD) not in trained and (FC, PC) not in trained          # never trained
    assert len(merged.raw["merged_training_params_list"]) == 2


def test_collision_warns_and_prefer_switches_the_winner(models: dict[str, TinyModel]) -> None:
    a, b = models["a"], models["b"]
    with LogRecorder() as logs:
        merged = merge_checkpoints([load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint)])
    warns = logs.messages(logging.WARNING)
    assert any(SC in w and a.checkpoint.name in w and b.checkpoint.name in w for w in warns), warns
    sa, sb = _sd(a.checkpoint), _sd(b.checkpoint)
    assert torch.equal(merged.raw["state_dict"]["encoder_list.1.0.weight"], sa["encoder_list.1.0.weight"])
    pref = merge_checkpoints([load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint)], prefer=str(b.checkpoint))
    i = pref.flavors.index(SC)
    assert torch.equal(pref.raw["state_dict"][f"encoder_list.{i}.0.weight"], sb["encoder_list.1.0.weight"])
    assert torch.equal(pref.raw["state_dict"][f"decoder_list.{i}.0.bias"], sb["decoder_list.1.0.bias"])
    assert pref.raw["kraken_flavor_sources"][i] == b.checkpoint.name
    with pytest.raises(CheckpointError, match="--prefer"):
        merge_checkpoints([load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint)], prefer="other.pt")


def test_merged_model_predicts_like_its_sources(models: dict[str, TinyModel]) -> None:
    a, b = models["a"], models["b"]
    merged = merge_checkpoints([load_checkpoint(a.checkpoint), load_checkpoint(b.checkpoint)])
    x = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    net_m, net_b = merged.model(), load_checkpoint(b.checkpoint).model()
    assert torch.allclose(net_m(x, 2, 3)[1], net_b(x, 0, 2)[1])


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(latent=5), "latentsize"),
    (dict(latent_normalize=False), "latent_normalize"),
    (dict(dropout=0.5), "dropout"),
    (dict(hidden=(4,)), "hiddenlayers"),
])
def test_incompatible_checkpoints_are_refused(tmp_path: Path, models: dict[str, TinyModel], kwargs: dict,
                                              match: str) -> None:
    other = make_tiny_model(tmp_path, (PC,), name="other", **kwargs)
    with pytest.raises(CheckpointError, match=match) as ei:
        merge_files([models["a"].checkpoint, other.checkpoint], tmp_path / "m.pt")
    assert ei.value.hint
    assert not (tmp_path / "m.pt").exists()


def test_merge_files_round_trip(tmp_path: Path, models: dict[str, TinyModel]) -> None:
    out = tmp_path / "merged.pt"
    merged = merge_files([models["a"].checkpoint, models["b"].checkpoint], out)
    assert merged.file == str(out)
    back = load_checkpoint(out)
    assert back.flavors == [FC, SC, PC, SD]
    assert back.raw["merged_checkpointfile_list"] == [models["a"].checkpoint.name, models["b"].checkpoint.name]
    back.model()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged.pt"]


def test_merge_needs_two(tmp_path: Path, models: dict[str, TinyModel]) -> None:
    with pytest.raises(CheckpointError, match="at least two checkpoints, got 1"):
        merge_files([models["a"].checkpoint], tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="nothing to merge"):
        merge_checkpoints([])


def test_canonical_merges_old_and_new_names(tmp_path: Path, models: dict[str, TinyModel]) -> None:
    from kraken_cli.engine.checkpoint import save_checkpoint

    raw = torch_load_safe(models["b"].checkpoint)
    raw["input_name_list"] = ["fs86_pcorr_hpf_FC", "fs86_ifod2act_volnorm", "mydata"]  # not all old-style
    f = save_checkpoint(tmp_path / "renamed.pt", raw)
    plain = merge_checkpoints([load_checkpoint(models["a"].checkpoint), load_checkpoint(f)])
    assert "fs86_ifod2act_volnorm" in plain.flavors
    canon = merge_checkpoints([load_checkpoint(models["a"].checkpoint), load_checkpoint(f)], canonical=True)
    assert canon.flavors == [FC, SC, PC, "mydata"]
