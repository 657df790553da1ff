"""``kraken train`` through CliRunner: options -> engine, files under the ``-o`` prefix, resume, errors.

Every run is tiny (3 flavors of a 12-region toy atlas, 60 subjects, PCA-8, latent 4, a few epochs), so a
training run costs well under two seconds, figures included.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from kraken_cli.cli.app import app
from kraken_cli.engine.checkpoint import load_checkpoint
from kraken_cli.engine.datasets import make_cohort
from kraken_cli.engine.io.subjects import SubjectSplit, read_split_file, write_split_file
from kraken_cli.engine.losses import valid_loss_names

from ..helpers import files_in

runner = CliRunner()

FCC, FCP, SCI = "FCcorr_toy12_hpf", "FCpcorr_toy12_hpf", "SCifod2act_toy12_volnorm"
GROUPS = {FCC: "FC", FCP: "FC", SCI: "SC"}
#: The options every run here shares (small and fast; two batches per epoch).
COMMON = ["--transformation", "pca8", "--latent-size", "4", "--batch-size", "16", "--display-every", "5",
          "--checkpoint-every", "5", "--device", "cpu"]

#: UPSTREAM 2.5: the keys ``save_checkpoint`` writes, then the ones ``train_network`` adds.
SAVE_KEYS = {"state_dict", "krakencoder_version", "input_size_list", "latentsize", "hiddenlayers", "skip_relu",
             "dropout", "leakyrelu_negative_slope", "relu_tanh_alternate", "latent_activation", "latent_normalize",
             "linear_include_bias", "no_bias_for_outer_layers", "dropout_final_layer", "dropout_final_layer_list",
             "intergroup", "intergroup_layers", "intergroup_inputgroup_list", "intergroup_transform_index_dict",
             "intergroup_relu", "intergroup_dropout", "adversarial_boolean_list"}
NETWORK_KEYS = {"epoch", "reduce_dimension", "use_truncated_svd", "input_transformation_info", "use_lognorm_for_sc",
                "use_truncated_svd_for_sc", "orig_input_size_list", "leave_data_alone", "skip_selfs", "input_name_list",
                "trainpath_encoder_index_list", "trainpath_decoder_index_list", "dropout_schedule", "training_params"}
TRAINING_PARAMS = {"subjects", "subjidx_train", "subjidx_val", "trainpath_names", "losstype", "learningrate",
                   "batchsize", "nbepochs", "optimizer_name", "adam_decay", "command", "command_args", "data_string",
                   "network_string", "train_string", "recordfile", "saved_input_transformer_file", "target_encoding",
                   "fixed_target_encoding", "total_parameter_count", "environment_string"}


# -- fixtures -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("train_cli_data")
    make_cohort(60, n_regions=12, atlas="toy12", flavors=list(GROUPS), seed=3).write(d)
    return d


@pytest.fixture(scope="module")
def inputs(data_dir: Path) -> list[str]:
    """``-i FLAVOR@GROUP=PATH`` for the three toy flavors (an unknown atlas needs the group)."""
    args: list[str] = []
    for f, g in GROUPS.items():
        args += ["-i", f"{f}@{g}={data_dir / f'{f}.mat'}"]
    return args


def train(*args: str) -> Any:
    """``kraken train`` that must succeed (tracebacks surface)."""
    res = runner.invoke(app, ["train", *args], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def train_json(*args: str) -> dict[str, Any]:
    return json.loads(train(*args, "--json").stdout)


def state_dict(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(checkpoint).raw["state_dict"]


def assert_same_weights(a: str | Path, b: str | Path) -> None:
    sa, sb = state_dict(a), state_dict(b)
    assert list(sa) == list(sb)
    for k in sa:
        assert torch.equal(sa[k], sb[k]), f"{k} differs: max |diff| {float((sa[k] - sb[k]).abs().max())}"


@pytest.fixture
def no_figures(monkeypatch: pytest.MonkeyPatch) -> None:
    """Skip the training figures (about 2 s per run) in tests that do not look at them."""
    from kraken_cli.engine.training import loop

    monkeypatch.setattr(loop, "_figures", lambda setup: {})


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, inputs: list[str]) -> dict[str, Any]:
    """10 epochs, checkpoints every 5, ``--json`` report (plus the folder it wrote into)."""
    root = tmp_path_factory.mktemp("train_cli_base")
    report = train_json(*inputs, *COMMON, "--epochs", "10", "-o", str(root / "run" / "k"))
    report["root"] = root
    return report


# -- the files of a run -----------------------------------------------------------------------------------------------

def test_json_report(base: dict[str, Any]) -> None:
    assert base["flavors"] == list(GROUPS)
    assert base["paths"] == 9 and base["epochs"] == 10
    assert base["seconds"] >= 0 and base["seconds_per_epoch"] >= 0
    assert set(base["validation"]) >= {"top1acc", "avgrank", "avgcorr_resid"}
    assert 0 <= base["validation"]["top1acc"] <= 1


def test_every_file_is_written_under_the_prefix(base: dict[str, Any]) -> None:
    files = base["files"]
    assert set(files) == {"ioxfm", "subjsplit", "trainrecord", "log", "loss", "heatmap", "config"}
    prefix = str(base["root"] / "run" / "k")
    written = [*files.values(), *base["checkpoints"]]
    for kind, f in files.items():
        assert Path(f).name.startswith(f"k_{kind}_"), f
    ext = {"ioxfm": ".npy", "subjsplit": ".mat", "trainrecord": ".mat", "log": ".txt", "loss": ".png",
           "heatmap": ".png", "config": ".json"}
    for kind, suffix in ext.items():
        assert files[kind].endswith(suffix)
    for f in written:
        assert f.startswith(prefix + "_") and Path(f).is_file() and Path(f).stat().st_size > 0, f
    for png in (files["loss"], files["heatmap"]):
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # nothing else, and no temporary files left behind
    assert files_in(base["root"]) == {str(Path(f).relative_to(base["root"])) for f in written}
    log = Path(files["log"]).read_text()
    assert log.startswith("kraken ") and "epoch 10/10" in log


def test_the_recorded_command_is_the_one_given(base: dict[str, Any], inputs: list[str]) -> None:
    """Log, record and checkpoint hold the parsed command line (long option names), not the host's argv."""
    import shlex

    log_cmd = shlex.split(Path(base["files"]["log"]).read_text().splitlines()[0])
    assert log_cmd[:2] == ["kraken", "train"]
    given = [*inputs, *COMMON, "--epochs", "10", "-o", str(base["root"] / "run" / "k"), "--json"]
    long = {"-i": "--input", "-o": "--output"}
    assert sorted(log_cmd[2:]) == sorted(long.get(a, a) for a in given)
    params = load_checkpoint(base["checkpoints"][-1]).raw["training_params"]
    assert shlex.split(params["command"]) == log_cmd and list(params["command_args"]) == log_cmd


