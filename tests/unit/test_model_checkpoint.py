"""The Krakencoder module (UPSTREAM 2.1-2.3) and checkpoints in the original's layout (UPSTREAM 2.5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from kraken_cli.engine.checkpoint import Checkpoint, checkpoint_dict, load_checkpoint, save_checkpoint, torch_load_safe
from kraken_cli.engine.errors import CheckpointError
from kraken_cli.engine.model import Krakencoder, ModelConfig, Normalize, config_from_state_dict_check

from ..helpers import make_tiny_model


def _linear_indices(seq: nn.Sequential) -> list[int]:
    return [i for i, m in enumerate(seq) if isinstance(m, nn.Linear)]


@pytest.mark.parametrize(("dropout", "hidden", "expected"), [
    (0.0, [], [0]),
    (0.5, [], [0]),
    (0.5, [16, 8], [0, 3, 6]),   # Linear, Dropout, Act per hidden layer
    (0.0, [16, 8], [0, 2, 4]),   # Linear, Act
])
def test_state_dict_names_follow_upstream_2_2(dropout: float, hidden: list[int], expected: list[int]) -> None:
    net = Krakencoder(ModelConfig(input_size_list=[10, 12], latentsize=4, hiddenlayers=hidden, dropout=dropout))
    names = set(net.state_dict())
    want = set()
    enc_sizes = [[10, *hidden, 4], [12, *hidden, 4]]
    for i in range(2):
        for k, idx in enumerate(expected):
            want |= {f"encoder_list.{i}.{idx}.weight", f"encoder_list.{i}.{idx}.bias",
                     f"decoder_list.{i}.{idx}.weight", f"decoder_list.{i}.{idx}.bias"}
            assert tuple(net.state_dict()[f"encoder_list.{i}.{idx}.weight"].shape) == \
                (enc_sizes[i][k + 1], enc_sizes[i][k])
            dec_sizes = enc_sizes[i][::-1]
            assert tuple(net.state_dict()[f"decoder_list.{i}.{idx}.weight"].shape) == \
                (dec_sizes[k + 1], dec_sizes[k])
    assert names == want
    assert _linear_indices(net.encoder_list[0]) == expected


def test_paper_model_structure_and_parameter_count() -> None:
    net = Krakencoder(ModelConfig(input_size_list=[256] * 15, latentsize=128, dropout=0.5, latent_normalize=True))
    enc, dec = net.encoder_list[0], net.decoder_list[0]
    assert [type(m) for m in enc] == [nn.Linear, nn.Dropout, Normalize]
    assert [type(m) for m in dec] == [nn.Linear, nn.Dropout]
    assert enc[1].p == 0.5 and dec[1].p == 0.5
    assert net.parameter_count() == 988_800
    sd = net.state_dict()
    assert tuple(sd["encoder_list.0.0.weight"].shape) == (128, 256)
    assert tuple(sd["decoder_list.0.0.weight"].shape) == (256, 128)
    assert tuple(sd["decoder_list.0.0.bias"].shape) == (256,)


def test_final_layer_dropout_and_set_dropout() -> None:
    cfg = ModelConfig(input_size_list=[5, 5], latentsize=3, hiddenlayers=[4], dropout=0.2,
                      dropout_final_layer_list=[0.0, 0.7])
    net = Krakencoder(cfg)
    assert net.decoder_list[1][-1].p == 0.7 and net.decoder_list[0][-1].p == 0.0
    net.set_dropout(0.4)
    assert net.decoder_list[1][-1].p == 0.7  # the final-layer overrides stay
    assert all(m.p == 0.4 for m in net.encoder_list[0] if isinstance(m, nn.Dropout))
    # dropout 0: no Dropout module, so a final-layer dropout is ignored (as upstream)
    net0 = Krakencoder(ModelConfig(input_size_list=[5], latentsize=3, dropout=0.0, dropout_final_layer=0.5))
    assert not any(isinstance(m, nn.Dropout) for m in net0.decoder_list[0])


def test_no_bias_for_outer_layers_and_activations() -> None:
    net = Krakencoder(ModelConfig(input_size_list=[6], latentsize=2, hiddenlayers=[4], no_bias_for_outer_layers=True,
                                  leakyrelu_negative_slope=0.1))
    enc, dec = net.encoder_list[0], net.decoder_list[0]
    assert enc[0].bias is None and enc[2].bias is not None
    assert dec[0].bias is not None and dec[2].bias is None
    assert isinstance(enc[1], nn.LeakyReLU) and enc[1].negative_slope == 0.1


def test_forward_call_convention() -> None:
    net = Krakencoder(ModelConfig(input_size_list=[6, 5], latentsize=3, latent_normalize=True)).eval()
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(0))
    z = net(x, 0, -1)
    assert isinstance(z, torch.Tensor)
    np.testing.assert_allclose(z.norm(dim=1).detach().numpy(), 1.0, rtol=1e-6)
    lin = net.encoder_list[0][0]
    manual = torch.nn.functional.normalize(x @ lin.weight.T + lin.bias, dim=1)
    assert torch.allclose(z, manual, atol=1e-6)
    z2, y = net(x, 0, 1)
    dlin = net.decoder_list[1][0]
    assert torch.allclose(y, z2 @ dlin.weight.T + dlin.bias, atol=1e-6)
    # enc < 0: x is a latent, decoded exactly as given (no normalisation)
    half = 0.5 * z
    _, y_half = net(half, -1, 1)
    assert torch.allclose(y_half, half @ dlin.weight.T + dlin.bias, atol=1e-6)


def test_intergroup_index_and_names() -> None:
    cfg = ModelConfig(input_size_list=[4, 4, 4], latentsize=3, intergroup=True,
                      intergroup_inputgroup_list=["sc", "fc", "fc"])
    net = Krakencoder(cfg)
    assert net.intergroup_index == {"sc->fc": 0, "fc->sc": 1}
    assert "intergroup_transform_list.0.0.weight" in net.state_dict()
    z = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
    assert torch.equal(net.intergroup_transform(z, 1, 2), z)  # same group: identity


def test_state_dict_mismatch_is_a_checkpoint_error() -> None:
    a = Krakencoder(ModelConfig(input_size_list=[6], latentsize=3, hiddenlayers=[4], dropout=0.5))
    b = Krakencoder(ModelConfig(input_size_list=[6], latentsize=3, hiddenlayers=[4], dropout=0.0))
    with pytest.raises(CheckpointError, match="missing"):
        config_from_state_dict_check(b, a.state_dict(), source="x.pt")
    c = Krakencoder(ModelConfig(input_size_list=[7], latentsize=3, hiddenlayers=[4], dropout=0.5))
    with pytest.raises(CheckpointError, match="shape"):
        config_from_state_dict_check(c, a.state_dict(), source="x.pt")


# -- checkpoints -----------------------------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path: Path) -> None:
    tiny = make_tiny_model(tmp_path, dropout=0.5, hidden=(5,))
    ck = load_checkpoint(tiny.checkpoint)
    assert isinstance(ck, Checkpoint)
    assert ck.flavors == tiny.flavors
    assert ck.config.latentsize == 4 and ck.config.hiddenlayers == [5] and ck.config.dropout == 0.5
    assert ck.epoch == 9 and ck.completed_epochs == 10
    assert len(ck.trained_paths) == 4
    original = tiny.model.state_dict()
    loaded = ck.model().state_dict()
    assert set(original) == set(loaded)
    for k, v in original.items():
        assert torch.equal(v, loaded[k]), k
    assert not ck.model().training  # eval mode
    raw = torch_load_safe(tiny.checkpoint)
    # the original's keys with the original's types
    assert raw["krakencoder_version"] == "1.0.0 (2024-04-07)"
    assert raw["input_size_list"] == [3, 3]
    assert raw["adversarial_boolean_list"] == [False, False]
    assert raw["intergroup_dropout"] == 0.5
    assert raw["latent_activation"] == "none"
    assert ck.unknown_keys() == []


def test_save_is_atomic_and_makes_folders(tmp_path: Path) -> None:
    net = Krakencoder(ModelConfig(input_size_list=[4], latentsize=2))
    out = save_checkpoint(tmp_path / "sub" / "m.pt", checkpoint_dict(net, ["FCcorr_fs86_hpf"], {"epoch": 0}))
    assert out.exists()
    assert [p.name for p in out.parent.iterdir()] == ["m.pt"]


def test_old_checkpoint_defaults_and_numpy_values(tmp_path: Path) -> None:
    """Older files lack later keys and hold numpy scalars/arrays: defaults + file, loaded safely."""
    net = Krakencoder(ModelConfig(input_size_list=[4, 4], latentsize=2))
    d = checkpoint_dict(net, ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"], {
        "epoch": np.int64(3),
        "training_params": {"subjects": np.array(["100206", "100307"]), "learningrate": np.float64(1e-4)},
    })
    for k in ("linear_include_bias", "no_bias_for_outer_layers", "intergroup", "intergroup_layers",
              "adversarial_boolean_list", "dropout_final_layer", "dropout_final_layer_list"):
        d.pop(k)
    d["intergroup_dropout"] = np.float64(0.0)
    f = tmp_path / "old.pt"
    torch.save(d, f)
    ck = load_checkpoint(f)
    assert ck.config.linear_include_bias is True and ck.config.intergroup is False
    assert ck.config.adversarial_boolean_list == [] and ck.epoch == 3
    assert ck.training_params["subjects"].tolist() == ["100206", "100307"]
    ck.model()


def test_old_style_flavor_names_are_upgraded(tmp_path: Path) -> None:
    net = Krakencoder(ModelConfig(input_size_list=[4, 4], latentsize=2))
    f = save_checkpoint(tmp_path / "old.pt", checkpoint_dict(net, ["FCcov_fs86_hpf_FC", "fs86_ifod2act_volnorm"], {}))
    assert load_checkpoint(f).flavors == ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"]


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda d: d.pop("state_dict"), "state_dict"),
    (lambda d: d.pop("input_size_list"), "input_size_list"),
    (lambda d: d.__setitem__("input_name_list", ["only_one"]), "input_name_list"),
])
def test_incomplete_checkpoints(tmp_path: Path, mutate, match: str) -> None:  # type: ignore[no-untyped-def]
    net = Krakencoder(ModelConfig(input_size_list=[4, 4], latentsize=2))
    d = checkpoint_dict(net, ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"], {})
    mutate(d)
    f = tmp_path / "bad.pt"
    torch.save(d, f)
    with pytest.raises(CheckpointError, match=match) as ei:
        load_checkpoint(f)
    assert ei.value.hint


def test_weights_that_do_not_fit_the_declared_architecture(tmp_path: Path) -> None:
    net = Krakencoder(ModelConfig(input_size_list=[4, 4], latentsize=2))
    d = checkpoint_dict(net, ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"], {})
    d["latentsize"] = 3
    f = tmp_path / "bad.pt"
    torch.save(d, f)
    with pytest.raises(CheckpointError, match="shape"):  # from the numbers alone, before any model is built
        load_checkpoint(f)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("input_size_list", [10**9, 10**9], "expected"), ("latentsize", 10**9, "expected"),
    ("hiddenlayers", [10**9], "expected"), ("hiddenlayers", [-5], "positive"), ("latentsize", 0, "positive"),
    ("input_size_list", [-3, 4], "positive"),
])
def test_giant_or_negative_layer_sizes_are_refused_without_allocating(tmp_path: Path, key: str, value: object,
                                                                       message: str) -> None:
    net = Krakencoder(ModelConfig(input_size_list=[4, 4], latentsize=2))
    d = checkpoint_dict(net, ["FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm"], {})
    d[key] = value  # 10**9 x 10**9 weights would be 4 EB: only the meta device can lay that out
    f = tmp_path / "bad.pt"
    torch.save(d, f)
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(f)


def test_not_a_dict(tmp_path: Path) -> None:
    f = tmp_path / "t.pt"
    torch.save(torch.zeros(3), f)
    with pytest.raises(CheckpointError, match="not a checkpoint dict"):
        load_checkpoint(f)
