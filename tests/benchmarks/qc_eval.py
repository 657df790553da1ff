"""How well ``kraken run --qc`` flags planted out-of-distribution subjects (issue 17; README "Quality control").

Data: the conformance cohort P rebuilt from its recipe (``../shared/tools/synth_cohort.py --subjects 320
--seed 1 --base <HCP example>``, identical to the cohort ``model.pt`` was trained on), the model
``conformance/P/model.pt`` with its transform file, and P's split. In-distribution subjects: the 90
held-out (validation + test) subjects. Planted subjects: copies of held-out subjects with one input
flavor damaged (rotating over the five flavors):

* ``scaled``: SC x3, FC x0.5 (another scanner's or pipeline's units);
* ``noise``: Gaussian noise with the flavor's edge standard deviation added (FC clipped to [-0.999, 0.999],
  SC kept non-negative, so the value range alone does not give it away);
* ``sc_as_fc``: the subject's SC (same atlas) given under an FC flavor name;
* ``fc_as_sc``: the subject's FC given under an SC flavor name;
* ``shuffled``: the flavor's edges permuted (right values, wrong wiring, e.g. another atlas' region order).

It runs ``kraken run --qc`` (the engine's ``predict``) on held-out + planted subjects twice: with the
transform file only, and with ``--qc-latents`` (fusion latents of the 230 training subjects, as the
released fusion-latent target file serves the published model). It prints, per planted kind, the
fraction caught and which measures fired, and the in-distribution false-flag rate.

    python tests/benchmarks/qc_eval.py [--per-kind 18]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
SHARED = HERE.parents[2].parent / "shared"  # ../shared beside the repository
P = SHARED / "conformance" / "P"
FLAVORS = ("FCcorr_fs86_hpf", "FCcorr_fs86_hpfgsr", "FCpcorr_fs86_hpf", "SCsdstream_fs86_volnorm",
           "SCifod2act_fs86_volnorm")
KINDS = ("scaled", "noise", "sc_as_fc", "fc_as_sc", "shuffled")


def _is_fc(f: str) -> bool:
    return f.startswith("FC")


def plant(kind: str, data: dict[str, np.ndarray], row: int, k: int,
          rng: np.random.Generator) -> tuple[str, dict[str, np.ndarray]]:
    """Subject ``row`` of ``data`` (flavor -> [subjects x R x R]) with one flavor damaged: (flavor, matrices)."""
    fc = [f for f in FLAVORS if _is_fc(f)]
    sc = [f for f in FLAVORS if not _is_fc(f)]
    pick = {"sc_as_fc": fc, "fc_as_sc": sc}.get(kind, list(FLAVORS))
    f = pick[k % len(pick)]
    out = {g: data[g][row].copy() for g in FLAVORS}
    m = out[f]
    iu = np.triu_indices(m.shape[0], 1)
    if kind == "scaled":
        m = m * (0.5 if _is_fc(f) else 3.0)
    elif kind == "noise":
        sd = float(data[f][:, iu[0], iu[1]].std())
        noise = rng.normal(scale=sd, size=m.shape)
        m = m + (noise + noise.T) / np.sqrt(2)
        m = np.clip(m, -0.999, 0.999) if _is_fc(f) else np.abs(m)
    elif kind == "sc_as_fc":
        m = data[sc[k % len(sc)]][row].copy()
    elif kind == "fc_as_sc":
        m = data[fc[k % len(fc)]][row].copy()
    elif kind == "shuffled":
        e = m[iu].copy()
        rng.shuffle(e)
        m = m.copy()
        m[iu] = e
        m.T[iu] = e
    np.fill_diagonal(m, np.diag(data[f][row]))
    out[f] = m
    return f, out


def write_cohort(folder: Path, data: dict[str, np.ndarray], subjects: Sequence[str]) -> list[str]:
    """One MATLAB file per flavor; the ``-i`` specs."""
    from scipy.io import savemat

    folder.mkdir(parents=True, exist_ok=True)
    specs = []
    for f in FLAVORS:
        savemat(folder / f"{f}.mat", {"data": data[f], "subjects": np.array(list(subjects), dtype=object)})
        specs.append(f"{f}={folder / f'{f}.mat'}")
    return specs


def planted_cohort(data: dict[str, np.ndarray], subjects: Sequence[str], held_out: Sequence[int],
                   per_kind: int, seed: int = 0) -> tuple[dict[str, np.ndarray], list[str], dict[str, str]]:
    """Held-out subjects plus ``per_kind`` planted copies per kind: (data, ids, planted id -> kind)."""
    rng = np.random.default_rng(seed)
    rows = {f: [data[f][i] for i in held_out] for f in FLAVORS}
    ids = [subjects[i] for i in held_out]
    kinds: dict[str, str] = {}
    for kind in KINDS:
        for k in range(per_kind):
            row = held_out[(k * 7 + KINDS.index(kind)) % len(held_out)]
            flavor, mats = plant(kind, data, row, k, rng)
            sid = f"{kind}-{flavor}-{subjects[row]}"
            for f in FLAVORS:
                rows[f].append(mats[f])
            ids.append(sid)
            kinds[sid] = kind
    return {f: np.stack(v) for f, v in rows.items()}, ids, kinds


def score(qc: object, kinds: dict[str, str]) -> dict[str, tuple[int, int, Counter[str]]]:
    """Per kind (and ``in-distribution``): (flagged, total, measures that fired)."""
    out: dict[str, tuple[int, int, Counter[str]]] = {}
    for i, s in enumerate(qc.subjects):  # type: ignore[attr-defined]
        kind = kinds.get(s, "in-distribution")
        flags = qc.subject_flags(i)  # type: ignore[attr-defined]
        hit, tot, why = out.get(kind, (0, 0, Counter()))
        why.update({fl.split(": ")[1] for fl in flags})
        out[kind] = (hit + bool(flags), tot + 1, why)
    return out


def rebuild_cohort(folder: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Cohort P's 320 subjects from the shared recipe (seconds)."""
    from scipy.io import loadmat

    base = SHARED / "data" / "hcp_fs86_example" / "exampledata_10subj_fs86_inputs.mat"
    subprocess.run([sys.executable, str(SHARED / "tools" / "synth_cohort.py"), "--out", str(folder), "--subjects",
                    "320", "--seed", "1", "--base", str(base)], check=True, capture_output=True)
    data, subjects = {}, []
    for f in FLAVORS:
        m = loadmat(folder / f"{f}.mat", simplify_cells=True)
        data[f] = np.asarray(m["data"], dtype=np.float64)
        subjects = [str(s) for s in m["subjects"]]
    return data, subjects