def test_a_python_api_run_says_so(tmp_path: Path, data_dir: Path, no_figures: None) -> None:
    from kraken_cli.engine.training import TrainConfig
    from kraken_cli.engine.training._outputs import API_COMMAND
    from kraken_cli.engine.training.session import train_from_inputs

    config = TrainConfig(transformation="pca8", latent_size=4, batch_size=16, epochs=2, display_every=1,
                         checkpoint_every=2, output=str(tmp_path / "api"))
    result = train_from_inputs([f"{f}@{g}={data_dir / f'{f}.mat'}" for f, g in GROUPS.items()], config,
                               device="cpu")
    assert Path(result.files["log"]).read_text().splitlines()[0] == API_COMMAND
    params = load_checkpoint(result.checkpoints[-1]).raw["training_params"]
    assert params["command"] == API_COMMAND and not params["command_args"]


def test_config_json_lists_the_run(base: dict[str, Any]) -> None:
    cfg = json.loads(Path(base["files"]["config"]).read_text())
    assert cfg["checkpoint_final"] == base["checkpoints"][-1]
    assert cfg["checkpointlist"] == base["checkpoints"]
    assert cfg["epoch_suffix_list"] == ["_ep000005", "_ep000010"]
    assert [Path(p).resolve() for p in cfg["ioxfm"]] == [Path(base["files"]["ioxfm"]).resolve()]
    assert cfg["recordfile"] == base["files"]["trainrecord"]


