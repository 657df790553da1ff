"""Everything a run needs before its first epoch: options, flavors, split, transforms, tensors,
model (new, fine-tuned or resumed), paths and output names. All checks happen here, before
any training and before anything is written except the run's split and transform files.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ..checkpoint import Checkpoint, checkpoint_dict, load_checkpoint, save_checkpoint
from ..errors import FlavorError, InputDataError, TrainingError
from ..flavors import group_of
from ..io._atomic import check_writable_dir
from ..io.subjects import SubjectSplit, write_split_file
from ..model import Krakencoder, ModelConfig, config_from_state_dict_check
from ..naming import RunNames
from ._common import Batch, PathPlan, Targets
from ._evaluate import EvalData
from ._outputs import (
    data_string,
    kraken_version,
    make_suffix,
    network_info,
    output_prefix,
    qc_entry,
    qc_transform_rows,
    train_string,
    training_params,
)
from .config import TrainConfig
from .paths import TrainPath, resolve_paths
from .record import TrainRecord
from .resume import default_overrides, resume_config, stored_config
from .splits import align_split, random_split_indices

log = logging.getLogger(__name__)



@dataclass
class RunSetup:
    config: TrainConfig
    device: torch.device
    flavors: list[str]
    path_names: list[str]
    plan: PathPlan
    model: Krakencoder
    transforms: dict[str, Any]
    split: SubjectSplit
    train: Batch
    train_eval: EvalData
    val: EvalData
    train_targets: Targets | None
    effective_lr: float
    names: RunNames
    record: TrainRecord
    netinfo: dict[str, Any]
    params: dict[str, Any]
    start_epoch: int = 0
    resume_state: dict[str, Any] | None = None
    previous_checkpoints: list[Path] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    threads: str = ""  #: the CPU threads training uses, and why (for the log)
    #: edge rows, their split and the flavors' groups, for the stored QC statistics (``kraken_qc``)
    qc_rows: tuple[dict[str, Any], str, dict[str, Any], dict[str, str | None]] | None = None
    figure_worker: Any = None  #: the heatmap helper process started with the training (_figures)

    def save_checkpoint(self, model: Krakencoder, completed: int, trainer_state: dict[str, Any]) -> Path:
        """Write ``<prefix>_chkpt_<suffix>_ep<completed>.pt`` (original layout + kraken keys)."""
        path = self.names.checkpoint(completed)
        assert path is not None
        history = {k: torch.as_tensor(np.asarray(v, dtype=np.float64)) for k, v in self.record.items()
                   if isinstance(v, np.ndarray) and v.dtype.kind == "f" and np.isfinite(v).any()}
        extra = {**self.netinfo, "epoch": completed - 1, "training_params": self.params, **self.extra,
                 "kraken_version": kraken_version(), "kraken_seed": self.config.seed,
                 "kraken_optimizer_state": trainer_state,
                 "kraken_rng_state": {"scheme": "SeedSequence(seed, stream, epoch, batch) words per mask block",
                                     "seed": self.config.seed},
                 "kraken_completed_epochs": completed, "kraken_train_config": self.config.to_dict(),
                 "kraken_history": history,
                 "kraken_checkpoints": [str(p) for p in self.previous_checkpoints]}
        if self.qc_rows is not None:
            rows, split, all_rows, groups = self.qc_rows
            extra["kraken_qc"] = qc_entry(model, self.flavors, self.transforms, rows, split, self.train.xs, groups,
                                          all_rows)
        content = checkpoint_dict(model, self.flavors, extra)
        out = save_checkpoint(path, content)
        self.previous_checkpoints.append(out)
        return out


def _arrays(cohort: Mapping[str, npt.NDArray[np.floating]]) -> dict[str, npt.NDArray[np.float64]]:
    if not cohort:
        raise InputDataError("no input flavors given", hint="give at least one -i FLAVOR=PATH")
    out: dict[str, npt.NDArray[np.float64]] = {}
    n = None
    for f, x in cohort.items():
        a = np.asarray(x)
        if a.ndim != 2:
            raise InputDataError(f"{f}: expected (subjects x edges) data, got shape {a.shape}")
        if n is not None and a.shape[0] != n:
            raise InputDataError(f"{f} has {a.shape[0]} subjects, the first input has {n}",
                                 hint="give every flavor for the same subjects")
        if not np.all(np.isfinite(a)):
            raise InputDataError(f"{f}: data contain NaN or Inf", hint="remove or impute missing edges")
        n = a.shape[0]
        out[f] = a
    return out


def _order(arrays: Mapping[str, Any], names: Sequence[str], where: str) -> list[str]:
    missing = [f for f in names if f not in arrays]
    extra = [f for f in arrays if f not in names]
    if missing or extra:
        raise FlavorError(f"the inputs do not match the flavors of {where}: "
                          f"missing {missing or 'none'}, not in the model {extra or 'none'}",
                          hint="give exactly the checkpoint's flavors with -i")
    return list(names)


def _fit_transforms(arrays: Mapping[str, np.ndarray], flavors: Sequence[str], train_idx: np.ndarray,
                    given: Mapping[str, Any] | None, spec: str) -> tuple[dict[str, Any], list[str]]:
    from ..transforms import make_transform

    out: dict[str, Any] = {}
    fitted: list[str] = []
    for f in flavors:
        t = (given or {}).get(f)
        if t is None:
            t = make_transform(spec).fit(arrays[f][train_idx])
            fitted.append(f)
            ratio = getattr(t, "explained_variance_ratio_", None)
            if ratio is not None:
                log.info("fitted %s for %s (training variance kept: %.2f%%)", t.spec, f, 100 * ratio)
        elif getattr(t, "n_features_in_", arrays[f].shape[1]) != arrays[f].shape[1]:
            raise InputDataError(f"the transform for {f} expects {t.n_features_in_} edges, the data have "
                                 f"{arrays[f].shape[1]}", hint="give the transform file that matches the inputs")
        out[f] = t
    return out, fitted


def _new_model(cfg: TrainConfig, sizes: list[int], seed: int) -> Krakencoder:
    sched = cfg.dropout_schedule
    mc = ModelConfig(input_size_list=sizes, latentsize=cfg.latent_size, hiddenlayers=list(cfg.hidden),
                     dropout=max(sched) if sched else cfg.dropout, leakyrelu_negative_slope=cfg.leaky_relu,
                     latent_normalize=cfg.latent_unit)
    with torch.random.fork_rng(devices=[]):  # nn.Linear draws from the global generator: isolate it
        torch.manual_seed(seed)
        return Krakencoder(mc)


def _model_from(ck: Checkpoint, dropout: float | None) -> Krakencoder:
    mc = ck.config
    if dropout is not None:
        if (mc.dropout > 0) != (dropout > 0) and mc.hiddenlayers:
            raise TrainingError(f"{ck.file}: its layer names depend on dropout > 0 (it has {mc.dropout}); "
                                f"cannot fine-tune with --dropout {dropout}",
                                hint=f"use --dropout {mc.dropout if mc.dropout > 0 else 0}")
        mc = dataclasses.replace(mc, dropout=dropout)
    model = Krakencoder(mc)
    config_from_state_dict_check(model, ck.raw["state_dict"], source=ck.file)
    if dropout is not None:
        model.set_dropout(dropout)
    return model


@dataclass
class _Start:
    """Where a run begins: a new model, a fine-tuned one (``--start-from``) or a resumed run (``--resume``)."""

    config: TrainConfig
    flavors: list[str]
    train_idx: npt.NDArray[np.intp]
    val_idx: npt.NDArray[np.intp]
    test_idx: npt.NDArray[np.intp]
    prefix: str | None
    checkpoint: Checkpoint | None = None
    model: Krakencoder | None = None            #: the resumed model (else built once the input sizes are known)
    paths: list[TrainPath] | None = None        #: the resumed run's paths (else resolved from the config)
    suffix: str | None = None
    start_epoch: int = 0
    resume_state: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def _subject_ids(subjects: Sequence[str] | None, n: int) -> list[str]:
    subj = [str(s) for s in subjects] if subjects is not None else [str(i + 1) for i in range(n)]
    if len(subj) != n:
        raise InputDataError(f"{len(subj)} subject ids for {n} rows")
    return subj


def _resumed(arrays: Mapping[str, npt.NDArray[np.float64]], subj: list[str], config: TrainConfig,
             overrides: Collection[str] | None) -> _Start:
    """The state a ``--resume`` checkpoint holds; ``config`` gives only the options a resumed run may change."""
    assert config.resume is not None
    ck = load_checkpoint(config.resume)
    raw, tp = ck.raw, ck.training_params
    # a resumed fine-tuning run continues from its own checkpoint: its --start-from is history
    cfg, _ = resume_config(stored_config(raw, config.resume), config,
                           default_overrides(config) if overrides is None else overrides)
    start = int(raw["kraken_completed_epochs"])
    if cfg.epochs <= start:
        raise TrainingError(f"{cfg.resume} already holds {start} epochs; --epochs {cfg.epochs} leaves nothing to do",
                            hint=f"give --epochs larger than {start}")
    ids = [str(s) for s in np.asarray(tp["subjects"]).ravel()]
    pos = {s: i for i, s in enumerate(subj)}
    if any(s not in pos for s in ids):
        raise InputDataError(f"the inputs lack subjects the resumed run trained on ({cfg.resume})")
    tr = np.array([pos[ids[i]] for i in np.asarray(tp["subjidx_train"]).ravel()], dtype=np.intp)
    va = np.array([pos[ids[i]] for i in np.asarray(tp["subjidx_val"]).ravel()], dtype=np.intp)
    te = np.setdiff1d(np.arange(len(subj)), np.concatenate([tr, va])).astype(np.intp)
    paths = [TrainPath(int(i), int(j)) for i, j in zip(raw["trainpath_encoder_index_list"],
                                                      raw["trainpath_decoder_index_list"])]
    return _Start(cfg, _order(arrays, ck.flavors, config.resume), tr, va, te,
                  prefix=output_prefix(cfg.output) or (tp.get("output_file_prefix") or None), checkpoint=ck,
                  model=_model_from(ck, None), paths=paths, suffix=str(tp.get("output_file_suffix") or ""),
                  start_epoch=start, resume_state=dict(raw["kraken_optimizer_state"]),
                  extra={k: tp[k] for k in ("starting_point_file", "starting_point_epoch") if k in tp})


def _fresh(arrays: Mapping[str, npt.NDArray[np.float64]], subj: list[str], cfg: TrainConfig,
           split: SubjectSplit | None) -> _Start:
    """A new run: flavors in input order (or a ``--start-from`` checkpoint's), the given or seed-0 split."""
    ck = load_checkpoint(cfg.start_from) if cfg.start_from else None
    flavors = _order(arrays, ck.flavors, cfg.start_from) if ck is not None and cfg.start_from else list(arrays)
    if split is not None:
        tr, va, te = align_split(split, subj)
    else:
        tr, va, te = random_split_indices(len(subj), cfg.trainval_frac, cfg.val_frac, seed=0)
    if len(tr) < cfg.batch_size:
        raise TrainingError(f"{len(tr)} training subjects are fewer than one batch of {cfg.batch_size}",
                            hint=f"use --batch-size {max(2, len(tr))} or fewer, or more subjects")
    return _Start(cfg, flavors, tr, va, te, prefix=output_prefix(cfg.output), checkpoint=ck)


def _transforms(st: _Start, arrays: Mapping[str, npt.NDArray[np.float64]],
                given: Mapping[str, Any] | None) -> tuple[dict[str, Any], list[str], str]:
    """Fitted transforms by flavor, the flavors fitted here, and the transformation spec."""
    cfg, ck = st.config, st.checkpoint
    spec = cfg.transformation
    if ck is not None and cfg.start_from and not given:
        spec = str(ck.raw.get("input_transformation_info") or spec)
        log.warning("fine-tuning with freshly fitted %s transforms; give the checkpoint's transform file with -t "
                    "to keep its input space", spec)
    if cfg.resume and not given:
        from ..naming import sibling
        from ..transforms.files import load_transforms

        tfile = sibling(cfg.resume, "ioxfm")
        if tfile.exists():
            given = load_transforms([tfile])
    tfs, fitted = _fit_transforms(arrays, st.flavors, st.train_idx, given, spec)
    return tfs, fitted, spec


def _model(st: _Start, sizes: list[int], device: torch.device) -> Krakencoder:
    """The resumed, fine-tuned or new network for input sizes ``sizes``, on ``device``."""
    cfg, ck, model = st.config, st.checkpoint, st.model
    if model is None and ck is not None:  # --start-from
        model = _model_from(ck, cfg.dropout)
        st.extra = {"starting_point_file": str(cfg.start_from), "starting_point_epoch": ck.epoch}
    if model is None:
        model = _new_model(cfg, sizes, cfg.seed)
    if list(model.config.input_size_list) != sizes:
        raise TrainingError(f"the transforms give input sizes {sizes}, the model expects "
                            f"{list(model.config.input_size_list)}",
                            hint="give the checkpoint's transform file with -t")
    return model.to(device)


@dataclass
class _DeviceData:
    train: Batch
    train_eval: EvalData
    val: EvalData
    train_targets: Targets | None


def _device_data(st: _Start, arrays: Mapping[str, npt.NDArray[np.float64]], tfs: Mapping[str, Any],
                 targets: Targets | None, device: torch.device) -> _DeviceData:
    """Transformed training and validation tensors on ``device`` (validation also in edge space, for metrics)."""
    fl, tr, va = st.flavors, st.train_idx, st.val_idx
    xt = [tfs[f].as_torch(device).transform(arrays[f]) for f in fl]
    tr_t, va_t = torch.as_tensor(tr, device=device), torch.as_tensor(va, device=device)
    all_x = Batch.of(xt, stack=len({x.shape[1] for x in xt}) == 1)
    train_b = all_x.rows(tr_t)
    raw_val = [torch.as_tensor(arrays[f][va], dtype=torch.float32, device=device) for f in fl]
    demean = [torch.as_tensor(arrays[f][tr].mean(axis=0), dtype=torch.float32, device=device) for f in fl]
    val = EvalData(all_x.rows(va_t), raw_val, demean, None if targets is None else targets.rows(va_t))
    return _DeviceData(train_b, EvalData(train_b, None, None), val, None if targets is None else targets.rows(tr_t))


def _write_split_and_transforms(names: RunNames, st: _Start, subj: list[str], tfs: Mapping[str, Any],
                                fitted: Sequence[str], inputs: Sequence[str] | None) -> None:
    """A new run writes its split and the transforms it fitted before training starts."""
    if names.prefix is None or st.config.resume:
        return
    check_writable_dir(names.path("chkpt"))  # type: ignore[arg-type]
    _refuse_overwriting_inputs(names, st.config, inputs)
    sp = names.path("subjsplit")
    write_split_file(sp, SubjectSplit(subj, st.train_idx, st.val_idx, st.test_idx))  # type: ignore[arg-type]
    names.files["subjsplit"] = sp  # type: ignore[assignment]
    if fitted:
        from ..transforms.files import save_transforms

        names.files["ioxfm"] = save_transforms(names.path("ioxfm"),  # type: ignore[arg-type]
                                               {f: tfs[f] for f in fitted}, [subj[i] for i in st.train_idx])


def prepare_run(cohort: Mapping[str, npt.NDArray[np.floating]], config: TrainConfig, *,
                subjects: Sequence[str] | None, groups: Mapping[str, str | None] | None,
                transforms: Mapping[str, Any] | None, split: SubjectSplit | None,
                target_latents: Any, device: torch.device, command: Sequence[str] | None,
                resume_overrides: Collection[str] | None = None, inputs: Sequence[str] | None = None) -> RunSetup:
    """Resolve a run (see module docstring): start, transforms, model, paths, device data, names, record.

    ``resume_overrides`` names the options of ``config`` a resumed run takes (default
    :data:`~.resume.RESUME_OVERRIDES`); ``inputs`` (the ``-i`` specs) are recorded for ``--resume``.
    """
    arrays = _arrays(cohort)
    subj = _subject_ids(subjects, next(iter(arrays.values())).shape[0])
    st = _resumed(arrays, subj, config, resume_overrides) if config.resume else _fresh(arrays, subj, config, split)
    cfg, flavors = st.config, st.flavors
    tfs, fitted, spec = _transforms(st, arrays, transforms)
    model = _model(st, [int(tfs[f].as_torch().transform(arrays[f][:1]).shape[1]) for f in flavors], device)
    if st.paths is None:
        specs = ("self",) if cfg.target_encoding is not None and (cfg.only_self or cfg.strict) else cfg.paths
        st.paths = resolve_paths(specs, flavors, [(groups or {}).get(f, group_of(f)) for f in flavors])
    plan = PathPlan.build(st.paths, len(flavors), device)
    path_names = [p.name(flavors) for p in st.paths]
    data = _device_data(st, arrays, tfs, _targets(target_latents, cfg, flavors, len(subj), model.config.latentsize,
                                                  device), device)
    lr = cfg.lr if cfg.path_steps else (cfg.fast_lr or cfg.lr * plan.max_share)
    data_str = data_string(cfg, len(flavors), len(subj), str(getattr(tfs[flavors[0]], "spec", spec)), len(st.paths))
    names = RunNames(st.prefix, st.suffix or make_suffix(data_str, model.config.summary(), train_string(cfg)))
    _write_split_and_transforms(names, st, subj, tfs, fitted, inputs)
    netinfo = network_info(config=cfg, model=model, transforms=tfs, flavors=flavors,
                           orig_sizes=[arrays[f].shape[1] for f in flavors],
                           paths=[(p.source, p.target) for p in st.paths])
    params = training_params(config=cfg, model=model, flavors=flavors, path_names=path_names, subjects=subj,
                             train_idx=st.train_idx, val_idx=st.val_idx, names=names, data_str=data_str,
                             effective_lr=lr, command=command)
    params.update(st.extra)
    extra = dict(st.extra, **({"kraken_inputs": list(inputs)} if inputs else {}))
    record = _record(path_names, cfg, params, netinfo, model, flavors, st.checkpoint if cfg.resume else None)
    previous = ([Path(p) for p in st.checkpoint.raw.get("kraken_checkpoints", [])] + [Path(cfg.resume)]
                if cfg.resume and st.checkpoint is not None else [])
    return RunSetup(config=cfg, device=device, flavors=flavors, path_names=path_names, plan=plan, model=model,
                    transforms=tfs, split=SubjectSplit(subj, st.train_idx, st.val_idx, st.test_idx),
                    train=data.train, train_eval=data.train_eval, val=data.val, train_targets=data.train_targets,
                    effective_lr=lr, names=names, record=record, netinfo=netinfo, params=params,
                    start_epoch=st.start_epoch, resume_state=st.resume_state, previous_checkpoints=previous,
                    extra=extra, qc_rows=(*qc_transform_rows({f: arrays[f] for f in flavors}, st.train_idx, st.val_idx),
                                          {f: (groups or {}).get(f, group_of(f)) for f in flavors}))


def _refuse_overwriting_inputs(names: RunNames, cfg: TrainConfig, inputs: Sequence[str] | None) -> None:
    """No file the run writes may be one it reads (an input, the split file, a transform, a checkpoint)."""
    from ..flavors import FlavorSpec
    from ..io._atomic import refuse_overwriting

    given = [*(FlavorSpec.parse(s).path for s in inputs or ()), cfg.split_file, cfg.start_from,
             *cfg.transform_files, cfg.target_encoding]
    refuse_overwriting([("-o", str(p)) for p in names.all_paths()], given)


def _targets(target_latents: Any, cfg: TrainConfig, flavors: list[str], n: int, latent: int,
             device: torch.device) -> Targets | None:
    if cfg.target_encoding is None and target_latents is None:
        return None
    if target_latents is None:
        raise TrainingError("target-encoding training needs the target latents",
                            hint="read them with kraken_cli.engine.training.read_target_latents")
    if isinstance(target_latents, Mapping):
        missing = [f for f in flavors if f not in target_latents]
        if missing:
            raise InputDataError(f"no target latents for {missing}")
        zs = [np.asarray(target_latents[f], dtype=np.float32) for f in flavors]
    else:
        zs = [np.asarray(target_latents, dtype=np.float32)] * len(flavors)
    for f, z in zip(flavors, zs):
        if z.shape != (n, latent):
            raise InputDataError(f"target latents for {f} have shape {z.shape}, expected ({n}, {latent})",
                                 hint="--latent-size must match the target latents")
        if not np.all(np.isfinite(z)):
            raise InputDataError(f"target latents for {f} contain NaN or Inf")
    return Targets(torch.as_tensor(np.stack(zs), device=device), strict=cfg.strict, mse_weight=cfg.target_mse_weight)


def _record(path_names: list[str], cfg: TrainConfig, params: dict[str, Any], netinfo: dict[str, Any],
            model: Krakencoder, flavors: list[str], resumed: Checkpoint | None) -> TrainRecord:
    fields = {k: v for k, v in params.items()}
    fields.update(netinfo)
    mc = model.config
    fields.update({"input_name_list": list(flavors), "input_size_list": list(mc.input_size_list),
                   "latentsize": mc.latentsize, "hiddenlayers": list(mc.hiddenlayers), "skip_relu": mc.skip_relu,
                   "leakyrelu_negative_slope": mc.leakyrelu_negative_slope,
                   "relu_tanh_alternate": mc.relu_tanh_alternate, "dropout": mc.dropout,
                   "latent_activation": mc.latent_activation or "none", "inputwise_latentsim_loss": True,
                   "meantarget_loss": False, "compute_performance_after_latentsim": True, "maxthreads": 0,
                   "timestamp": params["output_file_suffix"][-15:]})
    rec = TrainRecord.empty(path_names, cfg.epochs, **fields)
    rec["loss_train"] = np.full((len(path_names), cfg.epochs), np.nan)
    if resumed is not None:
        for k, v in dict(resumed.raw.get("kraken_history", {})).items():
            arr = np.asarray(v, dtype=np.float64)
            cur = rec.get(k)
            if arr.ndim == 2 and isinstance(cur, np.ndarray) and cur.ndim == 2:
                m = min(arr.shape[1], cur.shape[1])
                cur[:, :m] = arr[:, :m]
            elif arr.ndim == 1 and isinstance(cur, np.ndarray) and cur.ndim == 1:
                m = min(arr.size, cur.size)
                cur[:m] = arr[:m]
    return rec