def run_qc(specs: Sequence[str], qc_latents: str | None = None,
           model: tuple[str, str] = (str(P / "model.pt"), str(P / "model_ioxfm.npy"))) -> object:
    from kraken_cli.engine.pipelines.configs import PredictConfig, PredictOptions
    from kraken_cli.engine.pipelines.predict import predict

    cfg = PredictConfig(inputs=tuple(specs), checkpoints=(model[0],), transforms=(model[1],), qc=True,
                        qc_latents=qc_latents, options=PredictOptions(outputs=("encoded",)))
    return predict(cfg).qc


def kraken_model(folder: Path, data: dict[str, np.ndarray], subjects: Sequence[str], split_file: Path,
                 epochs: int) -> tuple[str, str]:
    """P's recipe (PCA-64, latent 32, paper loss) trained by kraken on P's split: its checkpoint stores ``kraken_qc``."""
    from kraken_cli.engine.connectome import square_to_tri
    from kraken_cli.engine.io import read_split_file
    from kraken_cli.engine.training import TrainConfig, train

    cfg = TrainConfig(transformation="pca64", latent_size=32, latent_unit=True, dropout=0.5, epochs=epochs,
                      display_every=epochs, output=str(folder / "kraken"))
    res = train({f: square_to_tri(data[f]) for f in FLAVORS}, cfg, subjects=list(subjects),
                split=read_split_file(split_file), figures=False)
    return str(res.checkpoints[-1]), str(res.files["ioxfm"])


