"""Inference: encode inputs, fuse latents, decode every requested output, chunk by chunk.

>>> model = load_model("model.pt", transforms=["model_ioxfm.npy"])      # doctest: +SKIP
>>> pred = model.predict(load_cohort(["FCcorr_fs86_hpf=fc.mat"]), fusion=True)  # doctest: +SKIP
>>> pred["fusion"]["SCifod2act_fs86_volnorm"].shape                      # doctest: +SKIP
(12, 3655)
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from .adaptation import FlavorAdaptation, check_adapter, fit_adaptation, normalize_mode
from .checkpoint import Checkpoint, load_checkpoint
from .connectome import Cohort
from .errors import DeviceError, FlavorError, TransformError
from .flavors import is_latent_name, match_flavor
from .fusion import FusionGroup, check_variants, fuse, resolve_groups
from .naming import sibling
from .pipelines.configs import DEFAULT_CHUNK_SIZE as DEFAULT_CHUNK_SIZE  # re-exported: its home before
from .pipelines.configs import PredictOptions as PredictOptions
from .progress import NULL_PROGRESS, Progress
from .transforms import Transform
from .transforms.files import load_transforms

log = logging.getLogger(__name__)

#: Largest output (bytes) decoded in one call when several sources decode to the same flavor.
DECODE_BATCH_BYTES = 64 * 2**20


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available else CPU; ``cuda`` without CUDA is a DeviceError."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError("--device cuda was asked for but no CUDA device is available",
                          hint="use --device cpu (or auto)")
    return torch.device(device)


@dataclass
class PredictPlan:
    """The resolved run: which inputs feed which encoders and which (input, output) pairs to make."""

    inputs: list[str]                 # cohort flavors (connectomes and latent inputs), in input order
    model_index: dict[str, int]       # connectome input -> encoder index
    groups: list[FusionGroup]
    sources: list[str]                # prediction inputs: flavors (unless only_fusion), latent inputs, groups
    outputs: list[str]                # output names in request order ("encoded" or flavor names)
    adaptations: dict[str, FlavorAdaptation] = field(default_factory=dict)

    @property
    def pairs(self) -> list[tuple[str, str]]:
        return [(s, o) for s in self.sources for o in self.outputs]


class KrakenModel:
    """A checkpoint plus the input transforms of its flavors, ready to predict."""

    def __init__(self, checkpoint: Checkpoint, transforms: Mapping[str, Transform],
                 device: str | torch.device = "cpu") -> None:
        self.checkpoint = checkpoint
        self.transforms = dict(transforms)
        self.device = torch.device(device) if not isinstance(device, torch.device) else device
        self.net = checkpoint.model().to(self.device).eval()

    @property
    def flavors(self) -> list[str]:
        return self.checkpoint.flavors

    def transform_for(self, flavor: str) -> Transform:
        t = self.transforms.get(flavor)
        if t is None:
            m = match_flavor(flavor, list(self.transforms))
            t = self.transforms.get(m) if m else None
        if t is None:
            raise TransformError(f"no input transform for flavor {flavor}",
                                 hint="give the checkpoint's *_ioxfm_* file with -t")
        return t

    # -- planning -----------------------------------------------------------------------------
    def plan(self, cohort: Cohort, options: PredictOptions) -> PredictPlan:
        """Match inputs to the model, resolve fusion groups and outputs; raise on anything unclear."""
        model_index: dict[str, int] = {}
        latent_inputs: list[str] = []
        for name in cohort.flavors:
            if is_latent_name(name):
                width = cohort.sources[name].n_features
                if width != self.checkpoint.config.latentsize:
                    raise FlavorError(
                        f"latent input {name} ({cohort.sources[name].file}) has {width} values per subject, "
                        f"the model's latent has {self.checkpoint.config.latentsize}",
                        hint="give latents encoded by this model (kraken run --outputs encoded)")
                latent_inputs.append(name)
                continue
            m = match_flavor(name, self.flavors)
            if m is None:
                raise FlavorError(f"input flavor {name} is not in the checkpoint ({', '.join(self.flavors)})",
                                  hint="check the FLAVOR name given with -i, or use a checkpoint that has it")
            model_index[name] = self.flavors.index(m)
            self.transform_for(m)
        connectomes = list(model_index)
        groups: list[FusionGroup] = []
        if options.fusion:
            if not connectomes:
                raise FlavorError("--fusion needs connectome inputs to fuse", hint="give -i FLAVOR=PATH inputs")
            groups = resolve_groups(options.fusion_include, connectomes,
                                    noself=options.fusion_noself, noatlas=options.fusion_noatlas)
        elif options.fusion_include or options.only_fusion or options.fusion_noself or options.fusion_noatlas:
            groups = resolve_groups(options.fusion_include, connectomes, noself=options.fusion_noself,
                                    noatlas=options.fusion_noatlas) if connectomes else []
        outputs: list[str] = []
        for o in options.outputs:
            if o == "all":
                new = list(self.flavors)
            elif o == "encoded":
                new = ["encoded"]
            else:
                m = match_flavor(o, self.flavors)
                if m is None:
                    raise FlavorError(f"output {o!r} is not a flavor of the checkpoint ({', '.join(self.flavors)})",
                                      hint="use --outputs all, encoded, or one of the checkpoint's flavors")
                new = [m]
            outputs += [x for x in new if x not in outputs]
        if groups:
            check_variants(groups, [o for o in outputs if o != "encoded"])
        sources = ([] if options.only_fusion else connectomes) + latent_inputs + [g.name for g in groups]
        if not sources:
            raise FlavorError("nothing to predict from", hint="give inputs with -i, or drop --only-fusion")
        return PredictPlan(list(cohort.flavors), model_index, groups, sources, outputs)

    def fit_adaptation(self, cohort: Cohort, plan: PredictPlan, mode: str, progress: Progress = NULL_PROGRESS,
                       chunk_size: int = DEFAULT_CHUNK_SIZE) -> dict[str, FlavorAdaptation]:
        """Fit ``mode`` on all cohort subjects (streaming mean), for every connectome input."""
        mode = normalize_mode(mode)
        if mode == "none":
            return {}
        out = {}
        for name, idx in plan.model_index.items():
            total = None
            for start in range(0, cohort.n_subjects, chunk_size):
                x = np.asarray(cohort.read(name, start, start + chunk_size), dtype=np.float64)
                s = x.sum(axis=0)
                total = s if total is None else total + s
            assert total is not None
            t = self.transform_for(self.flavors[idx])
            out[name] = fit_adaptation(name, mode, total / cohort.n_subjects, t, n_subjects=cohort.n_subjects,
                                       source_files=(cohort.sources[name].file,))
            log.info("adapt %s (%s): fitted on %d subjects, R^2 %.3f", name, mode, cohort.n_subjects,
                     out[name].fit_corr ** 2)
        return out

    def use_adapter(self, plan: PredictPlan, adapter: Mapping[str, FlavorAdaptation], *, file: str) -> None:
        """Attach saved adaptations (refusing ones fitted for another transform)."""
        for name, idx in plan.model_index.items():
            a = adapter.get(name) or adapter.get(self.flavors[idx])
            if a is None:
                raise FlavorError(f"{file} has no adaptation for input {name}",
                                  hint=f"it covers {', '.join(adapter)}; refit with kraken adapt")
            check_adapter(a, self.transform_for(self.flavors[idx]), file=file)
            plan.adaptations[name] = a

    # -- computing ----------------------------------------------------------------------------
    @torch.no_grad()
    def predict_chunk(self, arrays: Mapping[str, npt.NDArray[np.floating]], plan: PredictPlan,
                      options: PredictOptions) -> dict[tuple[str, str], npt.NDArray[np.float32]]:
        """Predictions for one chunk of subjects: ``{(source, output): (n, features) float32}``."""
        return self.decode_latents(self.encode_chunk(arrays, plan), plan, options, plan.pairs)

    @torch.no_grad()
    def encode_chunk(self, arrays: Mapping[str, npt.NDArray[np.floating]],
                     plan: PredictPlan) -> dict[str, torch.Tensor]:
        """Latents of one chunk of subjects for every input (connectomes encoded, latent inputs as given)."""
        latents: dict[str, torch.Tensor] = {}
        for name, idx in plan.model_index.items():
            x = np.asarray(arrays[name])
            if name in plan.adaptations:
                x = plan.adaptations[name].apply(x)
            xt = self.transform_for(self.flavors[idx]).as_torch(self.device).transform(x)
            latents[name] = self.net.encode(xt, idx)
        for name in plan.inputs:
            if is_latent_name(name):
                z = torch.as_tensor(np.asarray(arrays[name]), dtype=torch.float32, device=self.device)
                if z.shape[1] != self.checkpoint.config.latentsize:
                    raise FlavorError(f"latent input {name} has {z.shape[1]} values per subject, the model's "
                                      f"latent has {self.checkpoint.config.latentsize}",
                                      hint="give latents encoded by this model (kraken run --outputs encoded)")
                latents[name] = z
        return latents

    @torch.no_grad()
    def encode_all(self, cohort: Cohort, plan: PredictPlan, options: PredictOptions) -> dict[str, torch.Tensor]:
        """:meth:`encode_chunk` of every subject, chunk by chunk (latents are small: subjects x latent)."""
        parts: dict[str, list[torch.Tensor]] = {}
        step = max(1, options.chunk_size)
        for start in range(0, cohort.n_subjects, step):
            arrays = {f: cohort.read(f, start, start + step) for f in plan.inputs}
            for name, z in self.encode_chunk(arrays, plan).items():
                parts.setdefault(name, []).append(z)
            del arrays
        return {name: z[0] if len(z) == 1 else torch.cat(z) for name, z in parts.items()}

    @torch.no_grad()
    def decode_latents(self, latents: Mapping[str, torch.Tensor], plan: PredictPlan, options: PredictOptions,
                       pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], npt.NDArray[np.float32]]:
        """The predictions ``pairs`` (source, output) from the latents of :meth:`encode_chunk`."""
        groups = {g.name: g for g in plan.groups}
        done: dict[tuple[str, str], npt.NDArray[np.float32]] = {}
        for o in dict.fromkeys(o for _, o in pairs):
            sources = [s for s, oo in pairs if oo == o]
            if o == "encoded":
                for src in sources:
                    g = groups.get(src)
                    z = fuse(latents, g.members, normalize=options.fusion_norm) if g else latents[src]
                    done[(src, o)] = z.float().cpu().numpy()
                continue
            # The latents of every source that decodes to ``o`` (a fused latent once per member set),
            # decoded together: one decoder pass and one inverse transform per batch instead of one
            # per source, which matters for small atlases.
            j = self.flavors.index(o)
            rows: list[torch.Tensor] = []
            row_of: dict[str, int] = {}
            fused_row: dict[tuple[str, ...], int] = {}
            for src in sources:
                g = groups.get(src)
                if g is not None:
                    members = g.members_for(o)
                    if members not in fused_row:
                        fused_row[members] = len(rows)
                        rows.append(fuse(latents, members, normalize=options.fusion_norm))
                    row_of[src] = fused_row[members]
                    continue
                z = latents[src]
                if src in plan.model_index:
                    z = self.net.intergroup_transform(z, plan.model_index[src], j)
                row_of[src] = len(rows)
                rows.append(z)
            decoded = self._decode_batched(rows, j)
            for src, k in row_of.items():
                done[(src, o)] = decoded[k]
        return {p: done[p] for p in pairs}

    def _decode_batched(self, latents: Sequence[torch.Tensor], j: int) -> list[npt.NDArray[np.float32]]:
        """``_decode`` of each latent block, several blocks per call up to :data:`DECODE_BATCH_BYTES` of output."""
        width = self.transform_for(self.flavors[j]).n_features_in_
        out: list[npt.NDArray[np.float32]] = []
        i = 0
        while i < len(latents):
            k, size = i + 1, latents[i].shape[0]
            while k < len(latents) and (size + latents[k].shape[0]) * width * 4 <= DECODE_BATCH_BYTES:
                size += latents[k].shape[0]
                k += 1
            z = latents[i] if k == i + 1 else torch.cat(list(latents[i:k]))
            y = self._decode(z, j).float().cpu().numpy()
            start = 0
            for block in latents[i:k]:
                out.append(y[start:start + block.shape[0]])
                start += block.shape[0]
            i = k
        return out

    def _decode(self, z: torch.Tensor, j: int) -> torch.Tensor:
        return self.transform_for(self.flavors[j]).as_torch().inverse_transform(self.net.decode(z, j))

    def iter_predictions(self, cohort: Cohort, plan: PredictPlan, options: PredictOptions,
                         progress: Progress = NULL_PROGRESS
                         ) -> Iterator[tuple[int, dict[tuple[str, str], npt.NDArray[np.float32]]]]:
        """Yield ``(start_row, predictions)`` chunk by chunk; memory is bounded by the chunk size."""
        n = cohort.n_subjects
        step = max(1, options.chunk_size)
        progress.start("Predicting", total=n)
        try:
            for start in range(0, n, step):
                arrays = {f: cohort.read(f, start, start + step) for f in plan.inputs}
                chunk = self.predict_chunk(arrays, plan, options)
                del arrays  # one chunk of inputs and predictions alive at a time
                yield start, chunk
                del chunk
                progress.advance(min(step, n - start))
        finally:
            progress.done()

    def predict(self, cohort: Cohort, *, outputs: Sequence[str] = ("all",), fusion: bool = False,
                fusion_include: Mapping[str, Sequence[str]] | None = None, adapt: str = "none",
                only_fusion: bool = False) -> dict[str, dict[str, npt.NDArray[np.float32]]]:
        """In-memory predictions ``{source: {output: (n_subjects, features)}}`` (notebook API)."""
        options = PredictOptions(outputs=tuple(outputs), fusion=fusion, fusion_include=fusion_include, adapt=adapt,
                             only_fusion=only_fusion)
        plan = self.plan(cohort, options)
        plan.adaptations = self.fit_adaptation(cohort, plan, adapt)
        parts: dict[tuple[str, str], list[npt.NDArray[np.float32]]] = {}
        for _, chunk in self.iter_predictions(cohort, plan, options):
            for k, v in chunk.items():
                parts.setdefault(k, []).append(v)
        result: dict[str, dict[str, npt.NDArray[np.float32]]] = {}
        for (s, o), vs in parts.items():
            result.setdefault(s, {})[o] = np.concatenate(vs)
        return result


def find_transform_files(checkpoint_file: str | Path) -> list[Path]:
    """Transform files for a checkpoint by the original's naming rule, if present."""
    cand = sibling(checkpoint_file, "ioxfm")
    return [cand] if cand.exists() and cand != Path(checkpoint_file) else []


