"""The add-a-flavor workflow (UPSTREAM 8.1, README "Adding a flavor"), end to end through the CLI.

1. ``kraken train`` a 5-flavor model on the conformance-P cohort with the reference split;
2. ``kraken run --fusion --only-fusion --outputs encoded``: the fusion latents of every subject;
3. ``kraken train`` an autoencoder for the new flavor ``SCifod2act_fs86_count`` toward those latents
   (``--target-encoding --target-name fusion --only-self``);
4. ``kraken merge`` the two checkpoints;
5. ``kraken run`` the merged model on the held-out test subjects: the count flavor predicted from the fusion of
   the 5 original flavors only (``--fusion-include``), evaluated against its truth.

Shortened to fit a test (< 60 s on 2 CPU cores): 150 epochs for the 5-flavor model, 300 epochs at learning rate
1e-3 for the one-path autoencoder (a single path trains at the original's per-path rate, 1e-4, so 300 epochs of
5 batches would leave it far from the target latents; the README's 2000 epochs get there too).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from kraken_cli.cli.app import app

pytestmark = pytest.mark.slow

runner = CliRunner()
FLAVORS = ["FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCsdstream_fs86_volnorm",
           "SCifod2act_fs86_volnorm"]
NEW = "SCifod2act_fs86_count"
CHANCE_TOP1 = 1 / 64  # 64 test subjects


def kraken(*args: str) -> Any:
    device = ["--device", "cpu"] if args[0] in ("train", "run") else []
    res = runner.invoke(app, [*args, *device], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    return res


def test_add_a_flavor_to_a_trained_latent_space(shared_dir: Path, tmp_path: Path) -> None:
    tools, p = shared_dir / "tools", shared_dir / "conformance" / "P"
    base_mat = shared_dir / "data" / "hcp_fs86_example" / "exampledata_10subj_fs86_inputs.mat"
    split = p / "reference_subjsplit.mat"
    for f in (tools / "synth_cohort.py", tools / "synth_count_flavor.py", base_mat, split):
        if not f.is_file():
            pytest.skip(f"{f} is not available")
    t0 = time.perf_counter()
    cohort = tmp_path / "C"
    subprocess.run([sys.executable, str(tools / "synth_cohort.py"), "--out", str(cohort), "--subjects", "320",
                    "--seed", "1", "--base", str(base_mat)], check=True, capture_output=True)
    subprocess.run([sys.executable, str(tools / "synth_count_flavor.py"), str(cohort / "SCifod2act_fs86_volnorm.mat"),
                    str(cohort / f"{NEW}.mat")], check=True, capture_output=True)
    inputs: list[str] = []
    for f in FLAVORS:
        inputs += ["-i", f"{f}={cohort / f'{f}.mat'}"]
    new_input = ["-i", f"{NEW}={cohort / f'{NEW}.mat'}"]
    arch = ["--split-file", str(split), "--transformation", "pca64", "--latent-size", "32", "--checkpoint-every", "0"]

    # 1. the 5-flavor model
    base = json.loads(kraken("train", *inputs, *arch, "--epochs", "150", "--display-every", "150",
                             "-o", str(tmp_path / "base") + "/", "--json").stdout)
    base_ckpt, base_xfm = base["checkpoints"][-1], base["files"]["ioxfm"]

    # 2. fusion latents of every subject (the transform is found beside the checkpoint)
    latents = tmp_path / "latents" / "fusion_encoded.mat"
    kraken("run", "-c", base_ckpt, *inputs, "--fusion", "--only-fusion", "--outputs", "encoded", "-o", str(latents),
           "-q")
    held = scipy.io.loadmat(latents, simplify_cells=True)
    assert len(held["subjects"]) == 320  # a target file must hold its subjects
    assert held["predicted_alltypes"]["fusion"]["encoded"].shape == (320, 32)

    # 3. an autoencoder for the new flavor, trained toward the fusion latents
    count = json.loads(kraken("train", *new_input, "--target-encoding", str(latents), "--target-name", "fusion",
                              "--only-self", *arch, "--epochs", "300", "--lr", "1e-3", "--display-every", "300",
                              "-o", str(tmp_path / "count") + "/", "--json").stdout)
    assert count["paths"] == 1 and count["flavors"] == [NEW]
    count_ckpt, count_xfm = count["checkpoints"][-1], count["files"]["ioxfm"]

    # 4. merge
    merged = tmp_path / "merged.pt"
    kraken("merge", base_ckpt, count_ckpt, "-o", str(merged), "-q")

    # 5. the new flavor predicted from the fusion of the 5 original flavors, on the held-out test subjects
    res = kraken("run", "-c", str(merged), "-t", base_xfm, "-t", count_xfm, *inputs, *new_input,
                 "--split-file", str(split), "--split", "test", "--fusion", "--only-fusion",
                 "--fusion-include", "fusion=" + ",".join(FLAVORS), "--outputs", NEW, "--evaluate", "--json")
    report = json.loads(res.stdout)
    assert report["n_subjects"] == 64 and report["plan_sources"] == ["fusion"]
    (m,) = [m for m in report["metrics"] if m["source"] == "fusion" and m["target"] == NEW]
    seconds = time.perf_counter() - t0
    print(f"\nadd-a-flavor: fusion(5 flavors) -> {NEW} on 64 test subjects: top1 {m['top1acc']:.3f} "
          f"(chance {CHANCE_TOP1:.3f}), avgrank {m['avgrank']:.3f}, demeaned corr {m['avgcorr_resid']:.3f}; "
          f"base model validation top1 {base['validation']['top1acc']:.3f}; workflow {seconds:.1f} s")
    assert m["top1acc"] > 0.1, m
    assert m["avgrank"] > 0.7, m
    assert m["avgcorr_resid"] > 0.1, m
    assert np.isfinite(m["avgcorr"])
