"""train(): files and checkpoint layout, display metrics, resume (bit-exact), fine-tuning."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.datasets import make_cohort
from kraken_cli.engine.errors import FlavorError, TrainingError
from kraken_cli.engine.io.subjects import read_split_file
from kraken_cli.engine.training import DisplayEvent, TrainConfig, read_record, train

BASE = dict(transformation="pca8", latent_size=6, batch_size=8, display_every=5)


@pytest.fixture(scope="module")
def cohort():  # type: ignore[no-untyped-def]
    return make_cohort(60, n_regions=10, seed=0)


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_train_writes_the_original_layout(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    events: list[DisplayEvent] = []
    cfg = TrainConfig(epochs=6, checkpoint_every=3, output=str(tmp_path / "run" / "k"), **BASE)
    res = train(cohort.data, cfg, subjects=cohort.subjects, on_display=events.append, figures=False)
    assert [e.epoch for e in events] == [5, 6]
    assert set(events[-1].metrics) >= {"top1acc", "avgrank", "avgcorr_resid", "explainedvar"}
    assert events[-1].metrics["top1acc"].shape == (25,)
    assert [c.name[-11:] for c in res.checkpoints] == ["ep000003.pt", "ep000006.pt"]
    assert res.checkpoints[0].name.startswith("k_chkpt_SCFC_5flav_60subj_pc8_25paths_latent6_0layer_latentunit_drop0.5_6epoch")
    ck = load_checkpoint(res.checkpoints[-1])  # safe loader (weights_only)
    raw = ck.raw
    assert raw["epoch"] == 5 and raw["kraken_completed_epochs"] == 6 and ck.completed_epochs == 6
    assert raw["input_name_list"] == list(cohort.data)
    assert raw["trainpath_encoder_index_list"] == [i for i in range(5) for _ in range(5)]
    assert raw["trainpath_decoder_index_list"] == list(range(5)) * 5
    assert raw["input_transformation_info"] == "pc8" and raw["reduce_dimension"] == 8
    assert raw["orig_input_size_list"] == [45] * 5 and raw["dropout_schedule"] == [0.5, 0.5]
    assert raw["latent_normalize"] is True and raw["latentsize"] == 6
    tp = raw["training_params"]
    for key in ("subjects", "subjidx_train", "subjidx_val", "trainpath_names", "losstype", "learningrate",
                "batchsize", "nbepochs", "optimizer_name", "adam_decay", "command", "data_string",
                "network_string", "train_string", "recordfile", "saved_input_transformer_file",
                "target_encoding", "fixed_target_encoding", "total_parameter_count"):
        assert key in tp, key
    assert tp["mse_weight"] == 1000 and tp["latentsim_loss_weight"] == 10000  # effective weights
    for key in ("kraken_version", "kraken_seed", "kraken_optimizer_state", "kraken_rng_state"):
        assert key in raw
    model = ck.model()
    assert all(torch.equal(model.state_dict()[k], res.model.state_dict()[k]) for k in model.state_dict())
    # split, transforms, record and config JSON next to the checkpoints
    kinds = {p.name.split("_")[1] for p in (tmp_path / "run").iterdir()}
    assert kinds == {"chkpt", "ioxfm", "subjsplit", "trainrecord", "config"}
    split = read_split_file(res.files["subjsplit"])
    assert len(split.train) == 43 and len(split.val) == 5 and len(split.test) == 12
    rec = read_record(res.files["trainrecord"])
    assert rec["loss_train"].shape == (25, 6) and np.isfinite(rec["loss_train"]).all()
    assert np.isnan(rec["corrloss_OrigScale_val"][:, 0]).all() and np.isfinite(rec["corrloss_OrigScale_val"][:, 4]).all()


def test_train_leaves_global_rng_alone(cohort) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(123)
    np.random.seed(7)
    t_state, n_state = torch.random.get_rng_state(), np.random.get_state()
    res1 = train(cohort.data, TrainConfig(epochs=2, **BASE), subjects=cohort.subjects, figures=False)
    assert torch.equal(torch.random.get_rng_state(), t_state)
    assert np.array_equal(np.random.get_state()[1], n_state[1])
    torch.manual_seed(999)
    res2 = train(cohort.data, TrainConfig(epochs=2, **BASE), subjects=cohort.subjects, figures=False)
    assert all(torch.equal(v, res2.model.state_dict()[k]) for k, v in res1.model.state_dict().items())
    res3 = train(cohort.data, TrainConfig(epochs=2, seed=1, **BASE), subjects=cohort.subjects, figures=False)
    assert not torch.equal(res3.model.encoder_list[0][0].weight, res1.model.encoder_list[0][0].weight)


@pytest.mark.parametrize("path_steps", [False, True])
def test_resume_is_bit_exact(cohort, tmp_path: Path, path_steps: bool) -> None:  # type: ignore[no-untyped-def]
    kw = dict(BASE, path_steps=path_steps, paths=("SCFC",) if not path_steps else ("self", "FCcorr_fs86_hpf->SCifod2act_fs86_volnorm"))
    full = train(cohort.data, TrainConfig(epochs=12, checkpoint_every=6, output=str(tmp_path / "a" / "k"), **kw),
                 subjects=cohort.subjects, figures=False)
    half = train(cohort.data, TrainConfig(epochs=6, checkpoint_every=6, output=str(tmp_path / "b" / "k"), **kw),
                 subjects=cohort.subjects, figures=False)
    resumed = train(cohort.data, TrainConfig(epochs=12, checkpoint_every=6, resume=str(half.checkpoints[-1]), **kw),
                    subjects=cohort.subjects, figures=False)
    wa, wb = _weights(full.model), _weights(resumed.model)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert np.array_equal(full.record["loss_train"], resumed.record["loss_train"])
    a, b = full.record["corrloss_OrigScale_val"], resumed.record["corrloss_OrigScale_val"]
    shown = np.isfinite(a)  # the 6-epoch run also displayed at its own last epoch
    assert shown[:, [4, 9, 11]].all() and np.array_equal(a[shown], b[shown])
    assert resumed.checkpoints[-1].name.endswith("_ep000012.pt") and resumed.checkpoints[-1].parent.name == "b"
    # resuming the full run's intermediate checkpoint gives the same result too
    again = train(cohort.data, TrainConfig(epochs=12, resume=str(full.checkpoints[0]), **kw), subjects=cohort.subjects, figures=False)
    assert all(torch.equal(wa[k], v) for k, v in _weights(again.model).items())


def test_resume_errors(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    res = train(cohort.data, TrainConfig(epochs=2, output=str(tmp_path / "k"), **BASE), subjects=cohort.subjects, figures=False)
    with pytest.raises(TrainingError, match="already holds 2 epochs"):
        train(cohort.data, TrainConfig(epochs=2, resume=str(res.checkpoints[-1]), **BASE), subjects=cohort.subjects, figures=False)
    other = {k: v for k, v in list(cohort.data.items())[:3]}
    with pytest.raises(FlavorError):
        train(other, TrainConfig(epochs=4, resume=str(res.checkpoints[-1]), **BASE), subjects=cohort.subjects, figures=False)


def test_start_from_fine_tunes(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    base = train(cohort.data, TrainConfig(epochs=3, output=str(tmp_path / "a" / "k"), **BASE), subjects=cohort.subjects, figures=False)
    tuned = train(cohort.data, TrainConfig(epochs=2, start_from=str(base.checkpoints[-1]), dropout=0.2,
                                           latent_size=99, output=str(tmp_path / "b" / "k"), **{k: v for k, v in BASE.items() if k != "latent_size"}),
                  subjects=cohort.subjects, transforms=base.transforms, figures=False)
    assert tuned.model.config.latentsize == 6  # architecture from the checkpoint
    assert tuned.model.config.dropout == 0.2 and tuned.model.encoder_list[0][1].p == 0.2
    raw = load_checkpoint(tuned.checkpoints[-1]).raw
    assert raw["training_params"]["starting_point_file"].endswith("ep000003.pt")
    assert "ioxfm" not in tuned.files  # transforms were given, not fitted


def test_dropout_schedule_and_hidden_layers(cohort) -> None:  # type: ignore[no-untyped-def]
    cfg = TrainConfig(epochs=3, hidden=(7,), dropout_schedule=(0.5, 0.1), leaky_relu=0.1, **BASE)
    res = train(cohort.data, cfg, subjects=cohort.subjects, figures=False)
    assert res.model.config.hiddenlayers == [7]
    assert res.last_display is not None and np.isfinite(res.last_display.loss_train).all()


def test_edge_cases_single_flavor_no_validation_and_folder_output(cohort, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    one = {"FCcorr_fs86_hpf": cohort.data["FCcorr_fs86_hpf"]}
    res = train(one, TrainConfig(epochs=3, val_frac=0.0, output=str(tmp_path) + "/", **BASE),
                subjects=cohort.subjects, figures=False)
    assert res.path_names == ["FCcorr_fs86_hpf->FCcorr_fs86_hpf"] and len(res.split.val) == 0
    assert res.effective_lr == pytest.approx(1e-4)  # one path per parameter: the original's rate
    assert res.last_display is not None and np.isnan(res.last_display.metrics["top1acc"]).all()
    assert res.checkpoints[0].parent == tmp_path and res.checkpoints[0].name.startswith("kraken_chkpt_")


def test_explicit_path_subset(cohort) -> None:  # type: ignore[no-untyped-def]
    paths = ("FCcorr_fs86_hpf->SCifod2act_fs86_volnorm", "SCifod2act_fs86_volnorm->FCcorr_fs86_hpf")
    res = train(cohort.data, TrainConfig(epochs=3, paths=paths, **BASE), subjects=cohort.subjects, figures=False)
    assert res.path_names == [paths[0], paths[1]]
    assert res.record["loss_train"].shape == (2, 3)
    assert res.effective_lr == pytest.approx(1e-4)