def test_checkpoint_names_count_completed_epochs(base: dict[str, Any]) -> None:
    first, final = base["checkpoints"]
    assert first.endswith("_ep000005.pt") and final.endswith("_ep000010.pt")
    for f, done in ((first, 5), (final, 10)):
        raw = load_checkpoint(f).raw
        assert raw["epoch"] == done - 1  # the original's 0-based key
        assert raw["kraken_completed_epochs"] == done


def test_checkpoint_has_the_original_keys(base: dict[str, Any]) -> None:
    ck = load_checkpoint(base["checkpoints"][-1])
    raw = ck.raw
    assert SAVE_KEYS | NETWORK_KEYS <= set(raw), (SAVE_KEYS | NETWORK_KEYS) - set(raw)
    assert TRAINING_PARAMS <= set(raw["training_params"]), TRAINING_PARAMS - set(raw["training_params"])
    assert raw["krakencoder_version"] == "1.0.0 (2024-04-07)"
    assert raw["input_name_list"] == list(GROUPS)
    assert raw["input_size_list"] == [8, 8, 8] and raw["orig_input_size_list"] == [66, 66, 66]
    assert raw["latentsize"] == 4 and raw["latent_normalize"] is True and raw["latent_activation"] == "none"
    assert raw["reduce_dimension"] == 8 and raw["input_transformation_info"] == "pc8"
    assert len(raw["trainpath_encoder_index_list"]) == 9
    tp = raw["training_params"]
    assert tp["nbepochs"] == 10 and tp["batchsize"] == 16 and tp["optimizer_name"] == "adamw"
    assert [str(s) for s in tp["subjects"]] == [f"sub{i:04d}" for i in range(60)]
    assert Path(base["files"]["ioxfm"]).name == tp["saved_input_transformer_file"]
    assert raw["kraken_seed"] == 0 and "kraken_version" in raw
    # kraken's own metadata lives under kraken_* keys only; every state_dict value is a float32 tensor
    assert all(v.dtype == torch.float32 for v in raw["state_dict"].values())


