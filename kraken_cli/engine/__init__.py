"""kraken's engine: the science, importable without typer or rich.

Public API (imported lazily so that ``import kraken_cli.engine.errors`` stays cheap)::

    from kraken_cli.engine import load_model, load_cohort
    model = load_model("model.pt", transforms=["model_ioxfm.npy"])
    cohort = load_cohort(["FCcorr_fs86_hpf=fc.mat"])
    result = model.predict(cohort, fusion=True)
    trained = train(cohort.arrays(), TrainConfig(transformation="pca64", latent_size=32, epochs=300),
                    subjects=cohort.subjects)
    pcorr = run_connectivity(ConnectivityConfig.build(inputs=("ts/sub-*.tsv",), target="fs86", output="pcorr.mat"))
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "Cohort": "connectome",
    "ConnectivityConfig": "connectivity",
    "Flavor": "flavors",
    "FlavorSpec": "flavors",
    "KrakenError": "errors",
    "KrakenModel": "predict",
    "TrainConfig": "training",
    "TrainRecord": "training",
    "evaluate_path": "metrics",
    "load_checkpoint": "checkpoint",
    "load_cohort": "io",
    "load_model": "predict",
    "load_transforms": "transform_files",
    "make_cohort": "datasets",
    "merge_checkpoints": "merge",
    "read_record": "training",
    "run_connectivity": "connectivity",
    "train": "training",
    "train_from_inputs": "training",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        module = importlib.import_module(f".{_EXPORTS[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
