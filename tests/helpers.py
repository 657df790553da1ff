"""Small shared fixtures: a tiny random Krakencoder saved with the engine's own functions, and tiny inputs.

Everything here is deterministic (explicit numpy/torch generators, no global seeding) and fast: a
two-flavor fs86 model with PCA-3 transforms and a latent of 4 builds in well under a second.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

#: Two real fs86 flavors (86 regions, 3655 edges): one FC, one SC.
FC = "FCcorr_fs86_hpf"
SC = "SCifod2act_fs86_volnorm"
FS86_EDGES = 86 * 85 // 2


def tri(mats: npt.NDArray[np.floating]) -> npt.NDArray[np.floating]:
    """Strict upper triangles, written with explicit loops (independent of the engine's helper)."""
    mats = np.asarray(mats)
    r = mats.shape[-1]
    out = []
    for i in range(r):
        for j in range(i + 1, r):
            out.append(mats[..., i, j])
    return np.stack(out, axis=-1)


def random_connectomes(n_subjects: int, n_regions: int, *, seed: int = 0,
                       offset: float = 0.0) -> npt.NDArray[np.float64]:
    """``(n_subjects, R, R)`` symmetric matrices with a shared structure plus subject noise."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n_regions, n_regions))
    out = np.empty((n_subjects, n_regions, n_regions))
    for s in range(n_subjects):
        m = base + 0.5 * rng.normal(size=(n_regions, n_regions)) + offset
        m = (m + m.T) / 2
        np.fill_diagonal(m, 1.0)
        out[s] = m
    return out


def plausible_connectomes(n_subjects: int, n_regions: int, group: str, *, seed: int = 0,
                          base_seed: int = 1) -> npt.NDArray[np.float64]:
    """``(n_subjects, R, R)`` connectomes that look like real ones: FC correlations in [-1, 1] with a unit
    diagonal, SC non-negative with a zero diagonal; all share the structure drawn from ``base_seed``."""
    base = np.random.default_rng(base_seed).normal(size=(n_regions, n_regions))
    base = (base + base.T) / 2
    rng = np.random.default_rng(seed)
    out = np.empty((n_subjects, n_regions, n_regions))
    for s in range(n_subjects):
        noise = rng.normal(size=(n_regions, n_regions))
        m = base + 0.4 * (noise + noise.T) / 2
        m = np.tanh(0.4 * m + 0.1) if group == "FC" else np.exp(m)
        np.fill_diagonal(m, 1.0 if group == "FC" else 0.0)
        out[s] = m
    return out


def n_regions_of(flavor: str) -> int:
    from kraken_cli.engine.flavors import resolve_flavor

    f = resolve_flavor(flavor.split("@")[0], flavor.split("@")[1] if "@" in flavor else None)
    return f.n_regions or 6


@dataclass
class TinyModel:
    """A saved tiny model: checkpoint + transform file, plus the data its transforms were fitted on."""

    checkpoint: Path
    transforms_file: Path
    flavors: list[str]
    latent: int
    train: dict[str, npt.NDArray[np.float64]] = field(repr=False)  # flavor -> (n_train, n_edges) fitting data
    transforms: dict[str, Any] = field(default_factory=dict, repr=False)
    model: Any = field(default=None, repr=False)

    def write_inputs(self, folder: Path, n_subjects: int = 5, *, seed: int = 100,
                     subjects: Sequence[str] | None = None, square: bool = True,
                     flavors: Sequence[str] | None = None) -> dict[str, Path]:
        """One v5 ``.mat`` per flavor (field ``data`` + ``subjects``), like the conformance inputs."""
        folder.mkdir(parents=True, exist_ok=True)
        ids = list(subjects) if subjects is not None else [f"sub{i:03d}" for i in range(n_subjects)]
        out = {}
        for k, f in enumerate(flavors or self.flavors):
            mats = random_connectomes(len(ids), n_regions_of(f), seed=seed + k)
            path = folder / f"{f}.mat"
            write_mat(path, data=mats if square else tri(mats), subjects=ids)
            out[f] = path
        return out

    def input_args(self, files: dict[str, Path]) -> list[str]:
        """``-i FLAVOR=PATH`` arguments for :meth:`write_inputs`' files."""
        args: list[str] = []
        for f, p in files.items():
            args += ["-i", f"{f}={p}"]
        return args

    def model_args(self) -> list[str]:
        return ["-c", str(self.checkpoint), "-t", str(self.transforms_file), "--device", "cpu"]


def write_mat(path: Path, **fields: Any) -> Path:
    """A MATLAB v5 file; a ``subjects`` list is stored as a cell array of char, like the original's inputs."""
    import scipy.io

    data: dict[str, Any] = {}
    for k, v in fields.items():
        if k in ("subjects", "subject") and isinstance(v, (list, tuple)):
            cell = np.empty((1, len(v)), dtype=object)
            for i, s in enumerate(v):
                cell[0, i] = str(s)
            v = cell
        data[k] = v
    scipy.io.savemat(path, data, format="5")
    return path


def make_tiny_model(tmp_path: Path, flavors: Sequence[str] = (FC, SC), latent: int = 4, *,
                    transform: str = "pca3", hidden: Sequence[int] = (), dropout: float = 0.0,
                    latent_normalize: bool = True, n_train: int = 12, seed: int = 0,
                    name: str = "tiny", extra: dict[str, Any] | None = None,
                    train_data: dict[str, npt.NDArray[np.float64]] | None = None) -> TinyModel:
    """Build a random Krakencoder with fitted transforms and save it with the engine's functions.

    ``train_data`` (flavor -> edge rows) replaces the random fitting data; the transform file then
    lists the fitting subjects (``train_subjects``) as the original's files do.

    The files are named by the original's rule (``<name>_chkpt_..._ep000010.pt`` next to
    ``<name>_ioxfm_....npy``) so that transform discovery finds them.
    """
    import torch

    from kraken_cli.engine.checkpoint import checkpoint_dict, save_checkpoint
    from kraken_cli.engine.model import Krakencoder, ModelConfig
    from kraken_cli.engine.transforms import make_transform
    from kraken_cli.engine.transforms.files import save_transforms

    tmp_path.mkdir(parents=True, exist_ok=True)
    train: dict[str, npt.NDArray[np.float64]] = {}
    fitted = {}
    for k, f in enumerate(flavors):
        x = (train_data[f] if train_data is not None
             else tri(random_connectomes(n_train, n_regions_of(f), seed=seed + 10 * k)))
        train[f] = x
        fitted[f] = make_transform(transform).fit(x)
    cfg = ModelConfig(input_size_list=[fitted[f].n_features_out_ for f in flavors], latentsize=latent,
                      hiddenlayers=list(hidden), dropout=dropout, latent_normalize=latent_normalize)
    net = Krakencoder(cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    net.eval()
    n = len(flavors)
    meta: dict[str, Any] = {
        "epoch": 9, "input_transformation_info": transform, "reduce_dimension": 3,
        "orig_input_size_list": [int(train[f].shape[1]) for f in flavors],
        "trainpath_encoder_index_list": [i for i in range(n) for _ in range(n)],
        "trainpath_decoder_index_list": [j for _ in range(n) for j in range(n)],
        "training_params": {"losstype": "mse", "nbepochs": 10, "batchsize": 4},
        "dropout_schedule": [dropout, dropout],
    }
    meta.update(extra or {})
    ckpt = tmp_path / f"{name}_chkpt_{transform}_ep000010.pt"
    save_checkpoint(ckpt, checkpoint_dict(net, [f.split("@")[0] for f in flavors], meta))
    xfm = tmp_path / f"{name}_ioxfm_{transform}.npy"
    ids = [f"train{i:03d}" for i in range(len(next(iter(train.values()))))] if train_data is not None else None
    save_transforms(xfm, {f.split("@")[0]: fitted[f] for f in flavors}, ids)
    return TinyModel(ckpt, xfm, [f.split("@")[0] for f in flavors], latent, train, fitted, net)


def files_in(folder: Path) -> set[str]:
    """Every file name (hidden ones included) below ``folder``, relative to it."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


class LogRecorder:
    """Collect records of the ``kraken_cli`` loggers directly (the CLI turns off propagation to root)."""

    def __init__(self, name: str = "kraken_cli", level: int = 10) -> None:
        import logging

        self.logger = logging.getLogger(name)
        self.level = level
        self.records: list[logging.LogRecord] = []
        recorder = self

        class _H(logging.Handler):
            def emit(self, record: logging.LogRecord) -> None:
                recorder.records.append(record)

        self.handler = _H(level)

    def __enter__(self) -> LogRecorder:
        self._old = self.logger.level
        self.logger.addHandler(self.handler)
        self.logger.setLevel(self.level)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self.handler)
        self.logger.setLevel(self._old)

    def messages(self, level: int = 30) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]
