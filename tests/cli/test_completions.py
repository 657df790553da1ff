"""Shell completion: the committed scripts are fresh, and TAB works through the installed console script.

Typer's scripts run ``kraken`` with ``_KRAKEN_COMPLETE=complete_<shell>`` on every TAB. bash passes the
words in ``COMP_WORDS`` (joined) and the cursor's word index in ``COMP_CWORD``; zsh and fish pass the
command line in ``_TYPER_COMPLETE_ARGS`` (fish also ``_TYPER_COMPLETE_FISH_ACTION=get-args``). The
tests below call the console script exactly that way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kraken_cli.cli import _complete

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
KRAKEN = BIN / ("kraken.exe" if os.name == "nt" else "kraken")
MAIN_CKPT = "kraken_chkpt_SCFC_fs86+shen268+coco439_pc256_225paths_latent128_20240413_ep002000.pt"

pytestmark = pytest.mark.skipif(not KRAKEN.exists(), reason="the kraken console script is not installed")


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("_KRAKEN_", "_TYPER_", "COMP_"))}
    env.update(extra)
    return env


def complete_bash(line: str) -> list[str]:
    """What ``kraken <line><TAB>`` offers in bash (a trailing space starts a new, empty word)."""
    words = ["kraken", *line.split()]
    if line.endswith(" ") or not line:
        words.append("")
    proc = subprocess.run([str(KRAKEN)], env=_env(_KRAKEN_COMPLETE="complete_bash", COMP_WORDS=" ".join(words),
                                                  COMP_CWORD=str(len(words) - 1)),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


# --------------------------------------------------------------------------- committed scripts


def test_committed_completion_scripts_are_fresh() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_completions.py"), "--check"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr + "\nrun: python scripts/gen_completions.py"


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_scripts_call_kraken_back(shell: str) -> None:
    text = (ROOT / "completions" / f"kraken.{shell}").read_text()
    assert f"_KRAKEN_COMPLETE=complete_{shell}" in text
    if shell == "zsh":
        assert text.startswith("#compdef kraken\n")


# --------------------------------------------------------------------------- dynamic completion (bash protocol)


def test_subcommands() -> None:
    assert complete_bash("ru") == ["run"]
    assert {"run", "train", "merge", "describe", "fetch", "adapt", "example"} <= set(complete_bash(""))


def test_options() -> None:
    offered = complete_bash("run --fu")
    assert "--fusion" in offered and all(o.startswith("--fu") for o in offered)
    assert complete_bash("fetch --fo") == ["--force"]


def test_flavor_names_for_inputs() -> None:
    offered = complete_bash("run -i FCcorr_")
    assert "FCcorr_fs86_hpf=" in offered and "FCcorr_coco439_hpfgsr=" in offered
    assert all(o.startswith("FCcorr_") and o.endswith("=") for o in offered)
    assert complete_bash("run -i FCcorr_fs86_hpf@") == ["FCcorr_fs86_hpf@SC=", "FCcorr_fs86_hpf@FC="]


def test_registry_names() -> None:
    offered = complete_bash("fetch kraken_chkpt")
    assert MAIN_CKPT in offered and all(o.startswith("kraken_chkpt") for o in offered)
    assert complete_bash("fetch kraken_chkpt_SCFC_fs86") == [MAIN_CKPT]


def test_adapt_modes() -> None:
    assert complete_bash("run --adapt mean") == ["meanshift", "meanfit", "meanfit+meanshift"]


def test_fetch_flavor_list() -> None:
    offered = complete_bash("fetch --flavors FCcorr_fs86_hpf,SCifod2act_fs86_s")
    assert offered == ["FCcorr_fs86_hpf,SCifod2act_fs86_sift2", "FCcorr_fs86_hpf,SCifod2act_fs86_sift2volnorm"]


# --------------------------------------------------------------------------- other shells' protocols


def test_zsh_protocol() -> None:
    proc = subprocess.run([str(KRAKEN)], env=_env(_KRAKEN_COMPLETE="complete_zsh",
                                                  _TYPER_COMPLETE_ARGS="kraken run --adapt meanf"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("_arguments") and '"meanfit"' in proc.stdout and '"meanfit+meanshift"' in proc.stdout


def test_fish_protocol() -> None:
    proc = subprocess.run([str(KRAKEN)], env=_env(_KRAKEN_COMPLETE="complete_fish", _TYPER_COMPLETE_FISH_ACTION="get-args",
                                                  _TYPER_COMPLETE_ARGS="kraken fetch kraken_chkpt_SCFC_fs86"),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [MAIN_CKPT]


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_real_bash_with_the_committed_script() -> None:
    script = (
        f"source {ROOT / 'completions' / 'kraken.bash'}\n"
        "COMP_WORDS=(kraken fetch --li); COMP_CWORD=2\n"
        "_kraken_completion kraken\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = _env(PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    proc = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=env, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["--list"]


# --------------------------------------------------------------------------- the callbacks themselves


def test_callbacks() -> None:
    assert _complete.complete_adapt_mode("") == list(_complete.ADAPT_MODES)
    assert _complete.complete_flavor_spec("FCcorr_fs86_hpf=") == []
    assert _complete.complete_flavor("SCsdstream_fs86_v") == ["SCsdstream_fs86_volnorm"]
    assert MAIN_CKPT in _complete.complete_checkpoint_name("kraken_")
    assert all("_ioxfm_" in n for n in _complete.complete_transform_name(""))
    assert len(_complete.complete_registry_name("")) == 64
