"""``kraken example``: a synthetic cohort, a trained model and its predictions, end to end and offline."""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .datasets import make_cohort
from .progress import NULL_PROGRESS, Progress


@dataclass
class ExampleResult:
    """What the example wrote and measured, and the commands that repeat it."""

    folder: Path
    data_files: dict[str, Path]
    checkpoint: Path
    transform: Path
    split_file: Path
    files: list[Path]
    metrics: list[dict[str, Any]]
    commands: list[str]
    seconds: float
    train_seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The JSON report of ``kraken example --json``."""
        return {"folder": str(self.folder), "files": [str(f) for f in self.files], "metrics": self.metrics,
                "commands": self.commands, "seconds": round(self.seconds, 2)}


def _q(p: object) -> str:
    return shlex.quote(str(p))


def run_example(folder: str | Path, *, n_subjects: int = 300, epochs: int = 200, seed: int = 0,
                progress: Progress = NULL_PROGRESS, on_display: Callable[[Any], None] | None = None) -> ExampleResult:
    """Write a 5-flavor synthetic cohort, train on it, and predict held-out subjects from fused latents.

    Parameters
    ----------
    folder : path
        Where data, model and predictions go (``data/``, ``model/``, ``predictions/``).
    n_subjects, epochs, seed : int
        Cohort size, training epochs, and the seed of both.
    """
    from .io._atomic import check_writable_dir
    from .pipelines.configs import PredictConfig, PredictOptions
    from .pipelines.predict import predict
    from .training import TrainConfig
    from .training.session import train_from_inputs
    from .training.splits import random_split_indices

    t0 = time.perf_counter()
    root = Path(folder)
    check_writable_dir(root / "data" / "x")
    data = make_cohort(n_subjects, seed=seed).write(root / "data")
    inputs = [f"{f}={p}" for f, p in data.items()]
    # PCA-64 and batches of 41 need enough training subjects: small cohorts get fewer components and smaller batches
    n_train = len(random_split_indices(n_subjects)[0])
    xform = f"pca{max(1, min(64, n_train - 1))}"
    batch = max(2, min(41, n_train))
    config = TrainConfig(transformation=xform, latent_size=32, epochs=epochs, display_every=max(epochs // 4, 1),
                         checkpoint_every=0, output=str(root / "model") + "/", seed=seed, batch_size=batch)
    trained = train_from_inputs(inputs, config, progress=progress, on_display=on_display, device="cpu")
    assert trained is not None  # one process: this one returns the result
    checkpoint = trained.checkpoints[-1]
    transform = trained.files["ioxfm"]
    split_file = trained.files["subjsplit"]
    out_template = str(root / "predictions" / "{input}.mat")
    metrics_csv, heatmap = root / "predictions" / "metrics.csv", root / "predictions" / "heatmap.png"
    result = predict(PredictConfig(inputs=tuple(inputs), checkpoints=(str(checkpoint),), transforms=(str(transform),),
                           options=PredictOptions(outputs=("all",), fusion=True), output=out_template,
                           split_file=str(split_file), split="test", evaluate=True,
                           metrics_csv=str(metrics_csv), heatmap=str(heatmap), device="cpu"))
    ins = " ".join(f"-i {_q(s)}" for s in inputs)
    commands = [
        f"kraken train {ins} --transformation {xform} --latent-size 32 --epochs {epochs} "
        + (f"--batch-size {batch} " if batch != 41 else "") +
        f"--display-every {config.display_every} --checkpoint-every 0 --seed {seed} -o {_q(str(root / 'model') + '/')}",
        f"kraken run -c {_q(checkpoint)} {ins} --split-file {_q(split_file)} --split test "
        f"--fusion --outputs all --evaluate --metrics-csv {_q(metrics_csv)} --heatmap {_q(heatmap)} "
        f"-o {_q(out_template)}",
        f"kraken describe {_q(checkpoint)} --paths",
    ]
    return ExampleResult(root, data, checkpoint, transform, split_file,
                         [checkpoint, transform, split_file, *result.files], result.metrics, commands,
                         time.perf_counter() - t0, trained.train_seconds,
                         {"n_test": result.n_subjects, "figures": {k: str(v) for k, v in trained.files.items()
                                                                 if k in ("loss", "heatmap")}})
