"""The benchmarks' ``--original DIR`` path, with a stand-in for the original's scripts (it is not part of this project).

The stand-ins record their command line and write the files the original would, so the harness is
exercised end to end: it finds the scripts, runs them with this Python alternating with kraken, checks
their outputs, and computes the ratios from what it measured.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"

FAKE_RUN_MODEL = '''
import json, os, sys, time
from pathlib import Path
args = sys.argv[1:]
log = Path(__file__).with_name("calls.jsonl")
with open(log, "a") as fh:
    fh.write(json.dumps({"script": "run_model.py", "argv": args}) + "\\n")
out = args[args.index("--output") + 1]
i = args.index("--inputdata") + 1
names = []
while i < len(args) and not args[i].startswith("--"):
    names.append(args[i].split("=")[0])
    i += 1
if "--fusion" in args:
    names.append("fusion")
for n in names:
    Path(out.replace("{input}", n)).write_bytes(b"MATLAB 5.0" + b"\\0" * 1000)
time.sleep(0.2)
'''

FAKE_RUN_TRAINING = '''
import json, sys, time
from pathlib import Path
args = sys.argv[1:]
with open(Path(__file__).with_name("calls.jsonl"), "a") as fh:
    fh.write(json.dumps({"script": "run_training.py", "argv": args}) + "\\n")
prefix = args[args.index("--outputprefix") + 1]
Path(prefix + "_log_fake.txt").write_text("fake")
time.sleep(0.2)
'''


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def original(tmp_path: Path) -> Path:
    root = tmp_path / "krakencoder"
    root.mkdir()
    (root / "run_model.py").write_text(FAKE_RUN_MODEL)
    (root / "run_training.py").write_text(FAKE_RUN_TRAINING)
    return root


def _calls(root: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (root / "calls.jsonl").read_text().splitlines()]


def test_run_speed_runs_the_original_alternately_and_computes_the_ratio(
        original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("run_speed")
    measured = bench.main(["--subjects", "12", "--repeat", "2", "--original", str(original),
                           "--workdir", str(tmp_path / "w")])
    assert list(measured) == ["kraken run", "original run_model.py"]
    assert all(len(runs) == 2 for runs in measured.values())
    calls = _calls(original)
    assert len(calls) == 2
    argv = calls[0]["argv"]
    assert isinstance(argv, list)
    for option in ("--checkpoint", "--inputxform", "--inputdata", "--fusion", "--outputname", "--output"):
        assert option in argv
    assert argv[argv.index("--outputname") + 1] == "all"
    assert sum(a.startswith(("FC", "SC")) and "=" in a for a in argv) == 5
    text = capsys.readouterr().out
    k = min(m[0] for m in measured["kraken run"])
    o = min(m[0] for m in measured["original run_model.py"])
    assert f"Speed-up (original best / kraken best): {o / k:.2f}x" in text
    assert "round 1: kraken run" in text and "round 1: original run_model.py" in text
    order = [line.split(": ")[1] for line in text.splitlines() if line.startswith("round ")]
    assert order == ["kraken run", "original run_model.py"] * 2  # alternating
    assert "load average" in text and "CPU cores" in text
    assert "not run" not in text


def test_run_speed_without_the_original_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("run_speed")
    measured = bench.main(["--subjects", "12", "--repeat", "1", "--workdir", str(tmp_path / "w")])
    assert list(measured) == ["kraken run"]
    text = capsys.readouterr().out
    assert "original Krakencoder: not run" in text and "Speed-up" not in text


@pytest.mark.parametrize("bench_name", ["run_speed", "train_speed", "paper_scale"])
def test_a_folder_without_the_scripts_is_a_clear_error(bench_name: str, tmp_path: Path) -> None:
    bench = _load(bench_name)
    with pytest.raises(SystemExit, match=r"--original .*: no run_.*\.py \(give a checkout of the original"):
        bench.main(["--original", str(tmp_path)])


def test_a_failing_original_is_reported_with_its_output(original: Path, tmp_path: Path) -> None:
    (original / "run_model.py").write_text("import sys; print('boom: no such option'); sys.exit(2)")
    bench = _load("run_speed")
    with pytest.raises(SystemExit, match="(?s)the original's run_model.py failed \\(exit 2\\).*boom"):
        bench.main(["--subjects", "12", "--repeat", "1", "--original", str(original), "--workdir", str(tmp_path)])


def test_train_speed_runs_the_original_recipe_p_command(original: Path, tmp_path: Path,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    bench = _load("train_speed")
    if not bench.SPLIT.is_file():
        pytest.skip(f"{bench.SPLIT} is not available")
    bench.main(["--epochs", "2", "--original", str(original), "--work", str(tmp_path / "w")])
    (call,) = _calls(original)
    argv = call["argv"]
    assert isinstance(argv, list) and call["script"] == "run_training.py"
    data = argv[argv.index("--inputdata") + 1:argv.index("--datagroups")]
    assert sorted(d.split("]@")[1].split("=")[0] for d in data) == ["FC", "FC", "FC", "SC", "SC"]
    assert argv[argv.index("--epochs") + 1] == "2" and argv[argv.index("--subjectfile") + 1] == str(bench.SPLIT)
    assert argv[argv.index("--transformation") + 1] == "pca64" and "--latentunit" in argv
    text = capsys.readouterr().out
    assert "Speed-up (original best / kraken best):" in text
    assert "original  test quality: not evaluated" in text  # the stand-in writes no checkpoint
    assert "kraken    test top1acc" in text


def test_paper_scale_reads_the_originals_epoch_times_and_computes_the_ratio(
        original: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    import numpy as np
    import scipy.io

    bench = _load("paper_scale")
    out = tmp_path / "orig"
    out.mkdir()
    scipy.io.savemat(out / "orig_trainrecord_x.mat", {"epoch_timestamp": np.cumsum([9.0, 5.0, 4.0, 4.0, 6.0])[None]})
    assert bench.original_seconds(out, 1) == [5.0, 4.0, 4.0, 6.0]
    inputs = ["-i", "FCcorr_toy86a_hpf@FC=/d/a.mat", "-i", "SCifod2act_toy86a_volnorm@SC=/d/b.mat"]
    bench.run_original(original, inputs, out, 3)
    (call,) = _calls(original)
    argv = call["argv"]
    assert isinstance(argv, list)
    assert argv[argv.index("--inputdata") + 1:argv.index("--inputdata") + 3] == [
        "[FCcorr_toy86a_hpf]@FC=/d/a.mat", "[SCifod2act_toy86a_volnorm]@SC=/d/b.mat"]
    assert argv[argv.index("--epochs") + 1] == "3" and argv[argv.index("--transformation") + 1] == "pca256"
    measured = {"kraken, 1 process(es)": [("kraken 1", 2.0, 2.1, 1.9, 20, 60.0), ("kraken 1", 2.5, 2.5, 2.4, 20, 70.0)],
                "original run_training.py": [("original", 50.0, 51.0, 49.0, 20, 999.0)]}
    a = argparse.Namespace(busy=False, threads=None, subjects=993)
    assert bench.report(measured, a, "load average 0.10 / 0.10 / 0.10") == 0
    text = capsys.readouterr().out
    assert "| kraken, 1 process(es) | 2.00 |" in text and "| 25.0x |" in text and "not run" not in text
