"""``kraken connectivity`` output feeds ``kraken run`` unchanged (issue 15 item 2)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.io
from typer.testing import CliRunner

from kraken_cli.cli.app import app

from ..helpers import make_tiny_model

runner = CliRunner()
FLAVOR = "FCpcorr_fs86_hpf"


@pytest.mark.parametrize("ext", ["mat", "h5", "npz"])
def test_connectivity_then_run(tmp_path: Path, ext: str) -> None:
    rng = np.random.default_rng(0)
    for i in range(4):  # per-subject time series with a header of region labels, 120 time points x 86 regions
        header = "\t".join(f"roi{j}" for j in range(86))
        np.savetxt(tmp_path / f"sub-{i:02d}_timeseries.tsv", rng.normal(size=(120, 86)), delimiter="\t",
                   header=header, comments="")
    target = tmp_path / "target.mat"
    res = runner.invoke(app, ["connectivity", str(tmp_path / "sub-*_timeseries.tsv"), "--measure", "precision",
                              "--lambda", "0", "--output-mean", str(target), "-q"])
    assert res.exit_code == 0, res.output
    pcorr = tmp_path / f"pcorr.{ext}"
    res = runner.invoke(app, ["connectivity", str(tmp_path / "sub-*_timeseries.tsv"), "--target", str(target),
                              "--lambda-range", "0", "5", "-o", str(pcorr), "-q"])
    assert res.exit_code == 0, res.output

    tiny = make_tiny_model(tmp_path / "model", flavors=(FLAVOR, "FCcorr_fs86_hpf"))
    out = tmp_path / "pred.mat"
    res = runner.invoke(app, ["run", *tiny.model_args(), "-i", f"{FLAVOR}={pcorr}", "-o", str(out), "-q"])
    assert res.exit_code == 0, res.output
    m = scipy.io.loadmat(out, simplify_cells=True)
    assert [str(s) for s in m["subjects"]] == ["00", "01", "02", "03"]
    pred = m["predicted_alltypes"][FLAVOR]["FCcorr_fs86_hpf"]
    assert pred.shape == (4, 86 * 85 // 2) and np.isfinite(pred).all()
