"""The installed ``kraken`` console script, end to end: version, ``python -m``, and the offline demo."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

from kraken_cli import __version__

from ._installed import clean_env, kraken_script, run_kraken


def test_installed_console_script_runs_the_demo_and_its_printed_command(tmp_path: Path) -> None:
    script = kraken_script()
    work = tmp_path / "work"  # a clean working folder, outside the repository
    work.mkdir()
    env = clean_env(tmp_path)

    version = run_kraken(["--version"], cwd=work, env=env, script=script)
    assert version.stdout.strip() == f"kraken {__version__}"

    helped = subprocess.run([sys.executable, "-m", "kraken_cli", "--help"], cwd=work, env=env, capture_output=True,
                            text=True, timeout=60)
    assert helped.returncode == 0, helped.stderr
    for command in ("run", "train", "merge", "describe", "fetch", "adapt", "example"):
        assert command in helped.stdout, command

    demo = run_kraken(["example", "demo", "--n-subjects", "60", "--epochs", "10"], cwd=work, env=env, script=script,
                      timeout=300)
    printed = [shlex.split(line) for line in demo.stdout.splitlines() if line.startswith("kraken ")]
    assert [c[1] for c in printed] == ["train", "run", "describe"], demo.stdout
    assert "Traceback" not in demo.stderr

    run_args = printed[1][1:]
    out = run_args[run_args.index("-o") + 1]
    assert out == "demo/predictions/{input}.mat"  # relative to the folder the demo ran in
    for f in ("metrics.csv", "heatmap.png", "fusion.mat"):
        (work / "demo" / "predictions" / f).unlink()
    again = run_kraken(run_args, cwd=work, env=env, script=script)
    assert "Evaluation on 12 subjects" in " ".join(again.stdout.split())
    for f in ("metrics.csv", "heatmap.png", "fusion.mat"):
        assert (work / "demo" / "predictions" / f).stat().st_size > 0, f
    assert not list(work.rglob("*.part"))
    assert not (tmp_path / "empty-cache").exists(), "the demo must not touch the model cache"
