"""kraken's engine: the science, importable without typer or rich.

Public API (imported lazily so that ``import kraken_cli.engine.errors`` stays cheap)::

    from kraken_cli.engine import load_model, load_cohort
    model = load_model("model.pt", transforms=["model_ioxfm.npy"])
    cohort = load_cohort(["FCcorr_fs86_hpf=fc.mat"])
    result = model.predict(cohort, fusion=True)
    qc = assess(model, cohort, model.plan(cohort, PredictOptions()))  # flags; PredictOptions: .pipelines.configs
    trained = train(cohort.arrays(), TrainConfig(transformation="pca64", latent_size=32, epochs=300),
                    subjects=cohort.subjects)
    pcorr = run_connectivity(ConnectivityConfig.build(inputs=("ts/sub-*.tsv",), target="fs86", output="pcorr.mat"))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._lazy import lazy_exports

if TYPE_CHECKING:  # what the lazy exports below resolve to, for type checkers and editors
    from .checkpoint import load_checkpoint as load_checkpoint
    from .connectivity import ConnectivityConfig as ConnectivityConfig
    from .connectivity import run_connectivity as run_connectivity
    from .connectome import Cohort as Cohort
    from .datasets import make_cohort as make_cohort
    from .errors import KrakenError as KrakenError
    from .flavors import Flavor as Flavor
    from .flavors import FlavorSpec as FlavorSpec
    from .inference import KrakenModel as KrakenModel
    from .inference import load_model as load_model
    from .io import load_cohort as load_cohort
    from .merge import merge_checkpoints as merge_checkpoints
    from .metrics import evaluate_path as evaluate_path
    from .qc import QCResult as QCResult
    from .qc import assess as assess
    from .training.config import TrainConfig as TrainConfig
    from .training.loop import train as train
    from .training.record import TrainRecord as TrainRecord
    from .training.record import read_record as read_record
    from .training.session import train_from_inputs as train_from_inputs
    from .transforms.files import load_transforms as load_transforms

_EXPORTS: dict[str, str] = {
    "Cohort": "connectome",
    "ConnectivityConfig": "connectivity",
    "Flavor": "flavors",
    "FlavorSpec": "flavors",
    "KrakenError": "errors",
    "KrakenModel": "inference",
    "QCResult": "qc",
    "TrainConfig": "training",
    "TrainRecord": "training",
    "assess": "qc",
    "evaluate_path": "metrics",
    "load_checkpoint": "checkpoint",
    "load_cohort": "io",
    "load_model": "inference",
    "load_transforms": "transforms.files",
    "make_cohort": "datasets",
    "merge_checkpoints": "merge",
    "read_record": "training",
    "run_connectivity": "connectivity",
    "train": "training",
    "train_from_inputs": "training",
}

__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
