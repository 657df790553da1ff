"""`kraken --help` and shell completion stay cheap: they never import torch (STYLE rule 23).

Each case runs in a fresh interpreter, the way the console script starts, and reports which heavy
modules ended up in ``sys.modules``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("torch",)

PROBE = """
import json, sys
heavy = json.loads(sys.argv[2])
sys.argv = ["kraken", *json.loads(sys.argv[1])]
from kraken_cli.cli.app import main
try:
    main()
except SystemExit:
    pass
finally:
    sys.stderr.write("\\nLOADED=" + json.dumps(sorted(m for m in heavy if m in sys.modules)) + "\\n")
"""


def loaded_after(args: list[str], heavy: tuple[str, ...] = HEAVY, **env: str) -> list[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("_KRAKEN_", "COMP_"))}
    full_env.update(env)
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(args), json.dumps(heavy)],
                          env=full_env, capture_output=True, text=True, timeout=120)
    line = next((ln for ln in proc.stderr.splitlines() if ln.startswith("LOADED=")), None)
    assert line is not None, proc.stderr
    return list(json.loads(line.removeprefix("LOADED=")))


@pytest.mark.parametrize("args", [
    ["--help"],
    ["--version"],
    *([cmd, "--help"] for cmd in ("run", "train", "merge", "describe", "fetch", "adapt", "example", "connectivity")),
])
def test_help_does_not_import_torch(args: list[str]) -> None:
    assert loaded_after(args) == []


def test_completion_does_not_import_torch() -> None:
    env = {"_KRAKEN_COMPLETE": "complete_bash", "COMP_WORDS": "kraken run -i FCcorr_", "COMP_CWORD": "3"}
    assert loaded_after([], **env) == []


def test_fetch_list_does_not_import_torch(tmp_path: object) -> None:
    assert loaded_after(["fetch", "--list", "--json", "--cache-dir", str(tmp_path)]) == []


def test_training_imports_no_compiler_or_symbolic_machinery(tmp_path: Path) -> None:
    """torch's dynamo/sympy/fx (0.5-1 s each to import) and sklearn are not needed to train: a few
    innocent-looking calls (``torch.optim``, ``torch.broadcast_shapes``) pull them in."""
    from kraken_cli.engine.datasets import make_cohort

    make_cohort(50, n_regions=10, atlas="toy10", flavors=["FCcorr_toy10_hpf", "SCifod2act_toy10_volnorm"],
                seed=1).write(tmp_path)
    args = ["train", "-i", f"FCcorr_toy10_hpf@FC={tmp_path / 'FCcorr_toy10_hpf.mat'}",
            "-i", f"SCifod2act_toy10_volnorm@SC={tmp_path / 'SCifod2act_toy10_volnorm.mat'}",
            "--transformation", "pca8", "--latent-size", "4", "--epochs", "3", "--batch-size", "8",
            "--display-every", "2", "-o", str(tmp_path / "run" / "m"), "--quiet"]
    heavy = ("sympy", "torch._dynamo", "torch.fx.experimental.symbolic_shapes", "sklearn")
    assert loaded_after(args, heavy) == []
    assert list((tmp_path / "run").glob("m_chkpt_*.pt"))
