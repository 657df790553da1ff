"""``kraken run --qc`` on the conformance inputs plus planted out-of-distribution subjects (issue 17).

A smaller version of ``tests/benchmarks/qc_eval.py`` (whose full numbers are in the README): the 12
held-out subjects of ``conformance/P/inputs`` and 4 planted copies per kind (scaled, heavy noise, SC given
as FC, FC given as SC, shuffled edges). Every planted subject must be flagged, under 5 % of the held-out
ones (here: none of 12), and the measures must fire for the reason planted.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "qc_eval.py"


def _qc_eval() -> ModuleType:
    spec = importlib.util.spec_from_file_location("qc_eval", BENCH)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_planted_subjects_are_flagged_and_held_out_ones_pass(conf_dir: Path, tmp_path: Path) -> None:
    from scipy.io import loadmat

    q = _qc_eval()
    data, subjects = {}, []
    for f in q.FLAVORS:
        m = loadmat(conf_dir / "inputs" / f"{f}.mat", simplify_cells=True)
        data[f] = np.asarray(m["data"], dtype=np.float64)
        subjects = [str(s) for s in m["subjects"]]
    cohort, ids, kinds = q.planted_cohort(data, subjects, list(range(len(subjects))), per_kind=4)
    qc = q.run_qc(q.write_cohort(tmp_path, cohort, ids))
    res = q.score(qc, kinds)
    hit, total, _ = res["in-distribution"]
    assert total == 12 and hit == 0, res["in-distribution"]
    for kind in q.KINDS:
        hit, total, why = res[kind]
        assert (hit, total) == (4, 4), (kind, why)
    assert res["sc_as_fc"][2]["fc_negative"] == 4 and res["fc_as_sc"][2]["sc_negative"] == 4
    assert res["scaled"][2]["scale"] == 4 and res["noise"][2]["residual"] == 4


@pytest.mark.parametrize("kind", ["scaled", "noise", "sc_as_fc", "fc_as_sc", "shuffled"])
def test_planting_changes_only_one_flavor(kind: str) -> None:
    q = _qc_eval()
    rng = np.random.default_rng(0)
    base = rng.random((2, 6, 6))
    data = {f: (base + base.transpose(0, 2, 1)) / 2 * (1 if f.startswith("SC") else 0.5) for f in q.FLAVORS}
    flavor, mats = q.plant(kind, data, 1, 0, rng)
    changed = [f for f in q.FLAVORS if not np.array_equal(mats[f], data[f][1])]
    assert changed == [flavor]