def load_model(checkpoint: str | Path | Sequence[str | Path], transforms: Sequence[str | Path] | None = None,
               device: str = "cpu") -> KrakenModel:
    """Load a checkpoint (several are merged) and its transforms.

    Explicit ``transforms`` win; otherwise the original's naming rule (``_chkpt_`` -> ``_ioxfm_``).
    """
    files = [checkpoint] if isinstance(checkpoint, (str, Path)) else list(checkpoint)
    if len(files) == 1:
        ckpt = load_checkpoint(files[0])
    else:
        from .merge import merge_checkpoints

        ckpt = merge_checkpoints([load_checkpoint(f) for f in files])
    tfiles = list(transforms or [])
    if not tfiles:
        for f in files:
            tfiles += find_transform_files(f)
    if not tfiles:
        raise TransformError(f"no transform file found for {files[0]}",
                             hint="give the *_ioxfm_* file written with the checkpoint via -t")
    loaded = load_transforms(tfiles)
    missing = [f for f in ckpt.flavors if f not in loaded and match_flavor(f, list(loaded)) is None]
    if len(missing) == len(ckpt.flavors):
        raise TransformError(f"the transform files {[str(t) for t in tfiles]} cover none of the checkpoint's flavors",
                             hint="give the *_ioxfm_* file written with this checkpoint via -t")
    return KrakenModel(ckpt, loaded, resolve_device(device))
