"""TrainConfig: the paper's defaults, validation, serialisation, dropout schedule."""

from __future__ import annotations

import pytest

from kraken_cli.engine.errors import SpecError
from kraken_cli.engine.losses import PAPER_RECIPE
from kraken_cli.engine.training import TrainConfig


def test_defaults_are_the_paper_recipe() -> None:
    c = TrainConfig()
    assert c.loss == PAPER_RECIPE
    assert (c.latent_size, c.latent_unit, c.dropout, c.lr, c.weight_decay, c.batch_size, c.epochs, c.seed) == \
        (128, True, 0.5, 1e-4, 0.01, 41, 2000, 0)
    assert c.paths == ("SCFC",) and c.transformation == "pca256" and not c.path_steps
    assert c.recipe.weight("mse") == 1000


def test_round_trip_and_replace() -> None:
    c = TrainConfig(hidden=[64, 32], dropout_schedule=[0.5, 0.0], epochs=10, loss="mse+enceye")
    d = c.to_dict()
    assert d["hidden"] == [64, 32] and "_recipe" not in d
    assert TrainConfig.from_dict(d) == c
    c2 = c.replace(epochs=20)
    assert c2.epochs == 20 and c2.recipe.as_dict() == {"mse": 1.0, "enceye": 10.0}


def test_dropout_schedule() -> None:
    c = TrainConfig(epochs=11, dropout_schedule=(0.5, 0.0))
    assert c.dropout_at(0) == 0.5 and c.dropout_at(10) == 0.0 and c.dropout_at(5) == pytest.approx(0.25)
    assert TrainConfig(dropout=0.3).dropout_at(7) == 0.3


@pytest.mark.parametrize("kw", [
    {"epochs": 0}, {"batch_size": 1}, {"dropout": 1.0}, {"dropout_schedule": (0.5, 1.2)}, {"lr": 0},
    {"weight_decay": -1}, {"latent_size": 0}, {"hidden": (0,)}, {"paths": ()}, {"loss": "nope"},
    {"val_frac": 1.0}, {"trainval_frac": 0}, {"strict": True}, {"resume": "a.pt", "start_from": "b.pt"},
    {"target_encoding": "t.mat", "strict": True, "path_steps": True}, {"fast_lr": -1.0},
    {"transformation": "bogus"}, {"transformation": "pca"}, {"paths": ("SCFX",)}, {"paths": ("A->",)},
])
def test_invalid_options(kw: dict) -> None:
    with pytest.raises(SpecError):
        TrainConfig(**kw)


def test_target_mode() -> None:
    assert TrainConfig().target_mode is None
    assert TrainConfig(target_encoding="t.mat").target_mode == "loose"
    assert TrainConfig(target_encoding="t.mat", strict=True).target_mode == "strict"