def training_latents(folder: Path, data: dict[str, np.ndarray], subjects: Sequence[str],
                     train: Sequence[int]) -> str:
    """Fusion latents of the training subjects (what ``--qc-latents`` takes)."""
    from kraken_cli.engine.pipelines.configs import PredictConfig, PredictOptions
    from kraken_cli.engine.pipelines.predict import predict

    specs = write_cohort(folder / "train", {f: data[f][list(train)] for f in FLAVORS}, [subjects[i] for i in train])
    out = folder / "train_fusion_latents.mat"
    predict(PredictConfig(inputs=tuple(specs), checkpoints=(str(P / "model.pt"),),
                          transforms=(str(P / "model_ioxfm.npy"),), output=str(out),
                          options=PredictOptions(outputs=("encoded",), fusion=True, only_fusion=True)))
    return str(out)


def margins(qc: object, kinds: dict[str, str]) -> list[str]:
    """Per measure: the in-distribution range next to the threshold (the margin the thresholds keep)."""
    from kraken_cli.engine.qc.thresholds import SUBJECT_THRESHOLDS

    ident = np.array([s not in kinds for s in qc.subjects])  # type: ignore[attr-defined]
    lines = ["| measure | held-out min | held-out max | flagged when |", "|---|---|---|---|"]
    for t in SUBJECT_THRESHOLDS:
        v = np.concatenate([fq.values[t.measure][ident] for fq in qc.flavors  # type: ignore[attr-defined]
                            if t.measure in fq.values])
        v = v[np.isfinite(v)]
        lo, hi = (f"{v.min():.3g}", f"{v.max():.3g}") if v.size else ("n/a", "n/a")
        lines.append(f"| {t.measure} | {lo} | {hi} | {t.rule()} |")
    return lines


def _print(title: str, res: dict[str, tuple[int, int, Counter[str]]], show: Callable[[str], None] = print) -> None:
    show(f"\n{title}\n| case | subjects | flagged | rate | measures that fired |\n|---|---|---|---|---|")
    for kind in ("in-distribution", *KINDS):
        hit, tot, why = res.get(kind, (0, 0, Counter()))
        fired = ", ".join(f"{m} {c}" for m, c in why.most_common())
        show(f"| {kind} | {tot} | {hit} | {hit / max(tot, 1):.1%} | {fired} |")


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--per-kind", type=int, default=18, help="planted subjects per kind")
    ap.add_argument("--epochs", type=int, default=300, help="epochs of the kraken-trained model (0: skip it)")
    a = ap.parse_args(argv)
    from scipy.io import loadmat

    split = loadmat(P / "reference_subjsplit.mat", simplify_cells=True)
    train = [int(i) for i in split["subjidx_train"]]
    held_out = [int(i) for i in (*split["subjidx_val"], *split["subjidx_test"])]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data, subjects = rebuild_cohort(folder / "C")
        cohort, ids, kinds = planted_cohort(data, subjects, held_out, a.per_kind)
        specs = write_cohort(folder / "eval", cohort, ids)
        _print("transform file only (no training latents)", score(run_qc(specs), kinds))
        lat = training_latents(folder, data, subjects, train)
        qc = run_qc(specs, lat)
        _print("with --qc-latents (fusion latents of the 230 training subjects)", score(qc, kinds))
        print("\nin-distribution range of each measure (with --qc-latents)")
        print("\n".join(margins(qc, kinds)))
        if a.epochs:
            model = kraken_model(folder / "model", data, subjects, P / "reference_subjsplit.mat", a.epochs)
            qc = run_qc(specs, model=model)
            _print(f"kraken-trained model ({a.epochs} epochs on P's 230 training subjects; statistics stored in the "
                   "checkpoint, thresholds widened to its held-out range)", score(qc, kinds))


if __name__ == "__main__":
    main()
