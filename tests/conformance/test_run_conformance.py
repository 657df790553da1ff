"""`kraken run` reproduces every prediction file the original wrote (COMMANDS.md of conformance/P)."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from .conftest import assert_same_predictions

ALL = ("-i FCcorr_fs86_hpf=inputs/FCcorr_fs86_hpf.mat -i FCcorr_fs86_hpfgsr=inputs/FCcorr_fs86_hpfgsr.mat "
       "-i FCpcorr_fs86_hpf=inputs/FCpcorr_fs86_hpf.mat -i SCsdstream_fs86_volnorm=inputs/SCsdstream_fs86_volnorm.mat "
       "-i SCifod2act_fs86_volnorm=inputs/SCifod2act_fs86_volnorm.mat")
M = "-c model.pt -t model_ioxfm.npy"
FLAVORS = ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCifod2act_fs86_volnorm",
           "SCsdstream_fs86_volnorm"]

CASES = {
    "m1": (f"{M} {ALL} --adapt meanfit+meanshift --fusion --fusion-include fusion=all --fusion-include fusionSC=SC "
           "--fusion-include fusionFC=FC --only-fusion --outputs all -o OUT/m1_adapt_fusion.{input}.mat",
           ["m1_adapt_fusion.fusion", "m1_adapt_fusion.fusionSC", "m1_adapt_fusion.fusionFC"]),
    "m2": (f"{M} {ALL} --fusion --outputs encoded -o OUT/m2_encoded.{{output}}.mat", ["m2_encoded.encoded"]),
    "m3": (f"{M} {ALL} --outputs all -o OUT/m3_paths.{{input}}.mat", [f"m3_paths.{f}" for f in FLAVORS]),
    "m6": (f"{M} {ALL} --fusion --only-fusion --adapt meanfit+meanshift --outputs encoded "
           "-o OUT/m6_fusion_adapt.{output}.mat", ["m6_fusion_adapt.encoded"]),
    "m4": (f"{M} -i encoded=expected/m6_fusion_adapt.encoded.mat --outputs all -o OUT/m4_from_encoded.{{input}}.mat",
           ["m4_from_encoded.encoded"]),
    "m5": (f"{M} -i FCcorr_fs86_hpf=inputs/FCcorr_fs86_hpf.mat -i SCifod2act_fs86_volnorm=inputs/SCifod2act_fs86_volnorm.mat"
           " --adapt meanshift --fusion --fusion-noself --outputs all -o OUT/m5_meanshift_noself.{input}.mat",
           [f"m5_meanshift_noself.{x}" for x in ("FCcorr_fs86_hpf", "SCifod2act_fs86_volnorm", "fusion",
                                                 "fusion.noself")]),
    "m7": (f"{M} {ALL} --outputs SCifod2act_fs86_volnorm --outputs FCcorr_fs86_hpf --square "
           "-o OUT/m7_square.{input}.mat", [f"m7_square.{f}" for f in FLAVORS]),
    "m8": ("-c expected/merged_model.pt -t model_ioxfm.npy -t newflavor_ioxfm.npy "
           "-i SCifod2act_fs86_count=inputs/SCifod2act_fs86_count.mat -i FCcorr_fs86_hpf=inputs/FCcorr_fs86_hpf.mat "
           "--fusion --outputs all -o OUT/m8_merged.{input}.mat",
           ["m8_merged.SCifod2act_fs86_count", "m8_merged.FCcorr_fs86_hpf", "m8_merged.fusion"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_run_matches_original(case: str, conf_dir: Path, tmp_path: Path) -> None:
    command, expected = CASES[case]
    args = ["run", "--device", "cpu", "-q", *shlex.split(command.replace("OUT/", f"{tmp_path}/"))]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for name in expected:
        assert_same_predictions(tmp_path / f"{name}.mat", conf_dir / "expected" / f"{name}.mat")


def test_tensor_transforms_give_identical_results(conf_dir: Path, tmp_path: Path) -> None:
    """Older transform files hold torch tensors inside the pickled dict: same numbers."""
    cmd = f"-c model.pt -t model_ioxfm_tensors.npy {ALL} --outputs all -o {tmp_path}/t.{{input}}.mat"
    result = CliRunner().invoke(app, ["run", "-q", "--device", "cpu", *shlex.split(cmd)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    for f in FLAVORS:
        assert_same_predictions(tmp_path / f"t.{f}.mat", conf_dir / "expected" / f"m3_paths.{f}.mat")


def test_merge_reproduces_expected_weights(conf_dir: Path, tmp_path: Path) -> None:
    import torch

    from kraken_cli.engine.checkpoint import torch_load_safe

    out = tmp_path / "merged_model.pt"
    result = CliRunner().invoke(app, ["merge", "model.pt", "newflavor_model.pt", "-o", str(out), "-q"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    ours = torch_load_safe(out)
    ref = torch_load_safe(conf_dir / "expected" / "merged_model.pt")
    assert ours["input_name_list"] == ref["input_name_list"]
    assert set(ours["state_dict"]) == set(ref["state_dict"])
    for k, v in ref["state_dict"].items():
        assert torch.equal(ours["state_dict"][k], v), k
    assert ours["latent_activation"] == "none" and ours["input_transformation_info"] == "pc64"
