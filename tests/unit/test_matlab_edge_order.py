"""The README's MATLAB/Octave one-liners for kraken's edge order, run in GNU Octave (skipped where absent)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from kraken_cli.engine.connectome import square_to_tri

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_lines() -> tuple[str, str]:
    """The vectorize and rebuild expressions, exactly as the README gives them."""
    text = README.read_text()
    vec = re.search(r"^v = C\(tril\(true\(R\), *-1\)\)'?;.*$", text, re.M)
    back = re.search(r"^C = zeros\(R\); C\(tril\(true\(R\), *-1\)\) = v; C = C \+ C';.*$", text, re.M)
    assert vec and back, "README must give the MATLAB edge-order one-liners"
    return vec.group(0).split("%")[0].strip(), back.group(0).split("%")[0].strip()


def test_readme_gives_the_expressions() -> None:
    readme_lines()


@pytest.mark.skipif(shutil.which("octave") is None, reason="GNU Octave is not installed")
def test_octave_matches_kraken_edges(tmp_path: Path) -> None:
    vec, back = readme_lines()
    r = 7
    rng = np.random.default_rng(0)
    c = rng.standard_normal((r, r))
    c = c + c.T
    np.fill_diagonal(c, 0)
    scipy.io.savemat(tmp_path / "in.mat", {"C": c, "edges": square_to_tri(c)[None, :], "R": float(r)})
    script = (f"load('{tmp_path / 'in.mat'}'); Csave = C; {vec} "
              "assert(isequal(size(v), size(edges)) && max(abs(v - edges)) == 0); "
              f"{back} assert(isequal(C, Csave)); disp('ok');")
    res = subprocess.run(["octave", "--no-gui", "--quiet", "--eval", script], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0 and "ok" in res.stdout, res.stderr + res.stdout