def test_describe_and_run_load_the_trained_checkpoint(base: dict[str, Any], inputs: list[str],
                                                      tmp_path: Path) -> None:
    final = base["checkpoints"][-1]
    res = runner.invoke(app, ["describe", final, "--json"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    desc = json.loads(res.stdout)
    assert desc["completed_epochs"] == 10 and desc["epoch_key"] == 9
    assert [f["name"] for f in desc["flavors"]] == list(GROUPS)

    # no -t: the transform file is found by the naming rule next to the checkpoint
    out = tmp_path / "pred" / "{input}.mat"
    res = runner.invoke(app, ["run", "-c", final, *inputs, "--fusion", "--outputs", "all", "-o", str(out), "--json",
                              "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    report = json.loads(res.stdout)
    assert report["n_subjects"] == 60
    assert sorted(Path(f).name for f in report["files"]) == sorted(f"{s}.mat" for s in [*GROUPS, "fusion"])

    # the same as giving the transform file explicitly
    import scipy.io

    out2 = tmp_path / "pred2" / "{input}.mat"
    res = runner.invoke(app, ["run", "-c", final, "-t", base["files"]["ioxfm"], *inputs, "--fusion",
                              "--outputs", "all", "-o", str(out2), "-q", "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    a = scipy.io.loadmat(str(out).format(input="fusion"), simplify_cells=True)["predicted_alltypes"]
    b = scipy.io.loadmat(str(out2).format(input="fusion"), simplify_cells=True)["predicted_alltypes"]
    for f in GROUPS:
        np.testing.assert_array_equal(a["fusion"][f], b["fusion"][f])


# -- output modes ----------------------------------------------------------------------------------------------------

def _random_split(ids: list[str], seed: int) -> SubjectSplit:
    order = np.random.default_rng(seed).permutation(len(ids))
    shuffled = [ids[i] for i in order]  # the file lists subjects in another order than the inputs
    idx = np.random.default_rng(seed + 1).permutation(len(ids))
    return SubjectSplit(shuffled, idx[:40], idx[40:48], idx[48:])


def test_quiet_prints_only_the_checkpoint_and_split_file_is_honoured(inputs: list[str], tmp_path: Path,
                                                                     no_figures: None) -> None:
    ids = [f"sub{i:04d}" for i in range(60)]
    given = _random_split(ids, seed=11)
    write_split_file(tmp_path / "split.mat", given)
    res = train(*inputs, *COMMON, "--checkpoint-every", "0", "--epochs", "3", "--split-file",
                str(tmp_path / "split.mat"), "-q", "-o", str(tmp_path / "q" / "k"))
    lines = res.stdout.splitlines()
    assert len(lines) == 1 and lines[0].endswith("_ep000003.pt") and Path(lines[0]).is_file(), res.stdout
    assert "Written" not in res.output and "Trained" not in res.stderr

    saved_file = next((tmp_path / "q").glob("k_subjsplit_*.mat"))
    saved = read_split_file(saved_file)
    for part in ("train", "val", "test"):
        assert {saved.subjects[i] for i in getattr(saved, part)} == \
            {given.subjects[i] for i in getattr(given, part)}, part
    tp = load_checkpoint(lines[0]).training_params
    assert tp["numsubjects_train"] == 40 and tp["numsubjects_val"] == 8


def test_precomputed_transforms_are_used_not_refitted(base: dict[str, Any], inputs: list[str],
                                                      tmp_path: Path, no_figures: None) -> None:
    ioxfm = base["files"]["ioxfm"]
    # --transformation pca6 would be fitted if the given pca8 transforms were ignored
    report = train_json(*inputs, *COMMON, "-t", ioxfm, "--transformation", "pca6", "--epochs", "2",
                        "-o", str(tmp_path / "pre" / "k"))
    assert "ioxfm" not in report["files"]
    assert not list((tmp_path / "pre").glob("*_ioxfm_*"))
    raw = load_checkpoint(report["checkpoints"][-1]).raw
    assert raw["input_size_list"] == [8, 8, 8]
    assert raw["input_transformation_info"] == "pc8"
    assert raw["training_params"]["saved_input_transformer_file"] == ""
    # the checkpoint runs with the given transform file
    res = runner.invoke(app, ["run", "-c", report["checkpoints"][-1], "-t", ioxfm, *inputs, "--outputs", "encoded",
                              "-o", str(tmp_path / "enc.mat"), "-q", "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def test_partly_precomputed_transforms(base: dict[str, Any], inputs: list[str], tmp_path: Path,
                                       no_figures: None) -> None:
    """Transforms given for two flavors are used as they are; only the third is fitted and saved."""
    from kraken_cli.engine.transforms.files import load_transforms, save_transforms

    given = load_transforms([base["files"]["ioxfm"]])
    two = save_transforms(tmp_path / "two_ioxfm.npy", {FCC: given[FCC], SCI: given[SCI]})
    report = train_json(*inputs, *COMMON, "-t", str(two), "--transformation", "pca5", "--epochs", "2",
                        "-o", str(tmp_path / "part" / "k"))
    fitted = load_transforms([report["files"]["ioxfm"]])
    assert list(fitted) == [FCP] and fitted[FCP].n_features_out_ == 5
    raw = load_checkpoint(report["checkpoints"][-1]).raw
    assert raw["input_size_list"] == [8, 5, 8]
    # predictions need both files: the given transforms and the one fitted by the run
    out = tmp_path / "p.mat"
    res = runner.invoke(app, ["run", "-c", report["checkpoints"][-1], "-t", str(two), "-t", report["files"]["ioxfm"],
                              *inputs, "--outputs", "encoded", "-o", str(out), "-q", "--device", "cpu"],
                        catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert out.is_file()


def test_resume_continues_to_the_same_weights(base: dict[str, Any], inputs: list[str], tmp_path: Path,
                                              no_figures: None) -> None:
    ten = base["checkpoints"][-1]
    resumed = train_json(*inputs, *COMMON, "--resume", ten, "--epochs", "20", "-o", str(tmp_path / "res" / "k"))
    straight = train_json(*inputs, *COMMON, "--epochs", "20", "-o", str(tmp_path / "straight" / "k"))
    assert resumed["epochs"] == 20 and resumed["checkpoints"][-1].endswith("_ep000020.pt")
    assert_same_weights(resumed["checkpoints"][-1], straight["checkpoints"][-1])
    raw = load_checkpoint(resumed["checkpoints"][-1]).raw
    assert raw["epoch"] == 19 and raw["kraken_completed_epochs"] == 20
    # the history of the first 10 epochs is carried over
    hist = raw["kraken_history"]["loss_train"]
    ref = load_checkpoint(straight["checkpoints"][-1]).raw["kraken_history"]["loss_train"]
    torch.testing.assert_close(hist, ref, rtol=0, atol=0)


def test_resume_without_output_writes_beside_the_resumed_checkpoint(base: dict[str, Any], inputs: list[str],
                                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    no_figures: None) -> None:
    import shutil

    run = tmp_path / "moved"  # a copy of the run (a resumed run rewrites its record, log and figures)
    shutil.copytree(base["root"] / "run", run)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)  # nothing may land in the working folder
    first = run / Path(base["checkpoints"][0]).name
    report = train_json(*inputs, *COMMON, "--resume", str(first), "--epochs", "7")
    final = Path(report["checkpoints"][-1])
    assert final.parent == run
    assert final.name.startswith("k_chkpt_") and final.name.endswith("_ep000007.pt")
    assert files_in(work) == set()
    # beside its transform file, so `kraken run` finds it by the naming rule
    res = runner.invoke(app, ["run", "-c", str(final), *inputs, "--outputs", "encoded", "-o", str(tmp_path / "e.mat"),
                              "-q", "--device", "cpu"], catch_exceptions=False)
    assert res.exit_code == 0, res.output


def test_resume_alone_takes_the_stored_inputs_and_options(base: dict[str, Any], tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch, no_figures: None) -> None:
    """No -i, no --epochs: the run's recorded inputs (absolute paths) and its own options, to its own end."""
    monkeypatch.chdir(tmp_path)
    report = train_json("--resume", base["checkpoints"][0], "-o", str(tmp_path / "r" / "k"))
    assert report["epochs"] == 10 and report["checkpoints"][-1].endswith("_ep000010.pt")
    assert_same_weights(report["checkpoints"][-1], base["checkpoints"][-1])
    log = Path(report["files"]["log"]).read_text().splitlines()
    assert [ln.split()[1] for ln in log if ln.startswith("epoch ")] == ["5/10", "10/10"]
    assert log[1].startswith("threads: "), "the thread choice is logged once, before the epochs"
    log = [ln for ln in log if not ln.startswith("threads: ")]
    assert log[0].startswith("kraken train --input") and log[1].startswith("epoch 5/10")
    assert log[2].startswith("resumed at epoch 5: kraken train ") and " --resume " in log[2] and "--input" not in log[2]


def test_resume_reports_changed_options_and_refuses_architecture_changes(base: dict[str, Any], tmp_path: Path,
                                                                        no_figures: None) -> None:
    ck = base["checkpoints"][0]
    res = runner.invoke(app, ["train", "--resume", ck, "--lr", "0.001", "-o", str(tmp_path / "lr" / "k")])
    assert res.exit_code == 0, res.output
    assert "resuming with --lr 0.001 (the run had 0.0001)" in " ".join(res.stderr.split())
    assert load_checkpoint(json.loads(train("--resume", ck, "--lr", "0.001", "--json", "-o",
                                            str(tmp_path / "lr2" / "k")).stdout)["checkpoints"][-1]
                           ).raw["kraken_train_config"]["lr"] == 0.001
    for opt in (["--latent-size", "16"], ["--transformation", "pca4"], ["--no-latent-unit"]):
        out = tmp_path / "arch" / "k"
        res = runner.invoke(app, ["train", "--resume", ck, *opt, "-o", str(out)])
        assert res.exit_code == 2, res.output
        text = " ".join(res.stderr.split())
        assert f"{opt[0].split('/')[0].replace('--no-', '--')}" in text.replace("--no-", "--")
        assert "cannot change when resuming" in text and "--start-from" in text
        assert not out.parent.exists()


def test_start_from_fine_tunes(base: dict[str, Any], inputs: list[str], tmp_path: Path,
                              no_figures: None) -> None:
    start = base["checkpoints"][-1]
    report = train_json(*inputs, *COMMON, "--start-from", start, "-t", base["files"]["ioxfm"], "--epochs", "3",
                        "-o", str(tmp_path / "ft" / "k"))
    final = report["checkpoints"][-1]
    raw = load_checkpoint(final).raw
    assert raw["kraken_completed_epochs"] == 3 and final.endswith("_ep000003.pt")
    assert raw["training_params"]["starting_point_file"] == start
    assert raw["training_params"]["starting_point_epoch"] == 9
    assert raw["input_name_list"] == list(GROUPS)
    a, b = state_dict(start), state_dict(final)
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    assert any(not torch.equal(a[k], b[k]) for k in a), "fine-tuning changed nothing"


def test_path_steps_runs_the_original_schedule(inputs: list[str], tmp_path: Path, no_figures: None) -> None:
    report = train_json(*inputs, *COMMON, "--path-steps", "--epochs", "2", "-o", str(tmp_path / "ps" / "k"))
    tp = load_checkpoint(report["checkpoints"][-1]).training_params
    assert tp["kraken_trainer"] == "path-steps"
    assert report["epochs"] == 2


@pytest.mark.parametrize(("paths", "expected"), [
    ("self", {(f, f) for f in GROUPS}),
    ("SC2FC", {(a, b) for a in GROUPS for b in GROUPS} - {(FCC, SCI), (FCP, SCI)}),
])
def test_path_sets(inputs: list[str], tmp_path: Path, paths: str, expected: set[tuple[str, str]],
                   no_figures: None) -> None:
    report = train_json(*inputs, *COMMON, "--paths", paths, "--epochs", "1", "-o", str(tmp_path / "p" / "k"))
    assert report["paths"] == len(expected)
    ck = load_checkpoint(report["checkpoints"][-1])
    assert set(ck.trained_paths) == expected


# -- errors ----------------------------------------------------------------------------------------------------------

def test_unknown_loss_term_lists_the_valid_names(inputs: list[str], tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", *inputs, "--loss", "correye+bogus.w3", "-o", str(tmp_path / "x" / "k")])
    assert res.exit_code == 2, res.output
    assert "bogus" in res.stderr
    flat = "".join(res.stderr.split())
    for name in valid_loss_names():
        assert name in flat, name
    assert res.stdout == "" and files_in(tmp_path) == set()


def test_resume_and_start_from_conflict(base: dict[str, Any], inputs: list[str], tmp_path: Path) -> None:
    ck = base["checkpoints"][-1]
    res = runner.invoke(app, ["train", *inputs, "--resume", ck, "--start-from", ck, "-o", str(tmp_path / "x" / "k")])
    assert res.exit_code == 2, res.output
    assert "--resume" in res.stderr and "--start-from" in res.stderr
    assert files_in(tmp_path) == set()


def test_no_inputs(tmp_path: Path) -> None:
    res = runner.invoke(app, ["train", "-o", str(tmp_path / "x" / "k")])
    assert res.exit_code == 2, res.output  # SpecError: a usage error
    assert "Error:" in res.stderr and "no inputs" in res.stderr and "-i FLAVOR=PATH" in res.stderr
    assert "Traceback" not in res.output
    assert files_in(tmp_path) == set()
